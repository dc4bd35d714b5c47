/**
 * `cadent controller`: wires the informers (PeriodicTasks, Tasks, the Jobs made for Tasks), the
 * work queues, the reconcilers, leader election, metrics, health and graceful shutdown.
 *
 * Informers run on every replica, so a standby has a warm cache; only the leader reconciles.
 * When the lease is lost the work queues stop at once (in-flight reconciles are aborted and every
 * write checks leadership first) and the process exits, to start again as a standby.
 */
import type { KubernetesListObject, KubernetesObject, V1Job } from "@kubernetes/client-node";
import { GROUP, LABELS, PERIODIC_TASK_PLURAL, TASK_PLURAL, VERSION } from "../api/index.ts";
import { PeriodicTaskReconciler } from "../controllers/periodic-task.ts";
import { TaskReconciler } from "../controllers/task.ts";
import { JobExecutor } from "../executors/job.ts";
import { RedisExecutor } from "../executors/redis.ts";
import { createKubeClients, loadKubeConfig } from "../kube/client.ts";
import { ReadinessChecks, startHttpServer, type ObservabilityServer } from "../observability/http.ts";
import { createLogger, redactUrl } from "../observability/logger.ts";
import { ControllerMetrics } from "../observability/metrics.ts";
import { coreV1EventSink, EventRecorder } from "../runtime/events.ts";
import { StringPool } from "../runtime/cache-transform.ts";
import { decodeBuiltInKind, type ListPage } from "../runtime/informer.ts";
import { coordinationLeaseClient, LeaderElector, leaseRequestTimeoutMs } from "../runtime/leader-election.ts";
import { ShutdownCoordinator } from "../runtime/shutdown.ts";
import { keyFor, objectKey } from "../runtime/store.ts";
import { StaleObjectError, WorkQueue, type Action } from "../runtime/workqueue.ts";
import { cachedJob, cachedPeriodicTask, cachedTask } from "./cache-transforms.ts";
import { ResourceInformer } from "./informers.ts";
import { loadRedisPassword, type ControllerOptions } from "./options.ts";

/** The key of the PeriodicTask that owns `obj` as its controller, if any. */
function ownerKey(obj: KubernetesObject, kind: string): string | undefined {
  const ref = obj.metadata?.ownerReferences?.find((o) => o.controller && o.kind === kind);
  return ref ? keyFor(obj.metadata?.namespace, ref.name) : undefined;
}

export interface RunningController {
  /** Resolves when the controller has stopped (lost lease, signal, or `stop()`). */
  done: Promise<void>;
  stop(): Promise<void>;
  health: ObservabilityServer;
  metrics: ObservabilityServer;
  /** SIGTERM/SIGINT handling: `installSignalHandlers()` for a process of its own. */
  shutdown: ShutdownCoordinator;
}

/** Starts everything; used by the CLI and by tests that run the controller in-process. */
export async function startController(options: ControllerOptions): Promise<RunningController> {
  const logger = createLogger({ level: options.logLevel, component: "controller" });
  const metrics = new ControllerMetrics();
  const kubeConfig = loadKubeConfig(options.kubeconfig);
  const clients = createKubeClients(kubeConfig, {
    qps: options.kubeApiQps,
    burst: options.kubeApiBurst,
    metrics,
    leaseRequestTimeoutMs: leaseRequestTimeoutMs(options.renewDeadlineMs, options.retryPeriodMs),
  });
  const shutdown = new ShutdownCoordinator({ logger });
  const events = new EventRecorder({ sink: coreV1EventSink(clients.core), logger });
  const ns = options.namespaces;
  const informerBase = { kubeConfig: clients.kubeConfig, namespaces: ns, logger };
  // One pool for all caches: a run's owner name is its PeriodicTask's name, label values repeat.
  const strings = new StringPool();

  const customList =
    (plural: string) =>
    async (namespace: string | undefined, page: ListPage): Promise<KubernetesListObject<KubernetesObject>> =>
      (namespace
        ? await clients.customObjects.listNamespacedCustomObject({
            group: GROUP,
            version: VERSION,
            plural,
            namespace,
            limit: page.limit,
            _continue: page.continue,
          })
        : await clients.customObjects.listClusterCustomObject({
            group: GROUP,
            version: VERSION,
            plural,
            limit: page.limit,
            _continue: page.continue,
          })) as KubernetesListObject<KubernetesObject>;
  const customPath = (plural: string) => (namespace: string | undefined) =>
    namespace
      ? `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${plural}`
      : `/apis/${GROUP}/${VERSION}/${plural}`;

  const periodicTasks = new ResourceInformer<KubernetesObject>({
    ...informerBase,
    name: `${PERIODIC_TASK_PLURAL}.${GROUP}`,
    path: customPath(PERIODIC_TASK_PLURAL),
    list: customList(PERIODIC_TASK_PLURAL),
    transform: cachedPeriodicTask(strings),
  });
  const tasks = new ResourceInformer<KubernetesObject>({
    ...informerBase,
    name: `${TASK_PLURAL}.${GROUP}`,
    path: customPath(TASK_PLURAL),
    list: customList(TASK_PLURAL),
    transform: cachedTask(strings),
  });
  const jobs = new ResourceInformer<V1Job>({
    ...informerBase,
    name: "jobs.batch",
    labelSelector: LABELS.task,
    path: (namespace) => (namespace ? `/apis/batch/v1/namespaces/${namespace}/jobs` : "/apis/batch/v1/jobs"),
    list: (namespace, page) =>
      namespace
        ? clients.batch.listNamespacedJob({
            namespace,
            labelSelector: LABELS.task,
            limit: page.limit,
            _continue: page.continue,
          })
        : clients.batch.listJobForAllNamespaces({
            labelSelector: LABELS.task,
            limit: page.limit,
            _continue: page.continue,
          }),
    decode: (raw) => decodeBuiltInKind<V1Job>(raw),
    transform: cachedJob(strings),
  });

  const ptQueue = new WorkQueue({
    name: "periodictasks",
    logger,
    metrics: metrics.queueMetrics("periodictasks"),
  });
  const taskQueue = new WorkQueue({ name: "tasks", logger, metrics: metrics.queueMetrics("tasks") });
  const enqueuePt = (obj: KubernetesObject): void => ptQueue.add(objectKey(obj));
  periodicTasks.on("add", enqueuePt);
  periodicTasks.on("update", (_old, obj) => enqueuePt(obj));
  const onTask = (obj: KubernetesObject): void => {
    taskQueue.add(objectKey(obj));
    const owner = ownerKey(obj, "PeriodicTask");
    if (owner) ptQueue.add(owner);
  };
  tasks.on("add", onTask);
  tasks.on("update", (_old, obj) => onTask(obj));
  tasks.on("delete", (obj) => {
    const owner = ownerKey(obj, "PeriodicTask");
    if (owner) ptQueue.add(owner);
  });
  const onJob = (obj: KubernetesObject): void => {
    const owner = ownerKey(obj, "Task");
    if (owner) taskQueue.add(owner);
  };
  jobs.on("add", onJob);
  jobs.on("update", (_old, obj) => onJob(obj));
  jobs.on("delete", onJob);

  const elector = options.leaderElect
    ? new LeaderElector({
        client: coordinationLeaseClient(clients.coordination),
        namespace: options.leaderElectionNamespace,
        name: options.leaderElectionId,
        identity: options.identity,
        leaseDurationMs: options.leaseDurationMs,
        renewDeadlineMs: options.renewDeadlineMs,
        retryPeriodMs: options.retryPeriodMs,
        logger,
        onStartedLeading: (signal) => work(signal),
        onStoppedLeading: () => {
          metrics.setLeader(false);
          logger.warn({ identity: options.identity }, "leadership lost; stopping");
          void stopAll(1);
        },
        onNewLeader: (identity) => logger.info({ leader: identity }, "leader observed"),
      })
    : undefined;
  const isLeading = (): boolean => (elector ? elector.isLeading() : true);

  const now = (): Date => new Date();
  const redis = new RedisExecutor({
    url: options.redisUrl,
    password: await loadRedisPassword(options),
    defaultQueue: options.defaultQueue,
    logger,
    onResult: (key) => taskQueue.add(key),
    onRedisUp: (up) => metrics.setRedisUp(up),
  });
  const ptReconciler = new PeriodicTaskReconciler({
    periodicTasks,
    tasks,
    customObjects: clients.customObjects,
    batch: clients.batch,
    events,
    metrics,
    logger,
    now,
    isLeading,
    early: redis,
    onFired: (key) => ptQueue.add(key),
  });
  const taskReconciler = new TaskReconciler({
    tasks,
    periodicTasks,
    customObjects: clients.customObjects,
    executors: { job: new JobExecutor({ batch: clients.batch, core: clients.core, jobs }), redis },
    events,
    metrics,
    logger,
    now,
  });

  const informers = [
    ["periodictasks", periodicTasks],
    ["tasks", tasks],
    ["jobs", jobs],
  ] as const;
  const readiness = new ReadinessChecks()
    .add("informers-synced", () => informers.every(([, i]) => i.hasSynced()))
    .add("leader-or-standby", () => true);
  const health = await startHttpServer({ address: options.healthAddr, readiness, purpose: "health", logger });
  const metricsServer = await startHttpServer({
    address: options.metricsAddr,
    metrics,
    purpose: "metrics",
    logger,
  });
  for (const [, informer] of informers) informer.start();
  const syncTimer = setInterval(() => {
    for (const [name, informer] of informers) metrics.setInformerSynced(name, informer.hasSynced());
  }, 1_000);
  syncTimer.unref();

  /** The leader's work: wait for every cache, then reconcile until `signal` aborts. */
  async function work(signal: AbortSignal): Promise<void> {
    metrics.setLeader(true);
    logger.info({ identity: options.identity }, "leading; waiting for caches to sync");
    for (const [, informer] of informers) {
      if (!(await informer.waitForSync(signal))) return;
    }
    if (!(await redis.waitUntilReady(5_000))) {
      logger.warn(
        { redis: redactUrl(options.redisUrl) },
        "Redis is not reachable yet; Redis Tasks wait Pending",
      );
    }
    logger.info({}, "caches synced; reconciling");
    for (const key of periodicTasks.keys()) ptQueue.add(key);
    for (const key of tasks.keys()) taskQueue.add(key);
    const timed =
      (controller: string, reconcile: (key: string) => Promise<Action>) => async (key: string) => {
        const started = performance.now();
        try {
          return await reconcile(key);
        } catch (err) {
          if (!(err instanceof StaleObjectError)) metrics.countReconcileError(controller);
          throw err;
        } finally {
          metrics.observeReconcile(controller, (performance.now() - started) / 1000);
        }
      };
    await Promise.all([
      ptQueue.run(
        options.workers,
        timed("periodictask", (k) => ptReconciler.reconcile(k)),
        { signal },
      ),
      taskQueue.run(
        options.workers,
        timed("task", (k) => taskReconciler.reconcile(k)),
        { signal },
      ),
    ]);
  }

  let resolveDone: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (resolveDone = resolve));
  let stopping: Promise<void> | undefined;
  const stopAll = (exitCode = 0): Promise<void> => {
    stopping ??= (async () => {
      ptReconciler.close();
      await ptQueue.shutDown();
      await taskQueue.shutDown();
      // Still leading: write the PeriodicTask statuses that wait to be coalesced (docs/controller.md).
      await ptReconciler.flush();
      await elector?.release().catch(() => undefined);
      for (const [, informer] of informers) informer.stop();
      clearInterval(syncTimer);
      await events.close().catch(() => undefined);
      await redis.close();
      await health.close();
      await metricsServer.close();
      process.exitCode = exitCode;
      resolveDone();
    })();
    return stopping;
  };
  shutdown.add("controller", () => stopAll(0));

  if (elector) {
    void elector.run();
  } else {
    metrics.setLeader(true);
    void work(new AbortController().signal);
  }
  return { done, stop: () => stopAll(0), health, metrics: metricsServer, shutdown };
}

export async function runController(options: ControllerOptions): Promise<void> {
  const controller = await startController(options);
  controller.shutdown.installSignalHandlers({ exit: (code) => (process.exitCode = code) });
  await controller.done;
}
