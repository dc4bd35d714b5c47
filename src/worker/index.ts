/**
 * `cadent/worker`: define tasks for `cadent worker`, or embed the worker in your own process.
 *
 * ```ts
 * import { defineTask } from "cadent/worker";
 * export const delRedisData = defineTask("app.tasks.del_redis_data", async ({ args, kwargs, signal, log }) => {
 *   return { deleted: 42 };
 * });
 * ```
 *
 * docs/worker.md describes the task context, retries, time limits, delivery guarantees and how
 * cadent workers share queues with Python Celery workers.
 */
export { defineTask, isTaskDefinition, DEFAULT_MAX_RETRIES, DEFAULT_RETRY_DELAY_SECONDS } from "./task.ts";
export type {
  RetryOptions,
  TaskContext,
  TaskDefinition,
  TaskHandler,
  TaskOptions,
  TimeLimit,
} from "./task.ts";
export {
  JAVASCRIPT_EXCEPTION_MODULE,
  MaxRetriesExceededError,
  SoftTimeLimitExceeded,
  TaskError,
  TimeLimitExceeded,
  WorkerShutdown,
  isTaskError,
} from "./errors.ts";
export type { TaskErrorOptions } from "./errors.ts";
export {
  Worker,
  DEFAULT_CONCURRENCY,
  DEFAULT_PREFETCH_MULTIPLIER,
  DEFAULT_SHUTDOWN_GRACE_MS,
} from "./worker.ts";
export type { CloseOptions, CloseReport, WorkerOptions } from "./worker.ts";
export { RedisBroker } from "./redis-broker.ts";
export type { RedisBrokerOptions } from "./redis-broker.ts";
export type { Broker } from "./broker.ts";
export { DEFAULT_DEAD_LETTER_KEY } from "./dead-letter.ts";
