/**
 * Chaos: other actors change the objects under the controller while runs are in flight — a Job
 * deleted by someone else, a Task deleted mid-run, a PeriodicTask edited while runs are active —
 * and a controller that starts with weeks of backlog. Counted from the objects and Redis.
 */
import { readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compileSchedule } from "../../src/schedule/index.ts";
import { GROUP, VERSION, type CadentObject } from "../support/cadent.ts";
import { k8s } from "../support/kube.ts";
import { waitFor } from "../support/ports.ts";
import { Load, TERMINAL, ZERO, report } from "./support/load.ts";
import { startController, startWorker } from "./support/processes.ts";
import { scale, startWorld, type World } from "./support/world.ts";

const scheduledMs = (o: CadentObject): number =>
  Date.parse(o.metadata.annotations?.["cadent.dev/scheduled-time"] ?? "");
const errorReason = (o: CadentObject): string | undefined =>
  (o.status?.["error"] as { reason?: string } | undefined)?.reason;

/** Sum of a counter or histogram `_count` family in Prometheus text, over all label sets. */
function metricSum(text: string, name: string): number {
  return text
    .split("\n")
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(" ") + 1)), 0);
}

/** utime + stime of a process in seconds, from /proc (clock ticks of 100 Hz on Linux). */
async function cpuSeconds(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1]?.split(" ") ?? [];
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

describe("objects changed under the controller", () => {
  let world: World;
  const stops: (() => Promise<void>)[] = [];
  const track = <T extends { process: { stop(): Promise<void> } }>(p: T): T => {
    stops.push(() => p.process.stop());
    return p;
  };

  beforeAll(async () => {
    world = await startWorld("objects");
  });
  afterAll(async () => {
    await Promise.all(stops.map((stop) => stop().catch(() => undefined)));
    await world?.stop();
  });

  /** Pods whose owning Job no longer exists, once the garbage collector had its chance. */
  const expectNoOrphanedPods = async (namespace: string): Promise<void> => {
    const core = world.kc.makeApiClient(k8s.CoreV1Api);
    const batch = world.kc.makeApiClient(k8s.BatchV1Api);
    let orphans: string[] = [];
    await waitFor(
      `no orphaned Pods in ${namespace}`,
      async () => {
        const jobs = new Set(
          (await batch.listNamespacedJob({ namespace })).items.map((j) => j.metadata?.uid),
        );
        orphans = (await core.listNamespacedPod({ namespace })).items
          .filter((p) => !p.metadata?.ownerReferences?.some((o) => jobs.has(o.uid)))
          .map((p) => p.metadata?.name ?? "");
        return orphans.length === 0;
      },
      { timeoutMs: 90_000, intervalMs: 1_000 },
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}: ${orphans.join(", ")}`);
    });
  };

  /** Jobs whose owning Task no longer exists. */
  const expectNoOrphanedJobs = async (load: Load): Promise<void> => {
    const batch = world.kc.makeApiClient(k8s.BatchV1Api);
    await waitFor(
      `no orphaned Jobs in ${load.namespace}`,
      async () => {
        const tasks = new Set((await load.cadent.list("tasks")).map((t) => t.metadata.uid));
        return (await batch.listNamespacedJob({ namespace: load.namespace })).items.every((j) =>
          j.metadata?.ownerReferences?.some((o) => tasks.has(o.uid)),
        );
      },
      { timeoutMs: 90_000, intervalMs: 1_000 },
    );
  };

  it("a Job deleted by someone else while it runs: its Task fails with JobDeleted, nothing else is lost, no Pod is orphaned", async () => {
    const load = await Load.start(world, "jobdel", {
      redis: 1,
      jobs: 3,
      jobSeconds: 5,
      durationSeconds: scale(24, 60),
    });
    track(await startWorker(world, load));
    track(await startController(world, load, "jobdel"));
    const batch = world.kc.makeApiClient(k8s.BatchV1Api);
    const deleted = new Set<string>();
    while (Date.now() < load.endTime.getTime() - 3_000) {
      await sleep(3_000);
      const running = (await batch.listNamespacedJob({ namespace: load.namespace })).items.filter(
        (j) => (j.status?.active ?? 0) > 0 && !deleted.has(j.metadata?.name ?? ""),
      );
      const victim = running[Math.floor(Math.random() * running.length)]?.metadata?.name;
      if (!victim) continue;
      await batch.deleteNamespacedJob({
        namespace: load.namespace,
        name: victim,
        propagationPolicy: "Background",
      });
      deleted.add(victim);
    }
    await load.settle();
    const counts = await load.expectNothingLost("Job deleted by someone else while running", {
      jobsDeleted: deleted.size,
    });
    expect(deleted.size, "Jobs deleted mid-run").toBeGreaterThan(0);
    const tasks = await load.cadent.list("tasks");
    for (const name of deleted) {
      const task = tasks.find((t) => t.metadata.name === name);
      expect(task?.status?.phase, `${name}: phase`).toBe("Failed");
      expect(errorReason(task ?? { metadata: {} }), `${name}: error reason`).toBe("JobDeleted");
    }
    expect(counts.failed, "only the runs whose Job was deleted failed").toBe(deleted.size);
    await expectNoOrphanedPods(load.namespace);
  });

  it("a Task deleted while its run is in flight (both executors): it is not made again, its Job and Pods go, the status still adds up", async () => {
    const load = await Load.start(world, "taskdel", {
      redis: 2,
      jobs: 2,
      taskSeconds: 2,
      jobSeconds: 4,
      durationSeconds: scale(24, 60),
    });
    track(await startWorker(world, load));
    const controller = track(await startController(world, load, "taskdel"));
    const deleted = new Map<string, number>();
    while (Date.now() < load.endTime.getTime() - 3_000) {
      await sleep(2_000);
      const inFlight = (await load.cadent.list("tasks")).filter(
        (t) => ["Queued", "Running"].includes(t.status?.phase ?? "") && !deleted.has(t.metadata.name ?? ""),
      );
      // One of each executor when there is one.
      for (const executor of ["redis-", "job-"]) {
        const victim = inFlight.find((t) => t.metadata.name?.startsWith(executor));
        if (!victim?.metadata.name) continue;
        await load.cadent.api.deleteNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          plural: "tasks",
          namespace: load.namespace,
          name: victim.metadata.name,
          propagationPolicy: "Background",
        });
        deleted.set(victim.metadata.name, scheduledMs(victim));
      }
    }
    await load.settle();
    // The results of deleted Redis runs arrive after their Task is gone: the controller shrugs.
    await sleep(3_000);
    expect(controller.process.child.exitCode, "the controller is still running").toBeNull();

    const { total, perObject } = await load.audit();
    const tasks = await load.cadent.list("tasks");
    const names = new Set(tasks.map((t) => t.metadata.name));
    for (const name of deleted.keys()) expect(names.has(name), `${name} was made again`).toBe(false);
    expect(deleted.size, "Tasks deleted mid-run").toBeGreaterThan(1);
    // Every scheduled time is a run still there, a run deleted by the test, or counted missed.
    expect(total.duplicates, JSON.stringify(perObject)).toBe(0);
    expect(total.lost, "scheduled times without a Task = the deleted runs").toBe(deleted.size);
    expect(total.runs + deleted.size + total.missed + total.skipped).toBe(total.scheduled);
    expect(total.nonTerminal).toBe(0);
    // Status writes that only record finished runs may wait a few seconds (docs/controller.md,
    // "Status writes"): the active lists must empty, not necessarily at the moment the load settled.
    await waitFor(
      "every PeriodicTask's active list to empty",
      async () =>
        (await load.cadent.list("periodictasks")).every((pt) => (pt.status?.["activeCount"] ?? 0) === 0),
      { timeoutMs: 30_000, intervalMs: 500 },
    ).catch(() => undefined); // the per-object expectation below names the one that did not
    for (const pt of await load.cadent.list("periodictasks")) {
      const runs = (pt.status?.["runs"] ?? {}) as Record<string, number>;
      const mine = [...deleted.keys()].filter((n) => n.startsWith(`${pt.metadata.name}-`)).length;
      expect(pt.status?.["activeCount"] ?? 0, `${pt.metadata.name}: activeCount`).toBe(0);
      expect(runs["total"], `${pt.metadata.name}: runs.total counts deleted runs`).toBe(
        tasks.filter((t) => t.metadata.labels?.["cadent.dev/periodic-task"] === pt.metadata.name).length +
          mine,
      );
    }
    // "lost" here are exactly the runs the test deleted (checked above), so the report shows the rest.
    report(
      world,
      "Task deleted while its run is in flight",
      { ...total, lost: total.lost - deleted.size },
      { tasksDeleted: deleted.size },
    );
    await expectNoOrphanedJobs(load);
    await expectNoOrphanedPods(load.namespace);
  });

  it("a PeriodicTask edited while runs are active: nothing runs retroactively, runs after the edit use the new schedule and template, nothing is orphaned", async () => {
    const load = await Load.start(world, "edit", {
      redis: 2,
      jobs: 1,
      taskSeconds: 2,
      jobSeconds: 4,
      durationSeconds: scale(30, 60),
    });
    track(await startWorker(world, load));
    track(await startController(world, load, "edit"));
    await sleep(
      Math.max(
        0,
        load.startTime.getTime() + (load.endTime.getTime() - load.startTime.getTime()) / 2 - Date.now(),
      ),
    );

    const editedAt = Date.now();
    const activeAtEdit = (await load.cadent.list("tasks"))
      .filter((t) => !TERMINAL.has(t.status?.phase ?? ""))
      .map((t) => t.metadata.name ?? "");
    const generations = new Map<string, number>();
    for (const name of load.names) {
      const pt = await load.cadent.get("periodictasks", name);
      const spec = pt.spec?.["taskTemplate"] as { spec: { args: unknown[] } };
      const edited = await load.cadent.patch("periodictasks", name, {
        spec: {
          schedule: "*/5 * * * * *",
          taskTemplate: { ...spec, spec: { ...spec.spec, args: [...spec.spec.args, "v2"] } },
        },
      });
      generations.set(name, edited.metadata.generation ?? 0);
    }
    // From when the controller has seen the edit, only the new schedule may fire.
    for (const [name, generation] of generations)
      await load.cadent.waitFor(
        "periodictasks",
        name,
        "the edit observed",
        (o) => Number(o.status?.["observedGeneration"] ?? 0) >= generation,
      );
    const seenAt = Date.now();
    await load.untilEnd();
    await waitFor(
      "every run to finish",
      async () => (await load.cadent.list("tasks")).every((t) => TERMINAL.has(t.status?.phase ?? "")),
      { timeoutMs: 120_000, intervalMs: 1_000 },
    );

    const oldSchedule = compileSchedule({
      expression: load.schedule,
      hashKey: "x",
      createdAt: load.startTime,
    });
    const newSchedule = compileSchedule({
      expression: "*/5 * * * * *",
      hashKey: "x",
      createdAt: load.startTime,
    });
    const isOld = (t: number): boolean => oldSchedule.next(new Date(t - 1))?.getTime() === t;
    const isNew = (t: number): boolean => newSchedule.next(new Date(t - 1))?.getTime() === t;
    const tasks = await load.cadent.list("tasks");
    const violations: string[] = [];
    for (const task of tasks) {
      const t = scheduledMs(task);
      const name = task.metadata.name ?? "";
      if (t < editedAt && !isOld(t))
        violations.push(`${name}: a new-schedule time before the edit (retroactive)`);
      if (t > seenAt && !isNew(t)) violations.push(`${name}: an old-schedule time after the edit was seen`);
      const args = task.spec?.["args"] as unknown[] | undefined;
      const v2 = args?.includes("v2") ?? false;
      if (t > seenAt && !v2) violations.push(`${name}: made after the edit with the old template`);
      if (t < editedAt && v2) violations.push(`${name}: made before the edit with the new template`);
    }
    expect(violations).toEqual([]);
    // Nothing lost on either side of the edit.
    const times = new Set(
      tasks.map((t) => `${t.metadata.labels?.["cadent.dev/periodic-task"]}@${scheduledMs(t)}`),
    );
    const missing: string[] = [];
    let expected = 0;
    for (const name of load.names) {
      for (
        let t = oldSchedule.next(new Date(load.startTime.getTime() - 1));
        t && t.getTime() < editedAt;
        t = oldSchedule.next(t)
      )
        if (++expected && !times.has(`${name}@${t.getTime()}`))
          missing.push(`${name}@${t.toISOString()} (old)`);
      for (let t = newSchedule.next(new Date(seenAt)); t && t <= load.endTime; t = newSchedule.next(t))
        if (++expected && !times.has(`${name}@${t.getTime()}`))
          missing.push(`${name}@${t.toISOString()} (new)`);
    }
    expect(missing).toEqual([]);
    for (const name of activeAtEdit)
      expect(
        TERMINAL.has(tasks.find((t) => t.metadata.name === name)?.status?.phase ?? ""),
        `${name} finished`,
      ).toBe(true);
    report(
      world,
      "PeriodicTask edited (schedule and template) while runs are active",
      {
        ...ZERO,
        periodicTasks: load.names.length,
        // Times of the old schedule before the edit and of the new one after it was seen; runs in
        // between may follow either, so runs can exceed this.
        scheduled: expected,
        runs: tasks.length,
        lost: missing.length,
        nonTerminal: tasks.filter((t) => !TERMINAL.has(t.status?.phase ?? "")).length,
        succeeded: tasks.filter((t) => t.status?.phase === "Succeeded").length,
      },
      { activeAtEdit: activeAtEdit.length, violations: violations.length, missing: missing.length },
    );
    await expectNoOrphanedJobs(load);
    await expectNoOrphanedPods(load.namespace);
  });

  it("a controller started with weeks of backlog makes the catch-up runs each policy allows, counts the rest missed, and does not spin", async () => {
    const load = await Load.start(world, "backlog", { redis: 0, jobs: 0, durationSeconds: 3 });
    const weeksAgo = new Date(Date.now() - 21 * 24 * 3600 * 1000);
    // Everything is backlog: the PeriodicTasks end before the controller starts.
    const endTime = new Date(Math.ceil((Date.now() + 3_000) / 3_000) * 3_000);
    const cases = [
      { name: "latest", catchUp: "Latest", deadline: undefined, runs: 1 },
      { name: "all-deadline", catchUp: "All", deadline: 30, runs: undefined },
      { name: "all", catchUp: "All", deadline: undefined, runs: 100 },
    ] as const;
    for (const c of cases) {
      await load.cadent.create("periodictasks", {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: "PeriodicTask",
        metadata: { name: c.name },
        spec: {
          schedule: "*/3 * * * * *",
          endTime: endTime.toISOString(),
          catchUp: c.catchUp,
          ...(c.deadline ? { startingDeadlineSeconds: c.deadline } : {}),
          successfulRunsHistoryLimit: 100,
          taskTemplate: { spec: { task: "app.tasks.tally", args: [0, load.tallyList], queue: load.queue } },
        },
      });
      // As if the controller had last scheduled it three weeks ago and been down since.
      await load.cadent.api.patchNamespacedCustomObjectStatus(
        {
          group: GROUP,
          version: VERSION,
          plural: "periodictasks",
          namespace: load.namespace,
          name: c.name,
          body: { status: { lastScheduleTime: weeksAgo.toISOString() } },
        },
        k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
      );
    }
    track(await startWorker(world, load));
    await sleep(Math.max(0, endTime.getTime() + 500 - Date.now()));
    const controller = track(await startController(world, load, "backlog"));
    const schedule = compileSchedule({ expression: "*/3 * * * * *", hashKey: "x", createdAt: weeksAgo });
    const fireTimes = schedule.countBetween(weeksAgo, endTime);
    for (const c of cases)
      await load.cadent.waitFor(
        "periodictasks",
        c.name,
        "every scheduled time up to endTime run or counted missed",
        (o) => {
          const runs = (o.status?.["runs"] ?? {}) as Record<string, number>;
          return (runs["total"] ?? 0) + (runs["missed"] ?? 0) >= fireTimes;
        },
        120_000,
      );
    await waitFor(
      "every run to finish",
      async () => (await load.cadent.list("tasks")).every((t) => TERMINAL.has(t.status?.phase ?? "")),
      { timeoutMs: 120_000, intervalMs: 1_000 },
    );

    // Idle now (endTime passed, every run finished): count what the controller does for 20 s.
    const before = (await controller.get(controller.metricsPort, "/metrics")).body;
    const cpuBefore = await cpuSeconds(controller.process.pid);
    await sleep(20_000);
    const after = (await controller.get(controller.metricsPort, "/metrics")).body;
    const cpuIdle = (await cpuSeconds(controller.process.pid)) - cpuBefore;
    const reconciles =
      metricSum(after, "cadent_reconcile_duration_seconds_count") -
      metricSum(before, "cadent_reconcile_duration_seconds_count");

    const tasks = await load.cadent.list("tasks");
    const results: Record<string, number | string> = {
      fireTimes,
      idleReconciles: reconciles,
      idleCpuSeconds: cpuIdle,
    };
    for (const c of cases) {
      const pt = await load.cadent.get("periodictasks", c.name);
      const runs = (pt.status?.["runs"] ?? {}) as Record<string, number>;
      const mine = tasks.filter((t) => t.metadata.labels?.["cadent.dev/periodic-task"] === c.name);
      expect(mine.length + (runs["missed"] ?? 0), `${c.name}: runs + missed = scheduled times`).toBe(
        fireTimes,
      );
      expect(new Set(mine.map(scheduledMs)).size, `${c.name}: one run per time`).toBe(mine.length);
      if (c.runs !== undefined) expect(mine.length, `${c.name}: catch-up runs`).toBe(c.runs);
      else expect(mine.length, `${c.name}: catch-up runs`).toBeGreaterThan(0);
      if (c.deadline)
        for (const run of mine)
          expect(
            Date.parse(run.metadata.creationTimestamp as unknown as string) - scheduledMs(run),
            `${run.metadata.name} inside the deadline`,
          ).toBeLessThanOrEqual(c.deadline * 1000);
      const events = (
        await world.kc.makeApiClient(k8s.CoreV1Api).listNamespacedEvent({
          namespace: load.namespace,
          fieldSelector: `involvedObject.name=${c.name},reason=MissedRuns`,
        })
      ).items;
      expect(events.length, `${c.name}: a MissedRuns Event`).toBeGreaterThan(0);
      results[`${c.name}.catchUpRuns`] = mine.length;
      results[`${c.name}.missed`] = runs["missed"] ?? 0;
    }
    // Idle means idle: a controller that spun on the backlog would reconcile continuously (each
    // reconcile takes milliseconds: thousands in 20 s). What remains are the periodic look-agains
    // of coalesced status writes (docs/controller.md), a few per object at most.
    expect(reconciles, "reconciles in 20 idle seconds").toBeLessThan(100);
    report(
      world,
      "controller started with three weeks of backlog (every 3 s)",
      {
        ...ZERO,
        periodicTasks: cases.length,
        scheduled: fireTimes * cases.length,
        runs: tasks.length,
        missed: cases.reduce((n, c) => n + Number(results[`${c.name}.missed`]), 0),
        succeeded: tasks.filter((t) => t.status?.phase === "Succeeded").length,
      },
      results,
    );
  });
});
