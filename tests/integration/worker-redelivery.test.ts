/**
 * At-least-once delivery across kill -9, through kombu's unacked bookkeeping: a killed worker's
 * message is restored after the visibility timeout and runs again on another worker — cadent or
 * Python Celery, in both directions — and ends with one SUCCESS.
 */
import type { Redis } from "ioredis";
import { afterEach, describe, expect, inject, it } from "vitest";
import { UNACKED_INDEX_KEY, UNACKED_KEY } from "../../src/celery/index.ts";
import { startCeleryWorker } from "../support/celery.ts";
import { waitFor } from "../support/ports.ts";
import type { TrackedProcess } from "../support/processes.ts";
import { celeryClient, freshDb, startCadentWorker, uniqueQueue, waitForStatus } from "./worker-support.ts";

/** Short enough for a test, long enough that a live worker's refresh keeps its own messages. */
const VISIBILITY_TIMEOUT_SECONDS = 2;

const started: TrackedProcess[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((p) => p.stop(30_000)));
});

async function cadent(url: string, queue: string) {
  const worker = await startCadentWorker({
    redisUrl: url,
    queues: [queue],
    concurrency: 1,
    visibilityTimeoutSeconds: VISIBILITY_TIMEOUT_SECONDS,
  });
  started.push(worker.process);
  return worker;
}

async function python(url: string, queue: string) {
  const worker = await startCeleryWorker({
    venv: inject("venv"),
    app: "interop_app",
    brokerUrl: url,
    queues: [queue],
    concurrency: 1,
    logDir: `${inject("workDir")}/logs`,
    env: { CADENT_VISIBILITY_TIMEOUT: String(VISIBILITY_TIMEOUT_SECONDS), CADENT_PREFETCH: "1" },
  });
  started.push(worker.process);
  return worker;
}

/** Sends `nap(seconds)` recording into `list`, and waits until `hostname` has started it. */
async function napStartedOn(url: string, redis: Redis, queue: string, list: string, hostname: string) {
  const [sent] = await celeryClient(
    url,
    [{ name: "app.tasks.nap", args: [5], kwargs: { record: list }, queue }],
    {
      wait: false,
    },
  );
  if (sent === undefined) throw new Error("nothing sent");
  await waitFor(`nap to start on ${hostname}`, async () =>
    (await redis.lrange(list, 0, -1)).includes(`start:${hostname}`),
  );
  return sent.id;
}

/** Waits until every unacked entry is older than the visibility timeout (its holder is dead). */
async function waitUntilStale(redis: Redis): Promise<void> {
  await waitFor("the unacked entry to pass the visibility timeout", async () => {
    const [tag, score] = await redis.zrange(UNACKED_INDEX_KEY, 0, 0, "WITHSCORES");
    return tag !== undefined && Date.now() / 1000 - Number(score) > VISIBILITY_TIMEOUT_SECONDS + 0.5;
  });
}

describe("a message whose worker was killed with SIGKILL mid-task", () => {
  it("runs again on another cadent worker after the visibility timeout, and ends SUCCESS once", async () => {
    const { url, redis } = await freshDb(11);
    const queue = uniqueQueue("kill9");
    const list = `${queue}:log`;
    const first = await cadent(url, queue);
    const id = await napStartedOn(url, redis, queue, list, first.hostname);
    await first.process.kill();
    expect(await redis.hlen(UNACKED_KEY)).toBe(1);

    const second = await cadent(url, queue);
    const meta = await waitForStatus(redis, id, ["SUCCESS"], 60_000);
    expect(meta.result).toMatchObject({ hostname: second.hostname });
    expect(await redis.lrange(list, 0, -1)).toEqual([
      `start:${first.hostname}`,
      `start:${second.hostname}`,
      `done:${second.hostname}`,
    ]);
    expect(
      second
        .logs()
        .some((l) => l["msg"] === "restored messages left unacknowledged longer than the visibility timeout"),
    ).toBe(true);
    await waitFor("the ack", async () => (await redis.hlen(UNACKED_KEY)) === 0);
    expect(await redis.zcard(UNACKED_INDEX_KEY)).toBe(0);
    redis.disconnect();
  });

  it("is restored by a Python Celery worker when a cadent worker was killed (kombu-compatible books)", async () => {
    const { url, redis } = await freshDb(12);
    const queue = uniqueQueue("cadent-to-py");
    const list = `${queue}:log`;
    const first = await cadent(url, queue);
    const id = await napStartedOn(url, redis, queue, list, first.hostname);
    await first.process.kill();
    // Celery restores at start and then only every 100 s: start it once the entry is stale.
    await waitUntilStale(redis);

    const celery = await python(url, queue);
    const meta = await waitForStatus(redis, id, ["SUCCESS"], 60_000);
    expect(meta.result).toMatchObject({ hostname: celery.hostname });
    expect(await redis.lrange(list, 0, -1)).toEqual([
      `start:${first.hostname}`,
      `start:${celery.hostname}`,
      `done:${celery.hostname}`,
    ]);
    redis.disconnect();
  });

  it("is restored by a cadent worker when a Python Celery worker (acks_late) was killed", async () => {
    const { url, redis } = await freshDb(13);
    const queue = uniqueQueue("py-to-cadent");
    const list = `${queue}:log`;
    const celery = await python(url, queue);
    const id = await napStartedOn(url, redis, queue, list, celery.hostname);
    await celery.process.kill();
    expect(await redis.hlen(UNACKED_KEY)).toBe(1);

    const second = await cadent(url, queue);
    const meta = await waitForStatus(redis, id, ["SUCCESS"], 60_000);
    expect(meta.result).toMatchObject({ hostname: second.hostname });
    expect(await redis.lrange(list, 0, -1)).toEqual([
      `start:${celery.hostname}`,
      `start:${second.hostname}`,
      `done:${second.hostname}`,
    ]);
    await waitFor("the ack", async () => (await redis.hlen(UNACKED_KEY)) === 0);
    redis.disconnect();
  });

  it("is not restored elsewhere while its live worker runs it longer than the visibility timeout", async () => {
    const { url, redis } = await freshDb(14);
    const queue = uniqueQueue("long");
    const list = `${queue}:log`;
    const first = await cadent(url, queue);
    const other = await cadent(url, queue);
    const [sent] = await celeryClient(url, [
      { name: "app.tasks.nap", args: [5], kwargs: { record: list }, queue },
    ]);
    expect(sent).toMatchObject({ state: "SUCCESS" });
    // 5 s of work under a 2 s visibility timeout: started once, by one of the two, done once.
    const entries = await redis.lrange(list, 0, -1);
    expect(entries.filter((e) => e.startsWith("start:"))).toHaveLength(1);
    expect(entries.filter((e) => e.startsWith("done:"))).toHaveLength(1);
    expect([first.hostname, other.hostname]).toContain(
      (sent as { result: { hostname: string } }).result.hostname,
    );
    redis.disconnect();
  });
});
