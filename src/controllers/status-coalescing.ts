/**
 * When the reconcilers write a status change: at once, or a few seconds later together with the
 * changes that follow it. Every status write is an API server write; a run every few seconds
 * would otherwise cost a PeriodicTask status write when its Task is created, another when the
 * Task is first seen, and another for each phase it passes through (docs/benchmarks.md, "API
 * writes per run").
 *
 * A change is *urgent* when it records something a user must see at once or a later decision
 * depends on; it is written at once, together with anything routine that was waiting. A
 * *routine* change (a scheduled run made or finished, a Job's start time) waits at most
 * {@link ROUTINE_WRITE_DELAY_MS} from the moment the first unwritten change was seen — not from the
 * latest one, so a stream of changes cannot postpone a write for ever — so a run that is made and
 * finishes within that time costs one PeriodicTask status write.
 *
 * Waiting loses nothing: both reconcilers rebuild the status from the last written one and the
 * state of the world on every pass, so a pass that does not write is simply made again, and its
 * counts and Events with it, by the pass that does (the status is the commit log: see
 * periodic-task-plan.ts). A new leader starts with nothing waiting.
 */
import type { PeriodicTaskStatus, TaskPhase, TaskStatus } from "../api/index.ts";
import type { Plan } from "./periodic-task-plan.ts";

/** How long a routine change may wait for others to be written with. */
export const ROUTINE_WRITE_DELAY_MS = 5_000;

export type Change = "none" | "routine" | "urgent";

export type WriteDecision =
  /** Write now. */
  | { write: true }
  /** Do not write; look again by `lookAgainAt` (epoch ms), when something is waiting. */
  | { write: false; lookAgainAt: number | undefined };

/** The moment the first unwritten routine change of each object was seen. */
export class StatusCoalescer {
  readonly #delayMs: number;
  readonly #pendingSince = new Map<string, number>();

  constructor(delayMs: number = ROUTINE_WRITE_DELAY_MS) {
    this.#delayMs = delayMs;
  }

  decide(key: string, change: Change, nowMs: number): WriteDecision {
    if (change === "none") {
      this.#pendingSince.delete(key);
      return { write: false, lookAgainAt: undefined };
    }
    if (change === "urgent") return { write: true };
    const since = this.#pendingSince.get(key) ?? nowMs;
    this.#pendingSince.set(key, since);
    return nowMs - since >= this.#delayMs
      ? { write: true }
      : { write: false, lookAgainAt: since + this.#delayMs };
  }

  /** The status was written (nothing waits any more), or the object is gone. */
  settled(key: string): void {
    this.#pendingSince.delete(key);
  }

  /** The objects with a change waiting, the longest-waiting first. */
  pending(): string[] {
    return [...this.#pendingSince.entries()].sort((a, b) => a[1] - b[1]).map(([key]) => key);
  }
}

/** A safety net only: the watch event of the write normally brings the object back within ms. */
export const CACHE_CATCH_UP_MS = 5_000;

/**
 * The resourceVersions this process's own status writes replaced, by object. A cache that still
 * shows one has not caught up with that write yet: a pass planned from it would rebuild the status
 * from before the write and be refused (409, one more wasted write) or redo work. The write's own
 * watch event brings the object back to the work queue, so such a pass can simply wait for it.
 */
export class OwnWrites {
  readonly #replaced = new Map<string, string>();

  /** A write of `key` took it from resourceVersion `from` to `to` (undefined: nothing written). */
  wrote(key: string, from: string | undefined, to: string | undefined): void {
    if (from !== undefined && to !== undefined && from !== to) this.#replaced.set(key, from);
  }

  /** Whether the cache's copy, at `resourceVersion`, is older than this process's last write. */
  isBehind(key: string, resourceVersion: string | undefined): boolean {
    const replaced = this.#replaced.get(key);
    if (replaced !== undefined && replaced === resourceVersion) return true;
    this.#replaced.delete(key);
    return false;
  }

  forget(key: string): void {
    this.#replaced.delete(key);
  }
}

interface ConditionLike {
  type: string;
  status: string;
  reason: string;
  observedGeneration?: number | undefined;
}

/** Conditions that say the same thing: a new message alone (e.g. "next run at …") is routine. */
function sameConditions(a: readonly ConditionLike[] = [], b: readonly ConditionLike[] = []): boolean {
  const gist = (list: readonly ConditionLike[]) =>
    JSON.stringify(list.map((c) => [c.type, c.status, c.reason, c.observedGeneration]));
  return gist(a) === gist(b);
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/**
 * A PeriodicTask status change is routine when all it records is scheduled runs made on time
 * (trigger `schedule`) and runs that succeeded: the fields `kubectl get` shows as LAST SCHEDULE,
 * NEXT RUN, ACTIVE, LAST RESULT and RUNS may then lag by a few seconds. Anything else is urgent:
 * a missed, skipped, failed, deleted, replaced, catch-up or manual run, a run-now token, a new
 * generation or a changed condition, and every Event but RunCreated.
 */
export function periodicTaskChange(
  prev: PeriodicTaskStatus,
  next: PeriodicTaskStatus,
  plan: Pick<Plan, "create" | "cancel" | "events">,
): Change {
  if (same(prev, next)) return "none";
  const counted = (s: PeriodicTaskStatus) => [s.runs?.missed ?? 0, s.runs?.skipped ?? 0, s.runs?.failed ?? 0];
  const routine =
    plan.cancel.length === 0 &&
    plan.create.every((run) => run.trigger === "schedule") &&
    plan.events.every((e) => e.reason === "RunCreated") &&
    same(counted(prev), counted(next)) &&
    prev.lastRunNowToken === next.lastRunNowToken &&
    prev.observedGeneration === next.observedGeneration &&
    sameConditions(prev.conditions, next.conditions);
  return routine ? "routine" : "urgent";
}

const STARTED_PHASES: readonly (TaskPhase | undefined)[] = ["Queued", "Running"];

/**
 * A Task status change is routine when the Task has started and stays in its phase, Queued or
 * Running, with the same condition reasons: details such as a Job's start time or attempt count,
 * which can wait for the next phase. A new phase (Running included), a first start, a retry, a
 * broker outage and every finish are urgent.
 */
export function taskChange(prev: TaskStatus, next: TaskStatus): Change {
  if (same(prev, next)) return "none";
  const routine =
    prev.queuedTime !== undefined &&
    prev.phase === next.phase &&
    STARTED_PHASES.includes(next.phase) &&
    same(prev.error, next.error) &&
    sameConditions(prev.conditions, next.conditions);
  return routine ? "routine" : "urgent";
}
