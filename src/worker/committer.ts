/**
 * Batches the worker's writes into one broker commit per round trip: everything submitted while
 * the previous commit is in flight (or within the same event-loop turn) goes out together, so the
 * number of Redis transactions does not grow with the task rate.
 *
 * What batching keeps: each submission's parts are written in one transaction (result, then
 * retry message or dead letter, then ack), and a task's STARTED state is never written after its
 * final state. What it changes: a STARTED state whose task finished before the STARTED write went
 * out is dropped — its final state is written instead, in the same transaction, so no reader of
 * the result key could have seen the difference (only a subscriber to the result channel sees one
 * message fewer). A STARTED state is encoded only when it goes out: for short tasks most are
 * dropped, and encoding them was a tenth of the worker's time in the no-op benchmark.
 *
 * Connection failures are retried with backoff until the commit succeeds; a commit Redis refuses
 * in part (a key of the wrong type) is logged and not retried, since retrying cannot fix it.
 */
import type { Logger } from "../runtime/logger.ts";
import { BrokerUnavailableError } from "./broker.ts";
import type { Broker, Commit, Publish, ResultWrite } from "./broker.ts";

export interface CommitRequest {
  readonly result?: ResultWrite | null;
  readonly publish?: Publish | null;
  readonly deadLetter?: string | null;
  readonly ack?: string | null;
}

/** A STARTED result write whose value may be encoded when (and if) it goes out. */
export interface StartedWrite {
  readonly taskId: string;
  readonly value: string | (() => string);
}

interface StartedEntry {
  readonly kind: "started";
  readonly write: StartedWrite;
  dropped: boolean;
}

interface FinalEntry {
  readonly kind: "final";
  readonly request: CommitRequest;
  readonly done: () => void;
}

type Entry = StartedEntry | FinalEntry;

export interface CommitterOptions {
  readonly broker: Broker;
  readonly logger: Logger;
  /** First retry delay after a connection failure; doubles up to `maxRetryDelayMs`. */
  readonly retryDelayMs?: number;
  readonly maxRetryDelayMs?: number;
}

export class Committer {
  readonly #broker: Broker;
  readonly #logger: Logger;
  readonly #retryDelayMs: number;
  readonly #maxRetryDelayMs: number;
  #pending: Entry[] = [];
  /** STARTED entries of the pending batch, by task id, so a final result can drop them. */
  #pendingStarted = new Map<string, StartedEntry>();
  #scheduled = false;
  #running: Promise<void> | null = null;
  #abandoned = false;
  #wakeRetry: (() => void) | null = null;

  constructor(options: CommitterOptions) {
    this.#broker = options.broker;
    this.#logger = options.logger;
    this.#retryDelayMs = options.retryDelayMs ?? 100;
    this.#maxRetryDelayMs = options.maxRetryDelayMs ?? 5_000;
  }

  /** Queues a STARTED state; it goes out with the next commit unless the task's final state does. */
  started(write: StartedWrite): void {
    const entry: StartedEntry = { kind: "started", write, dropped: false };
    this.#pending.push(entry);
    this.#pendingStarted.set(write.taskId, entry);
    this.#schedule();
  }

  /** Queues writes that must happen together; resolves once they are written (or given up on). */
  submit(request: CommitRequest): Promise<void> {
    return new Promise((resolve) => {
      if (this.#abandoned) {
        resolve();
        return;
      }
      if (request.result) {
        const started = this.#pendingStarted.get(request.result.taskId);
        if (started !== undefined) started.dropped = true;
      }
      this.#pending.push({ kind: "final", request, done: resolve });
      this.#schedule();
    });
  }

  /** Resolves when everything submitted so far has been written (or given up on). */
  async drain(): Promise<void> {
    while (this.#running !== null || this.#pending.length > 0) {
      if (this.#running === null) this.#startRunning();
      await this.#running;
    }
  }

  /**
   * Stops retrying: pending submissions resolve unwritten. For a shutdown that can wait no longer;
   * the messages concerned stay unacknowledged and are restored by whichever worker looks next.
   */
  abandon(): void {
    this.#abandoned = true;
    this.#wakeRetry?.();
  }

  #schedule(): void {
    if (this.#scheduled || this.#running !== null) return;
    this.#scheduled = true;
    // Gather what the current event-loop turn submits into the same commit.
    setImmediate(() => {
      this.#scheduled = false;
      if (this.#running === null) this.#startRunning();
    });
  }

  #startRunning(): void {
    this.#running = this.#runBatches().finally(() => {
      this.#running = null;
    });
  }

  async #runBatches(): Promise<void> {
    while (this.#pending.length > 0) {
      const batch = this.#pending;
      this.#pending = [];
      this.#pendingStarted = new Map();
      await this.#write(batch);
    }
  }

  async #write(batch: readonly Entry[]): Promise<void> {
    const commit = toCommit(batch);
    let delay = this.#retryDelayMs;
    while (!this.#abandoned) {
      try {
        await this.#broker.commit(commit);
        break;
      } catch (err) {
        if (!(err instanceof BrokerUnavailableError)) {
          this.#logger.error(
            { err: err instanceof Error ? err.message : String(err), acks: commit.acks.length },
            "commit refused by Redis; the affected messages stay unacknowledged and are restored after the visibility timeout",
          );
          break;
        }
        this.#logger.warn(
          { err: err.message, retryInMs: delay },
          "cannot store results and acknowledgements; retrying",
        );
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          this.#wakeRetry = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.#wakeRetry = null;
        delay = Math.min(delay * 2, this.#maxRetryDelayMs);
      }
    }
    for (const entry of batch) if (entry.kind === "final") entry.done();
  }
}

function toCommit(batch: readonly Entry[]): Commit {
  const results: ResultWrite[] = [];
  const publishes: Publish[] = [];
  const deadLetters: string[] = [];
  const acks: string[] = [];
  for (const entry of batch) {
    if (entry.kind === "started") {
      const { taskId, value } = entry.write;
      if (!entry.dropped) results.push({ taskId, value: typeof value === "string" ? value : value() });
      continue;
    }
    const { result, publish, deadLetter, ack } = entry.request;
    if (result) results.push(result);
    if (publish) publishes.push(publish);
    if (deadLetter) deadLetters.push(deadLetter);
    if (ack) acks.push(ack);
  }
  return { results, publishes, deadLetters, acks };
}
