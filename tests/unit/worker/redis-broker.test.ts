import { describe, expect, it } from "vitest";
import {
  MAX_POP_TIMEOUT_SECONDS,
  SILENT_CONNECTION_MS,
  checkPopTimeout,
} from "../../../src/worker/redis-broker.ts";
import { POP_TIMEOUT_SECONDS } from "../../../src/worker/worker.ts";

describe("the pop timeout, against the check that replaces a silent connection", () => {
  it.each([
    ["kombu's 1 s", 1],
    ["a fraction of a second", 0.1],
    ["the longest allowed", MAX_POP_TIMEOUT_SECONDS],
  ])("accepts %s", (_, seconds) => {
    expect(() => checkPopTimeout(seconds)).not.toThrow();
  });

  it.each([
    ["0, which blocks forever: the connection would be taken for silent", 0],
    ["a timeout as long as the silence allowed", SILENT_CONNECTION_MS / 1000],
    ["one just above the longest allowed", MAX_POP_TIMEOUT_SECONDS + 0.001],
    ["a negative timeout", -1],
    ["NaN", Number.NaN],
  ])("refuses %s", (_, seconds) => {
    expect(() => checkPopTimeout(seconds)).toThrow(RangeError);
  });

  it("accepts the worker's own pop timeout", () => {
    expect(() => checkPopTimeout(POP_TIMEOUT_SECONDS)).not.toThrow();
  });

  it("leaves a blocked pop's reply at least twice its longest wait before its connection counts as silent", () => {
    expect(SILENT_CONNECTION_MS).toBeGreaterThanOrEqual(2 * MAX_POP_TIMEOUT_SECONDS * 1000);
  });
});
