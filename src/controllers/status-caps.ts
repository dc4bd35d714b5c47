/**
 * Bounds on what a Task's status takes from the outside world. A result or an error comes from a
 * worker, a result backend anyone with Redis access can write to, or a Pod's termination message:
 * none of them may make a status write fail (the API server refuses a string over its schema's
 * maxLength, and any object over its request size limit of about 1.5 MiB), and none may make the
 * controller itself fail on it (a result nested thousands deep overflows the stack of
 * JSON.stringify), or the reconcile of that Task would be retried for ever.
 */
import { STATUS_LIMITS, taskErrorSchema, taskStatusSchema } from "../api/index.ts";
import type { TaskError } from "../executors/executor.ts";

/**
 * Results nested deeper than this are stored as JSON text. Real results rarely nest ten deep; a
 * deeper value is cheap to produce (`[[[[...]]]]`) and expensive for every reader: JSON.stringify
 * overflows at a few thousand levels, Python's json module at about a thousand.
 */
export const RESULT_MAX_DEPTH = 64;

export interface CappedResult {
  /** The value itself, or the start of its JSON text when it is too large or too deep. */
  result: unknown;
  resultTruncated?: boolean;
  /** The compact JSON text, at most STATUS_LIMITS.resultPreviewLength characters. */
  resultPreview: string;
}

/**
 * The result as stored: the value when its compact JSON text fits in STATUS_LIMITS.resultBytes
 * and it nests at most RESULT_MAX_DEPTH deep; otherwise the text cut to that many bytes (a
 * string), with resultTruncated.
 */
export function capResult(result: unknown): CappedResult {
  const written = boundedJson(result, STATUS_LIMITS.resultBytes, RESULT_MAX_DEPTH);
  const previewLength = STATUS_LIMITS.resultPreviewLength;
  const preview =
    written.complete && written.text.length <= previewLength
      ? written.text
      : `${cutText(written.text, previewLength - 1)}…`;
  if (
    written.complete &&
    !written.tooDeep &&
    Buffer.byteLength(written.text, "utf8") <= STATUS_LIMITS.resultBytes
  ) {
    return { result, resultPreview: preview };
  }
  return {
    result: cutBytes(written.text, STATUS_LIMITS.resultBytes),
    resultTruncated: true,
    resultPreview: preview,
  };
}

const maxLengthOf = (field: { unwrap(): { maxLength: number | null } }): number =>
  field.unwrap().maxLength ?? Number.POSITIVE_INFINITY;

/** The CRD's own bounds (the zod schema is where the CRD comes from), so the two cannot drift. */
const ERROR_LIMITS = {
  type: maxLengthOf(taskErrorSchema.shape.type),
  reason: maxLengthOf(taskErrorSchema.shape.reason),
  message: maxLengthOf(taskErrorSchema.shape.message),
  traceback: maxLengthOf(taskErrorSchema.shape.traceback),
};
const WORKER_MAX_LENGTH = maxLengthOf(taskStatusSchema.shape.worker);

/**
 * The error as stored: type, reason and message cut at their ends, the traceback keeping its
 * end (where Python and Node name the failing call and the exception).
 */
export function capError(error: TaskError): TaskError {
  const capped: TaskError = { ...error };
  if (capped.type !== undefined) capped.type = cutText(capped.type, ERROR_LIMITS.type);
  if (capped.reason !== undefined) capped.reason = cutText(capped.reason, ERROR_LIMITS.reason);
  if (capped.message !== undefined) capped.message = cutText(capped.message, ERROR_LIMITS.message);
  if (capped.traceback !== undefined) capped.traceback = lastText(capped.traceback, ERROR_LIMITS.traceback);
  return capped;
}

/** The worker's name as stored (a result backend may claim any hostname). */
export function capWorker(worker: string): string {
  return cutText(worker, WORKER_MAX_LENGTH);
}

/** At most `max` UTF-16 units from the start, never ending inside a surrogate pair. */
function cutText(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = text.slice(0, max);
  return /[\uD800-\uDBFF]$/.test(cut) ? cut.slice(0, -1) : cut;
}

/** At most `max` UTF-16 units from the end, never starting inside a surrogate pair. */
function lastText(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = text.slice(-max);
  return /^[\uDC00-\uDFFF]/.test(cut) ? cut.slice(1) : cut;
}

const utf8 = new TextEncoder();

/** At most `max` bytes of UTF-8 from the start, on a character boundary. */
function cutBytes(text: string, max: number): string {
  // encodeInto writes whole characters only, and says how many UTF-16 units it consumed.
  const { read } = utf8.encodeInto(text, new Uint8Array(max));
  return text.slice(0, read);
}

interface Written {
  /** JSON.stringify's text of the value, or its first `maxLength` or more units. */
  text: string;
  /** Whether `text` is all of it, in at most `maxLength` units. */
  complete: boolean;
  /** Whether the value nests deeper than the depth given. */
  tooDeep: boolean;
}

type Frame =
  | { kind: "array"; items: readonly unknown[]; next: number }
  | { kind: "object"; entries: [string, unknown][]; next: number };

/**
 * The compact JSON text of a JSON value, written without recursion and only until it is longer
 * than `maxLength` UTF-16 units. Hand-written because JSON.stringify recurses (a result nested a
 * few thousand deep throws RangeError) and always writes the whole value (2 MiB to keep 16 KiB).
 * Values come from JSON.parse or are strings, so only JSON's own types occur; anything else is
 * written as JSON.stringify writes it at the top level.
 */
function boundedJson(value: unknown, maxLength: number, maxDepth: number): Written {
  const parts: string[] = [];
  let length = 0;
  let tooDeep = false;
  const stack: Frame[] = [];
  const push = (text: string): void => {
    parts.push(text);
    length += text.length;
  };
  const full = (): boolean => length > maxLength;
  const open = (item: unknown): void => {
    if (Array.isArray(item)) {
      push("[");
      stack.push({ kind: "array", items: item, next: 0 });
    } else if (typeof item === "object" && item !== null) {
      push("{");
      stack.push({ kind: "object", entries: Object.entries(item), next: 0 });
    } else if (typeof item === "string") {
      // Only as much of a long string as can still be shown.
      push(JSON.stringify(item.length > maxLength ? item.slice(0, maxLength + 1) : item));
      return;
    } else {
      push(JSON.stringify(item) ?? "null");
      return;
    }
    if (stack.length > maxDepth) tooDeep = true;
  };

  open(value);
  while (stack.length > 0 && !full()) {
    const frame = stack[stack.length - 1] as Frame;
    if (frame.kind === "array") {
      if (frame.next >= frame.items.length) {
        stack.pop();
        push("]");
        continue;
      }
      if (frame.next > 0) push(",");
      open(frame.items[frame.next++]);
    } else {
      const entry = frame.entries[frame.next];
      if (entry === undefined) {
        stack.pop();
        push("}");
        continue;
      }
      if (frame.next++ > 0) push(",");
      push(`${JSON.stringify(entry[0])}:`);
      open(entry[1]);
    }
  }
  return { text: parts.join(""), complete: stack.length === 0 && !full(), tooDeep };
}
