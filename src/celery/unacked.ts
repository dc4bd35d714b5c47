/**
 * kombu's acknowledgement emulation on Redis (vectors w02-w05), as pure helpers for a worker.
 *
 * On delivery (right after BRPOP): MULTI; ZADD unacked_index <unackedScore(now)> <tag>;
 * HSET unacked <tag> <encodeUnackedEntry(...)>; EXEC.
 * On ack: MULTI; ZREM unacked_index <tag>; HDEL unacked <tag>; EXEC.
 * restore_visible: SET unacked_mutex <token> PX 300000 NX (skip if held);
 * ZREVRANGEBYSCORE unacked_index <restoreCeiling(now, visibility)> 0 WITHSCORES; then for each tag:
 * WATCH unacked; HGET unacked <tag>; MULTI; ZREM; HDEL; RPUSH <restoreTarget queue>
 * <encodeRestoredMessage(...)>; EXEC; finally release the mutex with RELEASE_MUTEX_SCRIPT.
 * Restores go to the base queue key (the priority lane is lost) and with RPUSH, so the restored
 * message is the next one popped.
 */
import { isJsonObject, parseJson, pythonJsonDumps } from "./json.ts";
import type { JsonObject } from "./json.ts";
import { bindingKey } from "./bindings.ts";

export const UNACKED_KEY = "unacked";
export const UNACKED_INDEX_KEY = "unacked_index";
export const UNACKED_MUTEX_KEY = "unacked_mutex";
/** How long restore_visible's lock lives (redis-py Lock timeout 300 s). */
export const UNACKED_MUTEX_EXPIRE_MS = 300_000;
/** kombu's default `visibility_timeout`: an unacked message older than this is delivered again. */
export const DEFAULT_VISIBILITY_TIMEOUT_SECONDS = 3600;

/** redis-py's Lock release: delete the key only if it still holds our token. */
export const RELEASE_MUTEX_SCRIPT = `
local token = redis.call('get', KEYS[1])
if not token or token ~= ARGV[1] then
    return 0
end
redis.call('del', KEYS[1])
return 1
`;

/** The `unacked` hash value: `json.dumps([envelope, exchange, routing_key])`. */
export interface UnackedEntry {
  readonly envelope: JsonObject;
  readonly exchange: string;
  readonly routingKey: string;
}

export function encodeUnackedEntry(entry: UnackedEntry): string {
  return pythonJsonDumps([entry.envelope, entry.exchange, entry.routingKey]);
}

export type UnackedEntryDecodeResult = { ok: true; entry: UnackedEntry } | { ok: false; reason: string };

export function decodeUnackedEntry(text: string): UnackedEntryDecodeResult {
  const parsed = parseJson(text);
  if (!parsed.ok) return { ok: false, reason: `unacked entry is not JSON: ${parsed.reason}` };
  const value = parsed.value;
  if (!Array.isArray(value) || value.length !== 3) {
    return { ok: false, reason: "unacked entry must be [envelope, exchange, routing_key]" };
  }
  const [envelope, exchange, routingKey] = value;
  if (!isJsonObject(envelope)) return { ok: false, reason: "unacked entry's envelope must be an object" };
  // kombu stores whatever delivery_info held; null exchange or routing key behave like "".
  if (!isTextOrNull(exchange) || !isTextOrNull(routingKey)) {
    return { ok: false, reason: "unacked entry's exchange and routing key must be strings" };
  }
  return { ok: true, entry: { envelope, exchange: exchange ?? "", routingKey: routingKey ?? "" } };
}

function isTextOrNull(value: unknown): value is string | null {
  return value === null || typeof value === "string";
}

/** The `unacked_index` score: the delivery time in seconds, as Python's `time.time()`. */
export function unackedScore(now: Date): number {
  return now.getTime() / 1000;
}

/** The highest score restore_visible restores: entries delivered more than the timeout ago. */
export function restoreCeiling(
  now: Date,
  visibilityTimeoutSeconds = DEFAULT_VISIBILITY_TIMEOUT_SECONDS,
): number {
  return unackedScore(now) - visibilityTimeoutSeconds;
}

/**
 * The envelope as kombu restores it: `headers.redelivered = true`, then
 * `properties.delivery_info.redelivered = true`, in place (existing keys keep their position, new
 * ones go last). kombu gives up on the flags at the first missing part; so does this. Returns a copy.
 */
export function restoredEnvelope(envelope: JsonObject): JsonObject {
  const copy = structuredClone(envelope);
  const headers = copy["headers"];
  if (!isJsonObject(headers)) return copy;
  headers["redelivered"] = true;
  const properties = copy["properties"];
  const deliveryInfo = isJsonObject(properties) ? properties["delivery_info"] : undefined;
  if (isJsonObject(deliveryInfo)) deliveryInfo["redelivered"] = true;
  return copy;
}

/** The text a restore RPUSHes (vectors w03, w04). */
export function encodeRestoredMessage(envelope: JsonObject): string {
  return pythonJsonDumps(restoredEnvelope(envelope));
}

export type RestoreTarget =
  /** Push back onto this list (the base queue key, not a priority lane). */
  | { readonly kind: "queue"; readonly queue: string }
  /** Published to a named exchange: route through its binding set (see bindings.ts). */
  | {
      readonly kind: "exchange";
      readonly exchange: string;
      readonly routingKey: string;
      readonly bindingKey: string;
    }
  /** kombu would push to no list and log "Could not restore message": the message is lost. */
  | { readonly kind: "unroutable"; readonly reason: string };

/** Where kombu's `_lookup` sends a restored message. */
export function restoreTarget(exchange: string, routingKey: string): RestoreTarget {
  if (exchange === "") {
    return routingKey === ""
      ? { kind: "unroutable", reason: "anonymous exchange and empty routing key: no queue to restore to" }
      : { kind: "queue", queue: routingKey };
  }
  return { kind: "exchange", exchange, routingKey, bindingKey: bindingKey(exchange) };
}
