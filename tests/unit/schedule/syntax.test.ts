import { describe, expect, test } from "vitest";
import { fires, schedule } from "./support.ts";

// Named instants: 2027-01-01 is a Friday.
const NEW_YEAR_2027 = "2027-01-01T00:00:00Z";

interface Case {
  readonly name: string;
  readonly expression: string;
  readonly zone?: string;
  readonly after?: string;
  readonly fires: readonly string[];
}

const cases: readonly Case[] = [
  {
    name: "five fields: minute hour day-of-month month day-of-week",
    expression: "15 10 * * *",
    fires: ["2027-01-01T10:15:00Z", "2027-01-02T10:15:00Z"],
  },
  {
    name: "a leading sixth field is seconds",
    expression: "30 15 10 * * *",
    fires: ["2027-01-01T10:15:30Z", "2027-01-02T10:15:30Z"],
  },
  {
    name: "ranges, lists and steps",
    expression: "0,30 9-17/4 * * *",
    fires: ["2027-01-01T09:00:00Z", "2027-01-01T09:30:00Z", "2027-01-01T13:00:00Z", "2027-01-01T13:30:00Z"],
  },
  {
    name: "a step after a single value runs to the end of the field",
    expression: "50/5 0 * * *",
    fires: ["2027-01-01T00:50:00Z", "2027-01-01T00:55:00Z", "2027-01-02T00:50:00Z"],
  },
  {
    name: "month and weekday names, in any case",
    expression: "0 9 * feb,Jul MON-fri",
    fires: ["2027-02-01T09:00:00Z", "2027-02-02T09:00:00Z"],
  },
  {
    name: "? means any, as *",
    expression: "0 9 ? * ?",
    fires: ["2027-01-01T09:00:00Z", "2027-01-02T09:00:00Z"],
  },
  {
    name: "0 and 7 are both Sunday, and overlapping list items are fine (as in Vixie cron)",
    expression: "0 0 * * SUN,7,0-0",
    fires: ["2027-01-03T00:00:00Z", "2027-01-10T00:00:00Z"],
  },
  {
    name: "L in day-of-month is the month's last day, leap years included",
    expression: "0 0 L * *",
    after: "2028-01-15T00:00:00Z",
    fires: ["2028-01-31T00:00:00Z", "2028-02-29T00:00:00Z", "2028-03-31T00:00:00Z", "2028-04-30T00:00:00Z"],
  },
  {
    name: "5L in day-of-week is the month's last Friday",
    expression: "0 0 * * 5L",
    fires: ["2027-01-29T00:00:00Z", "2027-02-26T00:00:00Z", "2027-03-26T00:00:00Z"],
  },
  {
    name: "5#2 is the month's second Friday",
    expression: "0 0 * * 5#2",
    fires: ["2027-01-08T00:00:00Z", "2027-02-12T00:00:00Z", "2027-03-12T00:00:00Z"],
  },
  {
    name: "# items can be listed: first Monday and third Friday",
    expression: "0 0 * * 1#1,5#3",
    fires: ["2027-01-04T00:00:00Z", "2027-01-15T00:00:00Z", "2027-02-01T00:00:00Z", "2027-02-19T00:00:00Z"],
  },
  {
    name: "Vixie: both day fields restricted, a day matches if either does (the 13th, and every Friday)",
    expression: "0 0 13 * 5",
    after: "2027-01-01T00:00:00Z",
    fires: ["2027-01-08T00:00:00Z", "2027-01-13T00:00:00Z", "2027-01-15T00:00:00Z", "2027-01-22T00:00:00Z"],
  },
  {
    name: "Vixie: the 1st or the second Friday",
    expression: "0 0 1 * 5#2",
    after: "2027-01-01T00:00:00Z",
    fires: ["2027-01-08T00:00:00Z", "2027-02-01T00:00:00Z", "2027-02-12T00:00:00Z", "2027-03-01T00:00:00Z"],
  },
  {
    name: "Vixie: */n is not a restriction, so both fields must match (odd days that are Mondays)",
    expression: "0 0 */2 * 1",
    fires: ["2027-01-11T00:00:00Z", "2027-01-25T00:00:00Z", "2027-02-01T00:00:00Z", "2027-02-15T00:00:00Z"],
  },
  {
    name: "Vixie: the first Sunday of the month, written as days 1-7 that are */7 weekdays",
    expression: "0 0 1-7 * */7",
    fires: ["2027-01-03T00:00:00Z", "2027-02-07T00:00:00Z", "2027-03-07T00:00:00Z"],
  },
  {
    name: "the 29th of February fires in leap years only",
    expression: "0 0 29 2 *",
    fires: ["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"],
  },
  {
    name: "a rare schedule (the 5th Monday of February) is found decades ahead",
    expression: "0 0 * 2 1#5",
    fires: ["2044-02-29T00:00:00Z", "2072-02-29T00:00:00Z"],
  },
  { name: "@yearly", expression: "@yearly", fires: ["2028-01-01T00:00:00Z", "2029-01-01T00:00:00Z"] },
  { name: "@annually", expression: "@annually", fires: ["2028-01-01T00:00:00Z"] },
  { name: "@monthly", expression: "@monthly", fires: ["2027-02-01T00:00:00Z", "2027-03-01T00:00:00Z"] },
  {
    name: "@weekly (Sundays)",
    expression: "@weekly",
    fires: ["2027-01-03T00:00:00Z", "2027-01-10T00:00:00Z"],
  },
  { name: "@daily", expression: "@daily", fires: ["2027-01-02T00:00:00Z"] },
  { name: "@midnight", expression: "@midnight", fires: ["2027-01-02T00:00:00Z"] },
  { name: "@hourly", expression: "@hourly", fires: ["2027-01-01T01:00:00Z", "2027-01-01T02:00:00Z"] },
  {
    name: "macros are read in the schedule's time zone",
    expression: "@daily",
    zone: "Asia/Kolkata",
    fires: ["2027-01-01T18:30:00Z", "2027-01-02T18:30:00Z"],
  },
  {
    name: "the seed's crontab(hour=6, minute=0, day_of_month='1') in Asia/Shanghai: 06:00 local = 22:00Z the day before",
    expression: "0 6 1 * *",
    zone: "Asia/Shanghai",
    after: "2026-11-15T00:00:00Z",
    fires: ["2026-11-30T22:00:00Z", "2026-12-31T22:00:00Z"],
  },
  {
    name: "surrounding and repeated whitespace is ignored",
    expression: "  0\t6   1 * *  ",
    fires: ["2027-01-01T06:00:00Z", "2027-02-01T06:00:00Z"],
  },
];

describe("cron syntax", () => {
  test.each(cases.map((c) => [c.name, c] as const))("%s", (_name, c) => {
    expect(fires(schedule(c.expression, c.zone), c.after ?? NEW_YEAR_2027, c.fires.length)).toEqual(c.fires);
  });

  test("next() is strictly after its argument, also when the argument is itself a fire time", () => {
    const s = schedule("0 * * * *");
    expect(s.next(new Date("2027-01-01T01:00:00Z"))?.toISOString()).toBe("2027-01-01T02:00:00.000Z");
    expect(s.next(new Date("2027-01-01T00:59:59.999Z"))?.toISOString()).toBe("2027-01-01T01:00:00.000Z");
  });

  test("prev() is at or before its argument", () => {
    const s = schedule("0 * * * *");
    expect(s.prev(new Date("2027-01-01T01:00:00Z"))?.toISOString()).toBe("2027-01-01T01:00:00.000Z");
    expect(s.prev(new Date("2027-01-01T00:59:59.999Z"))?.toISOString()).toBe("2027-01-01T00:00:00.000Z");
  });

  test("there are no fire times after 9999-12-31T23:59:59Z", () => {
    expect(schedule("* * * * *").next(new Date("9999-12-31T23:59:00Z"))).toBeNull();
    expect(schedule("0 0 1 1 *").next(new Date("9999-06-01T00:00:00Z"))).toBeNull();
  });

  test("the engine answers for any Date, and its calendar runs from year 1 to year 9999", () => {
    const ny = schedule("30 2 * * *", "America/New_York");
    expect(ny.next(new Date(8.64e15))).toBeNull();
    expect(ny.prev(new Date(-8.64e15))).toBeNull();
    expect(ny.next(new Date(-8.64e15))?.toISOString()).toMatch(/^0001-01-0[12]T/);
    expect(schedule("@yearly").countBetween(new Date(-8.64e15), new Date(8.64e15))).toBe(9999);
  });

  test("the time zone defaults to UTC and is reported as given", () => {
    expect(schedule("0 0 * * *").timeZone).toBe("UTC");
    expect(schedule("0 0 * * *", "Europe/London").timeZone).toBe("Europe/London");
  });
});

describe("fixed-time or wildcard (decides the daylight-saving rule)", () => {
  test.each([
    ["30 2 * * *", true],
    ["0 1-3 * * *", true],
    ["0,30 9,17 * * *", true],
    ["H H * * *", true],
    ["0 30 2 * * *", true],
    ["@daily", true],
    ["@weekly", true],
    ["* 2 * * *", false],
    ["*/15 2 * * *", false],
    ["? 2 * * *", false],
    ["30 * * * *", false],
    ["30 */2 * * *", false],
    ["H/15 * * * *", false],
    ["*/10 30 2 * * *", false],
    ["* 30 2 * * *", false],
    ["@hourly", false],
    ["@every 1h", false],
  ] as const)("'%s' is fixed-time: %s", (expression, fixed) => {
    expect(schedule(expression).isFixedTime).toBe(fixed);
  });
});

describe("resolved shows what runs: macros expanded, H replaced", () => {
  test.each([
    ["@weekly", "0 0 * * 0"],
    ["@hourly", "0 * * * *"],
    ["0 9 * JAN MON", "0 9 * JAN MON"],
    ["30 0 9 * * *", "30 0 9 * * *"],
    ["@every 1h30m", "@every 1h30m"],
  ] as const)("'%s' resolves to '%s'", (expression, resolved) => {
    expect(schedule(expression).resolved).toBe(resolved);
  });
});
