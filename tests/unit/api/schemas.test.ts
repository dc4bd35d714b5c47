import { describe, expect, it } from "vitest";
import { parsePeriodicTask, parseTask, parseTaskSpec, type Parsed } from "../../../src/api/parse.ts";
import {
  INVALID_MANIFESTS,
  INVALID_STATUSES,
  VALID_EDGE_CASES,
  exampleManifests,
  periodicTask,
  task,
  type Manifest,
} from "../../fixtures/api-manifests.ts";

function parse(m: Manifest): Parsed<unknown> {
  return m.kind === "Task" ? parseTask(m) : parsePeriodicTask(m);
}

function accepted<T>(p: Parsed<T>): T {
  if (!p.ok) throw new Error(p.error);
  return p.value;
}

describe("the zod schemas refuse what the CRDs refuse", () => {
  it.each(INVALID_MANIFESTS)("refuses $name, naming $path", ({ manifest, path }) => {
    const result = parse(manifest);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const paths = result.issues.map((i) => i.path);
    expect(paths.some((p) => p === path || p.startsWith(`${path}.`) || p.startsWith(`${path}[`))).toBe(true);
    expect(result.error).toContain(path);
  });
});

describe("the zod schemas accept", () => {
  it.each(exampleManifests())("the example $file ($manifest.metadata.name)", ({ manifest }) => {
    expect(parse(manifest)).toMatchObject({ ok: true });
  });

  it.each(VALID_EDGE_CASES)("$name", ({ manifest }) => {
    expect(parse(manifest)).toMatchObject({ ok: true });
  });
});

describe("defaults", () => {
  it("fills a Task spec the way the API server does", () => {
    expect(accepted(parseTaskSpec({ task: "t", retry: { limit: 2 } }))).toEqual({
      task: "t",
      args: [],
      kwargs: {},
      retry: { limit: 2, backoff: { initialSeconds: 1, factor: 2, maxSeconds: 600, jitter: true } },
    });
  });

  it("fills a partly written backoff field by field", () => {
    const spec = accepted(parseTaskSpec({ task: "t", retry: { limit: 2, backoff: { initialSeconds: 10 } } }));
    expect(spec.retry?.backoff).toEqual({ initialSeconds: 10, factor: 2, maxSeconds: 600, jitter: true });
  });

  it("fills a PeriodicTask spec the way the API server does", () => {
    const pt = accepted(
      parsePeriodicTask(periodicTask({ schedule: "1 * * * *", taskTemplate: { spec: { task: "t" } } })),
    );
    expect(pt.spec).toEqual({
      schedule: "1 * * * *",
      timeZone: "UTC",
      concurrencyPolicy: "Allow",
      catchUp: "Latest",
      suspend: false,
      successfulRunsHistoryLimit: 3,
      failedRunsHistoryLimit: 1,
      taskTemplate: { spec: { task: "t", args: [], kwargs: {} } },
    });
  });

  it("counts runs from zero when the controller writes a partial runs object", () => {
    const pt = accepted(
      parsePeriodicTask({
        ...periodicTask({ schedule: "@daily", taskTemplate: { spec: { task: "t" } } }),
        status: { runs: { total: 4 } },
      }),
    );
    expect(pt.status?.runs).toEqual({ total: 4, succeeded: 0, failed: 0, missed: 0, skipped: 0 });
  });
});

describe("status", () => {
  const finishedAt = "2026-12-01T06:00:05Z";
  const condition = {
    type: "Ready",
    status: "False",
    reason: "InvalidSchedule",
    message: "schedule '0 0 30 2 *' never fires: February has no 30th",
    lastTransitionTime: finishedAt,
  };

  it("accepts a finished Task's status, with a null result", () => {
    const t = accepted(
      parseTask({
        ...task({ task: "t" }),
        status: {
          phase: "Succeeded",
          taskId: "9f0c2b9e-4d7c-4e52-a8c8-000000000000",
          attempts: 1,
          startTime: "2026-12-01T06:00:00Z",
          completionTime: finishedAt,
          worker: "celery@worker-7f9c",
          result: null,
          resultPreview: "null",
          conditions: [{ ...condition, type: "Succeeded", status: "True", reason: "Succeeded" }],
          observedGeneration: 1,
        },
      }),
    );
    expect(t.status?.result).toBeNull();
  });

  it("accepts a PeriodicTask's status", () => {
    const status = {
      nextScheduleTime: "2026-12-01T07:01:00Z",
      lastScheduleTime: "2026-12-01T06:01:00Z",
      active: [{ name: "del-redis-data-1796104860", uid: "0b5b8d6e-0000-0000-0000-000000000000" }],
      activeCount: 1,
      runs: { total: 1, succeeded: 0, failed: 0, missed: 0, skipped: 0 },
      recentRuns: [
        { name: "del-redis-data-1796104860", scheduledTime: "2026-12-01T06:01:00Z", phase: "Running" },
      ],
      lastRunNowToken: "2026-12-01",
      conditions: [condition],
      observedGeneration: 3,
    };
    const pt = accepted(
      parsePeriodicTask({
        ...periodicTask({ schedule: "1 * * * *", taskTemplate: { spec: { task: "t" } } }),
        status,
      }),
    );
    expect(pt.status).toEqual(status);
  });

  const refused: { name: string; status: Record<string, unknown>; path: string }[] = [
    { name: "an unknown phase", status: { phase: "Done" }, path: "status.phase" },
    {
      name: "a result preview over 80 characters",
      status: { resultPreview: "x".repeat(81) },
      path: "status.resultPreview",
    },
    {
      name: "a traceback over 8 KiB",
      status: { error: { traceback: "x".repeat(8193) } },
      path: "status.error.traceback",
    },
    {
      name: "a condition status that is not True/False/Unknown",
      status: { conditions: [{ ...condition, status: "Yes" }] },
      path: "status.conditions[0].status",
    },
    {
      name: "a condition without reason",
      status: { conditions: [{ ...condition, reason: undefined }] },
      path: "status.conditions[0].reason",
    },
    { name: "negative attempts", status: { attempts: -1 }, path: "status.attempts" },
  ];
  it.each(refused)("refuses a Task status with $name", ({ status, path }) => {
    const result = parseTask({ ...task({ task: "t" }), status });
    expect(result).toMatchObject({ ok: false });
    if (!result.ok) expect(result.issues.map((i) => i.path)).toContain(path);
  });

  it.each(INVALID_STATUSES)("refuses $name, naming $path", ({ manifest, status, path }) => {
    const result = parse({ ...manifest, status });
    expect(result).toMatchObject({ ok: false });
    if (!result.ok) expect(result.issues.map((i) => i.path)).toContain(path);
  });

  it("refuses more than 10 recent runs", () => {
    const run = { name: "r", scheduledTime: finishedAt };
    const result = parsePeriodicTask({
      ...periodicTask({ schedule: "@daily", taskTemplate: { spec: { task: "t" } } }),
      status: { recentRuns: Array(11).fill(run) },
    });
    expect(result).toMatchObject({ ok: false, issues: [{ path: "status.recentRuns" }] });
  });
});

describe("parse errors", () => {
  it("name the object and every bad field, in one line", () => {
    const result = parseTask({
      ...task({ task: "t", priority: 10, countdown: -1 }, "cleanup"),
      metadata: { name: "cleanup", namespace: "jobs" },
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error).toMatch(/^Task jobs\/cleanup is invalid: /);
    expect(result.error).toContain("spec.priority: ");
    expect(result.error).toContain("spec.countdown: ");
    expect(result.error).not.toContain("\n");
  });

  it("refuse an object of another kind", () => {
    const result = parseTask(periodicTask({ schedule: "@daily", taskTemplate: { spec: { task: "t" } } }));
    expect(result).toMatchObject({ ok: false });
    if (!result.ok) expect(result.issues.map((i) => i.path)).toContain("kind");
  });
});
