/**
 * Defects the fuzz tests (tests/unit/fuzz/*.fuzz.test.ts, tests/integration/fuzz-*.test.ts) found,
 * pinned as plain cases with named instants, so they stay fixed whatever seed a run draws.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  MAX_MESSAGE_NESTING,
  decodeTaskMessage,
  decodeUnackedEntry,
  encodeRestoredMessage,
  encodeTaskMessage,
} from "../../../src/celery/index.ts";
import { taskCrd } from "../../../src/api/crds.ts";
import { parsePeriodicTask, parseTask } from "../../../src/api/parse.ts";
import { compileSchedule } from "../../../src/schedule/index.ts";
import { defineTask } from "../../../src/worker/task.ts";
import { unackedEntry } from "../../../src/worker/worker.ts";
import { celeryMessage, startWorker, useFakeClock } from "../worker/harness.ts";
import { periodicTask, task } from "../../fixtures/api-manifests.ts";

describe("regressions found by fuzzing zod against the API server", () => {
  /** The pattern the Task CRD gives spec.eta (every date-time field has the same). */
  const crdPattern = (): RegExp => {
    const eta = taskCrd().spec.versions[0]?.schema.openAPIV3Schema.properties?.["spec"]?.properties?.["eta"];
    if (eta?.pattern === undefined) throw new Error("the Task CRD has no pattern for spec.eta");
    return new RegExp(eta.pattern);
  };
  const etaAccepted = (eta: string) => [
    parseTask(task({ task: "app.tasks.add", eta })).ok,
    crdPattern().test(eta),
  ];

  // The API server's date-time format alone took these, and stored Tasks the controller refused.
  it.each([
    "2026-12-01T06:00:00+99:99",
    "2026-12-01T06:00:00+24:00",
    "2026-12-01T06:00:00,5Z",
    "2026-12-01T06:00:00x5Z",
    "2026-12-01T06:00:00Zt",
    "2026-12-01T06:00:00ZTrailing",
  ])("an eta of %s is refused by zod and by the CRD's pattern alike", (eta) => {
    expect(etaAccepted(eta)).toEqual([false, false]);
  });

  it.each(["2026-12-01T06:00:00Z", "2026-12-01t06:00:00.123456789z", "2028-02-29T23:59:59-05:30"])(
    "an eta of %s is taken by both",
    (eta) => {
      expect(etaAccepted(eta)).toEqual([true, true]);
    },
  );

  it("an endTime a nanosecond after startTime is after it, as CEL's timestamps order them; the same instant is not", () => {
    const pt = (startTime: string, endTime: string) =>
      parsePeriodicTask(
        periodicTask({
          schedule: "1 * * * *",
          taskTemplate: { spec: { task: "app.tasks.add" } },
          startTime,
          endTime,
        }),
      ).ok;
    expect(pt("2026-12-01T00:00:00Z", "2026-12-01T00:00:00.000000001Z")).toBe(true);
    expect(pt("2026-12-01T08:00:00.5+08:00", "2026-12-01T00:00:00.500000000Z")).toBe(false);
  });
});

describe("regressions found by fuzzing the schedule engine", () => {
  const CREATED = new Date("2026-01-01T00:00:00Z");
  const LAST_RFC3339_SECOND = new Date("9999-12-31T23:59:59Z");
  const END_OF_DATES = new Date(8.64e15); // +275760-09-13, the last instant a Date holds

  it.each(["@every 1s", "@every 7s", "@every 1h30m"])(
    "'%s': prev() at the end of time is the last fire time next() gives, not one past 9999-12-31T23:59:59Z",
    (expression) => {
      const s = compileSchedule({ expression, hashKey: "k", createdAt: CREATED });
      const last = s.prev(END_OF_DATES);
      if (last === null) throw new Error("no fire time before the end of time");
      expect(last.getTime()).toBeLessThanOrEqual(LAST_RFC3339_SECOND.getTime());
      expect(s.next(new Date(last.getTime() - 1))).toEqual(last);
      expect(s.next(last)).toBeNull();
    },
  );
});

describe("regressions found by fuzzing the Celery decoder", () => {
  const nested = (depth: number): string => `${"[".repeat(depth)}1${"]".repeat(depth)}`;
  const message = (args: string, header = "null"): string => {
    const { envelope } = encodeTaskMessage({
      task: "app.tasks.whoami",
      id: "deep",
      queue: "celery",
      now: new Date(0),
    });
    const body = Buffer.from(`[[${args}], {}, null]`).toString("base64");
    return JSON.stringify({ ...envelope, body }).replace(
      '"ignore_result":false',
      `"ignore_result":false,"x-deep":${header}`,
    );
  };

  it(`accepts arguments nested ${MAX_MESSAGE_NESTING} levels deep (counting the body's and the envelope's own), and restores them`, () => {
    const raw = message(nested(MAX_MESSAGE_NESTING - 2), nested(MAX_MESSAGE_NESTING - 2));
    const decoded = decodeTaskMessage(raw);
    if (!decoded.ok) throw new Error(decoded.error.reason);
    const entry = decodeUnackedEntry(unackedEntry(raw, decoded.message));
    if (!entry.ok) throw new Error(entry.reason);
    expect(decodeTaskMessage(encodeRestoredMessage(entry.entry.envelope)).ok).toBe(true);
  });

  it.each([
    ["arguments one level too deep", message(nested(MAX_MESSAGE_NESTING - 1)), "invalid-body"],
    [
      "a custom header one level too deep",
      message("[]", nested(MAX_MESSAGE_NESTING - 1)),
      "invalid-envelope",
    ],
    ["arguments 20,000 levels deep", message(nested(20_000)), "invalid-body"],
  ])(
    "refuses %s, naming the task id: Python's json cannot read them and kombu's restore overflowed the stack",
    (_name, raw, kind) => {
      const decoded = decodeTaskMessage(raw);
      expect(decoded.ok ? "accepted" : decoded.error).toMatchObject({
        kind,
        taskId: "deep",
        reason: expect.stringContaining(`more than ${MAX_MESSAGE_NESTING} levels`) as unknown,
      });
    },
  );
});

describe("regressions found by fuzzing the worker", () => {
  beforeEach(useFakeClock);
  afterEach(() => vi.useRealTimers());

  it.each([
    ["a hard limit of 100 days", { hard: 100 * 86_400 }],
    ["a soft limit of 100 days", { soft: 100 * 86_400 }],
    ["a hard limit of 1e300 seconds", { hard: 1e300 }],
  ])(
    "%s does not end a task that takes a second (setTimeout fires delays past 2^31-1 ms at once)",
    async (_name, timeLimit) => {
      // A polite handler (it stops when its signal aborts), on the global setTimeout the fake clock drives.
      const slow = defineTask(
        "app.tasks.slow",
        ({ signal }) =>
          new Promise((resolve, reject) => {
            setTimeout(() => resolve("done"), 1_000);
            signal.addEventListener("abort", () => reject(signal.reason as Error));
          }),
      );
      const h = await startWorker([slow]);
      const m = celeryMessage("app.tasks.slow", { timeLimit });
      h.send(m);
      await h.advance(1_000);
      expect(h.broker.result(m.id)).toMatchObject({ status: "SUCCESS", result: "done" });
    },
  );
});
