import { describe, expect, test } from "vitest";
import { jitterOffsetMs, missedRuns, type MissedRunsInput } from "../../../src/schedule/index.ts";
import { schedule } from "./support.ts";

const hourly = schedule("0 * * * *");
// Named instants: the controller was down from just after 09:00 until NOW.
const LAST = new Date("2027-01-01T09:00:00Z");
const NOW = new Date("2027-01-01T12:10:00Z");
const at = (hhmm: string): Date => new Date(`2027-01-01T${hhmm}:00Z`);

function run(input: Partial<MissedRunsInput>) {
  return missedRuns({ schedule: hourly, lastScheduleTime: LAST, now: NOW, catchUp: "Latest", ...input });
}

describe("missedRuns: what to run after downtime, and how many runs were missed", () => {
  test.each<[string, Partial<MissedRunsInput>, Date[], number]>([
    ["nothing is due before the next fire time", { now: new Date("2027-01-01T09:59:59Z") }, [], 0],
    ["a fire time exactly at `now` is due", { now: at("10:00") }, [at("10:00")], 0],
    ["Latest: the newest of 10:00, 11:00, 12:00 runs; two are missed", {}, [at("12:00")], 2],
    [
      "All: every missed fire time runs, oldest first",
      { catchUp: "All" },
      [at("10:00"), at("11:00"), at("12:00")],
      0,
    ],
    [
      "Latest with a deadline the newest is inside (12:00 is 600 s late, deadline 900 s)",
      { startingDeadlineSeconds: 900 },
      [at("12:00")],
      2,
    ],
    [
      "Latest with a deadline the newest is past (600 s late, deadline 300 s): nothing runs, all are missed",
      { startingDeadlineSeconds: 300 },
      [],
      3,
    ],
    [
      "All with a deadline: only fire times inside it run (11:00 and 12:00 within 4200 s)",
      { catchUp: "All", startingDeadlineSeconds: 4200 },
      [at("11:00"), at("12:00")],
      1,
    ],
    [
      "a deadline is inclusive: 12:00 is exactly 600 s late",
      { startingDeadlineSeconds: 600 },
      [at("12:00")],
      2,
    ],
    [
      "startTime: fire times before it are neither run nor missed",
      { catchUp: "All", startTime: at("11:00") },
      [at("11:00"), at("12:00")],
      0,
    ],
    [
      "endTime: fire times after it are neither run nor missed",
      { catchUp: "All", endTime: at("11:30") },
      [at("10:00"), at("11:00")],
      0,
    ],
    [
      "a lastScheduleTime after now (clock skew): nothing",
      { lastScheduleTime: new Date("2027-01-01T13:00:00Z") },
      [],
      0,
    ],
  ])("%s", (_name, input, toRun, missed) => {
    const result = run(input);
    expect(result.toRun).toEqual(toRun);
    expect(result.missed).toBe(missed);
  });

  test("All makes at most `limit` runs, the newest ones, and counts the rest as missed", () => {
    const minutely = schedule("* * * * *");
    const result = missedRuns({
      schedule: minutely,
      lastScheduleTime: new Date("2027-01-01T00:00:00Z"),
      now: new Date("2027-01-01T05:00:00Z"),
      catchUp: "All",
    });
    expect(result.toRun).toHaveLength(100);
    expect(result.toRun[0]).toEqual(new Date("2027-01-01T03:21:00Z"));
    expect(result.toRun[99]).toEqual(new Date("2027-01-01T05:00:00Z"));
    expect(result.missed).toBe(300 - 100);
  });

  test("missedTimes samples the newest missed fire times, oldest first, for the Events", () => {
    const result = run({ startingDeadlineSeconds: 300 });
    expect(result.missedTimes).toEqual([at("10:00"), at("11:00"), at("12:00")]);
    const many = missedRuns({
      schedule: schedule("* * * * *"),
      lastScheduleTime: new Date("2027-01-01T00:00:00Z"),
      now: new Date("2027-01-01T05:00:00Z"),
      catchUp: "Latest",
    });
    expect(many.missedTimes).toHaveLength(10);
    expect(many.missedTimes[0]).toEqual(new Date("2027-01-01T04:50:00Z"));
    expect(many.missedTimes[9]).toEqual(new Date("2027-01-01T04:59:00Z"));
  });

  test("with jitter, the newest fire time is not due before its delay has passed; it is neither run nor missed", () => {
    const uid = "6f1c2a9e-0000-4000-8000-000000000003";
    const delay = jitterOffsetMs(uid, 600, at("12:00"), at("13:00"));
    expect(delay).toBeGreaterThan(0);
    const jitter = { key: uid, seconds: 600 };
    const before = run({ catchUp: "All", jitter, now: new Date(at("12:00").getTime() + delay - 1) });
    expect(before).toEqual({ toRun: [at("10:00"), at("11:00")], missed: 0, missedTimes: [] });
    const after = run({ catchUp: "All", jitter, now: new Date(at("12:00").getTime() + delay) });
    expect(after.toRun).toEqual([at("10:00"), at("11:00"), at("12:00")]);
  });

  describe("a huge gap is counted, not iterated", () => {
    // 2027 is not a leap year: 365 × 86,400 seconds.
    const YEAR_AGO = new Date("2027-01-01T00:00:00Z");
    const A_YEAR_LATER = new Date("2028-01-01T00:00:00Z");

    test("every second for a year: Latest runs the newest and counts 31,535,999 missed", () => {
      const result = missedRuns({
        schedule: schedule("* * * * * *"),
        lastScheduleTime: YEAR_AGO,
        now: A_YEAR_LATER,
        startingDeadlineSeconds: 60,
        catchUp: "Latest",
      });
      expect(result.toRun).toEqual([A_YEAR_LATER]);
      expect(result.missed).toBe(31_536_000 - 1);
    });

    test("every second for a year, All: the newest 100 inside the deadline run, the rest are missed", () => {
      const result = missedRuns({
        schedule: schedule("* * * * * *"),
        lastScheduleTime: YEAR_AGO,
        now: A_YEAR_LATER,
        startingDeadlineSeconds: 3600,
        catchUp: "All",
      });
      expect(result.toRun).toHaveLength(100);
      expect(result.toRun[0]).toEqual(new Date(A_YEAR_LATER.getTime() - 99_000));
      expect(result.missed).toBe(31_536_000 - 100);
    });

    test("every second for a year in New York: the skipped and repeated hours cancel out, one run per real second", () => {
      const ny = schedule("* * * * * *", "America/New_York");
      expect(ny.countBetween(YEAR_AGO, A_YEAR_LATER)).toBe(31_536_000);
    });

    test("a fixed time for a year in New York: once a day, including both changeover days", () => {
      expect(schedule("30 1 * * *", "America/New_York").countBetween(YEAR_AGO, A_YEAR_LATER)).toBe(365);
      expect(schedule("30 2 * * *", "America/New_York").countBetween(YEAR_AGO, A_YEAR_LATER)).toBe(365);
    });

    test("a wildcard schedule for a year in New York: the repeated hour fires twice, the skipped one never", () => {
      // */30 fires 48 times a day; on 2027-03-14 two half hours do not exist, on 2027-11-07 two repeat.
      expect(schedule("*/30 * * * *", "America/New_York").countBetween(YEAR_AGO, A_YEAR_LATER)).toBe(
        365 * 48,
      );
      expect(schedule("*/30 2 * * *", "America/New_York").countBetween(YEAR_AGO, A_YEAR_LATER)).toBe(
        365 * 2 - 2,
      );
      expect(schedule("*/30 1 * * *", "America/New_York").countBetween(YEAR_AGO, A_YEAR_LATER)).toBe(
        365 * 2 + 2,
      );
    });

    test("a century of minutes", () => {
      const result = missedRuns({
        schedule: schedule("* * * * *"),
        lastScheduleTime: new Date("2000-01-01T00:00:00Z"),
        now: new Date("2100-01-01T00:00:00Z"),
        catchUp: "Latest",
      });
      // 36,525 days from 2000-01-01 to 2100-01-01 (25 leap days: 2000 is one, 2100 is not in range).
      expect(result.missed).toBe(36_525 * 1440 - 1);
    });
  });
});
