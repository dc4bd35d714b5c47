import { describe, expect, it } from "vitest";
import { STATUS_LIMITS, taskStatusSchema } from "../../../src/api/index.ts";
import { RESULT_MAX_DEPTH, capError, capResult, capWorker } from "../../../src/controllers/status-caps.ts";

const MiB = 1024 * 1024;
const bytes = (text: string): number => Buffer.byteLength(text, "utf8");

/** `[[[ ... ]]]` nested `depth` deep, built without recursion. */
function nestedArrays(depth: number): unknown {
  let value: unknown = [];
  for (let i = 1; i < depth; i++) value = [value];
  return value;
}

function nestedObjects(depth: number): unknown {
  let value: unknown = { leaf: true };
  for (let i = 1; i < depth; i++) value = { a: value };
  return value;
}

describe("capResult", () => {
  it.each([
    { value: null, text: "null" },
    { value: 42, text: "42" },
    { value: "done", text: '"done"' },
    { value: { deleted: 42, keys: ["a", "b"] }, text: '{"deleted":42,"keys":["a","b"]}' },
    { value: [1, [2, [3, {}]], []], text: "[1,[2,[3,{}]],[]]" },
    { value: { é: "ü\u{1F600}" }, text: '{"é":"ü\u{1F600}"}' },
  ])("keeps a small result as it is, with its JSON text as preview: $text", ({ value, text }) => {
    expect(capResult(value)).toEqual({ result: value, resultPreview: text });
    expect(JSON.stringify(value)).toBe(text);
  });

  it.each([
    { what: "a 2 MiB string", value: "x".repeat(2 * MiB), start: '"xxx' },
    { what: "2 MiB of quotes (each escaped)", value: '"'.repeat(2 * MiB), start: '"\\"\\"' },
    { what: "2 MiB of multi-byte characters", value: "é".repeat(2 * MiB), start: '"ééé' },
    { what: "2 MiB of emoji (surrogate pairs)", value: "\u{1F600}".repeat(MiB), start: '"\u{1F600}' },
    {
      what: "a list of 200,000 numbers",
      value: Array.from({ length: 200_000 }, (_, i) => i),
      start: "[0,1,2",
    },
    {
      what: "an object of 50,000 keys",
      value: Object.fromEntries(Array.from({ length: 50_000 }, (_, i) => [`k${i}`, i])),
      start: '{"k0":0,"k1":1',
    },
  ])("cuts $what to the start of its JSON text, at most 16 KiB", ({ value, start }) => {
    const capped = capResult(value);
    expect(capped.resultTruncated).toBe(true);
    expect(typeof capped.result).toBe("string");
    const text = capped.result as string;
    expect(text.startsWith(start)).toBe(true);
    expect(bytes(text)).toBeLessThanOrEqual(STATUS_LIMITS.resultBytes);
    // Whole characters only: the cut text survives a UTF-8 round trip unchanged.
    expect(Buffer.from(text, "utf8").toString("utf8")).toBe(text);
    expect(capped.resultPreview.length).toBeLessThanOrEqual(STATUS_LIMITS.resultPreviewLength);
    expect(capped.resultPreview.endsWith("…")).toBe(true);
  });

  it.each([
    { what: "arrays", value: nestedArrays(RESULT_MAX_DEPTH), deep: false },
    { what: "objects", value: nestedObjects(RESULT_MAX_DEPTH), deep: false },
    { what: "arrays", value: nestedArrays(RESULT_MAX_DEPTH + 1), deep: true },
    { what: "objects", value: nestedObjects(RESULT_MAX_DEPTH + 1), deep: true },
    { what: "arrays", value: nestedArrays(100_000), deep: true },
    { what: "objects", value: nestedObjects(100_000), deep: true },
  ])(
    "stores $what nested too deep (deep=$deep) as text, without overflowing the stack",
    ({ value, deep }) => {
      const capped = capResult(value);
      if (!deep) {
        expect(capped.result).toBe(value);
        expect(capped.resultTruncated).toBeUndefined();
        return;
      }
      expect(capped.resultTruncated).toBe(true);
      expect(typeof capped.result).toBe("string");
      expect(bytes(capped.result as string)).toBeLessThanOrEqual(STATUS_LIMITS.resultBytes);
    },
  );

  it("keeps the whole text of a deep value that is short, so nothing is lost but the structure", () => {
    const value = nestedArrays(RESULT_MAX_DEPTH + 1);
    expect(capResult(value).result).toBe(JSON.stringify(value));
  });

  it("passes the status schema for every capped result", () => {
    for (const value of ["x".repeat(2 * MiB), nestedObjects(10_000), { ok: true }]) {
      expect(taskStatusSchema.safeParse({ phase: "Succeeded", ...capResult(value) }).success).toBe(true);
    }
  });
});

describe("capError and capWorker", () => {
  it("cuts type, reason and message at their ends and keeps the end of the traceback", () => {
    const traceback = `${"frame\n".repeat(100_000)}ValueError: the last line`;
    const capped = capError({
      type: "T".repeat(1_000),
      reason: "R".repeat(1_000),
      message: "m".repeat(2 * MiB),
      traceback,
      exitCode: 3,
    });
    expect(capped).toEqual({
      type: "T".repeat(256),
      reason: "R".repeat(256),
      message: "m".repeat(8192),
      traceback: traceback.slice(-STATUS_LIMITS.tracebackLength),
      exitCode: 3,
    });
    expect(taskStatusSchema.safeParse({ error: capped }).success).toBe(true);
  });

  it("never leaves half of a surrogate pair at a cut", () => {
    const capped = capError({ message: "\u{1F600}".repeat(10_000), traceback: "\u{1F600}".repeat(10_000) });
    for (const text of [capped.message ?? "", capped.traceback ?? ""]) {
      expect(text.length).toBeLessThanOrEqual(8192);
      expect(text).toMatch(/^(?:\u{1F600})+$/u);
    }
  });

  it("leaves a small error as it is", () => {
    const error = {
      type: "ValueError",
      message: "bad input",
      traceback: "Traceback ...\nValueError: bad input",
    };
    expect(capError(error)).toEqual(error);
  });

  it("cuts a worker name a result backend claims to the schema's bound", () => {
    expect(capWorker("celery@host")).toBe("celery@host");
    expect(capWorker("w".repeat(10_000))).toHaveLength(253);
  });
});
