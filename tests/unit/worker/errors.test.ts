import { describe, expect, it } from "vitest";
import {
  JAVASCRIPT_EXCEPTION_MODULE,
  MaxRetriesExceededError,
  SoftTimeLimitExceeded,
  TaskError,
  TimeLimitExceeded,
  WorkerShutdown,
  isTaskError,
  recordError,
} from "../../../src/worker/errors.ts";

class QuotaError extends Error {}

describe("recordError: how a thrown value is stored in a FAILURE result", () => {
  it.each([
    [
      "a TaskError keeps its type, module and args",
      new TaskError("CustomError", [42, "bad"], { module: "app.tasks" }),
      { type: "CustomError", module: "app.tasks", args: [42, "bad"] },
    ],
    [
      "a JavaScript error is stored under its name, module javascript",
      new TypeError("x is not a function"),
      { type: "TypeError", module: JAVASCRIPT_EXCEPTION_MODULE, args: ["x is not a function"] },
    ],
    [
      "a subclass that does not set name is stored under its class name",
      new QuotaError("over quota"),
      { type: "QuotaError", module: "javascript", args: ["over quota"] },
    ],
    [
      "an error without a message has no args, like Python's ValueError()",
      new Error(""),
      { type: "Error", module: "javascript", args: [] },
    ],
    ["a thrown string", "plain text", { type: "Error", module: "javascript", args: ["plain text"] }],
    ["a thrown object", { code: 7 }, { type: "Error", module: "javascript", args: [{ code: 7 }] }],
    ["a thrown undefined", undefined, { type: "Error", module: "javascript", args: ["undefined"] }],
  ])("%s", (_case, thrown, exception) => {
    expect(recordError(thrown).exception).toEqual(exception);
  });

  it("keeps the stack as the traceback, followed by its causes", () => {
    const error = new Error("outer", { cause: new Error("inner") });
    const { traceback } = recordError(error);
    expect(traceback).toMatch(/^Error: outer\n {4}at /);
    expect(traceback).toContain("\n\nCaused by: Error: inner\n");
  });

  it("has no traceback for a thrown value that is not an Error", () => {
    expect(recordError(42).traceback).toBeNull();
  });
});

describe("TaskError", () => {
  it("has Python's str() of its args as message", () => {
    expect(new TaskError("ValueError", ["boom"]).message).toBe("boom");
    expect(new TaskError("CustomError", [42, "bad"]).message).toBe("(42, 'bad')");
    expect(new TaskError("KeyError").message).toBe("");
  });

  it("is recognised across module copies by its registry-wide mark", () => {
    const foreign = Object.assign(new Error("x"), {
      [Symbol.for("cadent.worker.TaskError")]: true,
      type: "ValueError",
      module: "builtins",
      args: ["x"],
    });
    expect(isTaskError(foreign)).toBe(true);
    expect(isTaskError(new Error("x"))).toBe(false);
  });

  it.each([
    [new SoftTimeLimitExceeded(5), "SoftTimeLimitExceeded", "billiard.exceptions", [5]],
    [new TimeLimitExceeded(10), "TimeLimitExceeded", "billiard.exceptions", [10]],
    [
      new MaxRetriesExceededError("Can't retry"),
      "MaxRetriesExceededError",
      "celery.exceptions",
      ["Can't retry"],
    ],
    [new WorkerShutdown(), "WorkerShutdown", "celery.exceptions", [expect.stringContaining("shutting down")]],
  ])("the worker's own %s is recorded as Celery's", (error, type, module, args) => {
    expect(recordError(error).exception).toEqual({ type, module, args });
  });
});
