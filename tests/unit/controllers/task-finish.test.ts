/**
 * A Task's finish (Succeeded, Failed, Cancelled, Expired) is announced — its Event recorded and
 * its run counted — once, and only after the status that records it was written. A write that
 * conflicts (409: the cache was behind) makes the reconcile run again from the latest object; the
 * chaos suite saw that retry record a second "Succeeded" Event for one completion.
 */
import type { CoreV1Event, CustomObjectsApi, KubernetesObject } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import type { Executor, Observation } from "../../../src/executors/executor.ts";
import { TaskReconciler } from "../../../src/controllers/task.ts";
import { EventRecorder } from "../../../src/runtime/events.ts";
import { silentLogger } from "../../../src/runtime/logger.ts";
import { ObjectStore } from "../../../src/runtime/store.ts";
import { apiError } from "../runtime/fakes.ts";

const NOW = new Date("2026-03-01T06:00:10Z");
const CREATED = "2026-03-01T06:00:00Z";

/** A Task as the informer holds it: the API server's JSON, so its timestamps are strings. */
function task(extra: {
  annotations?: Record<string, string>;
  spec?: Record<string, unknown>;
}): KubernetesObject {
  return {
    apiVersion: "cadent.dev/v1alpha1",
    kind: "Task",
    metadata: {
      namespace: "ns",
      name: "t",
      uid: "uid-t",
      resourceVersion: "1",
      creationTimestamp: CREATED,
      annotations: extra.annotations ?? {},
    },
    spec: { task: "app.tasks.add", ...extra.spec },
    status: { phase: "Queued", queuedTime: CREATED, attempts: 1, taskId: "uid-t" },
  } as unknown as KubernetesObject;
}

const finishedWith = (observation: Observation): Executor => ({
  kind: "redis",
  sync: async () => observation,
  cancel: async () => undefined,
});

const cases: { when: string; obj: KubernetesObject; executor: Executor; reason: string }[] = [
  {
    when: "the executor reports Succeeded",
    obj: task({}),
    executor: finishedWith({ phase: "Succeeded", completionTime: CREATED, result: 3, reason: "Succeeded" }),
    reason: "Succeeded",
  },
  {
    when: "the executor reports Failed",
    obj: task({}),
    executor: finishedWith({
      phase: "Failed",
      completionTime: CREATED,
      reason: "TaskFailed",
      message: "boom",
    }),
    reason: "TaskFailed",
  },
  {
    when: "it is cancelled",
    obj: task({ annotations: { "cadent.dev/cancel": "replaced" } }),
    executor: finishedWith({ phase: "Queued" }),
    reason: "Cancelled",
  },
  {
    when: "it expired before it started",
    obj: { ...task({ spec: { expires: 5 } }), status: {} } as KubernetesObject,
    executor: finishedWith({ phase: "Queued" }),
    reason: "Expired",
  },
];

describe("a Task's finish is announced once, after its status is written", () => {
  it.each(cases)("when $when and the first finishing write conflicts", async ({ obj, executor, reason }) => {
    const tasks = new ObjectStore<KubernetesObject>();
    tasks.upsert(obj);
    let writes = 0;
    const customObjects = {
      patchNamespacedCustomObjectStatus: async () => {
        writes += 1;
        if (writes === 1) throw apiError(409, "Conflict", "the object has been modified");
        return obj;
      },
    } as unknown as CustomObjectsApi;
    const created: CoreV1Event[] = [];
    const bumps: Record<string, unknown>[] = [];
    const events = new EventRecorder({
      sink: {
        create: async (_namespace, event) => {
          created.push(event);
          return { ...event, metadata: { name: `e${created.length}` } };
        },
        patch: async (_namespace, _name, patch) => {
          bumps.push(patch);
          return {} as CoreV1Event;
        },
      },
    });
    const reconciler = new TaskReconciler({
      tasks,
      periodicTasks: new ObjectStore<KubernetesObject>(),
      customObjects,
      executors: { job: executor, redis: executor },
      events,
      metrics: undefined,
      logger: silentLogger,
      now: () => NOW,
    });

    await expect(reconciler.reconcile("ns/t"), "the conflicting write").rejects.toThrow(/changed/);
    await events.flush();
    expect(
      created.map((e) => e.reason),
      "Events before the finish is written",
    ).toEqual([]);

    await reconciler.reconcile("ns/t");
    await events.close();
    expect(
      created.map((e) => e.reason),
      "Events once it is written",
    ).toEqual([reason]);
    expect(bumps, "count bumps of that Event").toEqual([]);
  });
});
