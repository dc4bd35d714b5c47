import type { CompiledSchedule } from "./compile.ts";
import { jitterOffsetMs } from "./jitter.ts";

export type CatchUpPolicy = "Latest" | "All";

export interface MissedRunsInput {
  readonly schedule: CompiledSchedule;
  /** The newest fire time already handled; the object's creation time when it never ran. */
  readonly lastScheduleTime: Date;
  readonly now: Date;
  /** A run may start at most this many seconds after it was due; older fire times are missed. */
  readonly startingDeadlineSeconds?: number | undefined;
  readonly catchUp: CatchUpPolicy;
  /** The most runs `All` makes at once (product.md: 100). */
  readonly limit?: number | undefined;
  /** `spec.startTime` / `spec.endTime`: fire times outside them are neither run nor missed. */
  readonly startTime?: Date | undefined;
  readonly endTime?: Date | undefined;
  /**
   * `spec.jitterSeconds`: a fire time is due at scheduled time + jitter. With it, the newest fire
   * time may not be due yet; it is then neither run nor missed (it is the next run).
   */
  readonly jitter?: { readonly key: string; readonly seconds: number } | undefined;
}

export interface MissedRuns {
  /** Scheduled times to run now, oldest first. */
  readonly toRun: Date[];
  /** How many due fire times are not in `toRun`; each is a missed run. */
  readonly missed: number;
  /** The newest missed fire times (at most `MISSED_SAMPLE`), oldest first, for Events. */
  readonly missedTimes: Date[];
}

export const DEFAULT_CATCH_UP_LIMIT = 100;
export const MISSED_SAMPLE = 10;

/**
 * Which fire times to run now and how many were missed, for the fire times t with
 * lastScheduleTime < t ≤ now that are due.
 *
 * The work is bounded however long the gap: the total is counted by arithmetic
 * (CompiledSchedule.countBetween: whole days × fires per day, per daylight-saving segment), and only
 * the fire times that are returned are enumerated, walking backwards from `now` with `prev` (at most
 * `limit` + MISSED_SAMPLE steps). A `* * * * * *` schedule a year behind costs microseconds, not
 * 31 million iterations.
 *
 * - Latest: the newest due fire time, if it is inside the deadline; every other one is missed.
 * - All: the newest due fire times inside the deadline, at most `limit`; the rest are missed. The
 *   newest are kept because they are the ones still worth running when more than `limit` piled up.
 */
export function missedRuns(input: MissedRunsInput): MissedRuns {
  const { schedule } = input;
  const limit = Math.max(0, Math.floor(input.limit ?? DEFAULT_CATCH_UP_LIMIT));
  let after = input.lastScheduleTime.getTime();
  if (input.startTime !== undefined) after = Math.max(after, input.startTime.getTime() - 1);
  let until = input.now.getTime();
  if (input.endTime !== undefined) until = Math.min(until, input.endTime.getTime());

  const dueAt = (t: Date): number =>
    input.jitter === undefined
      ? t.getTime()
      : t.getTime() + jitterOffsetMs(input.jitter.key, input.jitter.seconds, t, schedule.next(t));

  // Only the newest fire time can be not yet due: jitter never reaches the next fire time.
  let newest = until >= after ? schedule.prev(new Date(until)) : null;
  if (newest !== null && newest.getTime() > after && dueAt(newest) > input.now.getTime()) {
    until = newest.getTime() - 1;
    newest = schedule.prev(new Date(until));
  }
  if (newest === null || newest.getTime() <= after) return { toRun: [], missed: 0, missedTimes: [] };

  const total = schedule.countBetween(new Date(after), new Date(until));
  const deadline = input.startingDeadlineSeconds;
  const earliestDue = deadline === undefined ? -Infinity : input.now.getTime() - deadline * 1000;
  const wanted = input.catchUp === "Latest" ? Math.min(1, limit) : limit;

  const toRun: Date[] = [];
  const missedTimes: Date[] = [];
  const older = (t: Date): Date | null => schedule.prev(new Date(t.getTime() - 1));
  let t: Date | null = newest;
  while (t !== null && t.getTime() > after && toRun.length < wanted && dueAt(t) >= earliestDue) {
    toRun.push(t);
    t = older(t);
  }
  while (t !== null && t.getTime() > after && missedTimes.length < MISSED_SAMPLE) {
    missedTimes.push(t);
    t = older(t);
  }
  toRun.reverse();
  missedTimes.reverse();
  return { toRun, missed: total - toRun.length, missedTimes };
}
