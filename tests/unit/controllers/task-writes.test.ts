/**
 * The Task reconciler's status writes: a detail of a started Task's phase (a Job's start time,
 * its attempt count) waits a few seconds for the next phase; a new phase is written at once; and
 * a pass over a cache that does not show the reconciler's own last write yet writes nothing.
 */
import type { CustomObjectsApi, KubernetesObject } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import type { Executor, Observation } from "../../../src/executors/executor.ts";
import { TaskReconciler } from "../../../src/controllers/task.ts";
import { ROUTINE_WRITE_DELAY_MS } from "../../../src/controllers/status-coalescing.ts";
import { EventRecorder } from "../../../src/runtime/events.ts";
import { silentLogger } from "../../../src/runtime/logger.ts";
import { ObjectStore } from "../../../src/runtime/store.ts";

const POD_STARTED = new Date("2027-01-01T10:00:01Z");
const RUNNING_SEEN = new Date("2027-01-01T10:00:02Z");

const queuedStatus = {
  phase: "Queued",
  taskId: "uid-t",
  scheduledTime: "2027-01-01T10:00:00Z",
  queuedTime: "2027-01-01T10:00:00Z",
  jobName: "t",
  attempts: 0,
  conditions: [
    {
      type: "Progressing",
      status: "True",
      reason: "JobCreated",
      message: "created Job t",
      lastTransitionTime: "2027-01-01T10:00:00Z",
    },
  ],
  observedGeneration: 1,
};

function task(status: Record<string, unknown>, resourceVersion: string): KubernetesObject {
  return {
    apiVersion: "cadent.dev/v1alpha1",
    kind: "Task",
    metadata: {
      namespace: "ns",
      name: "t",
      uid: "uid-t",
      generation: 1,
      resourceVersion,
      creationTimestamp: "2027-01-01T10:00:00Z",
    },
    spec: { task: "app.tasks.report", jobTemplate: { spec: { template: { spec: { containers: [] } } } } },
    status,
  } as unknown as KubernetesObject;
}

describe("the Task reconciler's writes", () => {
  it("lets a queued Job's start time wait for the next phase, writes Running at once, and skips a stale cache", async () => {
    const tasks = new ObjectStore<KubernetesObject>();
    tasks.upsert(task(queuedStatus, "1"));
    const written: Record<string, unknown>[] = [];
    const customObjects = {
      patchNamespacedCustomObjectStatus: async ({ body }: { body: { status: Record<string, unknown> } }) => {
        written.push(body.status);
        return task({}, String(written.length + 1));
      },
    } as unknown as CustomObjectsApi;
    let observation: Observation = { phase: "Queued" };
    let syncs = 0;
    const job: Executor = {
      kind: "job",
      sync: async () => {
        syncs += 1;
        return observation;
      },
      cancel: async () => undefined,
    };
    let now = POD_STARTED;
    const reconciler = new TaskReconciler({
      tasks,
      periodicTasks: new ObjectStore<KubernetesObject>(),
      customObjects,
      executors: { job, redis: undefined },
      events: new EventRecorder({
        sink: {
          create: async (_ns, e) => e,
          patch: async (_ns, _n, _p) => ({ involvedObject: {}, metadata: {} }),
        },
      }),
      metrics: undefined,
      logger: silentLogger,
      now: () => now,
    });

    observation = {
      phase: "Queued",
      jobName: "t",
      attempts: 1,
      startTime: "2027-01-01T10:00:01Z",
      reason: "JobCreated",
      message: "Job t is waiting for its Pod",
    };
    const waiting = await reconciler.reconcile("ns/t");
    expect(written, "a detail of the Queued phase").toEqual([]);
    expect(waiting.requeueAfterMs).toBe(ROUTINE_WRITE_DELAY_MS + 100);

    now = RUNNING_SEEN;
    observation = { ...observation, phase: "Running", reason: "Running", message: "Job t is running" };
    await reconciler.reconcile("ns/t");
    expect(written, "Running, with the Job's start time and attempt count").toHaveLength(1);
    expect(written[0]).toMatchObject({ phase: "Running", startTime: "2027-01-01T10:00:01Z", attempts: 1 });

    const before = syncs;
    await reconciler.reconcile("ns/t");
    expect(syncs, "no pass over the copy from before the write").toBe(before);
    expect(written).toHaveLength(1);
  });
});
