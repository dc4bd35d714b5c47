/**
 * The Redis executor end to end: `cadent controller` publishes Celery protocol v2 messages to a
 * real Redis, real Python Celery workers run them, and the results land in the Tasks' status.
 */
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { startCeleryWorker, type CeleryWorker } from "../support/celery.ts";
import {
  Cadent,
  installCrds,
  startControllerProcess,
  type CadentObject,
  type ControllerProcess,
} from "../support/cadent.ts";
import { createTestNamespace, kubeConfig } from "../support/kube.ts";
import { waitFor } from "../support/ports.ts";
import { startCadentWorker } from "./worker-support.ts";
import { startRedis } from "../support/redis.ts";

const phase = (o: CadentObject): string | undefined => o.status?.phase;
const error = (o: CadentObject) => (o.status?.["error"] ?? {}) as Record<string, unknown>;
const runsOf = (o: CadentObject): Record<string, number> =>
  (o.status?.["runs"] ?? {}) as Record<string, number>;

function redisTask(name: string, spec: Record<string, unknown>): object {
  return { apiVersion: "cadent.dev/v1alpha1", kind: "Task", metadata: { name }, spec };
}

describe("the Redis executor with real Celery workers", () => {
  const kc = kubeConfig();
  const redis = new Redis(inject("redisUrl"));
  const queue = `cadent-${randomBytes(3).toString("hex")}`;
  const workers: CeleryWorker[] = [];
  const controllers: ControllerProcess[] = [];
  const namespaces: Awaited<ReturnType<typeof createTestNamespace>>[] = [];
  let cadent: Cadent;
  const celery = (queues: string[]) =>
    startCeleryWorker({
      venv: inject("venv"),
      app: "interop_app",
      brokerUrl: inject("redisUrl"),
      queues,
      concurrency: 2,
      logDir: `${inject("workDir")}/logs`,
    });

  beforeAll(async () => {
    await installCrds(kc);
    const ns = await createTestNamespace(kc, "ctl-redis");
    namespaces.push(ns);
    cadent = new Cadent(kc, ns.name);
    controllers.push(
      await startControllerProcess({ namespace: ns.name, extraArgs: ["--default-queue", queue] }),
    );
    workers.push(await celery([queue, `${queue}-hi`]));
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await Promise.all(controllers.map((c) => c.stop()));
    await Promise.all(namespaces.map((n) => n.cleanup()));
    redis.disconnect();
  });

  it.concurrent(
    "runs a Task on a Python worker: args, kwargs, queue and priority reach it, the result lands in status",
    async () => {
      await cadent.create(
        "tasks",
        redisTask("whoami", {
          task: "app.tasks.whoami",
          args: [1, "x"],
          kwargs: { k: 2 },
          queue: `${queue}-hi`,
          priority: 6,
        }),
      );
      const done = await cadent.waitFor("tasks", "whoami", "Succeeded", (o) => phase(o) === "Succeeded");
      const result = done.status?.["result"] as Record<string, unknown>;
      expect(result).toMatchObject({
        args: [1, "x"],
        kwargs: { k: 2 },
        retries: 0,
        id: done.status?.["taskId"],
      });
      expect(result["delivery_info"]).toMatchObject({ routing_key: `${queue}-hi`, priority: 6 });
      expect(done.status?.["taskId"]).toBe(done.metadata.uid);
      expect(done.status).toMatchObject({ attempts: 1 });
      for (const field of ["queuedTime", "completionTime"]) expect(done.status?.[field], field).toBeTruthy();
    },
  );

  it.concurrent("a failure carries the exception type, message and traceback", async () => {
    await cadent.create(
      "tasks",
      redisTask("boom", { task: "app.tasks.fail", kwargs: { message: "disk full" } }),
    );
    const done = await cadent.waitFor("tasks", "boom", "Failed", (o) => phase(o) === "Failed");
    expect(error(done)).toMatchObject({ type: "ValueError", message: "disk full" });
    expect(String(error(done)["traceback"])).toContain("Traceback");
  });

  it.concurrent("a worker's own self.retry() shows as Retrying, then the Task succeeds", async () => {
    await cadent.create("tasks", redisTask("flaky", { task: "app.tasks.flaky", kwargs: { times: 2 } }));
    const seen = new Set<string>();
    await waitFor(
      "Succeeded",
      async () => {
        const o = await cadent.get("tasks", "flaky");
        seen.add(phase(o) ?? "");
        return phase(o) === "Succeeded";
      },
      { timeoutMs: 60_000, intervalMs: 100 },
    );
    expect(seen).toContain("Retrying");
    expect((await cadent.get("tasks", "flaky")).status?.["result"]).toEqual({ retries: 2 });
  });

  it.concurrent("spec.retry re-publishes a failed attempt with the same id and retries + 1", async () => {
    await cadent.create(
      "tasks",
      redisTask("retried", {
        task: "app.tasks.fail_until",
        args: [2],
        retry: { limit: 3, backoff: { initialSeconds: 1, factor: 1, maxSeconds: 1, jitter: false } },
      }),
    );
    const done = await cadent.waitFor("tasks", "retried", "Succeeded", (o) => phase(o) === "Succeeded");
    expect(done.status?.["result"]).toEqual({ retries: 2 });
    expect(done.status).toMatchObject({ attempts: 3 });
    const record = await redis.hgetall(`cadent:published:${String(done.status?.["taskId"])}`);
    expect(
      Object.keys(record)
        .filter((k) => /^\d+$/.test(k))
        .sort(),
    ).toEqual(["1", "2", "3"]);
  });

  it.concurrent(
    "a Task no worker takes within timeoutSeconds ends Failed, TimedOut; one past expires ends Expired",
    async () => {
      const idle = `${queue}-idle`;
      await cadent.create(
        "tasks",
        redisTask("unclaimed", { task: "app.tasks.add", args: [1, 2], queue: idle, timeoutSeconds: 1 }),
      );
      await cadent.create(
        "tasks",
        redisTask("stale", { task: "app.tasks.add", args: [1, 2], queue: idle, countdown: 3, expires: 1 }),
      );
      const timedOut = await cadent.waitFor("tasks", "unclaimed", "Failed", (o) => phase(o) === "Failed");
      expect(error(timedOut)).toMatchObject({ reason: "TimedOut" });
      const expired = await cadent.waitFor("tasks", "stale", "Expired", (o) => phase(o) === "Expired");
      expect(expired.status?.["queuedTime"]).toBeUndefined();
      // The timed-out message carried its limit, and the expired one was never published.
      const messages = await redis.lrange(idle, 0, -1);
      expect(messages).toHaveLength(1);
      const envelope = JSON.parse(messages[0] ?? "{}") as { headers: { timelimit: unknown; id: string } };
      expect(envelope.headers.timelimit).toEqual([1, null]);
      expect(envelope.headers.id).toBe(timedOut.status?.["taskId"]);
    },
  );

  it.concurrent(
    "a message a Python worker receives after `expires` is revoked, and the Task ends Expired",
    async () => {
      const late = `${queue}-late`;
      await cadent.create(
        "tasks",
        redisTask("too-late", { task: "app.tasks.add", args: [1, 1], queue: late, expires: 2 }),
      );
      const queued = await cadent.waitFor("tasks", "too-late", "Queued", (o) => phase(o) === "Queued");
      const envelope = JSON.parse((await redis.lindex(late, 0)) ?? "{}") as { headers: { expires: string } };
      expect(envelope.headers.expires).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00$/);
      await new Promise((r) => setTimeout(r, 3_000));
      workers.push(await celery([late]));
      const done = await cadent.waitFor("tasks", "too-late", "Expired", (o) => phase(o) === "Expired");
      expect(done.status?.["taskId"]).toBe(queued.status?.["taskId"]);
      expect(error(done)).toMatchObject({ type: "TaskRevokedError" });
    },
  );

  it.concurrent(
    "kill -9 of a cadent worker mid-task: another worker runs it after the visibility timeout, and the Task succeeds once",
    async () => {
      const q = `${queue}-crash`;
      const first = await startCadentWorker({
        redisUrl: inject("redisUrl"),
        queues: [q],
        visibilityTimeoutSeconds: 3,
      });
      await cadent.create("tasks", redisTask("survivor", { task: "app.tasks.nap", args: [4], queue: q }));
      await cadent.waitFor("tasks", "survivor", "Running", (o) => phase(o) === "Running");
      await first.process.kill();
      const second = await startCadentWorker({
        redisUrl: inject("redisUrl"),
        queues: [q],
        visibilityTimeoutSeconds: 3,
      });
      try {
        const done = await cadent.waitFor(
          "tasks",
          "survivor",
          "Succeeded",
          (o) => phase(o) === "Succeeded",
          90_000,
        );
        expect(done.status?.["result"]).toMatchObject({
          hostname: second.hostname,
          id: done.status?.["taskId"],
        });
        expect(done.status?.["attempts"]).toBe(1);
        const stored = JSON.parse(
          (await redis.get(`celery-task-meta-${String(done.status?.["taskId"])}`)) ?? "{}",
        ) as {
          status: string;
        };
        expect(stored.status).toBe("SUCCESS");
      } finally {
        await second.process.stop();
      }
    },
  );

  it.concurrent("a PeriodicTask's runs are published at their fire time and run by Celery", async () => {
    await cadent.create("periodictasks", {
      apiVersion: "cadent.dev/v1alpha1",
      kind: "PeriodicTask",
      metadata: { name: "del-redis-data" },
      spec: {
        schedule: "*/2 * * * * *",
        taskTemplate: { spec: { task: "app.tasks.del_redis_data", args: ["sessions"] } },
      },
    });
    await cadent.waitFor(
      "periodictasks",
      "del-redis-data",
      "two runs succeeded",
      (o) => (runsOf(o)["succeeded"] ?? 0) >= 2,
    );
    const runs = (await cadent.runs("del-redis-data")).filter((r) => phase(r) === "Succeeded");
    const run = runs[0] as CadentObject;
    expect(run.status?.["result"]).toEqual({ deleted: 1, kwargs: {} });
    const lag =
      Date.parse(String(run.status?.["queuedTime"])) -
      Date.parse(run.metadata.annotations?.["cadent.dev/scheduled-time"] ?? "");
    expect(lag).toBeGreaterThanOrEqual(0);
  });
});

describe("the Redis executor when Redis fails or the controller dies", () => {
  const kc = kubeConfig();
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });
  beforeAll(async () => {
    await installCrds(kc);
  });

  it.concurrent(
    "with Redis down a Task stays Pending with a condition and an Event, and is published once Redis is back",
    async () => {
      const ns = await createTestNamespace(kc, "ctl-redis-down");
      cleanups.push(ns.cleanup);
      const cadent = new Cadent(kc, ns.name);
      const own = await startRedis({ workDir: inject("workDir"), name: `redis-${ns.name}` });
      cleanups.push(() => own.stop());
      const controller = await startControllerProcess({
        namespace: ns.name,
        extraArgs: ["--redis-url", own.url],
      });
      cleanups.push(() => controller.stop());
      await own.process.stop();

      await cadent.create(
        "tasks",
        redisTask("patient", { task: "app.tasks.add", args: [2, 3], queue: "later" }),
      );
      const pending = await cadent.waitFor("tasks", "patient", "BrokerUnavailable", (o) =>
        (o.status?.conditions ?? []).some((c) => c.reason === "BrokerUnavailable"),
      );
      expect(phase(pending)).toBe("Pending");
      await waitFor("a BrokerUnavailable Event", async () =>
        (await cadent.events(kc, "patient")).some(
          (e) => e.reason === "BrokerUnavailable" && e.type === "Warning",
        ),
      );
      await own.restart();
      const queued = await cadent.waitFor("tasks", "patient", "Queued", (o) => phase(o) === "Queued", 60_000);
      const client = new Redis(own.url);
      cleanups.push(async () => client.disconnect());
      expect(await client.llen("later")).toBe(1);
      expect(queued.status?.["attempts"]).toBe(1);
      expect((await controller.get(controller.healthPort, "/healthz")).status).toBe(200);
    },
  );

  it.concurrent(
    "kill -9 between a run's publish and its Task's creation: exactly one message, and the Task follows",
    async () => {
      const ns = await createTestNamespace(kc, "ctl-redis-crash");
      cleanups.push(ns.cleanup);
      const cadent = new Cadent(kc, ns.name);
      const q = `crash-${randomBytes(3).toString("hex")}`;
      const client = new Redis(inject("redisUrl"));
      cleanups.push(async () => client.disconnect());
      await cadent.create("periodictasks", {
        apiVersion: "cadent.dev/v1alpha1",
        kind: "PeriodicTask",
        metadata: { name: "fast" },
        spec: {
          schedule: "*/2 * * * * *",
          taskTemplate: { spec: { task: "app.tasks.add", args: [20, 22], queue: q } },
        },
      });
      const doomed = await startControllerProcess({
        namespace: ns.name,
        env: { CADENT_FAULT_INJECTION: "crash-after-early-publish" },
        waitReady: false,
      });
      expect(await doomed.process.exited).toBe("SIGKILL");
      const messages = await client.lrange(q, 0, -1);
      expect(messages, "one message published before the crash").toHaveLength(1);
      expect(await cadent.runs("fast"), "no Task yet").toHaveLength(0);
      const id = (JSON.parse(messages[0] ?? "{}") as { headers: { id: string } }).headers.id;

      const healthy = await startControllerProcess({ namespace: ns.name, extraArgs: ["--default-queue", q] });
      cleanups.push(() => healthy.stop());
      await waitFor("the Task of the published run", async () =>
        (await cadent.runs("fast")).some((r) => r.status?.["taskId"] === id),
      );
      const worker = await startCeleryWorker({
        venv: inject("venv"),
        app: "interop_app",
        brokerUrl: inject("redisUrl"),
        queues: [q],
        logDir: `${inject("workDir")}/logs`,
      });
      cleanups.push(() => worker.stop());
      const run = (await cadent.runs("fast")).find((r) => r.status?.["taskId"] === id) as CadentObject;
      const done = await cadent.waitFor(
        "tasks",
        run.metadata.name ?? "",
        "Succeeded",
        (o) => phase(o) === "Succeeded",
      );
      expect(done.status?.["result"]).toBe(42);
      const record = await client.hgetall(`cadent:published:${id}`);
      expect(
        Object.keys(record).filter((k) => /^\d+$/.test(k)),
        "published once",
      ).toEqual(["1"]);
    },
  );
});
