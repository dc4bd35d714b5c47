/**
 * cadent's worker and Python Celery, both directions: Python's send_task → cadent worker →
 * Python's AsyncResult.get(); and a Python worker and a cadent worker sharing one queue.
 */
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { startCeleryWorker } from "../support/celery.ts";
import type { CeleryWorker } from "../support/celery.ts";
import { waitFor } from "../support/ports.ts";
import {
  celeryClient,
  freshDb,
  startCadentWorker,
  storedResult,
  uniqueQueue,
  waitForStatus,
} from "./worker-support.ts";
import type { CadentWorker } from "./worker-support.ts";

const DB = 9;

describe("Python's send_task → cadent worker → Python's AsyncResult.get()", () => {
  let url: string;
  let redis: Redis;
  let worker: CadentWorker;
  const queue = uniqueQueue("interop");

  beforeAll(async () => {
    ({ url, redis } = await freshDb(DB));
    worker = await startCadentWorker({ redisUrl: url, queues: [queue] });
  });
  afterAll(async () => {
    await worker?.process.stop(30_000);
    redis?.disconnect();
  });

  it("returns the value of a task called with args and kwargs", async () => {
    const [add, whoami] = await celeryClient(url, [
      { name: "app.tasks.add", args: [20, 22], queue },
      { name: "app.tasks.whoami", args: [1, "x"], kwargs: { k: { nested: [true, null] } }, queue },
    ]);
    expect(add).toMatchObject({ state: "SUCCESS", result: 42 });
    expect(whoami).toMatchObject({
      state: "SUCCESS",
      result: {
        args: [1, "x"],
        kwargs: { k: { nested: [true, null] } },
        retries: 0,
        hostname: worker.hostname,
      },
    });
  });

  it("raises the task's exception in Python: ValueError for the failing task, NotRegistered for an unknown one", async () => {
    // One task per client: with two results in flight, Celery 5.5's Redis result consumer can miss
    // the second PUBLISH (seen once: get() timed out although the worker had handled the message).
    const [fail] = await celeryClient(url, [{ name: "app.tasks.fail", args: ["bad input"], queue }]);
    const [unknown] = await celeryClient(url, [{ name: "app.tasks.does_not_exist", queue }]);
    expect(fail).toMatchObject({
      state: "FAILURE",
      exc_type: "ValueError",
      exc_module: "builtins",
      exc_args: ["bad input"],
    });
    expect(unknown).toMatchObject({
      state: "FAILURE",
      exc_type: "NotRegistered",
      exc_module: "celery.exceptions",
      exc_args: ["app.tasks.does_not_exist"],
    });
    expect((await storedResult(redis, unknown?.id ?? ""))?.status).toBe("FAILURE");
    expect(JSON.parse((await redis.lindex("cadent.dead-letter", 0)) ?? "{}")).toMatchObject({
      reason: "not-registered",
      task: "app.tasks.does_not_exist",
      queue,
    });
  });

  it("runs a countdown task no earlier than its eta, and a task whose expires is still ahead", async () => {
    const [counted] = await celeryClient(url, [
      { name: "app.tasks.whoami", queue, countdown: 1, expires: 600 },
    ]);
    if (counted === undefined || !("result" in counted))
      throw new Error(`task failed: ${JSON.stringify(counted)}`);
    const result = counted.result as { eta: string; expires: string };
    expect(result.eta).not.toBeNull();
    expect(result.expires).not.toBeNull();
    const meta = await storedResult(redis, counted.id);
    expect(meta?.dateDone?.date.getTime()).toBeGreaterThanOrEqual(Date.parse(result.eta));
  });

  it("retries with ctx.retry() and ends with the value, the message carrying retries + 1", async () => {
    const [flaky] = await celeryClient(url, [{ name: "app.tasks.flaky", kwargs: { times: 2 }, queue }]);
    expect(flaky).toMatchObject({ state: "SUCCESS", result: { retries: 2 } });
    const meta = await storedResult(redis, flaky?.id ?? "");
    expect(meta?.parentId).toBe(flaky?.id);
  });

  it("runs the examples' del_redis_data against the keys it matches", async () => {
    await redis.mset(`${queue}:cache:a`, "1", `${queue}:cache:b`, "2", `${queue}:keep`, "3");
    const [cleanup] = await celeryClient(url, [
      { name: "app.tasks.del_redis_data", kwargs: { pattern: `${queue}:cache:*` }, queue },
    ]);
    expect(cleanup).toMatchObject({ state: "SUCCESS", result: { deleted: 2, matched: 2 } });
    expect(await redis.exists(`${queue}:cache:a`, `${queue}:cache:b`, `${queue}:keep`)).toBe(1);
  });

  it("takes lower priority numbers first, as a Celery worker on Redis does", async () => {
    const ordered = uniqueQueue("priority");
    const list = `${ordered}:order`;
    // Sent before any worker consumes the queue, highest number first.
    await celeryClient(
      url,
      [9, 6, 3, 0].map((priority) => ({
        name: "app.tasks.append",
        args: [priority, list],
        queue: ordered,
        priority,
      })),
      { wait: false },
    );
    const single = await startCadentWorker({
      redisUrl: url,
      queues: [ordered],
      concurrency: 1,
      prefetchMultiplier: 1,
    });
    try {
      await waitFor("the four tasks to run", async () => (await redis.llen(list)) === 4);
      expect(await redis.lrange(list, 0, -1)).toEqual(["0", "3", "6", "9"]);
    } finally {
      await single.process.stop(30_000);
    }
  });
});

describe("a Python Celery worker and a cadent worker on the same queue", () => {
  let url: string;
  let redis: Redis;
  let cadent: CadentWorker;
  let celery: CeleryWorker;
  const queue = uniqueQueue("shared");

  beforeAll(async () => {
    ({ url, redis } = await freshDb(DB + 1));
    [cadent, celery] = await Promise.all([
      startCadentWorker({ redisUrl: url, queues: [queue], concurrency: 2, prefetchMultiplier: 1 }),
      startCeleryWorker({
        venv: inject("venv"),
        app: "interop_app",
        brokerUrl: url,
        queues: [queue],
        concurrency: 2,
        logDir: `${inject("workDir")}/logs`,
        env: { CADENT_PREFETCH: "1" },
      }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([cadent?.process.stop(30_000), celery?.stop()]);
    redis?.disconnect();
  });

  it("share the work: every task succeeds once, and both kinds of worker ran some", async () => {
    const outcomes = await celeryClient(
      url,
      Array.from({ length: 24 }, () => ({ name: "app.tasks.nap", args: [0.2], queue })),
    );
    expect(outcomes.map((o) => o.state)).toEqual(Array(24).fill("SUCCESS"));
    const ranBy = new Set(
      outcomes.map((o) => ("result" in o ? (o.result as { hostname: string }).hostname : "")),
    );
    expect(ranBy).toEqual(new Set([cadent.hostname, celery.hostname]));
    expect(await redis.hlen("unacked")).toBe(0);
    for (const outcome of outcomes) await waitForStatus(redis, outcome.id, ["SUCCESS"]);
  });
});
