/**
 * Renders the counts of a chaos run (the JSON lines tests/chaos append to chaos-report.jsonl) as the
 * markdown table docs/reliability.md shows: one row per scenario, newest line per scenario wins.
 *
 *   node hack/chaos-table.ts [chaos-report.jsonl]
 */
import { readFileSync } from "node:fs";

const COLUMNS = [
  ["scheduled", "scheduled times"],
  ["runs", "runs"],
  ["duplicates", "duplicates"],
  ["lost", "lost"],
  ["missed", "missed"],
  ["missedEvents", "missed Events"],
  ["nonTerminal", "unfinished"],
  ["succeeded", "succeeded"],
  ["failed", "failed"],
  ["executions", "executions"],
  ["reExecuted", "re-executed"],
] as const;
const KNOWN = new Set<string>([
  "scenario",
  "at",
  "periodicTasks",
  "unexecuted",
  "skipped",
  ...COLUMNS.map(([k]) => k),
]);

const file = process.argv[2] ?? "chaos-report.jsonl";
const latest = new Map<string, Record<string, unknown>>();
for (const line of readFileSync(file, "utf8").split("\n")) {
  if (!line.trim()) continue;
  const row = JSON.parse(line) as Record<string, unknown>;
  latest.set(String(row["scenario"]), row);
}
const header = ["scenario", ...COLUMNS.map(([, title]) => title), "also"];
console.log(`| ${header.join(" | ")} |`);
console.log(`| --- | ${COLUMNS.map(() => "--:").join(" | ")} | --- |`);
for (const [scenario, row] of latest) {
  const extra = Object.entries(row)
    .filter(([k]) => !KNOWN.has(k))
    .map(([k, v]) => `${k}: ${typeof v === "number" ? Math.round(v * 100) / 100 : String(v)}`)
    .join("; ");
  console.log(`| ${scenario} | ${COLUMNS.map(([k]) => String(row[k] ?? "")).join(" | ")} | ${extra} |`);
}
