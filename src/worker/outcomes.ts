/**
 * What the worker writes for each way a message can end, as pure functions: the result value
 * (Celery's backend format, vectors r01-r14), the retry message (w01), the dead letter and the ack.
 */
import {
  RESERVED_HEADERS,
  clampPriority,
  encodeResult,
  encodeTaskMessage,
  notRegisteredException,
  pyTuple,
  saferepr,
} from "../celery/index.ts";
import type {
  ExceptionInput,
  JsonObject,
  MessageDecodeError,
  ResultInput,
  TaskMessage,
} from "../celery/index.ts";
import type { ResultWrite } from "./broker.ts";
import type { CommitRequest, StartedWrite } from "./committer.ts";
import { encodeDeadLetter } from "./dead-letter.ts";
import { contentDisallowed, decodeError, encodeError, invalidTaskError, recordError } from "./errors.ts";
import type { RecordedError } from "./errors.ts";
import { toJsonValue } from "./json-value.ts";

/** Who writes, and when. */
export interface Writer {
  readonly hostname: string;
  readonly pid: number;
  readonly now: Date;
}

/** A result's state-specific fields; the common ones come from the message. */
type ResultFields = ResultInput extends infer T
  ? T extends unknown
    ? Omit<T, "taskId" | "now" | "parentId" | "groupId">
    : never
  : never;

function resultWrite(message: TaskMessage, writer: Writer, fields: ResultFields): ResultWrite {
  const common = { taskId: message.id, now: writer.now, parentId: message.parentId, groupId: message.group };
  return { taskId: message.id, value: encodeResult({ ...fields, ...common }) };
}

/** The result to write, unless the message asked for none (`ignore_result`). */
function maybeResult(message: TaskMessage, writer: Writer, fields: ResultFields): ResultWrite | null {
  return message.ignoreResult ? null : resultWrite(message, writer, fields);
}

/** STARTED, as Celery writes it with `task_track_started` (r10). */
export function startedResult(message: TaskMessage, writer: Writer): ResultWrite | null {
  return maybeResult(message, writer, startedFields(writer));
}

/**
 * The same STARTED, encoded only if the committer writes it: most STARTED states of short tasks
 * are dropped unwritten (committer.ts).
 */
export function lazyStartedResult(message: TaskMessage, writer: Writer): StartedWrite | null {
  if (message.ignoreResult) return null;
  return { taskId: message.id, value: () => resultWrite(message, writer, startedFields(writer)).value };
}

function startedFields(writer: Writer): ResultFields {
  return { status: "STARTED", pid: writer.pid, hostname: writer.hostname };
}

/**
 * SUCCESS with the handler's return value, or FAILURE EncodeError when the value cannot be stored
 * as JSON (a BigInt, a cycle).
 */
export function succeeded(message: TaskMessage, writer: Writer, value: unknown): CommitRequest {
  const converted = toJsonValue(value);
  if (!converted.ok) {
    return failed(message, writer, {
      exception: encodeError(`the task's return value cannot be stored as JSON: ${converted.reason}`),
      traceback: null,
    });
  }
  return {
    result: writableResult(message, writer, { status: "SUCCESS", result: converted.value }, "return value"),
    ack: message.deliveryTag,
  };
}

export function failed(message: TaskMessage, writer: Writer, error: RecordedError): CommitRequest {
  return {
    result: writableResult(
      message,
      writer,
      { status: "FAILURE", exception: error.exception, traceback: error.traceback },
      "exception",
    ),
    ack: message.deliveryTag,
  };
}

/**
 * The result, or FAILURE EncodeError when the value cannot be written: the encoder recurses, so
 * a value nested a few thousand deep (which JSON.stringify may still take) overflows the stack.
 * Throwing here instead would leave the message neither acknowledged nor answered.
 */
function writableResult(
  message: TaskMessage,
  writer: Writer,
  fields: ResultFields,
  what: string,
): ResultWrite | null {
  try {
    return maybeResult(message, writer, fields);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    return maybeResult(message, writer, {
      status: "FAILURE",
      exception: encodeError(`the task's ${what} cannot be stored as JSON: ${reason}`),
      traceback: null,
    });
  }
}

/** REVOKED with TaskRevokedError("expired") (r09): `expires` passed before the task could start. */
export function expired(message: TaskMessage, writer: Writer): CommitRequest {
  return {
    result: maybeResult(message, writer, { status: "REVOKED", reason: "expired" }),
    ack: message.deliveryTag,
  };
}

/**
 * FAILURE NotRegistered (r14), as Celery stores it, and the message kept on the dead-letter list:
 * a task another worker type knows should not vanish because this worker took it.
 */
export function notRegistered(
  message: TaskMessage,
  writer: Writer,
  queue: string,
  raw: string,
): CommitRequest {
  return {
    result: resultWrite(message, writer, {
      status: "FAILURE",
      exception: notRegisteredException(message.task),
      traceback: null,
    }),
    deadLetter: encodeDeadLetter({
      reason: "not-registered",
      kind: "not-registered",
      error: `no task named "${message.task}" is registered on this worker`,
      taskId: message.id,
      task: message.task,
      queue,
      worker: writer.hostname,
      time: writer.now,
      message: raw,
    }),
    ack: message.deliveryTag,
  };
}

/** How a refused message is recorded: kombu's and Celery's exception for each kind of refusal. */
export function refusalException(error: MessageDecodeError): ExceptionInput {
  switch (error.kind) {
    case "content-disallowed":
      return contentDisallowed(error.reason);
    case "invalid-headers":
      return invalidTaskError(error.reason);
    default:
      return decodeError(error.reason);
  }
}

/**
 * A message the decoder refused: FAILURE where it names a task id, and the message on the
 * dead-letter list. It was never recorded as unacknowledged, so there is nothing to ack.
 */
export function refused(
  error: MessageDecodeError,
  writer: Writer,
  queue: string,
  raw: string,
): CommitRequest {
  const result: ResultWrite | null =
    error.taskId === null
      ? null
      : {
          taskId: error.taskId,
          value: encodeResult({
            status: "FAILURE",
            taskId: error.taskId,
            now: writer.now,
            exception: refusalException(error),
            traceback: null,
          }),
        };
  return {
    result,
    deadLetter: encodeDeadLetter({
      reason: "malformed",
      kind: error.kind,
      error: error.reason,
      taskId: error.taskId,
      task: error.task,
      queue,
      worker: writer.hostname,
      time: writer.now,
      message: raw,
    }),
  };
}

export interface RetryPlan {
  readonly eta: Date;
  /** Seconds, for the log and the RETRY traceback; null when an eta was given. */
  readonly countdown: number | null;
  /** The error that caused the retry, or undefined for a bare `retry()`. */
  readonly exc: unknown;
}

/**
 * Celery's `self.retry()` (w01, r05, r06, r08): the same message again with `retries + 1`, the new
 * eta and `parent_id` = the task's own id, sent to the queue of its routing key; a RETRY result;
 * and the ack of the current message — all in one commit, so a crash cannot leave both or neither.
 */
export function retried(
  message: TaskMessage,
  writer: Writer,
  plan: RetryPlan,
  consumedFrom: string,
): CommitRequest {
  const retry = encodeTaskMessage({
    task: message.task,
    id: message.id,
    args: message.args,
    kwargs: message.kwargs,
    queue: message.routingKey || consumedFrom,
    priority: clampPriority(message.priority ?? 0),
    eta: plan.eta,
    expires: message.expires,
    now: writer.now,
    retries: message.retries + 1,
    timeLimit: { hard: positiveOrNull(message.timeLimit.hard), soft: positiveOrNull(message.timeLimit.soft) },
    shadow: message.shadow,
    group: message.group,
    groupIndex: message.groupIndex,
    rootId: message.rootId ?? message.id,
    parentId: message.id,
    origin: writer.hostname,
    ignoreResult: message.ignoreResult,
    replyTo: message.replyTo ?? "",
    headers: customHeaders(message.customHeaders),
    embed: message.embed,
    argsrepr: message.argsrepr ?? undefined,
    kwargsrepr: message.kwargsrepr ?? undefined,
    extraProperties: {
      replaced_task_nesting: 0,
      ...(message.origin === null ? {} : { origin: message.origin }),
    },
  });
  const cause = plan.exc === undefined ? null : recordError(plan.exc);
  const when = plan.countdown === null ? `at ${plan.eta.toISOString()}` : `in ${plan.countdown}s`;
  // Python's repr of the exception, as Celery's Retry message shows it: KeyError('attempt 0').
  const causeText =
    cause === null
      ? ""
      : `: ${cause.exception.type}(${cause.exception.args.map((arg) => saferepr(arg)).join(", ")})`;
  return {
    result: maybeResult(message, writer, {
      status: "RETRY",
      exception: cause?.exception ?? null,
      traceback: `${cause?.traceback ? `${cause.traceback}\n\n` : ""}celery.exceptions.Retry: Retry ${when}${causeText}\n`,
    }),
    publish: { key: retry.key, text: retry.text },
    ack: message.deliveryTag,
  };
}

/** The message Celery raises when retries run out (`MaxRetriesExceededError`). */
export function maxRetriesMessage(message: TaskMessage): string {
  return `Can't retry ${message.task}[${message.id}] args:${saferepr(pyTuple(message.args))} kwargs:${saferepr(message.kwargs)}`;
}

function positiveOrNull(value: number | null): number | null {
  return value !== null && value > 0 ? value : null;
}

/** Headers a retry carries over: the custom ones (a protocol-1 message keeps its headers here). */
function customHeaders(headers: JsonObject): JsonObject {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !RESERVED_HEADERS.has(name)));
}
