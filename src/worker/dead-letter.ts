/**
 * The dead-letter list: where the worker puts messages it cannot run and must not lose — messages
 * that do not decode (the ones that crash or silently lose a Python worker), messages for tasks
 * this worker does not know, and unacknowledged messages that have no queue to be restored to.
 *
 * One JSON record per message, LPUSHed (newest first). The original text is kept verbatim under
 * `message`, so an operator can fix the producer and push it back:
 * `LPUSH <queue> <record.message>`.
 */
import { formatTimestamp, pythonJsonDumps } from "../celery/index.ts";

/** Default Redis list of dead letters. */
export const DEFAULT_DEAD_LETTER_KEY = "cadent.dead-letter";

export type DeadLetterReason =
  /** The message could not be decoded or validated; `kind` names the decoder's refusal. */
  | "malformed"
  /** No task of that name is registered on the worker that received it. */
  | "not-registered"
  /** An unacknowledged message could not be restored: no queue to restore it to, or a broken entry. */
  | "unrestorable";

export interface DeadLetter {
  readonly reason: DeadLetterReason;
  /** The decoder's error kind (`invalid-body`, `content-disallowed`, ...) or another short code. */
  readonly kind: string;
  /** What is wrong, for a human. */
  readonly error: string;
  readonly taskId: string | null;
  readonly task: string | null;
  /** The queue the message was taken from (or was to be restored to). */
  readonly queue: string | null;
  /** The worker's node name. */
  readonly worker: string;
  readonly time: Date;
  /** The message text as it was received. */
  readonly message: string;
}

export function encodeDeadLetter(letter: DeadLetter): string {
  return pythonJsonDumps({
    reason: letter.reason,
    kind: letter.kind,
    error: letter.error,
    task_id: letter.taskId,
    task: letter.task,
    queue: letter.queue,
    worker: letter.worker,
    time: formatTimestamp(letter.time),
    message: letter.message,
  });
}
