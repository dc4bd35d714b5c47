/**
 * Worker throughput: how fast one cadent worker process drains a queue of no-op tasks, with results
 * stored, next to one Python Celery worker (prefork, concurrency 2) and one celery-node worker on
 * the same private Redis.
 * Prints a markdown table; the method and numbers are written up in docs/benchmarks.md
 * ("## Worker throughput").
 *
 *   npm run bench:worker    # or: node bench/worker.ts [--tasks N] [--celery-tasks N] [--runs N]
 *                           #       [--concurrency N] [--prefetch-multiplier N] [--skip-celery]
 *                           #       [--celery-node-tasks N] [--skip-celery-node]
 *
 * One run: the queue is filled with N messages as Celery's `send_task` writes them, a worker
 * process is started, and the run ends when every task has a SUCCESS result. Throughput is
 * (N - 1) / (last date_done - first date_done), which leaves the process start-up out for both.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { decodeResult, encodeTaskMessage, resultKey } from "../src/celery/index.ts";
import { PYTHON_APPS_DIR } from "../tests/support/celery.ts";
import { REPO_ROOT, toolPaths } from "../tests/support/environment.ts";
import { spawnTracked } from "../tests/support/processes.ts";
import type { TrackedProcess } from "../tests/support/processes.ts";
import { startRedis } from "../tests/support/redis.ts";

const args = process.argv.slice(2);
const option = (name: string, fallback: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const CADENT_TASKS = option("--tasks", 20_000);
const CELERY_TASKS = option("--celery-tasks", 3_000);
const CELERY_NODE_TASKS = option("--celery-node-tasks", 20_000);
const RUNS = Math.max(1, option("--runs", 5));
const CONCURRENCY = option("--concurrency", 64);
const PREFETCH_MULTIPLIER = option("--prefetch-multiplier", 4);
const SKIP_CELERY = args.includes("--skip-celery");
const SKIP_CELERY_NODE = args.includes("--skip-celery-node");
const QUEUE = "bench";
const TASK = "app.tasks.noop";

type System = "cadent" | "celery" | "celery-node";

interface Run {
  tasksPerSecond: number;
  seconds: number;
}

async function fill(redis: Redis, count: number): Promise<string[]> {
  const ids: string[] = [];
  const now = new Date();
  for (let start = 0; start < count; start += 1_000) {
    const pipeline = redis.pipeline();
    for (let i = start; i < Math.min(count, start + 1_000); i++) {
      const id = randomUUID();
      ids.push(id);
      const message = encodeTaskMessage({ task: TASK, id, queue: QUEUE, now, lang: "py" });
      pipeline.lpush(message.key, message.text);
    }
    await pipeline.exec();
  }
  return ids;
}

async function waitForResults(redis: Redis, ids: readonly string[], worker: TrackedProcess): Promise<void> {
  const deadline = Date.now() + 300_000;
  for (;;) {
    const count = Number(await redis.eval("return #redis.call('KEYS', 'celery-task-meta-*')", 0));
    if (count >= ids.length) return;
    if (worker.child.exitCode !== null) throw new Error(`the worker exited early:\n${worker.logTail()}`);
    if (Date.now() > deadline) throw new Error(`only ${count} of ${ids.length} results after 300 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Reads every result, checks it is SUCCESS, and measures first to last completion. */
async function measure(redis: Redis, ids: readonly string[]): Promise<Run> {
  let first = Infinity;
  let last = -Infinity;
  for (let start = 0; start < ids.length; start += 5_000) {
    const values = await redis.mget(...ids.slice(start, start + 5_000).map(resultKey));
    for (const value of values) {
      const decoded = value === null ? null : decodeResult(value);
      if (!decoded?.ok || decoded.meta.status !== "SUCCESS" || decoded.meta.dateDone === null) {
        throw new Error(`a task did not end in SUCCESS: ${String(value)}`);
      }
      const at = decoded.meta.dateDone.date.getTime() + (decoded.meta.dateDone.microsecond % 1000) / 1000;
      first = Math.min(first, at);
      last = Math.max(last, at);
    }
  }
  const seconds = (last - first) / 1000;
  return { seconds, tasksPerSecond: (ids.length - 1) / seconds };
}

async function runOnce(
  system: System,
  count: number,
  redisUrl: string,
  venv: string,
  logDir: string,
): Promise<Run> {
  const redis = new Redis(redisUrl);
  try {
    await redis.flushdb();
    const ids = await fill(redis, count);
    const worker =
      system === "cadent"
        ? spawnTracked({
            name: "bench-cadent-worker",
            command: join(REPO_ROOT, "node_modules/.bin/node"),
            args: [
              join(REPO_ROOT, "src/cli/main.ts"),
              "worker",
              "--tasks",
              join(REPO_ROOT, "bench/worker-tasks.ts"),
              "--queues",
              QUEUE,
              "--concurrency",
              String(CONCURRENCY),
              "--prefetch-multiplier",
              String(PREFETCH_MULTIPLIER),
              "--redis-url",
              redisUrl,
              "--log-level",
              "warn",
              "--hostname",
              "cadent-bench@localhost",
            ],
            logDir,
          })
        : system === "celery-node"
          ? spawnTracked({
              name: "bench-celery-node-worker",
              command: join(REPO_ROOT, "node_modules/.bin/node"),
              args: [join(REPO_ROOT, "bench/celery-node-worker.ts"), redisUrl, QUEUE],
              logDir,
            })
          : spawnTracked({
              name: "bench-celery-worker",
              command: join(venv, "bin", "celery"),
              args: [
                "-A",
                "interop_app",
                "worker",
                "--pool",
                "prefork",
                "--concurrency",
                "2",
                "--queues",
                QUEUE,
                "--loglevel",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--hostname",
                "celery-bench@localhost",
              ],
              cwd: PYTHON_APPS_DIR,
              env: { ...process.env, PYTHONPATH: PYTHON_APPS_DIR, CELERY_BROKER_URL: redisUrl },
              logDir,
            });
    try {
      await waitForResults(redis, ids, worker);
    } finally {
      await worker.stop(10_000);
    }
    return await measure(redis, ids);
  } finally {
    redis.disconnect();
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

const fmt = (n: number): string => Math.round(n).toLocaleString("en-US");

async function main(): Promise<void> {
  const { venv } = toolPaths();
  const workDir = mkdtempSync(join(tmpdir(), "cadent-bench-worker-"));
  const server = await startRedis({ workDir, name: "bench-redis" });
  const logDir = join(workDir, "logs");
  const results: { system: string; tasks: number; runs: Run[] }[] = [];
  try {
    const systems: [System, number][] = [["cadent", CADENT_TASKS]];
    if (!SKIP_CELERY) systems.push(["celery", CELERY_TASKS]);
    if (!SKIP_CELERY_NODE) systems.push(["celery-node", CELERY_NODE_TASKS]);
    for (const [system, count] of systems) {
      const runs: Run[] = [];
      for (let i = 0; i < RUNS; i++) {
        const run = await runOnce(system, count, server.url, venv, logDir);
        process.stderr.write(`${system} run ${i + 1}/${RUNS}: ${fmt(run.tasksPerSecond)} tasks/s\n`);
        runs.push(run);
      }
      results.push({ system, tasks: count, runs });
    }
  } finally {
    await server.stop();
    rmSync(join(workDir, "bench-redis"), { recursive: true, force: true });
  }

  const cpu = cpus()[0]?.model ?? "unknown CPU";
  console.log(
    `\nNo-op tasks, results stored, one worker process each, private Redis; ${RUNS} runs, ` +
      `${cpus().length} × ${cpu}, Node ${process.version}, load average ${loadavg()
        .map((l) => l.toFixed(1))
        .join(" ")}\n`,
  );
  console.log("| worker | settings | tasks per run | median tasks/s | min – max |");
  console.log("| --- | --- | ---: | ---: | ---: |");
  const medians = new Map<string, number>();
  for (const { system, tasks, runs } of results) {
    const rates = runs.map((r) => r.tasksPerSecond);
    medians.set(system, median(rates));
    const settings = {
      cadent: `--concurrency ${CONCURRENCY} --prefetch-multiplier ${PREFETCH_MULTIPLIER}, late ack`,
      celery: "prefork -c 2, prefetch 4, track_started",
      "celery-node": "0.5.9 defaults (BRPOP, no ack)",
    }[system as System];
    console.log(
      `| ${system} | ${settings} | ${fmt(tasks)} | ${fmt(median(rates))} | ${fmt(Math.min(...rates))} – ${fmt(Math.max(...rates))} |`,
    );
  }
  const cadent = medians.get("cadent");
  for (const [peer, label] of [
    ["celery", "Celery"],
    ["celery-node", "celery-node"],
  ] as const) {
    const other = medians.get(peer);
    if (cadent !== undefined && other !== undefined) {
      console.log(`\ncadent / ${label}: ${(cadent / other).toFixed(1)}×`);
    }
  }
  console.log(`\nlogs: ${logDir}`);
}

await main();
