/**
 * cadent's API (product.md §1): zod schemas, the types inferred from them, and parse helpers.
 * The CRDs in crds/ are generated from these schemas (npm run gen:crds).
 */
export * from "./constants.ts";
export { conditionSchema, objectMetaSchema, type Condition, type ObjectMeta } from "./fields.ts";
export {
  BACKOFF_DEFAULTS,
  CELERY_PROTOCOL_HEADERS,
  taskErrorSchema,
  taskSchema,
  taskSpecSchema,
  taskStatusSchema,
  type Task,
  type TaskSpec,
  type TaskSpecInput,
  type TaskStatus,
} from "./task.ts";
export {
  ACTIVE_LIST_MAX,
  CATCH_UP_MAX_RUNS,
  periodicTaskSchema,
  periodicTaskSpecSchema,
  periodicTaskStatusSchema,
  recentRunSchema,
  type PeriodicTask,
  type PeriodicTaskSpec,
  type PeriodicTaskSpecInput,
  type PeriodicTaskStatus,
  type RecentRun,
} from "./periodic-task.ts";
export {
  formatPath,
  parsePeriodicTask,
  parsePeriodicTaskSpec,
  parseTask,
  parseTaskSpec,
  parseWith,
  type FieldIssue,
  type Parsed,
} from "./parse.ts";
