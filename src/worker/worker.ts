/**
 * The worker: takes messages from Redis queues as a Celery worker does, runs the registered task
 * handlers, and writes results in Celery's backend format.
 *
 * Life of a message (docs/worker.md has the user's view):
 *
 * 1. popped from the first non-empty lane, in kombu's key order, while fewer than
 *    `concurrency × prefetchMultiplier` messages are reserved;
 * 2. decoded — a message that does not decode is answered with FAILURE (when it names a task id)
 *    and moved to the dead-letter list; it never reaches a handler;
 * 3. recorded as unacknowledged (kombu's `unacked` hash and `unacked_index`), so that if this
 *    worker dies, any worker's `restore_visible` hands it out again after the visibility timeout;
 * 4. checked: unknown task → FAILURE NotRegistered; `expires` passed → REVOKED; a future `eta` →
 *    held in memory (still unacknowledged, not counted against the prefetch limit, as in Celery);
 * 5. run when a concurrency slot is free: STARTED is reported, the handler gets an AbortSignal
 *    that the time limits abort;
 * 6. the result (SUCCESS, FAILURE, RETRY with the retry message) and the ack are committed in one
 *    transaction; only then does the message leave the books (late acknowledgement).
 *
 * While messages are held, their delivery time in `unacked_index` is refreshed regularly, so a
 * long task or a long ETA on a live worker is not restored to another worker; a dead worker's
 * messages stop being refreshed and come back after the visibility timeout.
 */
import { hostname as osHostname } from "node:os";
import { pino } from "pino";
import type { Logger as PinoLogger } from "pino";
import {
  DEFAULT_VISIBILITY_TIMEOUT_SECONDS,
  brpopKeys,
  decodeTaskMessage,
  pythonJsonString,
  queueOfKey,
} from "../celery/index.ts";
import type { TaskMessage } from "../celery/index.ts";
import { sleep, systemClock } from "../runtime/clock.ts";
import type { Clock } from "../runtime/clock.ts";
import type { Broker, PoppedMessage, RestoreReport, UnackedRecord } from "./broker.ts";
import { Committer } from "./committer.ts";
import type { CommitRequest } from "./committer.ts";
import {
  MaxRetriesExceededError,
  TimeLimitExceeded,
  SoftTimeLimitExceeded,
  WorkerShutdown,
  recordError,
} from "./errors.ts";
import {
  expired,
  failed,
  lazyStartedResult,
  maxRetriesMessage,
  notRegistered,
  refused,
  retried,
  succeeded,
} from "./outcomes.ts";
import type { RetryPlan, Writer } from "./outcomes.ts";
import { createRegistry } from "./task.ts";
import type { RetryOptions, TaskContext, TaskDefinition, TaskRegistry } from "./task.ts";

export const DEFAULT_CONCURRENCY = 16;
/** Celery's `worker_prefetch_multiplier`. */
export const DEFAULT_PREFETCH_MULTIPLIER = 4;
/** Kubernetes gives a Pod 30 s after SIGTERM; leave some of it for handing messages back. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 25_000;
/** kombu's BRPOP timeout: how long a pop waits before the loop looks at its state again. */
export const POP_TIMEOUT_SECONDS = 1;
/** The most messages one pop takes (bounded by the free prefetch room). */
const DEFAULT_MAX_POP_BATCH = 128;
/** How long a shutdown waits for Redis to take back messages before leaving them to the visibility timeout. */
const HAND_BACK_TIMEOUT_MS = 10_000;
/** setTimeout's longest delay; longer ETAs are waited for in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface WorkerOptions {
  readonly broker: Broker;
  readonly tasks: Iterable<TaskDefinition>;
  /** Queue names; each is consumed with its priority lanes. */
  readonly queues: readonly string[];
  /** Handlers running at once. Default 16. */
  readonly concurrency?: number;
  /** Messages reserved at most: concurrency × this. Default 4, as in Celery. */
  readonly prefetchMultiplier?: number;
  /** An unacknowledged message older than this is delivered again. Default 3600 s, as in kombu. */
  readonly visibilityTimeoutSeconds?: number;
  /** How often `restore_visible` runs. Default: half the visibility timeout, between 1 s and 60 s. */
  readonly restoreIntervalMs?: number;
  /** How often held messages' delivery times are refreshed. Default: a quarter of the visibility timeout, between 0.5 s and 5 min. */
  readonly refreshIntervalMs?: number;
  /** The node name in results and logs. Default `cadent@<host name>`. */
  readonly hostname?: string;
  readonly logger?: PinoLogger;
  readonly clock?: Clock;
  /** Report STARTED when a task starts (Celery's `task_track_started`). Default true. */
  readonly trackStarted?: boolean;
  /** The pid in STARTED results. Default: this process's. */
  readonly pid?: number;
  /** The most messages one pop takes. Default 128. */
  readonly maxPopBatch?: number;
}

export interface CloseOptions {
  /** How long running tasks may take to finish before they are aborted and handed back. */
  readonly graceMs?: number;
}

export interface CloseReport {
  /** Messages handed back to their queues (never started, or aborted at the end of the grace period). */
  readonly handedBack: number;
  /** Tasks still running when the grace period ended. */
  readonly abandoned: number;
  /** Whether every hand-back reached Redis; false leaves messages for the visibility timeout. */
  readonly clean: boolean;
}

type DeliveryState = "received" | "eta" | "ready" | "running" | "finishing" | "handed-back";

interface Delivery {
  readonly message: TaskMessage;
  readonly raw: string;
  /** The list it was popped from. */
  readonly key: string;
  /** The queue the message was taken from (the lane's base name). */
  readonly queue: string;
  state: DeliveryState;
  /** Whether it still takes a place of the prefetch limit. */
  counted: boolean;
  etaTimer: ReturnType<typeof setTimeout> | null;
}

interface Running {
  readonly controller: AbortController;
  readonly timers: ReturnType<typeof setTimeout>[];
  readonly startedAt: number;
  settled: boolean;
}

/** What `ctx.retry()` throws; the worker turns it into the retry commit. */
class RetryRequest extends Error {
  readonly plan: RetryPlan;
  constructor(plan: RetryPlan) {
    super(plan.countdown === null ? `Retry at ${plan.eta.toISOString()}` : `Retry in ${plan.countdown}s`);
    this.name = "Retry";
    this.plan = plan;
  }
}

type Settlement =
  | { readonly kind: "returned"; readonly value: unknown }
  | { readonly kind: "threw"; readonly error: unknown }
  | { readonly kind: "hard-limit"; readonly seconds: number };

export class Worker {
  readonly #broker: Broker;
  readonly #registry: TaskRegistry;
  readonly #queueCycle: string[];
  readonly #concurrency: number;
  readonly #prefetchLimit: number;
  readonly #visibilitySeconds: number;
  readonly #restoreIntervalMs: number;
  readonly #refreshIntervalMs: number;
  readonly #hostname: string;
  readonly #logger: PinoLogger;
  readonly #clock: Clock;
  readonly #trackStarted: boolean;
  readonly #pid: number;
  readonly #maxPopBatch: number;
  readonly #committer: Committer;

  /** Recorded in `unacked` and not yet acknowledged or handed back. */
  readonly #held = new Set<Delivery>();
  readonly #ready: Delivery[] = [];
  readonly #running = new Map<Delivery, Running>();
  readonly #receiving = new Set<Promise<void>>();
  readonly #finishing = new Set<Promise<void>>();
  /** Places of the prefetch limit in use: messages popped and not yet done with. */
  #reserved = 0;
  #wakeRoom: (() => void) | null = null;
  #idleWaiters: (() => void)[] = [];
  readonly #stop = new AbortController();
  #started = false;
  #popLoop: Promise<void> = Promise.resolve();
  readonly #intervals: ReturnType<typeof setInterval>[] = [];
  #restoring = false;
  #closing: Promise<CloseReport> | null = null;
  #cutGrace: (() => void) | null = null;

  constructor(options: WorkerOptions) {
    if (options.queues.length === 0) throw new RangeError("the worker needs at least one queue");
    const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
    const multiplier = options.prefetchMultiplier ?? DEFAULT_PREFETCH_MULTIPLIER;
    const visibility = options.visibilityTimeoutSeconds ?? DEFAULT_VISIBILITY_TIMEOUT_SECONDS;
    requireWhole("concurrency", concurrency, 1);
    requireWhole("prefetchMultiplier", multiplier, 1);
    if (!(visibility > 0))
      throw new RangeError(`visibilityTimeoutSeconds must be positive, got ${visibility}`);
    this.#broker = options.broker;
    this.#registry = createRegistry(options.tasks);
    this.#queueCycle = [...new Set(options.queues)];
    this.#concurrency = concurrency;
    this.#prefetchLimit = concurrency * multiplier;
    this.#visibilitySeconds = visibility;
    this.#restoreIntervalMs = options.restoreIntervalMs ?? clamp((visibility * 1000) / 2, 1_000, 60_000);
    this.#refreshIntervalMs = options.refreshIntervalMs ?? clamp((visibility * 1000) / 4, 500, 300_000);
    this.#hostname = options.hostname ?? `cadent@${osHostname()}`;
    this.#logger = options.logger ?? pino({ level: "silent" });
    this.#clock = options.clock ?? systemClock;
    this.#trackStarted = options.trackStarted ?? true;
    this.#pid = options.pid ?? process.pid;
    this.#maxPopBatch = options.maxPopBatch ?? DEFAULT_MAX_POP_BATCH;
    this.#committer = new Committer({ broker: this.#broker, logger: this.#logger });
  }

  get hostname(): string {
    return this.#hostname;
  }

  /** Task names this worker runs. */
  get taskNames(): string[] {
    return [...this.#registry.keys()].sort();
  }

  /** Restores messages other workers left behind, then starts taking messages. */
  async start(): Promise<void> {
    if (this.#started) throw new Error("the worker has already been started");
    this.#started = true;
    await this.#broker.declareQueues(this.#queueCycle);
    // kombu restores once when its consumer starts, then periodically.
    await this.#restoreVisible();
    this.#intervals.push(
      setInterval(() => void this.#restoreVisible(), this.#restoreIntervalMs),
      setInterval(() => void this.#refreshHeld(), this.#refreshIntervalMs),
    );
    for (const interval of this.#intervals) interval.unref();
    this.#popLoop = this.#runPopLoop();
    this.#logger.info(
      {
        hostname: this.#hostname,
        queues: this.#queueCycle,
        concurrency: this.#concurrency,
        prefetch: this.#prefetchLimit,
        visibilityTimeoutSeconds: this.#visibilitySeconds,
        tasks: this.taskNames,
      },
      "worker ready",
    );
  }

  /**
   * Graceful shutdown: stops taking messages, hands back those not started yet, waits up to
   * `graceMs` for running tasks, then aborts the rest and hands their messages back too, writes
   * what is pending and closes the broker. Idempotent.
   */
  close(options: CloseOptions = {}): Promise<CloseReport> {
    if (this.#closing !== null) {
      // A second, impatient request (a second SIGTERM) cuts the grace period short.
      if (options.graceMs === 0) this.#cutGrace?.();
      return this.#closing;
    }
    this.#closing = this.#shutdown(options.graceMs ?? DEFAULT_SHUTDOWN_GRACE_MS);
    return this.#closing;
  }

  // --- taking messages -------------------------------------------------------------------------

  async #runPopLoop(): Promise<void> {
    let failures = 0;
    while (!this.#stop.signal.aborted) {
      const room = this.#prefetchLimit - this.#reserved;
      if (room <= 0) {
        await new Promise<void>((resolve) => (this.#wakeRoom = resolve));
        continue;
      }
      let popped: PoppedMessage[];
      try {
        popped = await this.#broker.pop(
          brpopKeys(this.#queueCycle),
          Math.min(room, this.#maxPopBatch),
          POP_TIMEOUT_SECONDS,
        );
        failures = 0;
      } catch (err) {
        if (this.#stop.signal.aborted) break;
        failures++;
        const delay = Math.min(100 * 2 ** failures, 5_000);
        this.#logger.warn(
          { err: errorText(err), retryInMs: delay },
          "cannot take messages from Redis; retrying",
        );
        await sleep(delay, this.#stop.signal);
        continue;
      }
      const first = popped[0];
      if (first === undefined) continue;
      this.#rotate(queueOfKey(first.key));
      if (this.#stop.signal.aborted) {
        await this.#pushBack(popped);
        break;
      }
      this.#reserved += popped.length;
      const receiving = this.#receive(popped).finally(() => this.#receiving.delete(receiving));
      this.#receiving.add(receiving);
    }
  }

  /** kombu's `_queue_cycle.rotate`: the queue just served goes last, so no queue starves another. */
  #rotate(queue: string): void {
    const at = this.#queueCycle.indexOf(queue);
    if (at === -1 || this.#queueCycle.length < 2) return;
    this.#queueCycle.splice(at, 1);
    this.#queueCycle.push(queue);
  }

  #release(delivery: Delivery): void {
    if (!delivery.counted) return;
    delivery.counted = false;
    this.#freeRoom(1);
  }

  #freeRoom(count: number): void {
    this.#reserved -= count;
    const wake = this.#wakeRoom;
    this.#wakeRoom = null;
    wake?.();
  }

  async #pushBack(popped: readonly PoppedMessage[]): Promise<void> {
    try {
      await this.#broker.pushBack(popped);
    } catch (err) {
      this.#logger.error(
        { err: errorText(err), count: popped.length },
        "could not push back messages taken during shutdown; they are lost",
      );
    }
  }

  async #receive(popped: readonly PoppedMessage[]): Promise<void> {
    const writer = this.#writer();
    const deliveries: Delivery[] = [];
    const records: UnackedRecord[] = [];
    for (const { key, raw } of popped) {
      const queue = queueOfKey(key);
      const decoded = decodeTaskMessage(raw);
      if (!decoded.ok) {
        const { error } = decoded;
        this.#logger.error(
          { queue, taskId: error.taskId, task: error.task, kind: error.kind, reason: error.reason },
          "message refused: it cannot be run; moved to the dead-letter list",
        );
        void this.#committer.submit(refused(error, writer, queue, raw)).then(() => this.#freeRoom(1));
        continue;
      }
      const { message } = decoded;
      deliveries.push({ message, raw, key, queue, state: "received", counted: true, etaTimer: null });
      records.push({ tag: message.deliveryTag, entry: unackedEntry(raw, message) });
    }
    if (records.length === 0) return;
    if (!(await this.#record(records))) {
      this.#freeRoom(deliveries.length);
      await this.#pushBack(deliveries.map(({ key, raw }) => ({ key, raw })));
      return;
    }
    for (const delivery of deliveries) this.#held.add(delivery);
    if (this.#stop.signal.aborted) {
      // Shutdown began while they were being recorded: they go straight back (awaited, so the
      // shutdown does not close the connection under the hand-back).
      await this.#handBack(deliveries);
      return;
    }
    for (const delivery of deliveries) this.#accept(delivery);
  }

  /** Records deliveries as unacknowledged, retrying until it works; false if shutdown came first. */
  async #record(records: readonly UnackedRecord[]): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#broker.recordUnacked(records, new Date(this.#clock.now()));
        return true;
      } catch (err) {
        if (this.#stop.signal.aborted) return false;
        const delay = Math.min(100 * 2 ** attempt, 5_000);
        this.#logger.warn(
          { err: errorText(err), count: records.length, retryInMs: delay },
          "cannot record delivered messages as unacknowledged; retrying",
        );
        await sleep(delay, this.#stop.signal);
      }
    }
  }

  #accept(delivery: Delivery): void {
    const { message } = delivery;
    const now = this.#clock.now();
    if (!this.#registry.has(message.task)) {
      this.#logger.error(
        { task: message.task, taskId: message.id, queue: delivery.queue, known: this.taskNames },
        "received a task that is not registered on this worker; stored FAILURE NotRegistered and moved the message to the dead-letter list",
      );
      this.#finish(delivery, notRegistered(message, this.#writer(), delivery.queue, delivery.raw));
      return;
    }
    if (isExpired(message, now)) {
      this.#revoke(delivery);
      return;
    }
    if (message.eta !== null && message.eta.date.getTime() > now) {
      // Celery does not count ETA messages against the prefetch limit: holding them must not stop
      // the worker from taking the messages behind them.
      this.#release(delivery);
      delivery.state = "eta";
      this.#logger.debug(
        { task: message.task, taskId: message.id, eta: message.eta.text },
        "task held until its eta",
      );
      this.#waitForEta(delivery, message.eta.date.getTime());
      return;
    }
    delivery.state = "ready";
    this.#ready.push(delivery);
    this.#pump();
  }

  #waitForEta(delivery: Delivery, eta: number): void {
    const delay = eta - this.#clock.now();
    if (delay > 0) {
      delivery.etaTimer = setTimeout(() => this.#waitForEta(delivery, eta), Math.min(delay, MAX_TIMER_MS));
      return;
    }
    delivery.etaTimer = null;
    delivery.state = "ready";
    this.#ready.push(delivery);
    this.#pump();
  }

  #revoke(delivery: Delivery): void {
    const { message } = delivery;
    this.#logger.warn(
      { task: message.task, taskId: message.id, expires: message.expires?.text },
      "task expired before it could start; revoked",
    );
    this.#finish(delivery, expired(message, this.#writer()));
  }

  // --- running tasks ---------------------------------------------------------------------------

  #pump(): void {
    while (this.#running.size < this.#concurrency && !this.#stop.signal.aborted) {
      const next = this.#ready.shift();
      if (next === undefined) return;
      this.#run(next);
    }
  }

  #run(delivery: Delivery): void {
    const { message } = delivery;
    if (isExpired(message, this.#clock.now())) {
      this.#revoke(delivery);
      return;
    }
    const definition = this.#registry.get(message.task);
    if (definition === undefined) return; // checked on receipt
    delivery.state = "running";
    const controller = new AbortController();
    const run: Running = { controller, timers: [], startedAt: this.#clock.monotonic(), settled: false };
    this.#running.set(delivery, run);
    if (this.#trackStarted) {
      const started = lazyStartedResult(message, this.#writer());
      if (started !== null) this.#committer.started(started);
    }
    const hard = limit(message.timeLimit.hard, definition.options.timeLimit.hard);
    const soft = limit(message.timeLimit.soft, definition.options.timeLimit.soft);
    if (soft !== null && (hard === null || soft < hard)) {
      armTimer(run.timers, soft * 1000, () => controller.abort(new SoftTimeLimitExceeded(soft)));
    }
    if (hard !== null) {
      armTimer(run.timers, hard * 1000, () => {
        controller.abort(new TimeLimitExceeded(hard));
        this.#settle(delivery, run, { kind: "hard-limit", seconds: hard });
      });
    }
    let outcome: Promise<unknown>;
    try {
      outcome = Promise.resolve(definition.handler(this.#context(delivery, definition, controller.signal)));
    } catch (err) {
      outcome = Promise.reject(err);
    }
    outcome.then(
      (value) => this.#settle(delivery, run, { kind: "returned", value }),
      (error: unknown) => this.#settle(delivery, run, { kind: "threw", error }),
    );
  }

  #context(delivery: Delivery, definition: TaskDefinition, signal: AbortSignal): TaskContext {
    const { message } = delivery;
    const logger = this.#logger;
    const clock = this.#clock;
    let log: PinoLogger | undefined;
    return {
      args: message.args,
      kwargs: message.kwargs,
      taskId: message.id,
      name: message.task,
      retries: message.retries,
      signal,
      hostname: this.#hostname,
      message,
      get log(): PinoLogger {
        log ??= logger.child({ task: message.task, taskId: message.id });
        return log;
      },
      retry(options: RetryOptions = {}): never {
        const maxRetries =
          options.maxRetries === undefined ? definition.options.maxRetries : options.maxRetries;
        // Celery: the attempt after this one would be number retries + 1.
        if (maxRetries !== null && message.retries + 1 > maxRetries) {
          if (options.exc !== undefined) throw options.exc;
          throw new MaxRetriesExceededError(maxRetriesMessage(message));
        }
        if (options.eta !== undefined) {
          throw new RetryRequest({ eta: options.eta, countdown: null, exc: options.exc });
        }
        const countdown = options.countdown ?? definition.options.retryDelaySeconds;
        if (!(countdown >= 0)) throw new RangeError(`retry countdown must be >= 0 seconds, got ${countdown}`);
        throw new RetryRequest({
          eta: new Date(clock.now() + countdown * 1000),
          countdown,
          exc: options.exc,
        });
      },
    };
  }

  #settle(delivery: Delivery, run: Running, settlement: Settlement): void {
    if (run.settled) return;
    run.settled = true;
    for (const timer of run.timers) clearTimeout(timer);
    this.#running.delete(delivery);
    this.#notifyIfIdle();
    const { message } = delivery;
    const writer = this.#writer();
    const fields = {
      task: message.task,
      taskId: message.id,
      runtimeMs: Math.round(this.#clock.monotonic() - run.startedAt),
    };
    let request: CommitRequest;
    if (settlement.kind === "returned") {
      request = succeeded(message, writer, settlement.value);
      this.#logger.info(fields, "task succeeded");
    } else if (settlement.kind === "hard-limit") {
      request = failed(message, writer, recordError(new TimeLimitExceeded(settlement.seconds)));
      this.#logger.error(
        { ...fields, hardLimitSeconds: settlement.seconds },
        "task exceeded its hard time limit; recorded as failed (a handler that ignores its signal keeps running unobserved)",
      );
    } else if (settlement.error instanceof RetryRequest) {
      const { plan } = settlement.error;
      try {
        request = retried(message, writer, plan, delivery.queue);
        this.#logger.info(
          { ...fields, retries: message.retries + 1, eta: plan.eta.toISOString() },
          "task retry scheduled",
        );
      } catch (err) {
        request = failed(message, writer, recordError(err));
        this.#logger.error(
          { ...fields, err: errorText(err) },
          "task retry could not be sent; recorded as failed",
        );
      }
    } else {
      // Node's abortable APIs (timers/promises, events.once, streams) reject with a generic
      // AbortError; the reason the worker aborted for (a time limit) is what the result should say.
      const signal = run.controller.signal;
      const thrown =
        signal.aborted && isAbortError(settlement.error) ? (signal.reason as unknown) : settlement.error;
      const error = recordError(thrown);
      request = failed(message, writer, error);
      this.#logger.error({ ...fields, excType: error.exception.type, err: errorText(thrown) }, "task failed");
    }
    this.#finish(delivery, request);
    this.#pump();
  }

  /** Commits the outcome; the message leaves the books (and the prefetch count) once it is written. */
  #finish(delivery: Delivery, request: CommitRequest): void {
    delivery.state = "finishing";
    const finishing = this.#committer.submit(request).then(() => {
      this.#held.delete(delivery);
      this.#release(delivery);
      this.#finishing.delete(finishing);
    });
    this.#finishing.add(finishing);
  }

  #writer(): Writer {
    return { hostname: this.#hostname, pid: this.#pid, now: new Date(this.#clock.now()) };
  }

  // --- visibility timeout ----------------------------------------------------------------------

  async #restoreVisible(): Promise<void> {
    if (this.#restoring) return;
    this.#restoring = true;
    try {
      const report = await this.#broker.restoreVisible(new Date(this.#clock.now()), this.#visibilitySeconds);
      if (report !== null && report.restored + report.deadLettered > 0) {
        this.#logger.warn(
          { ...report, visibilityTimeoutSeconds: this.#visibilitySeconds },
          "restored messages left unacknowledged longer than the visibility timeout",
        );
      }
    } catch (err) {
      this.#logger.warn({ err: errorText(err) }, "restore of unacknowledged messages failed; will retry");
    } finally {
      this.#restoring = false;
    }
  }

  async #refreshHeld(): Promise<void> {
    const tags = [...this.#held].map((d) => d.message.deliveryTag);
    if (tags.length === 0) return;
    try {
      await this.#broker.touchUnacked(tags, new Date(this.#clock.now()));
    } catch (err) {
      this.#logger.warn({ err: errorText(err) }, "could not refresh the delivery time of held messages");
    }
  }

  // --- shutdown --------------------------------------------------------------------------------

  async #handBack(deliveries: readonly Delivery[]): Promise<boolean> {
    if (deliveries.length === 0) return true;
    for (const delivery of deliveries) {
      if (delivery.etaTimer !== null) clearTimeout(delivery.etaTimer);
      delivery.etaTimer = null;
      delivery.state = "handed-back";
      this.#held.delete(delivery);
      this.#release(delivery);
    }
    try {
      let report: RestoreReport | undefined;
      const restoring = this.#broker.restore(deliveries.map((d) => d.message.deliveryTag)).then((r) => {
        report = r;
      });
      if (!(await within(HAND_BACK_TIMEOUT_MS, restoring)) || report === undefined) {
        throw new Error(`Redis did not answer within ${HAND_BACK_TIMEOUT_MS} ms`);
      }
      this.#logger.info({ ...report }, "handed messages back to their queues");
      return true;
    } catch (err) {
      this.#logger.error(
        { err: errorText(err), count: deliveries.length },
        "could not hand messages back; they stay unacknowledged and are restored after the visibility timeout",
      );
      return false;
    }
  }

  #notifyIfIdle(): void {
    if (this.#running.size > 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const wake of waiters) wake();
  }

  async #shutdown(graceMs: number): Promise<CloseReport> {
    const graceEnds = this.#clock.monotonic() + graceMs;
    this.#stop.abort();
    for (const interval of this.#intervals) clearInterval(interval);
    this.#wakeRoom?.();
    this.#logger.info(
      { running: this.#running.size, held: this.#held.size, graceMs },
      "worker stopping: taking no more messages, handing back those not started",
    );
    let handedBack = 0;
    let clean = true;
    const unstarted = [...this.#held].filter((d) => d.state === "eta" || d.state === "ready");
    this.#ready.length = 0;
    handedBack += unstarted.length;
    clean = (await this.#handBack(unstarted)) && clean;
    // A pop returns within its timeout unless Redis is unreachable; then nothing it could return
    // can be handed back anyway, and closing the connection ends it.
    const intake = Promise.all([this.#popLoop, Promise.allSettled([...this.#receiving])]);
    if (!(await within(POP_TIMEOUT_SECONDS * 1000 + 2_000, intake))) {
      clean = false;
      this.#logger.error({}, "Redis did not answer the last pop; closing without waiting for it");
    }

    if (this.#running.size > 0) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.#cutGrace = null;
          resolve();
        };
        const timer = setTimeout(done, Math.max(0, graceEnds - this.#clock.monotonic()));
        this.#idleWaiters.push(done);
        this.#cutGrace = done;
      });
    }
    const abandoned = [...this.#running];
    for (const [, run] of abandoned) {
      // Whatever the handler does from now on is not recorded: its message goes back to the queue.
      run.settled = true;
      for (const timer of run.timers) clearTimeout(timer);
      run.controller.abort(new WorkerShutdown());
    }
    this.#running.clear();
    if (abandoned.length > 0) {
      this.#logger.warn(
        {
          count: abandoned.length,
          tasks: abandoned.map(([d]) => ({ task: d.message.task, taskId: d.message.id })),
        },
        "tasks still running at the end of the grace period: aborted and handed back to their queues",
      );
      handedBack += abandoned.length;
      clean = (await this.#handBack(abandoned.map(([d]) => d))) && clean;
    }

    // Outcomes already decided are written, within a bounded wait.
    const drained = await within(
      Math.max(5_000, graceEnds - this.#clock.monotonic()),
      Promise.all([this.#committer.drain(), ...this.#finishing]),
    );
    if (!drained) {
      clean = false;
      this.#committer.abandon();
      this.#logger.error({}, "results could not be written before shutdown; their messages will be restored");
    }
    await this.#broker.close();
    this.#logger.info({ handedBack, abandoned: abandoned.length, clean }, "worker stopped");
    return { handedBack, abandoned: abandoned.length, clean };
  }
}

/**
 * kombu's unacked entry, `json.dumps([envelope, exchange, routing_key])`, written around the
 * message text as received instead of re-serializing the parsed envelope: the same bytes as
 * `encodeUnackedEntry` for every message a Celery producer or cadent wrote (Python's json.dumps
 * format), and the same JSON value for any other valid message. Serializing the envelope again
 * was the largest single cost per message in the worker benchmark.
 */
export function unackedEntry(raw: string, message: TaskMessage): string {
  const { exchange, routingKey } = message;
  if (exchange !== lastTail.exchange || routingKey !== lastTail.routingKey) {
    lastTail = {
      exchange,
      routingKey,
      text: `, ${pythonJsonString(exchange)}, ${pythonJsonString(routingKey)}]`,
    };
  }
  return `[${raw}${lastTail.text}`;
}

/**
 * The end of the last unacked entry written: a worker's messages mostly share one exchange and
 * routing key, and encoding the two strings was a measurable cost per message.
 */
let lastTail = { exchange: "", routingKey: "", text: ', "", ""]' };

function isAbortError(error: unknown): boolean {
  return error instanceof Error && error.name === "AbortError";
}

function isExpired(message: TaskMessage, now: number): boolean {
  return message.expires !== null && message.expires.date.getTime() < now;
}

/**
 * setTimeout for any delay. Node fires a delay above MAX_TIMER_MS after 1 ms instead, so a time limit
 * from the wire longer than 24.8 days would end the task at once: wait in steps, keeping every
 * step's timer in `timers` so that clearing them all cancels the wait.
 */
function armTimer(timers: ReturnType<typeof setTimeout>[], ms: number, fire: () => void): void {
  if (ms <= MAX_TIMER_MS) timers.push(setTimeout(fire, ms));
  else timers.push(setTimeout(() => armTimer(timers, ms - MAX_TIMER_MS, fire), MAX_TIMER_MS));
}

/** A time limit from the message, else the task's default; 0 or less means none. */
function limit(fromMessage: number | null, fromTask: number | null): number | null {
  const value = fromMessage !== null && fromMessage > 0 ? fromMessage : fromTask;
  return value !== null && value > 0 ? value : null;
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}

function requireWhole(name: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min) {
    throw new RangeError(`${name} must be a whole number of at least ${min}, got ${String(value)}`);
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Resolves true when `work` settles within `ms`, false otherwise; leaves no timer behind. */
async function within(ms: number, work: Promise<unknown>): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([work.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
