/**
 * The broker operations the worker needs, as one interface: the Redis implementation is
 * redis-broker.ts; unit tests drive the worker with an in-memory one.
 *
 * Every operation has kombu's Redis-transport meaning (see docs/wire-format.md, "Acknowledgement
 * bookkeeping"), so Python Celery workers and cadent workers can share queues and restore each
 * other's unacknowledged messages.
 */

export interface PoppedMessage {
  /** The list the message was taken from: a queue or one of its priority lanes. */
  readonly key: string;
  /** The message text as stored. */
  readonly raw: string;
}

/** One `unacked` hash entry: delivery tag → `json([envelope, exchange, routing_key])`. */
export interface UnackedRecord {
  readonly tag: string;
  readonly entry: string;
}

/** One result-backend value for `celery-task-meta-<taskId>`. */
export interface ResultWrite {
  readonly taskId: string;
  readonly value: string;
}

/** A message to publish (LPUSH) onto a list: a retry of a task. */
export interface Publish {
  readonly key: string;
  readonly text: string;
}

/** Writes that must happen together: results first, then new messages, then the acks. */
export interface Commit {
  /** Written in order; a key whose stored status is SUCCESS is never overwritten. */
  readonly results: readonly ResultWrite[];
  readonly publishes: readonly Publish[];
  /** Dead-letter records (dead-letter.ts). */
  readonly deadLetters: readonly string[];
  /** Delivery tags to acknowledge: removed from `unacked_index` and `unacked`. */
  readonly acks: readonly string[];
}

export interface RestoreReport {
  /** Messages pushed back onto their queue. */
  readonly restored: number;
  /** Entries that could not be restored and went to the dead-letter list instead. */
  readonly deadLettered: number;
  /** Tags that were no longer in `unacked` (acknowledged or restored by someone else meanwhile). */
  readonly gone: number;
}

export interface Broker {
  /**
   * Declares each queue's binding as a Celery worker does at start (w06), so messages published
   * to the queue's direct exchange by name are routed to it.
   */
  declareQueues(queues: readonly string[]): Promise<void>;
  /**
   * Takes up to `max` messages from the first non-empty list of `keys` (in that order), waiting
   * up to `timeoutSeconds` for one to arrive. Resolves [] on timeout.
   */
  pop(keys: readonly string[], max: number, timeoutSeconds: number): Promise<PoppedMessage[]>;
  /** kombu's `QoS.append`: records delivered messages as unacknowledged, delivered at `now`. */
  recordUnacked(records: readonly UnackedRecord[], now: Date): Promise<void>;
  /**
   * Applies a commit atomically. Rejects with BrokerUnavailableError when the outcome is unknown
   * (connection lost): the caller retries the whole commit, which every part tolerates.
   */
  commit(commit: Commit): Promise<void>;
  /** Moves the delivery time of held messages to `now`, for those still recorded. */
  touchUnacked(tags: readonly string[], now: Date): Promise<void>;
  /**
   * kombu's `restore_visible`: under the `unacked_mutex` lock, restores every message delivered
   * more than `visibilityTimeoutSeconds` before `now`. Resolves null when another worker holds
   * the lock.
   */
  restoreVisible(now: Date, visibilityTimeoutSeconds: number): Promise<RestoreReport | null>;
  /** kombu's `restore_by_tag` for each tag: hands this worker's unacknowledged messages back. */
  restore(tags: readonly string[]): Promise<RestoreReport>;
  /** Puts back messages that were popped but never recorded, so they are taken next, in order. */
  pushBack(messages: readonly PoppedMessage[]): Promise<void>;
  close(): Promise<void>;
}

/** The broker could not be reached, or the outcome of a write is unknown: try again. */
export class BrokerUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "BrokerUnavailableError";
  }
}
