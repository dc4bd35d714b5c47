/**
 * Schedule engine benchmark: compile 100,000 distinct schedules (varied expressions, time zones and
 * hash keys) and compute the next fire time of each. Prints a markdown table; the method and the
 * numbers are written up in docs/benchmarks.md ("## Schedule engine").
 *
 *   npm run bench:schedule            # or: node bench/schedule-next.ts [--count N] [--runs N]
 */
import { availableParallelism, cpus, loadavg } from "node:os";
import { CronExpressionParser } from "cron-parser";
import { clearScheduleCaches, compileSchedule, type CompiledSchedule } from "../src/schedule/index.ts";

const args = process.argv.slice(2);
const option = (name: string, fallback: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const COUNT = option("--count", 100_000);
const RUNS = Math.max(5, option("--runs", 5));
const BASELINE_COUNT = option("--baseline", 5_000);
const FROM = new Date("2026-11-01T03:17:42Z");
const CREATED = new Date("2026-01-01T00:00:00Z");

const ZONES = [
  "UTC",
  "America/New_York",
  "America/Chicago",
  "America/Denver",
  "America/Los_Angeles",
  "America/Sao_Paulo",
  "America/Santiago",
  "America/Havana",
  "America/St_Johns",
  "Europe/London",
  "Europe/Berlin",
  "Europe/Paris",
  "Europe/Moscow",
  "Europe/Kyiv",
  "Africa/Cairo",
  "Africa/Casablanca",
  "Asia/Shanghai",
  "Asia/Tokyo",
  "Asia/Kolkata",
  "Asia/Kathmandu",
  "Asia/Tehran",
  "Asia/Jerusalem",
  "Asia/Singapore",
  "Australia/Sydney",
  "Australia/Adelaide",
  "Australia/Lord_Howe",
  "Pacific/Auckland",
  "Pacific/Chatham",
  "Pacific/Apia",
  "Antarctica/Troll",
];

/** A small deterministic PRNG (mulberry32) so every run benchmarks the same schedules. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function generate(count: number): { expression: string; timeZone: string; hashKey: string }[] {
  const rand = prng(42);
  const int = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)] as T;
  const list = (lo: number, hi: number): string => {
    const values = new Set<number>();
    const n = int(2, 4);
    while (values.size < n) values.add(int(lo, hi));
    return [...values].sort((a, b) => a - b).join(",");
  };
  const range = (lo: number, hi: number): string => {
    const a = int(lo, hi - 1);
    return `${a}-${int(a + 1, hi)}`;
  };
  const minute = (): string =>
    pick([
      () => String(int(0, 59)),
      () => String(int(0, 59)),
      () => "H",
      () => `H/${pick([5, 10, 15, 20, 30])}`,
      () => `*/${pick([1, 2, 5, 10, 15, 30])}`,
      () => list(0, 59),
      () => range(0, 59),
      () => `H(${range(0, 59)})`,
    ])();
  const hour = (): string =>
    pick([
      () => "*",
      () => "*",
      () => String(int(0, 23)),
      () => String(int(0, 23)),
      () => range(0, 23),
      () => `*/${pick([2, 3, 4, 6, 8, 12])}`,
      () => list(0, 23),
      () => "H",
      () => `${range(0, 23)}/${int(2, 4)}`,
    ])();
  const dom = (): string =>
    pick(["*", "*", "*", "*", "1", "15", "L", "1,15", "*/2", "1-7", "H", "?", String(int(1, 28)), "28-31"]);
  const month = (): string =>
    pick(["*", "*", "*", "*", "*/3", "JAN,JUL", "1-6", String(int(1, 12)), "MAR-NOV"]);
  const dow = (): string =>
    pick([
      "*",
      "*",
      "*",
      "*",
      "1-5",
      "MON-FRI",
      "0",
      "5L",
      "5#2",
      "1,3,5",
      "SAT,SUN",
      "?",
      String(int(0, 6)),
    ]);
  const seen = new Set<string>();
  const out: { expression: string; timeZone: string; hashKey: string }[] = [];
  while (out.length < count) {
    const r = rand();
    let expression: string;
    if (r < 0.02) expression = pick(["@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@midnight"]);
    else if (r < 0.05)
      expression = `@every ${pick(["", `${int(1, 48)}h`])}${int(1, 59)}m${pick(["", `${int(1, 59)}s`])}`;
    else {
      const five = `${minute()} ${hour()} ${dom()} ${month()} ${dow()}`;
      expression = rand() < 0.15 ? `${pick(["0", "30", "*/10", "H", String(int(0, 59))])} ${five}` : five;
    }
    const timeZone = pick(ZONES);
    const id = `${expression}\u0000${timeZone}`;
    if (seen.has(id)) continue;
    seen.add(id);
    out.push({ expression, timeZone, hashKey: `default/task-${out.length}` });
  }
  return out;
}

interface Timing {
  compileMs: number;
  nextMs: number;
  invalid: number;
}

function runOnce(inputs: ReturnType<typeof generate>, cold: boolean): Timing {
  if (cold) clearScheduleCaches();
  const compiled: CompiledSchedule[] = [];
  let invalid = 0;
  const t0 = performance.now();
  for (const input of inputs) {
    try {
      compiled.push(compileSchedule({ ...input, createdAt: CREATED }));
    } catch {
      invalid++; // e.g. "0 0 31 2 *" drawn by chance: refused, as the controller would.
    }
  }
  const t1 = performance.now();
  let checksum = 0;
  for (const schedule of compiled) checksum += schedule.next(FROM)?.getTime() ?? 0;
  const t2 = performance.now();
  if (checksum === 0) throw new Error("no fire times computed");
  return { compileMs: t1 - t0, nextMs: t2 - t1, invalid };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

function baseline(inputs: ReturnType<typeof generate>): { perOpUs: number; count: number; failures: number } {
  // cron-parser alone (parse + next with tz), on the cron expressions without H or @every, which
  // it would read differently: what this engine would cost if it delegated to cron-parser.
  const plain = inputs
    .filter((i) => !i.expression.includes("H") && !i.expression.startsWith("@"))
    .slice(0, BASELINE_COUNT);
  let failures = 0;
  const t0 = performance.now();
  for (const input of plain) {
    try {
      CronExpressionParser.parse(input.expression, { currentDate: FROM, tz: input.timeZone }).next();
    } catch {
      failures++;
    }
  }
  return { perOpUs: ((performance.now() - t0) * 1000) / plain.length, count: plain.length, failures };
}

const inputs = generate(COUNT);
const distinctExpressions = new Set(inputs.map((i) => i.expression)).size;
runOnce(inputs.slice(0, 2000), false); // let the JIT see the code once

const cold: Timing[] = [];
const warm: Timing[] = [];
for (let i = 0; i < RUNS; i++) cold.push(runOnce(inputs, true));
for (let i = 0; i < RUNS; i++) warm.push(runOnce(inputs, false));
const base = baseline(inputs);

const row = (label: string, timings: Timing[]): string => {
  const c = median(timings.map((t) => t.compileMs));
  const n = median(timings.map((t) => t.nextMs));
  const total = median(timings.map((t) => t.compileMs + t.nextMs));
  const us = (ms: number): string => ((ms * 1000) / COUNT).toFixed(2);
  return `| ${label} | ${c.toFixed(0)} ms | ${n.toFixed(0)} ms | ${total.toFixed(0)} ms | ${us(c)} µs | ${us(n)} µs | ${us(total)} µs |`;
};

console.log(
  `${cpus()[0]?.model ?? "unknown CPU"}, ${availableParallelism()} cores, load average ${loadavg()
    .map((l) => l.toFixed(1))
    .join(" ")} at the end\n`,
);
console.log(
  `${COUNT.toLocaleString("en-US")} schedules (${distinctExpressions.toLocaleString("en-US")} distinct expressions, ${ZONES.length} time zones, ${warm[0]?.invalid ?? 0} refused as never firing); median of ${RUNS} runs; node ${process.version}\n`,
);
console.log("| caches | compile | next | total | compile / op | next / op | total / op |");
console.log("|---|---:|---:|---:|---:|---:|---:|");
console.log(row("cold (cleared before each run)", cold));
console.log(row("warm (parsed fields and zone tables reused)", warm));
console.log(
  `\nFor comparison, cron-parser 5 parse + next() with tz: ${base.perOpUs.toFixed(1)} µs per schedule (${base.count} schedules without H/@every${base.failures > 0 ? `, ${base.failures} refused` : ""}), i.e. ${((base.perOpUs * COUNT) / 1e6).toFixed(1)} s for ${COUNT.toLocaleString("en-US")}.`,
);
