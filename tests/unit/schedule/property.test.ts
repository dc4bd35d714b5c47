/**
 * Properties of the engine against an independent model: the generator below builds each
 * expression together with the value sets it means, and the checks read local time with luxon (not
 * with the engine's own calendar or zone code) and apply product.md §2's rules directly.
 */
import fc from "fast-check";
import { DateTime } from "luxon";
import { describe, expect, test } from "vitest";
import { ScheduleError, compileSchedule, type CompiledSchedule } from "../../../src/schedule/index.ts";

// ---------------------------------------------------------------------------------------------
// Expressions with their meaning

interface Model {
  readonly text: string;
  readonly second: ReadonlySet<number>;
  readonly minute: ReadonlySet<number>;
  readonly hour: ReadonlySet<number>;
  readonly month: ReadonlySet<number>;
  readonly days: ReadonlySet<number>;
  readonly lastDay: boolean;
  readonly weekdays: ReadonlySet<number>;
  readonly lastWeekdays: ReadonlySet<number>;
  /** "w#n" as `${w}#${n}` */
  readonly nthWeekdays: ReadonlySet<string>;
  readonly domStar: boolean;
  readonly dowStar: boolean;
  readonly fixedTime: boolean;
}

interface Field {
  readonly text: string;
  readonly values: readonly number[];
  readonly star: boolean;
}

const range = (a: number, b: number, step = 1): number[] => {
  const out: number[] = [];
  for (let v = a; v <= b; v += step) out.push(v);
  return out;
};

function numericField(lo: number, hi: number, names?: readonly string[]): fc.Arbitrary<Field> {
  const show = (v: number, useName: boolean): string =>
    useName && names?.[v - lo] !== undefined ? (names[v - lo] ?? "") : String(v);
  const value = fc.integer({ min: lo, max: hi });
  const item: fc.Arbitrary<{ text: string; values: number[] }> = fc.oneof(
    fc.tuple(value, fc.boolean()).map(([v, n]) => ({ text: show(v, n), values: [v] })),
    fc.tuple(value, value, fc.boolean()).map(([a, b, n]) => {
      const [x, y] = a <= b ? [a, b] : [b, a];
      return { text: `${show(x, n)}-${show(y, n)}`, values: range(x, y) };
    }),
    fc.tuple(value, value, fc.integer({ min: 1, max: hi - lo + 1 })).map(([a, b, step]) => {
      const [x, y] = a <= b ? [a, b] : [b, a];
      return { text: `${x}-${y}/${step}`, values: range(x, y, step) };
    }),
    fc
      .tuple(value, fc.integer({ min: 1, max: hi - lo + 1 }))
      .map(([a, step]) => ({ text: `${a}/${step}`, values: range(a, hi, step) })),
  );
  return fc.oneof(
    fc.constantFrom("*", "?").map((text) => ({ text, values: range(lo, hi), star: true })),
    fc
      .integer({ min: 1, max: hi - lo + 1 })
      .map((step) => ({ text: `*/${step}`, values: range(lo, hi, step), star: true })),
    fc.array(item, { minLength: 1, maxLength: 3 }).map((items) => ({
      text: items.map((i) => i.text).join(","),
      values: items.flatMap((i) => i.values),
      star: false,
    })),
  );
}

const MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
/** Names for 0-6 only: 7 is Sunday too, and "MON-SUN" would be the reversed range 1-0. */
const WEEKDAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

const dayOfMonthField: fc.Arbitrary<Field & { lastDay: boolean }> = fc.oneof(
  numericField(1, 31).map((f) => ({ ...f, lastDay: false })),
  fc.constant({ text: "L", values: [], star: false, lastDay: true }),
  fc.integer({ min: 1, max: 31 }).map((d) => ({ text: `L,${d}`, values: [d], star: false, lastDay: true })),
);

const dayOfWeekField: fc.Arbitrary<Field & { last: number[]; nth: string[] }> = fc.oneof(
  numericField(0, 7, WEEKDAYS).map((f) => ({ ...f, last: [], nth: [] })),
  fc
    .integer({ min: 0, max: 7 })
    .map((w) => ({ text: `${w}L`, values: [], star: false, last: [w % 7], nth: [] })),
  fc
    .array(fc.tuple(fc.integer({ min: 0, max: 7 }), fc.integer({ min: 1, max: 5 })), {
      minLength: 1,
      maxLength: 2,
    })
    .map((items) => ({
      text: items.map(([w, n]) => `${w}#${n}`).join(","),
      values: [],
      star: false,
      last: [],
      nth: items.map(([w, n]) => `${w % 7}#${n}`),
    })),
);

/** Hours near typical daylight-saving changes (0-3) come up often, so the rules get exercised. */
const hourField = fc.oneof(
  numericField(0, 23),
  fc.integer({ min: 0, max: 3 }).map((h) => ({ text: String(h), values: [h], star: false })),
);

const STAR = { text: "*", values: range(0, 59), star: true };

function cronModel(
  withSeconds: boolean,
  hour: fc.Arbitrary<Field> = hourField,
  dayWeight: { star: number; other: number } = { star: 0, other: 1 },
): fc.Arbitrary<Model> {
  const orStar = <T extends Field>(field: fc.Arbitrary<T>, star: T): fc.Arbitrary<T> =>
    dayWeight.star === 0
      ? field
      : fc.oneof(
          { weight: dayWeight.star, arbitrary: fc.constant(star) },
          { weight: dayWeight.other, arbitrary: field },
        );
  return fc
    .record({
      second: withSeconds ? numericField(0, 59) : fc.constant(null),
      minute: numericField(0, 59),
      hour,
      dom: orStar(dayOfMonthField, { ...STAR, values: range(1, 31), lastDay: false }),
      month: orStar(numericField(1, 12, MONTHS), { ...STAR, values: range(1, 12) }),
      dow: orStar(dayOfWeekField, { ...STAR, values: range(0, 6), last: [], nth: [] }),
    })
    .map(({ second, minute, hour: h, dom, month, dow }) => ({
      text: [second?.text, minute.text, h.text, dom.text, month.text, dow.text]
        .filter((t) => t !== undefined)
        .join(" "),
      second: new Set(second?.values ?? [0]),
      minute: new Set(minute.values),
      hour: new Set(h.values),
      month: new Set(month.values),
      days: new Set(dom.values),
      lastDay: dom.lastDay,
      weekdays: new Set(dow.values.map((w) => w % 7)),
      lastWeekdays: new Set(dow.last),
      nthWeekdays: new Set(dow.nth),
      domStar: dom.star,
      dowStar: dow.star,
      fixedTime: !minute.star && !h.star && !(second?.star ?? false),
    }));
}

/** Whether a local wall time (luxon fields) matches the model, with Vixie's day rule. */
function matches(m: Model, t: DateTime): boolean {
  if (!m.month.has(t.month) || !m.hour.has(t.hour) || !m.minute.has(t.minute) || !m.second.has(t.second))
    return false;
  return dayMatches(m, t.day, t.weekday % 7, t.daysInMonth ?? 31);
}

function dayMatches(m: Model, day: number, weekday: number, length: number): boolean {
  const byDate = m.days.has(day) || (m.lastDay && day === length);
  const byWeekday =
    m.weekdays.has(weekday) ||
    m.nthWeekdays.has(`${weekday}#${Math.ceil(day / 7)}`) ||
    (m.lastWeekdays.has(weekday) && day + 7 > length);
  return !m.domStar && !m.dowStar ? byDate || byWeekday : byDate && byWeekday;
}

/** Whether any day in 400 Gregorian years (a full cycle of dates and weekdays) matches. */
function everMatchesADay(m: Model): boolean {
  for (let year = 2000; year < 2400; year++) {
    for (const month of m.month) {
      const length = new Date(Date.UTC(year, month, 0)).getUTCDate();
      const firstWeekday = new Date(Date.UTC(year, month - 1, 1)).getUTCDay();
      for (let day = 1; day <= length; day++) {
        if (dayMatches(m, day, (firstWeekday + day - 1) % 7, length)) return true;
      }
    }
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Zones and instants

const ALL_ZONES = Intl.supportedValuesOf("timeZone");
const DST_ZONES = ALL_ZONES.filter((zone) => {
  const jan = DateTime.fromISO("2027-01-15T00:00:00Z", { zone }).offset;
  const jul = DateTime.fromISO("2027-07-15T00:00:00Z", { zone }).offset;
  return jan !== jul;
});

/** The first offset change at or after `from` within a year, to the minute (luxon). */
function transitionAfter(zone: string, from: number): number | null {
  let cursor = from;
  let offset = DateTime.fromMillis(cursor, { zone }).offset;
  for (let day = 0; day < 366; day++) {
    const next = cursor + 86_400_000;
    const nextOffset = DateTime.fromMillis(next, { zone }).offset;
    if (nextOffset !== offset) {
      let lo = cursor;
      let hi = next;
      while (hi - lo > 60_000) {
        const mid = lo + Math.floor((hi - lo) / 120_000) * 60_000;
        if (DateTime.fromMillis(mid, { zone }).offset === offset) lo = mid;
        else hi = mid;
      }
      return hi;
    }
    cursor = next;
    offset = nextOffset;
  }
  return null;
}

function compileOrNull(m: Model, zone: string): CompiledSchedule | null {
  try {
    return compileSchedule({ expression: m.text, timeZone: zone, hashKey: "k", createdAt: new Date(0) });
  } catch (err) {
    if (err instanceof ScheduleError && err.reason === "InvalidSchedule" && /never fires/.test(err.message)) {
      expect(everMatchesADay(m), `'${m.text}' was refused as never firing`).toBe(false);
      return null;
    }
    throw err;
  }
}

/** The fire times in [from, to] by brute force over every minute (schedules without seconds). */
function bruteForce(m: Model, zone: string, from: number, to: number): number[] {
  const fires: number[] = [];
  const seen = new Set<number>();
  let previousLocal: number | null = null;
  for (let t = from - 86_400_000; t <= to; t += 60_000) {
    const local = DateTime.fromMillis(t, { zone });
    const wall = t + local.offset * 60_000;
    let inGap = false;
    if (previousLocal !== null) {
      for (let w = previousLocal + 60_000; w < wall && !inGap; w += 60_000) {
        inGap = matches(m, DateTime.fromMillis(w, { zone: "UTC" }));
      }
    }
    const fire = m.fixedTime ? (matches(m, local) && !seen.has(wall)) || inGap : matches(m, local);
    seen.add(wall);
    previousLocal = wall;
    if (fire && t >= from) fires.push(t);
  }
  return fires;
}

function enumerate(s: CompiledSchedule, from: number, to: number): number[] {
  const out: number[] = [];
  let t = s.next(new Date(from - 1));
  while (t !== null && t.getTime() <= to) {
    out.push(t.getTime());
    t = s.next(t);
  }
  return out;
}

const RUNS = 150;

describe("properties", () => {
  /**
   * A zone, one of its changes (a year's first or second), and a schedule whose hours and days are
   * drawn near that change, so that gaps and repeats are actually hit.
   */
  const nearATransition = fc
    .tuple(fc.constantFrom(...DST_ZONES), fc.integer({ min: 1995, max: 2045 }), fc.boolean())
    .map(([zone, year, second]) => {
      const first = transitionAfter(zone, Date.UTC(year, 0, 1));
      return { zone, transition: second && first !== null ? transitionAfter(zone, first + 60_000) : first };
    })
    .filter((c): c is { zone: string; transition: number } => c.transition !== null)
    .chain((c) => {
      const before = DateTime.fromMillis(c.transition - 60_000, { zone: c.zone });
      const after = DateTime.fromMillis(c.transition, { zone: c.zone });
      // The hours on both sides of the change and those skipped or repeated by it.
      const near =
        before.hour <= after.hour
          ? range(Math.max(0, before.hour - 1), Math.min(23, after.hour + 1))
          : [...range(Math.max(0, before.hour - 1), 23), ...range(0, Math.min(23, after.hour + 1))];
      const hour = fc.oneof(
        hourField,
        fc
          .subarray(near, { minLength: 1 })
          .map((values) => ({ text: values.join(","), values, star: false })),
      );
      return cronModel(false, hour, { star: 2, other: 1 }).map((m) => ({ ...c, m }));
    });

  test("around a daylight-saving change, the fire times are exactly those a minute-by-minute reading of luxon local time gives", () => {
    fc.assert(
      fc.property(nearATransition, ({ m, zone, transition }) => {
        const s = compileOrNull(m, zone);
        fc.pre(s !== null);
        if (s === null) return;
        expect(s.isFixedTime).toBe(m.fixedTime);
        const from = transition - 26 * 3_600_000;
        const to = transition + 26 * 3_600_000;
        const expected = bruteForce(m, zone, from, to);
        expect(enumerate(s, from, to).map(iso)).toEqual(expected.map(iso));
        expect(s.countBetween(new Date(from - 1), new Date(to))).toBe(expected.length);
        const backwards: number[] = [];
        let t = s.prev(new Date(to));
        // Bounded, so that an engine whose prev() stops moving fails instead of hanging.
        while (t !== null && t.getTime() >= from && backwards.length <= expected.length) {
          backwards.unshift(t.getTime());
          t = s.prev(new Date(t.getTime() - 1000));
        }
        expect(backwards.map(iso)).toEqual(expected.map(iso));
      }),
      { numRuns: RUNS },
    );
  }, 120_000);

  test("in any zone, successive fire times strictly increase and each one matches the expression field by field in local time", () => {
    fc.assert(
      fc.property(
        fc.oneof(cronModel(false), cronModel(true)),
        fc.constantFrom(...ALL_ZONES),
        fc.date({
          min: new Date("1995-01-01T00:00:00Z"),
          max: new Date("2045-01-01T00:00:00Z"),
          noInvalidDate: true,
        }),
        (m, zone, start) => {
          const s = compileOrNull(m, zone);
          fc.pre(s !== null);
          if (s === null) return;
          let previous = start.getTime();
          let t = s.next(start);
          for (let i = 0; i < 6 && t !== null; i++) {
            const ms = t.getTime();
            expect(ms).toBeGreaterThan(previous);
            expect(ms % 1000).toBe(0);
            expectFireTime(m, zone, ms);
            expect(s.prev(t)?.getTime()).toBe(ms);
            expect(s.prev(new Date(ms - 1))?.getTime() ?? -Infinity).toBeLessThanOrEqual(
              previous === start.getTime() ? ms - 1 : previous,
            );
            previous = ms;
            t = s.next(t);
          }
        },
      ),
      { numRuns: RUNS * 2 },
    );
  }, 120_000);

  test("countBetween() agrees with counting next() one by one", () => {
    fc.assert(
      fc.property(
        cronModel(false),
        fc.constantFrom(...DST_ZONES, "UTC", "Asia/Shanghai"),
        fc.date({
          min: new Date("2000-01-01T00:00:00Z"),
          max: new Date("2040-01-01T00:00:00Z"),
          noInvalidDate: true,
        }),
        fc.integer({ min: 0, max: 36 * 3600 }),
        (m, zone, start, seconds) => {
          const s = compileOrNull(m, zone);
          fc.pre(s !== null);
          if (s === null) return;
          const end = start.getTime() + seconds * 1000;
          expect(s.countBetween(start, new Date(end))).toBe(enumerate(s, start.getTime() + 1, end).length);
        },
      ),
      { numRuns: RUNS },
    );
  }, 120_000);

  const TOKENS = [
    "*",
    "?",
    "H",
    "L",
    "#",
    "/",
    "-",
    ",",
    "(",
    ")",
    " ",
    "  ",
    "0",
    "1",
    "2",
    "5",
    "7",
    "12",
    "23",
    "29",
    "31",
    "59",
    "60",
    "99999999999999999999",
    "MON",
    "jan",
    "FRI",
    "@every",
    "@daily",
    "@",
    "1h",
    "30s",
    "0s",
    "W",
    "x",
    "\t",
    "\u00a0",
    "٣",
    "-1",
    "+1",
    "1e3",
  ];
  const soup = fc.array(fc.constantFrom(...TOKENS), { maxLength: 14 }).map((t) => t.join(""));

  test("no string makes the engine throw anything but ScheduleError, and a schedule that compiles can always be asked", () => {
    fc.assert(
      fc.property(
        fc.oneof(soup, fc.string({ maxLength: 40 }), fc.string({ unit: "binary", maxLength: 40 })),
        fc.oneof(
          fc.constant(undefined),
          fc.constantFrom("UTC", "Australia/Lord_Howe"),
          fc.string({ maxLength: 20 }),
        ),
        (expression, zone) => {
          let s: CompiledSchedule;
          try {
            s = compileSchedule({
              expression,
              timeZone: zone,
              hashKey: expression,
              createdAt: new Date("2027-01-01T00:00:00Z"),
            });
          } catch (err) {
            expect(err).toBeInstanceOf(ScheduleError);
            expect((err as ScheduleError).message.length).toBeGreaterThan(0);
            return;
          }
          const at = new Date("2027-06-01T00:00:00Z");
          const next = s.next(at);
          expect(next === null || next.getTime() > at.getTime()).toBe(true);
          const prev = s.prev(at);
          expect(prev === null || prev.getTime() <= at.getTime()).toBe(true);
          expect(s.countBetween(at, new Date("2027-06-01T00:10:00Z"))).toBeGreaterThanOrEqual(0);
        },
      ),
      { numRuns: 2000 },
    );
  }, 120_000);
});

/** Checks one fire time against the rules: it matches (and, fixed-time, is the first occurrence) or ends a gap. */
function expectFireTime(m: Model, zone: string, t: number): void {
  const local = DateTime.fromMillis(t, { zone });
  if (matches(m, local)) {
    if (!m.fixedTime) return;
    const earlierOffset = DateTime.fromMillis(t - 86_400_000, { zone }).offset;
    if (earlierOffset > local.offset) {
      const twin = DateTime.fromMillis(t - (earlierOffset - local.offset) * 60_000, { zone });
      expect(
        twin.toFormat("yyyy-MM-dd HH:mm:ss"),
        `${iso(t)} repeats a local time that already fired`,
      ).not.toBe(local.toFormat("yyyy-MM-dd HH:mm:ss"));
    }
    return;
  }
  expect(m.fixedTime, `${iso(t)} (${local.toISO()}) does not match '${m.text}'`).toBe(true);
  const before = DateTime.fromMillis(t - 1000, { zone });
  expect(before.offset, `${iso(t)} does not match '${m.text}' and is not the end of a gap`).toBeLessThan(
    local.offset,
  );
  const gapStart = t - 1000 + before.offset * 60_000 + 1000;
  const gapEnd = t + local.offset * 60_000;
  let found = false;
  for (let w = gapStart; w < gapEnd && !found; w += 1000)
    found = matches(m, DateTime.fromMillis(w, { zone: "UTC" }));
  expect(found, `${iso(t)} ends a gap in which nothing of '${m.text}' matches`).toBe(true);
}

function iso(t: number): string {
  return new Date(t).toISOString();
}
