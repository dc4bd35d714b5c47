/**
 * The executor interface behind the Task reconciler. An executor turns a due Task into work
 * (a Job, a Celery message) and reports where that work is. Both methods are idempotent: the
 * reconciler may call them any number of times, after any crash, for the same attempt.
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import type { Task, TaskPhase, TaskStatus } from "../api/index.ts";

export interface TaskContext {
  /** The validated Task. */
  task: Task;
  /** The Task as read (for owner references and Events). */
  object: KubernetesObject;
  namespace: string;
  name: string;
  uid: string;
  /** The Celery task id / correlation id of this Task (product.md §1.3). */
  taskId: string;
  /** The time the Task stands for: the run's scheduled time, or its due time. */
  scheduledTime: Date;
  /** The previous status, as written by the controller. */
  status: TaskStatus;
  now: Date;
}

export type TaskError = NonNullable<TaskStatus["error"]>;

/** What an executor observed. Fields left undefined keep their previous values. */
export interface Observation {
  phase: TaskPhase;
  queuedTime?: string;
  startTime?: string;
  completionTime?: string;
  attempts?: number;
  worker?: string;
  jobName?: string;
  /** The returned JSON value, uncapped: the reconciler caps it. */
  result?: unknown;
  error?: TaskError;
  /** For the Task's condition: a CamelCase reason and a sentence. */
  reason?: string;
  message?: string;
  /** Look again after this long even if nothing changes (deadlines, polling a backend). */
  requeueAfterMs?: number;
}

export interface Executor {
  readonly kind: "job" | "redis";
  /** Starts the work when it has not started, and reports where it is. */
  sync(ctx: TaskContext): Promise<Observation>;
  /** Stops the work if it runs; resolves once the stop was requested. */
  cancel(ctx: TaskContext, reason: string): Promise<void>;
}
