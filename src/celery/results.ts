/**
 * Celery's Redis result backend: the value stored at `celery-task-meta-<task id>` (and published on
 * the channel of the same name), written in the key order Celery writes (vectors r01-r14).
 *
 * Write protocol (for the thin Redis shell that uses this module): GET the key; if the stored status
 * is already SUCCESS, write nothing (`mayOverwrite`); otherwise MULTI; SETEX key ttl value;
 * PUBLISH key value; EXEC. With no expiry configured, SET replaces SETEX.
 */
import { isJsonObject, parseJson, pythonJsonDumps } from "./json.ts";
import type { JsonObject, JsonValue, ReadonlyJsonObject, ReadonlyJsonValue } from "./json.ts";
import { exceptionText } from "./saferepr.ts";
import { formatNaiveTimestamp, parseTimestamp } from "./timestamps.ts";
import type { ParsedTimestamp, TimeInput } from "./timestamps.ts";

export const RESULT_KEY_PREFIX = "celery-task-meta-";
export const GROUP_RESULT_KEY_PREFIX = "celery-taskset-meta-";
/** Celery's `result_expires` default: results live one day. */
export const DEFAULT_RESULT_EXPIRES_SECONDS = 86_400;

export function resultKey(taskId: string): string {
  return `${RESULT_KEY_PREFIX}${taskId}`;
}

/** The pub/sub channel a result is announced on: the key's own name. */
export function resultChannel(taskId: string): string {
  return resultKey(taskId);
}

export function groupResultKey(groupId: string): string {
  return `${GROUP_RESULT_KEY_PREFIX}${groupId}`;
}

/** The states after which Celery considers a task done (`READY_STATES`); only these get a date_done. */
export const READY_STATES: ReadonlySet<string> = new Set(["SUCCESS", "FAILURE", "REVOKED"]);

/** An exception as a JSON result stores it; `args` is the exception's args (`exc_message`). */
export interface ExceptionInfo {
  /** The class's qualified name (`ValueError`, `CustomError`). */
  readonly type: string;
  /** Its module (`builtins`, `app.tasks`, `celery.exceptions`), or null when not given. */
  readonly module: string | null;
  readonly args: JsonValue[];
}

export interface ExceptionInput {
  readonly type: string;
  readonly module: string;
  readonly args: readonly ReadonlyJsonValue[];
}

/** The request fields Celery adds with `result_extended = True` (r11-r13). */
export interface ExtendedFields {
  readonly name: string | null;
  readonly args: JsonValue;
  readonly kwargs: JsonValue;
  readonly worker: string | null;
  readonly retries: number | null;
  readonly queue: string | null;
}

export interface ExtendedInput {
  readonly name: string | null;
  readonly args: ReadonlyJsonValue;
  readonly kwargs: ReadonlyJsonValue;
  readonly worker: string | null;
  readonly retries: number | null;
  readonly queue: string | null;
}

interface ResultInputCommon {
  readonly taskId: string;
  /**
   * The time of writing: Celery's `utcnow()`, stored as `date_done` for SUCCESS, FAILURE and REVOKED.
   * Other states store null.
   */
  readonly now: TimeInput;
  /** Results of subtasks, as `AsyncResult.as_tuple()`. Default `[]`, and for RETRY the retry itself. */
  readonly children?: readonly ReadonlyJsonValue[];
  /** Written only when set, as Celery does. */
  readonly groupId?: string | null;
  /** Written only when set: a retried task's parent is the task itself (r06, r07). */
  readonly parentId?: string | null;
  readonly extended?: ExtendedInput | null;
}

export type ResultInput = ResultInputCommon &
  (
    | { readonly status: "SUCCESS"; readonly result: ReadonlyJsonValue }
    | { readonly status: "FAILURE"; readonly exception: ExceptionInput; readonly traceback: string | null }
    | {
        readonly status: "RETRY";
        /** Null for a bare `retry()` without an exception (r08). */
        readonly exception: ExceptionInput | null;
        readonly traceback: string | null;
      }
    | { readonly status: "STARTED"; readonly pid: number; readonly hostname: string }
    | {
        readonly status: "REVOKED";
        /** Celery writes "expired" for an expired task, "revoked" or "terminated" otherwise. */
        readonly reason: string;
      }
  );

/** The exception Celery stores for a revoked task. */
export function revokedException(reason: string): ExceptionInput {
  return { type: "TaskRevokedError", module: "celery.exceptions", args: [reason] };
}

/** The exception Celery stores for a message naming an unknown task (r14). */
export function notRegisteredException(task: string): ExceptionInput {
  return { type: "NotRegistered", module: "celery.exceptions", args: [task] };
}

/** The result value as Celery writes it, byte for byte when the inputs are the same. */
export function encodeResult(input: ResultInput): string {
  let result: ReadonlyJsonValue;
  let traceback: string | null = null;
  switch (input.status) {
    case "SUCCESS":
      result = input.result;
      break;
    case "FAILURE":
    case "RETRY":
      result = input.exception === null ? null : exceptionValue(input.exception);
      traceback = input.traceback;
      break;
    case "STARTED":
      result = { pid: input.pid, hostname: input.hostname };
      break;
    case "REVOKED":
      result = exceptionValue(revokedException(input.reason));
      break;
  }
  // A retry is recorded as a child of the task: the re-sent message, same id, no parent (r05).
  const children = input.children ?? (input.status === "RETRY" ? [[[input.taskId, null], null]] : []);
  const meta: Record<string, ReadonlyJsonValue> = {
    status: input.status,
    result,
    traceback,
    children,
    date_done: READY_STATES.has(input.status) ? formatNaiveTimestamp(input.now) : null,
  };
  if (input.groupId) meta["group_id"] = input.groupId;
  if (input.parentId) meta["parent_id"] = input.parentId;
  if (input.extended) {
    const { name, args, kwargs, worker, retries, queue } = input.extended;
    Object.assign(meta, { name, args, kwargs, worker, retries, queue });
  }
  meta["task_id"] = input.taskId;
  return pythonJsonDumps(meta);
}

function exceptionValue(exception: ExceptionInput): ReadonlyJsonObject {
  return { exc_type: exception.type, exc_message: exception.args, exc_module: exception.module };
}

interface ResultMetaBase {
  /** The state as stored: PENDING, STARTED, RETRY, SUCCESS, FAILURE, REVOKED or a custom state. */
  readonly status: string;
  /** `task_id`; Celery before 4 did not store it. */
  readonly taskId: string | null;
  /** The stored `result` field as is. */
  readonly result: JsonValue;
  readonly traceback: string | null;
  readonly children: JsonValue[];
  /** Null for states that are not done, and when the text cannot be read. */
  readonly dateDone: ParsedTimestamp | null;
  readonly groupId: string | null;
  readonly parentId: string | null;
  /** Present with `result_extended = True`. */
  readonly extended: ExtendedFields | null;
}

export type ResultMeta = ResultMetaBase &
  (
    | { readonly kind: "success" }
    | { readonly kind: "failure"; readonly exception: ExceptionInfo | null }
    | { readonly kind: "retry"; readonly exception: ExceptionInfo | null }
    | { readonly kind: "started"; readonly pid: number | null; readonly hostname: string | null }
    | {
        readonly kind: "revoked";
        readonly exception: ExceptionInfo | null;
        /** The TaskRevokedError's message: "expired", "revoked", "terminated". */
        readonly reason: string | null;
      }
    | { readonly kind: "pending" }
    /** A custom state (`update_state(state="PROGRESS")`) or one Celery does not store (RECEIVED). */
    | { readonly kind: "other" }
  );

export type ResultDecodeResult = { ok: true; meta: ResultMeta } | { ok: false; reason: string };

const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** Reads a result-backend value. Never throws. */
export function decodeResult(raw: string | Uint8Array): ResultDecodeResult {
  let text: string;
  try {
    text = typeof raw === "string" ? raw : UTF8.decode(raw);
  } catch {
    return { ok: false, reason: "result value is not UTF-8 text" };
  }
  const parsed = parseJson(text);
  if (!parsed.ok) return { ok: false, reason: `result value is not JSON: ${parsed.reason}` };
  const value = parsed.value;
  if (!isJsonObject(value)) return { ok: false, reason: "result value must be a JSON object" };
  const status = value["status"];
  if (typeof status !== "string" || status.length === 0) {
    return { ok: false, reason: "result value has no status" };
  }
  const result = value["result"] ?? null;
  const dateDoneText = value["date_done"];
  const dateDone = typeof dateDoneText === "string" ? parseTimestamp(dateDoneText) : null;
  const base: ResultMetaBase = {
    status,
    taskId: textOrNull(value["task_id"]),
    result,
    traceback: textOrNull(value["traceback"]),
    children: Array.isArray(value["children"]) ? value["children"] : [],
    dateDone: dateDone?.ok ? dateDone.value : null,
    groupId: textOrNull(value["group_id"]),
    parentId: textOrNull(value["parent_id"]),
    extended: extendedOf(value),
  };
  switch (status) {
    case "SUCCESS":
      return { ok: true, meta: { ...base, kind: "success" } };
    case "FAILURE":
      return { ok: true, meta: { ...base, kind: "failure", exception: exceptionOf(result) } };
    case "RETRY":
      return { ok: true, meta: { ...base, kind: "retry", exception: exceptionOf(result) } };
    case "STARTED": {
      const info = isJsonObject(result) ? result : {};
      const pid = info["pid"];
      return {
        ok: true,
        meta: {
          ...base,
          kind: "started",
          pid: typeof pid === "number" ? pid : null,
          hostname: textOrNull(info["hostname"]),
        },
      };
    }
    case "REVOKED": {
      const exception = exceptionOf(result);
      const first = exception?.args[0];
      return {
        ok: true,
        meta: { ...base, kind: "revoked", exception, reason: typeof first === "string" ? first : null },
      };
    }
    case "PENDING":
      return { ok: true, meta: { ...base, kind: "pending" } };
    default:
      return { ok: true, meta: { ...base, kind: "other" } };
  }
}

/**
 * Reads a stored exception. `exc_message` is the args list since Celery 4.x; older writers stored a
 * single string, read here as one argument.
 */
function exceptionOf(result: JsonValue): ExceptionInfo | null {
  if (!isJsonObject(result) || typeof result["exc_type"] !== "string") return null;
  const message = result["exc_message"];
  const args = message === undefined || message === null ? [] : Array.isArray(message) ? message : [message];
  return { type: result["exc_type"], module: textOrNull(result["exc_module"]), args };
}

function extendedOf(value: JsonObject): ExtendedFields | null {
  const names = ["name", "args", "kwargs", "worker", "retries", "queue"];
  if (!names.some((name) => name in value)) return null;
  const retries = value["retries"];
  return {
    name: textOrNull(value["name"]),
    args: value["args"] ?? null,
    kwargs: value["kwargs"] ?? null,
    worker: textOrNull(value["worker"]),
    retries: typeof retries === "number" ? retries : null,
    queue: textOrNull(value["queue"]),
  };
}

function textOrNull(value: JsonValue | undefined): string | null {
  return typeof value === "string" ? value : null;
}

/**
 * Whether a new state may be written over what is stored: Celery never replaces a SUCCESS, so a
 * worker that lost its lease or a duplicate delivery cannot turn a success into something else.
 */
export function mayOverwrite(stored: string | Uint8Array | null): boolean {
  if (stored === null) return true;
  const decoded = decodeResult(stored);
  return !(decoded.ok && decoded.meta.status === "SUCCESS");
}

/** The Task phases a result can put a Task in. */
export type ResultPhase =
  "Pending" | "Running" | "Retrying" | "Succeeded" | "Failed" | "Cancelled" | "Expired";

/**
 * The Task phase a stored state stands for. REVOKED is split by its reason: "expired" (the worker
 * received or started the task after `expires`) is Expired; any other revoke ("revoked",
 * "terminated") is Cancelled. States Celery does not define — custom progress states such as
 * PROGRESS — mean that a worker is on it: Running. PENDING is never stored by Celery (it is what an
 * absent key means); it maps to Pending for completeness.
 */
export function phaseOfResult(meta: ResultMeta): ResultPhase {
  switch (meta.kind) {
    case "pending":
      return "Pending";
    case "started":
    case "other":
      return "Running";
    case "retry":
      return "Retrying";
    case "success":
      return "Succeeded";
    case "failure":
      return "Failed";
    case "revoked":
      return meta.reason === "expired" ? "Expired" : "Cancelled";
  }
}

/** What to show as a Task's error: the exception's type, its `str()`, and the traceback. */
export interface ResultError {
  readonly type: string;
  readonly module: string | null;
  readonly message: string;
  readonly traceback: string | null;
}

/** The error a FAILURE, RETRY or REVOKED result carries, or null. */
export function errorOfResult(meta: ResultMeta): ResultError | null {
  if (meta.kind !== "failure" && meta.kind !== "retry" && meta.kind !== "revoked") return null;
  if (meta.exception === null) return null;
  return {
    type: meta.exception.type,
    module: meta.exception.module,
    message: exceptionText(meta.exception.args),
    traceback: meta.traceback,
  };
}
