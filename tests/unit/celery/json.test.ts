import { describe, expect, it } from "vitest";
import { pythonFloatRepr, pythonJsonDumps } from "../../../src/celery/index.ts";
import type { JsonValue } from "../../../src/celery/index.ts";
import { vector, vectorFiles } from "./vectors.ts";

// Expected texts produced by Python 3.11's json.dumps with default arguments.
describe("json.dumps as Python writes it", () => {
  const table: { name: string; value: JsonValue; text: string }[] = [
    { name: "separators with a space", value: { a: [1, 2], b: {} }, text: '{"a": [1, 2], "b": {}}' },
    { name: "empty containers", value: [[], {}], text: "[[], {}]" },
    { name: "literals", value: [true, false, null], text: "[true, false, null]" },
    {
      name: "floats as repr(float)",
      value: [1e22, 1e-7, 2.5e-5, 0.1, 1 / 3, 123456789.123, 1e21, 5e-324, 1.7976931348623157e308],
      text: "[1e+22, 1e-07, 2.5e-05, 0.1, 0.3333333333333333, 123456789.123, 1e+21, 5e-324, 1.7976931348623157e+308]",
    },
    { name: "integers as digits", value: [0, -7, 9007199254740991], text: "[0, -7, 9007199254740991]" },
    {
      name: "ensure_ascii escapes, DEL and astral characters included",
      value: '\x7f\x00\x1f é😀\u2028"\\/',
      text: '"\\u007f\\u0000\\u001f \\u00e9\\ud83d\\ude00\\u2028\\"\\\\/"',
    },
    { name: "short escapes", value: "\b\f\n\r\t", text: '"\\b\\f\\n\\r\\t"' },
    {
      name: "printable ASCII with quotes and backslashes (the fast path)",
      value: ' a"b\\c/~{}',
      text: '" a\\"b\\\\c/~{}"',
    },
    { name: "printable ASCII but for one DEL (the slow path)", value: "ab\x7f", text: '"ab\\u007f"' },
  ];

  it.each(table)("writes $name", ({ value, text }) => {
    expect(pythonJsonDumps(value)).toBe(text);
  });

  const pythonWritten = vectorFiles().filter((name) => {
    const v = vector(name);
    return typeof v["raw"] === "string" && v["raw_is_utf8_not_ascii"] !== true;
  });
  it.each(pythonWritten)("rewrites the raw value of %s byte for byte", (name) => {
    const raw = vector(name)["raw"] as string;
    expect(pythonJsonDumps(JSON.parse(raw) as JsonValue)).toBe(raw);
  });

  it("writes what JavaScript cannot hand to Python as JSON.stringify does", () => {
    expect(pythonJsonDumps([Number.NaN, Infinity, -0])).toBe("[null, null, 0]");
    expect(pythonJsonDumps({ a: undefined, b: 1 } as unknown as JsonValue)).toBe('{"b": 1}');
  });

  it("refuses a cycle", () => {
    const cyclic: JsonValue[] = [];
    cyclic.push(cyclic);
    expect(() => pythonJsonDumps(cyclic)).toThrow(/circular/);
  });

  it("writes the float spellings Python's repr uses, where JSON would be ambiguous", () => {
    expect([
      pythonFloatRepr(1),
      pythonFloatRepr(-0),
      pythonFloatRepr(1e16),
      pythonFloatRepr(Number.NaN),
    ]).toEqual(["1.0", "-0.0", "1e+16", "nan"]);
  });
});
