import { TokenBucket } from "./backoff.ts";
import { MAX_TIMER_MS, systemClock } from "./clock.ts";
import type { Clock } from "./clock.ts";
import { silentLogger } from "./logger.ts";
import type { Logger } from "./logger.ts";

/**
 * A rate-limited work queue of object keys with client-go's semantics, and the worker loop that
 * drives a reconciler from it.
 *
 * Guarantees:
 * - A key added while it is already queued is queued once (dedupe).
 * - A key is never handed to two workers at once: a key added while it is being processed is
 *   marked dirty and queued again only when `done(key)` is called.
 * - `addAfter(key, ms)`: the key is added at the earliest of all pending requests for it.
 * - `addRateLimited(key)`: waits the larger of a per-key exponential backoff (5 ms doubling to
 *   1000 s by default, reset by `forget`) and a global token bucket (10 qps, burst 100) shared by
 *   every key, so one failing object cannot starve the others and many cannot flood the API server.
 * - `shutDown()` stops handing out keys at once, drops queued and delayed keys, and resolves when
 *   every key in processing is `done` (drain).
 *
 * Caveats:
 * - Unlike client-go, keys still queued at shutdown are not handed out: a controller that shuts
 *   down (SIGTERM, lost lease) must stop starting work, and the next leader relists everything.
 * - The queue lives in memory; durability comes from the informer's relist, not from here.
 */

/** What a reconcile asks for next (kube-rs `Action`). */
export interface Action {
  /** Reconcile again after this many ms; undefined: only when something changes. */
  readonly requeueAfterMs: number | undefined;
}

export const Action = {
  requeueAfter(ms: number): Action {
    return { requeueAfterMs: ms };
  },
  awaitChange(): Action {
    return { requeueAfterMs: undefined };
  },
} as const;

/**
 * An error that retrying cannot fix (an invalid spec, a forbidden reference): the key is not
 * requeued; the reconciler should have recorded why in a condition or Event. Found anywhere in
 * the `cause` chain.
 */
export class TerminalError extends Error {
  override name = "TerminalError";
}

/**
 * A write refused with 409 Conflict because the reconcile worked from a stale copy (the cache
 * had not caught up with the controller's own previous write). Expected and harmless: the key is
 * retried rate-limited, like any error, but logged at debug level only.
 */
export class StaleObjectError extends Error {
  override name = "StaleObjectError";
  constructor(obj: { kind?: string; metadata?: { namespace?: string; name?: string } }, cause: unknown) {
    super(
      `${obj.kind ?? "object"} ${obj.metadata?.namespace ?? ""}/${obj.metadata?.name ?? ""} changed while reconciling; retrying from the latest`,
      { cause },
    );
  }
}

export function isTerminalError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 10; e = e.cause, depth++) {
    if (e instanceof TerminalError) {
      return true;
    }
  }
  return false;
}

/**
 * Reconciles one key. Returning (or resolving) `undefined` means `awaitChange`. Throwing retries
 * with rate-limited backoff, except a {@link TerminalError}. `signal` aborts when the queue's run
 * is cancelled (for example the lease was lost): stop and return quickly.
 */
export type Reconciler = (key: string, signal: AbortSignal) => Promise<Action | undefined>;

/** Hooks for metrics; every one optional. */
export interface QueueMetrics {
  depth?(depth: number): void;
  added?(): void;
  retried?(): void;
  reconciled?(outcome: "success" | "requeue" | "error" | "terminal", durationMs: number): void;
}

export interface RateLimitOptions {
  baseDelayMs: number;
  maxDelayMs: number;
  qps: number;
  burst: number;
}

export interface WorkQueueOptions {
  /** For logs and metrics. */
  name: string;
  /** Default: 5 ms → 1000 s per key, 10 qps burst 100 overall (client-go's default controller rate limiter). */
  rateLimit?: Partial<RateLimitOptions>;
  metrics?: QueueMetrics;
  clock?: Clock;
  logger?: Logger;
}

export interface RunOptions {
  /** Aborting it cancels in-flight reconciles (their signal aborts) and shuts the queue down. */
  signal?: AbortSignal;
  /** Called for every failed reconcile, e.g. to record a Warning Event. Must not throw. */
  onError?: (key: string, err: unknown, terminal: boolean) => void;
}

export class WorkQueue {
  readonly name: string;
  /** FIFO of keys ready to be handed out (a Set keeps insertion order). */
  readonly #queue = new Set<string>();
  /** Keys that need processing: queued, or added again while processing. */
  readonly #dirty = new Set<string>();
  readonly #processing = new Set<string>();
  readonly #waiting: DelayedKeys;
  readonly #failures = new Map<string, number>();
  readonly #bucket: TokenBucket;
  readonly #limits: RateLimitOptions;
  readonly #clock: Clock;
  readonly #metrics: QueueMetrics;
  readonly #logger: Logger;
  #getters: (() => void)[] = [];
  #shuttingDown = false;
  #drained: Promise<void> | undefined;
  #resolveDrained: (() => void) | undefined;

  constructor(options: WorkQueueOptions) {
    this.name = options.name;
    this.#limits = { baseDelayMs: 5, maxDelayMs: 1_000_000, qps: 10, burst: 100, ...options.rateLimit };
    this.#clock = options.clock ?? systemClock;
    this.#bucket = new TokenBucket({ qps: this.#limits.qps, burst: this.#limits.burst }, this.#clock);
    this.#metrics = options.metrics ?? {};
    this.#logger = options.logger ?? silentLogger;
    this.#waiting = new DelayedKeys(this.#clock, (key) => this.add(key));
  }

  /** Keys ready to be handed out. */
  len(): number {
    return this.#queue.size;
  }

  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  add(key: string): void {
    if (this.#shuttingDown || this.#dirty.has(key)) {
      return;
    }
    this.#metrics.added?.();
    this.#dirty.add(key);
    if (this.#processing.has(key)) {
      return;
    }
    this.#queue.add(key);
    this.#reportDepth();
    this.#getters.shift()?.();
  }

  /** Adds `key` after `ms`; if it is already waiting, the earlier time wins. */
  addAfter(key: string, ms: number): void {
    if (this.#shuttingDown) {
      return;
    }
    if (ms <= 0) {
      this.add(key);
      return;
    }
    this.#waiting.add(key, this.#clock.monotonic() + ms);
  }

  /** Adds `key` after its backoff; each call counts one more failure for it until `forget`. */
  addRateLimited(key: string): void {
    const failures = this.#failures.get(key) ?? 0;
    this.#failures.set(key, failures + 1);
    const perKey = Math.min(this.#limits.maxDelayMs, this.#limits.baseDelayMs * 2 ** failures);
    this.#metrics.retried?.();
    this.addAfter(key, Math.max(perKey, this.#bucket.reserve()));
  }

  /** Clears the failure count of `key` (it succeeded, or will not be retried). */
  forget(key: string): void {
    this.#failures.delete(key);
  }

  numRequeues(key: string): number {
    return this.#failures.get(key) ?? 0;
  }

  /** The next key, marked as processing; undefined once the queue is shutting down. */
  async get(): Promise<string | undefined> {
    for (;;) {
      if (this.#shuttingDown) {
        return undefined;
      }
      const key = this.#queue.values().next();
      if (!key.done) {
        this.#queue.delete(key.value);
        this.#dirty.delete(key.value);
        this.#processing.add(key.value);
        this.#reportDepth();
        return key.value;
      }
      await new Promise<void>((resolve) => this.#getters.push(resolve));
    }
  }

  /** Ends processing of `key`; queues it again if it was added meanwhile. */
  done(key: string): void {
    this.#processing.delete(key);
    if (this.#dirty.has(key) && !this.#shuttingDown) {
      this.#queue.add(key);
      this.#reportDepth();
      this.#getters.shift()?.();
    }
    if (this.#shuttingDown && this.#processing.size === 0) {
      this.#resolveDrained?.();
    }
  }

  /** Stops handing out keys and resolves when in-flight keys are done. Idempotent. */
  shutDown(): Promise<void> {
    if (this.#drained) {
      return this.#drained;
    }
    this.#shuttingDown = true;
    this.#drained = new Promise((resolve) => {
      this.#resolveDrained = resolve;
    });
    this.#waiting.clear();
    this.#queue.clear();
    this.#dirty.clear();
    this.#reportDepth();
    for (const wake of this.#getters.splice(0)) {
      wake();
    }
    if (this.#processing.size === 0) {
      this.#resolveDrained?.();
    }
    return this.#drained;
  }

  /**
   * Runs `workers` concurrent loops of get → reconcile → done until the queue shuts down, then
   * resolves once they have all returned. The result of each reconcile decides what happens to
   * its key: success forgets its failures (and re-adds it after `requeueAfterMs` if asked), a
   * TerminalError forgets it, any other error re-adds it rate-limited.
   */
  async run(workers: number, reconcile: Reconciler, options: RunOptions = {}): Promise<void> {
    if (!Number.isInteger(workers) || workers < 1) {
      throw new Error(`workqueue ${this.name}: workers must be a positive integer, got ${workers}`);
    }
    const cancel = new AbortController();
    const onAbort = (): void => {
      cancel.abort(options.signal?.reason);
      void this.shutDown();
    };
    if (options.signal?.aborted) {
      onAbort();
    } else {
      options.signal?.addEventListener("abort", onAbort, { once: true });
    }
    try {
      await Promise.all(
        Array.from({ length: workers }, () => this.#worker(reconcile, cancel.signal, options)),
      );
    } finally {
      options.signal?.removeEventListener("abort", onAbort);
    }
  }

  async #worker(reconcile: Reconciler, signal: AbortSignal, options: RunOptions): Promise<void> {
    for (let key = await this.get(); key !== undefined; key = await this.get()) {
      const started = this.#clock.monotonic();
      try {
        const action = await reconcile(key, signal);
        this.forget(key);
        const after = action?.requeueAfterMs;
        if (after !== undefined) {
          this.addAfter(key, after);
        }
        this.#metrics.reconciled?.(
          after === undefined ? "success" : "requeue",
          this.#clock.monotonic() - started,
        );
      } catch (err) {
        const terminal = isTerminalError(err);
        if (terminal) {
          this.forget(key);
          this.#logger.error({ queue: this.name, key, err }, "reconcile failed permanently; not retrying");
        } else if (err instanceof StaleObjectError) {
          this.addRateLimited(key);
          this.#logger.debug({ queue: this.name, key }, err.message);
        } else {
          this.addRateLimited(key);
          this.#logger.warn(
            { queue: this.name, key, err, requeues: this.numRequeues(key) },
            "reconcile failed; retrying with backoff",
          );
        }
        this.#metrics.reconciled?.(terminal ? "terminal" : "error", this.#clock.monotonic() - started);
        try {
          options.onError?.(key, err, terminal);
        } catch (hookErr) {
          this.#logger.error({ queue: this.name, key, err: hookErr }, "reconcile onError hook threw");
        }
      } finally {
        this.done(key);
      }
    }
  }

  #reportDepth(): void {
    this.#metrics.depth?.(this.#queue.size);
  }
}

/**
 * Keys waiting to be added, each at the earliest time asked for, behind a single timer (client-go's
 * delaying queue keeps a heap the same way). A timer per key costs a Timeout object, its closure
 * and often a Node timer list of its own, about 300 bytes for every PeriodicTask waiting for its
 * next run; this costs a heap entry.
 */
class DelayedKeys {
  readonly #clock: Clock;
  readonly #onDue: (key: string) => void;
  /** The time each key is due (monotonic ms): the earliest requested. */
  readonly #due = new Map<string, number>();
  /**
   * A binary min-heap of (time, key). An entry whose time is no longer its key's `#due` is stale
   * (the key was moved earlier, or was due already) and skipped when it reaches the top.
   */
  readonly #heap: { at: number; key: string }[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;

  constructor(clock: Clock, onDue: (key: string) => void) {
    this.#clock = clock;
    this.#onDue = onDue;
  }

  /** Makes `key` due at `at`, unless it is due earlier already. */
  add(key: string, at: number): void {
    const due = this.#due.get(key);
    if (due !== undefined && due <= at) return;
    this.#due.set(key, at);
    this.#push({ at, key });
    // Keys that are moved earlier again and again leave stale entries: drop them now and then.
    if (this.#heap.length > 2 * this.#due.size + 64) this.#rebuild();
    this.#arm();
  }

  clear(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
    this.#due.clear();
    this.#heap.length = 0;
  }

  #fire(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = this.#clock.monotonic();
    for (let top = this.#heap[0]; top && top.at <= now; top = this.#heap[0]) {
      this.#pop();
      if (this.#due.get(top.key) !== top.at) continue;
      this.#due.delete(top.key);
      this.#onDue(top.key);
    }
    this.#arm();
  }

  /** Arms the timer for the earliest entry, unless it is armed for that time or earlier already. */
  #arm(): void {
    const top = this.#heap[0];
    if (!top || top.at >= this.#timerAt) return;
    clearTimeout(this.#timer);
    this.#timerAt = top.at;
    // Beyond MAX_TIMER_MS the timer fires early, finds nothing due and is armed again.
    const delay = Math.min(Math.max(0, top.at - this.#clock.monotonic()), MAX_TIMER_MS);
    this.#timer = setTimeout(() => this.#fire(), delay);
  }

  #rebuild(): void {
    this.#heap.length = 0;
    for (const [key, at] of this.#due) this.#push({ at, key });
  }

  #push(entry: { at: number; key: string }): void {
    const heap = this.#heap;
    let i = heap.push(entry) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const up = heap[parent];
      if (!up || up.at <= entry.at) break;
      heap[i] = up;
      i = parent;
    }
    heap[i] = entry;
  }

  #pop(): void {
    const heap = this.#heap;
    const last = heap.pop();
    if (!last || heap.length === 0) return;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let child = left;
      const r = heap[right];
      const l = heap[left];
      if (!l) break;
      if (r && r.at < l.at) child = right;
      const smaller = heap[child];
      if (!smaller || smaller.at >= last.at) break;
      heap[i] = smaller;
      i = child;
    }
    heap[i] = last;
  }
}
