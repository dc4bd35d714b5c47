/**
 * cadent's schedule engine: pure functions of their inputs (no clock, no I/O). See
 * docs/schedules.md for the syntax and the daylight-saving, jitter and catch-up rules.
 */
import { clearFieldCaches } from "./fields.ts";
import { clearZoneCaches } from "./zone.ts";

export { compileSchedule, type CompiledSchedule, type ScheduleInput } from "./compile.ts";
export { ScheduleError, type ScheduleErrorReason } from "./errors.ts";
export { jitterOffsetMs } from "./jitter.ts";
export {
  DEFAULT_CATCH_UP_LIMIT,
  MISSED_SAMPLE,
  missedRuns,
  type CatchUpPolicy,
  type MissedRuns,
  type MissedRunsInput,
} from "./missed.ts";
export { nextRun, type FinishedReason, type NextRun, type NextRunInput } from "./next.ts";

/**
 * Drops the process-wide caches (parsed fields, time-zone transition tables). They only ever hold
 * immutable, derived data, so this never changes a result; benchmarks use it to measure cold starts.
 */
export function clearScheduleCaches(): void {
  clearFieldCaches();
  clearZoneCaches();
}
