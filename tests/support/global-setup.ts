/**
 * vitest global setup of the `integration` project: starts the shared servers once per run
 * (control plane + kwok, Redis) and stops them, by PID, when the run ends — also when tests fail
 * or the run is interrupted (see processes.ts).
 */
import { mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { startControlPlane, type ControlPlane } from "./control-plane.ts";
import { toolPaths } from "./environment.ts";
import { createFakeNode } from "./kube.ts";
import { startRedis, type RedisServer } from "./redis.ts";

const RUNS_DIR = join(tmpdir(), "cadent-test-runs");
const KEEP_RUNS = 3;
/** A run directory this young may belong to a run still going on (several can run at once). */
const IN_USE_MS = 3 * 60 * 60 * 1000;

/** Keeps the logs of the last few runs for post-mortems, and nothing older. */
function pruneOldRuns(): void {
  mkdirSync(RUNS_DIR, { recursive: true });
  const runs = readdirSync(RUNS_DIR).sort();
  for (const old of runs.slice(0, Math.max(0, runs.length - KEEP_RUNS))) {
    const path = join(RUNS_DIR, old);
    if (Date.now() - statSync(path).mtimeMs < IN_USE_MS) continue;
    rmSync(path, { recursive: true, force: true });
  }
}

/** A fresh scratch directory for this run (logs stay there for post-mortems), pruning old ones. */
export function createRunDir(label = ""): string {
  pruneOldRuns();
  const workDir = join(RUNS_DIR, `${new Date().toISOString().replace(/[:.]/g, "-")}-${process.pid}${label}`);
  mkdirSync(workDir, { recursive: true });
  return workDir;
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const workDir = createRunDir();
  const { kubeBin, venv } = toolPaths();

  let controlPlane: ControlPlane | undefined;
  let redis: RedisServer | undefined;
  const teardown = async (): Promise<void> => {
    await redis?.stop().catch(() => undefined);
    await controlPlane?.stop().catch(() => undefined);
    // Data is large and worthless after the run; logs stay for post-mortems.
    rmSync(join(workDir, "etcd"), { recursive: true, force: true });
    rmSync(join(workDir, "redis"), { recursive: true, force: true });
  };

  try {
    const external = process.env.CADENT_TEST_KUBECONFIG;
    let kubeconfigPath: string;
    if (external) {
      kubeconfigPath = external;
    } else {
      controlPlane = await startControlPlane({ binDir: kubeBin, workDir });
      kubeconfigPath = controlPlane.kubeconfigPath;
      await createFakeNode(kubeconfigPath);
    }
    const redisUrl = process.env.CADENT_TEST_REDIS_URL ?? (redis = await startRedis({ workDir })).url;

    project.provide("kubeconfigPath", kubeconfigPath);
    project.provide("externalCluster", Boolean(external));
    project.provide("jobsRun", !external);
    project.provide("redisUrl", redisUrl);
    project.provide("venv", venv);
    project.provide("kubeBin", external ? "" : kubeBin);
    project.provide("workDir", workDir);
    process.stderr.write(
      `[cadent tests] servers up; logs in ${workDir}/logs, KUBECONFIG=${kubeconfigPath}\n`,
    );
  } catch (err) {
    await teardown();
    throw err;
  }
  return teardown;
}
