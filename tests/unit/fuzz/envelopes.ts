/**
 * Task messages to fuzz the decoder and the worker with: the captured Celery messages
 * (../shared/design/celery-vectors), and mutations of them that reach every check of
 * src/celery/decode.ts — a field dropped, retyped or written twice, the text cut short, bytes that
 * are not UTF-8, base64 that is not base64, other content types and encodings, numbers JSON cannot
 * hold, nesting at and past the decoder's limit, and unicode that JSON allows but UTF-8 does not.
 *
 * Shared by tests/unit/fuzz/celery-decoder.fuzz.test.ts and tests/integration/fuzz-worker.test.ts.
 */
import fc from "fast-check";
import { readVector, vectorNames } from "../../support/vectors.ts";

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const isObject = (value: unknown): value is JsonObject =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** The vectors that hold a task message: producers' (a, b), hand-crafted (h) and the worker's own (w). */
export const MESSAGE_VECTORS: readonly string[] = vectorNames().filter(
  (name) => /^[abhw]/.test(name) && isObject(readVector(name)["envelope"]),
);

/** A fresh copy of a vector's envelope. */
export function vectorEnvelope(name: string): JsonObject {
  return structuredClone(readVector(name)["envelope"]) as JsonObject;
}

// ---------------------------------------------------------------------------------------------
// Raw JSON text inside a value: numbers JSON.stringify cannot write, deep nesting, duplicate keys

/**
 * A string that stands for raw JSON text until `serialize` replaces it. Deep nesting is written
 * as text, never built as an object, so that only the code under test has to walk it.
 */
const RAW_MARK = "\u0000fuzz-raw\u0000";

function serialize(value: Json, raws: readonly string[]): string {
  return JSON.stringify(value).replace(
    /"\\u0000fuzz-raw\\u0000(\d+)"/g,
    (_, i: string) => raws[Number(i)] ?? "null",
  );
}

/** Nesting around the decoder's limit (src/celery/decode.ts: 1000 levels) and far past it. */
const DEEP = fc
  .tuple(
    fc.oneof(fc.constantFrom(998, 999, 1000, 1001), fc.integer({ min: 50, max: 5_000 })),
    fc.constantFrom("[", '{"a":'),
    fc.constantFrom("1", '"x"', "[]", "{}"),
  )
  .map(([depth, open, leaf]) => open.repeat(depth) + leaf + (open === "[" ? "]" : "}").repeat(depth));

/** JSON text JSON.stringify would never write, but JSON.parse reads: huge, tiny, exponents, deep. */
const rawText: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    "1e400",
    "-1e400",
    "123456789012345678901234567890",
    "1E2",
    "-0",
    "0.0",
    "1.0",
    "4.9e-325",
    '"\\ud800"',
    '"\\udfff\\ud800"',
    '"\\u0000"',
  ),
  DEEP,
);

/** Values of every JSON kind, most of them at some edge. */
export const oddValue: fc.Arbitrary<Json> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom<Json>(
      null,
      true,
      false,
      0,
      -1,
      1.5,
      1e308,
      -1e308,
      2 ** 53 + 2,
      1e21,
      5e-324,
      "",
      " ",
      "0",
      "null",
      "[]",
      "{}",
      "\u0000",
      "\ud800",
      "\udc00x",
      "😀",
      "\u202eevil",
      "naïve ✓",
      "a".repeat(1_000),
      [],
      {},
      [null],
      { "": "" },
      JSON.parse('{"__proto__": 1}') as Json,
    ),
  },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 12 }) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => v as Json) },
);

// ---------------------------------------------------------------------------------------------
// Mutations

type Path = readonly (string | number)[];

function pathsOf(value: Json, prefix: Path = []): Path[] {
  if (Array.isArray(value))
    return value.flatMap((item, i) => [[...prefix, i], ...pathsOf(item, [...prefix, i])]);
  if (isObject(value)) {
    return Object.entries(value).flatMap(([key, item]) => [
      [...prefix, key],
      ...pathsOf(item, [...prefix, key]),
    ]);
  }
  return [];
}

function containerAt(root: Json, path: Path): Json | undefined {
  let node: Json | undefined = root;
  for (const key of path) {
    if (Array.isArray(node) && typeof key === "number") node = node[key];
    // Own keys only: `node["__proto__"]` of an object without that field is Object.prototype.
    else if (isObject(node) && typeof key === "string" && Object.hasOwn(node, key)) node = node[key];
    else return undefined;
  }
  return node;
}

function setAt(root: Json, path: Path, given: Json | undefined): void {
  // A copy: generated values can be shared constants (e.g. the parsed {"__proto__": 1}); writing
  // the same object twice could nest it in itself and would change it for later cases. A JSON
  // round trip keeps a "__proto__" key a field, as JSON.parse makes it.
  const value: Json | undefined =
    given !== null && typeof given === "object" ? (JSON.parse(JSON.stringify(given)) as Json) : given;
  const parent = containerAt(root, path.slice(0, -1));
  const key = path[path.length - 1];
  if (key === undefined) return;
  if (Array.isArray(parent) && typeof key === "number") {
    if (value === undefined) parent.splice(key, 1);
    else parent[key] = value;
  } else if (isObject(parent) && typeof key === "string") {
    if (value === undefined) Reflect.deleteProperty(parent, key);
    // defineProperty, so that a key named __proto__ becomes a field, as JSON.parse makes it.
    else Object.defineProperty(parent, key, { value, enumerable: true, writable: true, configurable: true });
  }
}

/** Named fields and the values at their edges: what the decoder checks one by one. */
const FIELD_EDGES: readonly (readonly [Path, readonly (Json | undefined)[]])[] = [
  [
    ["content-type"],
    [
      "application/json",
      "application/JSON",
      "application/json; charset=utf-8",
      "application/x-python-serialize",
      "application/x-yaml",
      "text/plain",
      "",
      null,
      1,
      undefined,
    ],
  ],
  [["content-encoding"], ["utf-8", "UTF-8", "utf8", "binary", "latin-1", "gzip", "", null, 7, undefined]],
  [
    ["properties", "body_encoding"],
    ["base64", "BASE64", "base64 ", "utf-8", "", null, 64, undefined],
  ],
  [
    ["properties", "delivery_tag"],
    ["", 0, 1, 1.5, -1, 1e308, "x", null, [], {}, undefined],
  ],
  [
    ["properties", "delivery_info"],
    [
      {},
      { exchange: "", routing_key: "" },
      { exchange: null, routing_key: "celery" },
      "celery",
      null,
      undefined,
    ],
  ],
  [
    ["properties", "delivery_info", "routing_key"],
    ["", "other", 5, null, undefined],
  ],
  [
    ["properties", "delivery_info", "exchange"],
    ["", "celery", 5, null, undefined],
  ],
  [
    ["properties", "priority"],
    [0, 9, 10, -1, 255, 1.5, "5", null, 1e308, undefined],
  ],
  [["properties"], [null, [], {}, "properties", undefined]],
  [["headers"], [null, [], {}, "headers", undefined]],
  [
    ["headers", "id"],
    ["", " ", 5, null, [], "😀", "\ud800", "id".repeat(500), undefined],
  ],
  [
    ["headers", "task"],
    ["", "app.tasks.not_registered", 5, null, "app.tasks.whoami ", "😀", undefined],
  ],
  [
    ["headers", "eta"],
    [
      "2026-01-01T00:00:00+00:00",
      "2026-02-30T00:00:00",
      "2026-11-25T12:00:00+24:00",
      "2026-11-25 12:00",
      "2026-11-25T12:00:00.1234567890Z",
      "0001-01-01T00:00:00",
      "now",
      "",
      0,
      null,
      undefined,
    ],
  ],
  [
    ["headers", "expires"],
    [
      "2000-01-01T00:00:00+00:00",
      "9999-12-31T23:59:59.999999+00:00",
      "2026-13-01T00:00:00",
      "2026-11-25T12:00:00-0530",
      "tomorrow",
      "",
      3600,
      null,
      undefined,
    ],
  ],
  [
    ["headers", "retries"],
    [0, -1, 1.5, "1", null, 1e308, 2 ** 53, undefined],
  ],
  [
    ["headers", "timelimit"],
    [
      [null, null],
      [30, 20],
      [0, 0],
      [-1, null],
      [1e308, null],
      [null, 1e308],
      "10",
      [1],
      [1, 2, 3],
      null,
      {},
      undefined,
    ],
  ],
  [
    ["headers", "ignore_result"],
    [true, false, "false", 0, null, undefined],
  ],
  [
    ["headers", "group_index"],
    [0, -1, 1.5, "2", null],
  ],
  [
    ["headers", "root_id"],
    ["", 7, null, ["a"]],
  ],
  [
    ["headers", "argsrepr"],
    ["", 7, null, "😀".repeat(100)],
  ],
  [
    ["headers", "redelivered"],
    [true, "yes", 1],
  ],
  [
    ["headers", "x-custom"],
    ["value", 1, null, { nested: [1] }],
  ],
];

export type Mutation =
  /** A field anywhere in the envelope removed. */
  | { readonly op: "drop"; readonly pick: number }
  /** A field anywhere set to a value of another kind. */
  | { readonly op: "retype"; readonly pick: number; readonly value: Json }
  /** A named field set to one of its edge values (undefined removes it). */
  | { readonly op: "edge"; readonly field: number; readonly choice: number }
  /** A field anywhere replaced by raw JSON text: 1e400, -0, lone surrogates, nesting 5,000 deep. */
  | { readonly op: "raw"; readonly pick: number; readonly text: string }
  /** An object's key written a second time, before or after the first (JSON.parse keeps the last). */
  | { readonly op: "duplicate"; readonly pick: number; readonly value: Json; readonly first: boolean }
  /** A new body, written as the envelope says, as the other encoding, or as broken base64. */
  | {
      readonly op: "body";
      readonly value: Json;
      readonly encoding: "as-declared" | "base64" | "plain" | "broken-base64";
      readonly breakAt: number;
      /** Instead of the value: `[[<raw>], {}, null]`, e.g. arguments nested 5,000 deep. */
      readonly rawArgs: string | null;
    }
  | { readonly op: "truncate"; readonly at: number }
  /** Bytes spliced into the UTF-8 text: invalid sequences, encoded surrogates, NUL. */
  | { readonly op: "bytes"; readonly at: number; readonly bytes: readonly number[] };

/** Bodies in the shapes the decoder tells apart, and some it has never seen. */
const bodyValue: fc.Arbitrary<Json> = fc.oneof(
  fc
    .tuple(
      fc.oneof(fc.array(oddValue, { maxLength: 3 }), oddValue),
      fc.oneof(fc.dictionary(fc.string({ maxLength: 6 }), oddValue, { maxKeys: 3 }), oddValue),
      fc.oneof(fc.constant(null), fc.constant({}), oddValue),
    )
    .map((body) => body as Json),
  fc.array(oddValue, { maxLength: 4 }),
  fc.record(
    {
      task: fc.oneof(fc.constant("app.tasks.whoami"), oddValue),
      id: fc.oneof(fc.uuid(), oddValue),
      args: oddValue,
      kwargs: oddValue,
    },
    { requiredKeys: ["task"] },
  ),
  oddValue,
);

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant("drop" as const), pick: fc.nat() }) },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant("retype" as const), pick: fc.nat(), value: oddValue }),
  },
  {
    weight: 6,
    arbitrary: fc.record({ op: fc.constant("edge" as const), field: fc.nat(), choice: fc.nat() }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("raw" as const), pick: fc.nat(), text: rawText }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("duplicate" as const),
      pick: fc.nat(),
      value: oddValue,
      first: fc.boolean(),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant("body" as const),
      value: bodyValue,
      encoding: fc.constantFrom("as-declared", "as-declared", "base64", "plain", "broken-base64"),
      breakAt: fc.nat(),
      rawArgs: fc.option(rawText, { freq: 4 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("truncate" as const), at: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("bytes" as const),
      at: fc.nat(),
      bytes: fc.oneof(
        fc.constantFrom(
          [0xff],
          [0xc0, 0x80],
          [0xed, 0xa0, 0x80],
          [0xe2, 0x82],
          [0x00],
          [0xf4, 0x90, 0x80, 0x80],
        ),
        fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 4 }),
      ),
    }),
  },
);

function breakBase64(text: string, at: number): string {
  const variants = [
    (s: string) => s.replace(/=+$/, ""),
    (s: string) => `${s.slice(0, at % (s.length + 1))}!${s.slice(at % (s.length + 1))}`,
    (s: string) => s.slice(0, Math.max(0, s.length - 1 - (at % 3))),
    (s: string) => `${s} ${s}`,
    (s: string) => s.replace(/[+/]/g, (c) => (c === "+" ? "-" : "_")),
  ];
  return (variants[at % variants.length] ?? ((s: string) => s))(text);
}

/**
 * The envelope with the mutations applied in order, as the value a producer would LPUSH: a
 * string, or bytes once a mutation made it something other than UTF-8 text.
 */
export function mutateEnvelope(original: JsonObject, mutations: readonly Mutation[]): string | Buffer {
  const envelope: Json = structuredClone(original);
  const raws: string[] = [];
  const rawValue = (text: string): string => `${RAW_MARK}${raws.push(text) - 1}`;
  const textEdits: Mutation[] = [];
  for (const m of mutations) {
    const paths = pathsOf(envelope);
    const path = "pick" in m ? paths[m.pick % Math.max(1, paths.length)] : undefined;
    switch (m.op) {
      case "drop":
        if (path !== undefined) setAt(envelope, path, undefined);
        break;
      case "retype":
        if (path !== undefined) setAt(envelope, path, m.value);
        break;
      case "raw":
        if (path !== undefined) setAt(envelope, path, rawValue(m.text));
        break;
      case "edge": {
        const [fieldPath, values] = FIELD_EDGES[m.field % FIELD_EDGES.length] ?? [[], []];
        setAt(envelope, fieldPath, values[m.choice % Math.max(1, values.length)]);
        break;
      }
      case "duplicate": {
        // The key of an object: write it twice, the mutation's value first or last.
        const objects = paths.filter((p) => isObject(containerAt(envelope, p.slice(0, -1))) && p.length > 0);
        const target = objects[m.pick % Math.max(1, objects.length)];
        const parent = target === undefined ? undefined : containerAt(envelope, target.slice(0, -1));
        const key = target?.[target.length - 1];
        if (!isObject(parent) || typeof key !== "string") break;
        const entries = Object.entries(parent);
        const extra: [string, Json] = [rawValue(JSON.stringify(key)), m.value];
        for (const k of Object.keys(parent)) Reflect.deleteProperty(parent, k);
        for (const [k, v] of m.first ? [extra, ...entries] : [...entries, extra]) setAt(parent, [k], v);
        break;
      }
      case "body": {
        if (!isObject(envelope)) break;
        const properties = envelope["properties"];
        const declared = isObject(properties) && properties["body_encoding"] === "base64";
        const text = m.rawArgs === null ? JSON.stringify(m.value) : `[[${m.rawArgs}], {}, null]`;
        const base64 = Buffer.from(text, "utf8").toString("base64");
        envelope["body"] =
          m.encoding === "plain"
            ? text
            : m.encoding === "base64"
              ? base64
              : m.encoding === "broken-base64"
                ? breakBase64(base64, m.breakAt)
                : declared
                  ? base64
                  : text;
        break;
      }
      case "truncate":
      case "bytes":
        textEdits.push(m);
        break;
    }
  }
  // A raw mark stands for a value or (for a duplicate) a key; both are written as the raw text.
  let text = serialize(envelope, raws);
  let bytes: Buffer | null = null;
  for (const m of textEdits) {
    if (m.op === "truncate") {
      if (bytes === null) text = text.slice(0, m.at % (text.length + 1));
      else bytes = bytes.subarray(0, m.at % (bytes.length + 1));
    } else if (m.op === "bytes") {
      const current: Buffer = bytes ?? Buffer.from(text, "utf8");
      const at = m.at % (current.length + 1);
      bytes = Buffer.concat([current.subarray(0, at), Buffer.from(m.bytes), current.subarray(at)]);
    }
  }
  return bytes ?? text;
}

/** A vector (or a given envelope) with one to four mutations. */
export function mutatedMessage(envelopes: fc.Arbitrary<JsonObject>): fc.Arbitrary<string | Buffer> {
  return fc
    .tuple(envelopes, fc.array(mutation, { minLength: 1, maxLength: 4 }))
    .map(([envelope, mutations]) => mutateEnvelope(envelope, mutations));
}

export const vectorEnvelopes: fc.Arbitrary<JsonObject> = fc
  .constantFrom(...MESSAGE_VECTORS)
  .map(vectorEnvelope);
