/**
 * The Task reconciler: takes a Task from Pending to a finished phase through its executor.
 *
 * 1. A finished Task only waits for `ttlSecondsAfterFinished`, then is deleted (with its Job).
 * 2. `cadent.dev/cancel` (set by a Replace, or by a user) cancels the work: phase Cancelled.
 * 3. Before its due time (`eta`, or creation + `countdown`) a Task is Scheduled; the controller
 *    holds it and looks again when it is due.
 * 4. A Task not started by `expires` ends Expired.
 * 5. Otherwise the executor starts or observes the work, and the status follows it.
 * The status is rebuilt from the previous status and the executor's observation on every pass,
 * and written only when it changed, conditional on the resourceVersion it was built from. A change
 * that only adds detail to a started Task's phase waits a few seconds for the next phase
 * (status-coalescing.ts); a new phase is written at once.
 */
import type { CustomObjectsApi, KubernetesObject } from "@kubernetes/client-node";
import {
  ANNOTATIONS,
  FINISHED_TASK_PHASES,
  TASK_PLURAL,
  parseTask,
  type Condition,
  type Task,
  type TaskPhase,
  type TaskStatus,
} from "../api/index.ts";
import type { Executor, Observation, TaskContext } from "../executors/executor.ts";
import type { ControllerMetrics } from "../observability/metrics.ts";
import { setCondition } from "../runtime/conditions.ts";
import type { EventRecorder } from "../runtime/events.ts";
import type { Logger } from "../runtime/logger.ts";
import type { ReadonlyStore } from "../runtime/store.ts";
import { objectKey, splitKey } from "../runtime/store.ts";
import { Action } from "../runtime/workqueue.ts";
import { deleteTask, writeStatus } from "./objects.ts";
import { runTaskId } from "./runs.ts";
import { CACHE_CATCH_UP_MS, OwnWrites, StatusCoalescer, taskChange } from "./status-coalescing.ts";
import { capError, capResult, capWorker } from "./status-caps.ts";

export interface TaskReconcilerOptions {
  tasks: ReadonlyStore<KubernetesObject>;
  periodicTasks: ReadonlyStore<KubernetesObject>;
  customObjects: CustomObjectsApi;
  executors: { job: Executor; redis: Executor | undefined };
  events: EventRecorder;
  metrics: ControllerMetrics | undefined;
  logger: Logger;
  now: () => Date;
}

const FINISHED = FINISHED_TASK_PHASES as readonly TaskPhase[];
export const isFinishedPhase = (phase: TaskPhase | undefined): boolean =>
  phase !== undefined && FINISHED.includes(phase);

const iso = (t: Date): string => t.toISOString().replace(/\.\d{3}Z$/, "Z");

export { capResult } from "./status-caps.ts";

/** The PeriodicTask that owns a Task as its controller, if any. */
function controllerOwner(obj: KubernetesObject): { kind: string; name: string; uid: string } | undefined {
  const ref = obj.metadata?.ownerReferences?.find((o) => o.controller);
  return ref ? { kind: ref.kind, name: ref.name, uid: ref.uid } : undefined;
}

/** The Celery task id: derived from (PeriodicTask uid, run name) for a run, else the Task's uid. */
export function taskIdOf(obj: KubernetesObject): string {
  const owner = controllerOwner(obj);
  if (owner?.kind === "PeriodicTask" && obj.metadata?.name) return runTaskId(owner.uid, obj.metadata.name);
  return obj.metadata?.uid ?? "";
}

/** When the Task is due: its eta, creation + countdown, or its creation. */
export function dueTime(task: Task, created: Date): Date {
  if (task.spec.eta) return new Date(task.spec.eta);
  if (task.spec.countdown !== undefined) return new Date(created.getTime() + task.spec.countdown * 1000);
  return created;
}

/** When the Task expires if it has not started: `expires` seconds after creation, or a time. */
export function expiryTime(task: Task, created: Date): Date | undefined {
  const e = task.spec.expires;
  if (e === undefined) return undefined;
  return typeof e === "number" ? new Date(created.getTime() + e * 1000) : new Date(e);
}

export class TaskReconciler {
  readonly #o: TaskReconcilerOptions;
  readonly #coalescer = new StatusCoalescer();
  readonly #ownWrites = new OwnWrites();

  constructor(options: TaskReconcilerOptions) {
    this.#o = options;
  }

  async reconcile(key: string): Promise<Action> {
    const obj = this.#o.tasks.get(key);
    if (!obj) {
      this.#coalescer.settled(key);
      this.#ownWrites.forget(key);
      return Action.awaitChange();
    }
    // Our last status write is on its way to the cache, and brings the Task back here.
    if (this.#ownWrites.isBehind(key, obj.metadata?.resourceVersion))
      return Action.requeueAfter(CACHE_CATCH_UP_MS);
    const { namespace = "", name } = splitKey(key);
    const log = this.#o.logger;
    const parsed = parseTask(obj);
    const prev = ((obj as { status?: TaskStatus }).status ?? {}) as TaskStatus;
    const now = this.#o.now();
    if (!parsed.ok) {
      // The API server's schema makes this rare (an older CRD, a hand-edited status): report, wait.
      this.#o.events.event(obj, "Warning", "InvalidTask", parsed.error);
      await this.#write(obj, prev, {
        ...prev,
        conditions: this.#condition(prev, "Progressing", "False", "InvalidTask", parsed.error),
      });
      return Action.awaitChange();
    }
    const task = parsed.value;
    const created = new Date(obj.metadata?.creationTimestamp ?? now);

    // 1. Finished: only the TTL is left.
    if (isFinishedPhase(prev.phase)) return this.#afterFinish(obj, task, prev, now);

    const owner = controllerOwner(obj);
    const scheduledAnnotation = obj.metadata?.annotations?.[ANNOTATIONS.scheduledTime];
    const due = dueTime(task, created);
    const ctx: TaskContext = {
      task,
      object: obj,
      namespace,
      name,
      uid: obj.metadata?.uid ?? "",
      taskId: taskIdOf(obj),
      scheduledTime: scheduledAnnotation ? new Date(scheduledAnnotation) : due,
      status: prev,
      now,
    };
    const executor = task.spec.jobTemplate ? this.#o.executors.job : this.#o.executors.redis;

    // 2. Cancelled by a Replace or a user.
    const cancelReason = obj.metadata?.annotations?.[ANNOTATIONS.cancel];
    if (cancelReason !== undefined) {
      await executor?.cancel(ctx, cancelReason);
      return this.#finish(
        obj,
        task,
        prev,
        {
          phase: "Cancelled",
          completionTime: iso(now),
          reason: "Cancelled",
          message: `cancelled: ${cancelReason || "requested"}`,
        },
        ctx.taskId,
        due,
        () => {
          this.#o.events.event(obj, "Normal", "Cancelled", `cancelled: ${cancelReason || "requested"}`);
          this.#o.metrics?.countRun("cancelled");
        },
      );
    }

    const started = prev.queuedTime !== undefined || prev.jobName !== undefined;
    // 3. Not due yet: the controller holds it (never a long ETA on a broker).
    if (!started && now < due) {
      await this.#write(obj, prev, {
        ...prev,
        phase: "Scheduled",
        taskId: ctx.taskId,
        scheduledTime: iso(due),
        conditions: this.#condition(prev, "Progressing", "True", "Scheduled", `due at ${iso(due)}`),
        observedGeneration: obj.metadata?.generation,
      });
      return Action.requeueAfter(due.getTime() - now.getTime() + 100);
    }

    // 4. Expired before it started.
    const expires = expiryTime(task, created);
    if (!started && expires && now >= expires) {
      return this.#finish(
        obj,
        task,
        prev,
        {
          phase: "Expired",
          completionTime: iso(now),
          reason: "Expired",
          message: `not started by ${iso(expires)} (expires)`,
        },
        ctx.taskId,
        due,
        () => {
          this.#o.events.event(obj, "Warning", "Expired", `not started by ${iso(expires)}`);
          this.#o.metrics?.countRun("expired");
        },
      );
    }

    if (!executor) {
      const message = "the Redis executor is not configured in this controller";
      await this.#write(obj, prev, {
        ...prev,
        phase: "Pending",
        taskId: ctx.taskId,
        conditions: this.#condition(prev, "Progressing", "False", "ExecutorUnavailable", message),
      });
      return Action.awaitChange();
    }

    // 5. Start or observe the work.
    const observed = await executor.sync(ctx);
    const broker = prev.conditions?.find((c) => c.type === "Progressing")?.reason;
    if (observed.reason === "BrokerUnavailable" && broker !== "BrokerUnavailable") {
      this.#o.events.event(obj, "Warning", "BrokerUnavailable", observed.message ?? "Redis is unavailable");
    }
    if (observed.queuedTime !== undefined && prev.queuedTime === undefined) {
      // The attempt started (Job created, message published): measure how late it was.
      if (observed.reason === "JobCreated") {
        this.#o.events.event(obj, "Normal", "JobCreated", observed.message ?? "created the Job", {
          routine: true,
        });
      }
      if (owner?.kind === "PeriodicTask" && scheduledAnnotation) {
        const lag = (Date.parse(observed.queuedTime) - Date.parse(scheduledAnnotation)) / 1000;
        this.#o.metrics?.observeScheduleLag(executor.kind, Math.max(0, lag));
      }
    }
    if (isFinishedPhase(observed.phase)) {
      return this.#finish(obj, task, prev, observed, ctx.taskId, due, () => {
        this.#o.metrics?.countRun(observed.phase === "Succeeded" ? "succeeded" : "failed");
        if (observed.phase === "Failed") {
          this.#o.events.event(
            obj,
            "Warning",
            observed.reason ?? "Failed",
            observed.message ?? "the Task failed",
          );
        } else {
          this.#o.events.event(obj, "Normal", "Succeeded", observed.message ?? "the Task succeeded", {
            routine: true,
          });
        }
      });
    }
    const next = this.#merge(prev, observed, ctx, due);
    const decision = this.#coalescer.decide(key, taskChange(prev, next), now.getTime());
    if (decision.write) {
      await this.#write(obj, prev, next);
      this.#coalescer.settled(key);
    }
    log.debug({ namespace, name, phase: observed.phase, written: decision.write }, "task observed");
    const waits = [
      observed.requeueAfterMs,
      expires && !started ? expires.getTime() - now.getTime() : undefined,
      decision.write || decision.lookAgainAt === undefined ? undefined : decision.lookAgainAt - now.getTime(),
    ];
    const pending = waits.filter((w): w is number => w !== undefined && w > 0);
    return pending.length ? Action.requeueAfter(Math.min(...pending) + 100) : Action.awaitChange();
  }

  #merge(
    prev: TaskStatus,
    o: Observation,
    ctx: Pick<TaskContext, "object" | "taskId" | "now">,
    due: Date,
  ): TaskStatus {
    const status: TaskStatus = {
      ...prev,
      phase: o.phase,
      taskId: ctx.taskId,
      scheduledTime: prev.scheduledTime ?? iso(due),
      ...(o.queuedTime && !prev.queuedTime ? { queuedTime: o.queuedTime } : {}),
      ...(o.startTime ? { startTime: o.startTime } : {}),
      ...(o.completionTime ? { completionTime: o.completionTime } : {}),
      ...(o.attempts !== undefined ? { attempts: Math.max(o.attempts, prev.attempts ?? 0) } : {}),
      ...(o.worker ? { worker: capWorker(o.worker) } : {}),
      ...(o.jobName ? { jobName: o.jobName } : {}),
      ...(o.error ? { error: capError(o.error) } : {}),
      observedGeneration: ctx.object.metadata?.generation,
    };
    if (o.result !== undefined) Object.assign(status, capResult(o.result));
    const finished = isFinishedPhase(o.phase);
    status.conditions = this.#condition(
      prev,
      "Progressing",
      finished ? "False" : "True",
      o.reason ?? o.phase,
      o.message ?? o.phase,
    );
    if (finished) {
      status.conditions = setCondition(
        status.conditions,
        { type: "Finished", status: "True", reason: o.reason ?? o.phase, message: o.message ?? o.phase },
        ctx.now,
      );
    }
    return status;
  }

  async #finish(
    obj: KubernetesObject,
    task: Task,
    prev: TaskStatus,
    o: Observation,
    taskId: string,
    due: Date,
    announce: () => void,
  ): Promise<Action> {
    const now = this.#o.now();
    const status = this.#merge(prev, o, { object: obj, taskId, now }, due);
    await this.#write(obj, prev, status);
    this.#coalescer.settled(objectKey(obj));
    // Only once the finish is written: a conflicting write retries the reconcile, which would
    // otherwise record the Event and count the run a second time.
    announce();
    return this.#afterFinish(obj, task, status, now);
  }

  async #afterFinish(obj: KubernetesObject, task: Task, status: TaskStatus, now: Date): Promise<Action> {
    const ttl = task.spec.ttlSecondsAfterFinished;
    if (ttl === undefined || !status.completionTime) return Action.awaitChange();
    const deleteAt = Date.parse(status.completionTime) + ttl * 1000;
    if (now.getTime() < deleteAt) return Action.requeueAfter(deleteAt - now.getTime() + 100);
    await deleteTask(this.#o.customObjects, obj.metadata?.namespace ?? "", obj.metadata?.name ?? "");
    return Action.awaitChange();
  }

  #condition(
    prev: TaskStatus,
    type: string,
    status: "True" | "False",
    reason: string,
    message: string,
  ): Condition[] {
    return setCondition(
      prev.conditions ?? [],
      { type, status, reason, message: message.slice(0, 1024) },
      this.#o.now(),
    );
  }

  /** Writes the status when it changed, conditional on the version it was built from. */
  async #write(obj: KubernetesObject, prev: TaskStatus, next: TaskStatus): Promise<void> {
    const written = await writeStatus(this.#o.customObjects, TASK_PLURAL, obj, prev, next);
    this.#ownWrites.wrote(objectKey(obj), obj.metadata?.resourceVersion, written);
  }
}
