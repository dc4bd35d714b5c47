import { describe, expect, it } from "vitest";
import {
  findCondition,
  formatTime,
  isConditionTrue,
  removeCondition,
  setCondition,
} from "../../../src/runtime/conditions.ts";
import type { Condition } from "../../../src/runtime/conditions.ts";

const BECAME_READY = new Date("2030-01-01T00:00:00.250Z");
const LATER = new Date("2030-01-01T01:00:00Z");

const ready: Condition = {
  type: "Ready",
  status: "True",
  observedGeneration: 1,
  lastTransitionTime: "2030-01-01T00:00:00Z",
  reason: "Scheduled",
  message: "next run at 02:00",
};
const stalled: Condition = {
  type: "Stalled",
  status: "False",
  lastTransitionTime: "2029-12-31T00:00:00Z",
  reason: "AsExpected",
  message: "",
};

describe("conditions", () => {
  it.each([
    {
      name: "conditions keep lastTransitionTime when status is unchanged",
      before: [ready],
      update: {
        type: "Ready",
        status: "True",
        observedGeneration: 2,
        reason: "Scheduled",
        message: "next run at 03:00",
      },
      after: [{ ...ready, observedGeneration: 2, message: "next run at 03:00" }],
    },
    {
      name: "a status change moves lastTransitionTime to now",
      before: [ready],
      update: {
        type: "Ready",
        status: "False",
        reason: "InvalidSchedule",
        message: "schedule '0 0 30 2 *' never fires",
      },
      after: [
        {
          type: "Ready",
          status: "False",
          lastTransitionTime: "2030-01-01T01:00:00Z",
          reason: "InvalidSchedule",
          message: "schedule '0 0 30 2 *' never fires",
        },
      ],
    },
    {
      name: "a new type is appended and the others are kept, in order (a merge patch needs the whole array)",
      before: [stalled, ready],
      update: { type: "BrokerAvailable", status: "Unknown", reason: "Connecting", message: "" },
      after: [
        stalled,
        ready,
        {
          type: "BrokerAvailable",
          status: "Unknown",
          lastTransitionTime: "2030-01-01T01:00:00Z",
          reason: "Connecting",
          message: "",
        },
      ],
    },
  ] as const)("$name", ({ before, update, after }) => {
    const frozen = structuredClone(before);
    expect(setCondition(before, update, LATER)).toEqual(after);
    expect(before).toEqual(frozen);
  });

  it("writes lastTransitionTime as metav1.Time does: RFC 3339 without fractional seconds", () => {
    expect(formatTime(BECAME_READY)).toBe("2030-01-01T00:00:00Z");
    const [condition] = setCondition(
      undefined,
      { type: "Ready", status: "True", reason: "Scheduled", message: "" },
      BECAME_READY,
    );
    expect(condition?.lastTransitionTime).toBe("2030-01-01T00:00:00Z");
  });

  it.each(["schedule invalid", "", "Bad-Reason", "1Leading"])(
    "refuses the reason %j, which the API server would reject",
    (reason) => {
      expect(() => setCondition([], { type: "Ready", status: "False", reason, message: "" }, LATER)).toThrow(
        /CamelCase/,
      );
    },
  );

  it("caps the message at the 32768 characters the schema allows", () => {
    const [condition] = setCondition(
      [],
      { type: "Ready", status: "False", reason: "Failed", message: "x".repeat(40_000) },
      LATER,
    );
    expect(condition?.message).toHaveLength(32_768);
  });

  it("finds, tests and removes conditions by type", () => {
    expect(findCondition([stalled, ready], "Ready")).toBe(ready);
    expect(isConditionTrue([stalled, ready], "Ready")).toBe(true);
    expect(isConditionTrue([stalled, ready], "Stalled")).toBe(false);
    expect(isConditionTrue(undefined, "Ready")).toBe(false);
    expect(removeCondition([stalled, ready], "Stalled")).toEqual([ready]);
  });
});
