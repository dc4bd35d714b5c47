/**
 * Fuzzing the Celery message decoder and the pure half of the worker's message handling (issue
 * #8). tests/unit/celery/properties.test.ts checks a few thousand mutations of the vectors; this
 * file goes wider and further down the path a message takes through a worker:
 *
 * - random bytes, random JSON, envelope-shaped objects and vectors mutated by tests/unit/fuzz/envelopes.ts
 *   (dropped, retyped and duplicated fields, cut text, broken base64 and UTF-8, other content types
 *   and encodings, 1e400, nesting past the decoder's limit, lone surrogates) always get a message or a typed
 *   refusal: never an exception, never the decoder's catch-all for its own defects;
 * - whatever the decoder accepts, the worker can record, restore (kombu's restore must give back a
 *   message that decodes the same), re-publish for a retry, and answer with a result; whatever it
 *   refuses, the worker can answer with FAILURE and a dead letter that keeps the text;
 * - encode(decode(m)) writes m again, byte for byte, for any message cadent writes.
 */
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import {
  RESERVED_HEADERS,
  decodeResult,
  decodeTaskMessage,
  decodeUnackedEntry,
  encodeRestoredMessage,
  encodeTaskMessage,
  type DecodeResult,
  type JsonValue,
  type MessageDecodeErrorKind,
  type TaskMessage,
  type TaskMessageInput,
} from "../../../src/celery/index.ts";
import {
  expired,
  failed,
  notRegistered,
  refused,
  retried,
  startedResult,
  succeeded,
} from "../../../src/worker/outcomes.ts";
import { recordError } from "../../../src/worker/errors.ts";
import { unackedEntry } from "../../../src/worker/worker.ts";
import { type Json, mutatedMessage, oddValue, vectorEnvelopes } from "./envelopes.ts";
import { fuzz } from "./support.ts";

/** Every refusal kind docs/worker.md names; the compiler checks the list is complete. */
const KINDS: Readonly<Record<MessageDecodeErrorKind, string>> = {
  "not-json": "the value is not UTF-8 JSON text",
  "invalid-envelope": "not an envelope kombu can deliver",
  "content-disallowed": "never deserialized",
  "unsupported-content-encoding": "not UTF-8",
  "invalid-body": "not [args, kwargs, embed] or a protocol 1 dict",
  "missing-task-id": "nothing to report a result under",
  "invalid-headers": "a header the worker acts on is malformed",
};

/** Generous: on a busy 2-core machine CPU time, not the case count, decides how long a run takes. */
const TIMEOUT_MS = 120_000;

const WRITER = { hostname: "cadent@fuzz", pid: 4242, now: new Date("2026-11-25T12:00:00.000Z") };
const QUEUE = "celery";

/** The text a Redis client hands the worker for these bytes (ioredis decodes replies as UTF-8). */
const asReceived = (raw: string | Uint8Array): string =>
  typeof raw === "string" ? raw : Buffer.from(raw).toString("utf8");

/** Decodes, failing on anything but a message or a typed refusal. */
function decodeOrRefuse(raw: string | Uint8Array): DecodeResult {
  let decoded: DecodeResult;
  try {
    decoded = decodeTaskMessage(raw);
  } catch (err) {
    throw new Error(`decodeTaskMessage threw instead of refusing: ${String(err)}`, { cause: err });
  }
  if (decoded.ok) return decoded;
  const { error } = decoded;
  expect(Object.hasOwn(KINDS, error.kind), `unknown refusal kind ${error.kind}`).toBe(true);
  expect(error.reason.trim()).not.toBe("");
  // The decoder turns its own defects into a refusal so that a worker survives them; here they are bugs.
  expect(error.reason).not.toMatch(/^unexpected error/);
  expect(error.taskId === null || (typeof error.taskId === "string" && error.taskId !== "")).toBe(true);
  return decoded;
}

/** What the worker does with a refused message can be written: FAILURE (with a task id) and a dead letter. */
function expectRefusalAnswered(raw: string | Uint8Array, decoded: DecodeResult & { ok: false }): void {
  const text = asReceived(raw);
  const answer = refused(decoded.error, WRITER, QUEUE, text);
  if (decoded.error.taskId === null) expect(answer.result).toBeNull();
  else {
    const result = decodeResult(answer.result?.value ?? "");
    expect(result.ok && result.meta.status).toBe("FAILURE");
  }
  const letter: unknown = JSON.parse(answer.deadLetter ?? "");
  expect(letter).toMatchObject({
    reason: "malformed",
    kind: decoded.error.kind,
    task_id: decoded.error.taskId,
  });
  // The message is kept as received, so it can be pushed back once the producer is fixed.
  expect((letter as { message: string }).message).toBe(text);
}

/**
 * A JSON value as the text a writer of it produces, with what JSON cannot tell apart made equal
 * (Infinity and NaN are written as null, -0 as 0). Iterative: the fuzzed values nest 5,000 deep,
 * past what JSON.stringify and toEqual can recurse through.
 */
function canonical(value: unknown): string {
  const out: string[] = [];
  // Punctuation waits on the stack as symbols, so it cannot be mistaken for a value.
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === "symbol") out.push(v.description ?? "");
    else if (typeof v === "number") out.push(Number.isFinite(v) ? String(v === 0 ? 0 : v) : "null");
    else if (Array.isArray(v)) {
      out.push("[");
      stack.push(Symbol("]"));
      for (let i = v.length - 1; i >= 0; i--) stack.push(v[i], ...(i > 0 ? [Symbol(",")] : []));
    } else if (typeof v === "object" && v !== null) {
      out.push("{");
      stack.push(Symbol("}"));
      const entries = Object.entries(v).reverse();
      entries.forEach(([key, item], i) =>
        stack.push(item, Symbol(`${JSON.stringify(key)}:`), ...(i < entries.length - 1 ? [Symbol(",")] : [])),
      );
    } else out.push(v === undefined ? "null" : JSON.stringify(v));
  }
  return out.join("");
}

/**
 * What the worker does with a decoded message can be written, and round-trips: the unacked entry,
 * kombu's restore (which must decode to the same message), the STARTED/SUCCESS/REVOKED/NotRegistered
 * results, and a retry, which must carry the message on unchanged but for retries and eta.
 */
function expectMessageHandled(raw: string | Uint8Array, message: TaskMessage): void {
  const text = asReceived(raw);
  const entry = decodeUnackedEntry(unackedEntry(text, message));
  if (!entry.ok)
    throw new Error(`the unacked entry of a decoded message does not read back: ${entry.reason}`);
  const restored = decodeOrRefuse(encodeRestoredMessage(entry.entry.envelope));
  if (!restored.ok)
    throw new Error(`kombu's restore of a decoded message is refused: ${restored.error.reason}`);
  // Compared as JSON text writes them (see canonical). The body's workflow part is Celery's four
  // signatures; an absent one is null, and other keys are not carried (Celery does not read them).
  const same = (m: TaskMessage) => ({
    id: m.id,
    task: m.task,
    args: canonical(m.args),
    kwargs: canonical(m.kwargs),
    embed: canonical(["callbacks", "errbacks", "chain", "chord"].map((k) => m.embed[k] ?? null)),
    // A retry writes times in Celery's own form (UTC, six fraction digits): the same instants.
    eta: m.eta === null ? null : [m.eta.date.getTime(), m.eta.microsecond],
    expires: m.expires === null ? null : [m.expires.date.getTime(), m.expires.microsecond],
    // A limit of 0 (or -0) is no limit; a retry writes it as null.
    timeLimit: [m.timeLimit.hard, m.timeLimit.soft].map((v) => (v !== null && v > 0 ? v : null)),
    deliveryTag: m.deliveryTag,
    routingKey: m.routingKey,
  });
  expect(same(restored.message)).toEqual(same(message));
  // kombu marks a restored message redelivered in its headers object; `"headers": null` (seen in
  // the wild from protocol 1 producers) has none to mark, and kombu's own restore fails on it.
  const headers = entry.entry.envelope["headers"];
  if (typeof headers === "object" && headers !== null) expect(restored.message.redelivered).toBe(true);

  for (const answer of [
    startedResult(message, WRITER),
    succeeded(message, WRITER, { args: message.args, kwargs: message.kwargs }).result,
    expired(message, WRITER).result,
    notRegistered(message, WRITER, QUEUE, text).result,
  ]) {
    if (answer === null || answer === undefined) continue;
    const result = decodeResult(answer.value);
    if (!result.ok) throw new Error(`a result the worker wrote does not read back: ${result.reason}`);
    expect(result.meta.taskId).toBe(message.id);
  }

  const plan = { eta: new Date("2026-11-25T12:05:00.000Z"), countdown: 300, exc: undefined };
  let retry: ReturnType<typeof retried>;
  try {
    retry = retried(message, WRITER, plan, QUEUE);
  } catch (err) {
    // The worker records a retry it cannot encode as FAILURE (worker.ts); that answer must exist.
    expect(failed(message, WRITER, recordError(err)).ack).toBe(message.deliveryTag);
    return;
  }
  const again = decodeOrRefuse(retry.publish?.text ?? "");
  if (!again.ok) throw new Error(`a retry of a decoded message is refused: ${again.error.reason}`);
  const r = again.message;
  expect({ ...same(r), eta: null, deliveryTag: null, routingKey: null }).toEqual({
    ...same(message),
    eta: null,
    deliveryTag: null,
    routingKey: null,
  });
  expect([r.retries, r.parentId, r.eta?.date.getTime()]).toEqual([
    message.retries + 1,
    message.id,
    plan.eta.getTime(),
  ]);
  expect(canonical(r.customHeaders)).toBe(
    canonical(
      Object.fromEntries(
        Object.entries(message.customHeaders).filter(([name]) => !RESERVED_HEADERS.has(name)),
      ),
    ),
  );
}

function expectAnswered(raw: string | Uint8Array): void {
  const decoded = decodeOrRefuse(raw);
  if (decoded.ok) expectMessageHandled(raw, decoded.message);
  else expectRefusalAnswered(raw, decoded);
}

/** Objects with the envelope's keys, each holding anything. */
const envelopeShaped = fc
  .record(
    {
      body: oddValue,
      "content-type": fc.oneof(fc.constant("application/json"), oddValue),
      "content-encoding": oddValue,
      headers: fc.oneof(
        fc.record(
          { id: fc.oneof(fc.uuid(), oddValue), task: fc.oneof(fc.constant("app.tasks.whoami"), oddValue) },
          { requiredKeys: [] },
        ),
        oddValue,
      ),
      properties: fc.oneof(
        fc.record(
          {
            delivery_tag: fc.oneof(fc.uuid(), oddValue),
            delivery_info: fc.oneof(
              fc.record({ exchange: fc.constant(""), routing_key: fc.constant("celery") }),
              oddValue,
            ),
            body_encoding: fc.oneof(fc.constant("base64"), oddValue),
          },
          { requiredKeys: [] },
        ),
        oddValue,
      ),
    },
    { requiredKeys: [] },
  )
  .map((envelope) => envelope as Json);

const asTextOrBytes = (value: fc.Arbitrary<string>) =>
  fc.tuple(value, fc.boolean()).map(([text, bytes]) => (bytes ? Buffer.from(text, "utf8") : text));

// fast-check types JSON as possibly undefined members; what it generates is plain JSON.
const json = fc.jsonValue({ maxDepth: 3 }).map((v) => v as JsonValue);
const jsonObject = fc.dictionary(fc.string({ maxLength: 8 }), json, { maxKeys: 4 });
const text = fc.string({ unit: "binary", minLength: 1, maxLength: 30 });
const instant = fc.date({
  min: new Date("0001-01-01T00:00:00Z"),
  max: new Date("9999-12-31T23:59:59.999Z"),
  noInvalidDate: true,
});
const seconds = fc.option(fc.double({ min: 0.001, max: 1e9, noNaN: true }), { nil: null });

/** Everything encodeTaskMessage takes, each field present or not. */
const taskInput: fc.Arbitrary<TaskMessageInput> = fc.record(
  {
    task: text,
    id: text,
    queue: text.filter((q) => !q.includes("\x06\x16")),
    args: fc.array(json, { maxLength: 4 }),
    kwargs: jsonObject,
    priority: fc.integer({ min: 0, max: 9 }),
    eta: instant,
    expires: instant,
    now: instant,
    retries: fc.nat({ max: 1000 }),
    timeLimit: fc.record({ hard: seconds, soft: seconds }),
    shadow: fc.option(text, { nil: null }),
    group: fc.option(text, { nil: null }),
    groupIndex: fc.option(fc.nat(), { nil: null }),
    rootId: fc.option(text, { nil: null }),
    parentId: fc.option(text, { nil: null }),
    origin: text,
    lang: text,
    ignoreResult: fc.boolean(),
    replyTo: text,
    headers: fc.dictionary(
      text.filter((h) => !RESERVED_HEADERS.has(h)),
      json,
      { maxKeys: 3 },
    ),
    embed: fc.record({ callbacks: json, errbacks: json, chain: json, chord: json }, { requiredKeys: [] }),
    argsrepr: text,
    kwargsrepr: text,
    deliveryTag: text,
  },
  { requiredKeys: ["task", "id", "queue", "now"] },
);

/** The encoder's input that says what a decoded message says. */
function inputOf(m: TaskMessage, now: Date): TaskMessageInput {
  return {
    ...m,
    queue: m.routingKey,
    priority: m.priority ?? 0,
    now,
    origin: m.origin ?? undefined,
    lang: m.lang ?? undefined,
    replyTo: m.replyTo ?? undefined,
    argsrepr: m.argsrepr ?? undefined,
    kwargsrepr: m.kwargsrepr ?? undefined,
    headers: m.customHeaders,
  };
}

describe("fuzzing the Celery decoder and the worker's handling of what it decodes", () => {
  test(
    "random bytes",
    async () => {
      await fuzz(
        "celery decoder random bytes",
        fc.property(
          fc.oneof(
            fc.uint8Array({ maxLength: 512 }),
            fc
              .tuple(fc.constantFrom("{", '{"headers":', "[", '"'), fc.uint8Array({ maxLength: 64 }))
              .map(([prefix, rest]) => Buffer.concat([Buffer.from(prefix), rest])),
          ),
          (bytes) => expectAnswered(bytes),
        ),
        5_000,
      );
    },
    TIMEOUT_MS,
  );

  test(
    "random JSON and envelope-shaped objects",
    async () => {
      await fuzz(
        "celery decoder random JSON",
        fc.property(
          asTextOrBytes(fc.oneof(json, envelopeShaped).map((v) => JSON.stringify(v))),
          expectAnswered,
        ),
        5_000,
      );
    },
    TIMEOUT_MS,
  );

  test(
    "the captured messages, mutated",
    async () => {
      await fuzz(
        "celery decoder mutated vectors",
        fc.property(mutatedMessage(vectorEnvelopes), expectAnswered),
        2_500,
      );
    },
    TIMEOUT_MS,
  );

  test(
    "cadent's own messages, mutated",
    async () => {
      const envelopes = taskInput.map(
        (input) => encodeTaskMessage(input).envelope as { [key: string]: Json },
      );
      await fuzz(
        "celery decoder mutated cadent messages",
        fc.property(mutatedMessage(envelopes), expectAnswered),
        800,
      );
    },
    TIMEOUT_MS,
  );

  test(
    "encode(decode(m)) writes m again, byte for byte, for any message cadent writes",
    async () => {
      await fuzz(
        "celery encode-decode round trip",
        fc.property(taskInput, (input) => {
          const first = encodeTaskMessage(input);
          const decoded = decodeOrRefuse(first.text);
          if (!decoded.ok) throw new Error(`cadent's own message is refused: ${decoded.error.reason}`);
          expect(canonical(decoded.message.args)).toBe(canonical(input.args ?? []));
          const second = encodeTaskMessage(inputOf(decoded.message, input.now));
          expect(second.key).toBe(first.key);
          expect(second.text).toBe(first.text);
          expectMessageHandled(first.text, decoded.message);
        }),
        500,
      );
    },
    TIMEOUT_MS,
  );

  test(
    "megabytes of message are decoded, and restored, in one pass",
    async () => {
      // Sizes keep to what a run can afford: cadent's JSON writer spends about a microsecond and a
      // half per non-ASCII character (src/celery/json.ts), so those strings stay shorter.
      const filler = fc.oneof(
        fc.tuple(fc.integer({ min: 100_000, max: 2_000_000 }), fc.constantFrom("x", "\\", '"')),
        fc.tuple(fc.integer({ min: 10_000, max: 100_000 }), fc.constantFrom("\u00e9", "\ud83d\ude00")),
      );
      await fuzz(
        "celery decoder huge messages",
        fc.property(filler, fc.boolean(), ([length, unit], asArgs) => {
          const text = unit.repeat(Math.ceil(length / unit.length));
          const { text: raw } = encodeTaskMessage({
            task: "app.tasks.whoami",
            id: "huge",
            queue: QUEUE,
            now: WRITER.now,
            ...(asArgs ? { args: [text] } : { headers: { "x-filler": text } }),
          });
          const decoded = decodeOrRefuse(raw);
          if (!decoded.ok) throw new Error(`a large message is refused: ${decoded.error.reason}`);
          const entry = decodeUnackedEntry(unackedEntry(raw, decoded.message));
          if (!entry.ok) throw new Error(entry.reason);
          expect(decodeOrRefuse(encodeRestoredMessage(entry.entry.envelope)).ok).toBe(true);
          expect(decodeOrRefuse(raw.slice(0, -3)).ok).toBe(false);
        }),
        4,
      );
    },
    TIMEOUT_MS,
  );
});
