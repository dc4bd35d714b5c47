/**
 * Cron matching on local wall-clock time, represented as milliseconds on a UTC-like time line
 * ("local milliseconds": the wall time read as if it were UTC). No time zone here: dst.ts maps real
 * instants to local milliseconds segment by segment and applies the daylight-saving rules.
 *
 * All values are whole seconds. Every loop advances by at least a day or a month per step and
 * stops at the caller's bound, so a search never runs away.
 */
import {
  DAY_MS,
  civilFromDays,
  daysFromCivil,
  daysInMonth,
  weekdayOfDay,
  type CivilDate,
} from "./calendar.ts";
import { countBelow, hasValue, nextValue, popcount, prevValue } from "./fields.ts";
import { matchingDays, type CronSpec } from "./parse.ts";

const scratch: CivilDate = { year: 0, month: 0, day: 0 };

function dayBits(spec: CronSpec, year: number, month: number): number {
  return matchingDays(spec, daysInMonth(year, month), weekdayOfDay(daysFromCivil(year, month, 1)));
}

/** Smallest matching second-of-day ≥ sod, or -1. */
function nextTimeOfDay(spec: CronSpec, sod: number): number {
  const { hour: H, minute: M, second: S } = spec;
  const h = Math.floor(sod / 3600);
  const mi = Math.floor((sod - h * 3600) / 60);
  const s = sod - h * 3600 - mi * 60;
  if (hasValue(H, h)) {
    const mi2 = nextValue(M, mi);
    if (mi2 === mi) {
      const s2 = nextValue(S, s);
      if (s2 >= 0) return h * 3600 + mi * 60 + s2;
      const mi3 = nextValue(M, mi + 1);
      if (mi3 >= 0) return h * 3600 + mi3 * 60 + S.first;
    } else if (mi2 >= 0) {
      return h * 3600 + mi2 * 60 + S.first;
    }
  }
  const h2 = nextValue(H, h + 1);
  return h2 < 0 ? -1 : h2 * 3600 + M.first * 60 + S.first;
}

/** Largest matching second-of-day ≤ sod, or -1. */
function prevTimeOfDay(spec: CronSpec, sod: number): number {
  const { hour: H, minute: M, second: S } = spec;
  const h = Math.floor(sod / 3600);
  const mi = Math.floor((sod - h * 3600) / 60);
  const s = sod - h * 3600 - mi * 60;
  if (hasValue(H, h)) {
    const mi2 = prevValue(M, mi);
    if (mi2 === mi) {
      const s2 = prevValue(S, s);
      if (s2 >= 0) return h * 3600 + mi * 60 + s2;
      const mi3 = prevValue(M, mi - 1);
      if (mi3 >= 0) return h * 3600 + mi3 * 60 + S.last;
    } else if (mi2 >= 0) {
      return h * 3600 + mi2 * 60 + S.last;
    }
  }
  const h2 = prevValue(H, h - 1);
  return h2 < 0 ? -1 : h2 * 3600 + M.last * 60 + S.last;
}

/** How many matching seconds-of-day are < sod (sod in 0..86400). */
function countTimeOfDayBelow(spec: CronSpec, sod: number): number {
  if (sod >= 86_400) return spec.perDay;
  const { hour: H, minute: M, second: S } = spec;
  const h = Math.floor(sod / 3600);
  const mi = Math.floor((sod - h * 3600) / 60);
  const s = sod - h * 3600 - mi * 60;
  let count = countBelow(H, h) * M.size * S.size;
  if (hasValue(H, h)) {
    count += countBelow(M, mi) * S.size;
    if (hasValue(M, mi)) count += countBelow(S, s);
  }
  return count;
}

/** Whether local millisecond `local` matches the expression. */
export function matchesLocal(spec: CronSpec, local: number): boolean {
  const day = Math.floor(local / DAY_MS);
  const sod = (local - day * DAY_MS) / 1000;
  const c = civilFromDays(day, scratch);
  if (!hasValue(spec.month, c.month) || (dayBits(spec, c.year, c.month) & (1 << c.day)) === 0) return false;
  return nextTimeOfDay(spec, sod) === sod;
}

/** Smallest matching local time W with from ≤ W < until, or null. */
export function nextLocalMatch(spec: CronSpec, from: number, until: number): number | null {
  if (from >= until) return null;
  let day = Math.floor(from / DAY_MS);
  let sod = Math.ceil((from - day * DAY_MS) / 1000);
  const c = civilFromDays(day, scratch);
  let { year, month, day: dom } = c;
  let bits = -1;
  for (;;) {
    if (bits === -1) {
      if (!hasValue(spec.month, month)) {
        const next = nextValue(spec.month, month + 1);
        if (next === -1) {
          year += 1;
          month = spec.month.first;
        } else {
          month = next;
        }
        dom = 1;
        sod = 0;
        day = daysFromCivil(year, month, 1);
        if (day * DAY_MS >= until) return null;
        continue;
      }
      bits = dayBits(spec, year, month);
    }
    const ahead = dom > 31 ? 0 : (bits >>> dom) << dom;
    if (ahead === 0) {
      const next = nextValue(spec.month, month + 1);
      if (next === -1) {
        year += 1;
        month = spec.month.first;
      } else {
        month = next;
      }
      dom = 1;
      sod = 0;
      day = daysFromCivil(year, month, 1);
      bits = -1;
      if (day * DAY_MS >= until) return null;
      continue;
    }
    const found = 31 - Math.clz32(ahead & -ahead);
    if (found !== dom) {
      day += found - dom;
      dom = found;
      sod = 0;
    }
    if (day * DAY_MS >= until) return null;
    const tod = nextTimeOfDay(spec, sod);
    if (tod >= 0) {
      const w = day * DAY_MS + tod * 1000;
      return w < until ? w : null;
    }
    dom += 1;
    day += 1;
    sod = 0;
  }
}

/** Largest matching local time W with floor ≤ W ≤ from, or null. */
export function prevLocalMatch(spec: CronSpec, from: number, floor: number): number | null {
  if (from < floor) return null;
  let day = Math.floor(from / DAY_MS);
  let sod = Math.floor((from - day * DAY_MS) / 1000);
  const c = civilFromDays(day, scratch);
  let { year, month, day: dom } = c;
  let bits = -1;
  for (;;) {
    if (bits === -1) {
      if (!hasValue(spec.month, month)) {
        const prev = prevValue(spec.month, month - 1);
        if (prev === -1) {
          year -= 1;
          month = spec.month.last;
        } else {
          month = prev;
        }
        dom = daysInMonth(year, month);
        sod = 86_399;
        day = daysFromCivil(year, month, dom);
        if ((day + 1) * DAY_MS <= floor) return null;
        continue;
      }
      bits = dayBits(spec, year, month);
    }
    const behind = dom >= 31 ? bits : bits & ((1 << (dom + 1)) - 1);
    if (behind === 0 || dom < 1) {
      const prev = prevValue(spec.month, month - 1);
      if (prev === -1) {
        year -= 1;
        month = spec.month.last;
      } else {
        month = prev;
      }
      dom = daysInMonth(year, month);
      sod = 86_399;
      day = daysFromCivil(year, month, dom);
      bits = -1;
      if ((day + 1) * DAY_MS <= floor) return null;
      continue;
    }
    const found = 31 - Math.clz32(behind);
    if (found !== dom) {
      day -= dom - found;
      dom = found;
      sod = 86_399;
    }
    if ((day + 1) * DAY_MS <= floor) return null;
    const tod = prevTimeOfDay(spec, sod);
    if (tod >= 0) {
      const w = day * DAY_MS + tod * 1000;
      return w >= floor ? w : null;
    }
    dom -= 1;
    day -= 1;
    sod = 86_399;
  }
}

/**
 * How many matching local times W satisfy from ≤ W < until, by arithmetic: whole days contribute
 * `perDay` each (counted a month at a time with a popcount), the two partial days by prefix counts.
 */
export function countLocalMatches(spec: CronSpec, from: number, until: number): number {
  if (until <= from) return 0;
  const firstDay = Math.floor(from / DAY_MS);
  const lastDay = Math.floor(until / DAY_MS);
  const firstSod = Math.ceil((from - firstDay * DAY_MS) / 1000);
  const lastSod = Math.ceil((until - lastDay * DAY_MS) / 1000);
  if (firstDay === lastDay) {
    return dayMatches(spec, firstDay)
      ? countTimeOfDayBelow(spec, lastSod) - countTimeOfDayBelow(spec, firstSod)
      : 0;
  }
  let count = dayMatches(spec, firstDay) ? spec.perDay - countTimeOfDayBelow(spec, firstSod) : 0;
  if (lastSod > 0 && dayMatches(spec, lastDay)) count += countTimeOfDayBelow(spec, lastSod);
  return count + spec.perDay * countMatchingDays(spec, firstDay + 1, lastDay);
}

function dayMatches(spec: CronSpec, day: number): boolean {
  const c = civilFromDays(day, scratch);
  return hasValue(spec.month, c.month) && (dayBits(spec, c.year, c.month) & (1 << c.day)) !== 0;
}

/** Matching days in [fromDay, untilDay). */
function countMatchingDays(spec: CronSpec, fromDay: number, untilDay: number): number {
  let count = 0;
  let day = fromDay;
  while (day < untilDay) {
    const c = civilFromDays(day, scratch);
    const { year, month } = c;
    const length = daysInMonth(year, month);
    const monthEnd = day - c.day + length + 1;
    if (hasValue(spec.month, month)) {
      const lastDom = Math.min(length, c.day + (untilDay - day) - 1);
      let bits = dayBits(spec, year, month);
      bits &= lastDom >= 31 ? -1 : (1 << (lastDom + 1)) - 1;
      bits &= ~((1 << c.day) - 1);
      count += popcount(bits);
    }
    day = monthEnd;
  }
  return count;
}
