/**
 * Fire times on the real time line, from cron matching on local time (local-time.ts) and a zone's
 * offsets (zone.ts). This is where product.md §2's daylight-saving rules live.
 *
 * The time line is cut into segments of constant UTC offset. Inside a segment, local time is the
 * instant plus the offset, so matching is plain local-time search. At a transition:
 *  - Wildcard schedules follow real time: every instant whose local time matches fires. Local times
 *    in a spring-forward gap never occur, so they are skipped; local times repeated by a fall-back
 *    occur twice, so they fire twice.
 *  - Fixed-time schedules fire once per matching local time: a repeated local time only at its
 *    first occurrence (the later segment ignores local times before `T + previousOffset`), and
 *    local times that fall into a gap once, at the transition instant T itself (the first instant
 *    after the gap), however many of them match.
 *
 * cron-parser 5.10 gets several of these wrong (see tests/unit/schedule/cron-parser-divergence.test.ts):
 * it moves a fixed time in a gap by the gap's length instead of to the gap's end (02:30 → 03:30),
 * skips it entirely on Australia/Lord_Howe's 30-minute gap, and drops the repeated half hour of
 * Lord_Howe's fall-back for wildcard schedules. Hence this module.
 */
import { DAY_MS } from "./calendar.ts";
import { countLocalMatches, matchesLocal, nextLocalMatch, prevLocalMatch } from "./local-time.ts";
import type { CronSpec } from "./parse.ts";
import type { ZoneRules } from "./zone.ts";

/**
 * How far from the start of a segment a daylight-saving rule can reach: the largest offset change
 * in the tz database is a day (Samoa, 2011).
 */
const RULE_REACH_MS = 2 * DAY_MS;

/**
 * How far a search looks. assertCanFire guarantees a compiled schedule matches some day in every
 * few decades (the rarest, such as the 5th Monday of February, recur within 40 years).
 */
export const SEARCH_HORIZON_MS = 100 * 366 * DAY_MS;

/** The latest instant the engine returns: 9999-12-31T23:59:59Z, the last RFC 3339 second. */
export const LATEST_INSTANT_MS = 253_402_300_799_000;

/** The earliest: 0001-01-01T00:00:00Z. Intl cannot format all of JavaScript's Date range. */
export const EARLIEST_INSTANT_MS = -62_135_596_800_000;

function floorToSecond(t: number): number {
  return Math.floor(t / 1000) * 1000;
}

/** The segment containing t, as far as the fixed-time rules need it: its start and the offset before. */
function segmentStart(zone: ZoneRules, t: number, offset: number): { start: number; offsetBefore: number } {
  const start = zone.prevTransition(t, t - RULE_REACH_MS);
  return start === null
    ? { start: -Infinity, offsetBefore: offset }
    : { start, offsetBefore: zone.offsetAt(start - 1000) };
}

/** The earliest fire time strictly after `after`, or null within the search horizon. */
export function nextFire(spec: CronSpec, zone: ZoneRules, after: number): number | null {
  const t0 = Math.max(floorToSecond(after) + 1000, EARLIEST_INSTANT_MS);
  if (t0 > LATEST_INSTANT_MS) return null;
  const horizon = Math.min(t0 + SEARCH_HORIZON_MS, LATEST_INSTANT_MS + 1000);
  let offset = zone.offsetAt(t0);
  let { start, offsetBefore } = spec.fixedTime
    ? segmentStart(zone, t0, offset)
    : { start: -Infinity, offsetBefore: offset };
  while (start < horizon) {
    if (spec.fixedTime && start >= t0 && offsetBefore < offset) {
      if (nextLocalMatch(spec, start + offsetBefore, start + offset) !== null) return start;
    }
    let low = Math.max(t0, start) + offset;
    if (spec.fixedTime && offsetBefore > offset) low = Math.max(low, start + offsetBefore);
    const local = nextLocalMatch(spec, low, horizon + offset);
    const searchedTo = local === null ? horizon : local - offset;
    const transition = zone.nextTransition(Math.max(t0, start), searchedTo);
    if (transition === null) return local === null ? null : searchedTo;
    offsetBefore = offset;
    offset = zone.offsetAt(transition);
    start = transition;
  }
  return null;
}

/** The latest fire time at or before `notAfter`, or null within the search horizon. */
export function prevFire(spec: CronSpec, zone: ZoneRules, notAfter: number): number | null {
  const t1 = Math.min(floorToSecond(notAfter), LATEST_INSTANT_MS);
  if (t1 < EARLIEST_INSTANT_MS) return null;
  const floor = Math.max(t1 - SEARCH_HORIZON_MS, EARLIEST_INSTANT_MS);
  let offset = zone.offsetAt(t1);
  let upper = t1;
  while (upper >= floor) {
    const local = prevLocalMatch(spec, upper + offset, floor + offset);
    const candidate = local === null ? floor - 1000 : local - offset;
    const transition = zone.prevTransition(upper, candidate);
    if (transition !== null) {
      // The segment [transition, upper] has no match; its only possible fire time is a gap's end.
      const offsetBefore = zone.offsetAt(transition - 1000);
      if (spec.fixedTime && offsetBefore < offset) {
        if (nextLocalMatch(spec, transition + offsetBefore, transition + offset) !== null) return transition;
      }
      upper = transition - 1000;
      offset = offsetBefore;
      continue;
    }
    if (local === null) return null;
    if (!spec.fixedTime) return candidate;
    const { start, offsetBefore } = segmentStart(zone, candidate, offset);
    if (offsetBefore > offset && local < start + offsetBefore) {
      // A repeated local time; it fired at its first occurrence, in the previous segment.
      upper = start - 1000;
      offset = offsetBefore;
      continue;
    }
    return candidate;
  }
  return null;
}

/** How many fire times t satisfy after < t ≤ notAfter, without enumerating them. */
export function countFires(spec: CronSpec, zone: ZoneRules, after: number, notAfter: number): number {
  const lo = Math.max(floorToSecond(after) + 1000, EARLIEST_INSTANT_MS);
  const hi = Math.min(floorToSecond(notAfter), LATEST_INSTANT_MS);
  if (hi < lo) return 0;
  let offset = zone.offsetAt(lo);
  let { start, offsetBefore } = spec.fixedTime
    ? segmentStart(zone, lo, offset)
    : { start: -Infinity, offsetBefore: offset };
  let count = 0;
  for (;;) {
    const segmentFrom = Math.max(lo, start);
    const transition = zone.nextTransition(segmentFrom, hi);
    const segmentEnd = transition ?? hi + 1000;
    if (spec.fixedTime && start >= lo && offsetBefore < offset) {
      const gapMatches = nextLocalMatch(spec, start + offsetBefore, start + offset) !== null;
      // When the gap's end is itself a matching local time it is counted below, once.
      if (gapMatches && !matchesLocal(spec, start + offset)) count += 1;
    }
    let low = segmentFrom + offset;
    if (spec.fixedTime && offsetBefore > offset) low = Math.max(low, start + offsetBefore);
    count += countLocalMatches(spec, low, segmentEnd + offset);
    if (transition === null) return count;
    offsetBefore = offset;
    offset = zone.offsetAt(transition);
    start = transition;
  }
}
