/**
 * The worker's broker on Redis, with kombu's Redis-transport layout and commands (vectors w02-w06):
 *
 * - pop: `BRPOP <lanes in kombu's order> 1`; on Redis >= 7 `BLMPOP 1 <n> <lanes> RIGHT COUNT <k>`
 *   when more than one message may be taken — the same lists in the same order, the same end,
 *   k consecutive BRPOPs in one round trip.
 * - on delivery: `MULTI; ZADD unacked_index <time> <tag>...; HSET unacked <tag> <entry>...; EXEC`.
 * - commit: `MULTI; EVAL <result writes>; LPUSH <retries>; LPUSH <dead letters>;
 *   ZREM unacked_index <tags>; HDEL unacked <tags>; EXEC` — the result is stored and the message
 *   acknowledged in one transaction. The result write is Celery's (`SETEX key ttl value; PUBLISH
 *   key value`, skipped when a SUCCESS is stored) inside a script, so the SUCCESS check and the
 *   write cannot be separated by another worker's write, as Celery's GET-then-MULTI can.
 * - restore: the `unacked_mutex` lock (`SET NX PX 300000`, released by compare-and-delete),
 *   `ZREVRANGEBYSCORE unacked_index <now - timeout> 0 WITHSCORES`, and per tag
 *   `WATCH unacked; HGET; MULTI; ZREM; HDEL; RPUSH <queue> <message, redelivered>; EXEC`.
 *
 * Three connections: a blocking one for pops, one for commands, and one for WATCH transactions
 * (a WATCH on the shared command connection would make unrelated commits conditional). Each is
 * dropped and reopened when it stays silent for SILENT_CONNECTION_MS with a command outstanding
 * (a half-open connection), and ioredis sends the outstanding commands again on the new one.
 */
import { randomBytes } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";
import { Redis } from "ioredis";
import type { RedisOptions } from "ioredis";
import {
  RELEASE_MUTEX_SCRIPT,
  UNACKED_INDEX_KEY,
  UNACKED_KEY,
  UNACKED_MUTEX_EXPIRE_MS,
  UNACKED_MUTEX_KEY,
  decodeUnackedEntry,
  directExchangeQueues,
  encodeRestoredMessage,
  queueBinding,
  queueKey,
  restoreCeiling,
  restoreTarget,
  resultKey,
  unackedScore,
} from "../celery/index.ts";
import type { Logger } from "../runtime/logger.ts";
import { BrokerUnavailableError } from "./broker.ts";
import type { Broker, Commit, PoppedMessage, RestoreReport, UnackedRecord } from "./broker.ts";
import { encodeDeadLetter } from "./dead-letter.ts";

/**
 * Celery's result write for each key, atomically with the SUCCESS check (see the module comment).
 * KEYS: result keys. ARGV[1]: TTL in seconds (0: no expiry, SET instead of SETEX); ARGV[1+i]: values.
 */
export const STORE_RESULTS_SCRIPT = `
local ttl = tonumber(ARGV[1])
local written = 0
for i, key in ipairs(KEYS) do
  local value = ARGV[i + 1]
  local stored = redis.pcall('GET', key)
  local writable = true
  if type(stored) == 'table' and stored.err then
    writable = false
  elseif stored then
    local ok, meta = pcall(cjson.decode, stored)
    if ok and type(meta) == 'table' and meta['status'] == 'SUCCESS' then writable = false end
  end
  if writable then
    if ttl > 0 then redis.call('SETEX', key, ttl, value) else redis.call('SET', key, value) end
    redis.call('PUBLISH', key, value)
    written = written + 1
  end
end
return written
`;

/** How often a WATCH transaction is retried when other workers keep changing `unacked`. */
const MAX_WATCH_ATTEMPTS = 100;

/**
 * How long a connection may stay silent with a command outstanding before it is dropped and
 * reopened (ioredis `socketTimeout`). Without it a blocking pop on a half-open connection waits
 * forever and the worker stops taking messages. A healthy Redis answers a pop within its timeout
 * (at most MAX_POP_TIMEOUT_SECONDS) and every other command of the worker at once, so a healthy
 * connection is never taken for a silent one.
 */
export const SILENT_CONNECTION_MS = 10_000;

/** The longest a pop may block; its reply must arrive long before SILENT_CONNECTION_MS. */
export const MAX_POP_TIMEOUT_SECONDS = 5;

/**
 * Refuses a pop timeout that the silence check would misread: a pop still blocking when
 * SILENT_CONNECTION_MS runs out has its connection dropped, and a message Redis hands to it at
 * that moment is lost. 0 (block forever) is refused for the same reason.
 */
export function checkPopTimeout(timeoutSeconds: number): void {
  if (!(timeoutSeconds > 0 && timeoutSeconds <= MAX_POP_TIMEOUT_SECONDS)) {
    throw new RangeError(
      `pop timeout must be more than 0 and at most ${MAX_POP_TIMEOUT_SECONDS} s (a connection silent for ${SILENT_CONNECTION_MS / 1000} s is replaced), got ${timeoutSeconds}`,
    );
  }
}

export interface RedisBrokerOptions {
  /** redis:// or rediss:// URL; the password may be in it. */
  readonly url: string;
  /** `result_expires`: the TTL of result keys; 0 keeps them forever. */
  readonly resultExpiresSeconds: number;
  readonly deadLetterKey: string;
  /** The worker's node name, written into dead letters. */
  readonly worker: string;
  readonly logger: Logger;
  /** The password, when it does not come from the URL (ioredis lets the URL's win). */
  readonly password?: string;
  /** Use BRPOP even where BLMPOP is available (one message per round trip, as kombu does). */
  readonly singlePop?: boolean;
}

/** A commit that Redis refused in part: retrying cannot help (a key of the wrong type, ...). */
export class CommitRejectedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CommitRejectedError";
  }
}

export class RedisBroker implements Broker {
  readonly #blocking: Redis;
  readonly #commands: Redis;
  readonly #transactions: Redis;
  readonly #options: RedisBrokerOptions;
  #multiPop = false;
  /** Set by close(): ready() stops waiting. */
  #closed = false;
  /** WATCH transactions on #transactions must not interleave: restores run one at a time. */
  #restoring: Promise<unknown> = Promise.resolve();

  /** Creates the connections; they connect in the background (see `ready`). */
  constructor(options: RedisBrokerOptions) {
    this.#options = options;
    const common: RedisOptions = {
      // Commands wait through a Redis outage instead of failing: the worker's loops resume when
      // the connection is back, and close() bounds how long a shutdown waits.
      maxRetriesPerRequest: null,
      // Commands outstanding on a dropped connection are sent again on the new one: a pop is
      // simply a new pop; a commit or a WATCH transaction is resent as after any reconnect (see
      // "Redis outages" in docs/worker.md).
      socketTimeout: SILENT_CONNECTION_MS,
      lazyConnect: true,
      connectionName: `cadent-worker:${options.worker}`,
      ...(options.password === undefined ? {} : { password: options.password }),
    };
    this.#blocking = new Redis(options.url, common);
    this.#commands = new Redis(options.url, common);
    this.#transactions = new Redis(options.url, common);
    let lastLogged = 0;
    for (const [role, client] of [
      ["blocking", this.#blocking],
      ["commands", this.#commands],
      ["transactions", this.#transactions],
    ] as const) {
      client.on("error", (err: unknown) => {
        // ioredis reports every failed reconnect; once every 10 s is enough to see an outage.
        const now = Date.now();
        if (now - lastLogged < 10_000) return;
        lastLogged = now;
        options.logger.warn(
          { connection: role, err: err instanceof Error ? err.message : String(err) },
          "redis connection error; retrying",
        );
      });
    }
  }

  /**
   * Resolves once connected (waiting through an outage or a refused password, as a Celery worker
   * does) and knows whether the server has BLMPOP; or once the broker is closed.
   */
  async ready(): Promise<void> {
    await Promise.all([
      this.#blocking.connect(),
      this.#commands.connect(),
      this.#transactions.connect(),
    ]).catch(() => {
      // The first attempt failed; ioredis keeps reconnecting and the INFO below waits for it.
    });
    for (let attempt = 0; !this.#closed; attempt++) {
      try {
        const info = await this.#commands.info("server");
        this.#multiPop = !this.#options.singlePop && majorVersion(info) >= 7;
        return;
      } catch {
        // A refused AUTH (wrong password, ACL) fails the waiting commands instead of holding them
        // for the reconnect. Keep waiting, as Celery does and as for an outage: the connection's
        // error handler has logged why (never the error object, whose `command` holds the password).
        await delay(Math.min(500 * 2 ** attempt, 10_000));
      }
    }
  }

  /** Creates a broker and waits until it is connected. */
  static async connect(options: RedisBrokerOptions): Promise<RedisBroker> {
    const broker = new RedisBroker(options);
    await broker.ready();
    return broker;
  }

  async declareQueues(queues: readonly string[]): Promise<void> {
    const tx = this.#commands.multi();
    for (const queue of queues) {
      const { key, member } = queueBinding(queue);
      tx.sadd(key, member);
    }
    checkReplies("declaring queue bindings", await execOrUnavailable(tx));
  }

  async pop(keys: readonly string[], max: number, timeoutSeconds: number): Promise<PoppedMessage[]> {
    checkPopTimeout(timeoutSeconds);
    if (keys.length === 0 || max < 1) return [];
    if (this.#multiPop && max > 1) {
      const reply: unknown = await this.#blocking.call(
        "BLMPOP",
        timeoutSeconds,
        keys.length,
        ...keys,
        "RIGHT",
        "COUNT",
        max,
      );
      if (reply === null) return [];
      if (!Array.isArray(reply) || typeof reply[0] !== "string" || !Array.isArray(reply[1])) {
        throw new Error(`unexpected BLMPOP reply: ${JSON.stringify(reply)}`);
      }
      const key = reply[0];
      return (reply[1] as unknown[]).map((raw) => ({ key, raw: String(raw) }));
    }
    const reply = await this.#blocking.brpop(...keys, timeoutSeconds);
    return reply === null ? [] : [{ key: reply[0], raw: reply[1] }];
  }

  async recordUnacked(records: readonly UnackedRecord[], now: Date): Promise<void> {
    if (records.length === 0) return;
    const score = unackedScore(now);
    const members: (string | number)[] = [];
    // Field-value pairs as a flat list: an object keyed by a batch of fresh tags was the costliest
    // line of the delivery path (V8 rebuilds it as a dictionary, ioredis flattens it again).
    const fields: string[] = [];
    for (const { tag, entry } of records) {
      members.push(score, tag);
      fields.push(tag, entry);
    }
    const tx = this.#commands
      .multi()
      .zadd(UNACKED_INDEX_KEY, ...members)
      .hset(UNACKED_KEY, fields);
    checkReplies("recording delivered messages as unacknowledged", await execOrUnavailable(tx));
  }

  async commit(commit: Commit): Promise<void> {
    const tx = this.#commands.multi();
    const { results, publishes, deadLetters, acks } = commit;
    if (results.length > 0) {
      tx.eval(
        STORE_RESULTS_SCRIPT,
        results.length,
        ...results.map((r) => resultKey(r.taskId)),
        this.#options.resultExpiresSeconds,
        ...results.map((r) => r.value),
      );
    }
    for (const { key, text } of publishes) tx.lpush(key, text);
    if (deadLetters.length > 0) tx.lpush(this.#options.deadLetterKey, ...deadLetters);
    if (acks.length > 0) tx.zrem(UNACKED_INDEX_KEY, ...acks).hdel(UNACKED_KEY, ...acks);
    checkReplies("storing results and acknowledging", await execOrUnavailable(tx));
  }

  async touchUnacked(tags: readonly string[], now: Date): Promise<void> {
    if (tags.length === 0) return;
    const score = unackedScore(now);
    // XX: an entry another worker restored meanwhile must not come back.
    await this.#commands.zadd(UNACKED_INDEX_KEY, "XX", ...tags.flatMap((tag) => [score, tag]));
  }

  restoreVisible(now: Date, visibilityTimeoutSeconds: number): Promise<RestoreReport | null> {
    return this.#serially(() => this.#restoreVisible(now, visibilityTimeoutSeconds));
  }

  restore(tags: readonly string[]): Promise<RestoreReport> {
    return this.#serially(() => this.#restoreAll(tags));
  }

  #serially<T>(run: () => Promise<T>): Promise<T> {
    const next = this.#restoring.then(run, run);
    this.#restoring = next.catch(() => undefined);
    return next;
  }

  async #restoreVisible(now: Date, visibilityTimeoutSeconds: number): Promise<RestoreReport | null> {
    const client = this.#transactions;
    const token = randomBytes(16).toString("hex");
    const locked = await client.set(UNACKED_MUTEX_KEY, token, "PX", UNACKED_MUTEX_EXPIRE_MS, "NX");
    if (locked !== "OK") return null;
    try {
      const visible = await client.zrevrangebyscore(
        UNACKED_INDEX_KEY,
        restoreCeiling(now, visibilityTimeoutSeconds),
        0,
        "WITHSCORES",
      );
      const tags = visible.filter((_, i) => i % 2 === 0);
      return await this.#restoreAll(tags);
    } finally {
      await client.eval(RELEASE_MUTEX_SCRIPT, 1, UNACKED_MUTEX_KEY, token);
    }
  }

  async #restoreAll(tags: readonly string[]): Promise<RestoreReport> {
    let restored = 0;
    let deadLettered = 0;
    let gone = 0;
    for (const tag of tags) {
      const outcome = await this.#restoreTag(tag);
      if (outcome === "restored") restored++;
      else if (outcome === "dead-lettered") deadLettered++;
      else gone++;
    }
    return { restored, deadLettered, gone };
  }

  async #restoreTag(tag: string): Promise<"restored" | "dead-lettered" | "gone"> {
    const client = this.#transactions;
    for (let attempt = 0; attempt < MAX_WATCH_ATTEMPTS; attempt++) {
      await client.watch(UNACKED_KEY);
      const text = await client.hget(UNACKED_KEY, tag);
      const tx = client.multi().zrem(UNACKED_INDEX_KEY, tag).hdel(UNACKED_KEY, tag);
      let outcome: "restored" | "dead-lettered" | "gone" = "gone";
      if (text !== null) {
        const targets = await this.#restoreKeys(text);
        if (targets.ok) {
          for (const key of targets.keys) tx.rpush(key, targets.message);
          outcome = "restored";
        } else {
          tx.lpush(
            this.#options.deadLetterKey,
            encodeDeadLetter({
              reason: "unrestorable",
              kind: targets.kind,
              error: targets.reason,
              taskId: null,
              task: null,
              queue: null,
              worker: this.#options.worker,
              time: new Date(),
              message: targets.message,
            }),
          );
          outcome = "dead-lettered";
          this.#options.logger.error(
            { tag, reason: targets.reason, deadLetterKey: this.#options.deadLetterKey },
            "unacknowledged message cannot be restored; moved to the dead-letter list",
          );
        }
      }
      const replies = await tx.exec();
      if (replies === null) continue; // `unacked` changed under the WATCH: read it again.
      checkReplies(`restoring message ${tag}`, replies);
      return outcome;
    }
    await client.unwatch();
    throw new BrokerUnavailableError(
      `could not restore message ${tag}: "${UNACKED_KEY}" kept changing during ${MAX_WATCH_ATTEMPTS} attempts; it stays unacknowledged and is restored later`,
    );
  }

  /** The lists a restored entry goes to, as kombu's `_do_restore_message` chooses them. */
  async #restoreKeys(
    text: string,
  ): Promise<
    | { ok: true; keys: string[]; message: string }
    | { ok: false; kind: string; reason: string; message: string }
  > {
    const decoded = decodeUnackedEntry(text);
    if (!decoded.ok)
      return { ok: false, kind: "invalid-unacked-entry", reason: decoded.reason, message: text };
    const { envelope, exchange, routingKey } = decoded.entry;
    const message = encodeRestoredMessage(envelope);
    const target = restoreTarget(exchange, routingKey);
    if (target.kind === "unroutable")
      return { ok: false, kind: "unroutable", reason: target.reason, message };
    if (target.kind === "queue") return { ok: true, keys: [queueKey(target.queue)], message };
    const members = await this.#transactions.smembers(target.bindingKey);
    const queues = directExchangeQueues(members, target.routingKey);
    if (queues.length === 0) {
      return {
        ok: false,
        kind: "unroutable",
        reason: `exchange "${exchange}" has no queue bound to routing key "${routingKey}"`,
        message,
      };
    }
    return { ok: true, keys: queues.map((queue) => queueKey(queue)), message };
  }

  async pushBack(messages: readonly PoppedMessage[]): Promise<void> {
    if (messages.length === 0) return;
    // The first message popped must be the next one popped again: push the batch back reversed.
    const byKey = new Map<string, string[]>();
    for (const { key, raw } of [...messages].reverse()) {
      const list = byKey.get(key) ?? [];
      list.push(raw);
      byKey.set(key, list);
    }
    const tx = this.#commands.multi();
    for (const [key, raws] of byKey) tx.rpush(key, ...raws);
    checkReplies("pushing back messages taken during shutdown", await execOrUnavailable(tx));
  }

  async close(): Promise<void> {
    this.#closed = true;
    // A pop may still be blocked; nothing it could return is wanted any more.
    this.#blocking.disconnect();
    // QUIT lets replies in flight arrive; during an outage it would wait for the reconnect.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.allSettled([this.#commands.quit(), this.#transactions.quit()]),
      new Promise((resolve) => (timer = setTimeout(resolve, 2_000))),
    ]);
    clearTimeout(timer);
    this.#commands.disconnect();
    this.#transactions.disconnect();
  }
}

function majorVersion(info: string): number {
  const match = /^redis_version:(\d+)/m.exec(info);
  return match ? Number(match[1]) : 0;
}

type ExecReplies = [error: Error | null, result: unknown][];

async function execOrUnavailable(tx: ReturnType<Redis["multi"]>): Promise<ExecReplies> {
  let replies: ExecReplies | null;
  try {
    replies = await tx.exec();
  } catch (err) {
    if (err instanceof Error && err.name === "ReplyError") {
      throw new CommitRejectedError(`Redis refused the transaction: ${err.message}`);
    }
    throw new BrokerUnavailableError(`Redis transaction failed: ${String(err)}`, { cause: err });
  }
  if (replies === null) throw new BrokerUnavailableError("Redis transaction was aborted");
  return replies;
}

function checkReplies(what: string, replies: ExecReplies): void {
  const errors = replies.flatMap(([err]) => (err === null ? [] : [err.message]));
  if (errors.length > 0) throw new CommitRejectedError(`${what}: Redis refused ${errors.join("; ")}`);
}
