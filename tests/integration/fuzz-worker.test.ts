/**
 * Fuzzing a real `cadent worker` (issue #8): a random mix of valid messages (encodeTaskMessage,
 * any arguments, priority lanes, time limits up to 1e300 s, expires before and after now), the
 * captured Celery messages and cadent's own mutated by tests/unit/fuzz/envelopes.ts, and garbage,
 * LPUSHed onto its queue on the shared Redis. Afterwards, as docs/worker.md says:
 *
 * - the worker process is still alive, and runs one more message;
 * - every message that decodes (the test decodes each one itself, with the same decoder) ends
 *   exactly as its headers say: one SUCCESS (counted on the result channel, so a second one would
 *   show), REVOKED when it had expired, FAILURE NotRegistered plus a dead letter for an unknown
 *   task, nothing at all with ignore_result;
 * - every message that does not decode gets FAILURE (DecodeError, ContentDisallowed or
 *   InvalidTaskError) when a task id can be read from it, and exactly one dead letter holding its
 *   text;
 * - the queue, its priority lanes and kombu's unacked hash and index are empty: nothing is lost,
 *   nothing is stuck.
 *
 * Messages that would make the outcome depend on the clock (an eta in the future, an expires
 * within ten minutes of now) or that reuse a task id or delivery tag of another case are left out
 * of the mix, and counted. `CADENT_FUZZ_RUNS` sets how many messages (default 400);
 * `CADENT_FUZZ_SEED` replays a run.
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import fc from "fast-check";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  UNACKED_INDEX_KEY,
  UNACKED_KEY,
  decodeTaskMessage,
  encodeTaskMessage,
  queueKey,
  resultKey,
  type JsonValue,
} from "../../src/celery/index.ts";
import { refusalException } from "../../src/worker/outcomes.ts";
import { GiveUp, waitFor } from "../support/ports.ts";
import {
  type Json,
  MESSAGE_VECTORS,
  mutateEnvelope,
  mutation,
  oddValue,
  vectorEnvelope,
} from "../unit/fuzz/envelopes.ts";
import { reportCases, sampleCases } from "../unit/fuzz/support.ts";
import { freshDb, startCadentWorker, storedResult, uniqueQueue, waitForStatus } from "./worker-support.ts";
import type { CadentWorker } from "./worker-support.ts";

const DB = 13;
const DEAD_LETTERS = "cadent.dead-letter";
const MINUTE = 60_000;

type JsonObject = { [key: string]: Json };
const isObject = (v: unknown): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);

/** What one pushed value must end as. */
type Expected =
  | { readonly kind: "success"; readonly id: string }
  | { readonly kind: "revoked"; readonly id: string }
  /** ignore_result: no result at all and no dead letter; the worker's log line says how it ended. */
  | { readonly kind: "silent"; readonly id: string; readonly logged: string }
  | { readonly kind: "not-registered"; readonly id: string }
  | {
      readonly kind: "refused";
      readonly id: string | null;
      readonly excType: string;
      readonly decodeKind: string;
    };

interface Case {
  readonly origin: "valid" | "mutated" | "garbage";
  readonly key: string;
  readonly raw: string | Buffer;
  /** The text the worker gets for it (ioredis decodes replies as UTF-8). */
  readonly text: string;
  readonly expected: Expected;
}

// ---------------------------------------------------------------------------------------------
// What is pushed

type Draft = {
  readonly origin: Case["origin"];
  readonly lane: number;
  readonly make: (queue: string) => string | Buffer;
};

const json = fc.jsonValue({ maxDepth: 3 }).map((v) => v as JsonValue);
const LIMITS = [undefined, null, 30, 1e7, 1e9, 1e300] as const;

/** A message Celery's send_task could have written, for a task the worker has. */
const validMessage: fc.Arbitrary<Draft> = fc
  .record({
    nap: fc.boolean(),
    args: fc.array(json, { maxLength: 4 }),
    kwargs: fc.dictionary(fc.string({ maxLength: 8 }), json, { maxKeys: 3 }),
    priority: fc.integer({ min: 0, max: 9 }),
    hard: fc.constantFrom(...LIMITS),
    soft: fc.constantFrom(...LIMITS),
    expiresIn: fc.option(fc.constantFrom(-60 * MINUTE, 60 * MINUTE), { nil: undefined }),
    etaAgo: fc.option(fc.constantFrom(MINUTE, 1000 * MINUTE), { nil: undefined }),
    retries: fc.nat({ max: 5 }),
    ignoreResult: fc.constantFrom(false, false, false, false, true),
    headers: fc.dictionary(fc.constantFrom("x-tenant", "x-trace", "x-ü"), oddValue, { maxKeys: 2 }),
  })
  .map((m) => ({
    origin: "valid",
    lane: m.priority,
    make: (queue) => {
      const now = new Date();
      return encodeTaskMessage({
        // nap: an asynchronous handler, so a time limit that fires too early would show.
        task: m.nap ? "app.tasks.nap" : "app.tasks.whoami",
        id: randomUUID(),
        args: m.nap ? [0.02] : m.args,
        kwargs: m.nap ? {} : m.kwargs,
        queue,
        priority: m.priority,
        now,
        timeLimit: { hard: m.hard, soft: m.soft },
        expires: m.expiresIn === undefined ? undefined : new Date(now.getTime() + m.expiresIn),
        eta: m.etaAgo === undefined ? undefined : new Date(now.getTime() - m.etaAgo),
        retries: m.retries,
        ignoreResult: m.ignoreResult,
        headers: m.headers as Record<string, JsonValue>,
      }).text;
    },
  }));

/**
 * A fresh task id, delivery tag and queue for a captured message, and the task the worker runs:
 * each case must be told apart from the others, and reach this worker.
 */
function reidentify(envelope: JsonObject, queue: string): JsonObject {
  const headers = envelope["headers"];
  const properties = envelope["properties"];
  if (isObject(properties)) {
    properties["delivery_tag"] = randomUUID();
    const info = properties["delivery_info"];
    if (isObject(info)) info["routing_key"] = queue;
  }
  if (isObject(headers) && "task" in headers) {
    headers["id"] = randomUUID();
    headers["task"] = "app.tasks.whoami";
    return envelope;
  }
  // Protocol 1: the id and the task name are in the body.
  const base64 = isObject(properties) && properties["body_encoding"] === "base64";
  const bodyText = typeof envelope["body"] === "string" ? envelope["body"] : "";
  const body: unknown = JSON.parse(base64 ? Buffer.from(bodyText, "base64").toString("utf8") : bodyText);
  if (isObject(body)) {
    body["id"] = randomUUID();
    body["task"] = "app.tasks.whoami";
    const text = JSON.stringify(body);
    envelope["body"] = base64 ? Buffer.from(text, "utf8").toString("base64") : text;
  }
  return envelope;
}

const mutatedMessage: fc.Arbitrary<Draft> = fc
  .record({
    vector: fc.option(fc.constantFrom(...MESSAGE_VECTORS), { nil: undefined, freq: 4 }),
    mutations: fc.array(mutation, { minLength: 1, maxLength: 3 }),
    lane: fc.integer({ min: 0, max: 9 }),
  })
  .map(({ vector, mutations, lane }) => ({
    origin: "mutated",
    lane,
    make: (queue) => {
      const envelope =
        vector === undefined
          ? (encodeTaskMessage({ task: "app.tasks.whoami", id: "x", queue, now: new Date(), args: [1] })
              .envelope as JsonObject)
          : vectorEnvelope(vector);
      return mutateEnvelope(reidentify(envelope, queue), mutations);
    },
  }));

const garbage: fc.Arbitrary<Draft> = fc
  .oneof(
    fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes)),
    json.map((v) => JSON.stringify(v)),
    fc.string({ maxLength: 60 }),
  )
  .map((raw) => ({ origin: "garbage", lane: 0, make: () => raw }));

const drafts = fc.oneof(
  { weight: 5, arbitrary: validMessage },
  { weight: 4, arbitrary: mutatedMessage },
  { weight: 1, arbitrary: garbage },
);

// ---------------------------------------------------------------------------------------------
// What it must end as: the test decodes with the worker's own decoder, then applies docs/worker.md

/** The key Redis stores a string under, as ioredis writes it (UTF-8; a lone surrogate becomes U+FFFD). */
const asStored = (text: string): string => Buffer.from(text, "utf8").toString("utf8");

type Verdict = { readonly expected: Expected } | { readonly skip: string };

function expectationOf(text: string, registered: ReadonlySet<string>, now: number): Verdict {
  const decoded = decodeTaskMessage(text);
  if (!decoded.ok) {
    const { error } = decoded;
    return {
      expected: {
        kind: "refused",
        id: error.taskId,
        excType: refusalException(error).type,
        decodeKind: error.kind,
      },
    };
  }
  const m = decoded.message;
  if (!registered.has(m.task)) return { expected: { kind: "not-registered", id: m.id } };
  if (m.eta !== null && m.eta.date.getTime() > now - 1000) return { skip: "an eta not yet due" };
  if (m.expires !== null && Math.abs(m.expires.date.getTime() - now) < 10 * MINUTE) {
    return { skip: "an expires too close to now" };
  }
  const expired = m.expires !== null && m.expires.date.getTime() < now;
  // ignore_result: no STARTED, SUCCESS or REVOKED is written (NotRegistered is, as Celery does).
  if (m.ignoreResult) {
    const logged = expired ? "task expired before it could start; revoked" : "task succeeded";
    return { expected: { kind: "silent", id: m.id, logged } };
  }
  if (expired) return { expected: { kind: "revoked", id: m.id } };
  return { expected: { kind: "success", id: m.id } };
}

/** Whether the case reuses a task id or delivery tag of an earlier one, as Redis stores them; records its own. */
function collides(text: string, seen: { ids: Set<string>; tags: Set<string> }): boolean {
  const decoded = decodeTaskMessage(text);
  const rawId = decoded.ok ? decoded.message.id : decoded.error.taskId;
  const id = rawId === null ? null : asStored(rawId);
  const tag = decoded.ok ? asStored(decoded.message.deliveryTag) : null;
  if ((id !== null && seen.ids.has(id)) || (tag !== null && seen.tags.has(tag))) return true;
  if (id !== null) seen.ids.add(id);
  if (tag !== null) seen.tags.add(tag);
  return false;
}

/** The stored result a case must end with: its task id and "STATUS" or "FAILURE <exception type>". */
function resultOf(expected: Expected): { id: string; status: string } | null {
  switch (expected.kind) {
    case "success":
      return { id: expected.id, status: "SUCCESS" };
    case "revoked":
      return { id: expected.id, status: "REVOKED" };
    case "not-registered":
      return { id: expected.id, status: "FAILURE NotRegistered" };
    case "refused":
      return expected.id === null ? null : { id: expected.id, status: `FAILURE ${expected.excType}` };
    case "silent":
      return null;
  }
}

function counts<T>(values: readonly T[]): Map<T, number> {
  const out = new Map<T, number>();
  for (const v of values) out.set(v, (out.get(v) ?? 0) + 1);
  return out;
}

describe("fuzzing a running cadent worker with valid, mutated and garbage messages", () => {
  let redis: Redis;
  let subscriber: Redis;
  let worker: CadentWorker;
  const queue = uniqueQueue("fuzz");
  /** SUCCESS results seen on the result channels, by task id as stored. */
  const successes: string[] = [];

  beforeAll(async () => {
    let url: string;
    ({ url, redis } = await freshDb(DB));
    subscriber = redis.duplicate();
    await subscriber.psubscribe("celery-task-meta-*");
    subscriber.on("pmessage", (_pattern: string, channel: string, message: string) => {
      const status = (JSON.parse(message) as { status?: unknown }).status;
      if (status === "SUCCESS") successes.push(channel.slice("celery-task-meta-".length));
    });
    worker = await startCadentWorker({
      redisUrl: url,
      queues: [queue],
      concurrency: 8,
      prefetchMultiplier: 4,
    });
  });
  afterAll(async () => {
    await worker?.process.stop(30_000);
    subscriber?.disconnect();
    redis?.disconnect();
  });

  it("stays up, answers every message as docs/worker.md says, and leaves nothing behind", async () => {
    const ready = worker.logs().find((line) => line["msg"] === "worker ready");
    const registered = new Set(Array.isArray(ready?.["tasks"]) ? (ready["tasks"] as string[]) : []);
    expect(registered.has("app.tasks.whoami")).toBe(true);

    const now = Date.now();
    const seen = { ids: new Set<string>(), tags: new Set<string>() };
    const skipped: string[] = [];
    const cases: Case[] = [];
    for (const draft of sampleCases(drafts, 400)) {
      const raw = draft.make(queue);
      const text = typeof raw === "string" ? raw : raw.toString("utf8");
      const verdict = expectationOf(text, registered, now);
      if ("skip" in verdict) skipped.push(verdict.skip);
      else if (collides(text, seen)) skipped.push("a task id or delivery tag another case has");
      else
        cases.push({
          origin: draft.origin,
          key: queueKey(queue, draft.lane),
          raw,
          text,
          expected: verdict.expected,
        });
    }
    const pushing = redis.pipeline();
    for (const c of cases) pushing.lpush(c.key, c.raw);
    await pushing.exec();

    const byKind = counts(cases.map((c) => c.expected.kind));
    const letters = cases.filter(
      (c) => c.expected.kind === "refused" || c.expected.kind === "not-registered",
    );
    const withResult = cases.flatMap((c) => {
      const result = resultOf(c.expected);
      return result === null ? [] : [{ ...result, c }];
    });
    await waitFor(
      "every message answered and every book empty",
      // Throws what is still missing, so that a timeout says it.
      async () => {
        if (worker.process.child.exitCode !== null) {
          throw new GiveUp(`the worker exited:\n${worker.process.logTail()}`);
        }
        const [deadLetters, unacked, index, ...lengths] = await Promise.all([
          redis.llen(DEAD_LETTERS),
          redis.hlen(UNACKED_KEY),
          redis.zcard(UNACKED_INDEX_KEY),
          ...Array.from({ length: 10 }, (_, lane) => redis.llen(queueKey(queue, lane))),
        ]);
        const stored = await redis.mget(...withResult.map(({ id }) => resultKey(id)));
        const unanswered = withResult.filter((_, i) => stored[i] == null || stored[i].includes('"STARTED"'));
        const pending = [
          ...(deadLetters < letters.length ? [`${deadLetters} of ${letters.length} dead letters`] : []),
          ...(unacked + index > 0 ? [`${unacked} unacknowledged (${index} in the index)`] : []),
          ...lengths.flatMap((n, lane) => (n > 0 ? [`${n} still on lane ${lane}`] : [])),
          ...(unanswered.length > 0
            ? [`${unanswered.length} without a final result, e.g. ${unanswered[0]?.c.text.slice(0, 300)}`]
            : []),
        ];
        if (pending.length > 0) throw new Error(pending.join("; "));
        return true;
      },
      { timeoutMs: 120_000, intervalMs: 250 },
    );

    reportCases("worker messages", cases.length, {
      valid: cases.filter((c) => c.origin === "valid").length,
      mutated: cases.filter((c) => c.origin === "mutated").length,
      garbage: cases.filter((c) => c.origin === "garbage").length,
      ...Object.fromEntries(byKind),
      "left out": skipped.length,
    });

    // Results, as docs/worker.md says each way a message ends.
    const wrong: string[] = [];
    for (const { id, status, c } of withResult) {
      const meta = await storedResult(redis, id);
      const got =
        meta === null
          ? "no result"
          : `${meta.status}${meta.kind === "failure" ? ` ${meta.exception?.type ?? "?"}` : ""}`;
      if (got !== status)
        wrong.push(`${c.origin} message: expected ${status}, got ${got}\n    ${c.text.slice(0, 600)}`);
    }
    // ignore_result leaves no result to look at: the worker's log says how each one ended.
    const logged = new Set(
      readFileSync(worker.process.logFile, "utf8")
        .split("\n")
        .filter((line) => line.startsWith("{"))
        .map((line) => JSON.parse(line) as { msg?: unknown; taskId?: unknown })
        .map((line) => `${String(line.msg)} ${String(line.taskId)}`),
    );
    for (const c of cases) {
      if (c.expected.kind !== "silent") continue;
      if ((await redis.exists(resultKey(c.expected.id))) > 0) {
        wrong.push(`ignore_result message has a result:\n    ${c.text.slice(0, 600)}`);
      } else if (!logged.has(`${c.expected.logged} ${c.expected.id}`)) {
        wrong.push(
          `ignore_result message did not end with "${c.expected.logged}":\n    ${c.text.slice(0, 600)}`,
        );
      }
    }
    expect(wrong, wrong.slice(0, 10).join("\n")).toEqual([]);

    // Exactly one SUCCESS per message that ran, and none for any other.
    const expectedSuccesses = withResult.filter((r) => r.status === "SUCCESS").map((r) => asStored(r.id));
    expect([...counts(successes)].filter(([, n]) => n > 1)).toEqual([]);
    expect(new Set(successes)).toEqual(new Set(expectedSuccesses));

    // One dead letter per refused or unknown-task message, holding its text as the worker got it.
    const deadLetters = (await redis.lrange(DEAD_LETTERS, 0, -1)).map(
      (l) =>
        JSON.parse(l) as { reason: string; kind: string; message: string; queue: string; worker: string },
    );
    expect(deadLetters.every((l) => l.queue === queue && l.worker === worker.hostname)).toBe(true);
    const letterOf = (reason: string, kind: string, message: string) => `${reason} ${kind} ${message}`;
    expect(counts(deadLetters.map((l) => letterOf(l.reason, l.kind, l.message)))).toEqual(
      counts(
        letters.map((c) =>
          c.expected.kind === "refused"
            ? letterOf("malformed", c.expected.decodeKind, c.text)
            : letterOf("not-registered", "not-registered", c.text),
        ),
      ),
    );

    // Still alive, and still working.
    expect(worker.process.child.exitCode).toBeNull();
    const last = encodeTaskMessage({
      task: "app.tasks.add",
      id: randomUUID(),
      args: [20, 22],
      queue,
      now: new Date(),
    });
    await redis.lpush(last.key, last.text);
    const meta = await waitForStatus(
      redis,
      (JSON.parse(last.text) as { headers: { id: string } }).headers.id,
      ["SUCCESS"],
    );
    expect(meta.result).toBe(42);
  }, 240_000);
});
