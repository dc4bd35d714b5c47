/** Real Python Celery workers from the project's virtualenv (tests/python/requirements.txt). */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { GiveUp, waitFor } from "./ports.ts";
import { spawnTracked, type TrackedProcess } from "./processes.ts";

/** tests/python: the Celery apps used by the interoperability tests live here. */
export const PYTHON_APPS_DIR = fileURLToPath(new URL("../python/", import.meta.url));

export interface CeleryWorkerOptions {
  /** The virtualenv root (its bin/celery is used). */
  venv: string;
  /** The Celery app, e.g. `interop_app` (a module in tests/python) or `interop_app:app`. */
  app: string;
  brokerUrl: string;
  queues?: readonly string[];
  concurrency?: number;
  pool?: "prefork" | "solo" | "threads";
  logDir: string;
  /** Where the app module lives; default tests/python. */
  appDir?: string;
  /** Extra environment, e.g. a short visibility timeout for redelivery tests. */
  env?: Record<string, string>;
  extraArgs?: readonly string[];
}

export interface CeleryWorker {
  hostname: string;
  process: TrackedProcess;
  stop(): Promise<void>;
}

/** Starts `celery -A APP worker` and waits until it reports ready in its log. */
export async function startCeleryWorker(opts: CeleryWorkerOptions): Promise<CeleryWorker> {
  const hostname = `celery-${randomBytes(4).toString("hex")}@cadent-test`;
  const args = [
    "-A",
    opts.app,
    "worker",
    "--hostname",
    hostname,
    "--loglevel",
    "INFO",
    "--without-gossip",
    "--without-mingle",
    "--without-heartbeat",
    "--pool",
    opts.pool ?? "prefork",
    "--concurrency",
    String(opts.concurrency ?? 2),
    ...(opts.queues ? ["--queues", opts.queues.join(",")] : []),
    ...(opts.extraArgs ?? []),
  ];
  const proc = spawnTracked({
    name: hostname.split("@")[0] ?? "celery",
    command: join(opts.venv, "bin", "celery"),
    args,
    cwd: opts.appDir ?? PYTHON_APPS_DIR,
    logDir: opts.logDir,
    env: {
      ...process.env,
      PYTHONPATH: opts.appDir ?? PYTHON_APPS_DIR,
      REDIS_URL: opts.brokerUrl,
      PYTHONUNBUFFERED: "1",
      CELERY_BROKER_URL: opts.brokerUrl,
      ...opts.env,
    },
  });
  await waitFor(
    `celery worker ${hostname} ready`,
    async () => {
      if (proc.child.exitCode !== null) throw new GiveUp(`celery exited:\n${proc.logTail()}`);
      return proc.logTail(200).includes(" ready.");
    },
    { timeoutMs: 60_000, intervalMs: 250 },
  ).catch((err: unknown) => {
    void proc.kill();
    throw err;
  });
  return { hostname, process: proc, stop: () => proc.stop(10_000) };
}
