/**
 * End to end on the real control plane: `cadent controller` (a real process) reconciles
 * PeriodicTasks and Tasks with the Job executor; the real Job controller, scheduler and kwok's
 * fake Node run the Jobs. Every assertion reads objects back from the API server.
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

const phase = (o: CadentObject): string | undefined => o.status?.phase;
const runsOf = (o: CadentObject): Record<string, number> =>
  (o.status?.["runs"] ?? {}) as Record<string, number>;
const ready = (o: CadentObject) => o.status?.conditions?.find((c) => c.type === "Ready");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.runIf(inject("jobsRun"))("the controller runs PeriodicTasks and Tasks as Jobs", () => {
  const kc = kubeConfig();
  const batch = kc.makeApiClient(k8s.BatchV1Api);
  let ns: Awaited<ReturnType<typeof createTestNamespace>>;
  let cadent: Cadent;
  let controller: ControllerProcess;

  beforeAll(async () => {
    await installCrds(kc);
    ns = await createTestNamespace(kc, "ctl-job");
    cadent = new Cadent(kc, ns.name);
    controller = await startControllerProcess({ namespace: ns.name });
  });
  afterAll(async () => {
    await controller?.stop();
    await ns?.cleanup();
  });

  it.concurrent(
    "makes a Task and a Job per run of a six-field schedule, with the result from the termination message",
    async () => {
      await cadent.create(
        "periodictasks",
        jobPeriodicTask(
          "every3",
          { schedule: "*/3 * * * * *" },
          { "test.cadent.dev/termination-message": '{"rows": 42}' },
        ),
      );
      const pt = await cadent.waitFor(
        "periodictasks",
        "every3",
        "two runs succeeded",
        (o) => (runsOf(o)["succeeded"] ?? 0) >= 2,
      );
      const runs = await cadent.runs("every3");
      const succeeded = runs.filter((r) => phase(r) === "Succeeded");
      expect(succeeded.length).toBeGreaterThanOrEqual(2);
      const run = succeeded[0] as CadentObject;
      const scheduled = run.metadata.annotations?.["cadent.dev/scheduled-time"] ?? "";
      expect(run.metadata.name).toBe(`every3-${Date.parse(scheduled) / 1000}`);
      expect(run.metadata.labels?.["cadent.dev/periodic-task"]).toBe("every3");
      expect(run.metadata.annotations?.["cadent.dev/trigger"]).toBe("schedule");
      expect(run.metadata.ownerReferences?.[0]).toMatchObject({
        kind: "PeriodicTask",
        name: "every3",
        controller: true,
      });
      expect(run.status).toMatchObject({
        phase: "Succeeded",
        result: { rows: 42 },
        resultPreview: '{"rows":42}',
        jobName: run.metadata.name,
        attempts: 1,
      });
      expect(run.status?.["taskId"]).toMatch(/^[0-9a-f-]{36}$/);
      for (const field of ["queuedTime", "startTime", "completionTime", "scheduledTime", "worker"]) {
        expect(run.status?.[field], field).toBeTruthy();
      }

      const job = await batch.readNamespacedJob({ namespace: ns.name, name: run.metadata.name ?? "" });
      expect(job.metadata?.labels?.["cadent.dev/task"]).toBe(run.metadata.name);
      expect(job.metadata?.ownerReferences?.[0]).toMatchObject({
        kind: "Task",
        name: run.metadata.name,
        controller: true,
      });
      expect(job.spec?.backoffLimit).toBe(0);
      const env = Object.fromEntries(
        (job.spec?.template.spec?.containers[0]?.env ?? []).map((e) => [e.name, e.value]),
      );
      expect(env).toMatchObject({
        CADENT_TASK_ID: run.status?.["taskId"],
        CADENT_TASK_NAME: "app.tasks.report",
        CADENT_ARGS: '[1,"x"]',
        CADENT_KWARGS: "{}",
        CADENT_SCHEDULED_TIME: scheduled,
      });

      expect(pt.status).toMatchObject({ observedGeneration: 1 });
      for (const field of ["lastScheduleTime", "lastSuccessfulTime", "nextScheduleTime"]) {
        expect(pt.status?.[field], field).toBeTruthy();
      }
      expect(ready(pt)).toMatchObject({ status: "True", reason: "Scheduled" });
      const recent = pt.status?.["recentRuns"] as { name: string; phase: string }[];
      expect(recent.length).toBeGreaterThanOrEqual(2);
      expect(Date.parse(String(pt.status?.["nextScheduleTime"]))).toBeGreaterThan(
        Date.parse(String(pt.status?.["lastScheduleTime"])),
      );
    },
  );

  it.concurrent("Forbid skips a run while the previous one is active, and counts it skipped", async () => {
    await cadent.create(
      "periodictasks",
      jobPeriodicTask(
        "forbid",
        { schedule: "*/2 * * * * *", concurrencyPolicy: "Forbid" },
        { "test.cadent.dev/outcome": "run-forever" },
      ),
    );
    const pt = await cadent.waitFor(
      "periodictasks",
      "forbid",
      "two skipped",
      (o) => (runsOf(o)["skipped"] ?? 0) >= 2,
    );
    const runs = await cadent.runs("forbid");
    expect(runs).toHaveLength(1);
    expect(runsOf(pt)["total"]).toBe(1);
    expect(pt.status?.["activeCount"]).toBe(1);
    const reasons = (await cadent.events(kc, "forbid")).map((e) => e.reason);
    expect(reasons).toContain("SkippedRun");
  });

  it.concurrent(
    "Replace cancels the active run (its Job deleted, phase Cancelled) and starts the new one",
    async () => {
      await cadent.create(
        "periodictasks",
        jobPeriodicTask(
          "replace",
          { schedule: "*/3 * * * * *", concurrencyPolicy: "Replace" },
          { "test.cadent.dev/outcome": "run-forever" },
        ),
      );
      await cadent.waitFor(
        "periodictasks",
        "replace",
        "a replaced run counted",
        (o) => (runsOf(o)["failed"] ?? 0) >= 1,
      );
      const runs = await cadent.runs("replace");
      const cancelled = runs.filter((r) => phase(r) === "Cancelled");
      expect(cancelled.length).toBeGreaterThanOrEqual(1);
      const first = cancelled[0] as CadentObject;
      expect(first.metadata.annotations?.["cadent.dev/cancel"]).toMatch(/^replaced by replace-\d+$/);
      await waitFor("the cancelled run's Job to be deleted", async () => {
        try {
          await batch.readNamespacedJob({ namespace: ns.name, name: first.metadata.name ?? "" });
          return false;
        } catch (err) {
          return err instanceof k8s.ApiException && err.code === 404;
        }
      });
      const active = runs.filter(
        (r) => !["Cancelled", "Succeeded", "Failed", "Expired"].includes(phase(r) ?? ""),
      );
      expect(active.length).toBeLessThanOrEqual(1);
    },
  );

  it.concurrent("suspend stops runs; run-now makes exactly one run per distinct token", async () => {
    await cadent.create(
      "periodictasks",
      jobPeriodicTask("manual", { schedule: "*/2 * * * * *", suspend: true }),
    );
    await cadent.waitFor(
      "periodictasks",
      "manual",
      "Ready (Suspended)",
      (o) => ready(o)?.reason === "Suspended",
    );
    await sleep(4_500);
    expect(await cadent.runs("manual")).toHaveLength(0);

    await cadent.patch("periodictasks", "manual", {
      metadata: { annotations: { "cadent.dev/run-now": "first" } },
    });
    await cadent.waitFor(
      "periodictasks",
      "manual",
      "the first token consumed",
      (o) => o.status?.["lastRunNowToken"] === "first",
    );
    // The same token again (an apply that rewrites it) makes nothing; a new token makes one more.
    await cadent.patch("periodictasks", "manual", { metadata: { labels: { touched: "yes" } } });
    await sleep(2_000);
    expect(await cadent.runs("manual")).toHaveLength(1);
    await cadent.patch("periodictasks", "manual", {
      metadata: { annotations: { "cadent.dev/run-now": "second" } },
    });
    await cadent.waitFor(
      "periodictasks",
      "manual",
      "the second token consumed",
      (o) => o.status?.["lastRunNowToken"] === "second",
    );
    const runs = await cadent.runs("manual");
    expect(runs).toHaveLength(2);
    expect(runs.map((r) => r.metadata.annotations?.["cadent.dev/trigger"])).toEqual(["manual", "manual"]);
    expect(runs.every((r) => /^manual-m[0-9a-f]{9}$/.test(r.metadata.name ?? ""))).toBe(true);
  });

  it.concurrent("history limits prune old finished runs while the counters keep counting", async () => {
    await cadent.create(
      "periodictasks",
      jobPeriodicTask("history", {
        schedule: "*/2 * * * * *",
        successfulRunsHistoryLimit: 1,
        failedRunsHistoryLimit: 0,
      }),
    );
    await cadent.waitFor(
      "periodictasks",
      "history",
      "four runs succeeded",
      (o) => (runsOf(o)["succeeded"] ?? 0) >= 4,
    );
    await waitFor("pruning to catch up", async () => {
      const finished = (await cadent.runs("history")).filter((r) => phase(r) === "Succeeded");
      return finished.length <= 1;
    });
  });

  it.concurrent("a failing Job ends Failed with the exit code and message, and a Warning Event", async () => {
    await cadent.create("tasks", {
      apiVersion: "cadent.dev/v1alpha1",
      kind: "Task",
      metadata: { name: "fails" },
      spec: {
        jobTemplate: {
          spec: {
            template: {
              metadata: {
                annotations: {
                  "test.cadent.dev/outcome": "fail",
                  "test.cadent.dev/exit-code": "3",
                  "test.cadent.dev/termination-message": "disk full",
                },
              },
              spec: { containers: [{ name: "main", image: "busybox" }] },
            },
          },
        },
      },
    });
    const task = await cadent.waitFor("tasks", "fails", "Failed", (o) => phase(o) === "Failed");
    expect(task.status?.["error"]).toMatchObject({
      exitCode: 3,
      type: "Error",
      reason: "BackoffLimitExceeded",
    });
    expect(String((task.status?.["error"] as { message: string }).message)).toContain("disk full");
    await waitFor("a Warning Event", async () =>
      (await cadent.events(kc, "fails")).some(
        (e) => e.type === "Warning" && e.reason === "BackoffLimitExceeded",
      ),
    );
  });

  it.concurrent("timeoutSeconds ends a Task that runs too long Failed, reason TimedOut", async () => {
    await cadent.create("tasks", {
      apiVersion: "cadent.dev/v1alpha1",
      kind: "Task",
      metadata: { name: "too-slow" },
      spec: {
        timeoutSeconds: 2,
        jobTemplate: {
          spec: {
            template: {
              metadata: { annotations: { "test.cadent.dev/outcome": "run-forever" } },
              spec: { containers: [{ name: "main", image: "busybox" }] },
            },
          },
        },
      },
    });
    const task = await cadent.waitFor("tasks", "too-slow", "Failed", (o) => phase(o) === "Failed");
    expect(task.status?.["error"]).toMatchObject({ reason: "TimedOut" });
    const job = await batch.readNamespacedJob({ namespace: ns.name, name: "too-slow" });
    expect(job.spec?.activeDeadlineSeconds).toBe(2);
  });

  it.concurrent(
    "a Task with an eta waits Scheduled, then runs; one with a past expiry ends Expired",
    async () => {
      const eta = new Date(Date.now() + 4_000).toISOString().replace(/\.\d{3}Z$/, "Z");
      const template = { spec: { template: { spec: { containers: [{ name: "main", image: "busybox" }] } } } };
      await cadent.create("tasks", {
        apiVersion: "cadent.dev/v1alpha1",
        kind: "Task",
        metadata: { name: "later" },
        spec: { eta, jobTemplate: template },
      });
      await cadent.create("tasks", {
        apiVersion: "cadent.dev/v1alpha1",
        kind: "Task",
        metadata: { name: "stale" },
        spec: { eta, expires: 1, jobTemplate: template },
      });
      const waiting = await cadent.waitFor("tasks", "later", "Scheduled", (o) => phase(o) === "Scheduled");
      expect(waiting.status?.["scheduledTime"]).toBe(eta);
      const done = await cadent.waitFor("tasks", "later", "Succeeded", (o) => phase(o) === "Succeeded");
      expect(Date.parse(String(done.status?.["queuedTime"]))).toBeGreaterThanOrEqual(Date.parse(eta));
      await cadent.waitFor("tasks", "stale", "Expired", (o) => phase(o) === "Expired");
      await expect(batch.readNamespacedJob({ namespace: ns.name, name: "stale" })).rejects.toMatchObject({
        code: 404,
      });
    },
  );

  it.concurrent(
    "countdown delays a Task; ttlSecondsAfterFinished deletes it and its Job after it finishes",
    async () => {
      const created = await cadent.create("tasks", {
        apiVersion: "cadent.dev/v1alpha1",
        kind: "Task",
        metadata: { name: "short-lived" },
        spec: {
          countdown: 2,
          ttlSecondsAfterFinished: 2,
          jobTemplate: { spec: { template: { spec: { containers: [{ name: "main", image: "busybox" }] } } } },
        },
      });
      const done = await cadent.waitFor("tasks", "short-lived", "Succeeded", (o) => phase(o) === "Succeeded");
      const createdAt = Date.parse(String(created.metadata.creationTimestamp));
      expect(Date.parse(String(done.status?.["queuedTime"]))).toBeGreaterThanOrEqual(createdAt + 2_000);
      await waitFor("the Task and its Job to be deleted", async () => {
        const gone = async (read: () => Promise<unknown>) =>
          read().then(
            () => false,
            (err: unknown) => err instanceof k8s.ApiException && err.code === 404,
          );
        return (
          (await gone(() => cadent.get("tasks", "short-lived"))) &&
          (await gone(() => batch.readNamespacedJob({ namespace: ns.name, name: "short-lived" })))
        );
      });
    },
  );

  it.concurrent(
    "an invalid schedule and an invalid jobTemplate give Ready=False, an Event, and no runs",
    async () => {
      await cadent.create("periodictasks", jobPeriodicTask("never", { schedule: "0 0 30 2 *" }));
      await cadent.create(
        "periodictasks",
        jobPeriodicTask("badzone", { schedule: "* * * * *", timeZone: "Mars/Olympus" }),
      );
      const badTemplate = jobPeriodicTask("badtemplate", { schedule: "*/2 * * * * *" }) as {
        spec: {
          taskTemplate: {
            spec: { jobTemplate: { spec: { template: { spec: { containers: unknown[] } } } } };
          };
        };
      };
      badTemplate.spec.taskTemplate.spec.jobTemplate.spec.template.spec.containers = [{ name: "main" }];
      await cadent.create("periodictasks", badTemplate);

      const never = await cadent.waitFor(
        "periodictasks",
        "never",
        "Ready=False",
        (o) => ready(o)?.status === "False",
      );
      expect(ready(never)).toMatchObject({ reason: "InvalidSchedule" });
      expect(ready(never)?.message).toMatch(/never/);
      const zone = await cadent.waitFor(
        "periodictasks",
        "badzone",
        "Ready=False",
        (o) => ready(o)?.status === "False",
      );
      expect(ready(zone)).toMatchObject({ reason: "UnknownTimeZone" });
      expect(ready(zone)?.message).toContain("Mars/Olympus");
      const template = await cadent.waitFor(
        "periodictasks",
        "badtemplate",
        "Ready=False",
        (o) => ready(o)?.status === "False",
      );
      expect(ready(template)).toMatchObject({ reason: "InvalidTemplate" });
      expect(ready(template)?.message).toMatch(/image/);
      await sleep(3_000);
      for (const name of ["never", "badzone", "badtemplate"]) {
        expect(await cadent.runs(name), name).toHaveLength(0);
        const events = await cadent.events(kc, name);
        expect(
          events.some((e) => e.type === "Warning"),
          name,
        ).toBe(true);
      }
      // The controller keeps reconciling everything else.
      await cadent.create("periodictasks", jobPeriodicTask("alongside", { schedule: "*/2 * * * * *" }));
      await cadent.waitFor(
        "periodictasks",
        "alongside",
        "a run succeeded",
        (o) => (runsOf(o)["succeeded"] ?? 0) >= 1,
      );
    },
  );

  it.concurrent("deleting a PeriodicTask deletes its Tasks and their Jobs", async () => {
    await cadent.create(
      "periodictasks",
      jobPeriodicTask("doomed", { schedule: "*/2 * * * * *" }, { "test.cadent.dev/outcome": "run-forever" }),
    );
    await cadent.waitFor("periodictasks", "doomed", "two runs", (o) => (runsOf(o)["total"] ?? 0) >= 2);
    const names = (await cadent.runs("doomed")).map((r) => r.metadata.name ?? "");
    await cadent.delete("periodictasks", "doomed");
    await waitFor(
      "the garbage collector to delete the runs and their Jobs",
      async () => {
        const tasks = await cadent.runs("doomed");
        const jobs = await batch.listNamespacedJob({ namespace: ns.name });
        return tasks.length === 0 && !jobs.items.some((j) => names.includes(j.metadata?.name ?? ""));
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
  });
});
