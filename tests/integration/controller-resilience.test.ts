/**
 * The controller's guarantees under restarts, crashes and failover (product.md §5), counted on
 * the objects the API server holds: at most one run per scheduled time, and every scheduled time
 * either run or counted missed.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  Cadent,
  installCrds,
  jobPeriodicTask,
  startControllerProcess,
  type CadentObject,
  type ControllerProcess,
} from "../support/cadent.ts";
import { createTestNamespace, k8s, kubeConfig } from "../support/kube.ts";
import { waitFor } from "../support/ports.ts";

const runsOf = (o: CadentObject): Record<string, number> =>
  (o.status?.["runs"] ?? {}) as Record<string, number>;
const scheduledOf = (o: CadentObject): number =>
  Date.parse(o.metadata.annotations?.["cadent.dev/scheduled-time"] ?? "");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Fire times of a `*\/2 * * * * *` schedule t with after < t ≤ until (ms, whole even seconds). */
function everyTwoSeconds(after: number, until: number): number[] {
  const times: number[] = [];
  for (let t = Math.floor(after / 2000) * 2000 + 2000; t <= until; t += 2000) times.push(t);
  return times;
}

/**
 * The PeriodicTask's creation (second precision, as the controller reads it): every fire time
 * after it is a run or counted missed — also those that passed before the first controller's
 * first pass, which a slow start makes (its first run is then the newest due time, the older ones
 * missed).
 */
const createdAt = (o: CadentObject): number => Date.parse(String(o.metadata.creationTimestamp));

/** No scheduled time has two Tasks: the names are the lock, and the annotation agrees. */
function expectOneRunPerScheduledTime(runs: CadentObject[]): void {
  const times = runs.map(scheduledOf);
  expect(new Set(times).size, "Tasks with the same scheduled time").toBe(times.length);
  for (const run of runs)
    expect(run.metadata.name).toBe(
      `${run.metadata.labels?.["cadent.dev/periodic-task"]}-${scheduledOf(run) / 1000}`,
    );
}

describe.runIf(inject("jobsRun"))("the controller survives restarts, crashes and failover", () => {
  const kc = kubeConfig();
  const controllers: ControllerProcess[] = [];
  const namespaces: Awaited<ReturnType<typeof createTestNamespace>>[] = [];
  const setup = async (prefix: string): Promise<{ ns: string; cadent: Cadent }> => {
    const ns = await createTestNamespace(kc, prefix);
    namespaces.push(ns);
    return { ns: ns.name, cadent: new Cadent(kc, ns.name) };
  };
  const start = async (
    namespace: string,
    opts: Parameters<typeof startControllerProcess>[0] extends infer O ? Partial<O> : never = {},
  ) => {
    const c = await startControllerProcess({ namespace, ...opts });
    controllers.push(c);
    return c;
  };

  beforeAll(async () => {
    await installCrds(kc);
  });
  afterAll(async () => {
    await Promise.all(controllers.map((c) => c.stop()));
    await Promise.all(namespaces.map((n) => n.cleanup()));
  });

  it.concurrent(
    "after downtime, catchUp Latest makes one run and All one per time inside the deadline; the rest are counted missed",
    async () => {
      const { ns, cadent } = await setup("ctl-catchup");
      await cadent.create(
        "periodictasks",
        jobPeriodicTask("latest", {
          schedule: "*/2 * * * * *",
          catchUp: "Latest",
          successfulRunsHistoryLimit: 100,
        }),
      );
      await cadent.create(
        "periodictasks",
        jobPeriodicTask("all", {
          schedule: "*/2 * * * * *",
          catchUp: "All",
          startingDeadlineSeconds: 5,
          successfulRunsHistoryLimit: 100,
        }),
      );
      const first = await start(ns);
      for (const name of ["latest", "all"]) {
        await cadent.waitFor("periodictasks", name, "a run", (o) => (runsOf(o)["total"] ?? 0) >= 1);
      }
      await first.stop();
      const before = new Map<string, CadentObject>();
      for (const name of ["latest", "all"]) before.set(name, await cadent.get("periodictasks", name));
      await sleep(11_000); // five or six fire times with no controller
      const restartedAt = Date.now();
      await start(ns);
      for (const name of ["latest", "all"]) {
        await cadent.waitFor(
          "periodictasks",
          name,
          "a run after the restart",
          (o) => Date.parse(String(o.status?.["lastScheduleTime"] ?? 0)) > restartedAt,
        );
      }
      const second = controllers.at(-1) as ControllerProcess;
      await second.stop();

      for (const name of ["latest", "all"]) {
        const pt = await cadent.get("periodictasks", name);
        const runs = await cadent.runs(name);
        expectOneRunPerScheduledTime(runs);
        const lastBefore = Date.parse(String(before.get(name)?.status?.["lastScheduleTime"]));
        const lastAfter = Date.parse(String(pt.status?.["lastScheduleTime"]));
        // Conservation: every fire time since the PeriodicTask was made is a Task or counted missed, once.
        const fireTimes = everyTwoSeconds(createdAt(pt), lastAfter);
        expect(runs.length + (runsOf(pt)["missed"] ?? 0), `${name}: runs + missed`).toBe(fireTimes.length);
        expect(runsOf(pt)["total"]).toBe(runs.length);
        const catchUps = runs.filter((r) => r.metadata.annotations?.["cadent.dev/trigger"] === "catch-up");
        // The first pass of the restarted controller: the runs it made for the downtime. (Which
        // fire times that covers depends on how long the restart took, so it is read, not assumed.)
        const madeAfterRestart = runs.filter(
          (r) => Date.parse(String(r.metadata.creationTimestamp)) >= Math.floor(restartedAt / 1000) * 1000,
        );
        const firstAfterRestart = Math.min(...madeAfterRestart.map(scheduledOf));
        const downtime = (after: number) => everyTwoSeconds(lastBefore, after);
        if (name === "latest") {
          // Latest runs only the newest missed time (a plain run unless over 30 s late): every
          // older time of the downtime has no run and is counted missed.
          expect(
            runs.filter((r) => scheduledOf(r) > lastBefore && scheduledOf(r) < firstAfterRestart),
          ).toHaveLength(0);
          expect(catchUps.length).toBeLessThanOrEqual(1);
          // (Those counted before the downtime are the times a slow first start passed over.)
          const missedInDowntime =
            (runsOf(pt)["missed"] ?? 0) - (runsOf(before.get(name) as CadentObject)["missed"] ?? 0);
          expect(missedInDowntime).toBe(downtime(firstAfterRestart - 1).length);
          expect(missedInDowntime).toBeGreaterThanOrEqual(3);
        } else {
          // All runs each downtime time inside startingDeadlineSeconds (5 s): the older ones as
          // catch-up runs; the rest are counted missed.
          expect(
            catchUps.length,
            "All: a catch-up run per older time inside the deadline",
          ).toBeGreaterThanOrEqual(1);
          for (const run of catchUps) {
            const lateBy = Date.parse(String(run.metadata.creationTimestamp)) - scheduledOf(run);
            expect(lateBy, `${run.metadata.name} made within startingDeadlineSeconds`).toBeLessThanOrEqual(
              6_000,
            );
          }
          expect(runsOf(pt)["missed"]).toBeGreaterThanOrEqual(1);
        }
        const events = await cadent.events(kc, name);
        expect(
          events.some((e) => e.reason === "MissedRuns" && e.type === "Warning"),
          `${name}: MissedRuns Event`,
        ).toBe(true);
      }
    },
  );

  it.concurrent(
    "kill -9 right after a run was created and before its status was written: no duplicate, no lost run",
    async () => {
      const { ns, cadent } = await setup("ctl-crash");
      await cadent.create(
        "periodictasks",
        jobPeriodicTask("crashy", { schedule: "*/2 * * * * *", successfulRunsHistoryLimit: 100 }),
      );
      const doomed = await start(ns, {
        env: { CADENT_FAULT_INJECTION: "crash-after-run-created" },
        waitReady: false,
      });
      expect(await doomed.process.exited).toBe("SIGKILL");
      const orphan = await cadent.runs("crashy");
      expect(orphan, "the run created just before the crash").toHaveLength(1);
      const unrecorded = await cadent.get("periodictasks", "crashy");
      expect(runsOf(unrecorded)["total"] ?? 0, "status written before the crash").toBe(0);

      const healthy = await start(ns);
      await cadent.waitFor(
        "periodictasks",
        "crashy",
        "three runs succeeded",
        (o) => (runsOf(o)["succeeded"] ?? 0) >= 3,
      );
      await healthy.stop();
      const pt = await cadent.get("periodictasks", "crashy");
      const runs = await cadent.runs("crashy");
      expectOneRunPerScheduledTime(runs);
      expect(runs.map((r) => r.metadata.name)).toContain(orphan[0]?.metadata.name);
      expect(runsOf(pt)["total"], "every Task counted once").toBe(runs.length);
      const recent = (pt.status?.["recentRuns"] ?? []) as { name: string }[];
      expect(recent.map((r) => r.name)).toContain(orphan[0]?.metadata.name);
      const fireTimes = everyTwoSeconds(createdAt(pt), Date.parse(String(pt.status?.["lastScheduleTime"])));
      expect(runs.length + (runsOf(pt)["missed"] ?? 0), "runs + missed = fire times").toBe(fireTimes.length);
    },
  );

  it.concurrent(
    "two replicas: one leads; kill -9 the leader and the standby leads within 20 s; no scheduled time runs twice",
    async () => {
      const { ns, cadent } = await setup("ctl-ha");
      const coordination = kc.makeApiClient(k8s.CoordinationV1Api);
      const holder = async (): Promise<string | undefined> => {
        try {
          return (await coordination.readNamespacedLease({ namespace: ns, name: "cadent-controller" })).spec
            ?.holderIdentity;
        } catch {
          return undefined;
        }
      };
      const a = await start(ns, { identity: "replica-a" });
      const b = await start(ns, { identity: "replica-b" });
      await waitFor("a leader", async () => ["replica-a", "replica-b"].includes((await holder()) ?? ""));
      await cadent.create(
        "periodictasks",
        jobPeriodicTask("ha", { schedule: "*/2 * * * * *", successfulRunsHistoryLimit: 100 }),
      );
      await cadent.waitFor("periodictasks", "ha", "two runs", (o) => (runsOf(o)["total"] ?? 0) >= 2);

      const leaderId = await holder();
      const [leader, standby] = leaderId === "replica-a" ? [a, b] : [b, a];
      await leader.kill();
      const killedAt = Date.now();
      await waitFor("the standby to take the Lease", async () => (await holder()) === standby.identity, {
        timeoutMs: 30_000,
        intervalMs: 200,
      });
      const takeoverMs = Date.now() - killedAt;
      expect(takeoverMs, "takeover time").toBeLessThan(20_000);
      await cadent.waitFor(
        "periodictasks",
        "ha",
        "a run made by the new leader",
        (o) =>
          Date.parse(String(o.status?.["lastScheduleTime"] ?? 0)) > Date.now() - 3_000 &&
          Date.parse(String(o.status?.["lastScheduleTime"] ?? 0)) > killedAt + takeoverMs,
      );
      const metrics = await standby.get(standby.metricsPort, "/metrics");
      expect(metrics.body).toMatch(/^cadent_leader 1$/m);
      await standby.stop();

      const pt = await cadent.get("periodictasks", "ha");
      const runs = await cadent.runs("ha");
      expectOneRunPerScheduledTime(runs);
      expect(runsOf(pt)["total"]).toBe(runs.length);
      const fireTimes = everyTwoSeconds(createdAt(pt), Date.parse(String(pt.status?.["lastScheduleTime"])));
      expect(runs.length + (runsOf(pt)["missed"] ?? 0), "runs + missed = fire times").toBe(fireTimes.length);
    },
  );
});
