/**
 * Worker throughput: how fast one cadent worker process drains a queue, with results stored, next
 * to one Python Celery worker (prefork, concurrency = cores), one BullMQ worker and one
 * celery-node worker on the same private Redis, for two workloads: no-op tasks and tasks that
 * sleep 1 ms. The floor is `redis-benchmark` LPUSH/RPOP against the same Redis.
 * Prints markdown tables; the method and numbers are written up in docs/benchmarks.md
 * ("## Worker throughput").
 *
 *   npm run bench:worker    # or: node bench/worker.ts [--workloads noop,sleep1ms] [--runs N]
 *                           #   [--tasks N] [--concurrency N] [--prefetch-multiplier N]
 *                           #   [--celery-tasks N] [--skip-celery] [--bullmq-tasks N] [--skip-bullmq]
 *                           #   [--celery-node-tasks N] [--skip-celery-node] [--skip-floor]
 *                           #   [--cpu-prof DIR]
 *
 * One run of a Celery-protocol worker (cadent, Celery, celery-node): the queue is filled with N
 * messages as Celery's `send_task` writes them, the worker process is started, and the run ends
 * when every task has a SUCCESS result. Throughput is (N - 1) / (last date_done - first
 * date_done), which leaves the process start-up out.
 * One run of BullMQ: the queue is filled with N jobs by `Queue.addBulk` (BullMQ's own way, in
 * chunks), the worker process is started, and the run ends when every job is in the completed
 * set. Throughput is (N - 1) / (last finishedOn - first finishedOn): the completion time the
 * worker writes with the result, as date_done is for the others.
 * The runs are interleaved (run 1 of every system and workload, then run 2, ...), so a change in
 * the load other processes put on the machine affects every system alike.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { decodeResult, encodeTaskMessage, resultKey } from "../src/celery/index.ts";
import { PYTHON_APPS_DIR } from "../tests/support/celery.ts";
import { REPO_ROOT, toolPaths } from "../tests/support/environment.ts";
import { spawnTracked } from "../tests/support/processes.ts";
import type { TrackedProcess } from "../tests/support/processes.ts";
import { startRedis } from "../tests/support/redis.ts";

const args = process.argv.slice(2);
const stringOption = (name: string, fallback: string): string => {
  const i = args.indexOf(name);
  return i >= 0 ? (args[i + 1] ?? fallback) : fallback;
};
const option = (name: string, fallback: number): number => Number(stringOption(name, String(fallback)));

type Workload = "noop" | "sleep1ms";
type System = "cadent" | "celery" | "bullmq" | "celery-node";
const TASKS: Record<Workload, string> = { noop: "app.tasks.noop", sleep1ms: "app.tasks.sleep1ms" };

const WORKLOADS = stringOption("--workloads", "noop,sleep1ms")
  .split(",")
  .map((w) => {
    if (w !== "noop" && w !== "sleep1ms") throw new Error(`unknown workload ${w}: noop or sleep1ms`);
    return w;
  });
const RUNS = Math.max(1, option("--runs", 5));
const CONCURRENCY = option("--concurrency", 64);
const PREFETCH_MULTIPLIER = option("--prefetch-multiplier", 4);
const CELERY_CONCURRENCY = cpus().length;
const CPU_PROF_DIR = args.includes("--cpu-prof") ? stringOption("--cpu-prof", "") : null;
const SKIP_FLOOR = args.includes("--skip-floor");
const SYSTEMS: { system: System; label: string; tasks: number; settings: string }[] = [
  {
    system: "cadent",
    label: "cadent",
    tasks: option("--tasks", 20_000),
    settings: `--concurrency ${CONCURRENCY} --prefetch-multiplier ${PREFETCH_MULTIPLIER}, late ack`,
  },
  {
    system: "celery",
    label: "Celery",
    tasks: option("--celery-tasks", 3_000),
    settings: `prefork -c ${CELERY_CONCURRENCY} (= cores), prefetch 4, track_started`,
  },
  {
    system: "bullmq",
    label: "BullMQ",
    tasks: option("--bullmq-tasks", 20_000),
    settings: `concurrency ${CONCURRENCY}, jobs kept, addBulk`,
  },
  {
    system: "celery-node",
    label: "celery-node",
    tasks: option("--celery-node-tasks", 20_000),
    settings: "defaults (BRPOP, no ack, unbounded concurrency)",
  },
];
const labelOf = (system: System): string => SYSTEMS.find((s) => s.system === system)?.label ?? system;
const ACTIVE = SYSTEMS.filter(({ system }) => !args.includes(`--skip-${system}`));
const QUEUE = "bench";
/** How long one run may take before it is reported as stuck. */
const RUN_DEADLINE_MS = 300_000;

interface Run {
  tasksPerSecond: number;
  seconds: number;
  /** CPU time per task while the queue drained: the worker's processes, and Redis. */
  cpu: CpuPerTask;
}

interface CpuPerTask {
  workerUs: number;
  redisUs: number;
}

const node = (script: string, ...rest: string[]): { command: string; args: string[] } => ({
  command: join(REPO_ROOT, "node_modules/.bin/node"),
  args: [join(REPO_ROOT, script), ...rest],
});

function startWorker(system: System, redisUrl: string, logDir: string): TrackedProcess {
  const name = `bench-${system}-worker`;
  switch (system) {
    case "cadent": {
      const profile = CPU_PROF_DIR === null ? [] : ["--cpu-prof", "--cpu-prof-dir", CPU_PROF_DIR];
      const { command, args: script } = node(
        "src/cli/main.ts",
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
      );
      return spawnTracked({ name, command, args: [...profile, ...script], logDir });
    }
    case "celery-node":
      return spawnTracked({ name, ...node("bench/celery-node-worker.ts", redisUrl, QUEUE), logDir });
    case "bullmq":
      return spawnTracked({
        name,
        ...node("bench/bullmq-worker.ts", redisUrl, QUEUE, String(CONCURRENCY)),
        logDir,
      });
    case "celery": {
      const { venv } = toolPaths();
      return spawnTracked({
        name,
        command: join(venv, "bin", "celery"),
        args: [
          "-A",
          "interop_app",
          "worker",
          "--pool",
          "prefork",
          "--concurrency",
          String(CELERY_CONCURRENCY),
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
    }
  }
}

/** Polls until `poll` returns a value (it throws on a failed task), watching that the worker stays up. */
async function waitUntilDone<T>(
  what: string,
  poll: () => Promise<T | null>,
  worker: TrackedProcess,
): Promise<T> {
  const deadline = Date.now() + RUN_DEADLINE_MS;
  for (;;) {
    const done = await poll();
    if (done !== null) return done;
    if (worker.child.exitCode !== null) throw new Error(`the worker exited early:\n${worker.logTail()}`);
    if (Date.now() > deadline) throw new Error(`${what}: not done after ${RUN_DEADLINE_MS / 1000} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Linux's USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s. */
const CLOCK_TICKS_PER_SECOND = 100;

/** User + system CPU seconds of a process (fields 14 and 15 of /proc/<pid>/stat), 0 once it is gone. */
function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(rest[11]) + Number(rest[12])) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/** The processes of a group (the worker and, for Celery, its prefork children): field 5 of stat. */
function processGroup(pgid: number): number[] {
  return readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .filter((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]) === pgid;
      } catch {
        return false;
      }
    });
}

async function redisCpuSeconds(redis: Redis): Promise<number> {
  const info = await redis.info("cpu");
  const field = (name: string): number => Number(new RegExp(`^${name}:([\\d.]+)`, "m").exec(info)?.[1]);
  return field("used_cpu_user") + field("used_cpu_sys");
}

/**
 * Polls `progress` (tasks done so far) every 100 ms until it reaches `count`, watching that the
 * worker stays up, and measures the CPU the worker's processes and Redis used per task between
 * the first poll that saw 1% of the tasks done and the last: start-up and the fill are left out,
 * as in the throughput. The group's processes are listed once, at that first poll, when every one
 * has started.
 */
async function drain(
  what: string,
  worker: TrackedProcess,
  redis: Redis,
  count: number,
  progress: () => Promise<number>,
): Promise<CpuPerTask> {
  let pids: number[] = [];
  const sample = async (done: number) => ({
    done,
    worker: pids.reduce((sum, pid) => sum + processCpuSeconds(pid), 0),
    redis: await redisCpuSeconds(redis),
  });
  let first: Awaited<ReturnType<typeof sample>> | null = null;
  const startAt = Math.max(10, Math.ceil(count / 100));
  const last = await waitUntilDone(
    what,
    async () => {
      const done = await progress();
      if (done < startAt) return null;
      if (first === null) {
        pids = processGroup(worker.pid);
        first = await sample(done);
        return null;
      }
      return done >= count ? await sample(done) : null;
    },
    worker,
  );
  const start = first ?? last;
  const tasks = last.done - start.done;
  return {
    workerUs: ((last.worker - start.worker) / tasks) * 1e6,
    redisUs: ((last.redis - start.redis) / tasks) * 1e6,
  };
}

function throughput(count: number, firstMs: number, lastMs: number, cpu: CpuPerTask): Run {
  const seconds = (lastMs - firstMs) / 1000;
  return { seconds, tasksPerSecond: (count - 1) / seconds, cpu };
}

// --- Celery protocol: cadent, Celery, celery-node -------------------------------------------------

async function fillCelery(redis: Redis, task: string, count: number): Promise<string[]> {
  const ids: string[] = [];
  const now = new Date();
  for (let start = 0; start < count; start += 1_000) {
    const pipeline = redis.pipeline();
    for (let i = start; i < Math.min(count, start + 1_000); i++) {
      const id = randomUUID();
      ids.push(id);
      const message = encodeTaskMessage({ task, id, queue: QUEUE, now, lang: "py" });
      pipeline.lpush(message.key, message.text);
    }
    await pipeline.exec();
  }
  return ids;
}

/**
 * Every task's date_done (ms, with the microseconds), or null while some task has not reached
 * SUCCESS yet (a STARTED state, or no result); a FAILURE is an error.
 */
async function completionTimes(redis: Redis, ids: readonly string[]): Promise<number[] | null> {
  const times: number[] = [];
  for (let start = 0; start < ids.length; start += 5_000) {
    const values = await redis.mget(...ids.slice(start, start + 5_000).map(resultKey));
    for (const value of values) {
      const decoded = value === null ? null : decodeResult(value);
      if (decoded !== null && !decoded.ok) throw new Error(`a result does not decode: ${String(value)}`);
      const meta = decoded?.meta;
      if (meta === undefined || meta.status === "STARTED" || meta.status === "PENDING") return null;
      if (meta.status !== "SUCCESS" || meta.dateDone === null) {
        throw new Error(`a task did not end in SUCCESS: ${String(value)}`);
      }
      times.push(meta.dateDone.date.getTime() + (meta.dateDone.microsecond % 1000) / 1000);
    }
  }
  return times;
}

/** What one run works with: a client of the private Redis, its URL, and where worker logs go. */
interface RunContext {
  readonly redis: Redis;
  readonly redisUrl: string;
  readonly logDir: string;
}

async function runCeleryProtocol(system: System, task: string, count: number, ctx: RunContext): Promise<Run> {
  const { redis, redisUrl, logDir } = ctx;
  const ids = await fillCelery(redis, task, count);
  const before = await redis.dbsize();
  const worker = startWorker(system, redisUrl, logDir);
  let done: number[];
  let cpu: CpuPerTask;
  try {
    // DBSIZE is O(1), so polling it barely adds to Redis's CPU. Besides the results it counts a
    // few bookkeeping keys (the queue until drained, the binding, unacked and unacked_index),
    // which moves the CPU window by those few tasks out of thousands; the results themselves are
    // all read and checked afterwards. The queue's key goes when it is drained, hence the target.
    cpu = await drain(
      `${system} ${task}`,
      worker,
      redis,
      count - before,
      async () => (await redis.dbsize()) - before,
    );
    done = await waitUntilDone(`${system} ${task} (SUCCESS)`, () => completionTimes(redis, ids), worker);
  } finally {
    await worker.stop(10_000);
  }
  return throughput(count, Math.min(...done), Math.max(...done), cpu);
}

// --- BullMQ ------------------------------------------------------------------------------------

async function runBullmq(task: string, count: number, ctx: RunContext): Promise<Run> {
  const { redis, redisUrl, logDir } = ctx;
  const queue = new Queue(QUEUE, { connection: { url: redisUrl } });
  try {
    for (let start = 0; start < count; start += 1_000) {
      const chunk = Math.min(1_000, count - start);
      await queue.addBulk(Array.from({ length: chunk }, () => ({ name: task, data: {} })));
    }
  } finally {
    await queue.close();
  }
  const completed = `bull:${QUEUE}:completed`;
  const failed = `bull:${QUEUE}:failed`;
  const worker = startWorker("bullmq", redisUrl, logDir);
  let cpu: CpuPerTask;
  try {
    cpu = await drain(`bullmq ${task}`, worker, redis, count, async () => {
      const [done, failures] = await Promise.all([redis.zcard(completed), redis.zcard(failed)]);
      if (failures > 0) throw new Error(`${failures} BullMQ jobs failed; see ${worker.logFile}`);
      return done;
    });
  } finally {
    await worker.stop(10_000);
  }
  // The completed set is scored by finishedOn (moveToFinished: ZADD completed <timestamp> <id>).
  const [, first] = await redis.zrange(completed, 0, 0, "WITHSCORES");
  const [, last] = await redis.zrange(completed, -1, -1, "WITHSCORES");
  return throughput(count, Number(first), Number(last), cpu);
}

async function runOnce(
  system: System,
  workload: Workload,
  count: number,
  redisUrl: string,
  logDir: string,
): Promise<Run> {
  const redis = new Redis(redisUrl);
  try {
    await redis.flushdb();
    const ctx = { redis, redisUrl, logDir };
    return system === "bullmq"
      ? await runBullmq(TASKS[workload], count, ctx)
      : await runCeleryProtocol(system, TASKS[workload], count, ctx);
  } finally {
    redis.disconnect();
  }
}

// --- floor: redis-benchmark ---------------------------------------------------------------------

const FLOOR_CONFIGS = [
  { label: "50 clients, no pipelining", args: ["-c", "50", "-P", "1", "-n", "200000"] },
  { label: "50 clients, pipeline 16", args: ["-c", "50", "-P", "16", "-n", "200000"] },
  { label: "1 client, no pipelining", args: ["-c", "1", "-P", "1", "-n", "50000"] },
] as const;

/** Requests/s by test name ("LPUSH", "RPOP") from one `redis-benchmark --csv` invocation. */
async function runFloor(port: number, config: readonly string[], name: string, logDir: string) {
  const proc = spawnTracked({
    name,
    command: "redis-benchmark",
    args: ["-h", "127.0.0.1", "-p", String(port), "-t", "lpush,rpop", ...config, "--csv"],
    logDir,
  });
  // spawnTracked unrefs its children, and nothing else holds the event loop open meanwhile.
  const keepAlive = setInterval(() => undefined, 60_000);
  const code = await proc.exited.finally(() => clearInterval(keepAlive));
  if (code !== 0) throw new Error(`redis-benchmark exited with ${String(code)}:\n${proc.logTail()}`);
  const rates = new Map<string, number>();
  // Lines: "test","rps","avg_latency_ms",... then "LPUSH","75757.58",...
  for (const line of readFileSync(proc.logFile, "utf8").split("\n")) {
    const [test, rps] = line.split(",").map((field) => field.replaceAll('"', ""));
    if (test !== undefined && rps !== undefined && test !== "test" && Number.isFinite(Number(rps))) {
      rates.set(test, Number(rps));
    }
  }
  if (!rates.has("LPUSH") || !rates.has("RPOP")) {
    throw new Error(`no LPUSH/RPOP rates in the redis-benchmark output:\n${proc.logTail()}`);
  }
  return rates;
}

// --- report -------------------------------------------------------------------------------------

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

const fmt = (n: number): string => Math.round(n).toLocaleString("en-US");
const spread = (values: readonly number[], f: (n: number) => string = fmt): string =>
  `${f(median(values))} | ${f(Math.min(...values))} – ${f(Math.max(...values))}`;
const ratioText = (n: number): string => `${n.toFixed(1)}×`;

const RATIO_TARGETS: { peer: System; target: number }[] = [
  { peer: "celery", target: 5 },
  { peer: "bullmq", target: 1.5 },
  { peer: "celery-node", target: 1.5 },
];

async function main(): Promise<void> {
  const workDir = mkdtempSync(join(tmpdir(), "cadent-bench-worker-"));
  const server = await startRedis({ workDir, name: "bench-redis" });
  const logDir = join(workDir, "logs");
  /** Runs by workload and system, in run order (index i = round i). */
  const results = new Map<string, Run[]>();
  const floor = new Map<string, number[]>();
  const loads: number[] = [];
  const push = <T>(map: Map<string, T[]>, key: string, value: T): void => {
    map.set(key, [...(map.get(key) ?? []), value]);
  };
  const startedAt = new Date();
  try {
    for (let i = 0; i < RUNS; i++) {
      for (const workload of WORKLOADS) {
        for (const { system, tasks } of ACTIVE) {
          loads.push(loadavg()[0] ?? 0);
          const run = await runOnce(system, workload, tasks, server.url, logDir);
          process.stderr.write(
            `run ${i + 1}/${RUNS} ${workload} ${system}: ${fmt(run.tasksPerSecond)} tasks/s (${run.seconds.toFixed(2)} s), ` +
              `CPU per task: worker ${fmt(run.cpu.workerUs)} µs, Redis ${fmt(run.cpu.redisUs)} µs\n`,
          );
          push(results, `${workload} ${system}`, run);
        }
      }
      if (SKIP_FLOOR) continue;
      for (const [c, config] of FLOOR_CONFIGS.entries()) {
        loads.push(loadavg()[0] ?? 0);
        const measured = await runFloor(server.port, config.args, `redis-benchmark-${i}-${c}`, logDir);
        for (const [test, rps] of measured) push(floor, `${test}, ${config.label}`, rps);
        process.stderr.write(
          `run ${i + 1}/${RUNS} redis-benchmark ${config.label}: ${[...measured].map(([t, r]) => `${t} ${fmt(r)}/s`).join(", ")}\n`,
        );
      }
    }
  } finally {
    await server.stop();
    rmSync(join(workDir, "bench-redis"), { recursive: true, force: true });
  }

  const cpu = cpus()[0]?.model ?? "unknown CPU";
  console.log(
    `\nOne worker process each, results stored, private Redis ${server.url}; ${RUNS} interleaved runs ` +
      `from ${startedAt.toISOString()}; ${cpus().length} × ${cpu}, Node ${process.version}; ` +
      `1-minute load average before each run ${Math.min(...loads).toFixed(1)} – ${Math.max(...loads).toFixed(1)} ` +
      `(median ${median(loads).toFixed(1)})\n`,
  );
  console.log(
    "| workload | worker | settings | tasks per run | median tasks/s | min – max | worker CPU µs/task | Redis CPU µs/task |",
  );
  console.log("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |");
  for (const workload of WORKLOADS) {
    for (const { system, label, tasks, settings } of ACTIVE) {
      const runs = results.get(`${workload} ${system}`) ?? [];
      const rates = runs.map((r) => r.tasksPerSecond);
      const cpu = (pick: (c: CpuPerTask) => number): string => fmt(median(runs.map((r) => pick(r.cpu))));
      console.log(
        `| ${workload} | ${label} | ${settings} | ${fmt(tasks)} | ${spread(rates)} | ${cpu((c) => c.workerUs)} | ${cpu((c) => c.redisUs)} |`,
      );
    }
  }

  console.log(
    "\nRatios: cadent's median over the peer's median; in brackets the min – max of the ratio within each run.\n",
  );
  const peers = RATIO_TARGETS.filter(({ peer }) => ACTIVE.some((s) => s.system === peer));
  console.log(
    `| workload | cadent tasks/s (target ≥ 10,000 no-op) | ${peers.map(({ peer, target }) => `cadent / ${labelOf(peer)} (target ≥ ${target}×)`).join(" | ")} |`,
  );
  console.log(`| --- | ---: | ${peers.map(() => "---:").join(" | ")} |`);
  const rates = (key: string): number[] | undefined => results.get(key)?.map((r) => r.tasksPerSecond);
  for (const workload of WORKLOADS) {
    const cadent = rates(`${workload} cadent`);
    if (cadent === undefined) continue;
    const cells = peers.map(({ peer, target }) => {
      const other = rates(`${workload} ${peer}`) ?? [];
      const ratio = median(cadent) / median(other);
      const perRun = cadent.map((c, i) => c / (other[i] ?? NaN));
      const met = ratio >= target ? "met" : "**missed**";
      return `${ratioText(ratio)} (${ratioText(Math.min(...perRun))} – ${ratioText(Math.max(...perRun))}) ${met}`;
    });
    const absolute = workload === "noop" ? (median(cadent) >= 10_000 ? " met" : " **missed**") : "";
    console.log(`| ${workload} | ${fmt(median(cadent))}${absolute} | ${cells.join(" | ")} |`);
  }

  // On a machine whose cores are oversubscribed, each process gets a share of a core, so the
  // throughput follows the CPU per task of the busiest process; the CPU per task summed over
  // worker and Redis says how many tasks a CPU-second buys, whatever the load.
  console.log(
    "\nCPU per task, worker + Redis (medians), and how many more tasks cadent runs per CPU-second than the peer.\n",
  );
  console.log(
    `| workload | cadent µs/task | ${peers.map(({ peer }) => `${labelOf(peer)} µs/task | cadent / ${labelOf(peer)}`).join(" | ")} |`,
  );
  console.log(`| --- | ---: | ${peers.map(() => "---: | ---:").join(" | ")} |`);
  const cpuPerTask = (key: string): number =>
    median((results.get(key) ?? []).map((r) => r.cpu.workerUs + r.cpu.redisUs));
  for (const workload of WORKLOADS) {
    const cadent = cpuPerTask(`${workload} cadent`);
    const cells = peers.map(({ peer }) => {
      const other = cpuPerTask(`${workload} ${peer}`);
      return `${fmt(other)} | ${ratioText(other / cadent)}`;
    });
    console.log(`| ${workload} | ${fmt(cadent)} | ${cells.join(" | ")} |`);
  }

  if (floor.size > 0) {
    console.log("\nFloor: redis-benchmark -t lpush,rpop --csv against the same Redis.\n");
    console.log("| redis-benchmark | median requests/s | min – max |");
    console.log("| --- | ---: | ---: |");
    for (const [key, values] of floor) console.log(`| ${key} | ${spread(values)} |`);
  }
  console.log(`\nlogs: ${logDir}`);
}

await main();
