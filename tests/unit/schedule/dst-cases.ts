/**
 * The daylight-saving table of product.md §2, as data. The DST tests iterate it and
 * hack/render-schedule-docs.ts renders it into docs/schedules.md, so the specification, the tests
 * and the documentation are one table (dst-table.test.ts fails when the doc is stale).
 *
 * Expected fire times are written by hand from the rules, never produced by the engine.
 */
import { DateTime } from "luxon";

export type ScheduleKind = "fixed-time" | "wildcard";

export interface DstCase {
  readonly zone: string;
  /** The local clock change the case is about. */
  readonly change: string;
  readonly expression: string;
  readonly kind: ScheduleKind;
  /** Fire times strictly after this instant are listed. */
  readonly after: string;
  /** The next fire times, in order (RFC 3339, UTC). */
  readonly fires: readonly string[];
  /** Why these times, in the words of the rules. */
  readonly rule: string;
}

const NY_SPRING = "2027-03-14: 02:00 EST → 03:00 EDT";
const NY_FALL = "2027-11-07: 02:00 EDT → 01:00 EST";
const LONDON_SPRING = "2027-03-28: 01:00 GMT → 02:00 BST";
const LONDON_FALL = "2027-10-31: 02:00 BST → 01:00 GMT";
const LORD_HOWE_SPRING = "2027-10-03: 02:00 (+10:30) → 02:30 (+11:00)";
const LORD_HOWE_FALL = "2027-04-04: 02:00 (+11:00) → 01:30 (+10:30)";

export const DST_CASES: readonly DstCase[] = [
  {
    zone: "America/New_York",
    change: NY_SPRING,
    expression: "30 2 * * *",
    kind: "fixed-time",
    after: "2027-03-14T04:00:00Z",
    fires: ["2027-03-14T07:00:00Z", "2027-03-15T06:30:00Z"],
    rule: "02:30 does not exist: runs once at the first instant after the gap",
  },
  {
    zone: "America/New_York",
    change: NY_SPRING,
    expression: "15,45 2 * * *",
    kind: "fixed-time",
    after: "2027-03-14T04:00:00Z",
    fires: ["2027-03-14T07:00:00Z", "2027-03-15T06:15:00Z", "2027-03-15T06:45:00Z"],
    rule: "two local times in the gap still make one run",
  },
  {
    zone: "America/New_York",
    change: NY_SPRING,
    expression: "0 2,3 * * *",
    kind: "fixed-time",
    after: "2027-03-14T04:00:00Z",
    fires: ["2027-03-14T07:00:00Z", "2027-03-15T06:00:00Z", "2027-03-15T07:00:00Z"],
    rule: "02:00 (in the gap) and 03:00 are the same instant that day: one run",
  },
  {
    zone: "America/New_York",
    change: NY_SPRING,
    expression: "30 30 2 * * *",
    kind: "fixed-time",
    after: "2027-03-14T04:00:00Z",
    fires: ["2027-03-14T07:00:00Z", "2027-03-15T06:30:30Z"],
    rule: "a seconds field that is not * or */n keeps the schedule fixed-time",
  },
  {
    zone: "America/New_York",
    change: NY_SPRING,
    expression: "*/30 * * * *",
    kind: "wildcard",
    after: "2027-03-14T06:10:00Z",
    fires: ["2027-03-14T06:30:00Z", "2027-03-14T07:00:00Z", "2027-03-14T07:30:00Z"],
    rule: "02:00 and 02:30 do not exist and are skipped",
  },
  {
    zone: "America/New_York",
    change: NY_SPRING,
    expression: "*/20 30 2 * * *",
    kind: "wildcard",
    after: "2027-03-14T04:00:00Z",
    fires: ["2027-03-15T06:30:00Z", "2027-03-15T06:30:20Z"],
    rule: "seconds */20 make it a wildcard schedule: the day's 02:30 is skipped",
  },
  {
    zone: "America/New_York",
    change: NY_FALL,
    expression: "30 1 * * *",
    kind: "fixed-time",
    after: "2027-11-07T04:00:00Z",
    fires: ["2027-11-07T05:30:00Z", "2027-11-08T06:30:00Z"],
    rule: "01:30 happens twice: runs at its first occurrence (EDT) only",
  },
  {
    zone: "America/New_York",
    change: NY_FALL,
    expression: "0 1-3 * * *",
    kind: "fixed-time",
    after: "2027-11-07T04:00:00Z",
    fires: ["2027-11-07T05:00:00Z", "2027-11-07T07:00:00Z", "2027-11-07T08:00:00Z"],
    rule: "an hour range is fixed-time: 01:00 once (EDT), then 02:00 and 03:00 EST",
  },
  {
    zone: "America/New_York",
    change: NY_FALL,
    expression: "*/30 * * * *",
    kind: "wildcard",
    after: "2027-11-07T04:45:00Z",
    fires: [
      "2027-11-07T05:00:00Z",
      "2027-11-07T05:30:00Z",
      "2027-11-07T06:00:00Z",
      "2027-11-07T06:30:00Z",
      "2027-11-07T07:00:00Z",
    ],
    rule: "follows real time: 01:00 and 01:30 run in EDT and again in EST",
  },
  {
    zone: "America/New_York",
    change: NY_FALL,
    expression: "0 * * * *",
    kind: "wildcard",
    after: "2027-11-07T04:30:00Z",
    fires: ["2027-11-07T05:00:00Z", "2027-11-07T06:00:00Z", "2027-11-07T07:00:00Z"],
    rule: "a fixed minute with hour * is a wildcard schedule: 01:00 EDT, 01:00 EST, 02:00 EST",
  },
  {
    zone: "Europe/London",
    change: LONDON_SPRING,
    expression: "30 1 * * *",
    kind: "fixed-time",
    after: "2027-03-27T12:00:00Z",
    fires: ["2027-03-28T01:00:00Z", "2027-03-29T00:30:00Z"],
    rule: "01:30 does not exist: runs at 02:00 BST",
  },
  {
    zone: "Europe/London",
    change: LONDON_SPRING,
    expression: "*/30 * * * *",
    kind: "wildcard",
    after: "2027-03-28T00:15:00Z",
    fires: ["2027-03-28T00:30:00Z", "2027-03-28T01:00:00Z", "2027-03-28T01:30:00Z"],
    rule: "01:00 and 01:30 do not exist and are skipped",
  },
  {
    zone: "Europe/London",
    change: LONDON_FALL,
    expression: "30 1 * * *",
    kind: "fixed-time",
    after: "2027-10-30T23:00:00Z",
    fires: ["2027-10-31T00:30:00Z", "2027-11-01T01:30:00Z"],
    rule: "01:30 happens twice: runs at its first occurrence (BST) only",
  },
  {
    zone: "Europe/London",
    change: LONDON_FALL,
    expression: "*/30 1 * * *",
    kind: "wildcard",
    after: "2027-10-31T00:00:00Z",
    fires: ["2027-10-31T00:30:00Z", "2027-10-31T01:00:00Z", "2027-10-31T01:30:00Z", "2027-11-01T01:00:00Z"],
    rule: "minute */30 makes it a wildcard schedule: the repeated 01:00 and 01:30 run twice",
  },
  {
    zone: "Australia/Lord_Howe",
    change: LORD_HOWE_SPRING,
    expression: "15 2 * * *",
    kind: "fixed-time",
    after: "2027-10-02T00:00:00Z",
    fires: ["2027-10-02T15:30:00Z", "2027-10-03T15:15:00Z"],
    rule: "02:15 is in the 30-minute gap: runs once at 02:30 (+11:00)",
  },
  {
    zone: "Australia/Lord_Howe",
    change: LORD_HOWE_SPRING,
    expression: "*/15 * * * *",
    kind: "wildcard",
    after: "2027-10-02T15:10:00Z",
    fires: ["2027-10-02T15:15:00Z", "2027-10-02T15:30:00Z", "2027-10-02T15:45:00Z"],
    rule: "02:00 and 02:15 do not exist and are skipped",
  },
  {
    zone: "Australia/Lord_Howe",
    change: LORD_HOWE_FALL,
    expression: "45 1 * * *",
    kind: "fixed-time",
    after: "2027-04-03T13:00:00Z",
    fires: ["2027-04-03T14:45:00Z", "2027-04-04T15:15:00Z"],
    rule: "01:45 happens twice: runs at its first occurrence (+11:00) only",
  },
  {
    zone: "Australia/Lord_Howe",
    change: LORD_HOWE_FALL,
    expression: "*/15 1 * * *",
    kind: "wildcard",
    after: "2027-04-03T14:20:00Z",
    fires: [
      "2027-04-03T14:30:00Z",
      "2027-04-03T14:45:00Z",
      "2027-04-03T15:00:00Z",
      "2027-04-03T15:15:00Z",
      "2027-04-04T14:30:00Z",
    ],
    rule: "the repeated half hour (01:30, 01:45) runs again at +10:30",
  },
  {
    zone: "Asia/Shanghai",
    change: "none (no daylight saving since 1991)",
    expression: "0 6 1 * *",
    kind: "fixed-time",
    after: "2026-11-15T00:00:00Z",
    fires: ["2026-11-30T22:00:00Z", "2026-12-31T22:00:00Z", "2027-01-31T22:00:00Z"],
    rule: "the seed's crontab(hour=6, minute=0, day_of_month='1'): 06:00 local on the 1st",
  },
  {
    zone: "Asia/Shanghai",
    change: "none (no daylight saving since 1991)",
    expression: "*/30 * * * *",
    kind: "wildcard",
    after: "2027-03-13T18:10:00Z",
    fires: ["2027-03-13T18:30:00Z", "2027-03-13T19:00:00Z", "2027-03-13T19:30:00Z"],
    rule: "every local time exists exactly once",
  },
  {
    zone: "UTC",
    change: "none",
    expression: "30 2 * * *",
    kind: "fixed-time",
    after: "2027-03-14T00:00:00Z",
    fires: ["2027-03-14T02:30:00Z", "2027-03-15T02:30:00Z"],
    rule: "the default zone; no daylight saving",
  },
  {
    zone: "UTC",
    change: "none",
    expression: "*/30 * * * *",
    kind: "wildcard",
    after: "2027-11-07T00:50:00Z",
    fires: ["2027-11-07T01:00:00Z", "2027-11-07T01:30:00Z", "2027-11-07T02:00:00Z"],
    rule: "every local time exists exactly once",
  },
];

/**
 * "2027-03-14 03:00 -04:00 = 07:00Z": local time with its numeric offset (abbreviations such as EDT
 * depend on the ICU build, offsets do not), then UTC, with the UTC date when it differs.
 */
function describeInstant(iso: string, zone: string): string {
  const trim = (text: string): string => text.replace(/(\d{2}:\d{2}):00\b/, "$1");
  const utc = DateTime.fromISO(iso, { zone: "UTC" });
  if (zone === "UTC") return trim(utc.toFormat("yyyy-MM-dd HH:mm:ss")) + "Z";
  const local = DateTime.fromISO(iso, { zone });
  const sameDate = local.toISODate() === utc.toISODate();
  const utcText = trim(utc.toFormat(sameDate ? "HH:mm:ss" : "yyyy-MM-dd HH:mm:ss")) + "Z";
  return `${trim(local.toFormat("yyyy-MM-dd HH:mm:ss"))} ${local.toFormat("ZZ")} = ${utcText}`;
}

/** The markdown table in docs/schedules.md. */
export function renderDstTable(cases: readonly DstCase[] = DST_CASES): string {
  const lines = [
    "| Zone | Clock change | Schedule | Kind | After | Runs at (local = UTC) | Why |",
    "|---|---|---|---|---|---|---|",
  ];
  for (const c of cases) {
    const after = describeInstant(c.after, c.zone);
    const fires = c.fires.map((f) => describeInstant(f, c.zone)).join("<br>");
    lines.push(
      `| ${c.zone} | ${c.change} | \`${c.expression}\` | ${c.kind} | ${after} | ${fires} | ${c.rule} |`,
    );
  }
  return lines.join("\n");
}

export const DST_TABLE_BEGIN =
  "<!-- dst-table:begin (generated from tests/unit/schedule/dst-cases.ts by npm run docs:schedules) -->";
export const DST_TABLE_END = "<!-- dst-table:end -->";

/** The text between the markers of `doc`, or null when a marker is missing. */
export function currentDstTable(doc: string): string | null {
  const begin = doc.indexOf(DST_TABLE_BEGIN);
  const end = doc.indexOf(DST_TABLE_END);
  if (begin < 0 || end < begin) return null;
  return doc.slice(begin + DST_TABLE_BEGIN.length, end).trim();
}

/**
 * The cells of a markdown table, row by row, without the separator row: what the table says,
 * whatever column padding a formatter chose.
 */
export function tableCells(markdown: string): string[][] {
  return markdown
    .split("\n")
    .filter((line) => line.trim().startsWith("|"))
    .map((line) =>
      line
        .trim()
        .replace(/^\||\|$/g, "")
        .split("|")
        .map((cell) => cell.trim()),
    )
    .filter((cells) => !cells.every((cell) => /^:?-+:?$/.test(cell)));
}

/** `doc` with the generated table between the markers. */
export function withDstTable(doc: string): string {
  const begin = doc.indexOf(DST_TABLE_BEGIN);
  const end = doc.indexOf(DST_TABLE_END);
  if (begin < 0 || end < begin) throw new Error(`markers ${DST_TABLE_BEGIN} ... ${DST_TABLE_END} not found`);
  return `${doc.slice(0, begin + DST_TABLE_BEGIN.length)}\n\n${renderDstTable()}\n\n${doc.slice(end)}`;
}
