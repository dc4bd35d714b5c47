/**
 * What the fire-lag benchmarks share: command-line options, clocks, statistics over fires,
 * `cadent controller` as a child process, and the cells of the markdown tables. (The CRDs come from
 * tests/support/cadent.ts, whose vitest import is harmless outside vitest as long as `inject` is
 * not called.)
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../tests/support/environment.ts";
import { freePort, waitFor } from "../tests/support/ports.ts";
import { spawnTracked, type TrackedProcess } from "../tests/support/processes.ts";

// --- options and clocks --------------------------------------------------------------------------

export const args = process.argv.slice(2);

/** The value after `name` on the command line, if given. */
export const option = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/** Wall-clock ms with sub-ms resolution, comparable across processes (scheduled times are wall clock). */
export const nowMs = (): number => performance.timeOrigin + performance.now();

/** Runs `work` over `items` with at most `limit` in flight. */
export async function pool<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: limit }, lane));
}

/** Resident set size of a process in MB (`VmRSS` of /proc/PID/status). */
export function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").match(/^VmRSS:\s+(\d+) kB/m);
  return line?.[1] ? Math.round(Number(line[1]) / 1024) : NaN;
}

// --- statistics ----------------------------------------------------------------------------------

export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN;
}

/** A value measured once per fire: its median over the fires, and its range. */
export interface Spread {
  median: number;
  min: number;
  max: number;
}

export function spread(values: readonly number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  return { median: quantile(sorted, 0.5), min: sorted[0] ?? NaN, max: sorted.at(-1) ?? NaN };
}

/** Per fire, the p50, p99 and max of that fire's lags (each sorted ascending), as spreads over fires. */
export function lagSpreads(perFire: readonly (readonly number[])[]): {
  p50: Spread;
  p99: Spread;
  max: Spread;
} {
  // A fire that delivered nothing has no lag; the callers count it in their own columns.
  const measured = perFire.filter((lags) => lags.length > 0);
  return {
    p50: spread(measured.map((l) => quantile(l, 0.5))),
    p99: spread(measured.map((l) => quantile(l, 0.99))),
    max: spread(measured.map((l) => l.at(-1) ?? NaN)),
  };
}

// --- table cells ---------------------------------------------------------------------------------

export const ms = (v: number): string =>
  Number.isNaN(v) ? "–" : v < 10 ? v.toFixed(1) : Math.round(v).toString();

/** "median (min–max)" in ms. */
export const cell = (s: Spread): string => `${ms(s.median)} (${ms(s.min)}–${ms(s.max)})`;

/** A ratio of two medians, "–" when either is missing. */
export const ratio = (a: number, b: number, digits = 2): string =>
  Number.isFinite(a / b) ? `${(a / b).toPrecision(digits)}×` : "–";

// --- cadent --------------------------------------------------------------------------------------

/** Server-side applies the cadent CRDs and waits until they are served. */
export { installCrds } from "../tests/support/cadent.ts";

export interface ControllerSettings {
  name: string;
  kubeconfigPath: string;
  namespace: string;
  redisUrl: string;
  logDir: string;
  qps: number;
  burst: number;
  workers: number;
  /** Write a V8 CPU profile into this directory when the controller exits (`node --cpu-prof`). */
  cpuProfDir?: string | undefined;
}

export interface BenchController {
  process: TrackedProcess;
  /** Where its Prometheus metrics are served. */
  metricsUrl: string;
}

/**
 * Starts `cadent controller` (src/cli/main.ts, without leader election) watching one namespace,
 * and resolves once it reports ready (every informer synced).
 */
export async function startBenchController(s: ControllerSettings): Promise<BenchController> {
  const [healthPort, metricsPort] = [await freePort(), await freePort()];
  const proc = spawnTracked({
    name: s.name,
    command: process.execPath,
    args: [
      ...(s.cpuProfDir ? ["--cpu-prof", "--cpu-prof-dir", s.cpuProfDir] : []),
      join(REPO_ROOT, "src/cli/main.ts"),
      "controller",
      "--kubeconfig",
      s.kubeconfigPath,
      "--namespaces",
      s.namespace,
      "--redis-url",
      s.redisUrl,
      "--no-leader-elect",
      "--kube-api-qps",
      String(s.qps),
      "--kube-api-burst",
      String(s.burst),
      "--workers",
      String(s.workers),
      "--metrics-addr",
      `127.0.0.1:${metricsPort}`,
      "--health-addr",
      `127.0.0.1:${healthPort}`,
    ],
    logDir: s.logDir,
  });
  try {
    await waitFor(
      "the controller's /readyz",
      async () => {
        if (proc.child.exitCode !== null) throw new Error(`controller exited:\n${proc.logTail()}`);
        return (await fetch(`http://127.0.0.1:${healthPort}/readyz`)).ok;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
  } catch (err) {
    await proc.stop();
    throw err;
  }
  return { process: proc, metricsUrl: `http://127.0.0.1:${metricsPort}/metrics` };
}
