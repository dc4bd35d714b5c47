/**
 * Time limits, expiry and graceful shutdown of a real cadent worker process, seen through
 * Python's Celery client and Redis.
 */
import type { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { UNACKED_KEY, decodeTaskMessage } from "../../src/celery/index.ts";
import { waitFor } from "../support/ports.ts";
import type { TrackedProcess } from "../support/processes.ts";
import {
  celeryClient,
  freshDb,
  startCadentWorker,
  storedResult,
  uniqueQueue,
  waitForStatus,
} from "./worker-support.ts";
import type { CadentWorker } from "./worker-support.ts";

describe("time limits and expiry", () => {
  let url: string;
  let redis: Redis;
  let worker: CadentWorker;
  const queue = uniqueQueue("limits");

  beforeAll(async () => {
    ({ url, redis } = await freshDb(9));
    worker = await startCadentWorker({ redisUrl: url, queues: [queue] });
  });
  afterAll(async () => {
    await worker?.process.stop(30_000);
    redis?.disconnect();
  });

  it("fails a task past its hard time limit with TimeLimitExceeded, even one that ignores its signal", async () => {
    const [stubborn] = await celeryClient(url, [
      { name: "app.tasks.stubborn", args: [30], queue, time_limit: 1 },
    ]);
    expect(stubborn).toMatchObject({
      state: "FAILURE",
      exc_type: "TimeLimitExceeded",
      exc_module: "billiard.exceptions",
      exc_args: [1],
    });
  });

  it("aborts the task's signal at the soft time limit: SoftTimeLimitExceeded", async () => {
    const [polite] = await celeryClient(url, [
      { name: "app.tasks.polite", queue, soft_time_limit: 1, time_limit: 30 },
    ]);
    expect(polite).toMatchObject({
      state: "FAILURE",
      exc_type: "SoftTimeLimitExceeded",
      exc_module: "billiard.exceptions",
    });
  });

  it("revokes a task whose expires has passed (REVOKED, TaskRevokedError 'expired'), without running it", async () => {
    const list = `${queue}:ran`;
    const [late] = await celeryClient(url, [
      { name: "app.tasks.append", args: ["ran", list], queue, expires: "2020-01-01T00:00:00+00:00" },
    ]);
    expect(late).toMatchObject({
      state: "REVOKED",
      exc_type: "TaskRevokedError",
      exc_module: "celery.exceptions",
      exc_args: ["expired"],
    });
    expect(await redis.llen(list)).toBe(0);
  });

  it("revokes a countdown task whose expires comes before its eta", async () => {
    const [late] = await celeryClient(url, [{ name: "app.tasks.whoami", queue, countdown: 2, expires: 1 }]);
    expect(late).toMatchObject({ state: "REVOKED", exc_type: "TaskRevokedError", exc_args: ["expired"] });
  });
});

describe("SIGTERM", () => {
  const started: TrackedProcess[] = [];
  afterEach(async () => {
    await Promise.all(started.splice(0).map((p) => p.stop(30_000)));
  });

  it("finishes the running task, hands back the prefetched ones, and exits 0", async () => {
    const { url, redis } = await freshDb(10);
    const queue = uniqueQueue("sigterm");
    const list = `${queue}:log`;
    // Queued before the worker starts, so its first pop reserves all four (concurrency 1 × 4).
    const sent = await celeryClient(
      url,
      [
        { name: "app.tasks.nap", args: [2], kwargs: { record: list }, queue },
        ...Array.from({ length: 3 }, () => ({ name: "app.tasks.nap", args: [0], queue })),
      ],
      { wait: false },
    );
    const worker = await startCadentWorker({
      redisUrl: url,
      queues: [queue],
      concurrency: 1,
      prefetchMultiplier: 4,
    });
    started.push(worker.process);
    await waitFor("the first task to start", async () => (await redis.llen(list)) === 1);
    expect(await redis.llen(queue)).toBe(0);

    worker.process.signal("SIGTERM");
    expect(await worker.process.exited).toBe(0);

    const [first, ...rest] = sent;
    expect((await storedResult(redis, first?.id ?? ""))?.status).toBe("SUCCESS");
    expect(await redis.lrange(list, 0, -1)).toEqual([`start:${worker.hostname}`, `done:${worker.hostname}`]);
    const requeued = (await redis.lrange(queue, 0, -1)).map((text) => decodeTaskMessage(text));
    expect(requeued.map((d) => d.ok && d.message.id).sort()).toEqual(rest.map((r) => r.id).sort());
    expect(requeued.every((d) => d.ok && d.message.redelivered)).toBe(true);
    for (const r of rest) expect(await storedResult(redis, r.id)).toBeNull();
    expect(await redis.hlen(UNACKED_KEY)).toBe(0);

    // The handed-back messages run on the next worker.
    const next = await startCadentWorker({ redisUrl: url, queues: [queue] });
    started.push(next.process);
    for (const r of rest) await waitForStatus(redis, r.id, ["SUCCESS"]);
    redis.disconnect();
  });

  it("aborts a task still running when the grace period ends and hands its message back", async () => {
    const { url, redis } = await freshDb(11);
    const queue = uniqueQueue("grace");
    const list = `${queue}:log`;
    const worker = await startCadentWorker({ redisUrl: url, queues: [queue], shutdownGraceSeconds: 1 });
    started.push(worker.process);
    const [long] = await celeryClient(
      url,
      [{ name: "app.tasks.nap", args: [60], kwargs: { record: list }, queue }],
      {
        wait: false,
      },
    );
    await waitFor("the task to start", async () => (await redis.llen(list)) === 1);

    worker.process.signal("SIGTERM");
    expect(await worker.process.exited).toBe(0);

    expect((await storedResult(redis, long?.id ?? ""))?.status).toBe("STARTED");
    const requeued = (await redis.lrange(queue, 0, -1)).map((text) => decodeTaskMessage(text));
    expect(requeued.map((d) => d.ok && [d.message.id, d.message.redelivered])).toEqual([[long?.id, true]]);
    expect(await redis.hlen(UNACKED_KEY)).toBe(0);
    expect(
      worker
        .logs()
        .some(
          (l) =>
            l["msg"] ===
            "tasks still running at the end of the grace period: aborted and handed back to their queues",
        ),
    ).toBe(true);
    redis.disconnect();
  });
});
