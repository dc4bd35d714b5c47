/**
 * The Redis executor (product.md §3.1): a Task with `task` and no `jobTemplate` is published as a
 * Celery protocol v2 message (src/celery) and its outcome read from Celery's Redis result backend.
 *
 * Guarantees:
 * - At most one publish per attempt: a Lua script records the attempt in `cadent:published:<id>`
 *   (HSETNX) and pushes the message in the same atomic step, so a retried reconcile, a restart, a
 *   second controller, or the PeriodicTask reconciler's early publish never publish it twice.
 *   That hash is also where attempts are counted, so the count survives a lost status write.
 * - The controller holds `eta`/`countdown` itself (the Task reconciler calls `sync` when due): no
 *   long ETA ever sits on the broker, where Celery would redeliver it after the visibility timeout.
 * - Results arrive through the result channels (PSUBSCRIBE celery-task-meta-*) and are also read
 *   from the result key on every sync, so a result published while the controller was away is
 *   picked up when it looks again (every pending Task is looked at on start-up and on reconnect).
 * - `spec.retry` retries a FAILURE with the same task id and `retries` + 1 after its backoff (the
 *   stale FAILURE is removed in the same atomic step as the re-publish).
 * - `timeoutSeconds` travels as the `timelimit` header and is enforced here too: no result within
 *   timeoutSeconds (+ a grace period) of the attempt's publish ends the Task Failed, TimedOut.
 * - Redis down: `sync` reports Pending with reason BrokerUnavailable and asks to look again with
 *   backoff; nothing throws into the controller. A connection that stays silent with a command
 *   outstanding is dropped and reopened, so a black-holed one cannot keep the controller away; the
 *   results connection, which otherwise only listens, is PINGed so that it has a reply to miss.
 */
import { hostname } from "node:os";
import { Redis } from "ioredis";
import {
  decodeResult,
  encodeTaskMessage,
  errorOfResult,
  phaseOfResult,
  queueKey,
  resultKey,
  RESULT_KEY_PREFIX,
  type JsonObject,
  type JsonValue,
  type ResultMeta,
} from "../celery/index.ts";
import { redactUrl } from "../observability/logger.ts";
import type { Logger } from "../runtime/logger.ts";
import type { Executor, Observation, TaskContext, TaskError } from "./executor.ts";
import { hashFraction } from "../schedule/hash.ts";

export interface RedisExecutorOptions {
  /** redis:// or rediss:// (password in the URL, or `password`). */
  url: string;
  password?: string | undefined;
  defaultQueue: string;
  logger: Logger;
  /** Called with a Task key when a result for it is published, and for every tracked Task on reconnect. */
  onResult: (key: string) => void;
  /** How long the publish records live, in seconds (default 7 days). */
  publishRecordTtlSeconds?: number;
  /** Extra time the worker gets beyond timeoutSeconds before the controller calls it TimedOut. */
  timeoutGraceMs?: number;
  onRedisUp?: (up: boolean) => void;
}

/** How long a connection may stay silent with a command outstanding before it is reopened. */
const SILENT_CONNECTION_MS = 10_000;
/** How often the results connection is PINGed: a silent one is then replaced within 15 s. */
const RESULTS_PING_MS = SILENT_CONNECTION_MS / 2;

/** `cadent:published:<task id>`: attempt number → RFC 3339 publish time, and `msg:<n>` → the message. */
export const publishRecordKey = (taskId: string): string => `cadent:published:${taskId}`;

// One atomic step: record the attempt (once), drop a stale result of the previous attempt, push,
// and (early publish of a PeriodicTask's run) journal the run so a crash before its Task exists
// cannot lose it.
const PUBLISH_SCRIPT = `
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[3]) == 1 then
  redis.call('HSET', KEYS[1], 'msg:' .. ARGV[1], ARGV[2])
  if tonumber(ARGV[1]) > 1 then redis.call('DEL', KEYS[3]) end
  redis.call('LPUSH', KEYS[2], ARGV[2])
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  if ARGV[5] ~= '' then
    redis.call('ZADD', KEYS[4], ARGV[6], ARGV[5])
    redis.call('EXPIRE', KEYS[4], ARGV[4])
  end
  return {1, ARGV[3]}
end
return {0, redis.call('HGET', KEYS[1], ARGV[1])}
`;

/** `cadent:early:<periodic task uid>`: runs published before their Task existed, scored by scheduled time (ms). */
export const earlyJournalKey = (periodicTaskUid: string): string => `cadent:early:${periodicTaskUid}`;

const iso = (t: Date): string => t.toISOString().replace(/\.\d{3}Z$/, "Z");

/** Attempts recorded in a publish record: attempt number → publish time. */
function attemptsOf(record: Record<string, string>): Map<number, string> {
  const attempts = new Map<number, string>();
  for (const [field, value] of Object.entries(record)) {
    const n = Number(field);
    if (Number.isInteger(n) && n > 0) attempts.set(n, value);
  }
  return attempts;
}

/** Delay before attempt `attempt` + 1 (spec.retry.backoff), with a jitter stable per task and attempt. */
export function retryDelayMs(
  backoff: { initialSeconds: number; factor: number; maxSeconds: number; jitter: boolean },
  attempt: number,
  taskId: string,
): number {
  const base = Math.min(
    backoff.initialSeconds * backoff.factor ** Math.max(0, attempt - 1),
    backoff.maxSeconds,
  );
  const seconds = backoff.jitter ? base * hashFraction(`retry\u0000${taskId}\u0000${attempt}`) : base;
  return Math.round(seconds * 1000);
}

function isBrokerError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return /connect|Connection|ECONN|stream isn't writeable|MaxRetriesPerRequest|ETIMEDOUT|EHOSTUNREACH|closed|offline/i.test(
    `${err.name} ${err.message}`,
  );
}

export class RedisExecutor implements Executor {
  readonly kind = "redis" as const;
  readonly #o: RedisExecutorOptions;
  readonly #redis: Redis;
  readonly #sub: Redis;
  /** Task id → Task key, for the Tasks not finished yet. */
  readonly #tracked = new Map<string, string>();
  readonly #origin = `cadent-controller@${hostname()}`;
  /** Why the command connection is down (WRONGPASS, ECONNREFUSED, ...), until it is ready again. */
  #connectionError: string | undefined;
  readonly #resultsPing: ReturnType<typeof setInterval>;
  /** A PING on the results connection has not been answered yet: never queue a second one. */
  #pinging = false;

  constructor(options: RedisExecutorOptions) {
    this.#o = options;
    const common = {
      password: options.password,
      lazyConnect: false,
      // Fail commands fast while Redis is away: the Task reconciler reports it and retries with backoff.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      retryStrategy: (times: number) => Math.min(200 * 2 ** Math.min(times, 6), 5_000),
      // A connection that goes silent without closing (accepted by a proxy or load balancer whose
      // backend is gone, a stalled Redis, a half-open connection) would otherwise wait forever,
      // even for the ready check of a reconnect: give it up and reconnect. No command of the
      // controller blocks, so a healthy Redis answers far sooner.
      socketTimeout: SILENT_CONNECTION_MS,
    };
    // ioredis lets a password in the URL win over `password`: a password file must override it.
    const url = options.password === undefined ? options.url : redactUrl(options.url);
    // Auto-pipelining: the commands issued in one tick (a fire time's publishes for thousands of
    // PeriodicTasks, a resync's reads) go out in one socket write instead of one write each, which
    // was the largest cost of a fire in the CPU profile (docs/benchmarks.md, fire lag).
    this.#redis = new Redis(url, {
      ...common,
      connectionName: "cadent-controller",
      enableAutoPipelining: true,
    });
    this.#sub = new Redis(url, {
      ...common,
      connectionName: "cadent-controller-results",
      enableOfflineQueue: true,
    });
    for (const conn of [this.#redis, this.#sub]) {
      // ioredis emits connection errors as events; without a listener they would crash the process.
      // Only the message is kept: a refused AUTH's error object holds the password in `command`.
      const connection = conn === this.#redis ? "commands" : "results";
      conn.on("error", (err: Error) => {
        if (conn === this.#redis) this.#connectionError = err.message;
        options.logger.debug({ connection, err: err.message }, "redis connection error");
      });
    }
    this.#redis.on("ready", () => {
      this.#connectionError = undefined;
      options.onRedisUp?.(true);
    });
    this.#redis.on("close", () => {
      this.#connectionError ??= "the connection was closed";
      options.onRedisUp?.(false);
    });
    this.#sub.on("ready", () => {
      void this.#sub.psubscribe(`${RESULT_KEY_PREFIX}*`).catch(() => undefined);
      // Results published while disconnected are only in the keys: look at every pending Task again.
      for (const key of this.#tracked.values()) options.onResult(key);
    });
    this.#sub.on("pmessage", (_pattern: string, channel: string) => {
      const key = this.#tracked.get(channel.slice(RESULT_KEY_PREFIX.length));
      if (key) options.onResult(key);
    });
    // The results connection only listens, and socketTimeout only counts while a reply is awaited:
    // gone silent (a half-open connection, a proxy whose backend is gone), it would drop every
    // result published from then on, unnoticed. A PING gives it a reply to wait for (Redis answers
    // one in subscriber mode too); unanswered, the connection is replaced and its "ready" handler
    // above re-reads every pending Task's result.
    this.#resultsPing = setInterval(() => {
      if (this.#sub.status !== "ready" || this.#pinging) return;
      this.#pinging = true;
      this.#sub
        .ping()
        .catch(() => undefined)
        .finally(() => {
          this.#pinging = false;
        });
    }, RESULTS_PING_MS);
    this.#resultsPing.unref();
  }

  /** The message and list key for an attempt of a Task. */
  #message(ctx: TaskContext, attempt: number): { key: string; text: string } {
    const spec = ctx.task.spec;
    const created = new Date(ctx.object.metadata?.creationTimestamp ?? ctx.now);
    const expires =
      spec.expires === undefined
        ? null
        : typeof spec.expires === "number"
          ? new Date(created.getTime() + spec.expires * 1000)
          : new Date(spec.expires);
    const encoded = encodeTaskMessage({
      task: spec.task ?? ctx.name,
      id: ctx.taskId,
      args: (spec.args ?? []) as JsonValue[],
      kwargs: (spec.kwargs ?? {}) as JsonObject,
      queue: spec.queue ?? this.#o.defaultQueue,
      priority: spec.priority ?? 0,
      expires,
      now: ctx.now,
      retries: attempt - 1,
      timeLimit: spec.timeoutSeconds === undefined ? undefined : { hard: spec.timeoutSeconds, soft: null },
      origin: this.#origin,
      headers: (spec.headers ?? {}) as JsonObject,
    });
    return { key: encoded.key, text: encoded.text };
  }

  /**
   * Publishes attempt `attempt` unless it was published already; returns its publish time.
   * Used by `sync` and, for the first attempt of a PeriodicTask's run, by the PeriodicTask
   * reconciler at the fire time, before the Task object exists.
   */
  async publish(
    ctx: TaskContext,
    attempt = 1,
    journal?: { periodicTaskUid: string },
  ): Promise<{ published: boolean; at: string }> {
    const { key, text } = this.#message(ctx, attempt);
    const reply = (await this.#redis.eval(
      PUBLISH_SCRIPT,
      4,
      publishRecordKey(ctx.taskId),
      key,
      resultKey(ctx.taskId),
      journal ? earlyJournalKey(journal.periodicTaskUid) : publishRecordKey(ctx.taskId),
      String(attempt),
      text,
      iso(ctx.now),
      String(this.#o.publishRecordTtlSeconds ?? 7 * 86_400),
      journal ? ctx.name : "",
      String(ctx.scheduledTime.getTime()),
    )) as [number, string | null];
    return { published: reply[0] === 1, at: reply[1] ?? iso(ctx.now) };
  }

  /** Runs of a PeriodicTask published early with a scheduled time after `afterMs`. */
  async earlyPublished(
    periodicTaskUid: string,
    afterMs: number,
  ): Promise<{ name: string; scheduledTime: Date }[]> {
    const flat = await this.#redis.zrangebyscore(
      earlyJournalKey(periodicTaskUid),
      `(${afterMs}`,
      "+inf",
      "WITHSCORES",
    );
    const runs: { name: string; scheduledTime: Date }[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      runs.push({ name: flat[i] ?? "", scheduledTime: new Date(Number(flat[i + 1])) });
    }
    return runs;
  }

  /** Forgets early-published runs the PeriodicTask's status now records (scheduled at or before `uptoMs`). */
  async forgetEarlyPublished(periodicTaskUid: string, uptoMs: number): Promise<void> {
    await this.#redis.zremrangebyscore(earlyJournalKey(periodicTaskUid), "-inf", String(uptoMs));
  }

  async sync(ctx: TaskContext): Promise<Observation> {
    const taskKey = `${ctx.namespace}/${ctx.name}`;
    this.#tracked.set(ctx.taskId, taskKey);
    try {
      const observed = await this.#observe(ctx);
      if (["Succeeded", "Failed", "Expired", "Cancelled"].includes(observed.phase))
        this.#tracked.delete(ctx.taskId);
      return observed;
    } catch (err) {
      if (!isBrokerError(err)) throw err;
      // A command refused while disconnected says only "Stream isn't writeable": the connection's
      // own error says why (a wrong password, a refused connection).
      const cause = this.#connectionError ?? (err instanceof Error ? err.message : String(err));
      const message = `Redis is unavailable (${cause}); retrying`;
      return {
        phase:
          ctx.status.phase === undefined || ctx.status.phase === "Scheduled" ? "Pending" : ctx.status.phase,
        reason: "BrokerUnavailable",
        message,
        requeueAfterMs: 2_000 + Math.floor(Math.random() * 3_000),
      };
    }
  }

  async #observe(ctx: TaskContext): Promise<Observation> {
    const [[, recordRaw], [, resultRaw]] = (await this.#redis
      .multi()
      .hgetall(publishRecordKey(ctx.taskId))
      .get(resultKey(ctx.taskId))
      .exec()) as [[unknown, Record<string, string>], [unknown, string | null]];
    const attempts = attemptsOf(recordRaw ?? {});
    const attempt = Math.max(0, ...attempts.keys());
    if (attempt === 0) {
      const { at } = await this.publish(ctx, 1);
      return {
        phase: "Queued",
        queuedTime: at,
        attempts: 1,
        reason: "Published",
        message: `published to ${this.#queueOf(ctx)}`,
      };
    }
    const base = { attempts: attempt, queuedTime: attempts.get(1) };
    const publishedAt = Date.parse(attempts.get(attempt) ?? "");
    const decoded = resultRaw === null ? undefined : decodeResult(resultRaw);
    if (decoded && !decoded.ok) {
      return {
        ...base,
        phase: "Failed",
        completionTime: iso(ctx.now),
        reason: "InvalidResult",
        message: decoded.reason,
        error: { reason: "InvalidResult", message: decoded.reason },
      };
    }
    const meta = decoded?.ok ? decoded.meta : undefined;
    const phase = meta ? phaseOfResult(meta) : "Pending";
    const dateDone = meta?.dateDone ? iso(new Date(meta.dateDone.date.getTime())) : iso(ctx.now);
    const worker =
      meta && "hostname" in meta && meta.hostname ? meta.hostname : (meta?.extended?.worker ?? undefined);

    if (phase === "Succeeded") {
      return {
        ...base,
        phase,
        completionTime: dateDone,
        result: meta?.result ?? null,
        worker: worker ?? undefined,
        reason: "Succeeded",
        message: "the task returned",
      };
    }
    if (phase === "Failed") {
      const retry = ctx.task.spec.retry;
      const error = this.#error(meta);
      if (retry && attempt <= retry.limit) {
        const failedAt = meta?.dateDone?.date.getTime() ?? ctx.now.getTime();
        const retryAt = failedAt + retryDelayMs(retry.backoff, attempt, ctx.taskId);
        if (ctx.now.getTime() < retryAt) {
          return {
            ...base,
            phase: "Retrying",
            error,
            reason: "RetryScheduled",
            message: `attempt ${attempt} failed; attempt ${attempt + 1} at ${iso(new Date(retryAt))}`,
            requeueAfterMs: retryAt - ctx.now.getTime(),
          };
        }
        const { at } = await this.publish(ctx, attempt + 1);
        return {
          ...base,
          attempts: attempt + 1,
          phase: "Queued",
          error,
          reason: "Retried",
          message: `attempt ${attempt + 1} published at ${at}`,
        };
      }
      return {
        ...base,
        phase,
        completionTime: dateDone,
        error,
        reason: "TaskFailed",
        message: `${error.type ?? "Error"}: ${error.message ?? ""}`,
      };
    }
    if (phase === "Expired" || phase === "Cancelled") {
      return {
        ...base,
        phase,
        completionTime: dateDone,
        error: this.#error(meta),
        reason: phase === "Expired" ? "Expired" : "Revoked",
        message: phase === "Expired" ? "the worker received it after it expired" : "revoked",
      };
    }
    // Pending (no result yet), Running (STARTED or a custom state) or Retrying (the worker's own retry).
    const timeout = ctx.task.spec.timeoutSeconds;
    if (timeout !== undefined && Number.isFinite(publishedAt)) {
      const deadline = publishedAt + timeout * 1000 + (this.#o.timeoutGraceMs ?? 5_000);
      if (ctx.now.getTime() >= deadline) {
        const message = `no result within timeoutSeconds (${timeout} s) of attempt ${attempt}`;
        return {
          ...base,
          phase: "Failed",
          completionTime: iso(ctx.now),
          reason: "TimedOut",
          message,
          error: { reason: "TimedOut", message },
        };
      }
      return this.#running(ctx, base, phase, meta, worker, deadline - ctx.now.getTime());
    }
    return this.#running(ctx, base, phase, meta, worker, undefined);
  }

  #running(
    ctx: TaskContext,
    base: { attempts: number; queuedTime: string | undefined },
    phase: string,
    meta: ResultMeta | undefined,
    worker: string | undefined,
    requeueAfterMs: number | undefined,
  ): Observation {
    if (phase === "Running") {
      // Celery stores no start time: the first time the controller sees STARTED stands for it.
      const startTime = ctx.status.startTime ?? iso(ctx.now);
      const message = `running on ${worker ?? "a worker"}`;
      return { ...base, phase: "Running", worker, startTime, reason: "Started", message, requeueAfterMs };
    }
    if (phase === "Retrying") {
      const message = "the worker retries the task";
      return {
        ...base,
        phase: "Retrying",
        error: this.#error(meta),
        reason: "WorkerRetry",
        message,
        requeueAfterMs,
      };
    }
    return { ...base, phase: "Queued", reason: "Published", message: "waiting for a worker", requeueAfterMs };
  }

  #error(meta: ResultMeta | undefined): TaskError {
    const e = meta ? errorOfResult(meta) : null;
    if (!e) return { reason: "TaskFailed", message: "the task failed" };
    return {
      type: e.type,
      message: e.message.slice(0, 8192),
      ...(e.traceback ? { traceback: e.traceback.slice(-8192) } : {}),
    };
  }

  #queueOf(ctx: TaskContext): string {
    return queueKey(ctx.task.spec.queue ?? this.#o.defaultQueue, ctx.task.spec.priority ?? 0);
  }

  /** Removes a queued message of the latest attempt (LREM); a running task cannot be stopped. */
  async cancel(ctx: TaskContext): Promise<void> {
    this.#tracked.delete(ctx.taskId);
    try {
      const record = await this.#redis.hgetall(publishRecordKey(ctx.taskId));
      const attempt = Math.max(0, ...attemptsOf(record).keys());
      const text = record[`msg:${attempt}`];
      if (text) await this.#redis.lrem(this.#queueOf(ctx), 1, text);
    } catch (err) {
      if (!isBrokerError(err)) throw err;
    }
  }

  /**
   * Resolves once the command connection is up, or after `timeoutMs` (Redis may be down: work
   * starts anyway, and Tasks wait Pending). Lets the first reconciles publish instead of failing
   * on a connection that is still being opened.
   */
  async waitUntilReady(timeoutMs: number): Promise<boolean> {
    if (this.#redis.status === "ready") return true;
    return new Promise((resolve) => {
      const done = (ready: boolean): void => {
        clearTimeout(timer);
        this.#redis.off("ready", onReady);
        resolve(ready);
      };
      const onReady = (): void => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.#redis.on("ready", onReady);
    });
  }

  async close(): Promise<void> {
    clearInterval(this.#resultsPing);
    this.#redis.disconnect();
    this.#sub.disconnect();
  }
}
