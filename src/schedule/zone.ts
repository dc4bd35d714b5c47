import { ScheduleError } from "./errors.ts";

/**
 * A time zone's UTC offset as a function of the instant, with its transitions (the instants at
 * which the offset changes). Offsets and instants are in milliseconds.
 */
export interface ZoneRules {
  readonly name: string;
  /** UTC offset in effect at instant `t` (local wall time = t + offset). */
  offsetAt(t: number): number;
  /** The first transition T with after < T ≤ until, or null. */
  nextTransition(after: number, until: number): number | null;
  /** The last transition T with notAfter ≥ T > floor, or null. */
  prevTransition(notAfter: number, floor: number): number | null;
}

const UTC_RULES: ZoneRules = {
  name: "UTC",
  offsetAt: () => 0,
  nextTransition: () => null,
  prevTransition: () => null,
};

/** Transitions are discovered per chunk of 366 days and kept for the life of the process. */
const CHUNK_MS = 366 * 86_400_000;
const DAY_MS = 86_400_000;

interface Chunk {
  readonly startOffset: number;
  /** Transition instants in [chunk start, chunk end), ascending. */
  readonly at: readonly number[];
  /** offsets[i]: the offset from at[i] on. */
  readonly offsets: readonly number[];
}

/**
 * An IANA zone backed by the platform's Intl (ICU's copy of the tz database). Offsets are probed
 * with a `longOffset` formatter (about 1 µs, a quarter of luxon's `IANAZone.offset`, which formats
 * every date part) once per day of a chunk, and each change is pinned to the second by bisection;
 * after that every lookup is arithmetic. A day's sampling misses only a pair of transitions less
 * than a day apart that cancel out, which the tz database has not had in the last century.
 */
class IanaZoneRules implements ZoneRules {
  readonly name: string;
  readonly #format: Intl.DateTimeFormat;
  readonly #chunks = new Map<number, Chunk>();

  constructor(name: string, format: Intl.DateTimeFormat) {
    this.name = name;
    this.#format = format;
  }

  offsetAt(t: number): number {
    const chunk = this.#chunk(Math.floor(t / CHUNK_MS));
    let offset = chunk.startOffset;
    for (let i = 0; i < chunk.at.length; i++) {
      if ((chunk.at[i] ?? Infinity) > t) break;
      offset = chunk.offsets[i] ?? offset;
    }
    return offset;
  }

  nextTransition(after: number, until: number): number | null {
    const last = Math.floor(until / CHUNK_MS);
    for (let k = Math.floor(after / CHUNK_MS); k <= last; k++) {
      for (const t of this.#chunk(k).at) {
        if (t > until) return null;
        if (t > after) return t;
      }
    }
    return null;
  }

  prevTransition(notAfter: number, floor: number): number | null {
    const first = Math.floor(floor / CHUNK_MS);
    for (let k = Math.floor(notAfter / CHUNK_MS); k >= first; k--) {
      const at = this.#chunk(k).at;
      for (let i = at.length - 1; i >= 0; i--) {
        const t = at[i] ?? -Infinity;
        if (t <= floor) return null;
        if (t <= notAfter) return t;
      }
    }
    return null;
  }

  #probe(t: number): number {
    return parseLongOffset(this.#format.format(t));
  }

  #chunk(k: number): Chunk {
    const known = this.#chunks.get(k);
    if (known !== undefined) return known;
    const start = k * CHUNK_MS;
    const end = start + CHUNK_MS;
    const at: number[] = [];
    const offsets: number[] = [];
    let previous = start - 1000;
    let previousOffset = this.#probe(previous);
    const startOffset = this.#probe(start);
    for (let sample = start; sample <= end; sample += DAY_MS) {
      const offset = sample === start ? startOffset : this.#probe(sample);
      if (offset !== previousOffset) {
        // Bisect to the first whole second carrying the new offset.
        let lo = previous;
        let hi = sample;
        while (hi - lo > 1000) {
          const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
          if (this.#probe(mid) === previousOffset) lo = mid;
          else hi = mid;
        }
        if (hi < end) {
          at.push(hi);
          offsets.push(this.#probe(hi));
        }
      }
      previous = sample;
      previousOffset = offset;
    }
    const chunk: Chunk = { startOffset, at, offsets };
    this.#chunks.set(k, chunk);
    return chunk;
  }
}

/** "GMT", "GMT+05:30", "GMT-04:56:02" (local mean time) at the end of a formatted date. */
export function parseLongOffset(formatted: string): number {
  const at = formatted.lastIndexOf("GMT");
  const m = /^([+\u2212-])(\d{2}):(\d{2})(?::(\d{2}))?/.exec(formatted.slice(at + 3));
  if (at < 0 || m === null) return 0;
  const sign = m[1] === "+" ? 1 : -1;
  return sign * (Number(m[2]) * 3_600_000 + Number(m[3]) * 60_000 + Number(m[4] ?? 0) * 1000);
}

const zones = new Map<string, ZoneRules>();
const ZONE_CACHE_LIMIT = 2000;

/** IANA names: Area/Location, with letters, digits, '_', '-', '+' ("Etc/GMT+5"). Refuses "+05:00". */
const IANA_NAME = /^[A-Za-z][A-Za-z0-9_+-]*(?:\/[A-Za-z0-9_+-]+)*$/;

/**
 * The rules of an IANA time zone; undefined means UTC. Throws ScheduleError("UnknownTimeZone").
 * Zones are validated and their transition tables built once per process.
 */
export function zoneRules(name: string | undefined): ZoneRules {
  if (name === undefined || name === "UTC" || name === "Etc/UTC") return UTC_RULES;
  const known = zones.get(name);
  if (known !== undefined) return known;
  if (typeof name !== "string" || name.length > 64 || !IANA_NAME.test(name)) throw unknownZone(name);
  let format: Intl.DateTimeFormat;
  try {
    format = new Intl.DateTimeFormat("en-US", {
      timeZone: name,
      timeZoneName: "longOffset",
      hour: "numeric",
    });
  } catch {
    throw unknownZone(name);
  }
  if (zones.size >= ZONE_CACHE_LIMIT) zones.clear();
  const rules = new IanaZoneRules(name, format);
  zones.set(name, rules);
  return rules;
}

function unknownZone(name: unknown): ScheduleError {
  return new ScheduleError(
    "UnknownTimeZone",
    `time zone '${String(name)}' is not a known IANA time zone name (for example UTC, Europe/London, America/New_York)`,
  );
}

/** Forget the transition tables; only for benchmarks measuring a cold start. */
export function clearZoneCaches(): void {
  zones.clear();
}
