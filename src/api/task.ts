import { z } from "zod";
import { RESERVED_HEADERS } from "../celery/protocol.ts";
import { has, withRules, type CelRule } from "./cel.ts";
import { API_VERSION, STATUS_LIMITS, TASK_KIND, TASK_NAME_MAX_LENGTH, TASK_PHASES } from "./constants.ts";
import {
  INT32_MAX,
  anyJsonArray,
  anyJsonObject,
  conditions,
  dateTime,
  dateTimeString,
  int,
  objectMetaSchema,
  stringMap,
  templateMetadata,
} from "./fields.ts";

/**
 * Header names `spec.headers` may not use: Celery's protocol v2 headers and those Celery or kombu
 * add on the way. A custom header with one of these names would change what the worker does.
 */
export const CELERY_PROTOCOL_HEADERS: readonly string[] = [...RESERVED_HEADERS];

const headersSchema = withRules(
  stringMap(
    32,
    1024,
    "Extra Celery message headers. Redis executor only. Names of Celery's own protocol headers (id, task, eta, ...) are refused.",
  ),
  [
    {
      rule: `![${CELERY_PROTOCOL_HEADERS.map((h) => `'${h}'`).join(", ")}].exists(h, h in self)`,
      message: `must not set Celery protocol headers (${CELERY_PROTOCOL_HEADERS.join(", ")})`,
      holds: (self) => !CELERY_PROTOCOL_HEADERS.some((h) => Object.hasOwn(self, h)),
    },
  ],
);

/** Celery's retry_backoff / retry_backoff_max / retry_jitter defaults, with the usual factor 2. */
export const BACKOFF_DEFAULTS = { initialSeconds: 1, factor: 2, maxSeconds: 600, jitter: true } as const;

const backoffSchema = withRules(
  z.object({
    initialSeconds: int(0, 86_400, "Delay before the first retry, in seconds.").default(
      BACKOFF_DEFAULTS.initialSeconds,
    ),
    factor: z
      .number()
      .min(1)
      .max(10)
      .default(BACKOFF_DEFAULTS.factor)
      .describe("Each further delay is the previous one times this factor."),
    maxSeconds: int(1, 86_400, "Upper bound of any delay, in seconds.").default(BACKOFF_DEFAULTS.maxSeconds),
    jitter: z
      .boolean()
      .default(BACKOFF_DEFAULTS.jitter)
      .describe("Draw each delay uniformly from [0, delay], as Celery's retry_jitter does."),
  }),
  [
    {
      rule: "self.initialSeconds <= self.maxSeconds",
      message: "initialSeconds must not exceed maxSeconds",
      fieldPath: ".initialSeconds",
      holds: (self) => self.initialSeconds <= self.maxSeconds,
    },
  ],
).describe("Delay between attempts: initialSeconds * factor^(attempt-1), capped at maxSeconds.");

const retrySchema = z
  .object({
    limit: int(
      0,
      100,
      "How many times a failed attempt is retried (the Job executor's backoffLimit). 0 means no retries.",
    ),
    // The whole default, not {}: the API server checks a default against the CEL rules as written,
    // before the defaults of its fields would fill it in.
    backoff: backoffSchema.default({ ...BACKOFF_DEFAULTS }),
  })
  .describe("Retries after a failed attempt. Without it a failed attempt fails the Task.");

const jobTemplateSchema = z
  .object({
    metadata: templateMetadata("the Job").optional(),
    spec: z
      .looseObject({
        template: z
          .looseObject({
            spec: z
              .looseObject({})
              .describe("The Pod spec (core/v1 PodSpec); validated when the Job is created."),
          })
          .describe("The Pod template (core/v1 PodTemplateSpec) of the Job."),
      })
      .describe(
        "The Job spec (batch/v1 JobSpec). Kept as written and validated when the Job is created (a PeriodicTask checks it with a server-side dry run). timeoutSeconds and retry.limit, when set, override activeDeadlineSeconds and backoffLimit.",
      ),
  })
  .describe(
    "Runs the Task as a Kubernetes Job made from this batch/v1 JobTemplateSpec (the Job executor). Every container gets CADENT_TASK_ID, CADENT_TASK_NAME, CADENT_ARGS, CADENT_KWARGS and CADENT_SCHEDULED_TIME.",
  );

const taskSpecFields = z.object({
  task: z
    .string()
    .min(1)
    .max(255)
    .regex(/^[A-Za-z_][A-Za-z0-9_.:-]*$/)
    .optional()
    .describe(
      "Celery task name, for example app.tasks.del_redis_data. Without jobTemplate it selects the Redis executor and is required; with jobTemplate it is an optional name passed to the containers as CADENT_TASK_NAME.",
    ),
  args: anyJsonArray(64, "Positional arguments, any JSON values.").default([]),
  kwargs: anyJsonObject(64, "Keyword arguments, a JSON object.").default({}),
  queue: z
    .string()
    .min(1)
    .max(200)
    .regex(/^[A-Za-z0-9_][A-Za-z0-9_.:@-]*$/)
    .optional()
    .describe(
      "Redis queue the message is published to. Redis executor only. Default: the controller's --default-queue (celery).",
    ),
  priority: int(
    0,
    9,
    "Message priority, 0-9 with Celery's semantics on Redis. Redis executor only.",
  ).optional(),
  headers: headersSchema.optional(),
  jobTemplate: jobTemplateSchema.optional(),
  eta: dateTime("Do not start before this time (RFC 3339). Excludes countdown.").optional(),
  countdown: int(
    0,
    INT32_MAX,
    "Do not start until this many seconds after creation. Excludes eta.",
  ).optional(),
  expires: z
    .union([z.int().min(1).max(INT32_MAX), dateTimeString()])
    .optional()
    .describe(
      "Seconds after creation, or an RFC 3339 time: a Task not started by then ends Expired. Travels as Celery's expires header.",
    ),
  timeoutSeconds: int(
    1,
    INT32_MAX,
    "Hard limit on one attempt, in seconds: Celery's time limit, or the Job's activeDeadlineSeconds.",
  ).optional(),
  retry: retrySchema.optional(),
  ttlSecondsAfterFinished: int(
    0,
    INT32_MAX,
    "Delete the Task (and its Job) this many seconds after it finishes. Unset: kept.",
  ).optional(),
});

type TaskSpecFields = z.output<typeof taskSpecFields>;

/** Redis-executor options: refused beside jobTemplate. */
function redisOnly(field: "queue" | "priority" | "headers"): CelRule<TaskSpecFields> {
  return {
    rule: `!has(self.jobTemplate) || !has(self.${field})`,
    message: `${field} applies only to the Redis executor; remove it, or remove jobTemplate`,
    fieldPath: `.${field}`,
    reason: "FieldValueForbidden",
    holds: (self) => !has(self, "jobTemplate") || !has(self, field),
  };
}

export const taskSpecSchema = withRules(taskSpecFields, [
  {
    rule: "has(self.task) || has(self.jobTemplate)",
    message:
      "choose an executor: set task (a Celery task name, run by the Redis executor) or jobTemplate (the Job executor)",
    fieldPath: ".task",
    reason: "FieldValueRequired",
    holds: (self) => has(self, "task") || has(self, "jobTemplate"),
  },
  redisOnly("queue"),
  redisOnly("priority"),
  redisOnly("headers"),
  {
    rule: "!has(self.eta) || !has(self.countdown)",
    message: "set eta or countdown, not both",
    fieldPath: ".countdown",
    reason: "FieldValueForbidden",
    holds: (self) => !has(self, "eta") || !has(self, "countdown"),
  },
]).describe(
  "What runs (a Celery task on a Redis queue, or a Kubernetes Job) and how: exactly one executor plus run options.",
);
export type TaskSpec = z.output<typeof taskSpecSchema>;
/** A Task spec as written by a user, before defaults. */
export type TaskSpecInput = z.input<typeof taskSpecSchema>;

export const taskErrorSchema = z
  .object({
    type: z
      .string()
      .max(256)
      .optional()
      .describe("Exception type, for example ValueError; for a Job, the container's terminated reason."),
    reason: z
      .string()
      .max(256)
      .optional()
      .describe(
        "Why the Task failed when it was not the task's own exception: TimedOut, BackoffLimitExceeded, JobDeleted, NotRegistered, ...",
      ),
    exitCode: int(-2147483648, INT32_MAX, "Exit code of the failed container (Job executor).").optional(),
    message: z.string().max(8192).optional().describe("Exception message."),
    traceback: z
      .string()
      .max(STATUS_LIMITS.tracebackLength)
      .optional()
      .describe(`Traceback, cut to its last ${STATUS_LIMITS.tracebackLength} characters.`),
  })
  .describe("The error of the last failed attempt.");

export const taskStatusSchema = z
  .object({
    phase: z
      .enum(TASK_PHASES)
      .optional()
      .describe(
        "Where the Task is: Pending, Scheduled (waiting for eta/countdown), Queued, Running, Retrying, or finished: Succeeded, Failed, Expired, Cancelled.",
      ),
    taskId: z
      .string()
      .max(255)
      .optional()
      .describe("The Celery task id (correlation id) used on the wire and in the result backend."),
    attempts: int(0, INT32_MAX, "Attempts started so far.").optional(),
    scheduledTime: dateTime("When the Task is due (its eta, or creation plus countdown).").optional(),
    queuedTime: dateTime("When the message was published, or the Job created.").optional(),
    startTime: dateTime("When the current or last attempt started running.").optional(),
    completionTime: dateTime("When the Task finished.").optional(),
    worker: z
      .string()
      .max(253)
      .optional()
      .describe("The Celery worker (celery@host) or the Pod that ran the last attempt."),
    jobName: z.string().max(63).optional().describe("The Job made for the Task (Job executor)."),
    result: z
      .unknown()
      .nullable()
      .optional()
      .describe(
        `The JSON value the task returned, capped at ${STATUS_LIMITS.resultBytes / 1024} KiB by default (see resultTruncated).`,
      ),
    resultTruncated: z.boolean().optional().describe("True when result was cut to fit the cap."),
    resultPreview: z
      .string()
      .max(STATUS_LIMITS.resultPreviewLength)
      .optional()
      .describe(
        `The result as compact text, at most ${STATUS_LIMITS.resultPreviewLength} characters, for kubectl get.`,
      ),
    error: taskErrorSchema.optional(),
    conditions: conditions("The latest observations of the Task's state.").optional(),
    observedGeneration: int(
      0,
      Number.MAX_SAFE_INTEGER,
      "The generation the status was written for.",
    ).optional(),
  })
  .describe("What happened to the Task, written by the controller.");
export type TaskStatus = z.output<typeof taskStatusSchema>;

type Named = { metadata: { name: string } };

/** `metadata.name` bound of a Task: a Job may carry the name, and a Job's name is a label value. */
export const taskNameRule: CelRule<Named> = {
  rule: `self.metadata.name.size() <= ${TASK_NAME_MAX_LENGTH}`,
  message: `must be at most ${TASK_NAME_MAX_LENGTH} characters: a Job may carry the Task's name`,
  fieldPath: ".metadata.name",
  reason: "FieldValueInvalid",
  holds: (self) => self.metadata.name.length <= TASK_NAME_MAX_LENGTH,
};

/** A Task's spec cannot change once it exists: what ran is what was asked for. */
export const immutableSpecRule: CelRule<TaskSpec> = {
  rule: "self == oldSelf",
  message: "spec is immutable: delete the Task and create a new one",
};

export const taskSchema = withRules(
  z.object({
    apiVersion: z.literal(API_VERSION),
    kind: z.literal(TASK_KIND),
    metadata: objectMetaSchema,
    spec: withRules(taskSpecSchema, [immutableSpecRule]),
    status: taskStatusSchema.optional(),
  }),
  [taskNameRule],
).describe(
  "Task is one execution of a Celery task on a Redis queue or of a Kubernetes Job, like Celery's apply_async or a Job; its status holds the outcome and result.",
);
export type Task = z.output<typeof taskSchema>;
