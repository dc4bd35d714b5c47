import fc from "fast-check";
import { describe, expect, test } from "vitest";
import type { z } from "zod";
import {
  FINISHED_TASK_PHASES,
  periodicTaskSpecSchema,
  periodicTaskStatusSchema,
  type PeriodicTaskSpecInput,
  type PeriodicTaskStatus,
  type TaskPhase,
} from "../../../src/api/index.ts";
import {
  CATCH_UP_LATENESS_MS,
  planPeriodicTask,
  type Plan,
  type PlannedRun,
  type RunView,
} from "../../../src/controllers/periodic-task-plan.ts";
import { manualRunName, scheduledRunName } from "../../../src/controllers/runs.ts";
import { compileSchedule, jitterOffsetMs } from "../../../src/schedule/index.ts";

// The PeriodicTask every case plans for: "report" in namespace "default", hourly at minute 0, made
// at CREATED. Named instants are on 2027-01-01 UTC unless a case says otherwise.
const PT = "report";
const UID = "7d3f0c2e-1111-4222-8333-444455556666";
const GENERATION = 4;
const TEMPLATE = { spec: { task: "app.tasks.report" } };

const at = (hhmmss: string, day = "2027-01-01"): Date =>
  new Date(`${day}T${hhmmss.length === 5 ? `${hhmmss}:00` : hhmmss}Z`);
const plus = (t: Date, ms: number): Date => new Date(t.getTime() + ms);
const iso = (t: Date): string => t.toISOString().replace(/\.\d{3}Z$/, "Z");

const CREATED = at("09:30");
const JUST_BEFORE_FIRST = at("09:59:59");
const FIRST = at("10:00");
const SECOND = at("11:00");
const THIRD = at("12:00");
const FOURTH = at("13:00");

type StatusInput = z.input<typeof periodicTaskStatusSchema>;

interface Scenario {
  now: Date;
  spec?: Partial<PeriodicTaskSpecInput>;
  status?: StatusInput;
  runs?: RunView[];
  deletedActive?: string[];
  runNowToken?: string;
  /** The schedule did not compile: the planner gets none. */
  invalidSchedule?: boolean;
  creationTimestamp?: Date;
}

/** The spec as the reconciler sees it: parsed by the API schema, so every default applies. */
function specOf(fields: Partial<PeriodicTaskSpecInput> = {}) {
  return periodicTaskSpecSchema.parse({ schedule: "0 * * * *", taskTemplate: TEMPLATE, ...fields });
}

function plan(s: Scenario): Plan {
  const spec = specOf(s.spec);
  const creationTimestamp = s.creationTimestamp ?? CREATED;
  return planPeriodicTask({
    name: PT,
    uid: UID,
    generation: GENERATION,
    creationTimestamp,
    runNowToken: s.runNowToken,
    spec,
    status: periodicTaskStatusSchema.parse(s.status ?? {}),
    schedule: s.invalidSchedule
      ? undefined
      : compileSchedule({
          expression: spec.schedule,
          timeZone: spec.timeZone,
          hashKey: `default/${PT}`,
          createdAt: creationTimestamp,
        }),
    runs: s.runs ?? [],
    deletedActive: new Set(s.deletedActive ?? []),
    now: s.now,
  });
}

const nameAt = (t: Date): string => scheduledRunName(PT, t);

/** A scheduled run's Task as the reconciler reads it from the cache. */
function scheduledRun(
  t: Date,
  phase: TaskPhase | undefined = "Running",
  more: Partial<RunView> = {},
): RunView {
  const name = nameAt(t);
  return {
    name,
    uid: `uid-${name}`,
    trigger: "schedule",
    scheduledTime: t,
    runNowToken: undefined,
    phase,
    startTime: phase === undefined || phase === "Pending" ? undefined : iso(plus(t, 1000)),
    completionTime: phase !== undefined && isFinished(phase) ? iso(plus(t, 60_000)) : undefined,
    cancelRequested: false,
    ...more,
  };
}

function manualRun(token: string, requestedAt: Date, phase: TaskPhase | undefined = "Running"): RunView {
  return {
    ...scheduledRun(requestedAt, phase),
    name: manualRunName(PT, token),
    uid: `uid-${manualRunName(PT, token)}`,
    trigger: "manual",
    runNowToken: token,
  };
}

function isFinished(phase: TaskPhase | undefined): boolean {
  return phase !== undefined && (FINISHED_TASK_PHASES as readonly TaskPhase[]).includes(phase);
}

/** status.runs with the counters a case cares about; the rest are 0. */
const counts = (c: Partial<Record<"total" | "succeeded" | "failed" | "missed" | "skipped", number>>) => ({
  total: 0,
  succeeded: 0,
  failed: 0,
  missed: 0,
  skipped: 0,
  ...c,
});

/** A status that records `runs` as made and still active, newest lastScheduleTime first. */
function committedActive(runs: RunView[], extra: StatusInput = {}): StatusInput {
  const scheduled = runs.filter((r) => r.trigger !== "manual").map((r) => r.scheduledTime.getTime());
  return {
    ...(scheduled.length ? { lastScheduleTime: iso(new Date(Math.max(...scheduled))) } : {}),
    active: runs.map((r) => ({ name: r.name, ...(r.uid ? { uid: r.uid } : {}) })),
    activeCount: runs.length,
    runs: { total: runs.length },
    ...extra,
  };
}

const createdNames = (p: Plan): string[] => p.create.map((c) => c.name);
const reasons = (p: Plan): string[] => p.events.map((e) => e.reason);

/** What the reconciler does with a plan, in a world where every write succeeds: the next pass's input. */
function carryOut(p: Plan, runs: RunView[]): RunView[] {
  const made = p.create.map((c: PlannedRun): RunView => ({
    name: c.name,
    uid: `uid-${c.name}`,
    trigger: c.trigger,
    scheduledTime: c.scheduledTime,
    runNowToken: c.runNowToken,
    phase: "Pending",
    startTime: undefined,
    completionTime: undefined,
    cancelRequested: false,
  }));
  return [...runs, ...made]
    .filter((r) => !p.prune.includes(r.name))
    .map((r) => (p.cancel.includes(r.name) ? { ...r, cancelRequested: true } : r));
}

const finish = (runs: RunView[], name: string, phase: TaskPhase, when: Date): RunView[] =>
  runs.map((r) => (r.name === name ? { ...r, phase, completionTime: iso(when) } : r));

describe("planPeriodicTask: the first run after creation", () => {
  test.each<[string, Date, { name: string; trigger: string }[]]>([
    ["nothing is made right after creation", CREATED, []],
    ["nothing is made a second before the first fire time", JUST_BEFORE_FIRST, []],
    [
      "the run is made exactly at its time, named <pt>-<unix seconds>",
      FIRST,
      [{ name: "report-1798797600", trigger: "schedule" }],
    ],
    [
      "a run made 30 s late is still an on-time run (CATCH_UP_LATENESS_MS is exclusive)",
      plus(FIRST, CATCH_UP_LATENESS_MS),
      [{ name: "report-1798797600", trigger: "schedule" }],
    ],
    [
      "a run made more than 30 s late is a catch-up run",
      plus(FIRST, CATCH_UP_LATENESS_MS + 1),
      [{ name: "report-1798797600", trigger: "catch-up" }],
    ],
  ])("%s", (_case, now, expected) => {
    const p = plan({ now });
    expect(p.create.map(({ name, trigger }) => ({ name, trigger }))).toEqual(expected);
    expect(p.create.every((c) => c.scheduledTime.getTime() === FIRST.getTime())).toBe(true);
  });

  test("before the first fire time: the status shows the next run and the reconciler wakes at it", () => {
    const p = plan({ now: JUST_BEFORE_FIRST });
    expect(p.wakeAt).toEqual(FIRST);
    expect(p.status).toEqual({
      nextScheduleTime: "2027-01-01T10:00:00Z",
      active: [],
      activeCount: 0,
      runs: counts({}),
      recentRuns: [],
      conditions: [],
      observedGeneration: GENERATION,
    });
    expect(p.events).toEqual([]);
    expect(p.finished).toBeUndefined();
  });

  test("at the first fire time: the run is made and the whole status records it", () => {
    const p = plan({ now: FIRST });
    expect(p.create).toEqual([{ name: "report-1798797600", scheduledTime: FIRST, trigger: "schedule" }]);
    expect(p.status).toEqual({
      nextScheduleTime: "2027-01-01T11:00:00Z",
      lastScheduleTime: "2027-01-01T10:00:00Z",
      // The uid is known only once the Task exists; the reconciler fills it in.
      active: [{ name: "report-1798797600" }],
      activeCount: 1,
      runs: counts({ total: 1 }),
      recentRuns: [{ name: "report-1798797600", scheduledTime: "2027-01-01T10:00:00Z", phase: "Pending" }],
      conditions: [],
      observedGeneration: GENERATION,
    });
    expect(p.wakeAt).toEqual(SECOND);
    expect(p.events).toEqual([
      {
        type: "Normal",
        reason: "RunCreated",
        message: "created run report-1798797600 for 2027-01-01T10:00:00Z",
        run: "report-1798797600",
      },
    ]);
    expect(p.outcomes).toEqual({ created: 1, missed: 0, skipped: 0, replaced: 0, succeeded: 0, failed: 0 });
  });

  test("the same reconcile again, over its own status and the run it made, makes nothing more", () => {
    const first = plan({ now: FIRST });
    const again = plan({ now: plus(FIRST, 5000), status: first.status, runs: carryOut(first, []) });
    expect(again.create).toEqual([]);
    expect(again.status.runs).toEqual(counts({ total: 1 }));
    expect(again.status.active?.map((a) => a.name)).toEqual([nameAt(FIRST)]);
  });

  test.each<[string, Scenario, Date | undefined]>([
    ["wakeAt is the first fire time before the first run", { now: CREATED }, FIRST],
    ["wakeAt is the next fire time after a run", { now: plus(FIRST, 1) }, SECOND],
    [
      "wakeAt is the next fire time when nothing is due",
      { now: at("10:30"), status: committedActive([scheduledRun(FIRST)]), runs: [scheduledRun(FIRST)] },
      SECOND,
    ],
    [
      "wakeAt is the next fire time of a six-field schedule",
      { now: at("10:00:07"), spec: { schedule: "*/15 * * * * *" } },
      at("10:00:15"),
    ],
    ["wakeAt is undefined while suspended", { now: CREATED, spec: { suspend: true } }, undefined],
    ["wakeAt is undefined without a valid schedule", { now: CREATED, invalidSchedule: true }, undefined],
  ])("%s", (_case, scenario, wakeAt) => {
    expect(plan(scenario).wakeAt).toEqual(wakeAt);
  });

  test("observedGeneration is the generation planned for, and conditions are carried over untouched", () => {
    const conditions = [
      {
        type: "Ready",
        status: "True" as const,
        reason: "Scheduled",
        message: "next run at 2027-01-01T10:00:00Z",
        lastTransitionTime: "2027-01-01T09:30:00Z",
        observedGeneration: 3,
      },
    ];
    const p = plan({ now: CREATED, status: { observedGeneration: 3, conditions } });
    expect(p.status.observedGeneration).toBe(GENERATION);
    expect(p.status.conditions).toEqual(conditions);
  });
});

describe("planPeriodicTask: the status is the commit log", () => {
  describe("a Task that exists but is not in the status (a crash between create and status write) is adopted", () => {
    test.each<[string, TaskPhase | undefined, { active: number; succeeded: number; failed: number }]>([
      [
        "a scheduled run still pending is adopted as active",
        undefined,
        { active: 1, succeeded: 0, failed: 0 },
      ],
      [
        "a scheduled run still running is adopted as active",
        "Running",
        { active: 1, succeeded: 0, failed: 0 },
      ],
      [
        "a scheduled run that already succeeded is counted succeeded",
        "Succeeded",
        { active: 0, succeeded: 1, failed: 0 },
      ],
      [
        "a scheduled run that already failed is counted failed",
        "Failed",
        { active: 0, succeeded: 0, failed: 1 },
      ],
    ])("%s, counted once and not made again", (_case, phase, expected) => {
      const lost = scheduledRun(FIRST, phase);
      const p = plan({ now: plus(FIRST, 20_000), runs: [lost] });
      expect(p.create).toEqual([]);
      expect(p.status.lastScheduleTime).toBe(iso(FIRST));
      expect(p.status.runs).toEqual(
        counts({ total: 1, succeeded: expected.succeeded, failed: expected.failed }),
      );
      expect(p.status.activeCount).toBe(expected.active);
      expect(p.status.active).toEqual(expected.active ? [{ name: lost.name, uid: lost.uid }] : []);
      expect(p.status.recentRuns?.map((r) => r.name)).toEqual([lost.name]);

      const again = plan({ now: plus(FIRST, 40_000), status: p.status, runs: [lost] });
      expect(again.create).toEqual([]);
      expect(again.status.runs).toEqual(p.status.runs);
    });

    test("a manual run is adopted: counted once, its token recorded, not made again", () => {
      const lost = manualRun("deploy-42", at("10:20"));
      const p = plan({
        now: at("10:21"),
        runNowToken: "deploy-42",
        status: committedActive([], { lastScheduleTime: iso(FIRST), runs: { total: 1, succeeded: 1 } }),
        runs: [lost],
      });
      expect(p.create).toEqual([]);
      expect(p.status.lastRunNowToken).toBe("deploy-42");
      expect(p.status.runs).toEqual(counts({ total: 2, succeeded: 1 }));
      expect(p.status.active).toEqual([{ name: lost.name, uid: lost.uid }]);
      // Adopting a manual run does not move the schedule's watermark.
      expect(p.status.lastScheduleTime).toBe(iso(FIRST));

      const again = plan({ now: at("10:22"), runNowToken: "deploy-42", status: p.status, runs: [lost] });
      expect(again.create).toEqual([]);
      expect(again.status.runs).toEqual(p.status.runs);
    });

    test("every run of a lost catch-up is adopted, oldest first, and the watermark moves to the newest", () => {
      const lost = [scheduledRun(FIRST, "Succeeded"), scheduledRun(SECOND), scheduledRun(THIRD)];
      const p = plan({ now: at("12:10"), spec: { catchUp: "All" }, runs: [...lost].reverse() });
      expect(p.create).toEqual([]);
      expect(p.status.lastScheduleTime).toBe(iso(THIRD));
      expect(p.status.runs).toEqual(counts({ total: 3, succeeded: 1 }));
      expect(p.status.active?.map((a) => a.name)).toEqual([nameAt(SECOND), nameAt(THIRD)]);
    });

    test("the missed times a lost status write had counted are counted again, once", () => {
      // A reconcile at 12:10 made the 12:00 run (catchUp Latest) and counted 10:00 and 11:00 as
      // missed, then its status write was lost. The run is adopted; the two missed times are not
      // silently dropped.
      const lost = plan({ now: at("12:10") });
      expect(lost.status.runs).toEqual(counts({ total: 1, missed: 2 }));
      const next = plan({ now: at("12:11"), runs: carryOut(lost, []) });
      expect(next.create).toEqual([]);
      expect(next.status.runs).toEqual(counts({ total: 1, missed: 2 }));
      expect(next.events).toEqual([expect.objectContaining({ type: "Warning", reason: "MissedRuns" })]);
      const settled = plan({
        now: at("12:12"),
        status: next.status,
        runs: carryOut(next, carryOut(lost, [])),
      });
      expect(settled.status.runs).toEqual(counts({ total: 1, missed: 2 }));
      expect(settled.events).toEqual([]);
    });

    test("a scheduled run at or before lastScheduleTime that is not active was counted already", () => {
      const old = scheduledRun(FIRST, "Succeeded");
      const p = plan({
        now: at("10:30"),
        status: { lastScheduleTime: iso(FIRST), runs: { total: 1, succeeded: 1 } },
        runs: [old],
      });
      expect(p.status.runs).toEqual(counts({ total: 1, succeeded: 1 }));
      expect(p.status.activeCount).toBe(0);
    });
  });

  describe("a run in status.active is counted finished exactly once, when it leaves active", () => {
    test.each<[TaskPhase, "succeeded" | "failed"]>([
      ["Succeeded", "succeeded"],
      ["Failed", "failed"],
      ["Expired", "failed"],
      ["Cancelled", "failed"],
    ])(
      "a run that ended %s is counted %s once, however often the planner runs over its own status",
      (phase, counter) => {
        const made = plan({ now: FIRST });
        const done = finish(carryOut(made, []), nameAt(FIRST), phase, at("10:05"));
        const first = plan({ now: at("10:06"), status: made.status, runs: done });
        const second = plan({ now: at("10:07"), status: first.status, runs: done });
        const third = plan({ now: at("10:08"), status: second.status, runs: done });
        for (const p of [first, second, third]) {
          expect(p.status.runs).toEqual(counts({ total: 1, [counter]: 1 }));
          expect(p.status.active).toEqual([]);
          expect(p.status.activeCount).toBe(0);
          expect(p.status.recentRuns).toEqual([
            expect.objectContaining({ name: nameAt(FIRST), phase, completionTime: "2027-01-01T10:05:00Z" }),
          ]);
        }
        expect(first.outcomes[counter]).toBe(1);
        expect(second.outcomes[counter]).toBe(0);
        expect(third.events).toEqual([]);
      },
    );

    test("a succeeded run sets lastSuccessfulTime to its completion time; a failed one does not", () => {
      const runs = [scheduledRun(FIRST, "Succeeded"), scheduledRun(SECOND, "Failed")];
      const p = plan({ now: at("11:30"), status: committedActive(runs), runs });
      expect(p.status.lastSuccessfulTime).toBe(runs[0]?.completionTime);
      expect(p.events).toEqual([
        { type: "Warning", reason: "RunFailed", message: `run ${nameAt(SECOND)} ended Failed` },
      ]);
    });

    test("an active run missing from the cache but not confirmed deleted stays active (the cache lags)", () => {
      const lagging = scheduledRun(FIRST);
      const p = plan({ now: at("10:30"), status: committedActive([lagging]), runs: [] });
      expect(p.status.active).toEqual([{ name: lagging.name, uid: lagging.uid }]);
      expect(p.status.activeCount).toBe(1);
      expect(p.status.runs).toEqual(counts({ total: 1 }));
      expect(p.events).toEqual([]);
    });

    test("an active run confirmed deleted is counted failed once, with a RunDeleted Warning", () => {
      const gone = scheduledRun(FIRST);
      const p = plan({
        now: at("10:30"),
        status: committedActive([gone], {
          recentRuns: [{ name: gone.name, scheduledTime: iso(FIRST), phase: "Running" }],
        }),
        runs: [],
        deletedActive: [gone.name],
      });
      expect(p.status.active).toEqual([]);
      expect(p.status.runs).toEqual(counts({ total: 1, failed: 1 }));
      expect(p.status.recentRuns).toEqual([
        { name: gone.name, scheduledTime: iso(FIRST), phase: "Cancelled" },
      ]);
      expect(p.events).toContainEqual({
        type: "Warning",
        reason: "RunDeleted",
        message: `run ${gone.name} was deleted before it finished`,
      });
      const again = plan({ now: at("10:31"), status: p.status, runs: [], deletedActive: [] });
      expect(again.status.runs).toEqual(counts({ total: 1, failed: 1 }));
      expect(again.events).toEqual([]);
    });
  });
});

describe("planPeriodicTask: concurrencyPolicy when a run is due while another is active", () => {
  const running = scheduledRun(FIRST);
  const atSecond = (policy: "Allow" | "Forbid" | "Replace", active: RunView[] = [running]): Plan =>
    plan({ now: SECOND, spec: { concurrencyPolicy: policy }, status: committedActive(active), runs: active });

  test("Allow: the new run is made and both are active", () => {
    const p = atSecond("Allow");
    expect(createdNames(p)).toEqual([nameAt(SECOND)]);
    expect(p.cancel).toEqual([]);
    expect(p.status.active?.map((a) => a.name)).toEqual([nameAt(FIRST), nameAt(SECOND)]);
    expect(p.status.activeCount).toBe(2);
    expect(p.status.runs).toEqual(counts({ total: 2 }));
  });

  test("Forbid: the new run is skipped, counted, reported, and the watermark passes it", () => {
    const p = atSecond("Forbid");
    expect(p.create).toEqual([]);
    expect(p.status.runs).toEqual(counts({ total: 1, skipped: 1 }));
    expect(p.outcomes.skipped).toBe(1);
    expect(p.events).toEqual([
      {
        type: "Normal",
        reason: "SkippedRun",
        message: `skipped the run for 2027-01-01T11:00:00Z: concurrencyPolicy is Forbid and ${nameAt(FIRST)} is still active`,
      },
    ]);
    expect(p.status.lastScheduleTime).toBe(iso(SECOND));
    expect(p.status.nextScheduleTime).toBe(iso(THIRD));

    // The skipped time is not tried again once the active run finishes.
    const later = plan({
      now: at("11:05"),
      spec: { concurrencyPolicy: "Forbid" },
      status: p.status,
      runs: [{ ...running, phase: "Succeeded", completionTime: "2027-01-01T11:04:00Z" }],
    });
    expect(later.create).toEqual([]);
    expect(later.status.runs).toEqual(counts({ total: 1, succeeded: 1, skipped: 1 }));
  });

  test("Forbid: with nothing active the run is made", () => {
    const p = atSecond("Forbid", []);
    expect(createdNames(p)).toEqual([nameAt(SECOND)]);
  });

  test("Forbid: a run whose cancel was requested does not block the new one", () => {
    const cancelling = { ...running, cancelRequested: true };
    const p = atSecond("Forbid", [cancelling]);
    expect(createdNames(p)).toEqual([nameAt(SECOND)]);
    expect(p.status.runs).toEqual(counts({ total: 2 }));
  });

  test("Replace: the active run is cancelled, reported, and the new one is made", () => {
    const p = atSecond("Replace");
    expect(p.cancel).toEqual([nameAt(FIRST)]);
    expect(createdNames(p)).toEqual([nameAt(SECOND)]);
    expect(p.outcomes.replaced).toBe(1);
    expect(p.events).toContainEqual({
      type: "Normal",
      reason: "ReplacedRun",
      message: `cancelling ${nameAt(FIRST)}: concurrencyPolicy is Replace and ${nameAt(SECOND)} is due`,
    });
    // It stays active (and counted) until its Task ends Cancelled.
    expect(p.status.activeCount).toBe(2);
  });

  test("Replace: a run whose cancel was already requested is not cancelled again", () => {
    const p = atSecond("Replace", [{ ...running, cancelRequested: true }]);
    expect(p.cancel).toEqual([]);
    expect(reasons(p)).not.toContain("ReplacedRun");
    expect(createdNames(p)).toEqual([nameAt(SECOND)]);
  });

  test("Replace: with nothing active nothing is cancelled", () => {
    const p = atSecond("Replace", []);
    expect(p.cancel).toEqual([]);
    expect(createdNames(p)).toEqual([nameAt(SECOND)]);
  });
});

describe("planPeriodicTask: suspend", () => {
  test.each<[string, Scenario]>([
    ["a suspended PeriodicTask makes no run at its first fire time", { now: FIRST, spec: { suspend: true } }],
    [
      "a suspended PeriodicTask makes no catch-up run and counts nothing missed",
      { now: FOURTH, spec: { suspend: true, catchUp: "All" }, status: { lastScheduleTime: iso(FIRST) } },
    ],
  ])("%s; wakeAt and nextScheduleTime are unset", (_case, scenario) => {
    const p = plan(scenario);
    expect(p.create).toEqual([]);
    expect(p.wakeAt).toBeUndefined();
    expect(p.status.nextScheduleTime).toBeUndefined();
    expect(p.status.runs?.missed).toBe(0);
    expect(p.finished).toBeUndefined();
  });

  test("a suspended PeriodicTask still counts its runs that finish", () => {
    const runs = [scheduledRun(FIRST, "Succeeded")];
    const p = plan({ now: SECOND, spec: { suspend: true }, status: committedActive(runs), runs });
    expect(p.status.runs).toEqual(counts({ total: 1, succeeded: 1 }));
  });
});

describe("planPeriodicTask: catch-up after downtime", () => {
  // The controller was down from just after the 09:00 run until 12:10.
  const LAST_BEFORE_DOWNTIME = at("09:00");
  const BACK_UP = at("12:10");
  const afterDowntime = (spec: Partial<PeriodicTaskSpecInput>, now = BACK_UP): Plan =>
    plan({ now, spec, status: { lastScheduleTime: iso(LAST_BEFORE_DOWNTIME), runs: { total: 1 } } });

  test.each<
    [string, Partial<PeriodicTaskSpecInput>, Date, { run: Date[]; trigger: string[]; missed: number }]
  >([
    [
      "Latest: one run for the newest missed time (12:00); 10:00 and 11:00 are missed",
      {},
      BACK_UP,
      { run: [THIRD], trigger: ["catch-up"], missed: 2 },
    ],
    [
      "All: one run per missed time, oldest first",
      { catchUp: "All" },
      BACK_UP,
      { run: [FIRST, SECOND, THIRD], trigger: ["catch-up", "catch-up", "catch-up"], missed: 0 },
    ],
    [
      "All: a time less than 30 s late is an on-time run, older ones are catch-up",
      { catchUp: "All" },
      at("12:00:20"),
      { run: [FIRST, SECOND, THIRD], trigger: ["catch-up", "catch-up", "schedule"], missed: 0 },
    ],
    [
      "All with startingDeadlineSeconds 4200: only 11:00 and 12:00 are inside it; 10:00 is missed",
      { catchUp: "All", startingDeadlineSeconds: 4200 },
      BACK_UP,
      { run: [SECOND, THIRD], trigger: ["catch-up", "catch-up"], missed: 1 },
    ],
    [
      "Latest with startingDeadlineSeconds 900: 12:00 (600 s late) runs",
      { startingDeadlineSeconds: 900 },
      BACK_UP,
      { run: [THIRD], trigger: ["catch-up"], missed: 2 },
    ],
    [
      "Latest with startingDeadlineSeconds 300: even 12:00 is too old; all three are missed",
      { startingDeadlineSeconds: 300 },
      BACK_UP,
      { run: [], trigger: [], missed: 3 },
    ],
    [
      "All with startingDeadlineSeconds 0: only a time due exactly now runs",
      { catchUp: "All", startingDeadlineSeconds: 0 },
      THIRD,
      { run: [THIRD], trigger: ["schedule"], missed: 2 },
    ],
  ])("%s", (_case, spec, now, expected) => {
    const p = afterDowntime(spec, now);
    expect(p.create.map((c) => c.scheduledTime)).toEqual(expected.run);
    expect(p.create.map((c) => c.trigger)).toEqual(expected.trigger);
    expect(p.create.map((c) => c.name)).toEqual(expected.run.map(nameAt));
    expect(p.status.runs).toEqual(counts({ total: 1 + expected.run.length, missed: expected.missed }));
    expect(p.outcomes.missed).toBe(expected.missed);
    // Every due time was handled: none of them is tried again.
    expect(p.status.lastScheduleTime).toBe(iso(THIRD));
    expect(p.status.nextScheduleTime).toBe(iso(FOURTH));
    const missedEvents = p.events.filter((e) => e.reason === "MissedRuns");
    if (expected.missed === 0) expect(missedEvents).toEqual([]);
    else {
      expect(missedEvents).toEqual([
        expect.objectContaining({
          type: "Warning",
          message: expect.stringContaining(`${expected.missed} scheduled time(s) missed`),
        }),
      ]);
    }
  });

  test("All: a run with a newer due time behind it is a catch-up, however little it is late", () => {
    // Every 10 s; at 10:00:20 both 10:00:10 (10 s late) and 10:00:20 (on time) are due.
    const p = plan({
      now: at("10:00:20"),
      spec: { schedule: "*/10 * * * * *", catchUp: "All" },
      status: { lastScheduleTime: iso(at("10:00:00")) },
    });
    expect(p.create.map((c) => [c.scheduledTime, c.trigger])).toEqual([
      [at("10:00:10"), "catch-up"],
      [at("10:00:20"), "schedule"],
    ]);
    expect(p.events.map((e) => e.message)).toEqual([
      `created run ${nameAt(at("10:00:10"))} for 2027-01-01T10:00:10Z (catch-up)`,
      `created run ${nameAt(at("10:00:20"))} for 2027-01-01T10:00:20Z`,
    ]);
  });

  test("the MissedRuns Event names the missed times", () => {
    const p = afterDowntime({ startingDeadlineSeconds: 300 });
    expect(p.events).toEqual([
      {
        type: "Warning",
        reason: "MissedRuns",
        message:
          "3 scheduled time(s) missed (past startingDeadlineSeconds or beyond catchUp Latest); newest: 2027-01-01T10:00:00Z, 2027-01-01T11:00:00Z, 2027-01-01T12:00:00Z",
      },
    ]);
  });

  test("All makes at most 100 runs, the newest, and counts the rest missed", () => {
    // Every minute from 07:10 to 12:10: 300 missed times.
    const p = plan({
      now: BACK_UP,
      spec: { schedule: "* * * * *", catchUp: "All" },
      creationTimestamp: at("07:00"),
      status: { lastScheduleTime: iso(at("07:10")) },
    });
    expect(p.create).toHaveLength(100);
    expect(p.create[0]?.scheduledTime).toEqual(at("10:31"));
    expect(p.create[99]?.scheduledTime).toEqual(BACK_UP);
    expect(new Set(createdNames(p)).size).toBe(100);
    expect(p.status.runs).toEqual(counts({ total: 100, missed: 200 }));
    expect(p.status.lastScheduleTime).toBe(iso(BACK_UP));
  });

  test("a huge gap (every 5 s, 30 days) is counted, not run: one run, 518,399 missed", () => {
    const NOW = at("12:00", "2027-01-31");
    const THIRTY_DAYS_AGO = at("12:00", "2027-01-01");
    const p = plan({
      now: NOW,
      spec: { schedule: "*/5 * * * * *" },
      creationTimestamp: at("00:00"),
      status: { lastScheduleTime: iso(THIRTY_DAYS_AGO) },
    });
    expect(createdNames(p)).toEqual([nameAt(NOW)]);
    expect(p.status.runs).toEqual(counts({ total: 1, missed: (30 * 86_400) / 5 - 1 }));
    expect(p.status.lastScheduleTime).toBe(iso(NOW));
    expect(p.status.nextScheduleTime).toBe(iso(plus(NOW, 5000)));
  });

  test("a huge gap with catchUp All runs the newest 100 and counts the other 518,300 missed", () => {
    const NOW = at("12:00", "2027-01-31");
    const p = plan({
      now: NOW,
      spec: { schedule: "*/5 * * * * *", catchUp: "All" },
      creationTimestamp: at("00:00"),
      status: { lastScheduleTime: iso(at("12:00", "2027-01-01")) },
    });
    expect(p.create).toHaveLength(100);
    expect(p.status.runs).toEqual(counts({ total: 100, missed: (30 * 86_400) / 5 - 100 }));
  });
});

describe("planPeriodicTask: jitterSeconds", () => {
  // The per-object delay of this uid within a 600 s window, never past the next fire time.
  const DELAY_MS = jitterOffsetMs(UID, 600, FIRST, SECOND);
  const jittered = { jitterSeconds: 600 };

  test("the delay is positive and stable for every fire time of the object", () => {
    expect(DELAY_MS).toBeGreaterThan(0);
    expect(DELAY_MS).toBeLessThan(600_000);
    expect(jitterOffsetMs(UID, 600, SECOND, THIRD)).toBe(DELAY_MS);
  });

  test.each<[string, Date, string[]]>([
    ["nothing is made at the nominal time", FIRST, []],
    ["nothing is made a millisecond before nominal + jitter", plus(FIRST, DELAY_MS - 1), []],
    [
      "the run is made at nominal + jitter, named from the nominal time",
      plus(FIRST, DELAY_MS),
      [nameAt(FIRST)],
    ],
  ])("%s", (_case, now, names) => {
    const p = plan({ now, spec: jittered });
    expect(createdNames(p)).toEqual(names);
    expect(p.status.runs?.missed).toBe(0);
  });

  test("before it is due, the status shows the nominal time and the reconciler wakes at nominal + jitter", () => {
    const p = plan({ now: FIRST, spec: jittered });
    expect(p.status.nextScheduleTime).toBe(iso(FIRST));
    expect(p.wakeAt).toEqual(plus(FIRST, DELAY_MS));
    expect(p.status.lastScheduleTime).toBeUndefined();
  });

  test("a jittered run is on time (trigger schedule) and the next wake is the next nominal time + the same delay", () => {
    const p = plan({ now: plus(FIRST, DELAY_MS), spec: jittered });
    expect(p.create).toEqual([{ name: nameAt(FIRST), scheduledTime: FIRST, trigger: "schedule" }]);
    expect(p.status.lastScheduleTime).toBe(iso(FIRST));
    expect(p.status.nextScheduleTime).toBe(iso(SECOND));
    expect(p.wakeAt).toEqual(plus(SECOND, DELAY_MS));
  });

  test("lateness for the catch-up trigger is measured from nominal + jitter", () => {
    const onTime = plan({ now: plus(FIRST, DELAY_MS + CATCH_UP_LATENESS_MS), spec: jittered });
    const late = plan({ now: plus(FIRST, DELAY_MS + CATCH_UP_LATENESS_MS + 1), spec: jittered });
    expect(onTime.create.map((c) => c.trigger)).toEqual(["schedule"]);
    expect(late.create.map((c) => c.trigger)).toEqual(["catch-up"]);
  });

  test("jitter never reaches the next fire time: every 10 s with jitter 3600 s still runs every 10 s", () => {
    const p = plan({
      now: at("10:00:30"),
      spec: { schedule: "*/10 * * * * *", jitterSeconds: 3600, catchUp: "All" },
      status: { lastScheduleTime: iso(at("10:00:00")) },
    });
    const delay = jitterOffsetMs(UID, 3600, at("10:00:00"), at("10:00:10"));
    expect(delay).toBeLessThan(10_000);
    const expected = [at("10:00:10"), at("10:00:20"), ...(delay === 0 ? [at("10:00:30")] : [])];
    expect(p.create.map((c) => c.scheduledTime)).toEqual(expected);
  });
});

describe("planPeriodicTask: startTime, endTime and maxRuns", () => {
  test("startTime: no run before it; the first run is the first fire time at or after it", () => {
    const spec = { startTime: "2027-01-01T11:00:00Z" };
    const before = plan({ now: FIRST, spec });
    expect(before.create).toEqual([]);
    expect(before.status.runs?.missed).toBe(0);
    expect(before.status.nextScheduleTime).toBe(iso(SECOND));
    expect(before.wakeAt).toEqual(SECOND);
    expect(createdNames(plan({ now: SECOND, spec }))).toEqual([nameAt(SECOND)]);
  });

  test("endTime: the last fire time before it runs, then the PeriodicTask is finished", () => {
    const spec = { endTime: "2027-01-01T11:30:00Z" };
    const last = plan({ now: SECOND, spec, status: { lastScheduleTime: iso(FIRST), runs: { total: 1 } } });
    expect(createdNames(last)).toEqual([nameAt(SECOND)]);
    expect(last.finished).toBe("endTime 2027-01-01T11:30:00Z has passed: no run is left");
    expect(last.wakeAt).toBeUndefined();
    expect(last.status.nextScheduleTime).toBeUndefined();

    const after = plan({ now: FOURTH, spec, status: last.status, runs: carryOut(last, []) });
    expect(after.create).toEqual([]);
    expect(after.status.runs?.missed).toBe(0);
    expect(after.finished).toBe("endTime 2027-01-01T11:30:00Z has passed: no run is left");
  });

  test("endTime: while a fire time remains before it, the PeriodicTask is not finished", () => {
    const p = plan({ now: FIRST, spec: { endTime: "2027-01-01T11:30:00Z" } });
    expect(p.finished).toBeUndefined();
    expect(p.status.nextScheduleTime).toBe(iso(SECOND));
  });

  test("maxRuns 1 (one-off): the first run is made and then no run is left", () => {
    const one = plan({ now: FIRST, spec: { maxRuns: 1 } });
    expect(createdNames(one)).toEqual([nameAt(FIRST)]);
    expect(one.finished).toBe("maxRuns 1 reached: no run is left");
    expect(one.wakeAt).toBeUndefined();
    expect(one.status.nextScheduleTime).toBeUndefined();

    const later = plan({ now: FOURTH, spec: { maxRuns: 1 }, status: one.status, runs: carryOut(one, []) });
    expect(later.create).toEqual([]);
    expect(later.status.runs).toEqual(counts({ total: 1 }));
    expect(later.finished).toBe("maxRuns 1 reached: no run is left");
  });

  test.each<[string, number, string | undefined]>([
    ["maxRuns counts runs.total: 2 of 3 made leaves one, so not finished before it is made", 3, undefined],
    [
      "maxRuns counts runs.total: 2 of 2 made is finished, and no run is made",
      2,
      "maxRuns 2 reached: no run is left",
    ],
  ])("%s", (_case, maxRuns, finished) => {
    const p = plan({
      now: at("10:30"),
      spec: { maxRuns },
      status: { lastScheduleTime: iso(FIRST), runs: { total: 2, succeeded: 2 } },
    });
    expect(p.finished).toBe(finished);
    const atSecond = plan({
      now: SECOND,
      spec: { maxRuns },
      status: { lastScheduleTime: iso(FIRST), runs: { total: 2, succeeded: 2 } },
    });
    expect(atSecond.create).toHaveLength(maxRuns - 2);
  });

  test("maxRuns limits a catch-up: with 1 run left, catchUp All makes only the newest and counts the rest missed", () => {
    const p = plan({
      now: at("12:10"),
      spec: { maxRuns: 2, catchUp: "All" },
      status: { lastScheduleTime: iso(at("09:00")), runs: { total: 1 } },
    });
    expect(createdNames(p)).toEqual([nameAt(THIRD)]);
    expect(p.status.runs).toEqual(counts({ total: 2, missed: 2 }));
    expect(p.finished).toBe("maxRuns 2 reached: no run is left");
  });
});

describe("planPeriodicTask: run now", () => {
  // Between creation and the first fire time, so only manual runs are due.
  const NOW = at("09:45");

  test("a new token makes exactly one manual run, named from the token", () => {
    const p = plan({ now: NOW, runNowToken: "deploy-42" });
    expect(p.create).toEqual([
      {
        name: manualRunName(PT, "deploy-42"),
        scheduledTime: NOW,
        trigger: "manual",
        runNowToken: "deploy-42",
      },
    ]);
    expect(p.status.lastRunNowToken).toBe("deploy-42");
    expect(p.status.runs).toEqual(counts({ total: 1 }));
    expect(p.status.active).toEqual([{ name: manualRunName(PT, "deploy-42") }]);
    expect(p.events).toEqual([
      {
        type: "Normal",
        reason: "RunCreated",
        message: `created manual run ${manualRunName(PT, "deploy-42")} (run-now token deploy-42)`,
        run: manualRunName(PT, "deploy-42"),
      },
    ]);
    // A manual run does not move the schedule.
    expect(p.status.lastScheduleTime).toBeUndefined();
    expect(p.status.nextScheduleTime).toBe(iso(FIRST));
  });

  test("the same token again makes no run; a different token makes another", () => {
    const first = plan({ now: NOW, runNowToken: "deploy-42" });
    const world = carryOut(first, []);
    const same = plan({ now: at("09:46"), runNowToken: "deploy-42", status: first.status, runs: world });
    expect(same.create).toEqual([]);
    expect(same.status.runs).toEqual(counts({ total: 1 }));

    const other = plan({ now: at("09:47"), runNowToken: "deploy-43", status: same.status, runs: world });
    expect(createdNames(other)).toEqual([manualRunName(PT, "deploy-43")]);
    expect(other.status.lastRunNowToken).toBe("deploy-43");
    expect(other.status.runs).toEqual(counts({ total: 2 }));
  });

  test.each<[string, Scenario]>([
    ["a run-now works while suspended", { now: NOW, runNowToken: "t1", spec: { suspend: true } }],
    ["a run-now works without a valid schedule", { now: NOW, runNowToken: "t1", invalidSchedule: true }],
    [
      "a run-now works after maxRuns is reached",
      { now: NOW, runNowToken: "t1", spec: { maxRuns: 1 }, status: { runs: { total: 1 } } },
    ],
    [
      "a run-now works beside an active run under Forbid",
      {
        now: NOW,
        runNowToken: "t1",
        spec: { concurrencyPolicy: "Forbid" },
        status: committedActive([manualRun("t0", at("09:40"))], { lastRunNowToken: "t0" }),
        runs: [manualRun("t0", at("09:40"))],
      },
    ],
  ])("%s", (_case, scenario) => {
    const p = plan(scenario);
    expect(createdNames(p)).toEqual([manualRunName(PT, "t1")]);
    expect(p.cancel).toEqual([]);
  });

  test.each<[string, string | undefined]>([
    ["no annotation makes no manual run", undefined],
    ["an empty annotation makes no manual run", ""],
  ])("%s", (_case, token) => {
    const p = plan({ now: NOW, runNowToken: token });
    expect(p.create).toEqual([]);
    expect(p.status.lastRunNowToken).toBeUndefined();
  });

  test("a run-now at a fire time makes both the scheduled and the manual run", () => {
    const p = plan({ now: FIRST, runNowToken: "t1" });
    expect(createdNames(p)).toEqual([nameAt(FIRST), manualRunName(PT, "t1")]);
    expect(p.status.runs).toEqual(counts({ total: 2 }));
  });
});

describe("planPeriodicTask: an invalid schedule", () => {
  test("makes no scheduled run, however late, and no status times", () => {
    const p = plan({
      now: FOURTH,
      invalidSchedule: true,
      status: { lastScheduleTime: iso(FIRST), runs: { total: 1 } },
    });
    expect(p.create).toEqual([]);
    expect(p.status.runs).toEqual(counts({ total: 1 }));
    expect(p.status.nextScheduleTime).toBeUndefined();
    expect(p.status.lastScheduleTime).toBe(iso(FIRST));
    expect(p.wakeAt).toBeUndefined();
    expect(p.finished).toBeUndefined();
  });

  test("still counts the runs that finish", () => {
    const runs = [scheduledRun(FIRST, "Succeeded"), scheduledRun(SECOND, "Failed")];
    const p = plan({ now: FOURTH, invalidSchedule: true, status: committedActive(runs), runs });
    expect(p.create).toEqual([]);
    expect(p.status.runs).toEqual(counts({ total: 2, succeeded: 1, failed: 1 }));
    expect(p.status.active).toEqual([]);
  });
});

describe("planPeriodicTask: history limits and recentRuns", () => {
  // A day later: five succeeded runs (01:00-05:00), three failed ones (06:00-08:00), and the
  // 00:00 run, the oldest of all, still active.
  const day = "2027-01-02";
  const SUCCEEDED = ["01:00", "02:00", "03:00", "04:00", "05:00"].map((h) =>
    scheduledRun(at(h, day), "Succeeded"),
  );
  const FAILED = [
    scheduledRun(at("06:00", day), "Failed"),
    scheduledRun(at("07:00", day), "Expired"),
    scheduledRun(at("08:00", day), "Cancelled"),
  ];
  const STILL_ACTIVE = scheduledRun(at("00:00", day), "Running");
  const history = (spec: Partial<PeriodicTaskSpecInput>): Plan =>
    plan({
      now: at("08:30", day),
      spec,
      status: {
        ...committedActive([STILL_ACTIVE]),
        lastScheduleTime: iso(at("08:00", day)),
        runs: { total: 9, succeeded: 5, failed: 3 },
      },
      runs: [STILL_ACTIVE, ...FAILED, ...SUCCEEDED],
    });
  const names = (runs: RunView[]): string[] => runs.map((r) => r.name);

  test.each<[string, Partial<PeriodicTaskSpecInput>, string[]]>([
    [
      "the defaults (3 succeeded, 1 failed) prune the two oldest succeeded and the two oldest failed runs",
      {},
      names([SUCCEEDED[1], SUCCEEDED[0], FAILED[1], FAILED[0]].filter((r) => r !== undefined)),
    ],
    [
      "limits of 0 prune every finished run, never the active one",
      { successfulRunsHistoryLimit: 0, failedRunsHistoryLimit: 0 },
      names([...SUCCEEDED].reverse().concat([...FAILED].reverse())),
    ],
    [
      "limits above the history prune nothing",
      { successfulRunsHistoryLimit: 10, failedRunsHistoryLimit: 10 },
      [],
    ],
  ])("%s", (_case, spec, pruned) => {
    const p = history(spec);
    expect(p.prune).toEqual(pruned);
    expect(p.prune).not.toContain(STILL_ACTIVE.name);
    expect(p.status.runs).toEqual(counts({ total: 9, succeeded: 5, failed: 3 }));
  });

  test("a run counted finished in this pass is not pruned before its count is written", () => {
    // Deleting it now would lose its outcome if the status write fails: the next pass would find
    // it in status.active, gone, and count it as deleted (failed) instead of succeeded.
    const justDone = scheduledRun(at("00:00", day), "Succeeded");
    const p = plan({
      now: at("08:30", day),
      spec: { successfulRunsHistoryLimit: 0 },
      status: { ...committedActive([justDone]), lastScheduleTime: iso(at("08:00", day)) },
      runs: [justDone],
    });
    expect(p.status.runs?.succeeded).toBe(1);
    expect(p.prune).toEqual([]);
    const next = plan({
      now: at("08:31", day),
      spec: { successfulRunsHistoryLimit: 0 },
      status: p.status,
      runs: [justDone],
    });
    expect(next.prune).toEqual([justDone.name]);
    expect(next.status.runs?.succeeded).toBe(1);
  });

  test("recentRuns lists at most 10 runs, newest first, with their phases from the cache", () => {
    const older = Array.from({ length: 10 }, (_, i) => scheduledRun(at(`0${i}:00`), "Succeeded"));
    const status = periodicTaskStatusSchema.parse({
      lastScheduleTime: iso(at("09:00")),
      runs: { total: 10, succeeded: 10 },
      recentRuns: older.map((r) => ({ name: r.name, scheduledTime: iso(r.scheduledTime), phase: "Running" })),
    });
    const p = plan({
      now: FIRST,
      spec: { successfulRunsHistoryLimit: 100 },
      creationTimestamp: at("00:00", "2026-12-31"),
      status,
      runs: older,
    });
    expect(p.status.recentRuns).toHaveLength(10);
    expect(p.status.recentRuns?.map((r) => r.name)).toEqual([
      nameAt(FIRST),
      ...older
        .slice(1)
        .reverse()
        .map((r) => r.name),
    ]);
    expect(p.status.recentRuns?.[0]?.phase).toBe("Pending");
    expect(p.status.recentRuns?.slice(1).every((r) => r.phase === "Succeeded")).toBe(true);
    expect(p.status.recentRuns?.[1]?.completionTime).toBe(older[9]?.completionTime);
  });
});

describe("planPeriodicTask: property — over any sequence of reconciles, no run is made twice and every fire time is accounted for once", () => {
  /*
   * The simulated world: the Tasks a plan creates exist (phase Pending) from the next reconcile
   * on; a cancel marks the Task; a prune deletes it; between reconciles any unfinished Task may
   * finish, Succeeded or Failed. A status write may be lost (a crash or a 409 after the Tasks were
   * made): the committed status then stays what it was while the Tasks remain. A live read agrees
   * with the world, so `deletedActive` is the names in status.active that no longer exist. The
   * run-now annotation may get a new token, but only after a reconcile whose status was written
   * (see the report: a manual run made by a lost write whose token is replaced before the next
   * write is never counted, a known limitation of the status as commit log).
   *
   * The invariant, checked at every reconcile whose status is written (W = that status, N = now,
   * F = the number of fire times f with START < f whose due time f + jitter is ≤ N; any policy,
   * catchUp, deadline, jitter and history limits):
   *  1. no plan ever asks for a run name that was made before (the name is the lock; in this
   *     world a made Task never disappears before it is counted), so at most one run per
   *     scheduled time and one manual run per token;
   *  2. (W.runs.total − manual runs) + W.runs.missed + W.runs.skipped = F: each due fire time is
   *     run, skipped or missed exactly once, even across lost status writes;
   *  3. W.runs.total, .succeeded and .failed equal the runs made, succeeded and failed in the
   *     world (deleted ones included), and activeCount the rest: each outcome counted once;
   *  4. no counter and not lastScheduleTime ever goes down from one written status to the next.
   */
  const EVERY = "*/10 * * * *";
  const START = new Date("2027-01-01T09:03:17Z");
  const schedule = compileSchedule({ expression: EVERY, hashKey: `default/${PT}`, createdAt: START });

  const stepArb = fc.record({
    advanceSeconds: fc.oneof(fc.integer({ min: 1, max: 700 }), fc.integer({ min: 1, max: 5400 })),
    finishes: fc.array(fc.tuple(fc.nat(), fc.boolean()), { maxLength: 4 }),
    statusWriteLost: fc.boolean(),
    runNow: fc.boolean(),
  });
  const specArb = fc.record({
    concurrencyPolicy: fc.constantFrom("Allow" as const, "Forbid" as const, "Replace" as const),
    catchUp: fc.constantFrom("Latest" as const, "All" as const),
    startingDeadlineSeconds: fc.option(fc.constantFrom(0, 60, 900, 3600), { nil: undefined }),
    jitterSeconds: fc.option(fc.constantFrom(30, 300, 3600), { nil: undefined }),
    successfulRunsHistoryLimit: fc.integer({ min: 0, max: 3 }),
    failedRunsHistoryLimit: fc.integer({ min: 0, max: 2 }),
  });

  test("holds for random reconcile instants, finishing runs and lost status writes", () => {
    fc.assert(
      fc.property(specArb, fc.array(stepArb, { minLength: 1, maxLength: 25 }), (specInput, steps) => {
        const spec = specOf(specInput);
        const world = new Map<string, RunView>();
        const made = new Map<string, RunView>(); // every run ever made, deleted ones included
        let committed: PeriodicTaskStatus = {};
        let now = START;
        let runNowToken: string | undefined;
        let previousWritten = true;
        steps.forEach((step, i) => {
          now = plus(now, step.advanceSeconds * 1000);
          if (step.runNow && previousWritten) runNowToken = `deploy-${i}`;
          for (const [pick, ok] of step.finishes) {
            const open = [...world.values()].filter((r) => !isFinished(r.phase));
            const r = open[pick % Math.max(1, open.length)];
            if (!r) break;
            const done = {
              ...r,
              phase: (ok ? "Succeeded" : "Failed") as TaskPhase,
              completionTime: iso(now),
            };
            world.set(r.name, done);
            made.set(r.name, done);
          }
          const p = planPeriodicTask({
            name: PT,
            uid: UID,
            generation: 1,
            creationTimestamp: START,
            runNowToken,
            spec,
            status: committed,
            schedule,
            runs: [...world.values()],
            deletedActive: new Set((committed.active ?? []).map((a) => a.name).filter((n) => !world.has(n))),
            now,
          });

          for (const c of p.create) {
            expect(made.has(c.name), `run ${c.name} made twice`).toBe(false);
            const view: RunView = {
              name: c.name,
              uid: `uid-${c.name}`,
              trigger: c.trigger,
              scheduledTime: c.scheduledTime,
              runNowToken: c.runNowToken,
              phase: "Pending",
              startTime: undefined,
              completionTime: undefined,
              cancelRequested: false,
            };
            world.set(c.name, view);
            made.set(c.name, view);
          }
          for (const name of p.cancel) {
            const r = world.get(name);
            if (r) world.set(name, { ...r, cancelRequested: true });
          }
          for (const name of p.prune) {
            expect(isFinished(world.get(name)?.phase), `pruned ${name} before it finished`).toBe(true);
            world.delete(name);
          }

          previousWritten = !step.statusWriteLost || i === steps.length - 1;
          if (!previousWritten) return;
          const w = p.status;
          const before = committed.runs ?? counts({});
          const after = w.runs ?? counts({});
          for (const k of ["total", "succeeded", "failed", "missed", "skipped"] as const) {
            expect(after[k], `runs.${k} went down`).toBeGreaterThanOrEqual(before[k]);
          }
          if (committed.lastScheduleTime && w.lastScheduleTime) {
            expect(Date.parse(w.lastScheduleTime)).toBeGreaterThanOrEqual(
              Date.parse(committed.lastScheduleTime),
            );
          }

          // F: fire times due by now. With jitter only the newest can still be waiting.
          let due = schedule.countBetween(START, now);
          const newest = schedule.prev(now);
          if (spec.jitterSeconds && newest && newest > START) {
            const delay = jitterOffsetMs(UID, spec.jitterSeconds, newest, schedule.next(newest));
            if (newest.getTime() + delay > now.getTime()) due--;
          }
          const all = [...made.values()];
          const manual = all.filter((r) => r.trigger === "manual");
          expect(after.total - manual.length + after.missed + after.skipped, "fire times accounted for").toBe(
            due,
          );
          expect(new Set(manual.map((r) => r.runNowToken)).size, "one manual run per token").toBe(
            manual.length,
          );

          expect(after.total).toBe(all.length);
          expect(after.succeeded).toBe(all.filter((r) => r.phase === "Succeeded").length);
          expect(after.failed).toBe(all.filter((r) => r.phase === "Failed").length);
          expect(w.activeCount).toBe(all.filter((r) => !isFinished(r.phase)).length);
          const scheduled = all.filter((r) => r.trigger !== "manual");
          expect(new Set(scheduled.map((r) => r.scheduledTime.getTime())).size, "one run per time").toBe(
            scheduled.length,
          );
          committed = w;
        });
      }),
      { numRuns: 300 },
    );
  });
});
