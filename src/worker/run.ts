/** `cadent worker` as a process: load the tasks, connect, run until SIGTERM, shut down gracefully. */
import { loadRedisPassword } from "../cli/redis-options.ts";
import { createLogger, redactUrl } from "../observability/logger.ts";
import type { AppLogger } from "../observability/logger.ts";
import { WorkerSetupError, loadTaskModules } from "./load.ts";
import type { WorkerCliOptions } from "./options.ts";
import { RedisBroker } from "./redis-broker.ts";
import { createRegistry } from "./task.ts";
import { Worker } from "./worker.ts";

export interface RunWorkerDependencies {
  readonly logger?: AppLogger;
  /** Where SIGTERM and SIGINT come from; `process` by default. */
  readonly signals?: Pick<NodeJS.Process, "on" | "off">;
}

/**
 * Runs the worker until SIGTERM or SIGINT, then shuts down gracefully (a second signal cuts the
 * grace period short). Resolves with the process exit code: 0 after a clean shutdown, 1 when
 * messages could not be handed back or an uncaught error stopped the worker. Throws
 * WorkerSetupError for unusable task modules.
 */
export async function runWorker(
  options: WorkerCliOptions,
  deps: RunWorkerDependencies = {},
): Promise<number> {
  const logger = deps.logger ?? createLogger({ level: options.logLevel, component: "worker" });
  const signals = deps.signals ?? process;
  const definitions = await loadTaskModules(options.tasks);
  let registry;
  try {
    registry = createRegistry(definitions);
  } catch (err) {
    throw new WorkerSetupError(err instanceof Error ? err.message : String(err), true);
  }

  let requests = 0;
  let fatal = false;
  let requestStop: (graceMs: number) => void = () => undefined;
  const stopRequested = new Promise<number>((resolve) => (requestStop = resolve));
  let worker: Worker | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    requests++;
    if (requests === 1) {
      logger.info({ signal, graceMs: options.shutdownGraceMs }, "shutdown requested");
      requestStop(options.shutdownGraceMs);
    } else {
      logger.warn({ signal }, "second shutdown request: not waiting for running tasks");
      void worker?.close({ graceMs: 0 });
    }
  };
  const onUncaught = (err: unknown): void => {
    fatal = true;
    logger.fatal(
      { err: err instanceof Error ? (err.stack ?? err.message) : String(err) },
      "uncaught error (from a task handler's stray callback?); handing messages back and stopping",
    );
    requestStop(0);
    void worker?.close({ graceMs: 0 });
  };
  const onUnhandledRejection = (reason: unknown): void => {
    logger.error(
      { err: reason instanceof Error ? (reason.stack ?? reason.message) : String(reason) },
      "unhandled promise rejection (a task handler left a promise without a catch); the worker keeps running",
    );
  };
  signals.on("SIGTERM", onSignal);
  signals.on("SIGINT", onSignal);
  process.on("uncaughtException", onUncaught);
  process.on("unhandledRejection", onUnhandledRejection);
  try {
    const password = await redisPassword(options);
    const broker = new RedisBroker({
      url: password === undefined ? options.redisUrl : redactUrl(options.redisUrl),
      ...(password === undefined ? {} : { password }),
      resultExpiresSeconds: options.resultExpiresSeconds,
      deadLetterKey: options.deadLetterKey,
      worker: options.hostname,
      logger,
    });
    logger.info({ redis: redactUrl(options.redisUrl) }, "connecting to Redis");
    const connected = await Promise.race([broker.ready().then(() => true), stopRequested.then(() => false)]);
    if (!connected) {
      await broker.close();
      return fatal ? 1 : 0;
    }
    worker = new Worker({
      broker,
      tasks: registry.values(),
      queues: options.queues,
      concurrency: options.concurrency,
      prefetchMultiplier: options.prefetchMultiplier,
      visibilityTimeoutSeconds: options.visibilityTimeoutSeconds,
      hostname: options.hostname,
      logger,
    });
    await worker.start();
    const graceMs = await stopRequested;
    const report = await worker.close({ graceMs });
    return report.clean && !fatal ? 0 : 1;
  } finally {
    signals.off("SIGTERM", onSignal);
    signals.off("SIGINT", onSignal);
    process.off("uncaughtException", onUncaught);
    process.off("unhandledRejection", onUnhandledRejection);
  }
}

/** The password from `--redis-password-file`, or undefined (the URL's own then applies). */
async function redisPassword(options: WorkerCliOptions): Promise<string | undefined> {
  if (options.redisPasswordFile === undefined) return undefined;
  try {
    return await loadRedisPassword(options);
  } catch (err) {
    throw new WorkerSetupError(err instanceof Error ? err.message : String(err), true, { cause: err });
  }
}
