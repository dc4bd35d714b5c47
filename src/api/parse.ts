import type { z } from "zod";
import {
  periodicTaskSchema,
  periodicTaskSpecSchema,
  type PeriodicTask,
  type PeriodicTaskSpec,
} from "./periodic-task.ts";
import { taskSchema, taskSpecSchema, type Task, type TaskSpec } from "./task.ts";

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string; issues: FieldIssue[] };

/** One reason an object was refused, at a path written the way kubectl writes it (`spec.args[3]`). */
export interface FieldIssue {
  path: string;
  message: string;
}

/**
 * Parses with a schema; on failure, a one-line error naming every bad field, for a condition
 * message, an Event or a log line.
 */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, what: string): Parsed<z.output<S>> {
  const result = schema.safeParse(value);
  if (result.success) return { ok: true, value: result.data };
  const issues = result.error.issues.map((i) => ({ path: formatPath(i.path), message: i.message }));
  const listed = issues.map((i) => (i.path === "" ? i.message : `${i.path}: ${i.message}`)).join("; ");
  return { ok: false, error: `${what} is invalid: ${listed}`, issues };
}

/** `["spec", "args", 3]` -> `spec.args[3]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else out += out === "" ? String(segment) : `.${String(segment)}`;
  }
  return out;
}

function identify(value: unknown, kind: string): string {
  if (typeof value === "object" && value !== null && "metadata" in value) {
    const m = value.metadata;
    if (typeof m === "object" && m !== null) {
      const ns = "namespace" in m && typeof m.namespace === "string" ? `${m.namespace}/` : "";
      const name = "name" in m && typeof m.name === "string" ? m.name : "<unnamed>";
      return `${kind} ${ns}${name}`;
    }
  }
  return kind;
}

/** A Task as read from the API server, with defaults applied, or why it is not one. */
export function parseTask(value: unknown): Parsed<Task> {
  return parseWith(taskSchema, value, identify(value, "Task"));
}

export function parseTaskSpec(value: unknown): Parsed<TaskSpec> {
  return parseWith(taskSpecSchema, value, "Task spec");
}

/** A PeriodicTask as read from the API server, with defaults applied, or why it is not one. */
export function parsePeriodicTask(value: unknown): Parsed<PeriodicTask> {
  return parseWith(periodicTaskSchema, value, identify(value, "PeriodicTask"));
}

export function parsePeriodicTaskSpec(value: unknown): Parsed<PeriodicTaskSpec> {
  return parseWith(periodicTaskSpecSchema, value, "PeriodicTask spec");
}
