import { CronExpressionParser } from "cron-parser";
import { ScheduleError, invalidSchedule } from "./errors.ts";

/** The six cron fields, in the order of a six-field expression. */
export type FieldName = "second" | "minute" | "hour" | "dayOfMonth" | "month" | "dayOfWeek";

export const FIELD_LABEL: Readonly<Record<FieldName, string>> = {
  second: "second",
  minute: "minute",
  hour: "hour",
  dayOfMonth: "day-of-month",
  month: "month",
  dayOfWeek: "day-of-week",
};

/** Where a field sits in a six-field cron-parser expression. */
const TEMPLATE_POSITION: Readonly<Record<FieldName, number>> = {
  second: 0,
  minute: 1,
  hour: 2,
  dayOfMonth: 3,
  month: 4,
  dayOfWeek: 5,
};

const FIELD_RANGE: Readonly<Record<FieldName, readonly [number, number]>> = {
  second: [0, 59],
  minute: [0, 59],
  hour: [0, 23],
  dayOfMonth: [1, 31],
  month: [1, 12],
  dayOfWeek: [0, 7],
};

/** Identifies a field in messages the way the user wrote it: "field 2 (hour)". */
export interface FieldRef {
  readonly name: FieldName;
  /** 1-based position in the expression as written (five or six fields). */
  readonly position: number;
  /** The field as written, before `H` was resolved. */
  readonly raw: string;
}

/**
 * A set of allowed values (0..63) as two 32-bit words, with "next allowed ≥ v", "previous allowed
 * ≤ v" and "how many allowed < v" in a few bit operations: what the search and counting loops need,
 * with nothing to allocate when a schedule is compiled.
 */
export interface ValueSet {
  /** Bits for values 0..31. */
  readonly lo: number;
  /** Bits for values 32..63. */
  readonly hi: number;
  readonly size: number;
  readonly first: number;
  readonly last: number;
}

export function valueSet(values: Iterable<number>): ValueSet {
  let lo = 0;
  let hi = 0;
  for (const v of values) {
    if (v < 32) lo |= 1 << v;
    else hi |= 1 << (v - 32);
  }
  const partial = { lo, hi, size: popcount(lo) + popcount(hi), first: -1, last: -1 };
  partial.first = nextValue(partial, 0);
  partial.last = prevValue(partial, 63);
  return partial;
}

export function popcount(x: number): number {
  let v = x >>> 0;
  v -= (v >>> 1) & 0x55555555;
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

export function hasValue(set: ValueSet, v: number): boolean {
  return v < 32 ? ((set.lo >>> v) & 1) === 1 : v < 64 && ((set.hi >>> (v - 32)) & 1) === 1;
}

/** Smallest allowed value ≥ v, or -1. */
export function nextValue(set: ValueSet, v: number): number {
  if (v < 32) {
    const m = (set.lo >>> v) << v;
    if (m !== 0) return 31 - Math.clz32(m & -m);
    v = 32;
  }
  if (v < 64) {
    const shift = v - 32;
    const m = (set.hi >>> shift) << shift;
    if (m !== 0) return 63 - Math.clz32(m & -m);
  }
  return -1;
}

/** Largest allowed value ≤ v, or -1. */
export function prevValue(set: ValueSet, v: number): number {
  if (v >= 32) {
    const top = Math.min(v - 32, 31);
    const m = top === 31 ? set.hi : set.hi & ((1 << (top + 1)) - 1);
    if (m !== 0) return 63 - Math.clz32(m);
    v = 31;
  }
  if (v >= 0) {
    const m = v === 31 ? set.lo : set.lo & ((1 << (v + 1)) - 1);
    if (m !== 0) return 31 - Math.clz32(m);
  }
  return -1;
}

/** How many allowed values are < v (v in 0..64). */
export function countBelow(set: ValueSet, v: number): number {
  if (v <= 0) return 0;
  if (v < 32) return popcount(set.lo & ((1 << v) - 1));
  if (v === 32) return popcount(set.lo);
  return popcount(set.lo) + (v >= 64 ? popcount(set.hi) : popcount(set.hi & ((1 << (v - 32)) - 1)));
}

/** Day-of-month: a set of days (bit d for day d) and `L`, the month's last day. */
export interface DayOfMonthField {
  readonly days: number;
  readonly lastDay: boolean;
}

/** Day-of-week: plain weekdays, `w#n` (n-th weekday of the month) and `wL` (last weekday). */
export interface DayOfWeekField {
  /** Bit w (0 = Sunday) for weekdays that match on any occurrence. */
  readonly weekdays: number;
  /** nth[n - 1]: bit w when `w#n` was given. */
  readonly nth: readonly number[];
  /** Bit w when `wL` was given. */
  readonly lastWeekdays: number;
  /** Day bits of a month, by (length - 28) * 7 + weekday of the 1st; filled lazily, -1 = unknown. */
  readonly monthMasks: Int32Array;
}

/** What one list item of a field means, as cron-parser parsed it. */
interface ElementMeaning {
  readonly values: readonly number[];
  readonly lastDay: boolean;
  readonly lastWeekdays: number;
  readonly nth: number;
}

const CACHE_LIMIT = 20_000;
const elementCache = new Map<string, ElementMeaning>();
const valueFieldCaches: Readonly<Record<"second" | "minute" | "hour" | "month", Map<string, ValueSet>>> = {
  second: new Map(),
  minute: new Map(),
  hour: new Map(),
  month: new Map(),
};
const domCache = new Map<string, DayOfMonthField>();
const dowCache = new Map<string, DayOfWeekField>();

/**
 * Forget every parsed field. Parsed fields are immutable and shared between schedules, so this is
 * only for benchmarks that want to measure a cold start.
 */
export function clearFieldCaches(): void {
  elementCache.clear();
  for (const cache of Object.values(valueFieldCaches)) cache.clear();
  domCache.clear();
  dowCache.clear();
}

function remember<V>(cache: Map<string, V>, key: string, value: V): V {
  // Distinct field strings are few in practice; the limit only stops a flood of unique junk from
  // growing memory without bound.
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(key, value);
  return value;
}

/** `*` or `?`, alone or with a step (`/n`): the spellings Vixie cron treats as "not restricted". */
export function isStarField(raw: string): boolean {
  return /^[*?](?:\/\d+)?$/.test(raw);
}

function splitList(field: FieldRef, resolved: string): string[] {
  const items = resolved.split(",");
  if (items.some((item) => item === "")) {
    throw invalidSchedule(`field ${describeField(field)} has an empty list item`);
  }
  return items;
}

export function describeField(field: FieldRef): string {
  return `${field.position} (${FIELD_LABEL[field.name]}) '${field.raw}'`;
}

/**
 * Parses one list item with cron-parser. cron-parser is right about the item syntax (ranges, steps,
 * names, `?`, `L`, `#`) but refuses lists that overlap (`1-5,3`, `SUN,7`), which Vixie cron
 * accepts, so lists are split here and their items' values united; and a whole-expression parse
 * costs 10-20 µs, so items are parsed once and cached.
 */
function parseElement(field: FieldRef, element: string): ElementMeaning {
  const key = `${field.name}\u0000${element}`;
  const cached = elementCache.get(key);
  if (cached !== undefined) return cached;
  const atoms = ["0", "0", "0", "*", "*", "*"];
  atoms[TEMPLATE_POSITION[field.name]] = element;
  let meaning: ElementMeaning;
  try {
    // A fixed tz and date keep cron-parser from asking luxon for the local zone and clock.
    const parsed = CronExpressionParser.parse(atoms.join(" "), { tz: "UTC", currentDate: 0 }).fields;
    meaning = elementMeaning(field, element, parsed);
  } catch (err) {
    if (err instanceof ScheduleError) throw err;
    throw invalidSchedule(elementErrorMessage(field, element, err));
  }
  return remember(elementCache, key, meaning);
}

type ParsedFields = ReturnType<typeof CronExpressionParser.parse>["fields"];

function elementMeaning(field: FieldRef, element: string, parsed: ParsedFields): ElementMeaning {
  const values: number[] = [];
  let lastDay = false;
  let lastWeekdays = 0;
  let nth = 0;
  const raw: readonly (number | string)[] =
    field.name === "second"
      ? parsed.second.values
      : field.name === "minute"
        ? parsed.minute.values
        : field.name === "hour"
          ? parsed.hour.values
          : field.name === "dayOfMonth"
            ? parsed.dayOfMonth.values
            : field.name === "month"
              ? parsed.month.values
              : parsed.dayOfWeek.values;
  const [min, max] = FIELD_RANGE[field.name];
  for (const value of raw) {
    if (typeof value === "number" && Number.isInteger(value) && value >= min && value <= max) {
      values.push(field.name === "dayOfWeek" ? value % 7 : value);
    } else if (field.name === "dayOfMonth" && value === "L") {
      lastDay = true;
    } else if (field.name === "dayOfWeek" && typeof value === "string" && /^[0-7]L$/.test(value)) {
      lastWeekdays |= 1 << (Number(value[0]) % 7);
    } else {
      throw invalidSchedule(
        `field ${describeField(field)}: '${element}' is not a valid ${FIELD_LABEL[field.name]}`,
      );
    }
  }
  if (field.name === "dayOfWeek") nth = parsed.dayOfWeek.nthDay;
  return { values, lastDay, lastWeekdays, nth };
}

/** Turns cron-parser's messages into ones that name the field and say what is allowed. */
function elementErrorMessage(field: FieldRef, element: string, err: unknown): string {
  const detail = err instanceof Error ? err.message : String(err);
  const problem = describeProblem(field, element, detail);
  return element === field.raw
    ? `field ${describeField(field)} ${problem}`
    : `field ${describeField(field)}: '${element}' ${problem}`;
}

function describeProblem(field: FieldRef, element: string, detail: string): string {
  const [min, max] = FIELD_RANGE[field.name];
  const range = field.name === "dayOfWeek" ? "0-7 (0 and 7 are Sunday)" : `${min}-${max}`;
  if (field.name === "dayOfMonth" && element.includes("L") && element !== "L") {
    return "uses L with a number; in day-of-month L stands alone for the last day (nL is for day-of-week)";
  }
  if (/got value (\S+) expected range/.test(detail)) return `is out of range ${range}`;
  const badRange = /got range (\S+)-(\S+) expected range/.exec(detail);
  if (badRange !== null) {
    return badRange[1] === "NaN" || badRange[2] === "NaN"
      ? "is not a valid range"
      : `is out of range ${range}`;
  }
  if (/Invalid range: .*min\(/.test(detail)) return "is a reversed range (write the smaller value first)";
  if (/cannot repeat at every|Invalid repeat/.test(detail)) {
    return "has an invalid step (write one '/' followed by a positive whole number)";
  }
  const alias = /cannot resolve alias "(\w+)"/.exec(detail);
  if (alias !== null) {
    return field.name === "month"
      ? `uses '${alias[1] ?? ""}', which is not a month name (JAN-DEC)`
      : `uses '${alias[1] ?? ""}', which is not a weekday name (SUN-SAT)`;
  }
  if (/occurrence number/.test(detail)) {
    return "has an invalid '#' occurrence (use 1-5, e.g. 5#2 for the second Friday)";
  }
  if (/incompatible/.test(detail)) return "combines '#' with a range, step or L, which is not supported";
  if (/standalone L/.test(detail)) {
    return "uses a bare L; in day-of-week write the weekday before it, e.g. 5L for the last Friday";
  }
  if (/Invalid characters|Invalid wildcard/.test(detail)) {
    return `contains characters not allowed in the ${FIELD_LABEL[field.name]} field (allowed: ${allowedSyntax(field.name)})`;
  }
  return `is invalid (${detail})`;
}

function allowedSyntax(name: FieldName): string {
  const common = "numbers, ranges a-b, steps /n, lists a,b, * and ?";
  switch (name) {
    case "month":
      return `${common}, JAN-DEC`;
    case "dayOfMonth":
      return `${common}, L`;
    case "dayOfWeek":
      return `${common}, SUN-SAT, wL, w#n`;
    default:
      return common;
  }
}

/** Second, minute, hour or month. `resolved` is the field with `H` already replaced by numbers. */
export function compileValueField(
  field: FieldRef & { name: "second" | "minute" | "hour" | "month" },
  resolved: string,
): ValueSet {
  const cache = valueFieldCaches[field.name];
  const cached = cache.get(resolved);
  if (cached !== undefined) return cached;
  const values: number[] = [];
  for (const element of splitList(field, resolved)) values.push(...parseElement(field, element).values);
  return remember(cache, resolved, valueSet(values));
}

export function compileDayOfMonth(field: FieldRef, resolved: string): DayOfMonthField {
  const cached = domCache.get(resolved);
  if (cached !== undefined) return cached;
  let days = 0;
  let lastDay = false;
  for (const element of splitList(field, resolved)) {
    const meaning = parseElement(field, element);
    for (const d of meaning.values) days |= 1 << d;
    lastDay ||= meaning.lastDay;
  }
  return remember(domCache, resolved, { days, lastDay });
}

export function compileDayOfWeek(field: FieldRef, resolved: string): DayOfWeekField {
  const cached = dowCache.get(resolved);
  if (cached !== undefined) return cached;
  let weekdays = 0;
  let lastWeekdays = 0;
  const nth = [0, 0, 0, 0, 0];
  for (const element of splitList(field, resolved)) {
    const meaning = parseElement(field, element);
    let bits = 0;
    for (const w of meaning.values) bits |= 1 << w;
    if (meaning.nth > 0) nth[meaning.nth - 1] = (nth[meaning.nth - 1] ?? 0) | bits;
    else weekdays |= bits;
    lastWeekdays |= meaning.lastWeekdays;
  }
  return remember(dowCache, resolved, {
    weekdays,
    nth,
    lastWeekdays,
    monthMasks: new Int32Array(28).fill(-1),
  });
}

/** Bits of the days (1..length) of a month starting on `firstWeekday` that day-of-week matches. */
export function weekdayDays(dow: DayOfWeekField, length: number, firstWeekday: number): number {
  const slot = (length - 28) * 7 + firstWeekday;
  const known = dow.monthMasks[slot];
  if (known !== undefined && known !== -1) return known;
  let mask = 0;
  for (let d = 1; d <= length; d++) {
    const bit = 1 << ((firstWeekday + d - 1) % 7);
    const occurrence = Math.ceil(d / 7);
    if (
      (dow.weekdays & bit) !== 0 ||
      ((dow.nth[occurrence - 1] ?? 0) & bit) !== 0 ||
      ((dow.lastWeekdays & bit) !== 0 && d + 7 > length)
    ) {
      mask |= 1 << d;
    }
  }
  dow.monthMasks[slot] = mask;
  return mask;
}

/** Bits of the days (1..length) of a month that day-of-month matches. */
export function monthDays(dom: DayOfMonthField, length: number): number {
  const inMonth = length >= 31 ? dom.days : dom.days & ((1 << (length + 1)) - 1);
  return dom.lastDay ? inMonth | (1 << length) : inMonth;
}
