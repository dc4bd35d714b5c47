/**
 * The ISO-8601 timestamps of Celery messages (`eta`, `expires`) and results (`date_done`).
 *
 * Celery writes Python's `datetime.isoformat()`: six fractional digits, or none when the microsecond
 * is 0, and `+00:00` for an aware UTC time (`2026-11-25T11:22:59.538461+00:00`). Results carry a naive
 * UTC time (`2026-11-25T11:23:28.896145`).
 *
 * The quirk that shapes this module: Celery 5.2's `parse_iso8601` reads the fraction digits as an
 * integer number of MICROseconds, so JavaScript's `toISOString()` form `…:59.771Z` means 771 µs to a
 * Celery 5.2 worker, which then runs the task up to a second early (vector h3x_eta_js_iso_plus5s).
 * cadent therefore writes six fraction digits, or none when the microsecond is 0, as Python does,
 * and never three. When it reads, it reads the fraction as the decimal fraction it is, like every
 * other ISO-8601 reader; `celery52Reading` shows what a Celery 5.2 worker makes of the same text.
 */

/** An instant to Python's resolution: a Date (milliseconds) plus the microsecond within its second. */
export interface PreciseTime {
  readonly date: Date;
  /** 0..999999; replaces the Date's milliseconds when the text is written. */
  readonly microsecond: number;
}

/** What encoders accept: a Date (millisecond resolution) or a time read from the wire. */
export type TimeInput = Date | PreciseTime;

export interface ParsedTimestamp extends PreciseTime {
  /** The text as it was on the wire. */
  readonly text: string;
  /** Minutes east of UTC as written, or null for a naive time (read as UTC, Celery's default timezone). */
  readonly utcOffsetMinutes: number | null;
  /** How many fraction digits were written: 6 (Python), 3 (JavaScript), 0 or anything else. */
  readonly fractionDigits: number;
}

export type TimestampParseResult = { ok: true; value: ParsedTimestamp } | { ok: false; reason: string };

// Hand-written rather than luxon's fromISO: that one also accepts week and ordinal dates and
// truncates to milliseconds, and we need to keep the microseconds and report the fraction's length.
const ISO_PATTERN = new RegExp(
  String.raw`^(?<year>\d{4})-(?<month>\d{2})-(?<day>\d{2})[Tt ](?<hour>\d{2}):(?<minute>\d{2})` +
    String.raw`(?::(?<second>\d{2})(?:[.,](?<fraction>\d+))?)?` +
    String.raw`(?:(?<zulu>[Zz])|(?<sign>[+-])(?<offsetHours>\d{2}):?(?<offsetMinutes>\d{2}))?$`,
);

/**
 * Reads an ISO-8601 / RFC 3339 date-time: `T` or a space between date and time, optional seconds and
 * fraction (any number of digits, read as a decimal fraction and kept to the microsecond), and `Z`,
 * `±HH:MM`, `±HHMM` or nothing (naive, read as UTC).
 */
export function parseTimestamp(text: string): TimestampParseResult {
  const g = ISO_PATTERN.exec(text)?.groups;
  if (g === undefined) {
    return {
      ok: false,
      reason: `${JSON.stringify(text)} is not an ISO-8601 date-time (YYYY-MM-DDTHH:MM:SS)`,
    };
  }
  const [year, month, day, hour, minute, second] = [g.year, g.month, g.day, g.hour, g.minute, g.second].map(
    (digits) => Number(digits ?? "0"),
  ) as [number, number, number, number, number, number];
  const fraction = g.fraction ?? "";
  const microsecond = Number(fraction.slice(0, 6).padEnd(6, "0"));
  let utcOffsetMinutes: number | null = null;
  if (g.zulu !== undefined) utcOffsetMinutes = 0;
  else if (g.sign !== undefined) {
    const offsetHours = Number(g.offsetHours);
    const offsetMinutes = Number(g.offsetMinutes);
    if (offsetHours > 23 || offsetMinutes > 59) {
      return { ok: false, reason: `${JSON.stringify(text)} has an invalid UTC offset` };
    }
    utcOffsetMinutes = (g.sign === "-" ? -1 : 1) * (offsetHours * 60 + offsetMinutes);
  }
  const wallMs = utcMs(year, month, day, hour, minute, second);
  if (wallMs === null) {
    return { ok: false, reason: `${JSON.stringify(text)} is not a valid calendar date and time` };
  }
  const date = new Date(wallMs - (utcOffsetMinutes ?? 0) * 60_000 + Math.floor(microsecond / 1000));
  return {
    ok: true,
    value: { text, date, microsecond, utcOffsetMinutes, fractionDigits: fraction.length },
  };
}

/** `datetime.isoformat()` of an aware UTC time, as Celery writes `eta` and `expires`. */
export function formatTimestamp(time: TimeInput): string {
  return `${formatNaiveTimestamp(time)}+00:00`;
}

/** `datetime.isoformat()` of a naive UTC time, as Celery writes a result's `date_done`. */
export function formatNaiveTimestamp(time: TimeInput): string {
  const { date, microsecond } = precise(time);
  if (Number.isNaN(date.getTime()))
    throw new RangeError("cannot format an invalid Date as a Celery timestamp");
  const year = date.getUTCFullYear();
  if (year < 1 || year > 9999) {
    throw new RangeError(`cannot format year ${year}: Python datetimes cover years 1 to 9999`);
  }
  if (!Number.isInteger(microsecond) || microsecond < 0 || microsecond > 999_999) {
    throw new RangeError(`microsecond must be an integer in 0..999999, got ${microsecond}`);
  }
  const pad = (n: number, width = 2) => String(n).padStart(width, "0");
  const base =
    `${pad(year, 4)}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())}` +
    `T${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())}`;
  // Python omits the fraction when it is zero, and writes six digits otherwise; never three.
  return microsecond === 0 ? base : `${base}.${pad(microsecond, 6)}`;
}

/** The time as a Date and the microsecond within its second. */
export function precise(time: TimeInput): PreciseTime {
  if (time instanceof Date) {
    const ms = time.getTime();
    return { date: time, microsecond: (((ms % 1000) + 1000) % 1000) * 1000 };
  }
  return time;
}

/**
 * What Celery 5.2's `parse_iso8601` makes of a timestamp, to explain (and test) its quirk: the
 * fraction's digits are an integer count of microseconds (`.771` → 771 µs), and more than six
 * significant digits make it fail. A naive time is taken as UTC (Celery's default timezone).
 * Returns null where Celery would raise.
 */
export function celery52Reading(text: string): PreciseTime | null {
  // The regex Celery 5.2 uses (celery/utils/iso8601.py), anchored only at the start as re.match is.
  const m =
    /^(\d{4})(-(\d{1,2})(-(\d{1,2})((.)(\d{2}):(\d{2})(:(\d{2})(\.(\d+))?)?(Z|(([-+])(\d{2}):(\d{2})))?)?)?)?/.exec(
      text,
    );
  if (m === null) return null;
  const micro = Number(m[13] ?? "0");
  if (micro > 999_999) return null;
  let offset = 0;
  if (m[15] !== undefined) offset = (m[16] === "-" ? -1 : 1) * (Number(m[17]) * 60 + Number(m[18]));
  const ms = utcMs(
    Number(m[1]),
    Number(m[3] ?? "1"),
    Number(m[5] ?? "1"),
    Number(m[8] ?? "0"),
    Number(m[9] ?? "0"),
    Number(m[11] ?? "0"),
  );
  if (ms === null) return null;
  return { date: new Date(ms - offset * 60_000 + Math.floor(micro / 1000)), microsecond: micro };
}

/**
 * Milliseconds since the epoch of a UTC wall-clock time, or null when a field is out of range (what
 * Python's datetime() refuses). Unlike Date.UTC, years 0..99 stay years 0..99.
 */
function utcMs(
  year: number,
  month: number,
  day: number,
  hour: number,
  minute: number,
  second: number,
): number | null {
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  d.setUTCHours(hour, minute, second, 0);
  const valid =
    year >= 1 &&
    d.getUTCFullYear() === year &&
    d.getUTCMonth() === month - 1 &&
    d.getUTCDate() === day &&
    d.getUTCHours() === hour &&
    d.getUTCMinutes() === minute &&
    d.getUTCSeconds() === second;
  return valid ? d.getTime() : null;
}
