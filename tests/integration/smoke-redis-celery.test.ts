import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, describe, expect, inject, it } from "vitest";
import { startCeleryWorker, type CeleryWorker } from "../support/celery.ts";
import { waitFor } from "../support/ports.ts";
import { readVector } from "../support/vectors.ts";

describe("the test Redis and Celery are real", () => {
  const redis = new Redis(inject("redisUrl"));
  const workers: CeleryWorker[] = [];
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    redis.disconnect();
  });

  it("hands a pushed value to BRPOP, in FIFO order", async () => {
    const key = `smoke:${randomUUID()}`;
    await redis.lpush(key, "first", "second");
    expect(await redis.brpop(key, 1)).toEqual([key, "first"]);
    expect(await redis.brpop(key, 1)).toEqual([key, "second"]);
  });

  it("runs, in a real Python Celery worker, a message crafted from h01 and pushed by TypeScript", async () => {
    const queue = `smoke-${randomUUID().slice(0, 8)}`;
    const id = randomUUID();
    const vector = readVector("h01_minimal_v2_base64");
    const envelope = structuredClone(vector.envelope) as {
      headers: Record<string, unknown>;
      properties: { delivery_tag: string; delivery_info: { routing_key: string } };
    };
    envelope.headers.id = id;
    envelope.properties.delivery_tag = randomUUID();
    envelope.properties.delivery_info.routing_key = queue;
    await redis.lpush(queue, JSON.stringify(envelope));

    workers.push(
      await startCeleryWorker({
        venv: inject("venv"),
        app: "interop_app",
        brokerUrl: inject("redisUrl"),
        queues: [queue],
        concurrency: 1,
        logDir: `${inject("workDir")}/logs`,
      }),
    );

    let raw: string | null = null;
    await waitFor("the result under celery-task-meta-<id>", async () => {
      raw = await redis.get(`celery-task-meta-${id}`);
      return raw !== null && JSON.parse(raw).status === "SUCCESS";
    });
    const meta = JSON.parse(raw ?? "null") as {
      status: string;
      task_id: string;
      result: Record<string, unknown>;
    };
    expect(meta.task_id).toBe(id);
    expect(meta.result.args).toEqual([1, "hand"]);
    expect(meta.result.kwargs).toEqual({ k: 1 });
    expect(await redis.llen(queue)).toBe(0);
  });
});
