/**
 * Messages that crash or silently lose a Python Celery worker (the h-vectors) against a real
 * cadent worker: each is answered with FAILURE where it names a task id, kept on the dead-letter
 * list, never run; the worker stays up and keeps running the valid messages around them.
 */
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UNACKED_KEY, encodeTaskMessage } from "../../src/celery/index.ts";
import { waitFor } from "../support/ports.ts";
import { readVector } from "../support/vectors.ts";
import { freshDb, startCadentWorker, storedResult, uniqueQueue, waitForStatus } from "./worker-support.ts";
import type { CadentWorker } from "./worker-support.ts";

interface Case {
  vector: string;
  /** Null for a message without a task id: it can only be dead-lettered. */
  excType: string | null;
  celery: string;
}

const CASES: Case[] = [
  { vector: "h05_two_element_body", excType: "DecodeError", celery: "crashes, poison loop" },
  { vector: "h06_no_content_type", excType: "ContentDisallowed", celery: "crashes, poison loop" },
  { vector: "h10_body_as_json_array_not_string", excType: "DecodeError", celery: "discards it" },
  { vector: "h14_no_delivery_info", excType: "DecodeError", celery: "crashes, message lost" },
  { vector: "h15_no_delivery_tag", excType: "DecodeError", celery: "crashes, message lost" },
  { vector: "h16_no_id_header", excType: null, celery: "crashes, poison loop" },
  { vector: "h17_no_properties", excType: "DecodeError", celery: "crashes, message lost" },
  { vector: "h19_pickle_content_type", excType: "ContentDisallowed", celery: "refuses it, no result" },
  { vector: "h09_unregistered_task", excType: "NotRegistered", celery: "FAILURE NotRegistered" },
];

/** The vector's message with a fresh task id and delivery tag, routed to `queue`. */
function variant(vector: string, queue: string): { id: string | null; text: string } {
  const envelope = structuredClone(readVector(vector)["envelope"]) as {
    headers?: Record<string, unknown>;
    properties?: { delivery_tag?: string; delivery_info?: { routing_key: string } };
  };
  let id: string | null = null;
  if (envelope.headers && "id" in envelope.headers) {
    id = randomUUID();
    envelope.headers["id"] = id;
  }
  if (envelope.properties?.delivery_tag !== undefined) envelope.properties.delivery_tag = randomUUID();
  if (envelope.properties?.delivery_info) envelope.properties.delivery_info.routing_key = queue;
  return { id, text: JSON.stringify(envelope) };
}

function valid(queue: string, n: number): { id: string; key: string; text: string } {
  const id = randomUUID();
  const { key, text } = encodeTaskMessage({
    task: "app.tasks.add",
    id,
    args: [n, n],
    queue,
    now: new Date(),
  });
  return { id, key, text };
}

describe("malformed messages against a running cadent worker", () => {
  let redis: Redis;
  let worker: CadentWorker;
  const queue = uniqueQueue("malformed");

  beforeAll(async () => {
    let url: string;
    ({ url, redis } = await freshDb(15));
    worker = await startCadentWorker({
      redisUrl: url,
      queues: [queue],
      concurrency: 1,
      prefetchMultiplier: 1,
    });
  });
  afterAll(async () => {
    await worker?.process.stop(30_000);
    redis?.disconnect();
  });

  it("answers each with FAILURE or a dead letter, and runs the valid messages between them", async () => {
    const sent = CASES.map((c) => ({ ...c, ...variant(c.vector, queue) }));
    const valids: { id: string; key: string; text: string }[] = [];
    // valid, bad, valid, bad, ... then garbage that is not JSON at all, then one more valid.
    for (const [i, c] of sent.entries()) {
      const v = valid(queue, i);
      valids.push(v);
      await redis.lpush(v.key, v.text);
      await redis.lpush(queue, c.text);
    }
    await redis.lpush(queue, "this is not a message");
    const last = valid(queue, 100);
    valids.push(last);
    await redis.lpush(last.key, last.text);

    for (const v of valids) await waitForStatus(redis, v.id, ["SUCCESS"]);
    await waitFor(
      "every malformed message on the dead-letter list",
      async () => (await redis.llen("cadent.dead-letter")) === sent.length + 1,
    );

    for (const c of sent) {
      if (c.id === null || c.excType === null) continue;
      const meta = await storedResult(redis, c.id);
      expect({
        vector: c.vector,
        status: meta?.status,
        excType: meta?.kind === "failure" ? meta.exception?.type : null,
      }).toEqual({
        vector: c.vector,
        status: "FAILURE",
        excType: c.excType,
      });
    }
    const letters = (await redis.lrange("cadent.dead-letter", 0, -1)).map(
      (l) => JSON.parse(l) as Record<string, unknown>,
    );
    expect(new Set(letters.map((l) => l["message"]))).toEqual(
      new Set([...sent.map((c) => c.text), "this is not a message"]),
    );
    expect(letters.every((l) => l["queue"] === queue && l["worker"] === worker.hostname)).toBe(true);
    expect(await redis.hlen(UNACKED_KEY)).toBe(0);
    expect(worker.process.child.exitCode).toBeNull();
  });

  it("is still alive afterwards and runs the next message", async () => {
    const v = valid(queue, 7);
    await redis.lpush(v.key, v.text);
    const meta = await waitForStatus(redis, v.id, ["SUCCESS"]);
    expect(meta.result).toBe(14);
  });
});
