import { describe, expect, test } from "vitest";
import { ScheduleError, compileSchedule } from "../../../src/schedule/index.ts";
import { CREATED } from "./support.ts";

function compileError(expression: string, timeZone?: string): ScheduleError {
  try {
    compileSchedule({ expression, timeZone, hashKey: "default/report", createdAt: CREATED });
  } catch (err) {
    if (err instanceof ScheduleError) return err;
    throw err;
  }
  throw new Error(`'${expression}' compiled, but an error was expected`);
}

describe("a schedule that can never fire is refused with the reason", () => {
  test.each([
    ["0 0 30 2 *", "schedule '0 0 30 2 *' never fires: February has no 30th"],
    ["0 0 31 4 *", "schedule '0 0 31 4 *' never fires: April has no 31st"],
    ["0 0 30,31 2 *", "schedule '0 0 30,31 2 *' never fires: February has no 30th or 31st"],
    [
      "0 0 31 4,6,9,11 *",
      "schedule '0 0 31 4,6,9,11 *' never fires: April, June, September and November have no 31st",
    ],
    ["0 0 0 31 APR ?", "schedule '0 0 0 31 APR ?' never fires: April has no 31st"],
    [
      "0 0 */20 * 5#5",
      "schedule '0 0 */20 * 5#5' never fires: no day matches both day-of-month '*/20' and day-of-week '5#5'",
    ],
    [
      "0 0 */30 2 5#5",
      "schedule '0 0 */30 2 5#5' never fires: no day in February matches both day-of-month '*/30' and day-of-week '5#5'",
    ],
  ])("'%s'", (expression, message) => {
    const err = compileError(expression);
    expect(err.reason).toBe("InvalidSchedule");
    expect(err.message).toBe(message);
  });
});

describe("a malformed schedule is refused with a message that points at the bad part", () => {
  test.each([
    ["", "schedule is empty"],
    ["   ", "schedule is empty"],
    [
      "* * * *",
      "schedule '* * * *' has 4 fields; expected 5 (minute hour day-of-month month day-of-week) or 6 (a leading seconds field, then those 5)",
    ],
    [
      "* * * * * * *",
      "schedule '* * * * * * *' has 7 fields; expected 5 (minute hour day-of-month month day-of-week) or 6 (a leading seconds field, then those 5)",
    ],
    ["0 25 * * *", "field 2 (hour) '25' is out of range 0-23"],
    ["0 0 25 * * *", "field 3 (hour) '25' is out of range 0-23"],
    ["0 1,25 * * *", "field 2 (hour) '1,25': '25' is out of range 0-23"],
    ["60 * * * *", "field 1 (minute) '60' is out of range 0-59"],
    ["60 * * * * *", "field 1 (second) '60' is out of range 0-59"],
    ["0 0 0 * *", "field 3 (day-of-month) '0' is out of range 1-31"],
    ["0 0 1-32 * *", "field 3 (day-of-month) '1-32' is out of range 1-31"],
    ["0 0 * 13 *", "field 4 (month) '13' is out of range 1-12"],
    ["0 0 * * 8", "field 5 (day-of-week) '8' is out of range 0-7 (0 and 7 are Sunday)"],
    ["0 5-1 * * *", "field 2 (hour) '5-1' is a reversed range (write the smaller value first)"],
    ["0 1- * * *", "field 2 (hour) '1-' is not a valid range"],
    [
      "*/0 * * * *",
      "field 1 (minute) '*/0' has an invalid step (write one '/' followed by a positive whole number)",
    ],
    [
      "*/5/2 * * * *",
      "field 1 (minute) '*/5/2' has an invalid step (write one '/' followed by a positive whole number)",
    ],
    ["0 0 * FOO *", "field 4 (month) 'FOO' uses 'foo', which is not a month name (JAN-DEC)"],
    ["0 0 * * MON-FUN", "field 5 (day-of-week) 'MON-FUN' uses 'fun', which is not a weekday name (SUN-SAT)"],
    [
      "0 0 * * 1#6",
      "field 5 (day-of-week) '1#6' has an invalid '#' occurrence (use 1-5, e.g. 5#2 for the second Friday)",
    ],
    [
      "0 0 * * 1-5#2",
      "field 5 (day-of-week) '1-5#2' combines '#' with a range, step or L, which is not supported",
    ],
    [
      "0 0 * * L",
      "field 5 (day-of-week) 'L' uses a bare L; in day-of-week write the weekday before it, e.g. 5L for the last Friday",
    ],
    [
      "0 0 5L * *",
      "field 3 (day-of-month) '5L' uses L with a number; in day-of-month L stands alone for the last day (nL is for day-of-week)",
    ],
    [
      "0 0 L-3 * *",
      "field 3 (day-of-month) 'L-3' uses L with a number; in day-of-month L stands alone for the last day (nL is for day-of-week)",
    ],
    [
      "0 0 15W * *",
      "field 3 (day-of-month) '15W' contains characters not allowed in the day-of-month field (allowed: numbers, ranges a-b, steps /n, lists a,b, * and ?, L)",
    ],
    [
      "0 x * * *",
      "field 2 (hour) 'x' contains characters not allowed in the hour field (allowed: numbers, ranges a-b, steps /n, lists a,b, * and ?)",
    ],
    ["1,,2 * * * *", "field 1 (minute) '1,,2' has an empty list item"],
    [
      "H(30-10) * * * *",
      "field 1 (minute) 'H(30-10)': 'H(30-10)' is a reversed range (write the smaller value first)",
    ],
    ["H(0-99) * * * *", "field 1 (minute) 'H(0-99)': range 0-99 in 'H(0-99)' is out of range 0-59"],
    [
      "H/0 * * * *",
      "field 1 (minute) 'H/0': step 0 in 'H/0' must be between 1 and the width of the range 0-59 (60)",
    ],
    [
      "H(0-9)/20 * * * *",
      "field 1 (minute) 'H(0-9)/20': step 20 in 'H(0-9)/20' must be between 1 and the width of the range 0-9 (10)",
    ],
    [
      "HH * * * *",
      "field 1 (minute) 'HH': 'HH' is not a valid hashed value (write H, H/n, H(a-b) or H(a-b)/n)",
    ],
    [
      "0 0 * * H#2",
      "field 5 (day-of-week) 'H#2': 'H#2' is not a valid hashed value (write H, H/n, H(a-b) or H(a-b)/n)",
    ],
    [
      "@reboot",
      "schedule '@reboot' is not a supported macro (use @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or @every <duration>)",
    ],
    [
      "@daily 5",
      "schedule '@daily 5' is not a supported macro (use @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or @every <duration>)",
    ],
    ["@every", "schedule '@every': @every needs a duration such as 30s, 5m or 1h30m"],
    ["@every 1.5h", "schedule '@every 1.5h': @every needs a duration such as 30s, 5m or 1h30m"],
    ["@every 5x", "schedule '@every 5x': @every needs a duration such as 30s, 5m or 1h30m"],
    ["@every 30m1h", "schedule '@every 30m1h': @every needs a duration such as 30s, 5m or 1h30m"],
    ["@every 0s", "schedule '@every 0s': the @every duration must be at least 1s"],
    ["@every 876001h", "schedule '@every 876001h': the @every duration must be at most 876000h (100 years)"],
    ["0 ".repeat(600), "schedule is 1199 characters long; at most 1024 are allowed"],
  ])("'%s'", (expression, message) => {
    const err = compileError(expression);
    expect(err).toBeInstanceOf(ScheduleError);
    expect(err.name).toBe("ScheduleError");
    expect(err.reason).toBe("InvalidSchedule");
    expect(err.message).toBe(message);
  });
});

describe("an unknown time zone is refused with reason UnknownTimeZone", () => {
  test.each(["Mars/Olympus", "America/New York", "+05:00", "", "../../etc/passwd", "Europe/London\u0000"])(
    "'%s'",
    (zone) => {
      const err = compileError("0 0 * * *", zone);
      expect(err.reason).toBe("UnknownTimeZone");
      expect(err.message).toBe(
        `time zone '${zone}' is not a known IANA time zone name (for example UTC, Europe/London, America/New_York)`,
      );
    },
  );

  test("a zone error wins over a schedule error, so the condition names the zone first", () => {
    expect(compileError("not a schedule", "Mars/Olympus").reason).toBe("UnknownTimeZone");
  });

  test.each(["UTC", "Etc/UTC", "Etc/GMT+5", "America/Argentina/Buenos_Aires", "US/Eastern"])(
    "'%s' is accepted",
    (zone) => {
      expect(() =>
        compileSchedule({ expression: "0 0 * * *", timeZone: zone, hashKey: "k", createdAt: CREATED }),
      ).not.toThrow();
    },
  );
});

describe("inputs that are not strings are refused, not crashed on", () => {
  test("an expression that is not a string", () => {
    const err = compileError(42 as unknown as string);
    expect(err.message).toBe("schedule must be a string");
  });

  test("@every without a valid creation time", () => {
    expect(() =>
      compileSchedule({ expression: "@every 5m", hashKey: "k", createdAt: new Date(Number.NaN) }),
    ).toThrow(new ScheduleError("InvalidSchedule", "an @every schedule needs the object's creation time"));
  });
});
