import { describe, expect, it } from "vitest";
import {
  DEFAULT_VISIBILITY_TIMEOUT_SECONDS,
  RELEASE_MUTEX_SCRIPT,
  UNACKED_INDEX_KEY,
  UNACKED_KEY,
  UNACKED_MUTEX_EXPIRE_MS,
  UNACKED_MUTEX_KEY,
  decodeTaskMessage,
  decodeUnackedEntry,
  encodeRestoredMessage,
  encodeUnackedEntry,
  restoreCeiling,
  restoreTarget,
  restoredEnvelope,
  unackedScore,
} from "../../../src/celery/index.ts";
import type { JsonObject } from "../../../src/celery/index.ts";
import { field, rawOf } from "./vectors.ts";

type Command = string[];

describe("the unacked entry written on delivery (w02)", () => {
  const commands = field<Command[]>("w02_unacked_entry_on_delivery", "commands");
  const ack = field<Command[]>("w02_unacked_entry_on_delivery", "ack_commands");
  const raw = rawOf("w02_unacked_entry_on_delivery");

  it("writes [envelope, exchange, routing_key] byte for byte from the delivered message", () => {
    const envelope = (JSON.parse(raw) as [JsonObject])[0];
    const decoded = decodeTaskMessage(JSON.stringify(envelope));
    if (!decoded.ok) throw new Error(decoded.error.reason);
    const { exchange, routingKey } = decoded.message;
    expect(encodeUnackedEntry({ envelope: decoded.message.envelope, exchange, routingKey })).toBe(raw);
  });

  it("reads the entry back", () => {
    const decoded = decodeUnackedEntry(raw);
    expect(decoded.ok && [decoded.entry.exchange, decoded.entry.routingKey]).toEqual(["", "celery"]);
  });

  it("uses kombu's key names for the hash and the index, on delivery and on ack", () => {
    expect(commands.map((c) => c.slice(0, 2))).toEqual([
      ["MULTI"],
      ["ZADD", UNACKED_INDEX_KEY],
      ["HSET", UNACKED_KEY],
      ["EXEC"],
    ]);
    expect(ack.map((c) => c.slice(0, 2))).toEqual([
      ["MULTI"],
      ["ZREM", UNACKED_INDEX_KEY],
      ["HDEL", UNACKED_KEY],
      ["EXEC"],
    ]);
  });

  it("scores the index with the delivery time in seconds, as time.time()", () => {
    const score = Number(commands[1]?.[2]);
    const delivered = new Date(Math.round(score * 1000));
    expect(unackedScore(delivered)).toBeCloseTo(score, 3);
  });

  const malformed = [
    { raw: "{", reason: /not JSON/ },
    { raw: '[{}, ""]', reason: /\[envelope, exchange, routing_key\]/ },
    { raw: '[[], "", "celery"]', reason: /envelope must be an object/ },
    { raw: '[{}, 1, "celery"]', reason: /must be strings/ },
  ];
  it.each(malformed)("refuses the entry $raw", ({ raw: text, reason }) => {
    const decoded = decodeUnackedEntry(text);
    expect(decoded.ok ? "" : decoded.reason).toMatch(reason);
  });

  it("reads a null exchange and routing key as empty, as kombu's lookup treats them", () => {
    const decoded = decodeUnackedEntry("[{}, null, null]");
    expect(decoded.ok && [decoded.entry.exchange, decoded.entry.routingKey]).toEqual(["", ""]);
  });
});

/** The envelope as it was before kombu flagged it as redelivered. */
function beforeRestore(envelope: JsonObject): JsonObject {
  const copy = structuredClone(envelope);
  delete (copy["headers"] as JsonObject)["redelivered"];
  delete ((copy["properties"] as JsonObject)["delivery_info"] as JsonObject)["redelivered"];
  return copy;
}

describe("restoring unacknowledged messages", () => {
  const restores = ["w03_visibility_timeout_restore", "w04_warm_shutdown_restore_eta"];
  it.each(restores)("writes the message RPUSHed back in %s byte for byte", (name) => {
    const restored = JSON.parse(rawOf(name)) as JsonObject;
    expect(encodeRestoredMessage(beforeRestore(restored))).toBe(rawOf(name));
  });

  // The worker crashed on these, and kombu restored them at shutdown: the flags go on minimal envelopes too.
  const poison = ["h05_two_element_body", "h06_no_content_type", "h16_no_id_header"];
  it.each(poison)("restores the minimal envelope of %s as kombu did", (name) => {
    const left = field<{ keys_left: { celery: string[] } }>(name, "outcome").keys_left.celery;
    expect(encodeRestoredMessage(JSON.parse(rawOf(name)) as JsonObject)).toBe(left[0]);
  });

  it("leaves the envelope it was given untouched", () => {
    const original = JSON.parse(rawOf("a_default_queue")) as JsonObject;
    const copy = structuredClone(original);
    restoredEnvelope(original);
    expect(original).toEqual(copy);
  });

  it("gives up on the flags where kombu does: no headers, no flags at all", () => {
    const envelope: JsonObject = {
      body: "",
      properties: { delivery_info: { exchange: "", routing_key: "q" } },
    };
    expect(restoredEnvelope(envelope)).toEqual(envelope);
    const noInfo: JsonObject = { headers: {}, properties: {} };
    expect(restoredEnvelope(noInfo)).toEqual({ headers: { redelivered: true }, properties: {} });
  });

  const targets = [
    { exchange: "", routingKey: "celery", target: { kind: "queue", queue: "celery" } },
    // h20: popped from "celery", but restored to where delivery_info points.
    { exchange: "", routingKey: "elsewhere", target: { kind: "queue", queue: "elsewhere" } },
    { exchange: "", routingKey: "", target: { kind: "unroutable" } },
    {
      exchange: "reports",
      routingKey: "reports",
      target: {
        kind: "exchange",
        exchange: "reports",
        routingKey: "reports",
        bindingKey: "_kombu.binding.reports",
      },
    },
  ];
  it.each(targets)(
    "restores exchange $exchange routing key $routingKey to $target.kind",
    ({ exchange, routingKey, target }) => {
      expect(restoreTarget(exchange, routingKey)).toMatchObject(target);
    },
  );

  it("pushes a priority message back to its base queue: the lane is lost (b_priority9)", () => {
    const decoded = decodeTaskMessage(rawOf("b_priority9"));
    if (!decoded.ok) throw new Error(decoded.error.reason);
    expect(restoreTarget(decoded.message.exchange, decoded.message.routingKey)).toEqual({
      kind: "queue",
      queue: "prio",
    });
  });
});

describe("restore_visible's lock and window (w03, w05)", () => {
  const sequence = field<Command[]>("w03_visibility_timeout_restore", "observed_command_sequence");

  it("takes the mutex as kombu does", () => {
    const [set] = sequence;
    expect([set?.[0], set?.[1], set?.[3], set?.[4], set?.[5]]).toEqual([
      "SET",
      UNACKED_MUTEX_KEY,
      "PX",
      String(UNACKED_MUTEX_EXPIRE_MS),
      "NX",
    ]);
  });

  it("restores what was delivered more than the visibility timeout ago", () => {
    // w03 ran with visibility_timeout=10: the window's edge was now - 10 s, moments before the
    // restored message was delivered again (the ZADD).
    const ceiling = Number(sequence[1]?.[2]);
    const readded = Number(sequence.find((c) => c[0] === "ZADD")?.[2]);
    const now = new Date(Math.round(readded * 1000));
    expect(restoreCeiling(now, 10)).toBeCloseTo(ceiling, 1);
    expect(restoreCeiling(now)).toBeCloseTo(unackedScore(now) - DEFAULT_VISIBILITY_TIMEOUT_SECONDS, 6);
  });

  it("releases the mutex with redis-py's compare-and-delete script", () => {
    const load = field<Command[]>("w05_restore_visible_startup_sequence", "observed_command_sequence").find(
      (c) => c[0] === "SCRIPT",
    );
    const lines = (text: string) =>
      text
        .split("\n")
        .map((line) => line.trim())
        .filter((line) => line !== "");
    expect(lines(RELEASE_MUTEX_SCRIPT)).toEqual(lines(load?.[2] ?? ""));
  });
});
