import { describe, expect, it } from "vitest";
import {
  DEFAULT_MAX_RETRIES,
  DEFAULT_RETRY_DELAY_SECONDS,
  TASK_DEFINITION,
  createRegistry,
  defineTask,
  isTaskDefinition,
} from "../../../src/worker/task.ts";

const noop = (): null => null;

describe("defineTask", () => {
  it("takes Celery's defaults: 3 retries, 180 s between them, no time limits", () => {
    const task = defineTask("app.tasks.add", noop);
    expect(task.name).toBe("app.tasks.add");
    expect(task.options).toEqual({
      maxRetries: DEFAULT_MAX_RETRIES,
      retryDelaySeconds: DEFAULT_RETRY_DELAY_SECONDS,
      timeLimit: { hard: null, soft: null },
    });
    expect([DEFAULT_MAX_RETRIES, DEFAULT_RETRY_DELAY_SECONDS]).toEqual([3, 180]);
  });

  it("keeps the options it is given; null retries forever", () => {
    const task = defineTask("t", noop, {
      maxRetries: null,
      retryDelaySeconds: 0,
      timeLimit: { hard: 60, soft: 50 },
    });
    expect(task.options).toEqual({
      maxRetries: null,
      retryDelaySeconds: 0,
      timeLimit: { hard: 60, soft: 50 },
    });
  });

  it("returns a frozen definition", () => {
    expect(Object.isFrozen(defineTask("t", noop))).toBe(true);
  });

  it.each([
    ["an empty name", () => defineTask("", noop), /non-empty string/],
    [
      "a handler that is not a function",
      () => defineTask("t", "nope" as unknown as () => null),
      /must be a function/,
    ],
    [
      "negative maxRetries",
      () => defineTask("t", noop, { maxRetries: -1 }),
      /maxRetries must be a whole number/,
    ],
    ["fractional maxRetries", () => defineTask("t", noop, { maxRetries: 1.5 }), /maxRetries/],
    ["a negative retry delay", () => defineTask("t", noop, { retryDelaySeconds: -1 }), /retryDelaySeconds/],
    [
      "a zero hard time limit",
      () => defineTask("t", noop, { timeLimit: { hard: 0 } }),
      /timeLimit.hard must be a positive/,
    ],
    [
      "an infinite soft time limit",
      () => defineTask("t", noop, { timeLimit: { soft: Infinity } }),
      /timeLimit.soft/,
    ],
  ])("refuses %s", (_case, define, message) => {
    expect(define).toThrow(message);
  });
});

describe("isTaskDefinition", () => {
  it("recognises a definition made by another copy of the module (same registry-wide symbol)", () => {
    const foreign = {
      [Symbol.for("cadent.worker.TaskDefinition")]: true,
      name: "t",
      handler: noop,
      options: {},
    };
    expect(isTaskDefinition(foreign)).toBe(true);
    expect(Symbol.for("cadent.worker.TaskDefinition")).toBe(TASK_DEFINITION);
  });

  it.each([
    ["null", null],
    ["a function", noop],
    ["a look-alike without the symbol", { name: "t", handler: noop, options: {} }],
    ["a marked object without a handler", { [TASK_DEFINITION]: true, name: "t", options: {} }],
  ])("rejects %s", (_case, value) => {
    expect(isTaskDefinition(value)).toBe(false);
  });
});

describe("createRegistry", () => {
  it("counts the same definition exported twice once", () => {
    const task = defineTask("app.tasks.add", noop);
    expect([...createRegistry([task, task]).keys()]).toEqual(["app.tasks.add"]);
  });

  it("refuses two different tasks with one name", () => {
    expect(() =>
      createRegistry([defineTask("app.tasks.add", noop), defineTask("app.tasks.add", noop)]),
    ).toThrow('two different tasks are defined with the name "app.tasks.add"');
  });
});
