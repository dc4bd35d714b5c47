import { describe, expect, it } from "vitest";
import { compareDateTimes, isCelTimestamp } from "../../../src/api/fields.ts";

// The API server evaluates `timestamp(s.upperAscii())` (cel-go); these pin zod's twin of it at the
// edges. tests/integration/api-crds.test.ts sends the same kind of times to a real API server.
describe("the instants CEL's timestamp() holds: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z", () => {
  it.each([
    ["0001-01-01T00:00:00Z", "the first instant", true],
    ["0000-12-31T23:59:59.999999999Z", "a nanosecond before it", false],
    ["0000-06-01T00:00:00Z", "a time in the year 0", false],
    ["0001-01-01T01:00:00+01:00", "the first instant, written an hour ahead", true],
    ["0001-01-01T00:59:59+01:00", "a second before it, written an hour ahead", false],
    ["9999-12-31T23:59:59.999999999Z", "the last instant", true],
    ["9999-12-31t23:59:59.999999999z", "the last instant, in lowercase", true],
    ["9999-12-31T22:59:59.999999999-01:00", "the last instant, written an hour behind", true],
    ["9999-12-31T23:00:00-01:00", "an hour after it, written an hour behind", false],
  ])("%s (%s): %s", (time, _what, holds) => {
    expect(isCelTimestamp(time)).toBe(holds);
  });
});

describe("times are ordered as instants, to the nanosecond", () => {
  it.each([
    [
      "2026-12-01T08:00:00+08:00",
      "2026-12-01t00:00:00z",
      "the same instant at two offsets, one in lowercase",
      0,
    ],
    ["2026-12-01T00:00:00Z", "2026-12-01T00:00:00.000000001Z", "a nanosecond apart", -1],
    ["2026-12-01T00:00:00.000000001Z", "2026-12-01T00:00:00Z", "a nanosecond apart, the later first", 1],
    [
      "2026-12-01T00:00:00Z",
      "2026-12-01T00:00:00.0000000009Z",
      "apart only past the ninth digit, dropped",
      0,
    ],
    ["2026-12-01T00:00:00.5Z", "2026-12-01T00:00:00.500000000Z", "the same fraction written longer", 0],
  ])("%s and %s (%s): %i", (a, b, _what, sign) => {
    expect(Math.sign(compareDateTimes(a, b))).toBe(sign);
  });
});
