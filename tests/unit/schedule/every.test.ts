import { describe, expect, test } from "vitest";
import { compileSchedule } from "../../../src/schedule/index.ts";

// Named instants.
const CREATED = new Date("2027-01-01T10:00:07.250Z"); // the object's creationTimestamp
const ANCHOR = "2027-01-01T10:00:07Z"; // creation time, whole seconds

function every(duration: string, timeZone?: string) {
  return compileSchedule({ expression: `@every ${duration}`, timeZone, hashKey: "k", createdAt: CREATED });
}

function iso(d: Date | null): string | null {
  return d === null ? null : d.toISOString().replace(".000Z", "Z");
}

describe("@every <duration>: anchored at the object's creation time", () => {
  test.each([
    ["30s", "2027-01-01T10:00:37Z", "2027-01-01T10:01:07Z"],
    ["5m", "2027-01-01T10:05:07Z", "2027-01-01T10:10:07Z"],
    ["1h30m", "2027-01-01T11:30:07Z", "2027-01-01T13:00:07Z"],
    ["2h0m30s", "2027-01-01T12:00:37Z", "2027-01-01T14:01:07Z"],
    ["90s", "2027-01-01T10:01:37Z", "2027-01-01T10:03:07Z"],
  ])(
    "every %s: the first run is one interval after creation (%s), then every interval",
    (duration, first, second) => {
      const s = every(duration);
      expect(iso(s.next(CREATED))).toBe(first);
      expect(iso(s.next(new Date(first)))).toBe(second);
    },
  );

  test("asking from before creation still gives the first run one interval after creation", () => {
    expect(iso(every("5m").next(new Date("2026-06-01T00:00:00Z")))).toBe("2027-01-01T10:05:07Z");
  });

  test("times stay on the anchor's grid, not on the clock's: after a restart at 10:07:00 the next run is 10:10:07", () => {
    expect(iso(every("5m").next(new Date("2027-01-01T10:07:00Z")))).toBe("2027-01-01T10:10:07Z");
  });

  test("prev() and countBetween() use the same grid, and creation itself is not a run", () => {
    const s = every("5m");
    expect(iso(s.prev(new Date("2027-01-01T10:07:00Z")))).toBe("2027-01-01T10:05:07Z");
    expect(s.prev(new Date(ANCHOR))).toBeNull();
    expect(s.countBetween(new Date("2026-01-01T00:00:00Z"), new Date("2027-01-01T11:00:07Z"))).toBe(12);
    expect(s.countBetween(new Date("2027-01-01T10:05:07Z"), new Date("2027-01-01T10:05:07Z"))).toBe(0);
  });

  test("elapsed time, not wall time: across New York's fall-back an hourly @every stays 60 minutes apart", () => {
    const s = compileSchedule({
      expression: "@every 1h",
      timeZone: "America/New_York",
      hashKey: "k",
      createdAt: new Date("2027-11-07T03:00:00Z"),
    });
    expect(
      [1, 2, 3, 4].map((k) =>
        iso(s.next(new Date(Date.parse("2027-11-07T03:00:00Z") + (k - 1) * 3_600_000))),
      ),
    ).toEqual([
      "2027-11-07T04:00:00Z",
      "2027-11-07T05:00:00Z",
      "2027-11-07T06:00:00Z",
      "2027-11-07T07:00:00Z",
    ]);
    expect(s.isFixedTime).toBe(false);
  });
});
