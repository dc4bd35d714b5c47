/**
 * The decisions of one PeriodicTask reconcile, as a pure function of (previous status, the runs
 * that exist, now). The reconciler reads the world, calls {@link planPeriodicTask}, and carries
 * the plan out: create the runs, cancel the replaced ones, prune history, write the status.
 *
 * The status is the commit log. A run counts as made once a status that includes it is written:
 * - a run whose Task exists but whose status write never happened (a crash in between) has a
 *   scheduled time newer than `lastScheduleTime` (or is the manual run of a token newer than
 *   `lastRunNowToken`) and is adopted: counted once, never made twice (its name is the lock);
 * - the fire times such a lost write had passed over (missed or skipped) are counted as missed
 *   when its runs are adopted, since the watermark then moves past them for good;
 * - a run is counted finished when it leaves `status.active`, so each outcome is counted once, and
 *   it is pruned only by a later pass, once that count is written.
 * Status writes are conditional on the resourceVersion the plan was made from, so a plan made
 * from a stale copy is never written; it is made again from the latest object.
 *
 * The reconciler may also leave a routine change (scheduled runs made on time, runs that
 * succeeded) unwritten for a few seconds, to write it with the next (status-coalescing.ts). The
 * runs made meanwhile are then adopted by the pass that writes, exactly as after a lost write:
 * the reconciler hands the planner the runs it made that its cache may not show yet.
 */
import {
  FINISHED_TASK_PHASES,
  STATUS_LIMITS,
  ACTIVE_LIST_MAX,
  CATCH_UP_MAX_RUNS,
  type PeriodicTaskSpec,
  type PeriodicTaskStatus,
  type RecentRun,
  type TaskPhase,
  type Trigger,
} from "../api/index.ts";
import { jitterOffsetMs, missedRuns, nextRun, type CompiledSchedule } from "../schedule/index.ts";
import { manualRunName, scheduledRunName } from "./runs.ts";

/** A run is `catch-up` rather than `schedule` when newer fire times are due too, or it is made more than this late. */
export const CATCH_UP_LATENESS_MS = 30_000;

/** What the reconciler knows of one existing run (a Task owned by the PeriodicTask). */
export interface RunView {
  name: string;
  uid: string | undefined;
  trigger: Trigger;
  scheduledTime: Date;
  runNowToken: string | undefined;
  phase: TaskPhase | undefined;
  startTime: string | undefined;
  completionTime: string | undefined;
  cancelRequested: boolean;
}

export interface PlanInput {
  name: string;
  uid: string;
  generation: number;
  creationTimestamp: Date;
  /** The `cadent.dev/run-now` annotation. */
  runNowToken: string | undefined;
  spec: PeriodicTaskSpec;
  status: PeriodicTaskStatus;
  /** Undefined when the schedule is invalid: only manual runs can be made. */
  schedule: CompiledSchedule | undefined;
  /** The runs in the cache. */
  runs: readonly RunView[];
  /** Names in status.active confirmed deleted by a live read (not just absent from the cache). */
  deletedActive: ReadonlySet<string>;
  now: Date;
}

export interface PlannedRun {
  name: string;
  scheduledTime: Date;
  trigger: Trigger;
  runNowToken?: string;
}

export interface PlannedEvent {
  type: "Normal" | "Warning";
  reason: string;
  message: string;
  /**
   * The run a RunCreated Event announces. The reconciler records such an Event when it creates
   * that run's Task (so only when it really made it), not with the status.
   */
  run?: string;
}

/** The RunCreated Event of a run. */
export function runCreatedEvent(run: PlannedRun): PlannedEvent {
  const message =
    run.trigger === "manual"
      ? `created manual run ${run.name} (run-now token ${run.runNowToken ?? ""})`
      : `created run ${run.name} for ${iso(run.scheduledTime)}${run.trigger === "catch-up" ? " (catch-up)" : ""}`;
  return { type: "Normal", reason: "RunCreated", message, run: run.name };
}

export interface Plan {
  create: PlannedRun[];
  /** Active runs to cancel (concurrencyPolicy Replace). */
  cancel: string[];
  /** Finished runs beyond the history limits, to delete. */
  prune: string[];
  events: PlannedEvent[];
  status: PeriodicTaskStatus;
  /** When to reconcile again at the latest; undefined: only on a change. */
  wakeAt: Date | undefined;
  /** Why no run is left (Ready=False, reason Finished); undefined while runs remain. */
  finished: string | undefined;
  /** Deltas, for metrics. */
  outcomes: {
    created: number;
    missed: number;
    skipped: number;
    replaced: number;
    succeeded: number;
    failed: number;
  };
}

const isFinished = (phase: TaskPhase | undefined): boolean =>
  phase !== undefined && (FINISHED_TASK_PHASES as readonly TaskPhase[]).includes(phase);

const iso = (t: Date): string => t.toISOString().replace(/\.\d{3}Z$/, "Z");

export function planPeriodicTask(input: PlanInput): Plan {
  const { spec, now, schedule } = input;
  const prev = input.status;
  const runs = new Map(input.runs.map((r) => [r.name, r]));
  const counts = {
    total: prev.runs?.total ?? 0,
    succeeded: prev.runs?.succeeded ?? 0,
    failed: prev.runs?.failed ?? 0,
    missed: prev.runs?.missed ?? 0,
    skipped: prev.runs?.skipped ?? 0,
  };
  const outcomes = { created: 0, missed: 0, skipped: 0, replaced: 0, succeeded: 0, failed: 0 };
  const events: PlannedEvent[] = [];
  const create: PlannedRun[] = [];
  const cancel: string[] = [];
  const recent = new Map<string, RecentRun>((prev.recentRuns ?? []).map((r) => [r.name, { ...r }]));
  const active = new Map<string, string | undefined>((prev.active ?? []).map((a) => [a.name, a.uid]));
  let lastScheduleTime = prev.lastScheduleTime ? new Date(prev.lastScheduleTime) : undefined;
  let lastRunNowToken = prev.lastRunNowToken;
  let lastSuccessfulTime = prev.lastSuccessfulTime;

  // Runs whose outcome this pass counts: that count is committed only by this pass's status write.
  const countedNow = new Set<string>();
  const countFinish = (name: string, phase: TaskPhase, completionTime: string | undefined): void => {
    countedNow.add(name);
    if (phase === "Succeeded") {
      counts.succeeded++;
      outcomes.succeeded++;
      if (completionTime && (!lastSuccessfulTime || completionTime > lastSuccessfulTime)) {
        lastSuccessfulTime = completionTime;
      }
    } else {
      counts.failed++;
      outcomes.failed++;
      events.push({ type: "Warning", reason: "RunFailed", message: `run ${name} ended ${phase}` });
    }
  };
  const record = (run: RunView): void => {
    recent.set(run.name, {
      name: run.name,
      scheduledTime: iso(run.scheduledTime),
      ...(run.startTime ? { startTime: run.startTime } : {}),
      ...(run.completionTime ? { completionTime: run.completionTime } : {}),
      ...(run.phase ? { phase: run.phase } : {}),
    });
  };
  const adopt = (run: RunView): void => {
    counts.total++;
    // Recorded here too: a run that finished before it was adopted is in neither list below.
    record(run);
    if (isFinished(run.phase)) countFinish(run.name, run.phase ?? "Failed", run.completionTime);
    else active.set(run.name, run.uid);
  };

  // 1. Adopt runs made by a reconcile whose status write never happened.
  const committedScheduleTime = lastScheduleTime;
  let adoptedScheduled = 0;
  for (const run of [...runs.values()].sort(
    (a, b) => a.scheduledTime.getTime() - b.scheduledTime.getTime(),
  )) {
    if (active.has(run.name)) continue;
    if (run.trigger === "manual") {
      if (
        run.runNowToken !== undefined &&
        run.runNowToken === input.runNowToken &&
        run.runNowToken !== lastRunNowToken
      ) {
        lastRunNowToken = run.runNowToken;
        adopt(run);
      }
    } else if (lastScheduleTime === undefined || run.scheduledTime > lastScheduleTime) {
      lastScheduleTime = run.scheduledTime;
      adoptedScheduled++;
      adopt(run);
    }
  }
  // The lost status write also carried the count of the fire times its reconcile passed over
  // (missed, or skipped by Forbid) up to the runs adopted above. The watermark now moves past them
  // without them ever being planned again, so count them here, as missed, or they would be dropped
  // silently.
  if (schedule && adoptedScheduled > 0 && lastScheduleTime) {
    let after = (committedScheduleTime ?? input.creationTimestamp).getTime();
    if (spec.startTime) after = Math.max(after, new Date(spec.startTime).getTime() - 1);
    const passedOver = schedule.countBetween(new Date(after), lastScheduleTime) - adoptedScheduled;
    if (passedOver > 0) {
      counts.missed += passedOver;
      outcomes.missed += passedOver;
      events.push({
        type: "Warning",
        reason: "MissedRuns",
        message: `${passedOver} scheduled time(s) before ${iso(lastScheduleTime)} missed (recorded late: the status write of the reconcile that passed them over was lost)`,
      });
    }
  }

  // 2. Count the active runs that finished or were deleted.
  for (const name of [...active.keys()]) {
    const run = runs.get(name);
    if (run && isFinished(run.phase)) {
      active.delete(name);
      countFinish(name, run.phase ?? "Failed", run.completionTime);
    } else if (!run && input.deletedActive.has(name)) {
      active.delete(name);
      countFinish(name, "Cancelled", undefined);
      const entry = recent.get(name);
      if (entry) entry.phase = "Cancelled";
      events.push({
        type: "Warning",
        reason: "RunDeleted",
        message: `run ${name} was deleted before it finished`,
      });
    }
  }
  for (const run of runs.values()) if (recent.has(run.name) || active.has(run.name)) record(run);

  const activeRuns = (): string[] =>
    [...active.keys()].filter((n) => !runs.get(n)?.cancelRequested && !cancel.includes(n));
  const makeRun = (planned: PlannedRun): void => {
    create.push(planned);
    events.push(runCreatedEvent(planned));
    counts.total++;
    outcomes.created++;
    active.set(planned.name, undefined);
    recent.set(planned.name, {
      name: planned.name,
      scheduledTime: iso(planned.scheduledTime),
      phase: "Pending",
    });
  };

  // 3. The scheduled runs that are due.
  const startTime = spec.startTime ? new Date(spec.startTime) : undefined;
  const endTime = spec.endTime ? new Date(spec.endTime) : undefined;
  const jitter = spec.jitterSeconds ? { key: input.uid, seconds: spec.jitterSeconds } : undefined;
  const maxRunsLeft = spec.maxRuns === undefined ? Infinity : Math.max(0, spec.maxRuns - counts.total);
  if (schedule && !spec.suspend && maxRunsLeft > 0) {
    const due = missedRuns({
      schedule,
      lastScheduleTime: lastScheduleTime ?? input.creationTimestamp,
      now,
      startingDeadlineSeconds: spec.startingDeadlineSeconds,
      catchUp: spec.catchUp,
      limit: Math.min(CATCH_UP_MAX_RUNS, maxRunsLeft),
      startTime,
      endTime,
      jitter,
    });
    if (due.missed > 0) {
      counts.missed += due.missed;
      outcomes.missed += due.missed;
      const sample = due.missedTimes.map(iso).join(", ");
      events.push({
        type: "Warning",
        reason: "MissedRuns",
        message: `${due.missed} scheduled time(s) missed (past startingDeadlineSeconds or beyond catchUp ${spec.catchUp}); newest: ${sample}`,
      });
    }
    for (const t of due.toRun) {
      const dueAt =
        t.getTime() + (jitter ? jitterOffsetMs(jitter.key, jitter.seconds, t, schedule.next(t)) : 0);
      // A run is a catch-up when a newer fire time is due too, or when it is made well after its time.
      const newerDue = t !== due.toRun.at(-1);
      const trigger: Trigger =
        newerDue || now.getTime() - dueAt > CATCH_UP_LATENESS_MS ? "catch-up" : "schedule";
      const name = scheduledRunName(input.name, t);
      const running = activeRuns();
      if (spec.concurrencyPolicy === "Forbid" && running.length > 0) {
        counts.skipped++;
        outcomes.skipped++;
        events.push({
          type: "Normal",
          reason: "SkippedRun",
          message: `skipped the run for ${iso(t)}: concurrencyPolicy is Forbid and ${running.join(", ")} is still active`,
        });
      } else {
        if (spec.concurrencyPolicy === "Replace" && running.length > 0) {
          cancel.push(...running);
          outcomes.replaced += running.length;
          events.push({
            type: "Normal",
            reason: "ReplacedRun",
            message: `cancelling ${running.join(", ")}: concurrencyPolicy is Replace and ${name} is due`,
          });
        }
        makeRun({ name, scheduledTime: t, trigger });
      }
    }
    // Every due time was run, skipped or counted missed: the watermark moves past all of them.
    const newestHandled = [...due.toRun, ...due.missedTimes].reduce<Date | undefined>(
      (a, t) => (a === undefined || t > a ? t : a),
      undefined,
    );
    if (newestHandled && (!lastScheduleTime || newestHandled > lastScheduleTime))
      lastScheduleTime = newestHandled;
  }

  // 4. Run now: one extra run per distinct token, whatever the schedule and concurrency policy.
  const token = input.runNowToken;
  if (token !== undefined && token !== "" && token !== lastRunNowToken) {
    lastRunNowToken = token;
    makeRun({
      name: manualRunName(input.name, token),
      scheduledTime: now,
      trigger: "manual",
      runNowToken: token,
    });
  }

  // 5. The next run, or why there is none.
  let nextScheduleTime: string | undefined;
  let wakeAt: Date | undefined;
  let finished: string | undefined;
  if (schedule && !spec.suspend) {
    const next = nextRun({
      schedule,
      after: lastScheduleTime ?? input.creationTimestamp,
      startTime,
      endTime,
      maxRuns: spec.maxRuns,
      runsSoFar: counts.total,
      jitterSeconds: spec.jitterSeconds,
      jitterKey: input.uid,
    });
    if (next.kind === "scheduled") {
      nextScheduleTime = iso(next.scheduledTime);
      wakeAt = next.runAt;
    } else {
      finished = {
        MaxRunsReached: `maxRuns ${spec.maxRuns ?? ""} reached: no run is left`,
        EndTimePassed: `endTime ${spec.endTime ?? ""} has passed: no run is left`,
        NoMoreFireTimes: "the schedule has no further fire times",
      }[next.reason];
    }
  }

  // 6. History limits, over the finished runs that still exist (the newest are kept).
  const finishedRuns = [...runs.values()]
    .filter((r) => isFinished(r.phase) && !active.has(r.name))
    .sort((a, b) => b.scheduledTime.getTime() - a.scheduledTime.getTime());
  const succeeded = finishedRuns.filter((r) => r.phase === "Succeeded");
  const failed = finishedRuns.filter((r) => r.phase !== "Succeeded");
  // A run whose outcome this pass counts is kept until that count is written: deleted now, a lost
  // status write would leave it in status.active, gone, and it would be counted again as deleted.
  const prune = [
    ...succeeded.slice(spec.successfulRunsHistoryLimit).map((r) => r.name),
    ...failed.slice(spec.failedRunsHistoryLimit).map((r) => r.name),
  ].filter((name) => !countedNow.has(name));

  const recentRuns = [...recent.values()]
    .sort((a, b) => (a.scheduledTime < b.scheduledTime ? 1 : a.scheduledTime > b.scheduledTime ? -1 : 0))
    .slice(0, STATUS_LIMITS.recentRuns);
  const activeList = [...active.entries()].map(([name, uid]) => (uid ? { name, uid } : { name }));

  const status: PeriodicTaskStatus = {
    ...(nextScheduleTime ? { nextScheduleTime } : {}),
    ...(lastScheduleTime ? { lastScheduleTime: iso(lastScheduleTime) } : {}),
    ...(lastSuccessfulTime ? { lastSuccessfulTime } : {}),
    active: activeList.slice(0, ACTIVE_LIST_MAX),
    activeCount: activeList.length,
    runs: counts,
    recentRuns,
    ...(lastRunNowToken !== undefined ? { lastRunNowToken } : {}),
    conditions: prev.conditions ?? [],
    observedGeneration: input.generation,
  };
  return { create, cancel, prune, events, status, wakeAt, outcomes, finished };
}
