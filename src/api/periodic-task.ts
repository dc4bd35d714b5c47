import { z } from "zod";
import { has, withRules, type CelRule } from "./cel.ts";
import {
  API_VERSION,
  CATCH_UP_POLICIES,
  CONCURRENCY_POLICIES,
  PERIODIC_TASK_KIND,
  PERIODIC_TASK_NAME_MAX_LENGTH,
  STATUS_LIMITS,
  TASK_PHASES,
} from "./constants.ts";
import {
  INT32_MAX,
  celInstant,
  compareDateTimes,
  conditions,
  dateTime,
  int,
  isCelTimestamp,
  objectMetaSchema,
  templateMetadata,
} from "./fields.ts";
import { taskSpecSchema } from "./task.ts";

/** Most missed times one catch-up makes runs for (product.md §1.2). */
export const CATCH_UP_MAX_RUNS = 100;
/** Most entries in status.active; status.activeCount counts them all. */
export const ACTIVE_LIST_MAX = 100;

/**
 * A run's spec is the template's spec, copied for every run. Absolute times in it would be the
 * same for every run, so only relative ones are allowed.
 */
const runSpecSchema = withRules(taskSpecSchema, [
  {
    rule: "!has(self.eta)",
    message: "a fixed eta would be the same for every run; use countdown (seconds after each run is created)",
    fieldPath: ".eta",
    reason: "FieldValueForbidden",
    holds: (self) => !has(self, "eta"),
  },
  {
    rule: "!has(self.expires) || type(self.expires) == int",
    message:
      "in a template, expires must be seconds after each run is created; a fixed time would expire every later run",
    fieldPath: ".expires",
    holds: (self) => !has(self, "expires") || typeof self.expires === "number",
  },
]).describe(
  "The spec of every run: a Task spec (see Task). eta and an absolute expires time are refused here: use countdown and expires in seconds.",
);

const taskTemplateSchema = z
  .object({
    metadata: templateMetadata("every run (Task)").optional(),
    spec: runSpecSchema,
  })
  .describe("The Task made for each run: its labels and annotations, and its spec.");

const periodicTaskSpecFields = z.object({
  schedule: z
    .string()
    .min(1)
    .max(128)
    .describe(
      "When to run: five-field cron (minute hour day-of-month month day-of-week), an optional leading seconds field, names, ranges, lists, steps, L, #, ?, H (hashed); macros (@hourly, @daily, @weekly, @monthly, @yearly, @annually, @midnight); or @every <duration> (30s, 5m, 1h30m). An invalid schedule sets Ready=False, reason InvalidSchedule.",
    ),
  timeZone: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[A-Za-z][A-Za-z0-9_+/-]*$/)
    .default("UTC")
    .describe(
      "IANA time zone the schedule is read in, for example Asia/Shanghai. An unknown zone sets Ready=False, reason UnknownTimeZone.",
    ),
  taskTemplate: taskTemplateSchema,
  concurrencyPolicy: z
    .enum(CONCURRENCY_POLICIES)
    .default("Allow")
    .describe(
      "When a run is due while an earlier one is still active: Allow (run both), Forbid (skip the new run), Replace (cancel the active run, then start the new one).",
    ),
  startingDeadlineSeconds: int(
    0,
    INT32_MAX,
    "A run may start at most this many seconds after its scheduled time; later ones are counted as missed. Unset: no deadline.",
  ).optional(),
  catchUp: z
    .enum(CATCH_UP_POLICIES)
    .default("Latest")
    .describe(
      `Runs missed while the controller was down: Latest makes one run for the newest missed time; All makes one for every missed time inside startingDeadlineSeconds, at most ${CATCH_UP_MAX_RUNS}.`,
    ),
  suspend: z.boolean().default(false).describe("True stops new runs; runs already made are not affected."),
  startTime: dateTime("No run is scheduled before this time (django-celery-beat's start_time).").optional(),
  endTime: dateTime("No run is scheduled after this time; then Ready=False, reason Finished.").optional(),
  maxRuns: int(
    1,
    INT32_MAX,
    "Stop after this many scheduled runs (1 is django-celery-beat's one_off); then Ready=False, reason Finished.",
  ).optional(),
  jitterSeconds: int(
    0,
    3600,
    "Delay every run by a stable per-object amount in [0, jitterSeconds), never past the next scheduled time, to spread load.",
  ).optional(),
  successfulRunsHistoryLimit: int(0, 100, "How many succeeded runs (Tasks) to keep.").default(3),
  failedRunsHistoryLimit: int(0, 100, "How many failed runs (Tasks) to keep.").default(1),
});

export const periodicTaskSpecSchema = withRules(periodicTaskSpecFields, [
  {
    // As instants: the text orders neither offsets nor a lowercase t or z. The API server refuses a
    // time outside CEL's timestamp range here (it cannot evaluate the rule), so zod does too.
    rule: `!has(self.startTime) || !has(self.endTime) || ${celInstant("self.startTime")} < ${celInstant("self.endTime")}`,
    message: "endTime must be after startTime",
    fieldPath: ".endTime",
    holds: ({ startTime, endTime }) =>
      startTime === undefined ||
      endTime === undefined ||
      (isCelTimestamp(startTime) && isCelTimestamp(endTime) && compareDateTimes(startTime, endTime) < 0),
  },
]).describe("A schedule and the Task to make at each of its times.");
export type PeriodicTaskSpec = z.output<typeof periodicTaskSpecSchema>;
export type PeriodicTaskSpecInput = z.input<typeof periodicTaskSpecSchema>;

const countSchema = (description: string) => int(0, Number.MAX_SAFE_INTEGER, description).default(0);

export const recentRunSchema = z
  .object({
    name: z.string().min(1).max(253).describe("Name of the run's Task."),
    scheduledTime: dateTime("The scheduled time the run stands for (the request time for a manual run)."),
    startTime: dateTime("When the run started running.").optional(),
    completionTime: dateTime("When the run finished.").optional(),
    phase: z.enum(TASK_PHASES).optional().describe("The run's Task phase when last seen."),
  })
  .describe("A recent run.");
export type RecentRun = z.output<typeof recentRunSchema>;

export const periodicTaskStatusSchema = z
  .object({
    nextScheduleTime: dateTime("The next time a run is due.").optional(),
    lastScheduleTime: dateTime("The scheduled time of the newest run made.").optional(),
    lastSuccessfulTime: dateTime("When the newest succeeded run finished.").optional(),
    active: z
      .array(
        z
          .object({
            name: z.string().min(1).max(253).describe("Name of the Task."),
            uid: z.string().max(64).optional().describe("UID of the Task."),
          })
          .describe("A run that has not finished."),
      )
      .max(ACTIVE_LIST_MAX)
      .optional()
      .describe(
        `Runs that have not finished, at most ${ACTIVE_LIST_MAX} listed; activeCount counts them all.`,
      ),
    activeCount: int(0, INT32_MAX, "How many runs have not finished.").optional(),
    runs: z
      .object({
        total: countSchema("Runs made."),
        succeeded: countSchema("Runs that succeeded."),
        failed: countSchema("Runs that failed (Failed, Expired or Cancelled)."),
        missed: countSchema("Scheduled times with no run: past startingDeadlineSeconds, or beyond catch-up."),
        skipped: countSchema("Scheduled times skipped because concurrencyPolicy is Forbid."),
      })
      .optional()
      .describe("Counters since the PeriodicTask was created."),
    recentRuns: z
      .array(recentRunSchema)
      .max(STATUS_LIMITS.recentRuns)
      .optional()
      .describe(`The newest runs, newest first, at most ${STATUS_LIMITS.recentRuns}.`),
    lastRunNowToken: z
      .string()
      .max(1024)
      .optional()
      .describe(
        "The last cadent.dev/run-now annotation value that made a run; a new value makes one more run.",
      ),
    conditions: conditions(
      "The latest observations. Ready=False with reason InvalidSchedule, UnknownTimeZone, InvalidTemplate or Finished says why no runs are made.",
    ).optional(),
    observedGeneration: int(
      0,
      Number.MAX_SAFE_INTEGER,
      "The generation the status was written for.",
    ).optional(),
  })
  .describe("What the schedule did, written by the controller.");
export type PeriodicTaskStatus = z.output<typeof periodicTaskStatusSchema>;

/** `metadata.name` bound: a run is named `<name>-<unix seconds>`, and a Task's name has 63 characters. */
export const periodicTaskNameRule: CelRule<{ metadata: { name: string } }> = {
  rule: `self.metadata.name.size() <= ${PERIODIC_TASK_NAME_MAX_LENGTH}`,
  message: `must be at most ${PERIODIC_TASK_NAME_MAX_LENGTH} characters: run names append 11 (-<unix seconds>)`,
  fieldPath: ".metadata.name",
  reason: "FieldValueInvalid",
  holds: (self) => self.metadata.name.length <= PERIODIC_TASK_NAME_MAX_LENGTH,
};

export const periodicTaskSchema = withRules(
  z.object({
    apiVersion: z.literal(API_VERSION),
    kind: z.literal(PERIODIC_TASK_KIND),
    metadata: objectMetaSchema,
    spec: periodicTaskSpecSchema,
    status: periodicTaskStatusSchema.optional(),
  }),
  [periodicTaskNameRule],
).describe(
  "PeriodicTask makes a Task at each time of a schedule, like a celery beat or django-celery-beat entry. Each run is a Task named <periodictask>-<unix seconds of its scheduled time>.",
);
export type PeriodicTask = z.output<typeof periodicTaskSchema>;
