/**
 * Errors as a Celery result stores them: `{exc_type, exc_message: <args list>, exc_module}` plus a
 * traceback text. A Python client's `AsyncResult.get()` re-raises them: a class it can import from
 * `exc_module` (`builtins.ValueError`, `billiard.exceptions.TimeLimitExceeded`) becomes that very
 * class; any other name becomes a class Celery makes up with that name.
 */
import type { ExceptionInput, JsonValue } from "../celery/index.ts";
import { exceptionText } from "../celery/index.ts";
import { toJsonValue } from "./json-value.ts";

/** `exc_module` of errors thrown by JavaScript code that are not TaskErrors. */
export const JAVASCRIPT_EXCEPTION_MODULE = "javascript";

const TASK_ERROR: unique symbol = Symbol.for("cadent.worker.TaskError");

export interface TaskErrorOptions {
  /**
   * The Python module that defines the exception type. Default "javascript". Use "builtins" for
   * ValueError, KeyError, ... so that Python callers can `except ValueError`.
   */
  readonly module?: string;
  readonly cause?: unknown;
}

/**
 * An error that says how a Celery result should record it.
 *
 * ```ts
 * throw new TaskError("ValueError", ["quantity must be positive"], { module: "builtins" });
 * ```
 */
export class TaskError extends Error {
  readonly [TASK_ERROR] = true;
  /** `exc_type`: the exception's class name. */
  readonly type: string;
  /** `exc_module`. */
  readonly module: string;
  /** `exc_message`: the exception's args. The error's message is Python's `str()` of them. */
  readonly args: JsonValue[];

  constructor(type: string, args: readonly JsonValue[] = [], options: TaskErrorOptions = {}) {
    const jsonArgs = args.map((arg) => {
      const converted = toJsonValue(arg);
      return converted.ok ? converted.value : String(arg);
    });
    super(exceptionText(jsonArgs), options.cause === undefined ? undefined : { cause: options.cause });
    this.name = type;
    this.type = type;
    this.module = options.module ?? JAVASCRIPT_EXCEPTION_MODULE;
    this.args = jsonArgs;
  }
}

/** Whether a value is a TaskError from any copy of this module. */
export function isTaskError(value: unknown): value is TaskError {
  return (
    value instanceof Error &&
    (value as Partial<Record<typeof TASK_ERROR, unknown>>)[TASK_ERROR] === true &&
    typeof (value as { type?: unknown }).type === "string" &&
    typeof (value as { module?: unknown }).module === "string" &&
    Array.isArray((value as { args?: unknown }).args)
  );
}

/** The task's signal aborted at its soft time limit (billiard's exception, as in Celery). */
export class SoftTimeLimitExceeded extends TaskError {
  constructor(seconds: number) {
    super("SoftTimeLimitExceeded", [seconds], { module: "billiard.exceptions" });
  }
}

/** The task ran past its hard time limit; it is recorded as failed whatever it does next. */
export class TimeLimitExceeded extends TaskError {
  constructor(seconds: number) {
    super("TimeLimitExceeded", [seconds], { module: "billiard.exceptions" });
  }
}

/** `ctx.retry()` was called with no retries left and no `exc` to raise instead. */
export class MaxRetriesExceededError extends TaskError {
  constructor(message: string) {
    super("MaxRetriesExceededError", [message], { module: "celery.exceptions" });
  }
}

/** The worker stopped waiting for the task at shutdown; its message goes back to the queue. */
export class WorkerShutdown extends TaskError {
  constructor() {
    super("WorkerShutdown", ["the worker is shutting down; the message is handed back to the queue"], {
      module: "celery.exceptions",
    });
  }
}

/** kombu's refusal of a message whose content type is not accepted (never deserialized). */
export function contentDisallowed(reason: string): ExceptionInput {
  return { type: "ContentDisallowed", module: "kombu.exceptions", args: [reason] };
}

/** kombu's error for a message that cannot be decoded. */
export function decodeError(reason: string): ExceptionInput {
  return { type: "DecodeError", module: "kombu.exceptions", args: [reason] };
}

/** Celery's error for a message whose fields (eta, expires, ...) are invalid. */
export function invalidTaskError(reason: string): ExceptionInput {
  return { type: "InvalidTaskError", module: "celery.exceptions", args: [reason] };
}

/** kombu's error for a return value that cannot be serialized as JSON. */
export function encodeError(reason: string): ExceptionInput {
  return { type: "EncodeError", module: "kombu.exceptions", args: [reason] };
}

export interface RecordedError {
  readonly exception: ExceptionInput;
  readonly traceback: string | null;
}

/** How a thrown value is recorded in a FAILURE or RETRY result. */
export function recordError(error: unknown): RecordedError {
  if (isTaskError(error)) {
    return {
      exception: { type: error.type, module: error.module, args: error.args },
      traceback: traceback(error),
    };
  }
  if (error instanceof Error) {
    return {
      exception: {
        type: errorType(error),
        module: JAVASCRIPT_EXCEPTION_MODULE,
        args: error.message === "" ? [] : [error.message],
      },
      traceback: traceback(error),
    };
  }
  const converted = toJsonValue(error);
  return {
    exception: {
      type: "Error",
      module: JAVASCRIPT_EXCEPTION_MODULE,
      args: [converted.ok && converted.value !== null ? converted.value : String(error)],
    },
    traceback: null,
  };
}

/** A class that does not set `name` still has its own constructor name (`class QuotaError extends Error`). */
function errorType(error: Error): string {
  const constructorName = (error.constructor as { name?: unknown } | undefined)?.name;
  if (error.name === "Error" && typeof constructorName === "string" && constructorName !== "") {
    return constructorName;
  }
  return error.name || "Error";
}

/** The stack, followed by the stacks of its causes. */
function traceback(error: Error): string | null {
  const parts: string[] = [];
  const seen = new Set<unknown>();
  let current: unknown = error;
  while (current instanceof Error && !seen.has(current) && parts.length < 10) {
    seen.add(current);
    parts.push(current.stack ?? `${current.name}: ${current.message}`);
    current = current.cause;
  }
  if (parts.length === 0) return null;
  return parts.join("\n\nCaused by: ");
}
