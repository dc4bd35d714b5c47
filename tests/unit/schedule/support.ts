import { compileSchedule, type CompiledSchedule } from "../../../src/schedule/index.ts";

export const CREATED = new Date("2026-01-01T00:00:00Z");

export function schedule(
  expression: string,
  timeZone?: string,
  hashKey = "default/report",
): CompiledSchedule {
  return compileSchedule({ expression, timeZone, hashKey, createdAt: CREATED });
}

/** The next `count` fire times after `after`, as RFC 3339 UTC strings with second precision. */
export function fires(s: CompiledSchedule, after: string, count: number): string[] {
  const out: string[] = [];
  let t: Date | null = new Date(after);
  while (out.length < count) {
    t = s.next(t);
    if (t === null) break;
    out.push(t.toISOString().replace(".000Z", "Z"));
  }
  return out;
}
