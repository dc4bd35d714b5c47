import { MONTH_NAMES, maxDaysInMonth, ordinal } from "./calendar.ts";
import { invalidSchedule } from "./errors.ts";
import {
  compileDayOfMonth,
  compileDayOfWeek,
  compileValueField,
  isStarField,
  monthDays,
  nextValue,
  weekdayDays,
  type DayOfMonthField,
  type DayOfWeekField,
  type ValueSet,
} from "./fields.ts";
import { resolveHashes } from "./hashed.ts";

/** A cron expression compiled to value sets. Pure data; the search lives in local-time.ts and dst.ts. */
export interface CronSpec {
  readonly kind: "cron";
  readonly second: ValueSet;
  readonly minute: ValueSet;
  readonly hour: ValueSet;
  readonly month: ValueSet;
  readonly dayOfMonth: DayOfMonthField;
  readonly dayOfWeek: DayOfWeekField;
  /**
   * Vixie cron: when both day fields are restricted (not `*` or `?`, alone or with a `/n` step), a day matches if
   * either matches; otherwise both must match.
   */
  readonly eitherDay: boolean;
  readonly dayOfWeekRestricted: boolean;
  /** The day fields as written, for messages. */
  readonly dayOfMonthText: string;
  readonly dayOfWeekText: string;
  /** See product.md §2: decides what happens in daylight-saving gaps and repeats. */
  readonly fixedTime: boolean;
  /** Fire times on a matching day (hours × minutes × seconds). */
  readonly perDay: number;
  /** The expression with macros expanded and `H` resolved. */
  readonly resolved: string;
}

/** `@every <duration>`: every `intervalMs` after the anchor (the object's creation time). */
export interface EverySpec {
  readonly kind: "every";
  readonly intervalMs: number;
  readonly resolved: string;
}

export type ScheduleSpec = CronSpec | EverySpec;

export const MAX_EXPRESSION_LENGTH = 1024;

const MACROS: Readonly<Record<string, string>> = {
  "@yearly": "0 0 1 1 *",
  "@annually": "0 0 1 1 *",
  "@monthly": "0 0 1 * *",
  "@weekly": "0 0 * * 0",
  "@daily": "0 0 * * *",
  "@midnight": "0 0 * * *",
  "@hourly": "0 * * * *",
};

/** 876000h (100 years of 365 days), so that anchor + k × interval stays far inside the safe-integer range. */
const MAX_EVERY_MS = 876_000 * 3_600_000;

/**
 * Parses and validates a schedule. Throws only `ScheduleError`.
 * @param hashKey the stable per-object key `H` is hashed from (namespace/name or uid).
 */
export function parseSchedule(expression: string, hashKey: string): ScheduleSpec {
  if (typeof expression !== "string") throw invalidSchedule("schedule must be a string");
  const text = expression.trim();
  if (text === "") throw invalidSchedule("schedule is empty");
  if (text.length > MAX_EXPRESSION_LENGTH) {
    throw invalidSchedule(
      `schedule is ${text.length} characters long; at most ${MAX_EXPRESSION_LENGTH} are allowed`,
    );
  }
  if (text.startsWith("@")) {
    const [macro = "", ...rest] = text.split(/\s+/);
    const name = macro.toLowerCase();
    if (name === "@every") return parseEvery(text, rest.join(" "));
    const expansion = MACROS[name];
    if (expansion === undefined || rest.length > 0) {
      throw invalidSchedule(
        `schedule '${text}' is not a supported macro (use @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or @every <duration>)`,
      );
    }
    return parseCron(text, expansion, hashKey);
  }
  return parseCron(text, text, hashKey);
}

function parseEvery(text: string, duration: string): EverySpec {
  const m = /^(?:(\d{1,7})h)?(?:(\d{1,9})m)?(?:(\d{1,11})s)?$/.exec(duration);
  if (duration === "" || m === null) {
    throw invalidSchedule(`schedule '${text}': @every needs a duration such as 30s, 5m or 1h30m`);
  }
  const seconds = Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
  if (seconds < 1) throw invalidSchedule(`schedule '${text}': the @every duration must be at least 1s`);
  if (seconds * 1000 > MAX_EVERY_MS) {
    throw invalidSchedule(`schedule '${text}': the @every duration must be at most 876000h (100 years)`);
  }
  return { kind: "every", intervalMs: seconds * 1000, resolved: `@every ${duration}` };
}

function parseCron(text: string, cron: string, hashKey: string): CronSpec {
  const atoms = cron.split(/\s+/);
  if (atoms.length !== 5 && atoms.length !== 6) {
    throw invalidSchedule(
      `schedule '${text}' has ${atoms.length} field${atoms.length === 1 ? "" : "s"}; expected 5 (minute hour day-of-month month day-of-week) or 6 (a leading seconds field, then those 5)`,
    );
  }
  const six = atoms.length === 6;
  const at = (i: number): string => atoms[six ? i : i - 1] ?? "";
  const secondRef = { name: "second", position: 1, raw: six ? at(0) : "0" } as const;
  const minuteRef = { name: "minute", position: six ? 2 : 1, raw: at(1) } as const;
  const hourRef = { name: "hour", position: six ? 3 : 2, raw: at(2) } as const;
  const domRef = { name: "dayOfMonth", position: six ? 4 : 3, raw: at(3) } as const;
  const monthRef = { name: "month", position: six ? 5 : 4, raw: at(4) } as const;
  const dowRef = { name: "dayOfWeek", position: six ? 6 : 5, raw: at(5) } as const;
  const second = resolveHashes(secondRef, hashKey);
  const minute = resolveHashes(minuteRef, hashKey);
  const hour = resolveHashes(hourRef, hashKey);
  const dom = resolveHashes(domRef, hashKey);
  const month = resolveHashes(monthRef, hashKey);
  const dow = resolveHashes(dowRef, hashKey);
  const secondSet = compileValueField(secondRef, second);
  const minuteSet = compileValueField(minuteRef, minute);
  const hourSet = compileValueField(hourRef, hour);
  const spec: CronSpec = {
    kind: "cron",
    second: secondSet,
    minute: minuteSet,
    hour: hourSet,
    month: compileValueField(monthRef, month),
    dayOfMonth: compileDayOfMonth(domRef, dom),
    dayOfWeek: compileDayOfWeek(dowRef, dow),
    dayOfMonthText: domRef.raw,
    dayOfWeekText: dowRef.raw,
    dayOfWeekRestricted: !isStarField(dowRef.raw),
    eitherDay: !isStarField(domRef.raw) && !isStarField(dowRef.raw),
    fixedTime:
      !isStarField(minuteRef.raw) && !isStarField(hourRef.raw) && !(six && isStarField(secondRef.raw)),
    perDay: secondSet.size * minuteSet.size * hourSet.size,
    resolved: `${six ? `${second} ` : ""}${minute} ${hour} ${dom} ${month} ${dow}`,
  };
  assertCanFire(text, spec);
  return spec;
}

/** The days of a month of `length` days starting on `firstWeekday` that the schedule matches. */
export function matchingDays(spec: CronSpec, length: number, firstWeekday: number): number {
  const byDate = monthDays(spec.dayOfMonth, length);
  const byWeekday = weekdayDays(spec.dayOfWeek, length, firstWeekday);
  return spec.eitherDay ? byDate | byWeekday : byDate & byWeekday;
}

/**
 * Every (month, month length, weekday of the 1st) combination occurs within a few decades, so a
 * schedule that matches no day in any of them never fires; one that matches some day fires within
 * the search horizon. This runs on every compile, so it stops at the first matching day.
 */
function assertCanFire(text: string, spec: CronSpec): void {
  for (let m = spec.month.first; m !== -1; m = nextValue(spec.month, m + 1)) {
    const lengths = m === 2 ? [28, 29] : [maxDaysInMonth(m)];
    for (const length of lengths) {
      for (let w = 0; w < 7; w++) {
        if (matchingDays(spec, length, w) !== 0) return;
      }
    }
  }
  throw invalidSchedule(`schedule '${text}' never fires: ${whyNoDay(spec)}`);
}

function whyNoDay(spec: CronSpec): string {
  const months: string[] = [];
  for (let m = spec.month.first; m !== -1; m = nextValue(spec.month, m + 1))
    months.push(MONTH_NAMES[m - 1] ?? "");
  const dowIsEveryDay = !spec.dayOfWeekRestricted && spec.dayOfWeek.weekdays === 0x7f;
  const days: number[] = [];
  for (let d = 1; d <= 31; d++) if ((spec.dayOfMonth.days & (1 << d)) !== 0) days.push(d);
  if (dowIsEveryDay && !spec.dayOfMonth.lastDay && days.length > 0 && days.length <= 4) {
    const who = months.length === 1 ? `${months[0]} has` : `${joinWords(months, "and")} have`;
    return `${who} no ${joinWords(days.map(ordinal), "or")}`;
  }
  const where = months.length === 12 ? "no day" : `no day in ${joinWords(months, "or")}`;
  return `${where} matches both day-of-month '${spec.dayOfMonthText}' and day-of-week '${spec.dayOfWeekText}'`;
}

function joinWords(words: readonly string[], conjunction: string): string {
  if (words.length <= 1) return words.join("");
  return `${words.slice(0, -1).join(", ")} ${conjunction} ${words[words.length - 1] ?? ""}`;
}
