import { describe, expect, test } from "vitest";
import { fires, schedule } from "./support.ts";

const KEYS = Array.from({ length: 2000 }, (_, i) => `team-${i % 7}/task-${i}`);

function resolvedField(expression: string, key: string, index: number): number[] {
  const field = schedule(expression, undefined, key).resolved.split(" ")[index] ?? "";
  return field.split(",").map(Number);
}

describe("H: a hashed value, stable per object", () => {
  // These pin the hash: changing it would move every H schedule in every cluster on upgrade.
  test.each([
    ["H * * * *", "default/nightly-report", "36 * * * *"],
    ["H H * * *", "default/nightly-report", "36 2 * * *"],
    ["H/15 * * * *", "default/nightly-report", "6,21,36,51 * * * *"],
    ["H(0-29) 2 * * *", "default/nightly-report", "6 2 * * *"],
    ["0 0 H * H", "default/nightly-report", "0 0 19 * 3"],
    ["H H H H H", "prod/cleanup", "5 5 15 9 1"],
  ])("'%s' for %s is '%s', in every process and release", (expression, key, resolved) => {
    expect(schedule(expression, undefined, key).resolved).toBe(resolved);
  });

  test("the same key gives the same times; the fire times follow the resolved values", () => {
    const a = schedule("H/15 * * * *", "UTC", "default/nightly-report");
    const b = schedule("H/15 * * * *", "UTC", "default/nightly-report");
    expect(a.resolved).toBe(b.resolved);
    expect(fires(a, "2027-01-01T00:00:00Z", 4)).toEqual([
      "2027-01-01T00:06:00Z",
      "2027-01-01T00:21:00Z",
      "2027-01-01T00:36:00Z",
      "2027-01-01T00:51:00Z",
    ]);
  });

  test("editing another field does not move a hashed field", () => {
    for (const key of KEYS.slice(0, 50)) {
      const minute = resolvedField("H 2 * * *", key, 0);
      expect(resolvedField("H 3 * * 1-5", key, 0)).toEqual(minute);
      expect(resolvedField("0 H 2 * * *", key, 1)).toEqual(minute); // adding a seconds field
    }
  });

  test("H spreads objects over the whole field", () => {
    const minutes = new Set(KEYS.map((key) => resolvedField("H * * * *", key, 0)[0]));
    expect(minutes.size).toBe(60);
    expect(Math.min(...(minutes as Set<number>))).toBe(0);
    expect(Math.max(...(minutes as Set<number>))).toBe(59);
  });

  test("fields are hashed independently: minute and hour are not derived from one number", () => {
    const same = KEYS.filter((key) => {
      const [minute, hour] = schedule("H H * * *", undefined, key).resolved.split(" ").map(Number);
      return (minute ?? 0) % 24 === hour;
    }).length;
    // About 1 in 24 by chance; one shared random number would make it far more common.
    expect(same).toBeLessThan(KEYS.length / 10);
  });

  test.each([
    ["H/15 * * * *", 0, 0, 59, 15],
    ["H(0-29) 2 * * *", 0, 0, 29, 0],
    ["H(10-20)/5 * * * *", 0, 10, 20, 5],
    ["0 H/6 * * *", 1, 0, 23, 6],
    ["0 0 H * *", 2, 1, 28, 0],
    ["0 0 H(1-31) * *", 2, 1, 31, 0],
    ["0 0 1 H *", 3, 1, 12, 0],
    ["0 0 * * H", 4, 0, 6, 0],
  ] as const)(
    "'%s' stays within %i..%i (field %i), spaced by the step",
    (expression, index, min, max, step) => {
      for (const key of KEYS.slice(0, 300)) {
        const values = resolvedField(expression, key, index);
        for (const v of values) {
          expect(v).toBeGreaterThanOrEqual(min);
          expect(v).toBeLessThanOrEqual(max);
        }
        if (step > 0) {
          expect(values[0]).toBeLessThan(min + step);
          values.slice(1).forEach((v, i) => expect(v - (values[i] ?? 0)).toBe(step));
        } else {
          expect(values).toHaveLength(1);
        }
      }
    },
  );

  test("a bare H in day-of-month stays within 1-28, so it fires every month (as in Jenkins)", () => {
    const days = new Set(KEYS.map((key) => resolvedField("0 0 H * *", key, 2)[0]));
    expect(Math.max(...(days as Set<number>))).toBe(28);
  });

  test("H with a fixed hour is fixed-time, H/n with hour * is a wildcard schedule", () => {
    expect(schedule("H H * * *").isFixedTime).toBe(true);
    expect(schedule("H/15 * * * *").isFixedTime).toBe(false);
  });
});
