/**
 * Controller footprint: the RSS, V8 heap and CPU of `cadent controller` (run from dist/, as in
 * production) holding 10,000 PeriodicTasks and 30,000 finished Tasks, next to the same controller
 * with nothing to hold. Prints a markdown table; the method and numbers are written up in
 * docs/benchmarks.md ("## Controller footprint").
 *
 *   npm run build && npm run bench:footprint
 *   node bench/footprint.ts [--scale 0.1] [--idle 60] [--heap-snapshot DIR] [--node-flag FLAG ...]
 *                           [--skip-baseline] [--dist [LABEL=]DIR ...]
 *
 * Steps, on a private control plane (etcd + kube-apiserver) and a private Redis:
 * 1. baseline: the controller on an empty namespace: ready, then idle for `--idle` seconds;
 * 2. populate a namespace with N PeriodicTasks (N = 10,000 × scale) as `kubectl apply` writes them,
 *    and 3 finished runs of each, made and written as the controller makes runs and a worker
 *    finishes them (owner reference, labels, annotations, a status with a result or an error);
 * 3. first start: the controller adopts the runs and writes every PeriodicTask's status (this is
 *    what makes the objects look as on a cluster the controller has run on); then it is stopped;
 * 4. restart: the controller starts again on the same objects: informers sync, one reconcile of
 *    every object (no write is needed), then `--idle` seconds with nothing due.
 * For each run: CPU seconds (utime + stime of /proc/PID/stat) to readiness, to the end of the first
 * pass and during the idle period; VmRSS and VmHWM (/proc/PID/status) after the idle period; the V8
 * heap from the controller's own /metrics; and its API requests.
 *
 * `--heap-snapshot DIR` starts the controllers with `--heapsnapshot-signal=SIGUSR2` and writes a
 * snapshot into DIR after each idle period (summarize it with bench/heap-summary.ts).
 * `--node-flag` passes a flag to the controller's Node.js, e.g. `--node-flag=--max-semi-space-size=2`,
 * or, as `--node-flag=LABEL:FLAG`, to the build LABEL only (see `--dist`).
 * `--dist` names the builds to measure (default ./dist), e.g. `--dist before=/tmp/head/dist --dist
 * after=dist` for before/after numbers on the same objects: each build gets the baseline and the
 * restart; the first build makes the first start.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import * as k8s from "@kubernetes/client-node";
import { capResult } from "../src/controllers/task.ts";
import { runTaskId, scheduledRunName } from "../src/controllers/runs.ts";
import { setCondition } from "../src/runtime/conditions.ts";
import { compileSchedule } from "../src/schedule/index.ts";
import { startControlPlane } from "../tests/support/control-plane.ts";
import { REPO_ROOT, toolPaths } from "../tests/support/environment.ts";
import { freePort, GiveUp, waitFor } from "../tests/support/ports.ts";
import { spawnTracked, type TrackedProcess } from "../tests/support/processes.ts";
import { startRedis } from "../tests/support/redis.ts";
import { installCrds, sleep } from "./support.ts";

const { values: flags } = parseArgs({
  options: {
    scale: { type: "string", default: "1" },
    idle: { type: "string", default: "60" },
    "heap-snapshot": { type: "string" },
    "node-flag": { type: "string", multiple: true, default: [] },
    "skip-baseline": { type: "boolean", default: false },
    dist: { type: "string", multiple: true, default: [`dist=${join(REPO_ROOT, "dist")}`] },
  },
});
const SCALE = Number(flags.scale);
const IDLE_MS = Number(flags.idle) * 1000;
/** The builds measured, each `LABEL=DIR` (or DIR, labelled by itself), on the same objects. */
const BUILDS = (flags.dist ?? []).map((spec) => {
  const eq = spec.indexOf("=");
  const label = eq < 0 ? spec : spec.slice(0, eq);
  // `--node-flag=FLAG` applies to every build, `--node-flag=LABEL:FLAG` to build LABEL only.
  const nodeFlags = (flags["node-flag"] ?? []).flatMap((flag) =>
    flag.startsWith("--") ? [flag] : flag.startsWith(`${label}:`) ? [flag.slice(label.length + 1)] : [],
  );
  return { label, dir: resolve(spec.slice(eq + 1)), nodeFlags };
});
const SNAPSHOT_DIR = flags["heap-snapshot"] ? resolve(flags["heap-snapshot"]) : undefined;
const PERIODIC_TASKS = Math.round(10_000 * SCALE);
const RUNS_PER_PERIODIC_TASK = 3;
const GROUP = "cadent.dev";
const VERSION = "v1alpha1";
const API_VERSION = `${GROUP}/${VERSION}`;
const FIELD_MANAGER = "cadent";
/** No reconcile for this long ends the first pass. */
const QUIET_MS = 10_000;
const CLOCK_TICKS = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());

const iso = (t: Date): string => t.toISOString().replace(/\.\d{3}Z$/, "Z");

// --- the objects ---------------------------------------------------------------------------------

const TEAMS = ["billing", "reports", "search", "payments", "growth", "platform", "data", "mail"];
const JOBS = ["invoice-run", "export", "reindex", "settlement", "digest", "cleanup", "rollup", "sync"];
const ZONES = ["UTC", "UTC", "Europe/Berlin", "America/New_York", "Asia/Shanghai", "Australia/Sydney"];

/** A seeded PRNG (mulberry32), so every run creates the same objects. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Planned {
  name: string;
  manifest: Record<string, unknown>;
  /** The three most recent fire times, oldest first: the runs that exist. */
  runTimes: Date[];
  taskSpec: Record<string, unknown>;
  templateLabels: Record<string, string>;
}

/**
 * Monthly, quarterly and yearly schedules (some hashed, some in a local zone), none due within the
 * next six hours, so nothing fires while the controller is measured.
 */
function planPeriodicTask(i: number, namespace: string, now: Date, random: () => number): Planned {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const int = (n: number): number => Math.floor(random() * n);
  const team = pick(TEAMS);
  const job = pick(JOBS);
  const name = `${team}-${job}-${String(i).padStart(5, "0")}`;
  const quiet = new Date(now.getTime() + 6 * 3_600_000);
  for (;;) {
    const schedule = pick([
      `${int(60)} ${int(24)} ${1 + int(28)} * *`,
      `H H ${1 + int(28)} * *`,
      `H ${int(24)} 1 */3 *`,
      `${int(60)} ${int(24)} ${1 + int(28)} ${1 + int(12)} *`,
      "@monthly",
    ]);
    const timeZone = pick(ZONES);
    const compiled = compileSchedule({
      expression: schedule,
      timeZone,
      hashKey: `${namespace}/${name}`,
      createdAt: now,
    });
    const next = compiled.next(now);
    if (!next || next <= quiet) continue;
    const runTimes: Date[] = [];
    for (let at = compiled.prev(now); at && runTimes.length < RUNS_PER_PERIODIC_TASK;) {
      runTimes.unshift(at);
      at = compiled.prev(new Date(at.getTime() - 1000));
    }
    const templateLabels = { "app.kubernetes.io/name": team, "app.kubernetes.io/component": job };
    const taskSpec: Record<string, unknown> = {
      task: `app.tasks.${team}.${job.replaceAll("-", "_")}`,
      args: [i, pick(["eu-west-1", "us-east-1", "ap-southeast-2"]), int(1000)],
      kwargs: {
        tenant: `tenant-${int(500)}`,
        dry_run: false,
        batch_size: 500,
        notify: [`${team}@example.com`],
      },
      queue: team,
      ...(random() < 0.5 ? { expires: 3600 } : {}),
      ...(random() < 0.3 ? { retry: { limit: 3 } } : {}),
    };
    const manifest: Record<string, unknown> = {
      apiVersion: API_VERSION,
      kind: "PeriodicTask",
      metadata: {
        name,
        namespace,
        labels: { "app.kubernetes.io/part-of": team, "app.kubernetes.io/managed-by": "kustomize" },
      },
      spec: {
        schedule,
        ...(timeZone === "UTC" ? {} : { timeZone }),
        concurrencyPolicy: random() < 0.5 ? "Forbid" : "Allow",
        startingDeadlineSeconds: 600,
        successfulRunsHistoryLimit: 3,
        failedRunsHistoryLimit: 3,
        taskTemplate: { metadata: { labels: templateLabels }, spec: taskSpec },
      },
    };
    // What `kubectl apply` (and Argo CD's default client-side apply) leaves on every object.
    (manifest.metadata as { annotations?: Record<string, string> }).annotations = {
      "kubectl.kubernetes.io/last-applied-configuration": `${JSON.stringify(manifest)}\n`,
    };
    return { name, manifest, runTimes, taskSpec, templateLabels };
  }
}

const TRACEBACK = [
  "Traceback (most recent call last):",
  '  File "/app/.venv/lib/python3.11/site-packages/celery/app/trace.py", line 453, in trace_task',
  "    R = retval = fun(*args, **kwargs)",
  '  File "/app/.venv/lib/python3.11/site-packages/celery/app/trace.py", line 736, in __protected_call__',
  "    return self.run(*args, **kwargs)",
  '  File "/app/app/tasks/common.py", line 88, in run_export',
  "    rows = client.fetch(tenant, batch_size=batch_size)",
  '  File "/app/app/clients/warehouse.py", line 142, in fetch',
  "    raise ConnectionError(f'warehouse unavailable: {err}')",
  "ConnectionError: warehouse unavailable: timed out after 30.0 s",
].join("\n");

/** A finished run as the controller and a worker leave it: the second of three failed. */
function finishedStatus(taskId: string, scheduled: Date, index: number, random: () => number) {
  const at = (seconds: number): string => iso(new Date(scheduled.getTime() + seconds * 1000));
  const took = 5 + Math.floor(random() * 300);
  const failed = index === 1;
  const phase = failed ? "Failed" : "Succeeded";
  const message = failed ? "ConnectionError: warehouse unavailable" : "the task succeeded";
  const finishedAt = new Date(scheduled.getTime() + (took + 1) * 1000);
  let conditions = setCondition(
    [],
    { type: "Progressing", status: "False", reason: phase, message },
    finishedAt,
  );
  conditions = setCondition(
    conditions,
    { type: "Finished", status: "True", reason: phase, message },
    finishedAt,
  );
  const result = {
    rows: 10_000 + Math.floor(random() * 90_000),
    files: [`s3://exports/${taskId}/part-0000.parquet`, `s3://exports/${taskId}/part-0001.parquet`],
    checksum: taskId.replaceAll("-", ""),
    duration_seconds: took,
    warnings: ["2 rows skipped: malformed timestamp"],
  };
  return {
    phase,
    taskId,
    attempts: 1,
    scheduledTime: iso(scheduled),
    queuedTime: at(0),
    startTime: at(1),
    completionTime: at(took + 1),
    // A deployment of a few worker Pods runs every task.
    worker: `celery@worker-7f9c5d${"abcdef"[Math.floor(random() * 6)] ?? "a"}-x2k4p`,
    ...(failed
      ? {
          error: {
            type: "ConnectionError",
            message: "warehouse unavailable: timed out after 30.0 s",
            traceback: TRACEBACK,
          },
        }
      : capResult(result)),
    conditions,
    observedGeneration: 1,
  };
}

// --- creating them -------------------------------------------------------------------------------

/** Runs `work` over `items` with at most `limit` in flight, retrying throttled or failed requests. */
async function forEachBounded<T>(
  what: string,
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let done = 0;
  const started = performance.now();
  const retrying = async (item: T): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await work(item);
      } catch (err) {
        const code = err instanceof k8s.ApiException ? err.code : undefined;
        if (attempt >= 8 || (code !== undefined && code !== 429 && code < 500)) throw err;
        await sleep(200 * attempt);
      }
    }
  };
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      await retrying(items[next++] as T);
      if (++done % 5_000 === 0) console.error(`  ${what}: ${done} / ${items.length}`);
    }
  };
  await Promise.all(Array.from({ length: limit }, lane));
  console.error(`  ${what}: ${items.length} in ${((performance.now() - started) / 1000).toFixed(0)} s`);
}

export async function populate(kc: k8s.KubeConfig, namespace: string): Promise<void> {
  const api = kc.makeApiClient(k8s.CustomObjectsApi);
  const random = prng(7);
  const now = new Date();
  const planned = Array.from({ length: PERIODIC_TASKS }, (_, i) =>
    planPeriodicTask(i, namespace, now, random),
  );
  const uids = new Map<string, string>();
  await forEachBounded("PeriodicTasks created", planned, 64, async (p) => {
    const made = (await api.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: "periodictasks",
      namespace,
      body: p.manifest,
      fieldManager: "kubectl-client-side-apply",
    })) as k8s.KubernetesObject;
    uids.set(p.name, made.metadata?.uid ?? "");
  });
  const runs = planned.flatMap((p) =>
    p.runTimes.map((scheduled, index) => ({
      p,
      scheduled,
      index,
      name: scheduledRunName(p.name, scheduled),
    })),
  );
  await forEachBounded("Tasks created", runs, 64, async ({ p, scheduled, name }) => {
    await api.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: "tasks",
      namespace,
      fieldManager: FIELD_MANAGER,
      body: {
        apiVersion: API_VERSION,
        kind: "Task",
        metadata: {
          name,
          labels: { ...p.templateLabels, "cadent.dev/periodic-task": p.name },
          annotations: { "cadent.dev/scheduled-time": iso(scheduled), "cadent.dev/trigger": "schedule" },
          ownerReferences: [
            {
              apiVersion: API_VERSION,
              kind: "PeriodicTask",
              name: p.name,
              uid: uids.get(p.name) ?? "",
              controller: true,
              blockOwnerDeletion: true,
            },
          ],
        },
        spec: p.taskSpec,
      },
    });
  });
  await forEachBounded("Task statuses written", runs, 64, async ({ p, scheduled, index, name }) => {
    const status = finishedStatus(runTaskId(uids.get(p.name) ?? "", name), scheduled, index, random);
    await api.patchNamespacedCustomObjectStatus(
      {
        group: GROUP,
        version: VERSION,
        plural: "tasks",
        namespace,
        name,
        body: { status },
        fieldManager: FIELD_MANAGER,
      },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
  });
}

// --- measuring the controller --------------------------------------------------------------------

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The command name (field 2) may contain spaces: count fields after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** VmRSS and VmHWM of /proc/PID/status, in MiB. */
function memory(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1]);
  return { rss: kib("VmRSS") / 1024, hwm: kib("VmHWM") / 1024 };
}

/** Prometheus text → sum of the samples of `name` whose labels include every given pair. */
function metric(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) {
      sum += Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return sum;
}

interface Measurement {
  run: string;
  periodicTasks: number;
  tasks: number;
  readySeconds: number;
  passSeconds: number;
  cpuToReady: number;
  cpuPass: number;
  cpuIdle: number;
  rssMb: number;
  hwmMb: number;
  heapUsedMb: number;
  heapTotalMb: number;
  requests: number;
  writes: number;
  snapshot: string | undefined;
}

interface Env {
  kubeconfigPath: string;
  redisUrl: string;
  logDir: string;
}

/**
 * Starts `node dist/cli/main.js controller` on `namespace`, waits for readiness and for the end of
 * the leader's first pass over `objects` PeriodicTasks and `objects.tasks` Tasks, idles, measures.
 */
export async function measureController(
  env: Env,
  build: (typeof BUILDS)[number],
  run: string,
  namespace: string,
  objects: { periodicTasks: number; tasks: number },
  extraArgs: readonly string[] = [],
): Promise<Measurement> {
  const healthPort = await freePort();
  const metricsPort = await freePort();
  const started = performance.now();
  const controller: TrackedProcess = spawnTracked({
    name: `controller-${build.label}-${run.replaceAll(/\W+/g, "-")}`,
    command: process.execPath,
    args: [
      ...build.nodeFlags,
      ...(SNAPSHOT_DIR ? ["--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${SNAPSHOT_DIR}`] : []),
      join(build.dir, "cli/main.js"),
      "controller",
      "--kubeconfig",
      env.kubeconfigPath,
      "--namespaces",
      namespace,
      // One replica; on a loaded machine a lease renewal can miss its deadline and end the run.
      "--no-leader-elect",
      "--redis-url",
      env.redisUrl,
      "--health-addr",
      `127.0.0.1:${healthPort}`,
      "--metrics-addr",
      `127.0.0.1:${metricsPort}`,
      ...extraArgs,
    ],
    logDir: env.logDir,
  });
  const { pid } = controller;
  const alive = (): void => {
    if (controller.child.exitCode !== null || controller.child.signalCode !== null) {
      throw new GiveUp(`the controller exited:\n${controller.logTail()}`);
    }
  };
  const scrape = async (): Promise<string> => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  try {
    await waitFor(
      "the controller's /readyz",
      async () => {
        alive();
        return (await fetch(`http://127.0.0.1:${healthPort}/readyz`)).ok;
      },
      { timeoutMs: 600_000, intervalMs: 100 },
    );
    const readySeconds = (performance.now() - started) / 1000;
    const cpuToReady = cpuSeconds(pid);
    // The first pass is over when the leader has reconciled every object at least once, both
    // queues are empty and no reconcile has run for QUIET_MS (reconciles that follow their own
    // writes, or status writes held back for a few seconds, belong to the pass).
    let last = { reconciles: -1, at: performance.now(), cpu: 0 };
    await waitFor(
      "the leader's first pass over every object",
      async () => {
        alive();
        const text = await scrape();
        const pts = metric(text, "cadent_reconcile_duration_seconds_count", { controller: "periodictask" });
        const tasks = metric(text, "cadent_reconcile_duration_seconds_count", { controller: "task" });
        if (pts + tasks !== last.reconciles) {
          last = { reconciles: pts + tasks, at: performance.now(), cpu: cpuSeconds(pid) };
        }
        return (
          metric(text, "cadent_leader") === 1 &&
          pts >= objects.periodicTasks &&
          tasks >= objects.tasks &&
          metric(text, "cadent_workqueue_depth") === 0 &&
          performance.now() - last.at >= QUIET_MS
        );
      },
      { timeoutMs: 1_800_000, intervalMs: 250 },
    );
    const passSeconds = (last.at - started) / 1000;
    const cpuAfterPass = last.cpu;
    await sleep(IDLE_MS);
    alive();
    const cpuIdle = cpuSeconds(pid) - cpuAfterPass;
    const { rss, hwm } = memory(pid);
    const text = await scrape();
    const requests = metric(text, "cadent_api_requests_total");
    const reads = ["get", "list", "watch"].reduce(
      (n, verb) => n + metric(text, "cadent_api_requests_total", { verb }),
      0,
    );
    const snapshot = SNAPSHOT_DIR ? await heapSnapshot(controller, scrape) : undefined;
    return {
      run: `${build.label}: ${run}`,
      ...objects,
      readySeconds,
      passSeconds,
      cpuToReady,
      cpuPass: cpuAfterPass - cpuToReady,
      cpuIdle,
      rssMb: rss,
      hwmMb: hwm,
      heapUsedMb: metric(text, "nodejs_heap_size_used_bytes") / 2 ** 20,
      heapTotalMb: metric(text, "nodejs_heap_size_total_bytes") / 2 ** 20,
      requests,
      writes: requests - reads,
      snapshot,
    };
  } finally {
    await controller.stop(30_000);
  }
}

/** SIGUSR2 → Node writes Heap.<date>.<pid>...heapsnapshot synchronously; /metrics answers again after. */
async function heapSnapshot(controller: TrackedProcess, scrape: () => Promise<string>): Promise<string> {
  const dir = SNAPSHOT_DIR ?? "";
  const before = new Set(readdirSync(dir));
  process.kill(controller.pid, "SIGUSR2");
  let file: string | undefined;
  await waitFor(
    "the heap snapshot",
    async () => {
      file = readdirSync(dir).find((f) => !before.has(f) && f.endsWith(".heapsnapshot"));
      if (!file) return false;
      await scrape();
      return true;
    },
    { timeoutMs: 600_000, intervalMs: 500 },
  );
  const path = join(dir, file ?? "");
  console.error(`  heap snapshot: ${path} (${(statSync(path).size / 2 ** 20).toFixed(0)} MiB)`);
  return path;
}

// --- the report ----------------------------------------------------------------------------------

function table(results: readonly Measurement[]): string {
  const n = (v: number): string => v.toLocaleString("en");
  const s = (v: number): string => v.toFixed(1);
  const mb = (v: number): string => `${Math.round(v)} MB`;
  const rows = [
    "| run | PeriodicTasks | Tasks | ready | first pass done | CPU to ready | CPU first pass | CPU idle | RSS after idle | peak RSS (VmHWM) | V8 heap used / total | API requests (writes) |",
    "| --- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |",
  ];
  for (const r of results) {
    rows.push(
      `| ${r.run} | ${n(r.periodicTasks)} | ${n(r.tasks)} | ${s(r.readySeconds)} s | ${s(r.passSeconds)} s | ${s(r.cpuToReady)} s | ${s(r.cpuPass)} s | ${s(r.cpuIdle)} s | ${mb(r.rssMb)} | ${mb(r.hwmMb)} | ${mb(r.heapUsedMb)} / ${mb(r.heapTotalMb)} | ${n(r.requests)} (${n(r.writes)}) |`,
    );
  }
  return rows.join("\n");
}

async function main(): Promise<void> {
  if (!(SCALE > 0) || !(IDLE_MS >= 0)) throw new Error("--scale must be > 0 and --idle ≥ 0 (seconds)");
  for (const { dir } of BUILDS) {
    try {
      statSync(join(dir, "cli/main.js"));
    } catch {
      throw new Error(
        `${join(dir, "cli/main.js")} is missing: run \`npm run build\` first (the benchmark runs dist/, as production does)`,
      );
    }
  }
  const [first] = BUILDS;
  if (!first) throw new Error("--dist: give at least one build");
  if (SNAPSHOT_DIR) mkdirSync(SNAPSHOT_DIR, { recursive: true });
  const { kubeBin } = toolPaths();
  const workDir = mkdtempSync(join(tmpdir(), "cadent-footprint-"));
  const logDir = join(workDir, "logs");
  const redis = await startRedis({ workDir });
  const plane = await startControlPlane({ binDir: kubeBin, workDir, withNodes: false });
  const results: Measurement[] = [];
  try {
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(plane.kubeconfigPath);
    await installCrds(kc);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const env = { kubeconfigPath: plane.kubeconfigPath, redisUrl: redis.url, logDir };
    const none = { periodicTasks: 0, tasks: 0 };
    if (!flags["skip-baseline"]) {
      await core.createNamespace({ body: { metadata: { name: "footprint-empty" } } });
      for (const build of BUILDS) {
        console.error(`${build.label}: no objects`);
        results.push(await measureController(env, build, "no objects", "footprint-empty", none));
        console.error(table(results));
      }
    }
    const namespace = "footprint";
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    console.error(`populating ${namespace}: ${PERIODIC_TASKS} PeriodicTasks, ${PERIODIC_TASKS * 3} Tasks`);
    await populate(kc, namespace);
    const objects = { periodicTasks: PERIODIC_TASKS, tasks: PERIODIC_TASKS * RUNS_PER_PERIODIC_TASK };
    console.error("first start: adopts the runs and writes every PeriodicTask's status");
    results.push(
      await measureController(env, first, "first start (qps 500)", namespace, objects, [
        "--kube-api-qps",
        "500",
        "--kube-api-burst",
        "1000",
      ]),
    );
    console.error(table(results));
    for (const build of BUILDS) {
      console.error(`${build.label}: restart on the same objects`);
      results.push(await measureController(env, build, "restart", namespace, objects));
      console.error(table(results));
    }
    console.log(
      `\nController footprint (Node.js ${process.version}, ${cpus().length} CPUs, ` +
        `${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, load average ${loadavg()[0]?.toFixed(2)}, ` +
        `idle period ${IDLE_MS / 1000} s)\n`,
    );
    console.log(table(results));
    for (const b of BUILDS)
      console.log(`\n${b.label}: ${b.dir}${b.nodeFlags.length ? `, node ${b.nodeFlags.join(" ")}` : ""}`);
    for (const r of results) if (r.snapshot) console.log(`\nheap snapshot of "${r.run}": ${r.snapshot}`);
  } finally {
    await plane.stop();
    await redis.stop();
    rmSync(workDir, { recursive: true, force: true });
  }
}

// Imported (by a scratch script that wants the objects or the measurement), it only defines them.
if (import.meta.main) await main();
