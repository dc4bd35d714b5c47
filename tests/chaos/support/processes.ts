/**
 * The processes a chaos scenario runs against its world: cadent controllers (two replicas or
 * one), cadent workers and Python Celery workers on the load's queue, each a real process that the
 * scenario may kill -9, stop or restart.
 */
import { join } from "node:path";
import { inject } from "vitest";
import { startControllerProcess, type ControllerProcess } from "../../support/cadent.ts";
import { startCeleryWorker, type CeleryWorker } from "../../support/celery.ts";
import { k8s } from "../../support/kube.ts";
import { startCadentWorker, type CadentWorker } from "../../integration/worker-support.ts";
import type { Load } from "./load.ts";
import type { World } from "./world.ts";

/** Redelivery after a killed worker: short, so a scenario sees it within its window. */
export const VISIBILITY_TIMEOUT_SECONDS = 8;

export function startController(
  world: World,
  load: Load,
  identity: string,
  options: {
    extraArgs?: readonly string[];
    env?: NodeJS.ProcessEnv;
    waitReady?: boolean;
    /** The broker as the controller reaches it (e.g. through ./proxy.ts); default the world's Redis. */
    redisUrl?: string;
  } = {},
): Promise<ControllerProcess> {
  return startControllerProcess({
    namespace: load.namespace,
    kubeconfigPath: world.kubeconfigPath,
    redisUrl: world.redis.url,
    identity,
    ...options,
  });
}

export function startWorker(world: World, load: Load, hostname?: string): Promise<CadentWorker> {
  return startCadentWorker({
    redisUrl: world.redis.url,
    queues: [load.queue],
    concurrency: 8,
    visibilityTimeoutSeconds: VISIBILITY_TIMEOUT_SECONDS,
    shutdownGraceSeconds: 5,
    ...(hostname ? { hostname } : {}),
  });
}

export function startPythonWorker(world: World, load: Load): Promise<CeleryWorker> {
  return startCeleryWorker({
    venv: inject("venv"),
    app: "interop_app",
    brokerUrl: world.redis.url,
    queues: [load.queue],
    concurrency: 2,
    logDir: join(world.workDir, "logs"),
    env: { CADENT_VISIBILITY_TIMEOUT: String(VISIBILITY_TIMEOUT_SECONDS) },
  });
}

/** The holder of the controllers' Lease in the load's namespace, if any. */
export async function leaseHolder(world: World, load: Load): Promise<string | undefined> {
  try {
    const lease = await world.kc
      .makeApiClient(k8s.CoordinationV1Api)
      .readNamespacedLease({ namespace: load.namespace, name: "cadent-controller" });
    return lease.spec?.holderIdentity ?? undefined;
  } catch {
    return undefined;
  }
}

/** A controller's JSON log lines (pino, ISO times) so far, with `time` in ms, and their other fields. */
export function controllerLogs(
  controller: ControllerProcess,
): { time: number; msg: string; [field: string]: unknown }[] {
  return controller.process
    .logTail(1_000_000)
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as { time: string; msg: string; [field: string]: unknown })
    .map((line) => ({ ...line, time: Date.parse(line.time) }));
}
