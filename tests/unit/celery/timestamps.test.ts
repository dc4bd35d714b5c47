import { describe, expect, it } from "vitest";
import {
  celery52Reading,
  formatNaiveTimestamp,
  formatTimestamp,
  parseTimestamp,
} from "../../../src/celery/index.ts";
import type { TimeInput } from "../../../src/celery/index.ts";

const onTheMinute = new Date("2026-12-01T06:00:00.000Z");
const withMilliseconds = new Date("2026-11-25T11:29:59.771Z");
const oneMillisecond = new Date("2026-11-25T11:29:59.001Z");
const pythonPrecision = { date: new Date("2026-11-25T11:22:59.538Z"), microsecond: 538_461 };
const earlyYear = new Date("0999-01-02T03:04:05.000Z");

describe("writing timestamps as Python's isoformat()", () => {
  const table: { name: string; time: TimeInput; aware: string; naive: string }[] = [
    {
      name: "a whole second, without a fraction",
      time: onTheMinute,
      aware: "2026-12-01T06:00:00+00:00",
      naive: "2026-12-01T06:00:00",
    },
    {
      name: "milliseconds, as six digits (never three)",
      time: withMilliseconds,
      aware: "2026-11-25T11:29:59.771000+00:00",
      naive: "2026-11-25T11:29:59.771000",
    },
    {
      name: "one millisecond, zero-padded",
      time: oneMillisecond,
      aware: "2026-11-25T11:29:59.001000+00:00",
      naive: "2026-11-25T11:29:59.001000",
    },
    {
      name: "microseconds read from the wire",
      time: pythonPrecision,
      aware: "2026-11-25T11:22:59.538461+00:00",
      naive: "2026-11-25T11:22:59.538461",
    },
    {
      name: "a year before 1000, padded to four digits",
      time: earlyYear,
      aware: "0999-01-02T03:04:05+00:00",
      naive: "0999-01-02T03:04:05",
    },
  ];

  it.each(table)("writes $name", ({ time, aware, naive }) => {
    expect(formatTimestamp(time)).toBe(aware);
    expect(formatNaiveTimestamp(time)).toBe(naive);
  });

  it("refuses times Python cannot hold", () => {
    expect(() => formatTimestamp(new Date("+010000-01-01T00:00:00Z"))).toThrow(/years 1 to 9999/);
    expect(() => formatTimestamp(new Date(Number.NaN))).toThrow(/invalid Date/);
    expect(() => formatTimestamp({ date: onTheMinute, microsecond: 1_000_000 })).toThrow(/0\.\.999999/);
  });
});

describe("reading timestamps like a sane ISO-8601 client", () => {
  const table: {
    text: string;
    instant: string;
    microsecond: number;
    offset: number | null;
    digits: number;
  }[] = [
    {
      text: "2026-11-25T11:22:59.538461+00:00",
      instant: "2026-11-25T11:22:59.538Z",
      microsecond: 538461,
      offset: 0,
      digits: 6,
    },
    {
      text: "2026-11-25T11:29:59.771Z",
      instant: "2026-11-25T11:29:59.771Z",
      microsecond: 771000,
      offset: 0,
      digits: 3,
    },
    {
      text: "2026-11-25T11:29:59.771323",
      instant: "2026-11-25T11:29:59.771Z",
      microsecond: 771323,
      offset: null,
      digits: 6,
    },
    {
      text: "2030-01-02T03:04:05+00:00",
      instant: "2030-01-02T03:04:05.000Z",
      microsecond: 0,
      offset: 0,
      digits: 0,
    },
    {
      text: "2026-11-25T17:00:00+05:30",
      instant: "2026-11-25T11:30:00.000Z",
      microsecond: 0,
      offset: 330,
      digits: 0,
    },
    {
      text: "2026-11-25T06:00:00-0500",
      instant: "2026-11-25T11:00:00.000Z",
      microsecond: 0,
      offset: -300,
      digits: 0,
    },
    {
      text: "2026-11-25 11:00:00Z",
      instant: "2026-11-25T11:00:00.000Z",
      microsecond: 0,
      offset: 0,
      digits: 0,
    },
    { text: "2026-11-25T11:00Z", instant: "2026-11-25T11:00:00.000Z", microsecond: 0, offset: 0, digits: 0 },
    {
      text: "2026-11-25T11:00:00.123456789Z",
      instant: "2026-11-25T11:00:00.123Z",
      microsecond: 123456,
      offset: 0,
      digits: 9,
    },
    {
      text: "2028-02-29T00:00:00Z",
      instant: "2028-02-29T00:00:00.000Z",
      microsecond: 0,
      offset: 0,
      digits: 0,
    },
  ];

  it.each(table)("reads $text", ({ text, instant, microsecond, offset, digits }) => {
    const parsed = parseTimestamp(text);
    expect(
      parsed.ok && {
        instant: parsed.value.date.toISOString(),
        microsecond: parsed.value.microsecond,
        offset: parsed.value.utcOffsetMinutes,
        digits: parsed.value.fractionDigits,
        text: parsed.value.text,
      },
    ).toEqual({ instant, microsecond, offset, digits, text });
  });

  const invalid = [
    "tomorrow",
    "2026-11-25",
    "2026-02-29T00:00:00Z",
    "2026-13-01T00:00:00Z",
    "2026-11-25T24:00:00Z",
    "2026-11-25T11:60:00Z",
    "2026-11-25T11:00:60Z",
    "2026-11-25T11:00:00+24:00",
    "0000-01-01T00:00:00Z",
    " 2026-11-25T11:00:00Z",
  ];
  it.each(invalid)("refuses %j", (text) => {
    const parsed = parseTimestamp(text);
    expect(parsed.ok).toBe(false);
    expect(parsed.ok ? "" : parsed.reason).toContain(JSON.stringify(text));
  });
});

// Expected values checked against celery/utils/iso8601.py from Celery 5.2.6 run under Python 3.11.
describe("Celery 5.2's reading, which takes the fraction digits as microseconds", () => {
  const table: { text: string; celery: string | null }[] = [
    // What cadent and Python write: read as written.
    { text: "2026-11-25T11:22:59.538461+00:00", celery: "2026-11-25T11:22:59.538461+00:00" },
    { text: "2030-01-02T03:04:05+00:00", celery: "2030-01-02T03:04:05+00:00" },
    { text: "2026-11-25T11:29:59.771323", celery: "2026-11-25T11:29:59.771323+00:00" },
    // JavaScript's toISOString(): 771 ms becomes 771 µs, so the task runs 0.77 s early.
    { text: "2026-11-25T11:29:59.771Z", celery: "2026-11-25T11:29:59.000771+00:00" },
    { text: "2026-11-25T11:29:59.5Z", celery: "2026-11-25T11:29:59.000005+00:00" },
    { text: "2026-11-25T06:00:00.000001-05:00", celery: "2026-11-25T11:00:00.000001+00:00" },
    // Seven digits overflow the microsecond field: Celery raises.
    { text: "2026-11-25T11:29:59.1234567Z", celery: null },
    { text: "nonsense", celery: null },
  ];

  it.each(table)("reads $text as $celery", ({ text, celery }) => {
    const reading = celery52Reading(text);
    expect(reading && formatTimestamp(reading)).toBe(celery);
  });
});
