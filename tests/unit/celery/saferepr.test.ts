import { describe, expect, it } from "vitest";
import { argsRepr, exceptionText, kwargsRepr, pyTuple, saferepr } from "../../../src/celery/index.ts";
import type { JsonObject, JsonValue, ReprValue } from "../../../src/celery/index.ts";
import { rawOf } from "./vectors.ts";

// Every expected text below was produced by celery/utils/saferepr.py from Celery 5.2.6 under
// Python 3.11, given the same value and maxlen.
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe("saferepr, as Celery 5.2.6 renders argsrepr and kwargsrepr", () => {
  const table: { name: string; value: ReprValue; maxlen?: number; expected: string }[] = [
    { name: "a list of an int and a string", value: [1, "x"], maxlen: 1024, expected: "[1, 'x']" },
    { name: "an empty tuple", value: pyTuple([]), maxlen: 1024, expected: "()" },
    { name: "a one-element tuple", value: pyTuple([2]), maxlen: 1024, expected: "(2,)" },
    {
      name: "non-ASCII text, a float, None and True",
      value: { a: "é", b: [1.5, null, true] },
      maxlen: 1024,
      expected: "{'a': 'é', 'b': [1.5, None, True]}",
    },
    { name: "a quote inside a string, escaped", value: ["it's"], maxlen: 1024, expected: "['it\\'s']" },
    { name: "a newline inside a string, not escaped", value: ["a\nb"], maxlen: 1024, expected: "['a\nb']" },
    { name: "lists nested more than three deep", value: [[[[1]]]], maxlen: 1024, expected: "[[[[...]]]]" },
    {
      name: "dicts nested more than three deep",
      value: { a: { b: { c: { d: 1 } } } },
      maxlen: 1024,
      expected: "{'a': {'b': {'c': {...}}}}",
    },
    { name: "false and a negative float", value: [false, -0.25], maxlen: 1024, expected: "[False, -0.25]" },
    {
      name: "floats in Python's notation",
      value: [1e-5, 0.0001, 1234567890123456.8, 1.5e300, 1e22, 1e-7, 2.5e-5],
      maxlen: 1024,
      expected: "[1e-05, 0.0001, 1234567890123456.8, 1.5e+300, 1e+22, 1e-07, 2.5e-05]",
    },
    {
      name: "a long string, cut at its last space within 1024 characters",
      value: ["word ".repeat(300)],
      maxlen: 1024,
      expected: `['${Array(204).fill("word").join(" ")}...', ...`,
    },
    {
      name: "a long list, cut and closed",
      value: range(400),
      maxlen: 1024,
      expected: `[${range(226).join(", ")}, 226..., ...]`,
    },
    {
      name: "a string exactly filling the budget",
      value: ["abcdefgh"],
      maxlen: 10,
      expected: "['abcdefgh', ...",
    },
    {
      name: "the closing bracket that trips the limit, lost",
      value: [1, 2],
      maxlen: 5,
      expected: "[1, 2..., ...",
    },
    { name: "a separator that trips the limit", value: [1, 2], maxlen: 4, expected: "[1, , ...]" },
    { name: "a number cut short", value: [1, 2, 3], maxlen: 5, expected: "[1, 2..., ...]" },
    {
      name: "astral characters, counted as one each",
      value: ["😀".repeat(10)],
      maxlen: 8,
      expected: `['${"😀".repeat(7)}...', ...`,
    },
    {
      name: "a dict with a long key",
      value: { ["k".repeat(20)]: 1 },
      maxlen: 10,
      expected: "{'kkkkkkkkk...', ...}",
    },
    {
      name: "anything, without a limit",
      value: ["word ".repeat(300)],
      expected: `['${"word ".repeat(300)}']`,
    },
  ];

  it.each(table)("renders $name", ({ value, maxlen, expected }) => {
    expect(saferepr(value, maxlen)).toBe(expected);
  });

  // Vectors whose producer rendered argsrepr from a list (w01's worker rendered a tuple, "(2,)").
  const producers = [
    "a_default_queue",
    "a2_extras_timelimit_shadow_customheader_eta_unicode",
    "b_reports_priority5_countdown_expires_retries",
    "b_priority9",
    "h03_full_ts_style_eta_expires_Z",
    "w02_unacked_entry_on_delivery",
    "w03_visibility_timeout_restore",
    "w04_warm_shutdown_restore_eta",
  ];
  it.each(producers)("renders the same argsrepr and kwargsrepr as the producer of %s", (name) => {
    const raw = JSON.parse(rawOf(name)) as JsonValue;
    const envelope = (Array.isArray(raw) ? raw[0] : raw) as JsonObject;
    const headers = envelope["headers"] as JsonObject;
    const [args, kwargs] = JSON.parse(Buffer.from(envelope["body"] as string, "base64").toString("utf8")) as [
      JsonValue[],
      JsonObject,
    ];
    expect([argsRepr(args), kwargsRepr(kwargs)]).toEqual([headers["argsrepr"], headers["kwargsrepr"]]);
  });
});

describe("an exception's str() from its stored args", () => {
  const table: { args: JsonValue[]; text: string }[] = [
    { args: [], text: "" },
    { args: ["boom"], text: "boom" },
    { args: [42], text: "42" },
    { args: [null], text: "None" },
    // As the r04 traceback ends: "app.tasks.CustomError: (42, 'bad')".
    { args: [42, "bad"], text: "(42, 'bad')" },
  ];
  it.each(table)("renders $args as $text", ({ args, text }) => {
    expect(exceptionText(args)).toBe(text);
  });
});
