/** Names from product.md §1 that users, manifests and other tools rely on. Never rename them. */

export const GROUP = "cadent.dev";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;
export const CATEGORY = "cadent";

export const TASK_KIND = "Task";
export const TASK_LIST_KIND = "TaskList";
export const TASK_PLURAL = "tasks";
export const TASK_SINGULAR = "task";

export const PERIODIC_TASK_KIND = "PeriodicTask";
export const PERIODIC_TASK_LIST_KIND = "PeriodicTaskList";
export const PERIODIC_TASK_PLURAL = "periodictasks";
export const PERIODIC_TASK_SINGULAR = "periodictask";
export const PERIODIC_TASK_SHORT_NAMES = ["ptask", "pt"] as const;

/** A Task may give its name to a Job, whose name must fit in a label value. */
export const TASK_NAME_MAX_LENGTH = 63;
/** A run is named `<periodictask>-<unix seconds>`: the suffix takes 11 of the Task's 63 characters. */
export const PERIODIC_TASK_NAME_MAX_LENGTH = 52;

export const LABELS = {
  /** On a Task made by a PeriodicTask: the PeriodicTask's name. */
  periodicTask: "cadent.dev/periodic-task",
  /** On a Job made for a Task: the Task's name. */
  task: "cadent.dev/task",
} as const;

export const ANNOTATIONS = {
  /** On a run: the scheduled time it stands for, RFC 3339. */
  scheduledTime: "cadent.dev/scheduled-time",
  /** On a run: why it was made, one of TRIGGERS. */
  trigger: "cadent.dev/trigger",
  /** On a PeriodicTask: each new value asks for exactly one extra run. */
  runNow: "cadent.dev/run-now",
  /** On a manual run: the run-now token it was made for. */
  runNowToken: "cadent.dev/run-now-token",
  /**
   * On a Task: cancel it (its Job is deleted, or its message revoked) and end it Cancelled. Set by
   * a PeriodicTask with concurrencyPolicy Replace; a user may set it too. The value is the reason.
   */
  cancel: "cadent.dev/cancel",
} as const;

/** Values of the `cadent.dev/trigger` annotation. */
export const TRIGGERS = ["schedule", "catch-up", "manual"] as const;
export type Trigger = (typeof TRIGGERS)[number];

export const TASK_PHASES = [
  "Pending",
  "Scheduled",
  "Queued",
  "Running",
  "Retrying",
  "Succeeded",
  "Failed",
  "Expired",
  "Cancelled",
] as const;
export type TaskPhase = (typeof TASK_PHASES)[number];

/** Phases a Task never leaves. */
export const FINISHED_TASK_PHASES = [
  "Succeeded",
  "Failed",
  "Expired",
  "Cancelled",
] as const satisfies readonly TaskPhase[];

export const CONCURRENCY_POLICIES = ["Allow", "Forbid", "Replace"] as const;
export type ConcurrencyPolicy = (typeof CONCURRENCY_POLICIES)[number];

export const CATCH_UP_POLICIES = ["Latest", "All"] as const;
export type CatchUpPolicy = (typeof CATCH_UP_POLICIES)[number];

export const CONDITION_TYPES = { ready: "Ready" } as const;

/** Reasons for a PeriodicTask's `Ready=False` condition (product.md §1.2, §2, §3.2). */
export const READY_REASONS = {
  invalidSchedule: "InvalidSchedule",
  unknownTimeZone: "UnknownTimeZone",
  invalidTemplate: "InvalidTemplate",
  finished: "Finished",
} as const;

/** Caps on status content written by the controller (product.md §1.1). */
export const STATUS_LIMITS = {
  resultBytes: 16 * 1024,
  resultPreviewLength: 80,
  tracebackLength: 8 * 1024,
  recentRuns: 10,
} as const;
