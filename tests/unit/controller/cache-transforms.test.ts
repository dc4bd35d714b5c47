import { describe, expect, it } from "vitest";
import type { KubernetesObject } from "@kubernetes/client-node";
import { FINISHED_TASK_PHASES, parseTask } from "../../../src/api/index.ts";
import { cachedPeriodicTask, cachedTask } from "../../../src/controller/cache-transforms.ts";
import { runView } from "../../../src/controllers/periodic-task.ts";
import { StringPool } from "../../../src/runtime/cache-transform.ts";

const SCHEDULED = "2026-11-01T03:00:00Z";
const FINISHED_AT = "2026-11-01T03:04:10Z";
const managedFields = [{ manager: "cadent", operation: "Update", subresource: "status" }];

/** A run of PeriodicTask `nightly` in `phase`, as the API server sends it. */
function run(phase: string): KubernetesObject & { spec: object; status: Record<string, unknown> } {
  return {
    apiVersion: "cadent.dev/v1alpha1",
    kind: "Task",
    metadata: {
      name: "nightly-1793502000",
      namespace: "reports",
      uid: "7d2e",
      resourceVersion: "4410",
      generation: 1,
      labels: { "cadent.dev/periodic-task": "nightly" },
      annotations: { "cadent.dev/scheduled-time": SCHEDULED, "cadent.dev/trigger": "schedule" },
      ownerReferences: [
        {
          apiVersion: "cadent.dev/v1alpha1",
          kind: "PeriodicTask",
          name: "nightly",
          uid: "9a",
          controller: true,
        },
      ],
      managedFields,
    },
    spec: {
      task: "app.tasks.export",
      args: [1, "x"],
      kwargs: { tenant: "acme" },
      ttlSecondsAfterFinished: 86_400,
    },
    status: {
      phase,
      taskId: "0b6d6e4c-5b1e-5f7a-9a43-0f3f4bd1a8c2",
      attempts: 1,
      scheduledTime: SCHEDULED,
      queuedTime: SCHEDULED,
      startTime: "2026-11-01T03:00:01Z",
      completionTime: FINISHED_AT,
      worker: "celery@worker-1",
      result: { rows: 12_000, files: ["s3://exports/part-0000.parquet"] },
      resultPreview: '{"rows":12000,"files":["s3://exports/part-0000.parquet"]}',
      error: {
        type: "ConnectionError",
        reason: "TaskFailed",
        message: "timed out",
        traceback: "Traceback …",
      },
      conditions: [
        { type: "Finished", status: "True", reason: phase, message: phase, lastTransitionTime: FINISHED_AT },
      ],
      observedGeneration: 1,
    },
  };
}

describe("cachedTask", () => {
  it.each(FINISHED_TASK_PHASES.map((phase) => ({ phase })))(
    "a $phase Task keeps everything the reconcilers read, and loses its arguments, result and error text",
    ({ phase }) => {
      const cached = cachedTask(new StringPool())(run(phase)) as ReturnType<typeof run>;
      const { result: _r, resultPreview: _p, error: _e, ...kept } = run(phase).status;
      expect(JSON.parse(JSON.stringify(cached.status))).toEqual({
        ...kept,
        error: { type: "ConnectionError", reason: "TaskFailed" },
      });
      expect(JSON.parse(JSON.stringify(cached.spec))).toEqual({
        task: "app.tasks.export",
        ttlSecondsAfterFinished: 86_400,
      });
      expect(runView(cached)).toEqual(runView(run(phase)));
      const parsed = parseTask(cached);
      expect(parsed.ok && parsed.value.spec.ttlSecondsAfterFinished).toBe(86_400);
      expect(cached.metadata).toEqual({ ...run(phase).metadata, managedFields: undefined });
    },
  );

  it.each(["Pending", "Scheduled", "Queued", "Running", "Retrying"].map((phase) => ({ phase })))(
    "a $phase Task keeps its whole spec and status: the executors and reconcilers work from them",
    ({ phase }) => {
      const cached = cachedTask(new StringPool())(run(phase)) as ReturnType<typeof run>;
      expect(cached).toEqual({
        ...run(phase),
        metadata: { ...run(phase).metadata, managedFields: undefined },
      });
    },
  );
});

describe("cachedPeriodicTask", () => {
  it("keeps the spec and status whole (runs are made from the template), without bookkeeping", () => {
    const pt = {
      apiVersion: "cadent.dev/v1alpha1",
      kind: "PeriodicTask",
      metadata: {
        name: "nightly",
        namespace: "reports",
        annotations: {
          "kubectl.kubernetes.io/last-applied-configuration": "{}\n",
          "cadent.dev/run-now": "t1",
        },
        managedFields,
      },
      spec: {
        schedule: "0 3 * * *",
        timeZone: "Europe/Berlin",
        taskTemplate: { spec: { task: "app.tasks.export" } },
      },
      status: {
        lastScheduleTime: SCHEDULED,
        recentRuns: [{ name: "nightly-1793502000", scheduledTime: SCHEDULED, phase: "Succeeded" }],
        conditions: [{ type: "Ready", status: "True", reason: "Scheduled", message: "next run at …" }],
      },
    };
    const cached = cachedPeriodicTask(new StringPool())(structuredClone(pt));
    expect(cached).toEqual({
      ...pt,
      metadata: { ...pt.metadata, managedFields: undefined, annotations: { "cadent.dev/run-now": "t1" } },
    });
  });
});
