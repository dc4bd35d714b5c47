/**
 * What cron-parser 5.x does where cadent's contract (product.md §2) says otherwise, and what the
 * engine does instead. These tests pin cron-parser's behaviour on purpose: if an upgrade changes
 * it, they fail, and the workaround in src/schedule can be reconsidered.
 */
import { CronExpressionParser } from "cron-parser";
import { describe, expect, test } from "vitest";
import { fires, schedule } from "./support.ts";

function cronParserFires(expression: string, tz: string, after: string, count: number): string[] {
  const it = CronExpressionParser.parse(expression, { currentDate: new Date(after), tz });
  return Array.from({ length: count }, () => it.next().toDate().toISOString().replace(".000Z", "Z"));
}

describe("daylight saving (corrected in src/schedule/dst.ts)", () => {
  test("spring forward, fixed time in the gap: cron-parser shifts 02:30 by the gap to 03:30 EDT; the contract runs it at the gap's end, 03:00 EDT", () => {
    expect(cronParserFires("30 2 * * *", "America/New_York", "2027-03-14T04:00:00Z", 1)).toEqual([
      "2027-03-14T07:30:00Z",
    ]);
    expect(fires(schedule("30 2 * * *", "America/New_York"), "2027-03-14T04:00:00Z", 1)).toEqual([
      "2027-03-14T07:00:00Z",
    ]);
  });

  test("Lord Howe's 30-minute spring gap: cron-parser skips the day's 02:15 run entirely; the engine runs it at 02:30", () => {
    expect(cronParserFires("15 2 * * *", "Australia/Lord_Howe", "2027-10-02T00:00:00Z", 1)).toEqual([
      "2027-10-03T15:15:00Z", // 2027-10-04 02:15 local: the run of 10-03 is lost
    ]);
    expect(fires(schedule("15 2 * * *", "Australia/Lord_Howe"), "2027-10-02T00:00:00Z", 1)).toEqual([
      "2027-10-02T15:30:00Z",
    ]);
  });

  test("Lord Howe's 30-minute fall-back: cron-parser drops the repeated 01:30 and 01:45 of a wildcard schedule", () => {
    expect(cronParserFires("*/15 1 * * *", "Australia/Lord_Howe", "2027-04-03T14:45:00Z", 1)).toEqual([
      "2027-04-04T14:30:00Z",
    ]);
    expect(fires(schedule("*/15 1 * * *", "Australia/Lord_Howe"), "2027-04-03T14:45:00Z", 3)).toEqual([
      "2027-04-03T15:00:00Z",
      "2027-04-03T15:15:00Z",
      "2027-04-04T14:30:00Z",
    ]);
  });
});

describe("day matching (the engine matches days itself, src/schedule/parse.ts)", () => {
  test("cron-parser treats */2 in day-of-month as a restriction (OR with day-of-week); Vixie cron does not: odd days that are Mondays", () => {
    expect(cronParserFires("0 0 */2 * 1", "UTC", "2027-01-01T00:00:00Z", 3)).toEqual([
      "2027-01-03T00:00:00Z",
      "2027-01-04T00:00:00Z",
      "2027-01-05T00:00:00Z",
    ]);
    expect(fires(schedule("0 0 */2 * 1"), "2027-01-01T00:00:00Z", 2)).toEqual([
      "2027-01-11T00:00:00Z",
      "2027-01-25T00:00:00Z",
    ]);
  });

  test("so '0 0 */20 * 5#5' (the 1st or 21st when it is a fifth Friday: never) fires on the 21st under cron-parser; the engine refuses it", () => {
    expect(cronParserFires("0 0 */20 * 5#5", "UTC", "2027-01-01T00:00:00Z", 1)).toEqual([
      "2027-01-21T00:00:00Z",
    ]);
    expect(() => schedule("0 0 */20 * 5#5")).toThrow(/never fires/);
  });
});

describe("lists (the engine parses list items one by one, src/schedule/fields.ts)", () => {
  test.each(["0 0 * * SUN,7", "0 0-10,5 * * *"])(
    "cron-parser refuses the overlapping list '%s', which Vixie cron accepts",
    (expression) => {
      expect(() => CronExpressionParser.parse(expression)).toThrow(/duplicate values/);
      expect(() => schedule(expression)).not.toThrow();
    },
  );
});

describe("H (resolved before cron-parser sees the field, src/schedule/hashed.ts)", () => {
  test("cron-parser's H in day-of-month can pick the 29th-31st, which skips months; the engine's stays within 1-28 as in Jenkins", () => {
    const keys = Array.from({ length: 40 }, (_, i) => `default/task-${i}`);
    const cronParserDays = keys.map(
      (key) => CronExpressionParser.parse("0 0 H * *", { hashSeed: key }).fields.dayOfMonth.values[0],
    );
    expect(cronParserDays.some((day) => typeof day === "number" && day > 28)).toBe(true);
    const engineDays = keys.map((key) =>
      Number(schedule("0 0 H * *", undefined, key).resolved.split(" ")[2]),
    );
    expect(Math.max(...engineDays)).toBeLessThanOrEqual(28);
  });

  test("cron-parser gives every H of a field the same value, so 'H,H' is refused as a duplicate; the engine hashes each item", () => {
    expect(() => CronExpressionParser.parse("H,H * * * *", { hashSeed: "x" })).toThrow(/duplicate values/);
    const [first, second] = (schedule("H,H * * * *", undefined, "x").resolved.split(" ")[0] ?? "").split(",");
    expect(first).not.toBe(second);
  });
});
