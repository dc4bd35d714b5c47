/**
 * Fire lag, Job path: N PeriodicTasks with the Job executor next to N Kubernetes CronJobs run by
 * kube-controller-manager's CronJob controller, and a floor script that creates N Jobs itself, on
 * one control plane, all due at the same minute boundary. Prints a markdown table; the method and
 * numbers are written up in docs/benchmarks.md ("## Fire lag, Job path").
 *
 *   npm run bench:job-lag   # or: node bench/job-lag.ts [--sizes 100,1000] [--fires 5] [--skip-cronjob]
 *                           #       [--period-minutes 1] [--kube-api-qps 200] [--kube-api-burst 400] [--workers 16]
 *                           #       [--cpu-prof DIR] [--keep]
 *
 * --keep (implied by --cpu-prof) keeps the work directory: logs, the watchers' sightings, the
 * controller's final /metrics and results.json.
 *
 * CronJobs have minute granularity, so every system runs "* * * * *" (or "*\/k * * * *" with
 * --period-minutes k) and one window lasts `--fires` + 1 periods (the first fire after the objects
 * exist is left out). The systems take turns, each in a namespace of its own, so they never
 * compete for the two cores:
 * - floor: a separate process that creates N Jobs at every period boundary through cadent's own
 *   rate-limited clients (src/kube/client.ts) with the same qps and burst as the controllers;
 * - cadent: `cadent controller` watching N PeriodicTasks with a jobTemplate;
 * - cronjob: N CronJobs, run by kube-controller-manager (whose client limits are 200 qps, burst
 *   400: tests/support/control-plane.ts), hence the defaults of --kube-api-qps/--kube-api-burst.
 * Every Job is created suspended (`spec.suspend: true`), so the Job controller makes no Pods and
 * the two cores only do what the systems measured do.
 *
 * Lag is taken by a separate watcher process (not the system measured): a watch on the
 * namespace's Jobs, each ADDED event timestamped on arrival. Lag = arrival - the Job's scheduled
 * time: the CronJob controller's `batch.kubernetes.io/cronjob-scheduled-timestamp` annotation,
 * else the unix seconds that end the Job's name (cadent names a run `<periodictask>-<seconds>`,
 * product.md §1.3; the floor does the same).
 *
 * After each fire, once the system has recorded it (every Task has its Job / every CronJob its
 * lastScheduleTime), all the fire's Jobs are deleted (background propagation) and the system is
 * given until it has noticed (every PeriodicTask's / CronJob's status.active is empty) before the
 * next minute, so every fire starts from the same state: N objects, none with a Job.
 */
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as k8s from "@kubernetes/client-node";
import { createKubeClients, loadKubeConfig } from "../src/kube/client.ts";
import { startControlPlane } from "../tests/support/control-plane.ts";
import { toolPaths } from "../tests/support/environment.ts";
import { waitFor } from "../tests/support/ports.ts";
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
  ratio,
  rssMb,
  sleep,
  spread,
  startBenchController,
  type Spread,
} from "./support.ts";

/**
 * Minutes between fires (--period-minutes, a divisor of 60): at 1,000 objects on a busy machine a
 * fire can take longer than a minute, and the next one must not start before it is measured.
 */
const PERIOD_MINUTES = Number(option("--period-minutes") ?? 1);
if (!Number.isInteger(PERIOD_MINUTES) || PERIOD_MINUTES < 1 || 60 % PERIOD_MINUTES !== 0)
  throw new Error(`--period-minutes must divide 60, got ${option("--period-minutes")}`);
const PERIOD_MS = PERIOD_MINUTES * 60_000;
/** Due at every period boundary (multiples of the period since the epoch, as cron counts them). */
const SCHEDULE = PERIOD_MINUTES === 1 ? "* * * * *" : `*/${PERIOD_MINUTES} * * * *`;
const SELF = fileURLToPath(import.meta.url);
const SCHEDULED_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/** How long after its boundary a fire may take to create its N Jobs before it counts as short. */
const FIRE_DEADLINE_MS = PERIOD_MS - 15_000;

/** The Job every system creates: suspended, so no Pod is made for it. */
const JOB_SPEC = {
  suspend: true,
  backoffLimit: 0,
  template: {
    spec: { restartPolicy: "Never", containers: [{ name: "main", image: "busybox", command: ["true"] }] },
  },
};

const boundaryAtOrBefore = (ms: number): number => Math.floor(ms / PERIOD_MS) * PERIOD_MS;
/** The first period boundary at least `leadMs` from now. */
const nextFire = (leadMs: number): number => boundaryAtOrBefore(nowMs() + leadMs) + PERIOD_MS;
const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
const log = (message: string): void => console.error(`${new Date().toISOString()} ${message}`);

// --- the watcher (own process) -------------------------------------------------------------------

/** One line of the watcher's output: a Job seen ADDED. */
interface Sighting {
  at: number;
  name: string;
  /** Scheduled time in ms; null when the Job carries none. */
  scheduled: number | null;
}

function scheduledTime(job: k8s.V1Job): number | null {
  const stamped = Date.parse(job.metadata?.annotations?.[SCHEDULED_ANNOTATION] ?? "");
  if (!Number.isNaN(stamped)) return stamped;
  const seconds = /-(\d{9,})$/.exec(job.metadata?.name ?? "")?.[1];
  return seconds ? Number(seconds) * 1000 : null;
}

/**
 * Watches the Jobs of `namespace` until SIGTERM and appends a {@link Sighting} per ADDED event to
 * `out` (JSON lines, flushed every 200 ms; the first line is `{"ready":true}` once the watch is
 * open). Objects are timestamped in the event callback and written only by the flush timer.
 */
async function watcher(kubeconfigPath: string, namespace: string, out: string): Promise<void> {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const batch = kc.makeApiClient(k8s.BatchV1Api);
  let resourceVersion = (await batch.listNamespacedJob({ namespace, limit: 1 })).metadata?.resourceVersion;
  let pending: Sighting[] = [];
  const flush = (): void => {
    if (pending.length === 0) return;
    appendFileSync(out, pending.map((s) => JSON.stringify(s)).join("\n") + "\n");
    pending = [];
  };
  const timer = setInterval(flush, 200);
  let stopped = false;
  let current: AbortController | undefined;
  const watch = new k8s.Watch(kc);
  const open = async (): Promise<void> => {
    current = await watch.watch(
      `/apis/batch/v1/namespaces/${namespace}/jobs`,
      { resourceVersion, allowWatchBookmarks: true },
      (type: string, obj: k8s.V1Job) => {
        const at = nowMs();
        resourceVersion = obj.metadata?.resourceVersion ?? resourceVersion;
        if (type === "ADDED")
          pending.push({ at, name: obj.metadata?.name ?? "", scheduled: scheduledTime(obj) });
      },
      // client-node ends a watch after 30 s without events; quiet minutes are normal here, so the
      // watch is opened again from the last resourceVersion seen (nothing is missed in between).
      (err: unknown) => {
        if (stopped) return;
        if (err && !(err instanceof DOMException && err.name === "TimeoutError"))
          console.error(`watch ended (${String(err)}); opening it again`);
        void open();
      },
    );
  };
  await open();
  appendFileSync(out, `${JSON.stringify({ ready: true })}\n`);
  await new Promise<void>((resolve) => process.once("SIGTERM", resolve));
  stopped = true;
  current?.abort();
  clearInterval(timer);
  flush();
}

function readSightings(file: string): Sighting[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as Sighting | { ready: true })
    .filter((s): s is Sighting => "name" in s);
}

// --- the floor (own process) ---------------------------------------------------------------------

/**
 * At every minute boundary from `firstFire`, creates `n` Jobs named `floor-<i>-<unix seconds>`
 * through cadent's rate-limited clients with the controllers' qps and burst, 64 requests in flight.
 */
async function floor(
  kubeconfigPath: string,
  namespace: string,
  n: number,
  firstFire: number,
  fires: number,
  qps: number,
  burst: number,
): Promise<void> {
  const { batch } = createKubeClients(loadKubeConfig(kubeconfigPath), { qps, burst, userAgent: "floor" });
  const indexes = Array.from({ length: n }, (_, i) => i);
  for (let f = 0; f < fires; f++) {
    const at = firstFire + f * PERIOD_MS;
    await sleep(at - nowMs());
    await pool(indexes, 64, async (i) => {
      const name = `floor-${String(i).padStart(5, "0")}-${at / 1000}`;
      await batch.createNamespacedJob({ namespace, body: { metadata: { name }, spec: JOB_SPEC } });
    });
  }
}

// --- the systems ---------------------------------------------------------------------------------

type System = "floor" | "cadent" | "cronjob";

interface Env {
  kc: k8s.KubeConfig;
  kubeconfigPath: string;
  workDir: string;
  logDir: string;
  redisUrl: string;
  qps: number;
  burst: number;
  workers: number;
  cpuProfDir: string | undefined;
}

/** One fire: the lags of the Jobs seen for it, and how long the system took to settle after it. */
interface Fire {
  at: number;
  lags: number[];
  /** From the deletion of the fire's Jobs until the system showed it noticed (ms). */
  settleMs: number;
}

interface Window {
  fires: Fire[];
  rssMb?: number;
  /** cadent's API requests per run during the fires (from its own metrics), by verb. */
  requestsPerRun?: Record<string, number>;
}

/** What a system needs from the harness around its fires. */
interface Driver {
  /** The system recorded the fire at `at` (so deleting its Jobs now cannot make it create them again). */
  recorded(at: number): Promise<boolean>;
  /** The system noticed that the Jobs are gone. */
  settled(): Promise<boolean>;
  /** API requests so far by verb, for systems that report them. */
  requests?(): Promise<Record<string, number>>;
}

const namesOf = (n: number, prefix: string): string[] =>
  Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(5, "0")}`);

async function createObjects(n: number, create: (name: string) => Promise<unknown>): Promise<number> {
  const started = nowMs();
  await pool(namesOf(n, "bench"), 64, async (name) => {
    await create(name);
  });
  return (nowMs() - started) / 1000;
}

/**
 * Runs the watcher from now, then for the left-out fire and `fires` more: waits for the fire's N
 * Jobs (or FIRE_DEADLINE_MS), waits until the system recorded the fire, deletes the Jobs and waits
 * until the system noticed.
 */
async function measure(
  env: Env,
  system: System,
  namespace: string,
  n: number,
  firstFire: number,
  fires: number,
  driver: Driver,
  sightings: string,
): Promise<Window> {
  const batch = env.kc.makeApiClient(k8s.BatchV1Api);
  const result: Fire[] = [];
  const before: Record<string, number>[] = [];
  const after: Record<string, number>[] = [];
  for (let f = 0; f <= fires; f++) {
    const at = firstFire + f * PERIOD_MS;
    if (f > 0 && driver.requests) {
      await sleep(at - 1_000 - nowMs());
      before.push(await driver.requests().catch(() => ({})));
    }
    await sleep(at - nowMs());
    // Only the watcher's file is read while the fire is under way: no load on the API server.
    let seen = new Map<string, number>();
    while (nowMs() < at + FIRE_DEADLINE_MS) {
      seen = new Map();
      for (const s of readSightings(sightings)) {
        if (s.scheduled === at && !seen.has(s.name)) seen.set(s.name, s.at - at);
      }
      if (seen.size >= n) break;
      await sleep(500);
    }
    await waitFor(`${system}: fire ${iso(at)} recorded`, () => driver.recorded(at), {
      timeoutMs: Math.max(1_000, at + PERIOD_MS - 10_000 - nowMs()),
      intervalMs: 2_000,
    }).catch((err: unknown) => log(`${system} N=${n}: ${String(err)}`));
    if (f > 0 && driver.requests) after.push(await driver.requests().catch(() => ({})));
    const deleted = nowMs();
    await waitFor(
      `${system}: Jobs of ${iso(at)} gone and noticed`,
      async () => {
        if ((await batch.listNamespacedJob({ namespace, limit: 1 })).items.length > 0) {
          // A loaded API server may give up on a large delete after its 60 s request timeout,
          // having deleted part of the collection: ask again until none is left.
          await batch
            .deleteCollectionNamespacedJob({ namespace, propagationPolicy: "Background" })
            .catch((err: unknown) => log(`${system} N=${n}: deleting Jobs: ${String(err)}; again`));
          return false;
        }
        return driver.settled();
      },
      { timeoutMs: Math.max(1_000, at + PERIOD_MS - 3_000 - nowMs()), intervalMs: 1_000 },
    ).catch((err: unknown) => log(`${system} N=${n}: ${String(err)} (the next fire starts with a backlog)`));
    const lags = [...seen.values()].sort((a, b) => a - b);
    const fire = { at, lags, settleMs: nowMs() - deleted };
    log(
      `${system} N=${n} fire ${iso(at)}${f === 0 ? " (left out)" : ""}: ${lags.length}/${n} Jobs, ` +
        `max lag ${Math.round(lags.at(-1) ?? NaN)} ms, settled ${(fire.settleMs / 1000).toFixed(1)} s after deleting`,
    );
    if (f > 0) result.push(fire);
  }
  const window: Window = { fires: result };
  if (driver.requests && before.length) window.requestsPerRun = perRun(before, after, n * before.length);
  return window;
}

/** Sums (after - before) over the fires, by verb, per run. */
function perRun(before: Record<string, number>[], after: Record<string, number>[], runs: number) {
  const total: Record<string, number> = {};
  before.forEach((b, i) => {
    for (const [verb, count] of Object.entries(after[i] ?? {}))
      total[verb] = (total[verb] ?? 0) + count - (b[verb] ?? 0);
  });
  return Object.fromEntries(Object.entries(total).map(([verb, count]) => [verb, count / runs]));
}

interface Setup {
  driver: Driver;
  /** Stops what `setup` started; what it returns goes into the window's results. */
  teardown: () => Promise<Partial<Window>>;
  /** The left-out fire, when the system had to be told (the floor); default the next boundary. */
  firstFire?: number;
}

/** Creates the namespace, runs the watcher, `setup` and the fires, then removes everything. */
async function runWindow(
  env: Env,
  system: System,
  n: number,
  fires: number,
  setup: (namespace: string) => Promise<Setup>,
): Promise<Window> {
  const namespace = `${system}-${n}`;
  const core = env.kc.makeApiClient(k8s.CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  const out = join(env.workDir, `watch-${namespace}.jsonl`);
  const proc = spawnTracked({
    name: `watcher-${namespace}`,
    command: process.execPath,
    args: [SELF, "--watcher", env.kubeconfigPath, namespace, out],
    logDir: env.logDir,
  });
  try {
    await waitFor("the watcher's watch", async () => existsSync(out), { timeoutMs: 30_000 });
    const { driver, teardown, firstFire = nextFire(3_000) } = await setup(namespace);
    let window: Window | undefined;
    try {
      window = await measure(env, system, namespace, n, firstFire, fires, driver, out);
    } finally {
      const extra = await teardown();
      if (window) Object.assign(window, extra);
    }
    return window;
  } finally {
    await proc.stop();
    await core.deleteNamespace({ name: namespace });
    await waitFor(
      `namespace ${namespace} to be deleted`,
      async () => {
        try {
          await core.readNamespace({ name: namespace });
          return false;
        } catch {
          return true;
        }
      },
      { timeoutMs: 300_000, intervalMs: 1_000 },
    );
  }
}

function runFloor(env: Env, n: number, fires: number): Promise<Window> {
  return runWindow(env, "floor", n, fires, async (namespace) => {
    const firstFire = nextFire(3_000);
    const proc = spawnTracked({
      name: `floor-${n}`,
      command: process.execPath,
      args: [
        SELF,
        "--floor",
        env.kubeconfigPath,
        namespace,
        String(n),
        String(firstFire),
        String(fires + 1),
        String(env.qps),
        String(env.burst),
        "--period-minutes",
        String(PERIOD_MINUTES),
      ],
      logDir: env.logDir,
    });
    const done = async (): Promise<boolean> => true;
    return {
      firstFire,
      driver: { recorded: done, settled: done },
      teardown: async () => {
        await proc.stop();
        return {};
      },
    };
  });
}

interface Listed {
  metadata?: { name?: string };
  status?: { nextScheduleTime?: string; active?: unknown[]; jobName?: string };
}

/**
 * Parses cadent_api_requests_total from the controller's metrics into counts by "verb resource"
 * (or by verb alone, when the metric has no resource label).
 */
async function controllerRequests(metricsUrl: string): Promise<Record<string, number>> {
  const text = await (await fetch(metricsUrl)).text();
  const counts: Record<string, number> = {};
  for (const [, labels = "", value = "0"] of text.matchAll(
    /^cadent_api_requests_total\{([^}]*)\} (\S+)$/gm,
  )) {
    const label = (name: string): string => new RegExp(`${name}="([^"]*)"`).exec(labels)?.[1] ?? "";
    const resource = [label("resource"), label("subresource")].filter(Boolean).join("/");
    const key = [label("verb"), resource].filter(Boolean).join(" ");
    counts[key] = (counts[key] ?? 0) + Number(value);
  }
  return counts;
}

function runCadent(env: Env, n: number, fires: number): Promise<Window> {
  return runWindow(env, "cadent", n, fires, async (namespace) => {
    const controller = await startBenchController({
      name: `controller-${n}`,
      kubeconfigPath: env.kubeconfigPath,
      namespace,
      redisUrl: env.redisUrl,
      logDir: env.logDir,
      qps: env.qps,
      burst: env.burst,
      workers: env.workers,
      cpuProfDir: env.cpuProfDir,
    });
    const api = env.kc.makeApiClient(k8s.CustomObjectsApi);
    const list = async (plural: string): Promise<Listed[]> =>
      (
        (await api.listNamespacedCustomObject({
          group: "cadent.dev",
          version: "v1alpha1",
          plural,
          namespace,
        })) as {
          items: Listed[];
        }
      ).items;
    const seconds = await createObjects(n, (name) =>
      api.createNamespacedCustomObject({
        group: "cadent.dev",
        version: "v1alpha1",
        plural: "periodictasks",
        namespace,
        body: {
          apiVersion: "cadent.dev/v1alpha1",
          kind: "PeriodicTask",
          metadata: { name },
          spec: {
            schedule: SCHEDULE,
            concurrencyPolicy: "Allow",
            successfulRunsHistoryLimit: 1,
            failedRunsHistoryLimit: 1,
            taskTemplate: { spec: { jobTemplate: { spec: JOB_SPEC } } },
          },
        },
      }),
    );
    // Settled: every PeriodicTask validated (its template dry run done) and its status written.
    await waitFor(
      "every PeriodicTask's first status",
      async () => (await list("periodictasks")).filter((pt) => pt.status?.nextScheduleTime).length === n,
      { timeoutMs: 300_000, intervalMs: 1_000 },
    );
    log(`cadent N=${n}: ${n} PeriodicTasks created in ${seconds.toFixed(1)} s and reconciled`);
    return {
      driver: {
        recorded: async (at) =>
          (await list("tasks")).filter(
            (t) => t.metadata?.name?.endsWith(`-${at / 1000}`) && t.status?.jobName,
          ).length >= n,
        settled: async () => (await list("periodictasks")).every((pt) => !pt.status?.active?.length),
        requests: () => controllerRequests(controller.metricsUrl),
      },
      teardown: async () => {
        const rss = rssMb(controller.process.pid);
        // Kept beside the logs (and the profiles, with --cpu-prof) for a closer look.
        writeFileSync(
          join(env.logDir, `metrics-${namespace}.txt`),
          await (await fetch(controller.metricsUrl)).text(),
        );
        await controller.process.stop(30_000);
        return { rssMb: rss };
      },
    };
  });
}

function runCronJobs(env: Env, n: number, fires: number): Promise<Window> {
  return runWindow(env, "cronjob", n, fires, async (namespace) => {
    const batch = env.kc.makeApiClient(k8s.BatchV1Api);
    const seconds = await createObjects(n, (name) =>
      batch.createNamespacedCronJob({
        namespace,
        body: {
          metadata: { name },
          spec: {
            schedule: SCHEDULE,
            concurrencyPolicy: "Allow",
            successfulJobsHistoryLimit: 1,
            failedJobsHistoryLimit: 1,
            jobTemplate: { spec: JOB_SPEC },
          },
        },
      }),
    );
    log(`cronjob N=${n}: ${n} CronJobs created in ${seconds.toFixed(1)} s`);
    const list = async (): Promise<k8s.V1CronJob[]> =>
      (await batch.listNamespacedCronJob({ namespace })).items;
    return {
      driver: {
        recorded: async (at) =>
          (await list()).filter(
            (c) => c.status?.lastScheduleTime && new Date(c.status.lastScheduleTime).getTime() >= at,
          ).length >= n,
        settled: async () => (await list()).every((c) => !c.status?.active?.length),
      },
      // The CronJobs go with the namespace.
      teardown: async () => ({}),
    };
  });
}

// --- the table -----------------------------------------------------------------------------------

interface Result {
  n: number;
  system: System;
  created: number;
  expected: number;
  /** Fires that did not reach N Jobs within FIRE_DEADLINE_MS. */
  short: number;
  p50: Spread;
  p99: Spread;
  /** The time until all N Jobs existed: the max lag of complete fires. */
  allN: Spread;
  settle: Spread;
  rssMb?: number | undefined;
  requestsPerRun?: Record<string, number> | undefined;
}

function summarize(n: number, system: System, window: Window): Result {
  const lags = window.fires.map((f) => f.lags);
  const { p50, p99 } = lagSpreads(lags);
  const complete = window.fires.filter((f) => f.lags.length >= n);
  return {
    n,
    system,
    created: lags.reduce((sum, l) => sum + l.length, 0),
    expected: n * window.fires.length,
    short: window.fires.length - complete.length,
    p50,
    p99,
    allN: spread(complete.map((f) => f.lags.at(-1) ?? NaN)),
    settle: spread(window.fires.map((f) => f.settleMs)),
    rssMb: window.rssMb,
    requestsPerRun: window.requestsPerRun,
  };
}

function table(results: readonly Result[]): string {
  const rows = [
    "| N | system | Jobs created | lag p50 ms | lag p99 ms | all N exist ms | ÷ floor | ÷ CronJob | settle after delete s | controller RSS |",
    "|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|",
  ];
  const median = (n: number, system: System): number =>
    results.find((r) => r.n === n && r.system === system)?.allN.median ?? NaN;
  for (const r of results) {
    const created = `${r.created.toLocaleString("en")} / ${r.expected.toLocaleString("en")}${r.short ? ` (${r.short} short)` : ""}`;
    const settle = `${(r.settle.median / 1000).toFixed(1)} (${(r.settle.min / 1000).toFixed(1)}–${(r.settle.max / 1000).toFixed(1)})`;
    rows.push(
      `| ${r.n.toLocaleString("en")} | ${r.system} | ${created} | ${cell(r.p50)} | ${cell(r.p99)} | ${cell(r.allN)} | ` +
        `${ratio(r.allN.median, median(r.n, "floor"))} | ${r.system === "cronjob" ? "1×" : ratio(r.allN.median, median(r.n, "cronjob"))} | ` +
        `${settle} | ${r.rssMb === undefined ? "" : `${r.rssMb} MB`} |`,
    );
  }
  return rows.join("\n");
}

function notes(results: readonly Result[]): string {
  const lines: string[] = [];
  for (const r of results) {
    if (r.system !== "cadent") continue;
    const cron = results.find((c) => c.n === r.n && c.system === "cronjob");
    if (cron) {
      lines.push(
        `N=${r.n.toLocaleString("en")}: time until all N Jobs exist, CronJob controller ÷ cadent = ${ratio(cron.allN.median, r.allN.median)} (target at N = 1,000: at least 3×).`,
      );
    }
    if (r.requestsPerRun) {
      const verbs = Object.entries(r.requestsPerRun)
        .filter(([, v]) => v >= 0.005)
        .map(([verb, v]) => `${verb} ${v.toFixed(2)}`)
        .join(", ");
      lines.push(`N=${r.n.toLocaleString("en")}: cadent's API requests per run during the fires: ${verbs}.`);
    }
  }
  return lines.join("\n");
}

// --- the orchestration ---------------------------------------------------------------------------

async function main(): Promise<void> {
  const sizes = (option("--sizes") ?? "100,1000").split(",").map(Number);
  const fires = Number(option("--fires") ?? 5);
  const skipCronJob = args.includes("--skip-cronjob");
  const { kubeBin } = toolPaths();
  const workDir = mkdtempSync(join(tmpdir(), "cadent-job-lag-"));
  const logDir = join(workDir, "logs");
  const redisServer = await startRedis({ workDir });
  // With kube-controller-manager (its CronJob and Job controllers); kwok gets no Node, so it idles.
  const plane = await startControlPlane({ binDir: kubeBin, workDir, withNodes: true });
  log(`work directory ${workDir}`);
  try {
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(plane.kubeconfigPath);
    await installCrds(kc);
    const env: Env = {
      kc,
      kubeconfigPath: plane.kubeconfigPath,
      workDir,
      logDir,
      redisUrl: redisServer.url,
      qps: Number(option("--kube-api-qps") ?? 200),
      burst: Number(option("--kube-api-burst") ?? 400),
      workers: Number(option("--workers") ?? 16),
      cpuProfDir: option("--cpu-prof"),
    };
    const results: Result[] = [];
    for (const n of sizes) {
      results.push(summarize(n, "floor", await runFloor(env, n, fires)));
      results.push(summarize(n, "cadent", await runCadent(env, n, fires)));
      if (!skipCronJob) results.push(summarize(n, "cronjob", await runCronJobs(env, n, fires)));
      console.error(table(results.filter((r) => r.n === n)));
    }
    console.log(
      `\nFire lag, Job path: ${fires} fires per system and N, one every ${PERIOD_MINUTES} min; client limits ${env.qps} qps, burst ${env.burst}; ` +
        `cadent --workers ${env.workers}; load average ${loadavg()[0]?.toFixed(2)}`,
    );
    console.log("Cells: median over fires of the per-fire value (min–max over fires).\n");
    console.log(table(results));
    console.log(`\n${notes(results)}`);
    writeFileSync(join(workDir, "results.json"), JSON.stringify(results, null, 2));
  } finally {
    await plane.stop();
    await redisServer.stop();
    if (!option("--cpu-prof") && !args.includes("--keep")) rmSync(workDir, { recursive: true, force: true });
  }
}

const mode = args[0];
if (mode === "--watcher") {
  const [, kubeconfigPath = "", namespace = "", out = ""] = args;
  await watcher(kubeconfigPath, namespace, out);
} else if (mode === "--floor") {
  const [, kubeconfigPath = "", namespace = "", n = "", first = "", fires = "", qps = "", burst = ""] = args;
  await floor(kubeconfigPath, namespace, Number(n), Number(first), Number(fires), Number(qps), Number(burst));
} else {
  await main();
}
