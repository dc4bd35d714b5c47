/**
 * django-celery-beat -> PeriodicTask: turns a `manage.py dumpdata django_celery_beat` JSON dump into
 * PeriodicTask manifests. Pure: the dump and `now` in, manifests and reasons out; no I/O. What maps
 * to what, and what cannot, is written down in docs/migration.md.
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import {
  API_VERSION,
  PERIODIC_TASK_KIND,
  PERIODIC_TASK_NAME_MAX_LENGTH,
  parseWith,
  periodicTaskSchema,
} from "../api/index.ts";
import { ScheduleError, compileSchedule } from "../schedule/index.ts";

/** On every imported PeriodicTask: the django-celery-beat entry's own name, which may not be a valid object name. */
export const SOURCE_NAME_ANNOTATION = "cadent.dev/django-celery-beat-name";
/** The well-known annotation for a human description; django-celery-beat's `description` goes here. */
export const DESCRIPTION_ANNOTATION = "kubernetes.io/description";

const MODEL = {
  periodicTask: "django_celery_beat.periodictask",
  crontab: "django_celery_beat.crontabschedule",
  interval: "django_celery_beat.intervalschedule",
  clocked: "django_celery_beat.clockedschedule",
  solar: "django_celery_beat.solarschedule",
} as const;

/** The dump could not be read as django-celery-beat data at all (the CLI's exit code 2). */
export class DumpError extends Error {
  override name = "DumpError";
}

/** One django-celery-beat PeriodicTask entry, for messages. */
export interface EntryRef {
  pk: string;
  name: string;
}

export interface Converted {
  source: EntryRef;
  /** A PeriodicTask as a user would write it (defaults left out); valid against periodicTaskSchema. */
  manifest: PeriodicTaskManifest;
  /** What changed meaning on the way, for the user to check. */
  notes: string[];
}

export interface Skipped {
  source: EntryRef;
  reason: string;
}

export interface ConversionResult {
  converted: Converted[];
  skipped: Skipped[];
}

export interface PeriodicTaskManifest {
  apiVersion: typeof API_VERSION;
  kind: typeof PERIODIC_TASK_KIND;
  metadata: { name: string; namespace?: string; annotations: Record<string, string> };
  spec: Record<string, unknown>;
}

export interface ConversionOptions {
  /** Set as metadata.namespace when given; otherwise `kubectl apply -n` decides. */
  namespace?: string | undefined;
  /** The time of the import: clocked times before it are reported, and @every needs an anchor to validate. */
  now: Date;
}

const pk = z.union([z.int(), z.string()]).transform(String);
const optionalText = z.string().nullish();

const recordSchema = z.looseObject({ model: z.string(), pk: pk.optional(), fields: z.looseObject({}) });

const periodicTaskFields = z.looseObject({
  name: z.string().min(1),
  task: z.string().min(1),
  args: optionalText,
  kwargs: optionalText,
  queue: optionalText,
  exchange: optionalText,
  routing_key: optionalText,
  headers: optionalText,
  priority: z.int().nullish(),
  expires: optionalText,
  expire_seconds: z.int().nullish(),
  one_off: z.boolean().nullish(),
  start_time: optionalText,
  enabled: z.boolean().nullish(),
  description: optionalText,
  crontab: pk.nullish(),
  interval: pk.nullish(),
  solar: pk.nullish(),
  clocked: pk.nullish(),
});
type PeriodicTaskFields = z.output<typeof periodicTaskFields>;

const cronField = z.union([z.string(), z.int()]).transform(String).default("*");
const crontabFields = z.looseObject({
  minute: cronField,
  hour: cronField,
  day_of_week: cronField,
  day_of_month: cronField,
  month_of_year: cronField,
  timezone: z.string().min(1).nullish(),
});
const intervalFields = z.looseObject({
  every: z.int().min(1),
  period: z.enum(["days", "hours", "minutes", "seconds", "microseconds"]),
});
const clockedFields = z.looseObject({ clocked_time: z.string() });
const solarFields = z.looseObject({
  event: z.string(),
  latitude: z.union([z.string(), z.number()]),
  longitude: z.union([z.string(), z.number()]),
});

type Schedules = Record<"crontab" | "interval" | "clocked" | "solar", Map<string, Record<string, unknown>>>;

/** Thrown inside the conversion of one entry; becomes a Skipped. */
class CannotConvert extends Error {}

/**
 * Converts every `django_celery_beat.periodictask` of a dump. Throws DumpError when the input is not
 * a dumpdata array; an entry that cannot be converted is returned in `skipped` with the reason.
 */
export function convertDump(dump: unknown, options: ConversionOptions): ConversionResult {
  const records = z.array(recordSchema).safeParse(dump);
  if (!records.success) {
    throw new DumpError(
      "expected the JSON array that `manage.py dumpdata django_celery_beat` writes ([{model, pk, fields}, ...])",
    );
  }
  const schedules: Schedules = {
    crontab: new Map(),
    interval: new Map(),
    clocked: new Map(),
    solar: new Map(),
  };
  const entries: { pk: string; fields: Record<string, unknown> }[] = [];
  for (const record of records.data) {
    const key = record.pk ?? "";
    const model = record.model.toLowerCase();
    if (model === MODEL.periodicTask) entries.push({ pk: key, fields: record.fields });
    else if (model === MODEL.crontab) schedules.crontab.set(key, record.fields);
    else if (model === MODEL.interval) schedules.interval.set(key, record.fields);
    else if (model === MODEL.clocked) schedules.clocked.set(key, record.fields);
    else if (model === MODEL.solar) schedules.solar.set(key, record.fields);
  }
  if (entries.length === 0) {
    throw new DumpError(
      `the dump holds no ${MODEL.periodicTask} entries: dump the whole app with \`manage.py dumpdata django_celery_beat\``,
    );
  }

  const result: ConversionResult = { converted: [], skipped: [] };
  const usedNames = new Set<string>();
  for (const entry of entries) {
    const name = typeof entry.fields.name === "string" ? entry.fields.name : `<pk ${entry.pk}>`;
    const source = { pk: entry.pk, name };
    try {
      const converted = convertEntry(entry.fields, schedules, options, usedNames, source);
      usedNames.add(converted.manifest.metadata.name);
      result.converted.push(converted);
    } catch (err) {
      if (!(err instanceof CannotConvert)) throw err;
      result.skipped.push({ source, reason: err.message });
    }
  }
  return result;
}

function convertEntry(
  raw: Record<string, unknown>,
  schedules: Schedules,
  options: ConversionOptions,
  usedNames: ReadonlySet<string>,
  source: EntryRef,
): Converted {
  const fields = parseFields(periodicTaskFields, raw, "the periodictask");
  const notes: string[] = [];
  const spec: Record<string, unknown> = { ...scheduleOf(fields, schedules, options, notes) };

  if (fields.start_time && spec.startTime === undefined) spec.startTime = rfc3339(fields.start_time, notes);
  if (fields.one_off) spec.maxRuns = 1;
  if (fields.enabled === false) spec.suspend = true;
  if (fields.expires) {
    // django-celery-beat disables an entry at `expires`, and its messages carry that absolute time.
    // A run template may only hold a relative expiry, so the cut-off becomes endTime.
    const expires = rfc3339(fields.expires, notes);
    const endTime = spec.endTime;
    if (typeof endTime !== "string" || Date.parse(expires) < Date.parse(endTime)) spec.endTime = expires;
    notes.push(
      `expires ${expires} became endTime (no runs after it); runs before it no longer expire at that absolute time` +
        (fields.expire_seconds ? `, they expire ${fields.expire_seconds}s after being made` : ""),
    );
  }
  spec.taskTemplate = { spec: taskSpecOf(fields, notes) };

  const name = objectName(fields.name, usedNames);
  if (name !== sanitizedName(fields.name)) {
    notes.push(`named ${name}: the name was too long for an object name (52 characters) or already taken`);
  }
  const annotations: Record<string, string> = { [SOURCE_NAME_ANNOTATION]: fields.name };
  if (fields.description) annotations[DESCRIPTION_ANNOTATION] = fields.description;
  const manifest: PeriodicTaskManifest = {
    apiVersion: API_VERSION,
    kind: PERIODIC_TASK_KIND,
    metadata: { name, ...(options.namespace ? { namespace: options.namespace } : {}), annotations },
    spec,
  };

  const parsed = parseWith(periodicTaskSchema, manifest, `PeriodicTask ${name}`);
  if (!parsed.ok) throw new CannotConvert(parsed.error);
  try {
    compileSchedule({
      expression: parsed.value.spec.schedule,
      timeZone: parsed.value.spec.timeZone,
      hashKey: `${options.namespace ?? "default"}/${name}`,
      createdAt: options.now,
    });
  } catch (err) {
    if (err instanceof ScheduleError) throw new CannotConvert(err.message);
    throw err;
  }
  return { source, manifest, notes };
}

function scheduleOf(
  fields: PeriodicTaskFields,
  schedules: Schedules,
  options: ConversionOptions,
  notes: string[],
): Record<string, unknown> {
  const refs = (["crontab", "interval", "clocked", "solar"] as const).filter(
    (kind) => fields[kind] !== null && fields[kind] !== undefined,
  );
  const [kind, ...more] = refs;
  if (kind === undefined) throw new CannotConvert("it has no schedule (crontab, interval, clocked or solar)");
  if (more.length > 0) throw new CannotConvert(`it has more than one schedule (${refs.join(", ")})`);
  const key = fields[kind] ?? "";
  const schedule = schedules[kind].get(key);
  if (schedule === undefined) {
    throw new CannotConvert(
      `its ${kind} schedule (pk ${key}) is not in the dump: dump the whole app with \`manage.py dumpdata django_celery_beat\``,
    );
  }
  switch (kind) {
    case "crontab":
      return fromCrontab(parseFields(crontabFields, schedule, `crontab schedule ${key}`));
    case "interval":
      return { schedule: fromInterval(parseFields(intervalFields, schedule, `interval schedule ${key}`)) };
    case "clocked":
      return fromClocked(parseFields(clockedFields, schedule, `clocked schedule ${key}`), options, notes);
    case "solar": {
      const solar = parseFields(solarFields, schedule, `solar schedule ${key}`);
      throw new CannotConvert(
        `solar schedule '${solar.event}' at ${solar.latitude}, ${solar.longitude}: sunrise and sunset move every day ` +
          "with the date and the place, and a cron schedule names fixed local times; pick a fixed time in the " +
          "place's time zone (for example schedule '0 6 * * *' with timeZone Europe/Paris) and write it by hand",
      );
    }
  }
}

/** The `ALL` of a crontab field as celery writes it. */
const isAll = (field: string) => field === "*";

/** A week of days of the month: `1-7` is the first of each weekday, so `MON` there is `MON#1`. */
const WEEK_OF_MONTH: Readonly<Record<string, number>> = { "1-7": 1, "8-14": 2, "15-21": 3, "22-28": 4 };

function fromCrontab(crontab: z.output<typeof crontabFields>): Record<string, unknown> {
  const clean = (field: string) => field.replace(/\s+/g, "");
  const minute = clean(crontab.minute);
  const hour = clean(crontab.hour);
  let dayOfMonth = clean(crontab.day_of_month);
  const month = clean(crontab.month_of_year);
  // celery reads weekday names by their first three letters ("monday" is "mon"); cron wants MON.
  let dayOfWeek = clean(crontab.day_of_week).replace(/[a-z]+/gi, (word) => word.slice(0, 3).toUpperCase());
  if (!isAll(dayOfMonth) && !isAll(dayOfWeek)) {
    // celery runs on days matching day_of_month AND day_of_week; cron (Vixie) runs on days matching
    // either. The one common AND that cron can say: a weekday in one week of the month.
    const week = WEEK_OF_MONTH[dayOfMonth];
    if (week === undefined || !/^(?:[0-6]|[A-Z]{3})$/.test(dayOfWeek)) {
      throw new CannotConvert(
        `crontab day_of_month '${dayOfMonth}' with day_of_week '${dayOfWeek}': celery runs on days that match both, ` +
          "cron on days that match either, so there is no cron equivalent (only a weekday in days 1-7, 8-14, 15-21 " +
          "or 22-28 converts, as DAY#n)",
      );
    }
    dayOfWeek = `${dayOfWeek}#${week}`;
    dayOfMonth = "*";
  }
  return {
    schedule: [minute, hour, dayOfMonth, month, dayOfWeek].join(" "),
    timeZone: crontab.timezone ?? "UTC",
  };
}

const PERIOD_SECONDS = { days: 86_400, hours: 3_600, minutes: 60, seconds: 1 } as const;

function fromInterval(interval: z.output<typeof intervalFields>): string {
  let seconds: number;
  if (interval.period === "microseconds") {
    if (interval.every % 1_000_000 !== 0) {
      throw new CannotConvert(
        `interval of ${interval.every} microseconds: cadent's smallest interval unit is a second (@every 1s)`,
      );
    }
    seconds = interval.every / 1_000_000;
  } else {
    seconds = interval.every * PERIOD_SECONDS[interval.period];
  }
  return `@every ${formatDuration(seconds)}`;
}

/** 5400 -> "1h30m": the `@every` grammar has hours, minutes and seconds only. */
export function formatDuration(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return `${h ? `${h}h` : ""}${m ? `${m}m` : ""}${s || (!h && !m) ? `${s}s` : ""}`;
}

/**
 * A clocked time runs once. cron has no year field, so the six-field schedule names the clocked
 * second every year; startTime at it, endTime a minute later and maxRuns 1 keep the one run.
 */
function fromClocked(
  clocked: z.output<typeof clockedFields>,
  options: ConversionOptions,
  notes: string[],
): Record<string, unknown> {
  const at = new Date(rfc3339(clocked.clocked_time, notes));
  if (at.getTime() <= options.now.getTime()) {
    notes.push(
      `clocked time ${formatTime(at)} has passed: django-celery-beat would run it once right away, this PeriodicTask never will (use cadent run-now)`,
    );
  }
  const schedule = [
    at.getUTCSeconds(),
    at.getUTCMinutes(),
    at.getUTCHours(),
    at.getUTCDate(),
    at.getUTCMonth() + 1,
    "*",
  ].join(" ");
  return {
    schedule,
    timeZone: "UTC",
    startTime: formatTime(at),
    endTime: formatTime(new Date(at.getTime() + 60_000)),
    maxRuns: 1,
  };
}

function taskSpecOf(fields: PeriodicTaskFields, notes: string[]): Record<string, unknown> {
  const spec: Record<string, unknown> = { task: fields.task };
  const args = jsonField(fields.args, "args", (v) => Array.isArray(v), "a JSON array");
  if (Array.isArray(args) && args.length > 0) spec.args = args;
  const kwargs = jsonField(fields.kwargs, "kwargs", isPlainObject, "a JSON object");
  if (isPlainObject(kwargs) && Object.keys(kwargs).length > 0) spec.kwargs = kwargs;
  if (fields.queue) spec.queue = fields.queue;
  if (fields.priority !== null && fields.priority !== undefined) spec.priority = fields.priority;
  const headers = jsonField(fields.headers, "headers", isPlainObject, "a JSON object");
  if (isPlainObject(headers) && Object.keys(headers).length > 0) spec.headers = headers;
  if (fields.expire_seconds) spec.expires = fields.expire_seconds;
  const routing = [
    fields.exchange ? `exchange '${fields.exchange}'` : "",
    fields.routing_key ? `routing_key '${fields.routing_key}'` : "",
  ].filter((s) => s !== "");
  if (routing.length > 0) {
    notes.push(`${routing.join(" and ")} dropped: cadent publishes to spec.queue directly`);
  }
  return spec;
}

function jsonField(
  text: string | null | undefined,
  field: string,
  valid: (value: unknown) => boolean,
  expected: string,
): unknown {
  if (text === null || text === undefined || text.trim() === "") return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new CannotConvert(`${field} is not JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (!valid(value)) throw new CannotConvert(`${field} must be ${expected}, got ${text}`);
  return value;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function parseFields<S extends z.ZodType>(schema: S, fields: unknown, what: string): z.output<S> {
  const parsed = parseWith(schema, fields, what);
  if (!parsed.ok) throw new CannotConvert(parsed.error);
  return parsed.value;
}

const HAS_OFFSET = /(?:[Zz]|[+-]\d{2}:?\d{2})$/;

/** A dumpdata datetime as RFC 3339 UTC. Naive times (USE_TZ = False) are read as UTC, and say so. */
function rfc3339(text: string, notes: string[]): string {
  const naive = !HAS_OFFSET.test(text.trim());
  const t = Date.parse(naive ? `${text.trim()}Z` : text.trim());
  if (!Number.isFinite(t)) throw new CannotConvert(`'${text}' is not a date-time`);
  if (naive) notes.push(`'${text}' has no UTC offset (USE_TZ = False?); read as UTC`);
  return formatTime(new Date(t));
}

function formatTime(t: Date): string {
  return t.toISOString().replace(/\.000Z$/, "Z");
}

/**
 * A DNS-1123 name of at most 52 characters. A name that must be cut, or that another entry
 * already took, ends in 8 hex digits of sha256(original name), so re-running the import gives the
 * same names.
 */
export function objectName(original: string, taken: ReadonlySet<string> = new Set()): string {
  const sanitized = sanitizedName(original);
  if (sanitized.length <= PERIODIC_TASK_NAME_MAX_LENGTH && !taken.has(sanitized)) return sanitized;
  const suffix = createHash("sha256").update(original, "utf8").digest("hex").slice(0, 8);
  const stem = sanitized.slice(0, PERIODIC_TASK_NAME_MAX_LENGTH - suffix.length - 1).replace(/-+$/, "");
  return `${stem}-${suffix}`;
}

/** Lowercase letters and digits; every other run of characters becomes one '-'. */
function sanitizedName(original: string): string {
  return (
    original
      // "Tâche" -> "tache": drop accents rather than whole letters.
      .normalize("NFKD")
      .replace(/[\u0300-\u036f]/g, "")
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "-")
      .replace(/^-+|-+$/g, "") || "task"
  );
}
