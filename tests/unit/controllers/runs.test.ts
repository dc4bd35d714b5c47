import { describe, expect, test } from "vitest";
import { PERIODIC_TASK_NAME_MAX_LENGTH, TASK_NAME_MAX_LENGTH } from "../../../src/api/index.ts";
import { manualRunName, runTaskId, scheduledRunName } from "../../../src/controllers/runs.ts";

// Named instants: a run at 2027-01-01 10:00 UTC, and the extremes a 10-digit unix-seconds suffix covers.
const TEN_OCLOCK = new Date("2027-01-01T10:00:00Z");
const TEN_OCLOCK_AND_A_HALF_SECOND = new Date("2027-01-01T10:00:00.500Z");
const FIRST_TEN_DIGIT_SECOND = new Date(1_000_000_000_000); // 2001-09-09T01:46:40Z
const LAST_TEN_DIGIT_SECOND = new Date(9_999_999_999_000); // 2286-11-20T17:46:39Z

/** The longest name a PeriodicTask may have. */
const LONGEST = "p".repeat(PERIODIC_TASK_NAME_MAX_LENGTH);
const UID_A = "0b6f5a52-8d5e-4f43-9b8e-2f0d3c1a7e11";
const UID_B = "c1d2e3f4-0000-4aaa-8bbb-123456789abc";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe("scheduledRunName: <periodictask>-<unix seconds of the scheduled time>", () => {
  test.each<[string, string, Date, string]>([
    ["a run at 10:00 UTC is named by its unix seconds", "report", TEN_OCLOCK, "report-1798797600"],
    [
      "milliseconds are dropped, never rounded up",
      "report",
      TEN_OCLOCK_AND_A_HALF_SECOND,
      "report-1798797600",
    ],
    ["the first ten-digit second", "report", FIRST_TEN_DIGIT_SECOND, "report-1000000000"],
    ["the last ten-digit second", "report", LAST_TEN_DIGIT_SECOND, "report-9999999999"],
  ])("%s", (_case, name, time, expected) => {
    expect(scheduledRunName(name, time)).toBe(expected);
  });

  test.each<[string, Date]>([
    ["at 10:00 in 2027", TEN_OCLOCK],
    ["at the first ten-digit second", FIRST_TEN_DIGIT_SECOND],
    ["at the last ten-digit second", LAST_TEN_DIGIT_SECOND],
  ])("a 52-character PeriodicTask name gives a 63-character run name %s", (_case, time) => {
    const name = scheduledRunName(LONGEST, time);
    expect(name).toHaveLength(TASK_NAME_MAX_LENGTH);
    expect(name).toHaveLength(63);
    expect(name.startsWith(`${LONGEST}-`)).toBe(true);
  });

  test("different seconds give different names; the same second gives the same name", () => {
    expect(scheduledRunName("report", TEN_OCLOCK)).not.toBe(
      scheduledRunName("report", new Date(TEN_OCLOCK.getTime() + 1000)),
    );
    expect(scheduledRunName("report", new Date(TEN_OCLOCK))).toBe(scheduledRunName("report", TEN_OCLOCK));
  });
});

describe("manualRunName: <periodictask>-m<9 hex digits of sha256(token)>", () => {
  test.each<[string, string]>([
    ["a short token", "1"],
    ["a typical token", "deploy-2027-01-01"],
    ["a non-ASCII token", "über-ñandú-ジョブ"],
    ["a 1024-character token", "x".repeat(1024)],
    ["an empty token", ""],
  ])("%s gives a name with an 11-character suffix, so a 52-character name gives 63", (_case, token) => {
    expect(manualRunName("report", token)).toMatch(/^report-m[0-9a-f]{9}$/);
    expect(manualRunName(LONGEST, token)).toHaveLength(TASK_NAME_MAX_LENGTH);
  });

  test("the same token always gives the same name; different tokens give different names", () => {
    expect(manualRunName("report", "deploy-42")).toBe(manualRunName("report", "deploy-42"));
    expect(manualRunName("report", "deploy-42")).not.toBe(manualRunName("report", "deploy-43"));
    expect(manualRunName("report", "deploy-42")).not.toBe(manualRunName("report", "Deploy-42"));
  });

  test("the name is a valid DNS label for a valid PeriodicTask name", () => {
    expect(manualRunName("nightly-report", "anything at all")).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
  });
});

describe("manual and scheduled run names never collide", () => {
  const tokens = Array.from({ length: 2000 }, (_, i) => `token-${i}`);

  test("a manual suffix starts with m, a scheduled one is all digits", () => {
    for (const token of tokens) {
      const suffix = manualRunName("report", token).slice("report-".length);
      expect(suffix).toMatch(/^m/);
      expect(suffix).not.toMatch(/^[0-9]+$/);
    }
    expect(scheduledRunName("report", TEN_OCLOCK).slice("report-".length)).toMatch(/^[0-9]+$/);
  });

  test("for every token and every scheduled second tried, the names differ", () => {
    const manual = new Set(tokens.map((t) => manualRunName("report", t)));
    expect(manual.size).toBe(tokens.length);
    for (let s = 0; s < 2000; s++) {
      expect(manual.has(scheduledRunName("report", new Date(TEN_OCLOCK.getTime() + s * 1000)))).toBe(false);
    }
  });

  test("even a token whose digest happens to be all digits keeps the m", () => {
    // About one token in 70 has a digest prefix of digits only; the m still keeps it apart.
    const token = tokens.find((t) => /^[0-9]{9}$/.test(manualRunName("report", t).slice("report-m".length)));
    expect(token).toBeDefined();
    const name = manualRunName("report", token ?? "");
    expect(name).toMatch(/^report-m[0-9]{9}$/);
    expect(name).not.toMatch(/^report-[0-9]+$/);
  });
});

describe("runTaskId: the Celery task id of a run", () => {
  const RUN = scheduledRunName("report", TEN_OCLOCK);

  test("is a version-5 UUID (RFC 4122 variant)", () => {
    expect(runTaskId(UID_A, RUN)).toMatch(UUID);
    expect(runTaskId(UID_A, manualRunName("report", "deploy-42"))).toMatch(UUID);
  });

  test("is deterministic: the same (uid, run name) always gives the same id", () => {
    expect(runTaskId(UID_A, RUN)).toBe(runTaskId(UID_A, RUN));
    expect(runTaskId(UID_A, RUN)).toBe(runTaskId(String(UID_A), `report-${1_798_797_600}`));
  });

  test.each<[string, [string, string], [string, string]]>([
    ["differs between PeriodicTasks (uids) for the same run name", [UID_A, RUN], [UID_B, RUN]],
    [
      "differs between runs of one PeriodicTask",
      [UID_A, RUN],
      [UID_A, scheduledRunName("report", new Date(TEN_OCLOCK.getTime() + 1000))],
    ],
    [
      "differs between a scheduled and a manual run",
      [UID_A, RUN],
      [UID_A, manualRunName("report", "deploy-42")],
    ],
    [
      "differs between PeriodicTasks of different names with the same uid",
      [UID_A, "a-1798797600"],
      [UID_A, "b-1798797600"],
    ],
  ])("%s", (_case, [uidA, nameA], [uidB, nameB]) => {
    expect(runTaskId(uidA, nameA)).not.toBe(runTaskId(uidB, nameB));
  });

  test("a uid that ends where a run name begins does not make two inputs meet", () => {
    // The "/" separator: ("ab", "c-1") and ("a", "bc-1") are different runs.
    expect(runTaskId("ab", "c-1")).not.toBe(runTaskId("a", "bc-1"));
  });
});
