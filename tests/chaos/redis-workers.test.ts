/**
 * Chaos: the broker and the workers under a steady load of both executors (product.md §3.1, §4,
 * §5; issue #8). Redis stopped for several fire times and started again from its AOF; the
 * controller cut off from Redis while a worker keeps finishing tasks, its connections reset or
 * frozen (half-open: silent, never closed); a cadent worker whose connections freeze mid-load;
 * cadent and Python Celery workers killed with SIGKILL mid-task again and again. Besides the
 * audit of ./support/load.ts,
 * every scenario checks what the contract promises about that fault: one publish per attempt
 * (the `cadent:published:<id>` record against status.attempts), at-least-once execution, results
 * picked up whatever the controller missed, one completion per Task, and a drained queue.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  decodeResult,
  decodeUnackedEntry,
  queueKey,
  RESULT_KEY_PREFIX,
  resultKey,
  UNACKED_KEY,
  type ResultMeta,
} from "../../src/celery/index.ts";
import { publishRecordKey } from "../../src/executors/redis.ts";
import type { CadentObject, ControllerProcess } from "../support/cadent.ts";
import { k8s } from "../support/kube.ts";
import { waitFor } from "../support/ports.ts";
import type { TrackedProcess } from "../support/processes.ts";
import { Load, type Counts } from "./support/load.ts";
import { startProxy, type ChaosProxy } from "./support/proxy.ts";
import {
  controllerLogs,
  startController,
  startPythonWorker,
  startWorker,
  VISIBILITY_TIMEOUT_SECONDS,
} from "./support/processes.ts";
import { scale, startWorld, type World } from "./support/world.ts";

/** How long Redis stays down, or the controller cut off: more than one 3 s schedule period. */
const OUTAGE_MS = 6_000;

const isRedisTask = (t: CadentObject): boolean => t.spec?.["jobTemplate"] === undefined;
const taskIdOf = (t: CadentObject): string => String(t.status?.["taskId"] ?? "");
const scheduledMs = (t: CadentObject): number =>
  Date.parse(t.metadata.annotations?.["cadent.dev/scheduled-time"] ?? "");
const progressing = (t: CadentObject) => t.status?.conditions?.find((c) => c.type === "Progressing");

/** Polls the load's Tasks for `ms`; the names of those seen Pending because Redis was unavailable. */
async function watchTasksWaitingForRedis(load: Load, ms: number): Promise<Set<string>> {
  const seen = new Set<string>();
  const until = Date.now() + ms;
  while (Date.now() < until) {
    for (const t of await load.cadent.list("tasks")) {
      if (t.status?.phase === "Pending" && progressing(t)?.reason === "BrokerUnavailable")
        seen.add(t.metadata.name ?? "");
    }
    await sleep(500);
  }
  return seen;
}

/** Attempt number → publish time (RFC 3339) from a Task's `cadent:published:<id>` hash. */
async function publishedAttempts(redis: Redis, taskId: string): Promise<Map<number, string>> {
  const attempts = new Map<number, string>();
  for (const [field, at] of Object.entries(await redis.hgetall(publishRecordKey(taskId)))) {
    if (/^\d+$/.test(field)) attempts.set(Number(field), at);
  }
  return attempts;
}

/**
 * The load's Redis Tasks whose publish record disagrees with their status: every attempt in
 * status.attempts recorded exactly once (the hash field is the HSETNX that guards the LPUSH), and
 * no attempt beyond it. The load has no `retry`, so that is one attempt each.
 */
async function publishRecordMismatches(load: Load, redis: Redis): Promise<string[]> {
  const mismatches: string[] = [];
  for (const t of (await load.cadent.list("tasks")).filter(isRedisTask)) {
    const recorded = [...(await publishedAttempts(redis, taskIdOf(t))).keys()].sort();
    const attempts = Number(t.status?.["attempts"] ?? 0);
    if (attempts !== 1 || recorded.join(",") !== "1")
      mismatches.push(`${t.metadata.name}: status.attempts ${attempts}, recorded [${recorded.join(",")}]`);
  }
  return mismatches;
}

/**
 * Redis Tasks scheduled while the controller could not reach Redis (`from` ≤ scheduled < `to`): no
 * publish could happen then, so each must have been published at or after `to` — returns the
 * names of those that were not, or that did not succeed, and how many there were.
 */
async function publishedAfterOutage(
  load: Load,
  redis: Redis,
  outage: { from: number; to: number },
): Promise<{ due: number; wrong: string[] }> {
  const due = (await load.cadent.list("tasks"))
    .filter(isRedisTask)
    .filter((t) => scheduledMs(t) >= outage.from && scheduledMs(t) < outage.to);
  const wrong: string[] = [];
  for (const t of due) {
    const at = (await publishedAttempts(redis, taskIdOf(t))).get(1);
    // The publish time is recorded to the second.
    if (
      at === undefined ||
      Date.parse(at) < Math.floor(outage.to / 1000) * 1000 ||
      t.status?.phase !== "Succeeded"
    )
      wrong.push(`${t.metadata.name}: published ${at ?? "never"}, ${t.status?.phase ?? "no phase"}`);
  }
  return { due: due.length, wrong };
}

/** `cadent_runs_total` by outcome, from a controller's /metrics. */
async function runOutcomes(controller: ControllerProcess): Promise<Record<string, number>> {
  const { body } = await controller.get(controller.metricsPort, "/metrics");
  const outcomes: Record<string, number> = {};
  for (const [, outcome = "", n = ""] of body.matchAll(/^cadent_runs_total\{outcome="(\w+)"\} (\d+)$/gm))
    outcomes[outcome] = Number(n);
  return outcomes;
}

/**
 * Each run created once and finished once: the controller (one process for the whole load)
 * counted exactly the runs and successes the audit found, and no Task has a second "Succeeded"
 * Event (scheduled runs' Events share a spam-filter budget, so some have none) or a Warning other
 * than BrokerUnavailable. Read the Events after the controller stopped: it flushes count bumps then.
 */
async function expectOneCompletionEach(
  world: World,
  load: Load,
  counts: Counts,
  outcomes: Record<string, number>,
): Promise<void> {
  expect(
    ["created", "succeeded", "failed", "expired", "cancelled"].map((o) => `${o} ${outcomes[o] ?? 0}`),
    "cadent_runs_total",
  ).toEqual([
    `created ${counts.runs}`,
    `succeeded ${counts.succeeded}`,
    "failed 0",
    "expired 0",
    "cancelled 0",
  ]);
  const events = (
    await world.kc.makeApiClient(k8s.CoreV1Api).listNamespacedEvent({ namespace: load.namespace })
  ).items.filter((e) => e.involvedObject.kind === "Task");
  const byTask = new Map<string, { succeeded: number; warnings: string[] }>();
  for (const e of events) {
    const name = e.involvedObject.name ?? "";
    const seen = byTask.get(name) ?? { succeeded: 0, warnings: [] };
    if (e.reason === "Succeeded") seen.succeeded += e.count ?? 1;
    if (e.type === "Warning" && e.reason !== "BrokerUnavailable") seen.warnings.push(e.reason ?? "");
    byTask.set(name, seen);
  }
  const repeated = [...byTask]
    .filter(([, seen]) => seen.succeeded > 1 || seen.warnings.length > 0)
    .map(([name, seen]) => `${name}: ${seen.succeeded} Succeeded, warnings [${seen.warnings.join(",")}]`);
  expect(repeated, "Tasks whose Events show a second completion or a failure").toEqual([]);
}

/** Waits until at least `n` of the load's Redis Tasks are in `phase`; returns how many are. */
async function waitForRedisTasks(load: Load, phase: string, n: number): Promise<number> {
  let count = 0;
  await waitFor(
    `${n} Redis Tasks ${phase}`,
    async () => {
      const tasks = (await load.cadent.list("tasks")).filter(isRedisTask);
      count = tasks.filter((t) => t.status?.phase === phase).length;
      return count >= n;
    },
    { timeoutMs: 120_000, intervalMs: 250 },
  );
  return count;
}

/** Names of the Tasks with a BrokerUnavailable Event. */
async function brokerUnavailableEvents(world: World, load: Load): Promise<Set<string>> {
  const events = await world.kc
    .makeApiClient(k8s.CoreV1Api)
    .listNamespacedEvent({ namespace: load.namespace });
  return new Set(
    events.items
      .filter((e) => e.involvedObject.kind === "Task" && e.reason === "BrokerUnavailable")
      .map((e) => e.involvedObject.name ?? ""),
  );
}

/** The stored result of every Redis Task of the load, decoded (undefined: none, or unreadable). */
async function storedResults(
  load: Load,
  redis: Redis,
): Promise<{ task: CadentObject; meta: ResultMeta | undefined }[]> {
  const tasks = (await load.cadent.list("tasks")).filter(isRedisTask);
  const raw = tasks.length ? await redis.mget(tasks.map((t) => resultKey(taskIdOf(t)))) : [];
  return tasks.map((task, i) => {
    const decoded = raw[i] ? decodeResult(raw[i]) : undefined;
    return { task, meta: decoded?.ok ? decoded.meta : undefined };
  });
}

/**
 * Redis Tasks whose status does not hold the one result the backend kept (a SUCCESS is never
 * overwritten): the returned value `{hostname, id}` with their own task id, and its date_done as
 * completionTime (to the second).
 */
async function resultMismatches(load: Load, redis: Redis): Promise<string[]> {
  const mismatches: string[] = [];
  for (const { task, meta } of await storedResults(load, redis)) {
    const status = task.status ?? {};
    const done = meta?.dateDone?.date.toISOString().replace(/\.\d{3}Z$/, "Z");
    const result = status["result"] as { id?: unknown } | undefined;
    if (
      meta?.status !== "SUCCESS" ||
      JSON.stringify(result) !== JSON.stringify(meta.result) ||
      result?.id !== taskIdOf(task) ||
      status["completionTime"] !== done
    )
      mismatches.push(
        `${task.metadata.name}: stored ${meta?.status ?? "nothing"} ${JSON.stringify(meta?.result ?? null)} at ${done ?? "-"}; status ${String(status.phase)} ${JSON.stringify(result ?? null)} at ${String(status["completionTime"])}`,
      );
  }
  return mismatches;
}

/** How many tasks the worker named `hostname` is running now (its STARTED results). */
async function runningOn(redis: Redis, hostname: string): Promise<number> {
  const keys: string[] = [];
  let cursor = "0";
  do {
    const [next, batch] = await redis.scan(cursor, "MATCH", `${RESULT_KEY_PREFIX}*`, "COUNT", 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== "0");
  if (keys.length === 0) return 0;
  return (await redis.mget(keys)).filter((raw) => {
    const decoded = raw ? decodeResult(raw) : undefined;
    return decoded?.ok && decoded.meta.kind === "started" && decoded.meta.hostname === hostname;
  }).length;
}

/** Messages of the load's queue still on the broker: in its lists, or unacknowledged. */
async function leftOnBroker(load: Load, redis: Redis): Promise<{ queued: number; unacked: number }> {
  let queued = 0;
  for (const priority of [0, 3, 6, 9]) queued += await redis.llen(queueKey(load.queue, priority));
  const unacked = Object.values(await redis.hgetall(UNACKED_KEY)).filter((text) => {
    const decoded = decodeUnackedEntry(text);
    return decoded.ok && decoded.entry.routingKey === load.queue;
  }).length;
  return { queued, unacked };
}

/** Waits until nothing of the load is left on the broker (a redelivery may still be running). */
async function expectBrokerDrained(load: Load, redis: Redis): Promise<void> {
  let last = { queued: -1, unacked: -1 };
  await waitFor(
    `the queue ${load.queue} and its unacknowledged messages to drain`,
    async () => {
      last = await leftOnBroker(load, redis);
      return last.queued === 0 && last.unacked === 0;
    },
    // A message of a killed worker comes back only after the visibility timeout.
    { timeoutMs: VISIBILITY_TIMEOUT_SECONDS * 1000 * 6, intervalMs: 500 },
  ).catch((err: unknown) => {
    throw new Error(`${String(err)}; left: ${JSON.stringify(last)}`);
  });
}

/**
 * When a process first logged, at `from` or later, that a Redis connection (of role `connection`,
 * when given) stayed silent with a command outstanding and was dropped (ioredis' socket timeout).
 */
function silenceDetectedAt(
  lines: readonly { time: number; [field: string]: unknown }[],
  from: number,
  connection?: string,
): number | undefined {
  return lines.find(
    (line) =>
      line.time >= from &&
      /Socket timeout/.test(String(line["err"])) &&
      (connection === undefined || line["connection"] === connection),
  )?.time;
}

/** Waits until `detectedAt` finds the line; returns its time. */
async function waitForSilenceDetected(what: string, detectedAt: () => number | undefined): Promise<number> {
  let at: number | undefined;
  await waitFor(
    what,
    async () => {
      at = detectedAt();
      return at !== undefined;
    },
    { timeoutMs: 90_000, intervalMs: 500 },
  );
  return at ?? Number.NaN;
}

/**
 * Waits for a moment when no message can reach the queue within the next 1.3 s: every Redis run
 * due so far has been published (its Task is past Pending) and taken off the queue, and the next
 * fire time is at least 1.3 s away. A pop blocks for at most 1 s.
 */
async function quietMoment(load: Load, redis: Redis, redisPerTime: number): Promise<void> {
  const published = new Set(["Queued", "Running", "Succeeded", "Failed"]);
  await waitFor(
    "a moment between two fire times with the queue empty",
    async () => {
      const times = load.scheduledTimes();
      const last = times.filter((t) => t <= Date.now()).at(-1);
      const nextFar = () => (times.find((t) => t > Date.now()) ?? Infinity) - Date.now() >= 1_300;
      if (last === undefined || !nextFar()) return false;
      const due = (await load.cadent.list("tasks")).filter(isRedisTask).filter((t) => scheduledMs(t) <= last);
      const allPublished =
        due.length >= times.filter((t) => t <= last).length * redisPerTime &&
        due.every((t) => published.has(t.status?.phase ?? ""));
      return allPublished && (await leftOnBroker(load, redis)).queued === 0 && nextFar();
    },
    { timeoutMs: 60_000, intervalMs: 50 },
  );
}

/** The assertions every scenario of this file adds to the audit. */
function expectAllSucceeded(counts: Counts): void {
  expect(counts.missed, "runs missed (startingDeadlineSeconds is 600)").toBe(0);
  expect(counts.runs, "a run for every scheduled time").toBe(counts.scheduled);
  expect(counts.failed, "failed runs").toBe(0);
  expect(counts.succeeded, "succeeded runs").toBe(counts.runs);
}

describe("Redis and the workers failing under load", () => {
  let world: World;
  let redis: Redis;
  const stops: (() => Promise<void>)[] = [];
  const track = <T extends { process: { stop(): Promise<void> } }>(p: T): T => {
    stops.push(() => p.process.stop());
    return p;
  };

  beforeAll(async () => {
    world = await startWorld("redis-workers");
    // Only ever used while Redis is up; it reconnects by itself after an outage.
    redis = new Redis(world.redis.url, { maxRetriesPerRequest: null });
    redis.on("error", () => undefined); // Expected while Redis is stopped; commands wait for it.
  });
  afterAll(async () => {
    redis?.disconnect();
    await Promise.all(stops.map((stop) => stop().catch(() => undefined)));
    await world?.stop();
  });

  /** Stops the controller first, gracefully, so that its pending Event updates are written. */
  const finish = async (controller: ControllerProcess, others: { process: TrackedProcess }[]) => {
    await controller.stop();
    await Promise.all(others.map((o) => o.process.stop()));
  };

  /** A proxy to the world's Redis (closed after the file at the latest) and the URL through it. */
  const redisProxy = async (): Promise<{ proxy: ChaosProxy; url: string }> => {
    const proxy = await startProxy({ host: "127.0.0.1", port: world.redis.port });
    stops.push(() => proxy.close());
    return { proxy, url: `redis://127.0.0.1:${proxy.port}/0` };
  };

  interface CutOff {
    proxy: ChaosProxy;
    load: Load;
    worker: { process: TrackedProcess };
    controller: ControllerProcess;
  }

  /**
   * A load with the worker connected to Redis directly and the controller through a proxy;
   * resolves while runs are executing, so that their results are written, and PUBLISHed, while
   * the scenario keeps the controller from hearing anything.
   */
  const controllerBehindProxy = async (prefix: string): Promise<CutOff> => {
    const { proxy, url } = await redisProxy();
    const load = await Load.start(world, prefix, { redis: 4, jobs: 2, durationSeconds: 30, taskSeconds: 2 });
    const worker = track(await startWorker(world, load));
    const controller = track(await startController(world, load, prefix, { redisUrl: url }));
    await waitForRedisTasks(load, "Running", 2);
    return { proxy, load, worker, controller };
  };

  /**
   * Settles the load of a controller that was cut off from Redis during `cut`, stops everything,
   * audits it, and checks what a cut-off controller promises: every run succeeded, some results
   * were written while it heard nothing, every Redis Task holds the result the worker stored, one
   * publish per attempt, one completion each, and its broker connection is up again.
   */
  const expectCaughtUp = async (
    { proxy, load, worker, controller }: CutOff,
    scenario: string,
    cut: { from: number; to: number },
    extra: () => Promise<Record<string, number>>,
  ): Promise<Counts> => {
    await load.settle();
    const doneWhileCutOff = (await storedResults(load, redis)).filter((r) => {
      const done = r.meta?.dateDone?.date.getTime() ?? 0;
      return done >= cut.from && done < cut.to;
    });
    const more = await extra();
    await expectBrokerDrained(load, redis);
    const metrics = await controller.get(controller.metricsPort, "/metrics");
    const outcomes = await runOutcomes(controller);
    await finish(controller, [worker]);
    await proxy.close();

    const counts = await load.expectNothingLost(scenario, {
      resultsWhileCutOff: doneWhileCutOff.length,
      ...more,
    });
    expectAllSucceeded(counts);
    expect(doneWhileCutOff.length, "results written while the controller was cut off").toBeGreaterThan(0);
    expect(await resultMismatches(load, redis), "every Redis Task holds its stored result").toEqual([]);
    expect(metrics.body, "the controller's broker connection, after").toMatch(/^cadent_redis_up 1$/m);
    expect(await publishRecordMismatches(load, redis), "one publish per attempt").toEqual([]);
    await expectOneCompletionEach(world, load, counts, outcomes);
    return counts;
  };

  it("Redis stopped for several fire times and started again (AOF): runs due meanwhile are published after it, once, and succeed", async () => {
    const outages = scale(1, 3);
    const load = await Load.start(world, "redis-down", {
      redis: 4,
      jobs: 2,
      durationSeconds: outages * 15 + 15,
    });
    const worker = track(await startWorker(world, load));
    const controller = track(await startController(world, load, "solo"));

    const windows: { from: number; to: number }[] = [];
    const seenWaiting = new Set<string>();
    let succeeded = 0;
    for (let i = 0; i < outages; i++) {
      // A few more runs published and executed before each outage.
      succeeded = await waitForRedisTasks(load, "Succeeded", succeeded + 4);
      await world.redis.stop();
      const from = Date.now();
      for (const name of await watchTasksWaitingForRedis(load, OUTAGE_MS)) seenWaiting.add(name);
      const to = Date.now();
      await world.redis.start();
      windows.push({ from, to });
    }

    await load.settle();
    const dueDuringOutage = await Promise.all(windows.map((w) => publishedAfterOutage(load, redis, w)));
    const withEvent = await brokerUnavailableEvents(world, load);
    await expectBrokerDrained(load, redis);
    const outcomes = await runOutcomes(controller);
    await finish(controller, [worker]);

    const counts = await load.expectNothingLost("Redis stopped and started (AOF), under load", {
      outages,
      outageMs: OUTAGE_MS,
      dueDuringOutage: dueDuringOutage.reduce((n, d) => n + d.due, 0),
      seenPendingBrokerUnavailable: seenWaiting.size,
      brokerUnavailableEvents: withEvent.size,
    });
    expectAllSucceeded(counts);
    for (const d of dueDuringOutage) {
      expect(d.due, "Redis runs scheduled while Redis was down").toBeGreaterThan(0);
      expect(d.wrong, "runs due during the outage: published after it, and succeeded").toEqual([]);
    }
    expect(seenWaiting.size, "Tasks seen Pending with BrokerUnavailable during the outage").toBeGreaterThan(
      0,
    );
    expect(
      [...seenWaiting].filter((name) => !withEvent.has(name)),
      "Tasks seen waiting for Redis without a BrokerUnavailable Event",
    ).toEqual([]);
    expect(await publishRecordMismatches(load, redis), "one publish per attempt").toEqual([]);
    await expectOneCompletionEach(world, load, counts, outcomes);
  });

  it("the controller cut off from Redis while the worker keeps finishing tasks: the results it missed are read when it is back", async () => {
    const cutOff = await controllerBehindProxy("cut-off");
    const { proxy, load } = cutOff;
    proxy.setBlackHole(true);
    const reset = proxy.resetOpenConnections();
    const from = Date.now();
    const seenWaiting = await watchTasksWaitingForRedis(load, OUTAGE_MS);
    const to = Date.now();
    // Only new connections pass again: the ones opened into the black hole stay silent, and the
    // controller must give up on them by itself.
    proxy.setBlackHole(false);

    let dueDuringCut: { due: number; wrong: string[] } | undefined;
    await expectCaughtUp(
      cutOff,
      "controller cut off from Redis (reset + black hole)",
      { from, to },
      async () => {
        dueDuringCut = await publishedAfterOutage(load, redis, { from, to });
        return {
          cutMs: OUTAGE_MS,
          connectionsReset: reset,
          dueDuringCut: dueDuringCut.due,
          seenPendingBrokerUnavailable: seenWaiting.size,
        };
      },
    );
    expect(reset, "the controller's connections to Redis, reset").toBeGreaterThan(0);
    // Whether a Task is seen Pending (BrokerUnavailable) during the cut depends on whether its
    // Task object was created before the cut ended (the run's publish was tried at its fire time,
    // the Task comes after); what must hold is that the runs due meanwhile went out after it.
    // The Redis-stopped scenario above asserts the BrokerUnavailable condition and Events.
    expect(dueDuringCut?.due, "Redis runs scheduled while the controller was cut off").toBeGreaterThan(0);
    expect(dueDuringCut?.wrong, "runs due while cut off: published after, and succeeded").toEqual([]);
  });

  it("the controller's Redis connections frozen (half-open) while the worker keeps finishing tasks: it notices the silence itself and reads the results it missed", async () => {
    const cutOff = await controllerBehindProxy("frozen-ctl");
    const { proxy, controller } = cutOff;
    // Neither closed nor reset: the controller hears nothing more and must find that out itself,
    // on the results connection too, which only listens.
    const frozen = proxy.freezeOpenConnections();
    const from = Date.now();
    const detected = (connection: string) =>
      waitForSilenceDetected(`the controller to drop its silent ${connection} connection`, () =>
        silenceDetectedAt(controllerLogs(controller), from, connection),
      );
    const resultsReplaced = await detected("results");
    const commandsReplaced = await detected("commands");

    // Results PUBLISHed between the freeze and the replaced results connection reached nobody.
    await expectCaughtUp(
      cutOff,
      "controller's Redis connections frozen (half-open)",
      { from, to: resultsReplaced },
      async () => ({
        connectionsFrozen: frozen,
        resultsConnectionReplacedAfterMs: resultsReplaced - from,
        commandsConnectionReplacedAfterMs: commandsReplaced - from,
      }),
    );
    expect(frozen, "the controller's connections to Redis (commands, results), frozen").toBe(2);
  });

  it("a cadent worker whose Redis connections freeze mid-load (half-open): it notices the silence, reconnects and resumes, losing and repeating nothing", async () => {
    const redisPerTime = 4;
    const { proxy, url } = await redisProxy();
    const load = await Load.start(world, "frozen-worker", {
      redis: redisPerTime,
      jobs: 0,
      durationSeconds: 33,
      taskSeconds: 1,
    });
    const controller = track(await startController(world, load, "solo"));
    // A visibility timeout well above the ~10 s the worker needs to notice the silence: its held
    // messages are not refreshed meanwhile, and with the default 8 s of this file its own
    // restore_visible would hand them out again (at-least-once by design, not what is tested here).
    const worker = track(
      await startWorker(world, load, undefined, { brokerUrl: url, visibilityTimeoutSeconds: 60 }),
    );
    await waitForRedisTasks(load, "Succeeded", redisPerTime);

    // A pop that Redis answers on a connection that has just gone silent takes its message with
    // it (the pop is destructive, as in kombu: docs/worker.md). Freezing when no message can
    // arrive before the pop in flight times out keeps that known window out of this scenario,
    // which is about noticing the silence and resuming.
    await quietMoment(load, redis, redisPerTime);
    const frozen = proxy.freezeOpenConnections();
    const from = Date.now();
    const workerLogs = () =>
      worker.logs().map((line) => ({ ...line, time: Date.parse(String(line["time"])) }));
    const detected = await waitForSilenceDetected("the worker to drop a silent connection", () =>
      silenceDetectedAt(workerLogs(), from),
    );

    await load.settle();
    const results = await storedResults(load, redis);
    const scheduledDuringFreeze = results.filter(
      ({ task }) => scheduledMs(task) >= from && scheduledMs(task) < detected,
    ).length;
    const doneAfterDetection = results.filter(
      ({ meta }) => (meta?.dateDone?.date.getTime() ?? 0) >= detected,
    ).length;
    await expectBrokerDrained(load, redis);
    const outcomes = await runOutcomes(controller);
    await finish(controller, [worker]);
    await proxy.close();

    const counts = await load.expectNothingLost("cadent worker's Redis connections frozen (half-open)", {
      connectionsFrozen: frozen,
      silenceDetectedAfterMs: detected - from,
      scheduledDuringFreeze,
      resultsAfterDetection: doneAfterDetection,
    });
    expectAllSucceeded(counts);
    expect(frozen, "the worker's connections (pops, commands, transactions), frozen").toBe(3);
    expect(
      scheduledDuringFreeze,
      "Redis runs published while the worker could not hear them",
    ).toBeGreaterThan(0);
    expect(doneAfterDetection, "results written after the worker replaced its connections").toBeGreaterThan(
      0,
    );
    const redisRuns = (await load.cadent.list("tasks")).filter(isRedisTask).length;
    expect(counts.executions, "executions of the Redis runs: each exactly once").toBe(redisRuns);
    expect(counts.reExecuted, "Redis runs executed twice").toBe(0);
    expect(await resultMismatches(load, redis), "every Redis Task holds its stored result").toEqual([]);
    expect(await publishRecordMismatches(load, redis), "one publish per attempt").toEqual([]);
    await expectOneCompletionEach(world, load, counts, outcomes);
  });

  it("cadent and Celery workers killed with SIGKILL mid-task, again and again: every run ends once, executed at least once, nothing left on the broker", async () => {
    const kills = scale(5, 20);
    const load = await Load.start(world, "worker-kill9", {
      redis: 4,
      jobs: 2,
      durationSeconds: kills * 9 + 9,
      taskSeconds: 2,
      leadSeconds: 12,
    });
    type Kind = "cadent" | "celery";
    interface Consumer {
      hostname: string;
      process: TrackedProcess;
    }
    const start = async (kind: Kind): Promise<Consumer> =>
      track(kind === "cadent" ? await startWorker(world, load) : await startPythonWorker(world, load));
    const consumers = new Map<Kind, Consumer>([
      ["cadent", await start("cadent")],
      ["celery", await start("celery")],
    ]);
    const controller = track(await startController(world, load, "solo"));

    // Both kinds equally often, in a random order, each at a random moment while it runs a task.
    const plan: Kind[] = Array.from({ length: kills }, (_, i) => (i % 2 === 0 ? "cadent" : "celery"));
    for (let i = plan.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [plan[i], plan[j]] = [plan[j] ?? "cadent", plan[i] ?? "cadent"];
    }
    for (const kind of plan) {
      await sleep(1_000 + Math.floor(Math.random() * 2_000));
      const victim = consumers.get(kind);
      if (!victim) throw new Error(`no ${kind} worker`);
      await waitFor(
        `${victim.hostname} to be running a task`,
        async () => (await runningOn(redis, victim.hostname)) > 0,
        {
          timeoutMs: 60_000,
          intervalMs: 100,
        },
      );
      await victim.process.kill();
      consumers.set(kind, await start(kind));
    }

    await load.settle();
    await expectBrokerDrained(load, redis);
    const outcomes = await runOutcomes(controller);
    await finish(controller, [...consumers.values()]);

    const counts = await load.expectNothingLost("workers (cadent + Celery) kill -9 mid-task, restarted", {
      kills,
      killedCadent: plan.filter((k) => k === "cadent").length,
      killedCelery: plan.filter((k) => k === "celery").length,
      visibilityTimeoutSeconds: VISIBILITY_TIMEOUT_SECONDS,
    });
    expectAllSucceeded(counts);
    const redisRuns = (await load.cadent.list("tasks")).filter(isRedisTask).length;
    expect(counts.executions, "executions of the Redis runs (at least once)").toBeGreaterThanOrEqual(
      redisRuns,
    );
    expect(counts.reExecuted, "Redis runs executed again after a kill (redelivered)").toBeGreaterThan(0);
    expect(await resultMismatches(load, redis), "every Redis Task holds its stored result").toEqual([]);
    expect(await publishRecordMismatches(load, redis), "one publish per attempt").toEqual([]);
    await expectOneCompletionEach(world, load, counts, outcomes);
  });
});
