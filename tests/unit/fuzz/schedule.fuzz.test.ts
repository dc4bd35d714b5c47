/**
 * Fuzzing the schedule engine (issue #8). tests/unit/schedule/property.test.ts already checks the
 * engine against an independent model for the plain cron grammar; this file adds what a model
 * cannot reach:
 *
 * - raw strings and mutations of valid expressions, at volume, with any zone and hash key: the only
 *   thing that may be thrown is a ScheduleError of the user kind (never the wrapper compile.ts puts
 *   around a defect of its own);
 * - the whole grammar (H forms, macros, @every, names in any case, odd whitespace) around real
 *   daylight-saving changes of every zone that has them, at any instant JavaScript can hold: next,
 *   prev and countBetween agree with each other, every fire time matches in local time (or ends a
 *   gap, for a fixed-time schedule), and a schedule behaves exactly like its resolved form;
 * - missedRuns and nextRun against a plain walk over next() on small windows.
 *
 * Every engine call returns (the engine bounds its searches); the loops here are bounded too, so a
 * defect shows up as a failure or the test's timeout, never as a hang of the run.
 */
import fc from "fast-check";
import { DateTime } from "luxon";
import { describe, expect, test } from "vitest";
import {
  DEFAULT_CATCH_UP_LIMIT,
  MISSED_SAMPLE,
  ScheduleError,
  compileSchedule,
  jitterOffsetMs,
  missedRuns,
  nextRun,
  type CatchUpPolicy,
  type CompiledSchedule,
} from "../../../src/schedule/index.ts";
import { EARLIEST_INSTANT_MS, LATEST_INSTANT_MS } from "../../../src/schedule/dst.ts";
import { matchesLocal } from "../../../src/schedule/local-time.ts";
import { parseSchedule, type CronSpec } from "../../../src/schedule/parse.ts";
import { zoneRules } from "../../../src/schedule/zone.ts";
import { fuzz } from "./support.ts";

const SECOND = 1000;
const DAY = 86_400_000;

// ---------------------------------------------------------------------------------------------
// Zones

const ALL_ZONES = Intl.supportedValuesOf("timeZone");
/** Zones with daylight saving in one of a few sample years (luxon reads the offsets, cheaply). */
const CHANGING_ZONES = ALL_ZONES.filter((zone) =>
  [1985, 2005, 2027].some(
    (year) =>
      DateTime.fromMillis(Date.UTC(year, 0, 15), { zone }).offset !==
      DateTime.fromMillis(Date.UTC(year, 6, 15), { zone }).offset,
  ),
);

const zoneName: fc.Arbitrary<string | undefined> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...CHANGING_ZONES) },
  { weight: 2, arbitrary: fc.constantFrom(...ALL_ZONES) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      undefined,
      "UTC",
      "Etc/UTC",
      "america/new_york",
      "US/Eastern",
      "EST5EDT",
      "Etc/GMT+14",
      "Etc/GMT-14",
      "+05:00",
      "GMT+5",
      "Mars/Olympus_Mons",
      "",
      " ",
      "Europe/London/",
      "Europe//London",
      "x".repeat(65),
    ),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 24 }) },
);

// ---------------------------------------------------------------------------------------------
// Expressions: a grammar that reaches every form, and raw strings and mutations that reach the rest

const number = (max: number): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 8, arbitrary: fc.integer({ min: 0, max }).map(String) },
    {
      weight: 1,
      arbitrary: fc.constantFrom("60", "24", "32", "13", "8", "00", "007", "-1", "1e1", "99999999999"),
    },
  );

const MONTH_NAMES = ["JAN", "feb", "Mar", "APR", "may", "JUN", "jul", "AUG", "sep", "OCT", "nov", "DEC"];
const DAY_NAMES = ["SUN", "mon", "Tue", "WED", "thu", "FRI", "sat"];

function item(max: number, names: readonly string[] = []): fc.Arbitrary<string> {
  const value = names.length === 0 ? number(max) : fc.oneof(number(max), fc.constantFrom(...names));
  const step = fc.integer({ min: 0, max: max + 2 }).map(String);
  const hashed = fc.oneof(
    fc.constant("H"),
    step.map((n) => `H/${n}`),
    fc.tuple(number(max), number(max)).map(([a, b]) => `H(${a}-${b})`),
    fc.tuple(number(max), number(max), step).map(([a, b, n]) => `H(${a}-${b})/${n}`),
  );
  return fc.oneof(
    { weight: 4, arbitrary: value },
    { weight: 2, arbitrary: fc.tuple(value, value).map(([a, b]) => `${a}-${b}`) },
    { weight: 2, arbitrary: fc.tuple(value, value, step).map(([a, b, n]) => `${a}-${b}/${n}`) },
    { weight: 1, arbitrary: fc.tuple(value, step).map(([a, n]) => `${a}/${n}`) },
    { weight: 2, arbitrary: hashed },
  );
}

function cronField(max: number, extras: fc.Arbitrary<string>[] = [], names: readonly string[] = []) {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom("*", "?") },
    { weight: 2, arbitrary: fc.integer({ min: 1, max: max + 1 }).map((n) => `*/${n}`) },
    {
      weight: 6,
      arbitrary: fc
        .array(fc.oneof(item(max, names), ...extras), { minLength: 1, maxLength: 3 })
        .map((items) => items.join(",")),
    },
  );
}

const dayOfMonthField = cronField(31, [fc.constantFrom("L", "L-1", "15W", "LW")]);
const dayOfWeekField = cronField(
  7,
  [
    fc.integer({ min: 0, max: 8 }).map((w) => `${w}L`),
    fc.tuple(fc.integer({ min: 0, max: 8 }), fc.integer({ min: 0, max: 6 })).map(([w, n]) => `${w}#${n}`),
    fc.constantFrom("MON-FRI", "fri#2", "SUNL", "THU", "H(1-5)"),
  ],
  DAY_NAMES,
);

const separator = fc.oneof(
  { weight: 12, arbitrary: fc.constant(" ") },
  { weight: 1, arbitrary: fc.constantFrom("  ", "\t", " \t ", "\n", "\u00a0", "\u3000") },
);

const cronExpression: fc.Arbitrary<string> = fc
  .tuple(
    fc.option(cronField(59), { freq: 4 }),
    cronField(59),
    cronField(23),
    dayOfMonthField,
    cronField(12, [], MONTH_NAMES),
    dayOfWeekField,
    fc.array(separator, { minLength: 5, maxLength: 5 }),
  )
  .map(([second, ...rest]) => {
    const fields = [...(second === null ? [] : [second]), ...rest.slice(0, 5)] as string[];
    const seps = rest[5] as string[];
    return fields.reduce((text, field, i) => (i === 0 ? field : `${text}${seps[i - 1] ?? " "}${field}`), "");
  });

const macro: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@midnight",
    "@hourly",
    "@HOURLY",
    "@Daily",
  ),
  fc.constantFrom("@reboot", "@every", "@ daily", "@hourly *", "@", "@@daily"),
  fc
    .tuple(
      fc.option(fc.integer({ min: 0, max: 900_000 }), { nil: undefined }),
      fc.option(fc.integer({ min: 0, max: 200 }), { nil: undefined }),
      fc.option(fc.integer({ min: 0, max: 100_000 }), { nil: undefined }),
      fc.constantFrom("@every ", "@EVERY ", "@every  ", "@every\t"),
    )
    .map(
      ([h, m, s, prefix]) =>
        `${prefix}${h === undefined ? "" : `${h}h`}${m === undefined ? "" : `${m}m`}${s === undefined ? "" : `${s}s`}`,
    ),
  fc.constantFrom(
    "@every 1h30m",
    "@every 30s",
    "@every 1s",
    "@every 876000h",
    "@every 876000h1s",
    "@every 1m 30s",
    "@every 1.5h",
    "@every -5m",
  ),
);

/** The grammar: every form the engine documents, and many near misses of them. */
const grammarExpression = fc.oneof({ weight: 5, arbitrary: cronExpression }, { weight: 1, arbitrary: macro });

const CHARACTERS = [..."0123456789*?/-,#LHW() \t@abcdefhmsxJANMONFRISUN\u0000\u00a0\u0663\ud83d\ude00\ud800"];

type Edit =
  | { op: "insert"; at: number; text: string }
  | { op: "delete"; at: number; length: number }
  | { op: "replace"; at: number; text: string }
  | { op: "repeat"; times: number }
  | { op: "swapFields"; a: number; b: number }
  | { op: "case"; upper: boolean };

const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({
    op: fc.constant("insert" as const),
    at: fc.nat(),
    text: fc.oneof(
      fc.constantFrom(...CHARACTERS),
      fc.string({ maxLength: 3 }),
      fc.constantFrom("99999999999999999999", " * ", "-", "/0", "#"),
    ),
  }),
  fc.record({ op: fc.constant("delete" as const), at: fc.nat(), length: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ op: fc.constant("replace" as const), at: fc.nat(), text: fc.constantFrom(...CHARACTERS) }),
  fc.record({ op: fc.constant("repeat" as const), times: fc.integer({ min: 2, max: 200 }) }),
  fc.record({ op: fc.constant("swapFields" as const), a: fc.nat(), b: fc.nat() }),
  fc.record({ op: fc.constant("case" as const), upper: fc.boolean() }),
);

function applyEdit(text: string, e: Edit): string {
  const at = "at" in e ? e.at % (text.length + 1) : 0;
  switch (e.op) {
    case "insert":
      return text.slice(0, at) + e.text + text.slice(at);
    case "delete":
      return text.slice(0, at) + text.slice(at + e.length);
    case "replace":
      return text.slice(0, at) + e.text + text.slice(at + 1);
    case "repeat":
      // Past the 1024-character limit, but not so far that edits applied in turn explode.
      return Array.from({ length: Math.min(e.times, Math.ceil(2_000 / (text.length + 1))) }, () => text).join(
        " ",
      );
    case "swapFields": {
      const fields = text.split(" ");
      const i = e.a % fields.length;
      const j = e.b % fields.length;
      [fields[i], fields[j]] = [fields[j] ?? "", fields[i] ?? ""];
      return fields.join(" ");
    }
    case "case":
      return e.upper ? text.toUpperCase() : text.toLowerCase();
  }
}

const mutatedExpression = fc
  .tuple(grammarExpression, fc.array(edit, { minLength: 1, maxLength: 4 }))
  .map(([text, edits]) => edits.reduce(applyEdit, text));

const rawExpression = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 30 }),
  fc.string({ unit: "binary", maxLength: 30 }),
  fc.array(fc.constantFrom(...CHARACTERS), { maxLength: 40 }).map((chars) => chars.join("")),
);

// ---------------------------------------------------------------------------------------------
// Instants: anywhere a Date can be, and often right at a zone's changes

/**
 * Mostly the years around now, sometimes anywhere a Date can be. A zone's offsets are probed once
 * per zone and year and then cached (src/schedule/zone.ts); probing is what costs time here, so
 * far years come up rarely.
 */
const anyInstant = fc.oneof(
  { weight: 18, arbitrary: fc.integer({ min: Date.UTC(2024, 0, 1), max: Date.UTC(2030, 0, 1) }) },
  { weight: 1, arbitrary: fc.integer({ min: -8.64e15, max: 8.64e15 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      EARLIEST_INSTANT_MS - 1,
      EARLIEST_INSTANT_MS,
      LATEST_INSTANT_MS - 1,
      LATEST_INSTANT_MS,
      LATEST_INSTANT_MS + 1,
      -8.64e15,
      8.64e15,
      0,
      -1,
    ),
  },
);

/**
 * An instant within two days of one of the zone's offset changes in one of a few years: old rules,
 * recent ones, Samoa's skipped day (2011), and future ones that ICU extrapolates.
 */
function nearAChange(zone: string): fc.Arbitrary<number> {
  return fc
    .tuple(
      fc.constantFrom(1975, 1996, 2011, 2027, 2038, 2055),
      fc.nat({ max: 3 }),
      fc.integer({ min: -2 * DAY, max: 2 * DAY }),
    )
    .map(([year, nth, delta]) => {
      const rules = zoneRules(zone);
      let t: number | null = Date.UTC(year, 0, 1);
      for (let i = 0; i <= nth && t !== null; i++) t = rules.nextTransition(t, Date.UTC(year + 1, 0, 1));
      const base = t ?? Date.UTC(year, 2 + nth * 3, 1);
      // Whole seconds, minutes and odd milliseconds all matter at a boundary.
      return base + (delta % 3 === 0 ? Math.round(delta / SECOND) * SECOND : delta);
    });
}

// ---------------------------------------------------------------------------------------------
// The checks

function compile(expression: string, timeZone: string | undefined, hashKey: string, createdAt: Date) {
  try {
    return compileSchedule({ expression, timeZone, hashKey, createdAt });
  } catch (err) {
    expect(err, `compile('${expression}', ${String(timeZone)}) threw a non-ScheduleError`).toBeInstanceOf(
      ScheduleError,
    );
    const e = err as ScheduleError;
    expect(["InvalidSchedule", "UnknownTimeZone"]).toContain(e.reason);
    expect(e.message.trim().length).toBeGreaterThan(0);
    // compile.ts wraps its own defects (with the cause) so the controller survives them; here
    // they are bugs to report.
    expect(e.cause, `a defect behind '${e.message}'`).toBeUndefined();
    return null;
  }
}

/** An instant for messages and comparisons; "none" for an absent fire time (null or undefined alike). */
const iso = (t: number | null | undefined): string =>
  t === null || t === undefined ? "none" : new Date(t).toISOString();

/**
 * The invariants every compiled schedule keeps at instant t. n = next(t), p = prev(t):
 * n > t and p ≤ t, both whole seconds inside the engine's range; n and p are fire times
 * (prev(n) = n, next(p - 1 ms) = p); nothing fires strictly between p and n (next(p) = n,
 * countBetween(p, n) = 1 and countBetween(t, n - 1 s) = 0).
 */
function expectConsistentAt(s: CompiledSchedule, t: number): { next: number | null; prev: number | null } {
  const what = `'${s.expression}' in ${s.timeZone} at ${iso(t)}`;
  const n = s.next(new Date(t))?.getTime() ?? null;
  const p = s.prev(new Date(t))?.getTime() ?? null;
  for (const fire of [n, p]) {
    if (fire === null) continue;
    expect(Math.abs(fire % SECOND), `${what}: ${iso(fire)} is not a whole second`).toBe(0);
    expect(fire).toBeGreaterThanOrEqual(EARLIEST_INSTANT_MS);
    expect(fire).toBeLessThanOrEqual(LATEST_INSTANT_MS);
  }
  if (n !== null) {
    expect(n, `${what}: next`).toBeGreaterThan(t);
    expect(iso(s.prev(new Date(n))?.getTime()), `${what}: prev(next = ${iso(n)})`).toBe(iso(n));
    expect(s.countBetween(new Date(t), new Date(n - SECOND)), `${what}: fires before next ${iso(n)}`).toBe(0);
  }
  if (p !== null) {
    expect(p, `${what}: prev`).toBeLessThanOrEqual(t);
    expect(iso(s.next(new Date(p - 1))?.getTime()), `${what}: next(prev = ${iso(p)} - 1 ms)`).toBe(iso(p));
    if (n !== null) {
      expect(iso(s.next(new Date(p))?.getTime()), `${what}: next(prev = ${iso(p)})`).toBe(iso(n));
      expect(s.countBetween(new Date(p), new Date(n)), `${what}: fires in (${iso(p)}, ${iso(n)}]`).toBe(1);
    }
  }
  return { next: n, prev: p };
}

const offsetAt = (zone: string, t: number): number => DateTime.fromMillis(t, { zone }).offset * 60_000;

/**
 * A fire time matches the expression in local time read by luxon (not by the engine's zone code),
 * or, for a fixed-time schedule, is the instant a gap ends and some skipped local time matched.
 * A fixed-time schedule fires a repeated local time only at its first occurrence.
 */
function expectMatchingFireTime(spec: CronSpec, zone: string, fire: number): void {
  const offset = offsetAt(zone, fire);
  const local = fire + offset;
  const shown = `${iso(fire)} (local ${iso(local).slice(0, 19)}, ${zone})`;
  if (matchesLocal(spec, local)) {
    if (!spec.fixedTime) return;
    const earlierOffset = offsetAt(zone, fire - DAY);
    const twin = fire - (earlierOffset - offset);
    if (earlierOffset > offset && twin < fire && offsetAt(zone, twin) === earlierOffset) {
      expect.fail(`${shown}: a fixed-time schedule fired a repeated local time the second time`);
    }
    return;
  }
  const before = offsetAt(zone, fire - SECOND);
  expect(spec.fixedTime && before < offset, `${shown} does not match '${spec.resolved}'`).toBe(true);
  let matched = false;
  for (let w = fire - SECOND + before + SECOND; w < local && !matched; w += SECOND)
    matched = matchesLocal(spec, w);
  expect(matched, `${shown} ends a gap in which nothing of '${spec.resolved}' matches`).toBe(true);
}

/** The fire times in (from, to], by next(), with a bound so that a stuck engine fails rather than hangs. */
function walk(s: CompiledSchedule, from: number, to: number, bound: number): number[] {
  const out: number[] = [];
  let t = s.next(new Date(from));
  while (t !== null && t.getTime() <= to) {
    out.push(t.getTime());
    if (out.length > bound)
      throw new Error(`'${s.expression}' has more than ${bound} fire times in (${iso(from)}, ${iso(to)}]`);
    const next = s.next(t);
    if (next !== null && next.getTime() <= t.getTime())
      throw new Error(`'${s.expression}': next(${iso(t.getTime())}) did not move forward`);
    t = next;
  }
  return out;
}

const hashKey = fc.oneof(
  fc.constantFrom("default/report", "", "ns/name", "6f1c2a9e-0000-4000-8000-000000000003"),
  fc.string({ maxLength: 20 }),
);
/** A creation time as the API server writes it (never before 1970), or an invalid Date. */
const createdAt = fc.oneof(
  { weight: 9, arbitrary: fc.integer({ min: 0, max: Date.UTC(2100, 0, 1) }).map((t) => new Date(t)) },
  { weight: 1, arbitrary: fc.constant(new Date(Number.NaN)) },
);

describe("fuzzing the schedule engine", () => {
  test("any string, mutation or zone: compiling throws nothing but a ScheduleError, and what compiles answers consistently", async () => {
    await fuzz(
      "schedule raw strings and mutations",
      fc.property(
        fc.oneof(
          { weight: 3, arbitrary: mutatedExpression },
          { weight: 2, arbitrary: rawExpression },
          { weight: 1, arbitrary: grammarExpression },
        ),
        zoneName,
        hashKey,
        createdAt,
        anyInstant,
        (expression, zone, key, created, t) => {
          const s = compile(expression, zone, key, created);
          if (s !== null) expectConsistentAt(s, t);
        },
      ),
      15_000,
    );
  }, 120_000);

  const grammarCase = fc
    .tuple(grammarExpression, fc.constantFrom(...CHANGING_ZONES), hashKey, createdAt)
    .chain(([expression, zone, key, created]) =>
      fc.record({
        expression: fc.constant(expression),
        zone: fc.constant(zone),
        key: fc.constant(key),
        created: fc.constant(created),
        t: fc.oneof({ weight: 3, arbitrary: nearAChange(zone) }, { weight: 1, arbitrary: anyInstant }),
      }),
    );

  test("the whole grammar around daylight-saving changes: next/prev/countBetween agree, fire times match in local time, and a schedule equals its resolved form", async () => {
    await fuzz(
      "schedule grammar in changing zones",
      fc.property(grammarCase, ({ expression, zone, key, created, t }) => {
        const s = compile(expression, zone, key, created);
        fc.pre(s !== null);
        if (s === null) return;
        const { next, prev } = expectConsistentAt(s, t);
        const resolved = compile(s.resolved, zone, "another key", created);
        expect(resolved, `the resolved form '${s.resolved}' of '${expression}' was refused`).not.toBeNull();
        if (resolved === null) return;
        expect(resolved.isFixedTime).toBe(s.isFixedTime);
        expect([
          iso(resolved.next(new Date(t))?.getTime()),
          iso(resolved.prev(new Date(t))?.getTime()),
        ]).toEqual([iso(next), iso(prev)]);
        const spec = parseSchedule(expression, key);
        if (spec.kind !== "cron") return;
        for (const fire of [next, prev]) if (fire !== null) expectMatchingFireTime(spec, zone, fire);
      }),
      800,
    );
  }, 120_000);

  test("missedRuns runs and counts exactly what walking next() over the window finds", async () => {
    await fuzz(
      "schedule missedRuns against next()",
      fc.property(
        grammarCase,
        fc.integer({ min: 0, max: 3 * DAY }),
        fc.record({
          catchUp: fc.constantFrom<CatchUpPolicy>("Latest", "All"),
          limit: fc.option(fc.integer({ min: 0, max: 150 }), { nil: undefined }),
          deadline: fc.option(fc.integer({ min: 0, max: 2 * 86_400 }), { nil: undefined }),
          start: fc.option(fc.integer({ min: -DAY, max: 3 * DAY }), { nil: undefined }),
          end: fc.option(fc.integer({ min: -DAY, max: 3 * DAY }), { nil: undefined }),
          jitter: fc.option(fc.integer({ min: 1, max: 3600 }), { nil: undefined }),
        }),
        ({ expression, zone, key, created, t: last }, window, o) => {
          const s = compile(expression, zone, key, created);
          fc.pre(s !== null && Math.abs(last) < 8e15);
          if (s === null) return;
          const now = last + window;
          const after = o.start === undefined ? last : Math.max(last, last + o.start - 1);
          const until = o.end === undefined ? now : Math.min(now, last + o.end);
          // Keep the walk small: a per-second schedule over three days is counted, not walked, by the engine.
          fc.pre(until < after || s.countBetween(new Date(after), new Date(until)) <= 2_000);
          const jitter = o.jitter === undefined ? undefined : { key, seconds: o.jitter };
          const result = missedRuns({
            schedule: s,
            lastScheduleTime: new Date(last),
            now: new Date(now),
            startingDeadlineSeconds: o.deadline,
            catchUp: o.catchUp,
            limit: o.limit,
            startTime: o.start === undefined ? undefined : new Date(last + o.start),
            endTime: o.end === undefined ? undefined : new Date(last + o.end),
            jitter,
          });

          // The model: every fire time in (after, until], the newest dropped while its jitter has not passed.
          const dueAt = (f: number): number =>
            jitter === undefined
              ? f
              : f + jitterOffsetMs(jitter.key, jitter.seconds, new Date(f), s.next(new Date(f)));
          const fires = until < after ? [] : walk(s, after, until, 2_000);
          const newest = fires[fires.length - 1];
          if (newest !== undefined && dueAt(newest) > now) fires.pop();
          const limit = Math.max(0, Math.floor(o.limit ?? DEFAULT_CATCH_UP_LIMIT));
          const wanted = o.catchUp === "Latest" ? Math.min(1, limit) : limit;
          const earliestDue = o.deadline === undefined ? -Infinity : now - o.deadline * SECOND;
          let cut = fires.length;
          while (cut > 0 && fires.length - cut < wanted && dueAt(fires[cut - 1] ?? 0) >= earliestDue) cut--;
          const toRun = fires.slice(cut);
          const older = fires.slice(0, cut);

          expect(result.toRun.map((d) => iso(d.getTime()))).toEqual(toRun.map(iso));
          expect(result.missed).toBe(older.length);
          expect(result.missedTimes.map((d) => iso(d.getTime()))).toEqual(
            older.slice(-MISSED_SAMPLE).map(iso),
          );
        },
      ),
      400,
    );
  }, 120_000);

  test("nextRun: the next fire time inside startTime/endTime and maxRuns, delayed by jitter but never to the fire time after it", async () => {
    await fuzz(
      "schedule nextRun",
      fc.property(
        grammarCase,
        fc.record({
          start: fc.option(fc.integer({ min: -10 * DAY, max: 10 * DAY }), { nil: undefined }),
          end: fc.option(fc.integer({ min: -10 * DAY, max: 400 * DAY }), { nil: undefined }),
          maxRuns: fc.option(fc.integer({ min: 1, max: 5 }), { nil: undefined }),
          runsSoFar: fc.option(fc.integer({ min: 0, max: 6 }), { nil: undefined }),
          jitterSeconds: fc.option(fc.integer({ min: 0, max: 3600 }), { nil: undefined }),
        }),
        ({ expression, zone, key, created, t }, o) => {
          const s = compile(expression, zone, key, created);
          fc.pre(s !== null && Math.abs(t) < 8e15);
          if (s === null) return;
          const startTime = o.start === undefined ? undefined : new Date(t + o.start);
          const endTime = o.end === undefined ? undefined : new Date(t + o.end);
          const run = nextRun({
            schedule: s,
            after: new Date(t),
            startTime,
            endTime,
            maxRuns: o.maxRuns,
            runsSoFar: o.runsSoFar,
            jitterSeconds: o.jitterSeconds,
            jitterKey: key,
          });
          const from = startTime === undefined ? t : Math.max(t, startTime.getTime() - 1);
          const expected = s.next(new Date(from))?.getTime() ?? null;
          if (o.maxRuns !== undefined && (o.runsSoFar ?? 0) >= o.maxRuns) {
            expect(run).toEqual({ kind: "finished", reason: "MaxRunsReached" });
          } else if (expected === null) {
            expect(run).toEqual({ kind: "finished", reason: "NoMoreFireTimes" });
          } else if (endTime !== undefined && expected > endTime.getTime()) {
            expect(run).toEqual({ kind: "finished", reason: "EndTimePassed" });
          } else {
            if (run.kind !== "scheduled")
              throw new Error(`expected a run at ${iso(expected)}, got ${JSON.stringify(run)}`);
            const scheduled = run.scheduledTime.getTime();
            const runAt = run.runAt.getTime();
            expect(iso(scheduled)).toBe(iso(expected));
            expect(scheduled).toBeGreaterThan(t);
            if (startTime !== undefined) expect(scheduled).toBeGreaterThanOrEqual(startTime.getTime());
            expect(runAt).toBeGreaterThanOrEqual(scheduled);
            expect(runAt - scheduled).toBeLessThan(Math.max(1, (o.jitterSeconds ?? 0) * SECOND));
            const following = s.next(run.scheduledTime);
            if (following !== null) expect(runAt).toBeLessThan(following.getTime());
          }
        },
      ),
      1_000,
    );
  }, 120_000);
});
