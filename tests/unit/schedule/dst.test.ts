import { describe, expect, test } from "vitest";
import { compileSchedule } from "../../../src/schedule/index.ts";
import { DST_CASES } from "./dst-cases.ts";

const SECOND = 1000;

describe("daylight saving follows product.md §2 (the table in docs/schedules.md)", () => {
  test.each(DST_CASES.map((c) => [`${c.zone} '${c.expression}' (${c.kind}): ${c.rule}`, c] as const))(
    "%s",
    (_name, c) => {
      const schedule = compileSchedule({
        expression: c.expression,
        timeZone: c.zone,
        hashKey: "ns/name",
        createdAt: new Date(0),
      });
      expect(schedule.isFixedTime).toBe(c.kind === "fixed-time");

      const fires: string[] = [];
      let t: Date | null = new Date(c.after);
      while (fires.length < c.fires.length && t !== null) {
        t = schedule.next(t);
        if (t !== null) fires.push(t.toISOString().replace(".000Z", "Z"));
      }
      expect(fires).toEqual(c.fires);
    },
  );

  test.each(DST_CASES.map((c) => [`${c.zone} '${c.expression}'`, c] as const))(
    "%s: prev() walks the same fire times backwards and countBetween() counts them",
    (_name, c) => {
      const schedule = compileSchedule({
        expression: c.expression,
        timeZone: c.zone,
        hashKey: "ns/name",
        createdAt: new Date(0),
      });
      const fires = c.fires.map((f) => new Date(f));
      const last = fires[fires.length - 1] ?? new Date(c.after);
      const backwards: Date[] = [];
      let t: Date | null = schedule.prev(last);
      // Bounded, so that an engine whose prev() stops moving fails instead of hanging.
      while (t !== null && t.getTime() > new Date(c.after).getTime() && backwards.length <= fires.length) {
        backwards.unshift(t);
        t = schedule.prev(new Date(t.getTime() - SECOND));
      }
      expect(backwards).toEqual(fires);
      expect(schedule.countBetween(new Date(c.after), last)).toBe(fires.length);
    },
  );
});
