import type { CompiledSchedule } from "./compile.ts";
import { jitterOffsetMs } from "./jitter.ts";

export interface NextRunInput {
  readonly schedule: CompiledSchedule;
  /** Fire times at or before this are past: usually max(now, lastScheduleTime). */
  readonly after: Date;
  /** `spec.startTime`: no fire time before it. */
  readonly startTime?: Date | undefined;
  /** `spec.endTime`: no fire time after it. */
  readonly endTime?: Date | undefined;
  /** `spec.maxRuns`, with `runsSoFar` (status.runs.total): none once reached. */
  readonly maxRuns?: number | undefined;
  readonly runsSoFar?: number | undefined;
  /** `spec.jitterSeconds`, hashed from `jitterKey` (the object's uid or namespace/name). */
  readonly jitterSeconds?: number | undefined;
  readonly jitterKey?: string | undefined;
}

export type FinishedReason = "MaxRunsReached" | "EndTimePassed" | "NoMoreFireTimes";

export type NextRun =
  /**
   * `scheduledTime` names the run and is what `status.nextScheduleTime` shows; `runAt` is when to
   * create it (scheduledTime + jitter).
   */
  | { readonly kind: "scheduled"; readonly scheduledTime: Date; readonly runAt: Date }
  | { readonly kind: "finished"; readonly reason: FinishedReason };

/** The next run of a PeriodicTask, with startTime, endTime, maxRuns and jitter applied. */
export function nextRun(input: NextRunInput): NextRun {
  const { schedule, maxRuns, runsSoFar = 0 } = input;
  if (maxRuns !== undefined && runsSoFar >= maxRuns) return { kind: "finished", reason: "MaxRunsReached" };
  let after = input.after.getTime();
  if (input.startTime !== undefined) after = Math.max(after, input.startTime.getTime() - 1);
  const scheduledTime = schedule.next(new Date(after));
  if (scheduledTime === null) return { kind: "finished", reason: "NoMoreFireTimes" };
  if (input.endTime !== undefined && scheduledTime.getTime() > input.endTime.getTime()) {
    return { kind: "finished", reason: "EndTimePassed" };
  }
  const delay = jitterOffsetMs(
    input.jitterKey ?? "",
    input.jitterSeconds ?? 0,
    scheduledTime,
    input.jitterSeconds ? schedule.next(scheduledTime) : null,
  );
  return { kind: "scheduled", scheduledTime, runAt: new Date(scheduledTime.getTime() + delay) };
}
