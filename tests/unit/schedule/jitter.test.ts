import { describe, expect, test } from "vitest";
import { jitterOffsetMs, nextRun } from "../../../src/schedule/index.ts";
import { schedule } from "./support.ts";

const UIDS = Array.from({ length: 1000 }, (_, i) => `6f1c2a9e-0000-4000-8000-${String(i).padStart(12, "0")}`);
const SIX_AM = new Date("2026-12-01T06:00:00Z");
const SIX_AM_NEXT_DAY = new Date("2026-12-02T06:00:00Z");

describe("jitterOffsetMs: a stable per-object delay in [0, jitterSeconds)", () => {
  test("every delay is within [0, 30 s) and they spread over the window", () => {
    const delays = UIDS.map((uid) => jitterOffsetMs(uid, 30, SIX_AM, SIX_AM_NEXT_DAY));
    for (const d of delays) {
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(30_000);
      expect(Number.isInteger(d)).toBe(true);
    }
    expect(Math.min(...delays)).toBeLessThan(1_000);
    expect(Math.max(...delays)).toBeGreaterThan(29_000);
  });

  test("an object keeps its delay from run to run, and objects differ", () => {
    const uid = UIDS[0] ?? "";
    const first = jitterOffsetMs(uid, 30, SIX_AM, SIX_AM_NEXT_DAY);
    expect(jitterOffsetMs(uid, 30, SIX_AM_NEXT_DAY, new Date("2026-12-03T06:00:00Z"))).toBe(first);
    // 1000 keys in 30,000 ms collide about 17 times by chance (birthday bound).
    expect(new Set(UIDS.map((u) => jitterOffsetMs(u, 30, SIX_AM, SIX_AM_NEXT_DAY))).size).toBeGreaterThan(
      950,
    );
  });

  test("never reaches the next fire time: with runs a minute apart, a 300 s jitter shrinks to below 60 s", () => {
    const nextMinute = new Date(SIX_AM.getTime() + 60_000);
    for (const uid of UIDS) {
      const d = jitterOffsetMs(uid, 300, SIX_AM, nextMinute);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(60_000);
    }
  });

  test.each([
    ["no jitter", 0],
    ["a negative jitter", -5],
    ["a jitter that is not a number", Number.NaN],
  ])("%s means no delay", (_name, seconds) => {
    expect(jitterOffsetMs(UIDS[1] ?? "", seconds, SIX_AM, SIX_AM_NEXT_DAY)).toBe(0);
  });

  test("without a next fire time the whole window is used", () => {
    expect(jitterOffsetMs(UIDS[2] ?? "", 30, SIX_AM, null)).toBe(
      jitterOffsetMs(UIDS[2] ?? "", 30, SIX_AM, SIX_AM_NEXT_DAY),
    );
  });
});

describe("nextRun: the schedule with startTime, endTime, maxRuns and jitter", () => {
  const daily = schedule("0 6 * * *");
  // Named instants.
  const NOW = new Date("2026-11-30T12:00:00Z");
  const START = new Date("2026-12-05T06:00:00Z");
  const END = new Date("2026-12-10T00:00:00Z");

  test("the next fire time after `after`, run at once without jitter", () => {
    expect(nextRun({ schedule: daily, after: NOW })).toEqual({
      kind: "scheduled",
      scheduledTime: new Date("2026-12-01T06:00:00Z"),
      runAt: new Date("2026-12-01T06:00:00Z"),
    });
  });

  test("startTime: no fire time before it, and a fire time exactly at it counts", () => {
    expect(nextRun({ schedule: daily, after: NOW, startTime: START })).toMatchObject({
      kind: "scheduled",
      scheduledTime: START,
    });
  });

  test("endTime: finished once the next fire time is after it", () => {
    expect(nextRun({ schedule: daily, after: new Date("2026-12-09T07:00:00Z"), endTime: END })).toEqual({
      kind: "finished",
      reason: "EndTimePassed",
    });
    expect(nextRun({ schedule: daily, after: new Date("2026-12-08T07:00:00Z"), endTime: END })).toMatchObject(
      {
        kind: "scheduled",
        scheduledTime: new Date("2026-12-09T06:00:00Z"),
      },
    );
  });

  test("maxRuns: finished once runsSoFar reaches it (a one-off is maxRuns 1)", () => {
    expect(nextRun({ schedule: daily, after: NOW, maxRuns: 1, runsSoFar: 1 })).toEqual({
      kind: "finished",
      reason: "MaxRunsReached",
    });
    expect(nextRun({ schedule: daily, after: NOW, maxRuns: 1, runsSoFar: 0 }).kind).toBe("scheduled");
  });

  test("no fire time left (end of the calendar)", () => {
    expect(nextRun({ schedule: daily, after: new Date("9999-12-31T07:00:00Z") })).toEqual({
      kind: "finished",
      reason: "NoMoreFireTimes",
    });
  });

  test("jitter delays runAt, not the scheduled time that names the run", () => {
    const uid = UIDS[3] ?? "";
    const result = nextRun({ schedule: daily, after: NOW, jitterSeconds: 30, jitterKey: uid });
    const delay = jitterOffsetMs(uid, 30, new Date("2026-12-01T06:00:00Z"), new Date("2026-12-02T06:00:00Z"));
    expect(delay).toBeGreaterThan(0);
    expect(result).toEqual({
      kind: "scheduled",
      scheduledTime: new Date("2026-12-01T06:00:00Z"),
      runAt: new Date(Date.parse("2026-12-01T06:00:00Z") + delay),
    });
  });
});
