import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  RESERVED_HEADERS,
  celery52Reading,
  decodeResult,
  decodeTaskMessage,
  encodeResult,
  encodeTaskMessage,
  formatTimestamp,
  parseTimestamp,
  queueKey,
  queueOfKey,
  saferepr,
} from "../../../src/celery/index.ts";
import type { JsonObject, JsonValue } from "../../../src/celery/index.ts";
import { rawOf, vectorFiles } from "./vectors.ts";

/** What a value becomes after a trip through JSON text (-0 becomes 0). */
const throughJson = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

// fast-check types object members as possibly undefined; the values it generates are plain JSON.
const asJson = (value: unknown) => value as JsonValue;
const json = fc.jsonValue({ maxDepth: 3 }).map(asJson);
const smallJson = fc.jsonValue({ maxDepth: 2 }).map(asJson);
const jsonObject = fc.dictionary(fc.string({ maxLength: 8 }), json, { maxKeys: 4 });
const name = fc.string({ minLength: 1, maxLength: 30 }).filter((s) => !s.includes("\x06\x16"));
// Python's datetimes, to the millisecond: years 1..9999.
const instant = fc.date({
  min: new Date("0001-01-01T00:00:00.000Z"),
  max: new Date("9999-12-31T23:59:59.999Z"),
  noInvalidDate: true,
});
const customHeaders = fc.dictionary(
  fc.string({ minLength: 1, maxLength: 10 }).filter((key) => !RESERVED_HEADERS.has(key)),
  json,
  { maxKeys: 3 },
);

describe("encode → decode", () => {
  it("reads back every field cadent writes, for any arguments and headers", () => {
    fc.assert(
      fc.property(
        fc.record({
          task: name,
          id: fc.uuid(),
          args: fc.array(json, { maxLength: 4 }),
          kwargs: jsonObject,
          queue: name,
          priority: fc.integer({ min: 0, max: 9 }),
          eta: fc.option(instant, { nil: undefined }),
          expires: fc.option(instant, { nil: undefined }),
          retries: fc.nat({ max: 100 }),
          hard: fc.option(fc.double({ min: 0.001, max: 1e6, noNaN: true }), { nil: null }),
          headers: customHeaders,
        }),
        (input) => {
          const encoded = encodeTaskMessage({
            ...input,
            now: new Date("2026-01-01T00:00:00Z"),
            timeLimit: { hard: input.hard },
          });
          expect(queueOfKey(encoded.key)).toBe(input.queue);
          const decoded = decodeTaskMessage(encoded.text);
          if (!decoded.ok) throw new Error(decoded.error.reason);
          const m = decoded.message;
          expect({
            task: m.task,
            id: m.id,
            queue: m.routingKey,
            priority: m.priority,
            retries: m.retries,
          }).toEqual({
            task: input.task,
            id: input.id,
            queue: input.queue,
            priority: input.priority,
            retries: input.retries,
          });
          expect(m.args).toEqual(throughJson(input.args));
          expect(m.kwargs).toEqual(throughJson(input.kwargs));
          expect(m.customHeaders).toEqual(throughJson(input.headers));
          expect(m.eta?.date.getTime()).toBe(input.eta?.getTime());
          expect(m.expires?.date.getTime()).toBe(input.expires?.getTime());
          expect(m.timeLimit).toEqual({ hard: input.hard, soft: null });
          expect(m.deliveryTag).toBe((encoded.envelope["properties"] as JsonObject)["delivery_tag"]);
        },
      ),
    );
  });

  it("writes only timestamps Celery 5.2 reads as the same instant", () => {
    fc.assert(
      fc.property(instant, (date) => {
        const text = formatTimestamp(date);
        const ours = parseTimestamp(text);
        const celery = celery52Reading(text);
        expect(ours.ok && ours.value.date.getTime()).toBe(date.getTime());
        expect(celery?.date.getTime()).toBe(date.getTime());
      }),
    );
  });

  it("stores and reads back any task's return value", () => {
    fc.assert(
      fc.property(fc.uuid(), json, instant, (taskId, result, now) => {
        const decoded = decodeResult(encodeResult({ taskId, now, status: "SUCCESS", result }));
        expect(
          decoded.ok && [decoded.meta.taskId, decoded.meta.result, decoded.meta.dateDone?.date.getTime()],
        ).toEqual([taskId, throughJson(result), now.getTime()]);
      }),
    );
  });

  it("finds the queue again from any lane key", () => {
    fc.assert(
      fc.property(name, fc.integer({ min: -5, max: 15 }), (queue, priority) => {
        expect(queueOfKey(queueKey(queue, priority))).toBe(queue);
      }),
    );
  });

  it("renders any JSON value with saferepr without failing", () => {
    fc.assert(
      fc.property(json, fc.option(fc.integer({ min: 0, max: 200 }), { nil: undefined }), (value, maxlen) => {
        expect(typeof saferepr(value as JsonValue, maxlen)).toBe("string");
      }),
    );
  });
});

// --- mutations of the captured messages ---

const messageVectors = vectorFiles().filter((n) => /^(a|b|h|w0[134])/.test(n));

type Path = (string | number)[];

function pathsOf(value: unknown, prefix: Path = []): Path[] {
  if (Array.isArray(value))
    return value.flatMap((item, i) => [[...prefix, i], ...pathsOf(item, [...prefix, i])]);
  if (typeof value === "object" && value !== null) {
    return Object.entries(value).flatMap(([key, item]) => [
      [...prefix, key],
      ...pathsOf(item, [...prefix, key]),
    ]);
  }
  return [];
}

function parentOf(root: unknown, path: Path): Record<string | number, unknown> | null {
  let node = root;
  for (const key of path.slice(0, -1)) {
    if (typeof node !== "object" || node === null) return null;
    node = (node as Record<string | number, unknown>)[key];
  }
  return typeof node === "object" && node !== null ? (node as Record<string | number, unknown>) : null;
}

type Mutation =
  | { op: "delete"; pick: number }
  | { op: "replace"; pick: number; value: JsonValue }
  /** A new body, encoded as the envelope says, or (mismatch) the other way. */
  | { op: "body"; value: JsonValue; mismatch: boolean }
  | { op: "truncate"; at: number }
  | { op: "overwrite"; at: number; text: string };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant("delete" as const), pick: fc.nat() }),
  fc.record({ op: fc.constant("replace" as const), pick: fc.nat(), value: smallJson }),
  fc.record({
    op: fc.constant("body" as const),
    value: fc.oneof(
      json,
      // Mostly plausible shapes, so the checks past the envelope get exercised too.
      fc.tuple(
        fc.oneof(fc.array(json, { maxLength: 3 }), json),
        fc.oneof(jsonObject, json),
        fc.oneof(fc.constant(null), jsonObject, json),
      ),
      fc.record(
        {
          task: fc.oneof(name, json),
          id: fc.oneof(fc.uuid(), json),
          args: fc.oneof(fc.array(json, { maxLength: 3 }), json),
          kwargs: fc.oneof(jsonObject, json),
          eta: fc.oneof(
            instant.map((d) => d.toISOString()),
            json,
          ),
          taskset: json,
          utc: json,
        },
        { requiredKeys: ["task"] },
      ),
    ),
    mismatch: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
  }),
  fc.record({ op: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({
    op: fc.constant("overwrite" as const),
    at: fc.nat(),
    text: fc.string({ minLength: 1, maxLength: 3 }),
  }),
);

function mutate(raw: string, mutations: Mutation[]): string {
  let text = raw;
  for (const m of mutations) {
    if (m.op === "truncate") {
      text = text.slice(0, m.at % (text.length + 1));
      continue;
    }
    if (m.op === "overwrite") {
      const at = m.at % (text.length + 1);
      text = text.slice(0, at) + m.text + text.slice(at + m.text.length);
      continue;
    }
    let envelope: unknown;
    try {
      envelope = JSON.parse(text);
    } catch {
      continue;
    }
    if (m.op === "body") {
      if (typeof envelope !== "object" || envelope === null) continue;
      const e = envelope as Record<string, unknown>;
      const props = e["properties"] as Record<string, unknown> | undefined;
      const base64 = (props?.["body_encoding"] === "base64") !== m.mismatch;
      const body = JSON.stringify(m.value);
      e["body"] = base64 ? Buffer.from(body).toString("base64") : body;
    } else {
      const paths = pathsOf(envelope);
      const path = paths[m.pick % Math.max(paths.length, 1)];
      const parent = path && parentOf(envelope, path);
      const key = path?.[path.length - 1];
      if (!parent || key === undefined) continue;
      if (m.op === "delete") {
        if (Array.isArray(parent)) parent.splice(Number(key), 1);
        else Reflect.deleteProperty(parent, key);
      } else {
        parent[key] = m.value;
      }
    }
    text = JSON.stringify(envelope);
  }
  return text;
}

const KINDS = new Set([
  "not-json",
  "invalid-envelope",
  "content-disallowed",
  "unsupported-content-encoding",
  "invalid-body",
  "missing-task-id",
  "invalid-headers",
]);

describe("decoding mutated vectors", () => {
  it("answers every mutation of every captured message with a message or a typed error, never a crash", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...messageVectors),
        fc.array(mutation, { minLength: 1, maxLength: 3 }),
        fc.boolean(),
        (vectorName, mutations, asBytes) => {
          const text = mutate(rawOf(vectorName), mutations);
          const decoded = decodeTaskMessage(asBytes ? Buffer.from(text, "utf8") : text);
          if (decoded.ok) {
            expect(decoded.message.id).not.toBe("");
            expect(decoded.message.deliveryTag).not.toBe("");
            return;
          }
          expect(KINDS.has(decoded.error.kind)).toBe(true);
          expect(decoded.error.reason).not.toBe("");
          // The catch-all exists for safety; reaching it means a case the decoder did not foresee.
          expect(decoded.error.reason).not.toMatch(/^unexpected error/);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("answers any bytes at all without a crash", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const decoded = decodeTaskMessage(bytes);
        expect(decoded.ok || !decoded.error.reason.startsWith("unexpected error")).toBe(true);
        const result = decodeResult(bytes);
        expect(typeof result.ok).toBe("boolean");
      }),
    );
  });
});
