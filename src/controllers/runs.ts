/**
 * Names and identities of the runs of a PeriodicTask (product.md §1.3). Pure functions: the
 * deterministic name is the lock that makes a run happen at most once per scheduled time, and the
 * Celery task id derived from the same inputs lets the message on the wire and the Task object
 * agree even when one of them is written twice.
 */
import { createHash } from "node:crypto";
import { v5 as uuidv5 } from "uuid";

/** Namespace of cadent's name-based (version 5) task ids. */
const TASK_ID_NAMESPACE = "4e3c7a5e-2d0b-5b8f-9d0e-6361646e7431";

/** `<periodictask>-<unix seconds of the scheduled time>`: at most 52 + 11 characters. */
export function scheduledRunName(periodicTaskName: string, scheduledTime: Date): string {
  return `${periodicTaskName}-${Math.floor(scheduledTime.getTime() / 1000)}`;
}

/**
 * `<periodictask>-m<9 hex digits of sha256(token)>`: a manual run named from its run-now token,
 * so a token makes exactly one run. The `m` keeps it apart from scheduled runs (all digits) and it
 * has the same 11-character suffix.
 */
export function manualRunName(periodicTaskName: string, token: string): string {
  const digest = createHash("sha256").update(token, "utf8").digest("hex").slice(0, 9);
  return `${periodicTaskName}-m${digest}`;
}

/**
 * The Celery task id of a PeriodicTask's run: a name-based UUID of (PeriodicTask uid, run name),
 * and the run name carries the scheduled time (or the run-now token). The same run always gets
 * the same id, whoever computes it.
 */
export function runTaskId(periodicTaskUid: string, runName: string): string {
  return uuidv5(`${periodicTaskUid}/${runName}`, TASK_ID_NAMESPACE);
}
