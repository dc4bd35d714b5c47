import { describe, expect, test } from "vitest";
import type { PeriodicTaskStatus, TaskStatus } from "../../../src/api/index.ts";
import type { Plan, PlannedEvent, PlannedRun } from "../../../src/controllers/periodic-task-plan.ts";
import {
  periodicTaskChange,
  ROUTINE_WRITE_DELAY_MS,
  StatusCoalescer,
  taskChange,
  type Change,
} from "../../../src/controllers/status-coalescing.ts";

// Named instants, in ms: a change first seen at SEEN waits until SEEN + ROUTINE_WRITE_DELAY_MS.
const SEEN = Date.parse("2027-01-01T10:00:00Z");
const ONE_SECOND_LATER = SEEN + 1_000;
const JUST_BEFORE_DUE = SEEN + ROUTINE_WRITE_DELAY_MS - 1;
const DUE = SEEN + ROUTINE_WRITE_DELAY_MS;

describe("StatusCoalescer", () => {
  test.each<{ name: string; steps: [Change, number][]; expected: ReturnType<StatusCoalescer["decide"]>[] }>([
    {
      name: "an urgent change is written at once",
      steps: [["urgent", SEEN]],
      expected: [{ write: true }],
    },
    {
      name: "no change is neither written nor looked at again",
      steps: [["none", SEEN]],
      expected: [{ write: false, lookAgainAt: undefined }],
    },
    {
      name: "a routine change waits until the delay after it was first seen, then is written",
      steps: [
        ["routine", SEEN],
        ["routine", ONE_SECOND_LATER],
        ["routine", JUST_BEFORE_DUE],
        ["routine", DUE],
      ],
      expected: [
        { write: false, lookAgainAt: DUE },
        { write: false, lookAgainAt: DUE },
        { write: false, lookAgainAt: DUE },
        { write: true },
      ],
    },
    {
      name: "an urgent change while a routine one waits writes both at once",
      steps: [
        ["routine", SEEN],
        ["urgent", ONE_SECOND_LATER],
      ],
      expected: [{ write: false, lookAgainAt: DUE }, { write: true }],
    },
    {
      name: "a routine change that went away (the world came back to the written status) stops waiting",
      steps: [
        ["routine", SEEN],
        ["none", ONE_SECOND_LATER],
        ["routine", JUST_BEFORE_DUE],
      ],
      expected: [
        { write: false, lookAgainAt: DUE },
        { write: false, lookAgainAt: undefined },
        { write: false, lookAgainAt: JUST_BEFORE_DUE + ROUTINE_WRITE_DELAY_MS },
      ],
    },
  ])("$name", ({ steps, expected }) => {
    const coalescer = new StatusCoalescer();
    expect(steps.map(([change, now]) => coalescer.decide("ns/report", change, now))).toEqual(expected);
  });

  test("a written status starts the next wait afresh", () => {
    const coalescer = new StatusCoalescer();
    coalescer.decide("ns/report", "routine", SEEN);
    coalescer.settled("ns/report");
    expect(coalescer.decide("ns/report", "routine", JUST_BEFORE_DUE)).toEqual({
      write: false,
      lookAgainAt: JUST_BEFORE_DUE + ROUTINE_WRITE_DELAY_MS,
    });
  });

  test("objects wait apart", () => {
    const coalescer = new StatusCoalescer();
    coalescer.decide("ns/a", "routine", SEEN);
    expect(coalescer.decide("ns/b", "routine", DUE)).toEqual({
      write: false,
      lookAgainAt: DUE + ROUTINE_WRITE_DELAY_MS,
    });
    expect(coalescer.decide("ns/a", "routine", DUE)).toEqual({ write: true });
  });
});

const ready = (message: string, status: "True" | "False" = "True", reason = "Scheduled") => ({
  type: "Ready",
  status,
  reason,
  message,
  lastTransitionTime: "2027-01-01T09:00:00Z",
  observedGeneration: 2,
});

const RUNS = { total: 3, succeeded: 2, failed: 0, missed: 0, skipped: 0 };
const ACTIVE_RUN = {
  name: "report-1798797600",
  scheduledTime: "2027-01-01T10:00:00Z",
  phase: "Running" as const,
};

/** A PeriodicTask every 10 s whose run at 10:00:00 is active and two before it succeeded. */
const WRITTEN: PeriodicTaskStatus = {
  lastScheduleTime: "2027-01-01T10:00:00Z",
  nextScheduleTime: "2027-01-01T10:00:10Z",
  active: [{ name: "report-1798797600", uid: "u0" }],
  activeCount: 1,
  runs: RUNS,
  recentRuns: [ACTIVE_RUN],
  conditions: [ready("next run at 2027-01-01T10:00:10Z")],
  observedGeneration: 2,
};

/** The next run made on time, the active one succeeded. */
const NEXT_RUN_MADE: PeriodicTaskStatus = {
  ...WRITTEN,
  lastScheduleTime: "2027-01-01T10:00:10Z",
  nextScheduleTime: "2027-01-01T10:00:20Z",
  lastSuccessfulTime: "2027-01-01T10:00:01Z",
  active: [{ name: "report-1798797610", uid: "u1" }],
  runs: { ...RUNS, total: 4, succeeded: 3 },
  recentRuns: [
    { name: "report-1798797610", scheduledTime: "2027-01-01T10:00:10Z", phase: "Pending" },
    { name: "report-1798797600", scheduledTime: "2027-01-01T10:00:00Z", phase: "Succeeded" },
  ],
  conditions: [ready("next run at 2027-01-01T10:00:20Z")],
};

const scheduled: PlannedRun = {
  name: "report-1798797610",
  scheduledTime: new Date("2027-01-01T10:00:10Z"),
  trigger: "schedule",
};
const runCreated: PlannedEvent = {
  type: "Normal",
  reason: "RunCreated",
  message: "created run report-1798797610",
  run: scheduled.name,
};
type Decisions = Pick<Plan, "create" | "cancel" | "events">;
const NOTHING: Decisions = { create: [], cancel: [], events: [] };
const MADE_ON_TIME: Decisions = { create: [scheduled], cancel: [], events: [runCreated] };

describe("periodicTaskChange", () => {
  test.each<{
    name: string;
    prev?: PeriodicTaskStatus;
    next: PeriodicTaskStatus;
    plan: Decisions;
    change: Change;
  }>([
    { name: "the same status is no change", next: WRITTEN, plan: NOTHING, change: "none" },
    {
      name: "a run made on time while another succeeded is routine",
      next: NEXT_RUN_MADE,
      plan: MADE_ON_TIME,
      change: "routine",
    },
    {
      name: "a run that succeeded (its recorded phase changed) is routine",
      next: { ...WRITTEN, recentRuns: [{ ...ACTIVE_RUN, phase: "Succeeded" }] },
      plan: NOTHING,
      change: "routine",
    },
    {
      name: "a catch-up run is urgent",
      next: NEXT_RUN_MADE,
      plan: { ...MADE_ON_TIME, create: [{ ...scheduled, trigger: "catch-up" }] },
      change: "urgent",
    },
    {
      name: "a manual run is urgent",
      next: { ...NEXT_RUN_MADE, lastRunNowToken: "deploy-42" },
      plan: { ...MADE_ON_TIME, create: [{ ...scheduled, trigger: "manual", runNowToken: "deploy-42" }] },
      change: "urgent",
    },
    {
      name: "an adopted manual run (a new run-now token) is urgent",
      next: { ...WRITTEN, lastRunNowToken: "deploy-42" },
      plan: NOTHING,
      change: "urgent",
    },
    {
      name: "a missed time is urgent",
      next: { ...NEXT_RUN_MADE, runs: { ...RUNS, total: 4, succeeded: 3, missed: 1 } },
      plan: MADE_ON_TIME,
      change: "urgent",
    },
    {
      name: "a time skipped by Forbid is urgent",
      next: { ...WRITTEN, lastScheduleTime: "2027-01-01T10:00:10Z", runs: { ...RUNS, skipped: 1 } },
      plan: { ...NOTHING, events: [{ type: "Normal", reason: "SkippedRun", message: "skipped" }] },
      change: "urgent",
    },
    {
      name: "a failed run is urgent",
      next: { ...WRITTEN, active: [], activeCount: 0, runs: { ...RUNS, failed: 1 } },
      plan: { ...NOTHING, events: [{ type: "Warning", reason: "RunFailed", message: "failed" }] },
      change: "urgent",
    },
    {
      name: "a replaced run is urgent",
      next: NEXT_RUN_MADE,
      plan: { ...MADE_ON_TIME, cancel: ["report-1798797600"] },
      change: "urgent",
    },
    {
      name: "a new generation is urgent",
      next: { ...WRITTEN, observedGeneration: 3 },
      plan: NOTHING,
      change: "urgent",
    },
    {
      name: "Ready turning False is urgent",
      next: { ...WRITTEN, conditions: [ready("maxRuns 4 reached", "False", "Finished")] },
      plan: NOTHING,
      change: "urgent",
    },
    {
      name: "a first status (no condition yet) is urgent",
      prev: {},
      next: WRITTEN,
      plan: NOTHING,
      change: "urgent",
    },
  ])("$name", ({ prev = WRITTEN, next, plan, change }) => {
    expect(periodicTaskChange(prev, next, plan)).toBe(change);
  });
});

const JOB_CREATED = {
  type: "Progressing",
  status: "True" as const,
  reason: "JobCreated",
  message: "created Job report-1798797600",
  lastTransitionTime: "2027-01-01T10:00:00Z",
};
const QUEUED_JOB: TaskStatus = {
  phase: "Queued",
  taskId: "t1",
  queuedTime: "2027-01-01T10:00:00Z",
  jobName: "report-1798797600",
  attempts: 0,
  conditions: [JOB_CREATED],
};
const progressing = (reason: string, message: string) => [{ ...JOB_CREATED, reason, message }];

describe("taskChange", () => {
  test.each<{ name: string; prev: TaskStatus; next: TaskStatus; change: Change }>([
    { name: "the same status is no change", prev: QUEUED_JOB, next: QUEUED_JOB, change: "none" },
    {
      name: "a queued Job's start time and attempt count are routine",
      prev: QUEUED_JOB,
      next: {
        ...QUEUED_JOB,
        startTime: "2027-01-01T10:00:01Z",
        attempts: 1,
        conditions: progressing("JobCreated", "Job report-1798797600 is waiting for its Pod"),
      },
      change: "routine",
    },
    {
      name: "Queued to Running is urgent",
      prev: QUEUED_JOB,
      next: { ...QUEUED_JOB, phase: "Running", conditions: progressing("Running", "running") },
      change: "urgent",
    },
    {
      name: "the first start (nothing queued yet) is urgent",
      prev: { phase: "Pending" },
      next: QUEUED_JOB,
      change: "urgent",
    },
    {
      name: "a broker outage is urgent",
      prev: QUEUED_JOB,
      next: { ...QUEUED_JOB, conditions: progressing("BrokerUnavailable", "Redis is unavailable") },
      change: "urgent",
    },
    {
      name: "a finish is urgent",
      prev: QUEUED_JOB,
      next: { ...QUEUED_JOB, phase: "Succeeded", completionTime: "2027-01-01T10:00:02Z" },
      change: "urgent",
    },
    {
      name: "a retry (Retrying) is urgent",
      prev: { ...QUEUED_JOB, phase: "Running" },
      next: { ...QUEUED_JOB, phase: "Retrying", error: { reason: "TaskFailed", message: "boom" } },
      change: "urgent",
    },
  ])("$name", ({ prev, next, change }) => {
    expect(taskChange(prev, next)).toBe(change);
  });
});
