/**
 * Helpers of the worker integration tests: `cadent worker` as a real process (so kill -9 is
 * real), Python's send_task through tests/python/worker_client.py, and a Redis database of the
 * test's own — every worker's restore_visible scans the whole database's `unacked` hash, so tests
 * with short visibility timeouts must not share a database with anyone else's messages.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { Redis } from "ioredis";
import { inject } from "vitest";
import { decodeResult, resultKey } from "../../src/celery/index.ts";
import type { ResultMeta } from "../../src/celery/index.ts";
import { PYTHON_APPS_DIR } from "../support/celery.ts";
import { REPO_ROOT } from "../support/environment.ts";
import { waitFor } from "../support/ports.ts";
import { spawnTracked } from "../support/processes.ts";
import type { TrackedProcess } from "../support/processes.ts";

/** The shared test Redis, with database `db` (tests of one file use their own numbers). */
export function redisUrlForDb(db: number): string {
  const url = new URL(inject("redisUrl"));
  url.pathname = `/${db}`;
  return url.toString();
}

/** A fresh, empty database: the worker tests own databases 9 to 15. */
export async function freshDb(db: number): Promise<{ url: string; redis: Redis }> {
  const url = redisUrlForDb(db);
  const redis = new Redis(url);
  await redis.flushdb();
  return { url, redis };
}

export function uniqueQueue(label: string): string {
  return `${label}-${randomBytes(4).toString("hex")}`;
}

export interface CadentWorkerOptions {
  redisUrl: string;
  queues: readonly string[];
  concurrency?: number;
  prefetchMultiplier?: number;
  visibilityTimeoutSeconds?: number;
  shutdownGraceSeconds?: number;
  hostname?: string;
  /** More task modules, loaded after the example and the test tasks. */
  extraTasks?: readonly string[];
  /** More flags, e.g. `--redis-password-file`. */
  extraArgs?: readonly string[];
  /** Wait for the "worker ready" line (default); false for a worker that cannot connect, on purpose. */
  waitReady?: boolean;
}

export interface CadentWorker {
  readonly hostname: string;
  readonly process: TrackedProcess;
  /** The worker's JSON log lines so far. */
  logs(): Record<string, unknown>[];
}

/**
 * Starts `cadent worker` with the example task module and the test tasks
 * (tests/fixtures/worker-tasks.ts), and waits for its "worker ready" line.
 */
export async function startCadentWorker(options: CadentWorkerOptions): Promise<CadentWorker> {
  const hostname = options.hostname ?? `cadent-${randomBytes(4).toString("hex")}@test`;
  const args = [
    "--import",
    join(REPO_ROOT, "tests/fixtures/cadent-worker-from-src.ts"),
    join(REPO_ROOT, "src/cli/main.ts"),
    "worker",
    "--tasks",
    join(REPO_ROOT, "examples/ts-worker/tasks.ts"),
    "--tasks",
    join(REPO_ROOT, "tests/fixtures/worker-tasks.ts"),
    "--queues",
    options.queues.join(","),
    "--concurrency",
    String(options.concurrency ?? 4),
    "--prefetch-multiplier",
    String(options.prefetchMultiplier ?? 4),
    "--visibility-timeout",
    String(options.visibilityTimeoutSeconds ?? 3600),
    "--shutdown-grace",
    String(options.shutdownGraceSeconds ?? 25),
    "--hostname",
    hostname,
    "--log-level",
    "debug",
    ...(options.extraTasks ?? []).flatMap((module) => ["--tasks", module]),
    ...(options.extraArgs ?? []),
  ];
  const proc = spawnTracked({
    name: hostname.split("@")[0] ?? "cadent-worker",
    command: join(REPO_ROOT, "node_modules/.bin/node"),
    args,
    cwd: REPO_ROOT,
    logDir: join(inject("workDir"), "logs"),
    // REDIS_URL is both the worker's broker (no --redis-url) and what the test tasks record into.
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", REDIS_URL: options.redisUrl },
  });
  const logs = (): Record<string, unknown>[] =>
    proc
      .logTail(100_000)
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  if (options.waitReady === false) return { hostname, process: proc, logs };
  await waitFor(
    `cadent worker ${hostname} ready`,
    async () => {
      if (proc.child.exitCode !== null) throw new Error(`cadent worker exited:\n${proc.logTail()}`);
      return logs().some((line) => line["msg"] === "worker ready");
    },
    { timeoutMs: 30_000, intervalMs: 100 },
  ).catch(async (err: unknown) => {
    await proc.kill();
    throw err;
  });
  return { hostname, process: proc, logs };
}

export interface ClientTask {
  name: string;
  args?: unknown[];
  kwargs?: Record<string, unknown>;
  queue?: string;
  countdown?: number;
  eta?: string;
  expires?: number | string;
  priority?: number;
  time_limit?: number;
  soft_time_limit?: number;
  task_id?: string;
}

export type ClientOutcome =
  | { id: string; state: string; result: unknown }
  | { id: string; state: string; exc_type: string; exc_module: string; exc_args: unknown[] };

/**
 * Python Celery's client: `send_task` for each task, then (unless `wait` is false) `get()` for
 * each, reporting the value or the exception Celery rebuilt from the result.
 */
export function celeryClient(
  brokerUrl: string,
  tasks: ClientTask[],
  options: { wait?: boolean; timeoutSeconds?: number } = {},
): Promise<ClientOutcome[]> {
  const spec = JSON.stringify({ tasks, wait: options.wait ?? true, timeout: options.timeoutSeconds ?? 60 });
  return new Promise((resolve, reject) => {
    execFile(
      join(inject("venv"), "bin", "python"),
      [join(PYTHON_APPS_DIR, "worker_client.py"), spec],
      {
        cwd: PYTHON_APPS_DIR,
        env: { ...process.env, PYTHONPATH: PYTHON_APPS_DIR, CELERY_BROKER_URL: brokerUrl },
        timeout: 180_000,
      },
      (err, stdout, stderr) => {
        if (err) {
          reject(new Error(`worker_client.py failed: ${err.message}\n${stderr}`));
          return;
        }
        resolve(JSON.parse(stdout) as ClientOutcome[]);
      },
    );
  });
}

/** The stored result of a task, decoded, or null. */
export async function storedResult(redis: Redis, taskId: string): Promise<ResultMeta | null> {
  const raw = await redis.get(resultKey(taskId));
  if (raw === null) return null;
  const decoded = decodeResult(raw);
  if (!decoded.ok) throw new Error(`unreadable result for ${taskId}: ${decoded.reason}`);
  return decoded.meta;
}

/** Waits until the task's stored status is one of `statuses`, and returns the result. */
export async function waitForStatus(
  redis: Redis,
  taskId: string,
  statuses: readonly string[],
  timeoutMs = 60_000,
): Promise<ResultMeta> {
  let meta: ResultMeta | null = null;
  await waitFor(
    `task ${taskId} to reach ${statuses.join(" or ")}`,
    async () => {
      meta = await storedResult(redis, taskId);
      return meta !== null && statuses.includes(meta.status);
    },
    { timeoutMs, intervalMs: 100 },
  );
  if (meta === null) throw new Error("unreachable");
  return meta;
}
