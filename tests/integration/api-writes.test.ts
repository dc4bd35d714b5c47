/**
 * API server writes per run (issue #7): the real controller runs PeriodicTasks firing every 2 s —
 * Redis-executor ones on a real cadent worker, Job-executor ones on kwok — and its own
 * `cadent_kube_requests_total` counts every write it makes. One controller per executor, each in
 * a namespace of its own, so each executor's writes are counted apart.
 *
 * The measurement starts in the steady state, once every PeriodicTask has made {@link WARM_RUNS}
 * runs: history is being pruned, and the burst of routine Events each PeriodicTask may write (25:
 * see src/runtime/events.ts) is spent, so each run then costs what every later run costs. It
 * covers the runs of the next 30 s. Lease renewals are writes per second of leadership, not per
 * run: printed, not divided by the runs.
 */
import { randomBytes } from "node:crypto";
import { beforeAll, describe, expect, inject, it, onTestFinished } from "vitest";
import {
  Cadent,
  GROUP,
  VERSION,
  installCrds,
  jobPeriodicTask,
  startControllerProcess,
  type CadentObject,
  type ControllerProcess,
} from "../support/cadent.ts";
import { createTestNamespace, k8s, kubeConfig } from "../support/kube.ts";
import { waitFor } from "../support/ports.ts";
import { startCadentWorker } from "./worker-support.ts";

const EVERY_2S = "*/2 * * * * *";
const REDIS_PERIODIC_TASKS = 10;
const JOB_PERIODIC_TASKS = 5;
/** How long the measured window lasts: about 15 runs of each PeriodicTask. */
const WINDOW_MS = 30_000;
/**
 * Writes per run allowed, amortized. Issue #7 aims at 3; what a run cannot do without, however
 * writes are coalesced (docs/benchmarks.md, "API writes per run"), is to create its Task, write the
 * Task's outcome and delete the Task when history is pruned (3), and with the Job executor also to
 * create the Job and write the Task's start (Queued, which later passes rely on) and Running when a
 * Pod is seen running (5 to 6). The budgets allow one write per run on top of that for everything
 * else: the PeriodicTask's status, Events, a Redis Task written Queued before its result is in.
 */
const BUDGET = { redis: 4, job: 7 } as const;
/** Past the history limit (3) and the routine Event burst (25, two or three Events a run). */
const WARM_RUNS = 15;

const WRITE_VERBS = new Set(["create", "update", "patch", "delete", "deletecollection"]);
/** Written per second of leadership, whatever the runs. */
const PER_TIME_RESOURCES = new Set(["leases"]);

/** `cadent_kube_requests_total` and `cadent_runs_total` samples, keyed by their label sets. */
interface Snapshot {
  requests: Map<string, number>;
  runs: Map<string, number>;
}

const SAMPLE = /^(cadent_kube_requests_total|cadent_runs_total)\{([^}]*)\} (\S+)$/;

function labelsOf(text: string): Record<string, string> {
  return Object.fromEntries([...text.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
}

async function snapshot(controller: ControllerProcess): Promise<Snapshot> {
  const { body } = await controller.get(controller.metricsPort, "/metrics");
  const requests = new Map<string, number>();
  const runs = new Map<string, number>();
  for (const line of body.split("\n")) {
    const match = SAMPLE.exec(line);
    if (!match) continue;
    const [, metric = "", labelText = "", value = "0"] = match;
    const labels = labelsOf(labelText);
    if (metric === "cadent_runs_total") {
      runs.set(labels["outcome"] ?? "", Number(value));
    } else if (WRITE_VERBS.has(labels["verb"] ?? "")) {
      const subresource = labels["subresource"] ? `/${labels["subresource"]}` : "";
      const key = `${labels["verb"] ?? ""} ${labels["resource"] ?? ""}${subresource} ${labels["code"] ?? ""}`;
      requests.set(key, Number(value));
    }
  }
  return { requests, runs };
}

interface WriteCount {
  /** Tasks the controller created: one per run. */
  runs: number;
  /** `cadent_runs_total` in the window, by outcome. */
  outcomes: Record<string, number>;
  perRun: number;
  /** "verb resource[/subresource]" → writes in the window, whatever their status code. */
  byRequest: Record<string, number>;
  /** Writes that did not succeed, by "verb resource[/subresource] code". */
  refused: Record<string, number>;
  perTime: Record<string, number>;
}

function difference(before: Snapshot, after: Snapshot): WriteCount {
  const delta = (a: Map<string, number>, b: Map<string, number>, key: string): number =>
    (b.get(key) ?? 0) - (a.get(key) ?? 0);
  const outcomes: Record<string, number> = {};
  for (const outcome of after.runs.keys()) outcomes[outcome] = delta(before.runs, after.runs, outcome);
  const byRequest: Record<string, number> = {};
  const refused: Record<string, number> = {};
  const perTime: Record<string, number> = {};
  for (const key of [...after.requests.keys()].sort()) {
    const count = delta(before.requests, after.requests, key);
    if (count === 0) continue;
    const [verb = "", target = "", code = ""] = key.split(" ");
    const request = `${verb} ${target}`;
    const into = PER_TIME_RESOURCES.has(target.split("/")[0] ?? "") ? perTime : byRequest;
    into[request] = (into[request] ?? 0) + count;
    if (!code.startsWith("2")) refused[key] = count;
  }
  const runs = delta(before.requests, after.requests, "create tasks 201");
  const writes = Object.values(byRequest).reduce((a, b) => a + b, 0);
  return {
    runs,
    outcomes,
    perRun: runs === 0 ? Infinity : writes / runs,
    byRequest,
    refused,
    perTime,
  };
}

function report(executor: string, count: WriteCount, events: Record<string, number>): string {
  const rows = Object.entries(count.byRequest).map(
    ([request, n]) => `  ${request.padEnd(28)} ${String(n).padStart(5)}  ${(n / count.runs).toFixed(2)}/run`,
  );
  return [
    `${executor}: ${count.runs} runs (Tasks created), ${count.perRun.toFixed(2)} writes per run`,
    ...rows,
    `  runs by outcome: ${JSON.stringify(count.outcomes)}`,
    `  refused writes: ${JSON.stringify(count.refused)}`,
    `  not per run: ${JSON.stringify(count.perTime)}`,
    `  Events in the namespace by reason (count, all time): ${JSON.stringify(events)}`,
  ].join("\n");
}

/** Every Event of the namespace, summed by involved kind and reason (their `count`). */
async function eventsByReason(kc: k8s.KubeConfig, namespace: string): Promise<Record<string, number>> {
  const list = await kc.makeApiClient(k8s.CoreV1Api).listNamespacedEvent({ namespace });
  const byReason: Record<string, number> = {};
  for (const e of list.items) {
    const key = `${e.involvedObject.kind ?? ""} ${e.reason ?? ""}`;
    byReason[key] = (byReason[key] ?? 0) + (e.count ?? 1);
  }
  return byReason;
}

const runsMade = (o: CadentObject): number =>
  ((o.status?.["runs"] ?? {}) as Record<string, number>)["total"] ?? 0;

/**
 * Waits until every PeriodicTask has made {@link WARM_RUNS} runs, then counts the controller's
 * writes over the next {@link WINDOW_MS}.
 */
async function measure(cadent: Cadent, controller: ControllerProcess, names: string[]): Promise<WriteCount> {
  await waitFor(
    `every PeriodicTask in ${cadent.namespace} to have made ${WARM_RUNS} runs`,
    async () => {
      const pts = await Promise.all(names.map((name) => cadent.get("periodictasks", name)));
      return pts.every((pt) => runsMade(pt) >= WARM_RUNS);
    },
    { timeoutMs: 180_000, intervalMs: 500 },
  );
  const before = await snapshot(controller);
  await new Promise((resolve) => setTimeout(resolve, WINDOW_MS));
  return difference(before, await snapshot(controller));
}

function periodicTask(name: string, queue: string): object {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: "PeriodicTask",
    metadata: { name },
    spec: { schedule: EVERY_2S, taskTemplate: { spec: { task: "app.tasks.add", args: [1, 2], queue } } },
  };
}

describe("API server writes per run", () => {
  const kc = kubeConfig();

  beforeAll(async () => {
    await installCrds(kc);
  });

  /** A namespace with its own controller, both gone when the test ends (so the next runs alone). */
  async function world(prefix: string): Promise<{ cadent: Cadent; controller: ControllerProcess }> {
    const ns = await createTestNamespace(kc, prefix);
    onTestFinished(() => ns.cleanup());
    const controller = await startControllerProcess({ namespace: ns.name });
    onTestFinished(() => controller.stop());
    return { cadent: new Cadent(kc, ns.name), controller };
  }

  it(`a Redis run on a cadent worker costs at most ${BUDGET.redis} writes, amortized`, async () => {
    const queue = `api-writes-${randomBytes(3).toString("hex")}`;
    const worker = await startCadentWorker({ redisUrl: inject("redisUrl"), queues: [queue], concurrency: 8 });
    onTestFinished(() => worker.process.stop());
    const { cadent, controller } = await world("writes-redis");
    const names = Array.from({ length: REDIS_PERIODIC_TASKS }, (_, i) => `redis-${i}`);
    for (const name of names) await cadent.create("periodictasks", periodicTask(name, queue));

    const count = await measure(cadent, controller, names);
    console.log(report("Redis executor", count, await eventsByReason(kc, cadent.namespace)));
    expect(count.runs).toBeGreaterThanOrEqual(REDIS_PERIODIC_TASKS);
    expect(count.outcomes["succeeded"]).toBeGreaterThanOrEqual(REDIS_PERIODIC_TASKS);
    expect(count.perRun).toBeLessThanOrEqual(BUDGET.redis);
  }, 300_000);

  it.runIf(inject("jobsRun"))(
    `a Job run costs at most ${BUDGET.job} writes, amortized`,
    async () => {
      const { cadent, controller } = await world("writes-job");
      const names = Array.from({ length: JOB_PERIODIC_TASKS }, (_, i) => `job-${i}`);
      for (const name of names)
        await cadent.create("periodictasks", jobPeriodicTask(name, { schedule: EVERY_2S }));

      const count = await measure(cadent, controller, names);
      console.log(report("Job executor", count, await eventsByReason(kc, cadent.namespace)));
      expect(count.runs).toBeGreaterThanOrEqual(JOB_PERIODIC_TASKS);
      expect(count.outcomes["succeeded"]).toBeGreaterThanOrEqual(JOB_PERIODIC_TASKS);
      expect(count.perRun).toBeLessThanOrEqual(BUDGET.job);
    },
    300_000,
  );
});
