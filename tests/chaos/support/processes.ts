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
    /** Another identity, or the API server through ./proxy.ts (`kubeconfigVia`); default the world's admin. */
    kubeconfigPath?: string;
  } = {},
): Promise<ControllerProcess> {
  return startControllerProcess({
    namespace: load.namespace,
    redisUrl: world.redis.url,
    identity,
    ...options,
    kubeconfigPath: options.kubeconfigPath ?? world.kubeconfigPath,
  });
}

export function startWorker(
  world: World,
  load: Load,
  hostname?: string,
  options: {
    /** The broker as the worker reaches it (e.g. through ./proxy.ts); its tasks still record into the world's Redis directly. */
    brokerUrl?: string;
    /** Default VISIBILITY_TIMEOUT_SECONDS. */
    visibilityTimeoutSeconds?: number;
  } = {},
): Promise<CadentWorker> {
  return startCadentWorker({
    redisUrl: world.redis.url,
    queues: [load.queue],
    concurrency: 8,
    visibilityTimeoutSeconds: options.visibilityTimeoutSeconds ?? VISIBILITY_TIMEOUT_SECONDS,
    shutdownGraceSeconds: 5,
    ...(hostname ? { hostname } : {}),
    ...(options.brokerUrl ? { extraArgs: ["--redis-url", options.brokerUrl] } : {}),
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

/**
 * What a chaos file starts (controllers, workers, proxies), to stop in its afterAll: each by its
 * own `stop()`, all of them even if some fail.
 */
export class Started {
  readonly #stops: (() => Promise<void>)[] = [];

  /** Registers `p` (a ControllerProcess, a worker, a proxy…) and returns it. */
  track<
    T extends { stop(): Promise<void> } | { close(): Promise<void> } | { process: { stop(): Promise<void> } },
  >(p: T): T {
    this.#stops.push(() => ("stop" in p ? p.stop() : "close" in p ? p.close() : p.process.stop()));
    return p;
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.#stops.splice(0).map((stop) => stop().catch(() => undefined)));
  }
}
