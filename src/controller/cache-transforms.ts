/**
 * What the controller's informer caches keep of each object (the informers' `transform`).
 *
 * Every object is kept without its bookkeeping (managedFields, kubectl's last-applied
 * configuration) and with its repeated strings shared (runtime/cache-transform.ts).
 *
 * A finished Task (Succeeded, Failed, Expired, Cancelled) also loses the payload of its request
 * and of its outcome: `spec.args`, `spec.kwargs`, `spec.headers`, `status.result`,
 * `status.resultPreview`, `status.error.message` and `status.error.traceback`. They stay on the
 * API server, for `kubectl get` and for users; nothing in the controller reads them once a Task
 * has finished:
 *
 * - the PeriodicTask reconciler reads a run's name, uid, annotations, phase, startTime and
 *   completionTime (`runView`);
 * - the Task reconciler parses the Task (the dropped spec fields are optional: parsing gives the
 *   same result but for their values), stops at a finished phase and only waits for
 *   `ttlSecondsAfterFinished` from `completionTime`. Its one write to a finished Task (one the
 *   schema no longer accepts) is a merge patch of the cached status plus a condition, which leaves
 *   the fields it does not name as they are on the server;
 * - executors, the only readers of `args`, `kwargs` and `headers`, see Tasks that have not finished.
 * A finished Task never changes phase again, so nothing it loses here is needed later. A reconciler
 * that comes to read one of these fields of a finished Task must read it from the API server, or
 * change this list. (`jobTemplate` is kept: without it a Task naming no `task` would not parse.)
 *
 * The fields are set to `undefined` rather than deleted, like the bookkeeping: the object keeps
 * the compact layout JSON.parse gave it (see runtime/cache-transform.ts); JSON.stringify and
 * merge patches leave undefined fields out.
 *
 * docs/benchmarks.md ("Controller footprint") has the measurements.
 */
import type { KubernetesObject, V1Job } from "@kubernetes/client-node";
import { FINISHED_TASK_PHASES, type TaskPhase } from "../api/index.ts";
import {
  dropBookkeeping,
  internConditions,
  internMetadata,
  type StringPool,
} from "../runtime/cache-transform.ts";

type Fields = Record<string, unknown>;

const isRecord = (value: unknown): value is Fields =>
  typeof value === "object" && value !== null && !Array.isArray(value);

const FINISHED: readonly unknown[] = FINISHED_TASK_PHASES satisfies readonly TaskPhase[];

/** The fields of a finished Task no reconciler reads (see above). */
const FINISHED_TASK_PAYLOAD = {
  spec: ["args", "kwargs", "headers"],
  status: ["result", "resultPreview"],
  error: ["message", "traceback"],
} as const;

/** Sets `fields` of `record` that hold a value to undefined. */
function clear(record: unknown, fields: readonly string[]): void {
  if (!isRecord(record)) return;
  for (const field of fields) if (record[field] !== undefined) record[field] = undefined;
}

function arrayOf(value: unknown): object[] | undefined {
  return Array.isArray(value) ? value.filter((item): item is object => isRecord(item)) : undefined;
}

/** The Task cache's transform. */
export function cachedTask(pool: StringPool): (obj: KubernetesObject) => KubernetesObject {
  return (obj) => {
    dropBookkeeping(obj);
    internMetadata(obj, pool);
    const { spec, status } = obj as KubernetesObject & { spec?: unknown; status?: unknown };
    if (isRecord(spec)) pool.internFields([spec], ["task", "queue"]);
    if (!isRecord(status)) return obj;
    if (FINISHED.includes(status["phase"])) {
      clear(spec, FINISHED_TASK_PAYLOAD.spec);
      clear(status, FINISHED_TASK_PAYLOAD.status);
      clear(status["error"], FINISHED_TASK_PAYLOAD.error);
    }
    pool.internFields([status], ["phase", "scheduledTime", "worker"]);
    pool.internFields(arrayOf([status["error"]]), ["type", "reason"]);
    internConditions(arrayOf(status["conditions"]), pool);
    return obj;
  };
}

/** The PeriodicTask cache's transform: the spec and status are kept whole (runs are made from them). */
export function cachedPeriodicTask(pool: StringPool): (obj: KubernetesObject) => KubernetesObject {
  return (obj) => {
    dropBookkeeping(obj);
    internMetadata(obj, pool);
    const { spec, status } = obj as KubernetesObject & { spec?: unknown; status?: unknown };
    if (isRecord(spec)) pool.internFields([spec], ["schedule", "timeZone", "concurrencyPolicy", "catchUp"]);
    if (isRecord(status)) {
      internConditions(arrayOf(status["conditions"]), pool);
      pool.internFields(arrayOf(status["recentRuns"]), ["phase"]);
    }
    return obj;
  };
}

/** The Job cache's transform. */
export function cachedJob(pool: StringPool): (job: V1Job) => V1Job {
  return (job) => {
    dropBookkeeping(job);
    internMetadata(job, pool);
    return job;
  };
}
