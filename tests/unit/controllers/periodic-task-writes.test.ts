/**
 * The PeriodicTask reconciler's API writes (docs/benchmarks.md, "API writes per run"): runs made
 * on time share one status write a few seconds after the first of them, and that write records
 * every run made — also one the informer cache does not show yet; anything else a user must see
 * is written at once; a graceful stop writes what waits; a run beyond the history limits is asked
 * to be deleted once. The API server is a fake that records each write.
 */
import type { BatchV1Api, CoreV1Event, CustomObjectsApi, KubernetesObject } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { PeriodicTaskReconciler } from "../../../src/controllers/periodic-task.ts";
import { scheduledRunName } from "../../../src/controllers/runs.ts";
import { ROUTINE_WRITE_DELAY_MS } from "../../../src/controllers/status-coalescing.ts";
import { EventRecorder } from "../../../src/runtime/events.ts";
import { silentLogger } from "../../../src/runtime/logger.ts";
import { ObjectStore } from "../../../src/runtime/store.ts";

const NS = "ns";
const PT = "report";
const PT_UID = "uid-report";
const iso = (t: Date): string => t.toISOString().replace(/\.\d{3}Z$/, "Z");
const plus = (t: Date, ms: number): Date => new Date(t.getTime() + ms);

// Named instants of a PeriodicTask firing every 2 s; its status records the run at LAST.
const LAST = new Date("2027-01-01T10:00:00Z");
const NEXT = plus(LAST, 2_000);
const AFTER_NEXT = plus(LAST, 4_000);
const THIRD = plus(LAST, 6_000);
/** The first unwritten run was seen at NEXT: by now its write is due. */
const WRITE_DUE = plus(NEXT, ROUTINE_WRITE_DELAY_MS + 100);

function periodicTask(status: Record<string, unknown>, spec: Record<string, unknown> = {}): KubernetesObject {
  return {
    apiVersion: "cadent.dev/v1alpha1",
    kind: "PeriodicTask",
    metadata: {
      namespace: NS,
      name: PT,
      uid: PT_UID,
      generation: 1,
      resourceVersion: "10",
      creationTimestamp: "2027-01-01T09:00:00Z",
    },
    spec: { schedule: "*/2 * * * * *", taskTemplate: { spec: { task: "app.tasks.add" } }, ...spec },
    status,
  } as unknown as KubernetesObject;
}

/** The status written at LAST, with `finished` succeeded runs before it. */
function writtenAtLast(finished = 0): Record<string, unknown> {
  return {
    nextScheduleTime: iso(NEXT),
    lastScheduleTime: iso(LAST),
    active: [],
    activeCount: 0,
    runs: { total: finished, succeeded: finished, failed: 0, missed: 0, skipped: 0 },
    recentRuns: [],
    conditions: [
      {
        type: "Ready",
        status: "True",
        reason: "Scheduled",
        message: `next run at ${iso(NEXT)}`,
        lastTransitionTime: "2027-01-01T09:00:00Z",
        observedGeneration: 1,
      },
    ],
    observedGeneration: 1,
  };
}

/** A succeeded run at `t`, as the Task cache holds it. */
function succeededRun(t: Date): KubernetesObject {
  const name = scheduledRunName(PT, t);
  return {
    apiVersion: "cadent.dev/v1alpha1",
    kind: "Task",
    metadata: {
      namespace: NS,
      name,
      uid: `uid-${name}`,
      annotations: { "cadent.dev/scheduled-time": iso(t), "cadent.dev/trigger": "schedule" },
      ownerReferences: [
        { apiVersion: "cadent.dev/v1alpha1", kind: "PeriodicTask", name: PT, uid: PT_UID, controller: true },
      ],
    },
    spec: { task: "app.tasks.add" },
    status: { phase: "Succeeded", completionTime: iso(plus(t, 500)) },
  } as unknown as KubernetesObject;
}

function world(pt: KubernetesObject, runs: KubernetesObject[] = []) {
  const periodicTasks = new ObjectStore<KubernetesObject>();
  periodicTasks.upsert(pt);
  const tasks = new ObjectStore<KubernetesObject>();
  for (const run of runs) tasks.upsert(run);
  const created: string[] = [];
  const deleted: string[] = [];
  const statuses: Record<string, unknown>[] = [];
  let resourceVersion = 10;
  const customObjects = {
    createNamespacedCustomObject: async ({ body }: { body: KubernetesObject }) => {
      created.push(body.metadata?.name ?? "");
      return { ...body, metadata: { ...body.metadata, uid: `uid-${body.metadata?.name ?? ""}` } };
    },
    patchNamespacedCustomObjectStatus: async ({ body }: { body: { status: Record<string, unknown> } }) => {
      statuses.push(body.status);
      resourceVersion += 1;
      return { ...pt, metadata: { ...pt.metadata, resourceVersion: String(resourceVersion) } };
    },
    // A live read: every run the fake made exists.
    getNamespacedCustomObject: async ({ name }: { name: string }) => ({ metadata: { name } }),
    deleteNamespacedCustomObject: async ({ name }: { name: string }) => {
      deleted.push(name);
      return {};
    },
  } as unknown as CustomObjectsApi;
  const events: CoreV1Event[] = [];
  const recorder = new EventRecorder({
    sink: {
      create: async (_namespace, event) => {
        events.push(event);
        return event;
      },
      patch: async () => ({}) as CoreV1Event,
    },
  });
  let now = LAST;
  const reconciler = new PeriodicTaskReconciler({
    periodicTasks,
    tasks,
    customObjects,
    batch: {} as BatchV1Api,
    events: recorder,
    metrics: undefined,
    logger: silentLogger,
    now: () => now,
    isLeading: () => true,
  });
  return {
    reconciler,
    created,
    deleted,
    statuses,
    reasons: async () => {
      await recorder.flush();
      return events.map((e) => e.reason);
    },
    at: (t: Date) => {
      now = t;
    },
    /** The informer delivers a newer copy of the PeriodicTask. */
    observe: (status: Record<string, unknown>) =>
      periodicTasks.upsert({
        ...periodicTask(status),
        metadata: { ...pt.metadata, resourceVersion: String(resourceVersion) },
      }),
  };
}

describe("the PeriodicTask reconciler's writes", () => {
  it("runs made on time share one status write, due a few seconds after the first, recording every run", async () => {
    const w = world(periodicTask(writtenAtLast()));
    w.at(NEXT);
    await w.reconciler.reconcile(`${NS}/${PT}`);
    w.at(AFTER_NEXT);
    await w.reconciler.reconcile(`${NS}/${PT}`);
    expect(w.created, "runs made").toEqual([scheduledRunName(PT, NEXT), scheduledRunName(PT, AFTER_NEXT)]);
    expect(w.statuses, "status writes before the first run has waited").toEqual([]);
    expect(await w.reasons(), "each run announced when made").toEqual(["RunCreated", "RunCreated"]);

    // The cache has shown neither run so far: the write still records both, and the one due since.
    w.at(WRITE_DUE);
    await w.reconciler.reconcile(`${NS}/${PT}`);
    expect(w.created).toHaveLength(3);
    expect(w.statuses).toHaveLength(1);
    expect(w.statuses[0]).toMatchObject({
      lastScheduleTime: iso(THIRD),
      runs: { total: 3, missed: 0 },
      activeCount: 3,
    });
  });

  it("looks again when the waiting write is due, or at the next fire time if sooner", async () => {
    const w = world(periodicTask(writtenAtLast()));
    w.at(NEXT);
    const action = await w.reconciler.reconcile(`${NS}/${PT}`);
    expect(action.requeueAfterMs).toBe(AFTER_NEXT.getTime() - NEXT.getTime() + 100);
  });

  it("writes at once what a user must see: here a missed time", async () => {
    const w = world(periodicTask(writtenAtLast()));
    // NEXT is past; AFTER_NEXT is due: catchUp Latest runs the newest and counts NEXT missed.
    w.at(plus(AFTER_NEXT, 500));
    await w.reconciler.reconcile(`${NS}/${PT}`);
    expect(w.created).toEqual([scheduledRunName(PT, AFTER_NEXT)]);
    expect(w.statuses).toHaveLength(1);
    expect(w.statuses[0]).toMatchObject({ runs: { total: 1, missed: 1 } });
    expect(await w.reasons()).toEqual(["RunCreated", "MissedRuns"]);
  });

  it("a graceful stop writes what waits", async () => {
    const w = world(periodicTask(writtenAtLast()));
    w.at(NEXT);
    await w.reconciler.reconcile(`${NS}/${PT}`);
    expect(w.statuses).toEqual([]);
    w.reconciler.close();
    await w.reconciler.flush();
    expect(w.statuses).toHaveLength(1);
    expect(w.statuses[0]).toMatchObject({ lastScheduleTime: iso(NEXT), runs: { total: 1 } });
  });

  it("does not plan from a cache that has not caught up with its own write", async () => {
    const w = world(periodicTask(writtenAtLast()), []);
    w.at(plus(AFTER_NEXT, 500));
    await w.reconciler.reconcile(`${NS}/${PT}`);
    expect(w.statuses).toHaveLength(1);
    // Before the informer delivers that write, a Task event brings the PeriodicTask back.
    await w.reconciler.reconcile(`${NS}/${PT}`);
    expect(w.statuses, "no second write from the stale copy").toHaveLength(1);
    w.observe(w.statuses[0] ?? {});
    await w.reconciler.reconcile(`${NS}/${PT}`);
    expect(w.created, "and no run made twice").toEqual([scheduledRunName(PT, AFTER_NEXT)]);
  });

  it("asks once to delete a run beyond the history limit, however often it reconciles before the cache drops it", async () => {
    const history = [-8_000, -6_000, -4_000, -2_000].map((ms) => succeededRun(plus(LAST, ms)));
    const w = world(periodicTask(writtenAtLast(4)), history);
    w.at(plus(LAST, 500));
    await w.reconciler.reconcile(`${NS}/${PT}`);
    await w.reconciler.reconcile(`${NS}/${PT}`);
    expect(w.deleted).toEqual([scheduledRunName(PT, plus(LAST, -8_000))]);
  });
});
