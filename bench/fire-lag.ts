/**
 * Fire lag, Redis path: N PeriodicTasks on one six-field schedule every 10 s, all due in the same
 * second, next to celery beat with the same N entries and a floor script that pipelines N LPUSHes
 * at each boundary, all on one private Redis. Prints a markdown table; the method and numbers are
 * written up in docs/benchmarks.md ("## Fire lag, Redis path").
 *
 *   npm run bench:fire-lag   # or: node bench/fire-lag.ts [--sizes 100,1000,10000] [--fires 6]
 *                            #       [--skip-beat] [--cpu-prof DIR]
 *
 * Lag is taken by a separate consumer process that pops the queue (BLMPOP, up to 1,000 at a time)
 * and timestamps what it pops: lag = arrival - scheduled time. celery beat's messages carry their
 * scheduled time in a header (bench_scheduled, added by the generated scheduler); cadent's and the
 * floor's messages are attributed to the 10-second boundary at or before their arrival, which is
 * right as long as a fire lands within 10 s: the consumer counts the messages of every fire, and a
 * fire that did not deliver N messages in its 10 s shows in the "delivered" column.
 *
 * The script re-executes itself for the consumer (--consumer) and the floor (--floor), so that
 * neither shares an event loop with the process that creates objects or measures.
 */
import { randomUUID } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as k8s from "@kubernetes/client-node";
import { Redis } from "ioredis";
import { encodeTaskMessage } from "../src/celery/index.ts";
import { startControlPlane } from "../tests/support/control-plane.ts";
import { toolPaths } from "../tests/support/environment.ts";
import { spawnTracked } from "../tests/support/processes.ts";
import { startRedis } from "../tests/support/redis.ts";
import {
  args,
  cell,
  installCrds,
  lagSpreads,
  nowMs,
  option,
  pool,
  rssMb,
  sleep,
  startBenchController,
  type Spread,
} from "./support.ts";

const PERIOD_MS = 10_000;
const TASK = "bench.noop";
const SELF = fileURLToPath(import.meta.url);

const boundaryAtOrBefore = (ms: number): number => Math.floor(ms / PERIOD_MS) * PERIOD_MS;

// --- the consumer (own process) ------------------------------------------------------------------

interface ConsumerReport {
  /** Per fire (scheduled time in ms), the lags in ms of the messages attributed to it. */
  fires: Record<string, number[]>;
  /** Messages popped with a scheduled time outside the window (earlier fires, stragglers). */
  outside: number;
}

/**
 * Pops `queue` from start to end and writes the lags to `out`. Messages are timestamped per pop and
 * parsed only afterwards, so the pop loop does nothing but pop.
 */
async function consumer(url: string, queue: string, firstFire: number, fires: number, out: string) {
  const redis = new Redis(url, { maxRetriesPerRequest: null });
  const lastFire = firstFire + (fires - 1) * PERIOD_MS;
  const end = lastFire + PERIOD_MS - 100;
  const batches: { at: number; messages: string[] }[] = [];
  while (nowMs() < end) {
    const reply = (await redis.call("BLMPOP", "0.5", "1", queue, "RIGHT", "COUNT", "1000")) as
      [string, string[]] | null;
    if (reply) batches.push({ at: nowMs(), messages: reply[1] });
  }
  const report: ConsumerReport = { fires: {}, outside: 0 };
  for (let t = firstFire; t <= lastFire; t += PERIOD_MS) report.fires[String(t)] = [];
  for (const { at, messages } of batches) {
    for (const text of messages) {
      const envelope = JSON.parse(text) as { headers?: { bench_scheduled?: number } };
      const stamped = envelope.headers?.bench_scheduled;
      const scheduled = typeof stamped === "number" ? stamped * 1000 : boundaryAtOrBefore(at);
      const bucket = report.fires[String(scheduled)];
      if (bucket) bucket.push(at - scheduled);
      else report.outside++;
    }
  }
  writeFileSync(out, JSON.stringify(report));
  redis.disconnect();
}

// --- the floor (own process) ---------------------------------------------------------------------

/** At every 10 s boundary from `firstFire`, pipelines `n` LPUSHes of messages encoded beforehand. */
async function floor(url: string, queue: string, n: number, firstFire: number, fires: number) {
  const redis = new Redis(url);
  await redis.ping();
  const messages = Array.from({ length: n }, () =>
    encodeTaskMessage({ task: TASK, id: randomUUID(), queue, now: new Date(), lang: "py" }),
  );
  for (let i = 0; i < fires; i++) {
    const at = firstFire + i * PERIOD_MS;
    await sleep(at - nowMs());
    const pipeline = redis.pipeline();
    for (const m of messages) pipeline.lpush(m.key, m.text);
    await pipeline.exec();
  }
  redis.disconnect();
}

// --- statistics ----------------------------------------------------------------------------------

interface Result {
  n: number;
  system: string;
  delivered: number;
  expected: number;
  p50: Spread;
  p99: Spread;
  max: Spread;
  rssMb?: number;
}

function summarize(n: number, system: string, report: ConsumerReport, fires: number): Result {
  const perFire = Object.values(report.fires).map((lags) => [...lags].sort((a, b) => a - b));
  // A fire that delivered nothing counts in "delivered" only.
  return {
    n,
    system,
    delivered: perFire.reduce((sum, lags) => sum + lags.length, 0),
    expected: n * fires,
    ...lagSpreads(perFire),
  };
}

// --- the systems ---------------------------------------------------------------------------------

interface Env {
  workDir: string;
  logDir: string;
  redisUrl: string;
  redis: Redis;
}

/** The first boundary at least `leadMs` from now. */
const nextFire = (leadMs: number): number => boundaryAtOrBefore(nowMs() + leadMs) + PERIOD_MS;

/** Runs the consumer for `fires` fires from `firstFire` on a queue emptied just before. */
async function consume(env: Env, queue: string, firstFire: number, fires: number): Promise<ConsumerReport> {
  const out = join(env.workDir, `consumer-${queue}.json`);
  await sleep(firstFire - 3_000 - nowMs());
  await env.redis.del(queue);
  const proc = spawnTracked({
    name: `consumer-${queue}`,
    command: process.execPath,
    args: [SELF, "--consumer", env.redisUrl, queue, String(firstFire), String(fires), out],
    logDir: env.logDir,
  });
  const code = await proc.exited;
  if (code !== 0) throw new Error(`the consumer exited with ${code}:\n${proc.logTail()}`);
  return JSON.parse(readFileSync(out, "utf8")) as ConsumerReport;
}

async function runFloor(env: Env, n: number, fires: number): Promise<ConsumerReport> {
  const queue = `floor-${n}`;
  const firstFire = nextFire(8_000);
  const proc = spawnTracked({
    name: `floor-${n}`,
    command: process.execPath,
    args: [SELF, "--floor", env.redisUrl, queue, String(n), String(firstFire), String(fires)],
    logDir: env.logDir,
  });
  const report = await consume(env, queue, firstFire, fires);
  await proc.stop();
  return report;
}

function periodicTask(name: string, queue: string): object {
  return {
    apiVersion: "cadent.dev/v1alpha1",
    kind: "PeriodicTask",
    metadata: { name },
    spec: {
      schedule: "*/10 * * * * *",
      successfulRunsHistoryLimit: 1,
      failedRunsHistoryLimit: 1,
      taskTemplate: { spec: { task: TASK, queue } },
    },
  };
}

async function runCadent(
  env: Env & { kc: k8s.KubeConfig; kubeconfigPath: string },
  n: number,
  fires: number,
  cpuProfDir: string | undefined,
): Promise<{ report: ConsumerReport; rssMb: number; setupSeconds: number }> {
  const namespace = `bench-${n}`;
  const queue = `cadent-${n}`;
  await env.kc.makeApiClient(k8s.CoreV1Api).createNamespace({ body: { metadata: { name: namespace } } });
  const { process: controller } = await startBenchController({
    name: `controller-${n}`,
    kubeconfigPath: env.kubeconfigPath,
    namespace,
    redisUrl: env.redisUrl,
    logDir: env.logDir,
    qps: 500,
    burst: 1000,
    workers: 16,
    cpuProfDir,
  });
  try {
    const api = env.kc.makeApiClient(k8s.CustomObjectsApi);
    const started = nowMs();
    const names = Array.from({ length: n }, (_, i) => `bench-${String(i).padStart(5, "0")}`);
    await pool(names, 64, async (name) => {
      await api.createNamespacedCustomObject({
        group: "cadent.dev",
        version: "v1alpha1",
        plural: "periodictasks",
        namespace,
        body: periodicTask(name, queue),
      });
    });
    const setupSeconds = (nowMs() - started) / 1000;
    // One fire after the last object exists is left out, so every object is in the informer's cache.
    const report = await consume(env, queue, nextFire(13_000), fires);
    const rss = rssMb(controller.pid);
    return { report, rssMb: rss, setupSeconds };
  } finally {
    await controller.stop(30_000);
  }
}

/** A celery app whose beat schedule has `n` entries due at every 10 s wall-clock boundary. */
const BEAT_APP = `
import os, time
from datetime import timedelta
from celery import Celery
from celery.beat import Scheduler
from celery.schedules import schedule, schedstate

N = int(os.environ["BENCH_N"])
QUEUE = os.environ["BENCH_QUEUE"]
app = Celery("bench_beat", broker=os.environ["BENCH_BROKER"])
app.conf.update(task_serializer="json", accept_content=["json"], timezone="UTC", enable_utc=True,
                beat_max_loop_interval=1)


class every10s(schedule):
    """Due at every 10-second wall-clock boundary (timedelta schedules drift from the boundary)."""

    def __init__(self):
        super().__init__(run_every=timedelta(seconds=10), app=app)
        self.fired_for = None

    def is_due(self, last_run_at):
        now = time.time()
        boundary = now - now % 10
        last = self.maybe_make_aware(last_run_at).timestamp()
        if last < boundary:
            self.fired_for = boundary
            return schedstate(True, boundary + 10 - now)
        return schedstate(False, boundary + 10 - now)


class BenchScheduler(Scheduler):
    """The in-memory scheduler, stamping each message with the boundary it was sent for."""

    def apply_async(self, entry, producer=None, advance=True, **kwargs):
        self._current = entry
        return super().apply_async(entry, producer, advance, **kwargs)

    def send_task(self, *args, **kwargs):
        kwargs["headers"] = {"bench_scheduled": self._current.schedule.fired_for}
        return super().send_task(*args, **kwargs)


app.conf.beat_schedule = {
    f"bench-{i:05d}": {"task": "${TASK}", "schedule": every10s(), "options": {"queue": QUEUE}}
    for i in range(N)
}
`;

async function runBeat(env: Env, venv: string, n: number, fires: number): Promise<ConsumerReport> {
  const queue = `beat-${n}`;
  const appDir = join(env.workDir, "beat");
  rmSync(appDir, { recursive: true, force: true });
  mkdirSync(appDir, { recursive: true });
  writeFileSync(join(appDir, "bench_beat.py"), BEAT_APP);
  const proc = spawnTracked({
    name: `beat-${n}`,
    command: join(venv, "bin/celery"),
    args: ["-A", "bench_beat", "beat", "--scheduler", "bench_beat:BenchScheduler", "--loglevel", "WARNING"],
    logDir: env.logDir,
    cwd: appDir,
    env: { ...process.env, BENCH_N: String(n), BENCH_QUEUE: queue, BENCH_BROKER: env.redisUrl },
  });
  try {
    return await consume(env, queue, nextFire(15_000), fires);
  } finally {
    await proc.stop();
  }
}

// --- the orchestration ---------------------------------------------------------------------------

function table(results: readonly Result[]): string {
  const rows = [
    "| N | system | delivered | p50 ms | p99 ms | max ms | p99 vs floor | beat p99 / cadent p99 | controller RSS |",
    "|--:|---|--:|--:|--:|--:|--:|--:|--:|",
  ];
  for (const r of results) {
    const floorP99 = results.find((f) => f.n === r.n && f.system === "floor")?.p99.median ?? NaN;
    const cadentP99 = results.find((f) => f.n === r.n && f.system === "cadent")?.p99.median ?? NaN;
    const vsFloor = r.system === "floor" ? "1×" : `${(r.p99.median / floorP99).toFixed(1)}×`;
    const beatRatio = r.system === "beat" ? `${(r.p99.median / cadentP99).toPrecision(2)}×` : "";
    rows.push(
      `| ${r.n.toLocaleString("en")} | ${r.system} | ${r.delivered.toLocaleString("en")} / ${r.expected.toLocaleString("en")} | ${cell(r.p50)} | ${cell(r.p99)} | ${cell(r.max)} | ${vsFloor} | ${beatRatio} | ${r.rssMb === undefined ? "" : `${r.rssMb} MB`} |`,
    );
  }
  return rows.join("\n");
}

async function main(): Promise<void> {
  const sizes = (option("--sizes") ?? "100,1000,10000").split(",").map(Number);
  const fires = Math.max(5, Number(option("--fires") ?? 6));
  const skipBeat = args.includes("--skip-beat");
  const cpuProfDir = option("--cpu-prof");
  const { kubeBin, venv } = toolPaths();
  const workDir = mkdtempSync(join(tmpdir(), "cadent-fire-lag-"));
  const logDir = join(workDir, "logs");
  const redisServer = await startRedis({ workDir });
  const plane = await startControlPlane({ binDir: kubeBin, workDir, withNodes: false });
  const redis = new Redis(redisServer.url);
  try {
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(plane.kubeconfigPath);
    await installCrds(kc);
    const env = {
      workDir,
      logDir,
      redisUrl: redisServer.url,
      redis,
      kc,
      kubeconfigPath: plane.kubeconfigPath,
    };
    const results: Result[] = [];
    for (const n of sizes) {
      const floorReport = await runFloor(env, n, fires);
      results.push(summarize(n, "floor", floorReport, fires));
      const cadent = await runCadent(env, n, fires, cpuProfDir);
      results.push({ ...summarize(n, "cadent", cadent.report, fires), rssMb: cadent.rssMb });
      console.error(`N=${n}: ${n} PeriodicTasks created in ${cadent.setupSeconds.toFixed(1)} s`);
      if (!skipBeat) results.push(summarize(n, "beat", await runBeat(env, venv, n, fires), fires));
      console.error(table(results.filter((r) => r.n === n)));
    }
    console.log(
      `\nFire lag, Redis path: ${fires} fires per system and N; load average ${loadavg()[0]?.toFixed(2)}`,
    );
    console.log("Cells: median over fires of the per-fire value (min–max over fires).\n");
    console.log(table(results));
  } finally {
    redis.disconnect();
    await plane.stop();
    await redisServer.stop();
    if (!cpuProfDir) rmSync(workDir, { recursive: true, force: true });
  }
}

const mode = args[0];
if (mode === "--consumer") {
  const [, url = "", queue = "", first = "", fires = "", out = ""] = args;
  await consumer(url, queue, Number(first), Number(fires), out);
} else if (mode === "--floor") {
  const [, url = "", queue = "", n = "", first = "", fires = ""] = args;
  await floor(url, queue, Number(n), Number(first), Number(fires));
} else {
  await main();
}
