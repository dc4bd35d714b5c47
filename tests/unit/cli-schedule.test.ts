import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const NODE = fileURLToPath(new URL("../../node_modules/.bin/node", import.meta.url));

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function cadent(...args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    execFile(NODE, ["src/cli/main.ts", ...args], { cwd: ROOT }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === "number" ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

describe("cadent schedule next", () => {
  test("prints the seed's 06:00-on-the-1st schedule in Asia/Shanghai as UTC times, one per line", async () => {
    const result = await cadent(
      "schedule",
      "next",
      "0 6 1 * *",
      "--tz",
      "Asia/Shanghai",
      "--from",
      "2026-11-15T00:00:00Z",
      "--count",
      "3",
    );
    expect(result).toEqual({
      code: 0,
      stdout: "2026-11-30T22:00:00Z\n2026-12-31T22:00:00Z\n2027-01-31T22:00:00Z\n",
      stderr: "",
    });
  });

  test("prints five times by default, and --from accepts an offset", async () => {
    const result = await cadent("schedule", "next", "@hourly", "--from", "2027-01-01T09:30:00+09:00");
    expect(result.code).toBe(0);
    expect(result.stdout.trim().split("\n")).toEqual([
      "2027-01-01T01:00:00Z",
      "2027-01-01T02:00:00Z",
      "2027-01-01T03:00:00Z",
      "2027-01-01T04:00:00Z",
      "2027-01-01T05:00:00Z",
    ]);
  });

  test("uses the controller's daylight-saving rules: 02:30 in New York's spring gap runs at 03:00 EDT", async () => {
    const result = await cadent(
      "schedule",
      "next",
      "30 2 * * *",
      "--tz",
      "America/New_York",
      "--from",
      "2027-03-14T04:00:00Z",
      "--count",
      "2",
    );
    expect(result.stdout).toBe("2027-03-14T07:00:00Z\n2027-03-15T06:30:00Z\n");
  });

  test("hashes H from --key, as the controller does for that PeriodicTask", async () => {
    const result = await cadent(
      "schedule",
      "next",
      "H * * * *",
      "--key",
      "default/nightly-report",
      "--from",
      "2027-01-01T00:00:00Z",
      "--count",
      "1",
    );
    expect(result).toEqual({ code: 0, stdout: "2027-01-01T00:36:00Z\n", stderr: "" });
  });

  test("without --key, H still works and a note on stderr says which key was used", async () => {
    const result = await cadent(
      "schedule",
      "next",
      "H * * * *",
      "--from",
      "2027-01-01T00:00:00Z",
      "--count",
      "1",
    );
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^2027-01-01T00:\d\d:00Z\n$/);
    expect(result.stderr).toMatch(/^note: H was hashed from an empty key/);
  });

  test("counts @every from --created", async () => {
    const result = await cadent(
      "schedule",
      "next",
      "@every 1h30m",
      "--created",
      "2027-01-01T10:00:00Z",
      "--from",
      "2027-01-01T12:00:00Z",
      "--count",
      "2",
    );
    expect(result.stdout).toBe("2027-01-01T13:00:00Z\n2027-01-01T14:30:00Z\n");
  });

  test.each([
    [["0 0 30 2 *"], "error: schedule '0 0 30 2 *' never fires: February has no 30th"],
    [["0 25 * * *"], "error: field 2 (hour) '25' is out of range 0-23"],
    [
      ["0 * * * *", "--tz", "Mars/Olympus"],
      "error: time zone 'Mars/Olympus' is not a known IANA time zone name",
    ],
    [
      ["0 * * * *", "--from", "yesterday"],
      "'yesterday' is not an RFC 3339 time such as 2026-12-01T06:00:00Z",
    ],
    [["0 * * * *", "--count", "0"], "must be a whole number from 1 to 1000"],
    [[], "error: missing required argument 'expression'"],
  ])("refuses %j on stderr with exit status 2 and prints nothing on stdout", async (args, message) => {
    const result = await cadent("schedule", "next", ...args);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain(message);
  });
});
