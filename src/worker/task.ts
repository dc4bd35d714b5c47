/**
 * Task definitions: what `defineTask` returns and what a task handler receives.
 *
 * A definition is a plain frozen object marked with a registry-wide symbol (`Symbol.for`), so the
 * worker recognises tasks defined against another copy of this module — a task module built
 * against `cadent/worker` in node_modules while the CLI runs from a different path.
 */
import type { Logger } from "pino";
import type { JsonObject, JsonValue, TaskMessage } from "../celery/index.ts";

/** Celery's `Task.max_retries` default. */
export const DEFAULT_MAX_RETRIES = 3;
/** Celery's `Task.default_retry_delay`: a bare `retry()` runs again three minutes later. */
export const DEFAULT_RETRY_DELAY_SECONDS = 180;

export interface RetryOptions {
  /** Seconds from now until the retry may run. Default: the task's `retryDelaySeconds`. */
  readonly countdown?: number;
  /** Run the retry at this time instead of after a countdown. */
  readonly eta?: Date;
  /**
   * Why the task retries: stored in the RETRY result, and thrown instead of
   * MaxRetriesExceededError when no retries are left (Celery's `retry(exc=...)`).
   */
  readonly exc?: unknown;
  /** Overrides the task's `maxRetries` for this call; null retries forever. */
  readonly maxRetries?: number | null;
}

/** What a handler receives: the request and the worker's tools for it. */
export interface TaskContext {
  /** Positional arguments, as sent. Validate them: they come from the wire. */
  readonly args: JsonValue[];
  readonly kwargs: JsonObject;
  /** The Celery task id (also the result key's suffix). */
  readonly taskId: string;
  /** The registered task name. */
  readonly name: string;
  /** How many times this task has been retried before this attempt (Celery's `request.retries`). */
  readonly retries: number;
  /**
   * Aborts at the soft time limit (reason: SoftTimeLimitExceeded), at the hard limit (reason:
   * TimeLimitExceeded) and when a shutdown gives up waiting (reason: WorkerShutdown). Pass it to
   * fetch, timers and child processes; a handler that ignores it keeps running unobserved.
   */
  readonly signal: AbortSignal;
  /** A pino logger whose lines carry the task name and id. */
  readonly log: Logger;
  /** The worker's node name (Celery's `request.hostname`). */
  readonly hostname: string;
  /** The whole decoded message: eta, expires, headers, delivery info, root and parent ids. */
  readonly message: TaskMessage;
  /**
   * Celery's `self.retry()`: ends this attempt and schedules the next one with the same task id,
   * `retries + 1` and an eta; the result shows RETRY meanwhile. Always throws — write
   * `throw ctx.retry(...)` or `return ctx.retry(...)` so the compiler knows too. When the
   * retries are used up it throws `options.exc` (or MaxRetriesExceededError) instead, which ends
   * the task with FAILURE.
   */
  retry(options?: RetryOptions): never;
}

export type TaskHandler<R = unknown> = (ctx: TaskContext) => R | Promise<R>;

export interface TimeLimit {
  /** Seconds; at the hard limit the task fails with TimeLimitExceeded. */
  readonly hard?: number | null;
  /** Seconds; at the soft limit the task's signal aborts with SoftTimeLimitExceeded. */
  readonly soft?: number | null;
}

export interface TaskOptions {
  /** Retries `ctx.retry()` may make; null for no limit. Default 3, as in Celery. */
  readonly maxRetries?: number | null;
  /** The countdown of a `ctx.retry()` without one. Default 180 s, as in Celery. */
  readonly retryDelaySeconds?: number;
  /** Limits for messages whose `timelimit` header leaves them unset (the header wins). */
  readonly timeLimit?: TimeLimit;
}

export interface ResolvedTaskOptions {
  readonly maxRetries: number | null;
  readonly retryDelaySeconds: number;
  readonly timeLimit: { readonly hard: number | null; readonly soft: number | null };
}

export const TASK_DEFINITION: unique symbol = Symbol.for("cadent.worker.TaskDefinition");

export interface TaskDefinition<R = unknown> {
  readonly [TASK_DEFINITION]: true;
  /** The Celery task name messages carry in `headers.task`. */
  readonly name: string;
  readonly handler: TaskHandler<R>;
  readonly options: ResolvedTaskOptions;
}

/**
 * Defines a task for `cadent worker`. Export the result from the module given to `--tasks`.
 *
 * ```ts
 * export const add = defineTask("app.tasks.add", ({ args: [x, y] }) => Number(x) + Number(y));
 * ```
 *
 * Throws a TypeError or RangeError, naming the problem, for an invalid name, handler or option.
 */
export function defineTask<R>(
  name: string,
  handler: TaskHandler<R>,
  options: TaskOptions = {},
): TaskDefinition<R> {
  if (typeof name !== "string" || name.trim() === "") {
    throw new TypeError("defineTask: the task name must be a non-empty string such as 'app.tasks.add'");
  }
  if (typeof handler !== "function") {
    throw new TypeError(`defineTask("${name}"): the handler must be a function`);
  }
  const maxRetries = options.maxRetries === undefined ? DEFAULT_MAX_RETRIES : options.maxRetries;
  if (maxRetries !== null && !(Number.isInteger(maxRetries) && maxRetries >= 0)) {
    throw new RangeError(
      `defineTask("${name}"): maxRetries must be a whole number >= 0 or null, got ${String(maxRetries)}`,
    );
  }
  const retryDelaySeconds = options.retryDelaySeconds ?? DEFAULT_RETRY_DELAY_SECONDS;
  requireSeconds(name, "retryDelaySeconds", retryDelaySeconds, true);
  const hard = options.timeLimit?.hard ?? null;
  const soft = options.timeLimit?.soft ?? null;
  if (hard !== null) requireSeconds(name, "timeLimit.hard", hard, false);
  if (soft !== null) requireSeconds(name, "timeLimit.soft", soft, false);
  return Object.freeze({
    [TASK_DEFINITION]: true as const,
    name,
    handler,
    options: Object.freeze({ maxRetries, retryDelaySeconds, timeLimit: Object.freeze({ hard, soft }) }),
  });
}

function requireSeconds(task: string, option: string, value: number, zeroAllowed: boolean): void {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || (!zeroAllowed && value === 0)) {
    throw new RangeError(
      `defineTask("${task}"): ${option} must be a ${zeroAllowed ? "non-negative" : "positive"} number of seconds, got ${String(value)}`,
    );
  }
}

/** Whether a value (typically a module export) is a task definition, from any copy of this module. */
export function isTaskDefinition(value: unknown): value is TaskDefinition {
  if (typeof value !== "object" || value === null) return false;
  const candidate = value as Partial<Record<typeof TASK_DEFINITION, unknown>> & {
    name?: unknown;
    handler?: unknown;
    options?: unknown;
  };
  return (
    candidate[TASK_DEFINITION] === true &&
    typeof candidate.name === "string" &&
    typeof candidate.handler === "function" &&
    typeof candidate.options === "object" &&
    candidate.options !== null
  );
}

/** Registered tasks by name. */
export type TaskRegistry = ReadonlyMap<string, TaskDefinition>;

/**
 * A registry of the given definitions. The same definition given twice counts once; two different
 * definitions with one name are an error, since a message could not say which one it means.
 */
export function createRegistry(definitions: Iterable<TaskDefinition>): TaskRegistry {
  const registry = new Map<string, TaskDefinition>();
  for (const definition of definitions) {
    const existing = registry.get(definition.name);
    if (existing !== undefined && existing !== definition) {
      throw new Error(
        `two different tasks are defined with the name "${definition.name}": give each task its own name`,
      );
    }
    registry.set(definition.name, definition);
  }
  return registry;
}
