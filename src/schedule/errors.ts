/** Why a schedule was refused; these are the `reason`s of a PeriodicTask's `Ready=False` condition. */
export type ScheduleErrorReason = "InvalidSchedule" | "UnknownTimeZone";

/**
 * The only error the schedule engine throws for bad input. It is permanent: the same spec will
 * fail the same way, so callers report it (condition + Warning Event) instead of retrying.
 */
export class ScheduleError extends Error {
  readonly reason: ScheduleErrorReason;

  constructor(reason: ScheduleErrorReason, message: string) {
    super(message);
    this.name = "ScheduleError";
    this.reason = reason;
  }
}

export function invalidSchedule(message: string): ScheduleError {
  return new ScheduleError("InvalidSchedule", message);
}
