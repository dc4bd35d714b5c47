import { countFires, LATEST_INSTANT_MS, nextFire, prevFire } from "./dst.ts";
import { ScheduleError, invalidSchedule } from "./errors.ts";
import { parseSchedule, type CronSpec, type EverySpec } from "./parse.ts";
import { zoneRules, type ZoneRules } from "./zone.ts";

export interface ScheduleInput {
  /** `spec.schedule`: five or six cron fields, a macro, or `@every <duration>`. */
  readonly expression: string;
  /** `spec.timeZone`: an IANA name; UTC when absent. */
  readonly timeZone?: string | undefined;
  /**
   * What `H` is hashed from: a stable key of the object. namespace/name keeps the hashed times when
   * an object is deleted and re-applied (GitOps); the uid changes them.
   */
  readonly hashKey: string;
  /** The object's creation time; `@every` fire times are creation + k × interval, k ≥ 1. */
  readonly createdAt: Date;
}

/**
 * A validated schedule. Pure: every method is a function of its arguments (no clock, no I/O), so
 * the controller passes its own `now` and tests pass named instants. Fire times are whole seconds.
 */
export interface CompiledSchedule {
  readonly expression: string;
  /** The IANA zone local times are read in ("UTC" when none was given). */
  readonly timeZone: string;
  /** Macros expanded and `H` resolved, e.g. "7,22,37,52 * * * *"; or "@every 1h30m". */
  readonly resolved: string;
  /**
   * True when neither the minute nor the hour field (nor a seconds field) is `*` or a step over `*`: such a
   * schedule runs once per matching local time across daylight-saving changes (see docs/schedules.md).
   */
  readonly isFixedTime: boolean;
  /** The earliest fire time strictly after `after`; null when none before year 10000. */
  next(after: Date): Date | null;
  /** The latest fire time at or before `notAfter`; null when none in the previous 100 years. */
  prev(notAfter: Date): Date | null;
  /** How many fire times t satisfy after < t ≤ notAfter; computed, not enumerated. */
  countBetween(after: Date, notAfter: Date): number;
}

/**
 * Validates and compiles a schedule. Throws ScheduleError (reason InvalidSchedule or
 * UnknownTimeZone) and nothing else, whatever the strings contain.
 */
export function compileSchedule(input: ScheduleInput): CompiledSchedule {
  try {
    const zone = zoneRules(input.timeZone);
    const timeZone = input.timeZone ?? "UTC";
    const spec = parseSchedule(input.expression, String(input.hashKey));
    return spec.kind === "cron"
      ? new CronSchedule(input.expression, timeZone, zone, spec)
      : new EverySchedule(input.expression, timeZone, spec, anchorOf(input.createdAt));
  } catch (err) {
    if (err instanceof ScheduleError) throw err;
    // A defect, not a user error; still reported as the documented type so one bad object cannot
    // crash the controller, with the cause kept for the logs.
    const wrapped = invalidSchedule(
      `schedule '${String(input.expression)}' could not be compiled: ${err instanceof Error ? err.message : String(err)}`,
    );
    wrapped.cause = err;
    throw wrapped;
  }
}

function anchorOf(createdAt: Date): number {
  const t = createdAt instanceof Date ? createdAt.getTime() : Number.NaN;
  if (!Number.isFinite(t)) throw invalidSchedule("an @every schedule needs the object's creation time");
  return Math.floor(t / 1000) * 1000;
}

function instant(date: Date, what: string): number {
  const t = date instanceof Date ? date.getTime() : Number.NaN;
  if (!Number.isFinite(t)) throw new TypeError(`${what} must be a valid Date`);
  return t;
}

class CronSchedule implements CompiledSchedule {
  readonly expression: string;
  readonly timeZone: string;
  readonly resolved: string;
  readonly isFixedTime: boolean;
  readonly #zone: ZoneRules;
  readonly #spec: CronSpec;

  constructor(expression: string, timeZone: string, zone: ZoneRules, spec: CronSpec) {
    this.expression = expression;
    this.timeZone = timeZone;
    this.resolved = spec.resolved;
    this.isFixedTime = spec.fixedTime;
    this.#zone = zone;
    this.#spec = spec;
  }

  next(after: Date): Date | null {
    const t = nextFire(this.#spec, this.#zone, instant(after, "after"));
    return t === null || t > LATEST_INSTANT_MS ? null : new Date(t);
  }

  prev(notAfter: Date): Date | null {
    const t = prevFire(this.#spec, this.#zone, instant(notAfter, "notAfter"));
    return t === null ? null : new Date(t);
  }

  countBetween(after: Date, notAfter: Date): number {
    return countFires(this.#spec, this.#zone, instant(after, "after"), instant(notAfter, "notAfter"));
  }
}

/** `@every`: elapsed time from the anchor, so time zones and daylight saving do not apply. */
class EverySchedule implements CompiledSchedule {
  readonly expression: string;
  readonly timeZone: string;
  readonly resolved: string;
  readonly isFixedTime = false;
  readonly #interval: number;
  readonly #anchor: number;

  constructor(expression: string, timeZone: string, spec: EverySpec, anchor: number) {
    this.expression = expression;
    this.timeZone = timeZone;
    this.resolved = spec.resolved;
    this.#interval = spec.intervalMs;
    this.#anchor = anchor;
  }

  /** The index k of the last fire time anchor + k × interval at or before t (may be ≤ 0). */
  #index(t: number): number {
    return Math.floor((t - this.#anchor) / this.#interval);
  }

  next(after: Date): Date | null {
    const k = Math.max(1, this.#index(instant(after, "after")) + 1);
    const t = this.#anchor + k * this.#interval;
    return t > LATEST_INSTANT_MS ? null : new Date(t);
  }

  prev(notAfter: Date): Date | null {
    const k = this.#index(Math.min(instant(notAfter, "notAfter"), LATEST_INSTANT_MS));
    return k < 1 ? null : new Date(this.#anchor + k * this.#interval);
  }

  countBetween(after: Date, notAfter: Date): number {
    const last = this.#index(Math.min(instant(notAfter, "notAfter"), LATEST_INSTANT_MS));
    const first = Math.max(1, this.#index(instant(after, "after")) + 1);
    return Math.max(0, last - first + 1);
  }
}
