/**
 * The commands a real cadent worker sends, as Redis's MONITOR sees them, against what kombu and
 * Celery send (vectors w02, w03, w05, w06): the books must be kept the same way for Python and
 * cadent workers to restore each other's messages.
 */
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  UNACKED_INDEX_KEY,
  UNACKED_KEY,
  UNACKED_MUTEX_KEY,
  encodeTaskMessage,
  encodeUnackedEntry,
  resultKey,
} from "../../src/celery/index.ts";
import { waitFor } from "../support/ports.ts";
import { freshDb, startCadentWorker, uniqueQueue, waitForStatus } from "./worker-support.ts";
import type { CadentWorker } from "./worker-support.ts";

const DB = 14;
/** kombu's separator as MONITOR prints it. */
const SEP = String.raw`\x06\x16`;

type Command = string[];

describe("the commands a cadent worker sends (MONITOR)", () => {
  let url: string;
  let redis: Redis;
  let monitor: Redis;
  let worker: CadentWorker;
  /** Commands from clients, names in lower case; MONITOR shows \x06\x16 as that escape text. */
  const commands: Command[] = [];
  /** Commands run by Lua scripts. */
  const scripted: Command[] = [];
  const queue = uniqueQueue("wire");
  const stale = { id: randomUUID(), tag: randomUUID() };

  beforeAll(async () => {
    ({ url, redis } = await freshDb(DB));
    // A message a dead worker left unacknowledged two hours ago, for the start-up restore.
    const left = encodeTaskMessage({
      task: "app.tasks.add",
      id: stale.id,
      args: [1, 1],
      queue,
      now: new Date(),
      deliveryTag: stale.tag,
    });
    await redis
      .multi()
      .zadd(UNACKED_INDEX_KEY, Date.now() / 1000 - 7200, stale.tag)
      .hset(
        UNACKED_KEY,
        stale.tag,
        encodeUnackedEntry({ envelope: left.envelope, exchange: "", routingKey: queue }),
      )
      .exec();
    monitor = await new Redis(url).monitor();
    monitor.on("monitor", (_time: string, args: string[], source: string, database: string) => {
      if (database !== String(DB)) return;
      const [name = "", ...rest] = args.map((a) => a.toString());
      (source === "lua" ? scripted : commands).push([name.toLowerCase(), ...rest]);
    });
    worker = await startCadentWorker({ redisUrl: url, queues: [queue, "other"], concurrency: 1 });
    await waitForStatus(redis, stale.id, ["SUCCESS"]);
  });
  afterAll(async () => {
    await worker?.process.stop(30_000);
    monitor?.disconnect();
    redis?.disconnect();
  });

  /** The first run of commands starting with `first` and continuing with the given names. */
  function sequence(...names: string[]): Command[] {
    for (let i = 0; i < commands.length; i++) {
      const run = commands.slice(i, i + names.length);
      if (run.map((c) => c[0]).join(" ") === names.join(" ").toLowerCase()) return run;
    }
    throw new Error(`no ${names.join(" ")} in:\n${commands.map((c) => c.slice(0, 3).join(" ")).join("\n")}`);
  }

  it("declares the queue bindings at start, as Celery's worker does (w06)", () => {
    expect(commands).toContainEqual(["sadd", `_kombu.binding.${queue}`, `${queue}${SEP}${SEP}${queue}`]);
  });

  it("restores at start under unacked_mutex, with kombu's WATCH transaction, then releases the lock (w05, w03)", () => {
    const [set, range] = sequence("SET", "ZREVRANGEBYSCORE");
    expect(set?.slice(0, 2)).toEqual(["set", UNACKED_MUTEX_KEY]);
    expect(set?.slice(3)).toEqual(["PX", "300000", "NX"]);
    expect(range?.slice(0, 2)).toEqual(["zrevrangebyscore", UNACKED_INDEX_KEY]);
    expect(range?.slice(3)).toEqual(["0", "WITHSCORES"]);
    const restore = sequence("WATCH", "HGET", "MULTI", "ZREM", "HDEL", "RPUSH", "EXEC");
    expect(restore.map((c) => c.slice(0, 3))).toEqual([
      ["watch", UNACKED_KEY],
      ["hget", UNACKED_KEY, stale.tag],
      ["multi"],
      ["zrem", UNACKED_INDEX_KEY, stale.tag],
      ["hdel", UNACKED_KEY, stale.tag],
      ["rpush", queue, expect.stringContaining('"redelivered": true') as string],
      ["exec"],
    ]);
    const release = commands.find((c) => c[0] === "eval" && c[1]?.includes("redis.call('del', KEYS[1])"));
    expect(release?.slice(2)).toEqual(["1", UNACKED_MUTEX_KEY, set?.[2]]);
  });

  it("pops the lanes in kombu's order", () => {
    const pop = commands.find((c) => c[0] === "blmpop" || c[0] === "brpop");
    const keys = [
      queue,
      "other",
      ...[3, 6, 9].flatMap((step) => [`${queue}${SEP}${step}`, `other${SEP}${step}`]),
    ];
    if (pop?.[0] === "brpop") expect(pop.slice(1)).toEqual([...keys, "1"]);
    else expect(pop?.slice(1)).toEqual(["1", "8", ...keys, "RIGHT", "COUNT", "4"]);
  });

  it("records a delivered message as kombu does, and acks it with the result in one transaction (w02)", async () => {
    const id = randomUUID();
    const tag = randomUUID();
    const message = encodeTaskMessage({
      task: "app.tasks.add",
      id,
      args: [2, 2],
      queue,
      now: new Date(),
      deliveryTag: tag,
    });
    commands.length = 0;
    scripted.length = 0;
    const before = Date.now() / 1000;
    await redis.lpush(message.key, message.text);
    await waitForStatus(redis, id, ["SUCCESS"]);
    const after = Date.now() / 1000;
    await waitFor("the ack", async () => commands.some((c) => c[0] === "hdel" && c.includes(tag)));

    const [, zadd, hset] = sequence("MULTI", "ZADD", "HSET", "EXEC");
    expect(zadd?.[1]).toBe(UNACKED_INDEX_KEY);
    expect(zadd?.[3]).toBe(tag);
    // The score is the delivery time, Python's time.time().
    expect(Number(zadd?.[2])).toBeGreaterThanOrEqual(before);
    expect(Number(zadd?.[2])).toBeLessThanOrEqual(after);
    expect(hset?.slice(0, 3)).toEqual(["hset", UNACKED_KEY, tag]);
    expect(JSON.parse(hset?.[3] ?? "null")).toEqual([message.envelope, "", queue]);

    const commit = sequence("MULTI", "EVAL", "ZREM", "HDEL", "EXEC");
    expect(commit[1]?.slice(2, 4)).toEqual(["1", resultKey(id)]);
    expect(commit[2]).toEqual(["zrem", UNACKED_INDEX_KEY, tag]);
    expect(commit[3]).toEqual(["hdel", UNACKED_KEY, tag]);
    // Inside the script: Celery's result write.
    expect(scripted.filter((c) => c[1] === resultKey(id)).map((c) => c.slice(0, 3))).toEqual([
      ["get", resultKey(id)],
      ["setex", resultKey(id), "86400"],
      ["publish", resultKey(id), expect.stringContaining('"status": "SUCCESS"') as string],
    ]);
  });
});
