import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { periodicTaskSchema } from "../../../src/api/index.ts";
import {
  DumpError,
  SOURCE_NAME_ANNOTATION,
  convertDump,
  formatDuration,
  objectName,
  type Converted,
} from "../../../src/migrate/django-celery-beat.ts";
import { compileSchedule } from "../../../src/schedule/index.ts";

const ROOT = resolve(import.meta.dirname, "../../..");
const NODE = resolve(ROOT, "node_modules/.bin/node");
const MAIN = resolve(ROOT, "src/cli/main.ts");
const FIXTURE = resolve(ROOT, "tests/fixtures/django-celery-beat-dump.json");
const dump: unknown = JSON.parse(readFileSync(FIXTURE, "utf8"));

/** The import happens mid-November 2026: the 2030 clocked time is ahead, New Year 2026 is past. */
const IMPORTED_AT = new Date("2026-11-15T00:00:00Z");
const result = convertDump(dump, { namespace: "jobs", now: IMPORTED_AT });

function converted(sourceName: string): Converted {
  const found = result.converted.find((c) => c.source.name === sourceName);
  if (!found) throw new Error(`"${sourceName}" was not converted`);
  return found;
}

describe("convertDump on a dump with every schedule type", () => {
  it.each([
    {
      entry: "Monthly report",
      case: "a crontab keeps its fields and time zone; queue, priority, headers, args, kwargs and expire_seconds go to the template",
      spec: {
        schedule: "0 6 1 * *",
        timeZone: "Asia/Shanghai",
        taskTemplate: {
          spec: {
            task: "app.tasks.monthly_report",
            args: [1, "x"],
            kwargs: { dry_run: false },
            queue: "reports",
            priority: 5,
            headers: { tenant: "acme" },
            expires: 3600,
          },
        },
      },
    },
    {
      entry: "business hours poll",
      case: "weekday names become cron names, and a disabled entry is suspended",
      spec: {
        schedule: "*/15 9-17 * * MON-FRI",
        timeZone: "America/New_York",
        suspend: true,
        taskTemplate: { spec: { task: "app.tasks.poll" } },
      },
    },
    {
      entry: "first monday",
      case: "celery's AND of 'monday' and days 1-7 becomes MON#1",
      spec: {
        schedule: "0 9 * * MON#1",
        timeZone: "UTC",
        taskTemplate: { spec: { task: "app.tasks.standup" } },
      },
    },
    {
      entry: "every 30s",
      case: "an interval in seconds becomes @every",
      spec: { schedule: "@every 30s", taskTemplate: { spec: { task: "app.tasks.heartbeat" } } },
    },
    {
      entry: "every 5m once",
      case: "an interval in minutes, one_off, becomes maxRuns 1",
      spec: { schedule: "@every 5m", maxRuns: 1, taskTemplate: { spec: { task: "app.tasks.warm_cache" } } },
    },
    {
      entry: "every 2h",
      case: "an interval in hours keeps its start_time as startTime",
      spec: {
        schedule: "@every 2h",
        startTime: "2026-12-01T00:00:00Z",
        taskTemplate: { spec: { task: "app.tasks.sync" } },
      },
    },
    {
      entry: "daily cleanup",
      case: "an interval in days is written in hours, and an absolute expires becomes endTime",
      spec: {
        schedule: "@every 24h",
        endTime: "2027-12-01T00:00:00Z",
        taskTemplate: { spec: { task: "app.tasks.del_redis_data" } },
      },
    },
    {
      entry: "two seconds",
      case: "an interval of whole seconds in microseconds converts",
      spec: { schedule: "@every 2s", taskTemplate: { spec: { task: "app.tasks.tick" } } },
    },
    {
      entry: "launch",
      case: "a clocked time becomes one run at that second: a yearly schedule held to it by startTime, endTime and maxRuns 1",
      spec: {
        schedule: "0 30 12 1 6 *",
        timeZone: "UTC",
        startTime: "2030-06-01T12:30:00Z",
        endTime: "2030-06-01T12:31:00Z",
        maxRuns: 1,
        taskTemplate: { spec: { task: "app.tasks.launch" } },
      },
    },
  ])("$entry: $case", ({ entry, spec }) => {
    expect(converted(entry).manifest.spec).toEqual(spec);
  });

  it.each([
    {
      entry: "friday the 13th",
      reason: /celery runs on days that match both, cron on days that match either/,
    },
    { entry: "sub-second", reason: /1500000 microseconds: cadent's smallest interval unit is a second/ },
    { entry: "sunrise", reason: /solar schedule 'sunrise' .*sunrise and sunset move every day/ },
    { entry: "too urgent", reason: /spec\.taskTemplate\.spec\.priority/ },
  ])("skips $entry, saying why", ({ entry, reason }) => {
    const skipped = result.skipped.find((s) => s.source.name === entry);
    expect(skipped?.reason).toMatch(reason);
  });

  it("converts every other entry: nothing is dropped silently", () => {
    const entries = (dump as { model: string }[]).filter(
      (r) => r.model === "django_celery_beat.periodictask",
    );
    expect(result.converted.length + result.skipped.length).toBe(entries.length);
    expect(result.skipped.map((s) => s.source.name).sort()).toEqual(
      ["friday the 13th", "sub-second", "sunrise", "too urgent"].sort(),
    );
  });

  it("writes manifests the API accepts, with schedules the controller's engine compiles", () => {
    for (const { manifest } of result.converted) {
      const parsed = periodicTaskSchema.safeParse(manifest);
      expect(parsed.error?.issues ?? [], manifest.metadata.name).toEqual([]);
      const spec = parsed.data?.spec;
      if (!spec) continue;
      const schedule = compileSchedule({
        expression: spec.schedule,
        timeZone: spec.timeZone,
        hashKey: `jobs/${manifest.metadata.name}`,
        createdAt: IMPORTED_AT,
      });
      expect(schedule.next(IMPORTED_AT), manifest.metadata.name).not.toBeNull();
    }
  });

  it("keeps the seed's meaning: the monthly report fires at 06:00 Shanghai time on the 1st", () => {
    const schedule = compileSchedule({
      expression: "0 6 1 * *",
      timeZone: "Asia/Shanghai",
      hashKey: "",
      createdAt: IMPORTED_AT,
    });
    expect(converted("Monthly report").manifest.spec).toMatchObject({
      schedule: "0 6 1 * *",
      timeZone: "Asia/Shanghai",
    });
    expect(schedule.next(IMPORTED_AT)?.toISOString()).toBe("2026-11-30T22:00:00.000Z");
  });

  it("names objects in DNS-1123 form, in the namespace asked for, and keeps the original name in an annotation", () => {
    const cleanup = converted("celery.backend_cleanup").manifest.metadata;
    expect(cleanup).toEqual({
      name: "celery-backend-cleanup",
      namespace: "jobs",
      annotations: { [SOURCE_NAME_ANNOTATION]: "celery.backend_cleanup" },
    });
  });

  it.each([
    {
      entry: "celery.backend_cleanup",
      note: "exchange 'celery' and routing_key 'celery' dropped: cadent publishes to spec.queue directly",
    },
    { entry: "new year 2026", note: /clocked time 2026-01-01T00:00:00Z has passed/ },
    { entry: "daily cleanup", note: /expires 2027-12-01T00:00:00Z became endTime/ },
  ])("notes what changes meaning for $entry", ({ entry, note }) => {
    expect(converted(entry).notes).toContainEqual(
      typeof note === "string" ? note : expect.stringMatching(note),
    );
  });
});

describe("objectName", () => {
  it.each([
    { original: "Monthly report", name: "monthly-report" },
    { original: "celery.backend_cleanup", name: "celery-backend-cleanup" },
    { original: "  --Ünïcode Tâsk--  ", name: "unicode-task" },
    { original: "!!!", name: "task" },
  ])("'$original' becomes '$name'", ({ original, name }) => {
    expect(objectName(original)).toBe(name);
  });

  it("cuts a long name to 52 characters with a stable hash of the original, so re-imports match", () => {
    const long = "A very long periodic task name that goes on and on past the fifty-two character limit";
    const name = objectName(long);
    expect(name).toHaveLength(52);
    expect(name).toMatch(/^a-very-long-periodic-task-name-that-goes-on-[0-9a-f]{8}$/);
    expect(objectName(long)).toBe(name);
    expect(converted(long).manifest.metadata.name).toBe(name);
  });

  it("gives a second entry whose name sanitizes the same a hashed name", () => {
    expect(objectName("Foo Bar", new Set(["foo-bar"]))).toMatch(/^foo-bar-[0-9a-f]{8}$/);
  });
});

describe("formatDuration", () => {
  it.each([
    { seconds: 1, text: "1s" },
    { seconds: 90, text: "1m30s" },
    { seconds: 3600, text: "1h" },
    { seconds: 5400, text: "1h30m" },
    { seconds: 86_400 * 2 + 1, text: "48h1s" },
  ])("$seconds s is $text", ({ seconds, text }) => {
    expect(formatDuration(seconds)).toBe(text);
  });
});

describe("convertDump on input that is not a dump", () => {
  it.each([
    { input: { model: "x" }, case: "an object instead of an array" },
    { input: [{ fields: {} }], case: "records without a model" },
    { input: [{ model: "auth.user", pk: 1, fields: {} }], case: "a dump of another app" },
  ])("throws DumpError for $case", ({ input }) => {
    expect(() => convertDump(input, { now: IMPORTED_AT })).toThrow(DumpError);
  });
});

describe("cadent import django-celery-beat (child process)", () => {
  const dir = mkdtempSync(join(tmpdir(), "cadent-import-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function cadent(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((done) => {
      execFile(NODE, [MAIN, ...args], { cwd: ROOT }, (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === "number" ? err.code : -1;
        done({ code, stdout, stderr });
      });
    });
  }

  function file(name: string, content: string): string {
    const path = join(dir, name);
    writeFileSync(path, content);
    return path;
  }

  it("exits 0 and prints only manifests when every entry converts", async () => {
    const convertible = (dump as { model: string; fields: { name?: string } }[]).filter(
      (r) => r.model !== "django_celery_beat.periodictask" || r.fields.name === "Monthly report",
    );
    const { code, stdout, stderr } = await cadent(
      "import",
      "django-celery-beat",
      file("ok.json", JSON.stringify(convertible)),
    );
    expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
    const docs = parseAllDocuments(stdout);
    const expected = convertDump(convertible, { now: IMPORTED_AT }).converted.map((c) => c.manifest);
    expect(expected.map((m) => m.metadata.name)).toEqual(["monthly-report"]);
    expect(Array.isArray(docs) ? docs.map((d) => d.toJS() as unknown) : []).toEqual(expected);
  });

  it("exits 1 when some entries cannot be converted, still printing the others as YAML documents", async () => {
    const { code, stdout, stderr } = await cadent("import", "django-celery-beat", FIXTURE, "-n", "jobs");
    expect(code).toBe(1);
    const docs = parseAllDocuments(stdout);
    const manifests = Array.isArray(docs) ? docs.map((d) => d.toJS() as unknown) : [];
    expect(manifests).toHaveLength(result.converted.length);
    for (const m of manifests) expect(periodicTaskSchema.safeParse(m).success).toBe(true);
    expect(stderr).toContain('skipped: "sunrise" (pk 14): solar schedule');
    expect(stderr).toContain("error: 4 of 16 entries could not be converted");
  });

  it.each([
    { case: "a missing file", path: () => join(dir, "missing.json"), message: /ENOENT/ },
    { case: "a file that is not JSON", path: () => file("bad.json", "{not json"), message: /JSON/ },
    {
      case: "JSON that is not a dumpdata array",
      path: () => file("object.json", "{}"),
      message: /expected the JSON array that `manage.py dumpdata django_celery_beat` writes/,
    },
  ])("exits 2 on $case", async ({ path, message }) => {
    const { code, stdout, stderr } = await cadent("import", "django-celery-beat", path());
    expect({ code, stdout }).toEqual({ code: 2, stdout: "" });
    expect(stderr).toMatch(message);
  });
});
