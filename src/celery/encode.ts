/**
 * The task message a Celery producer (`app.send_task`) LPUSHes, built field for field and in the key
 * order Celery writes (vectors a_default_queue, a2_…, b_…): protocol v2, JSON serializer, base64 body,
 * anonymous exchange with the queue name as routing key.
 */
import { randomUUID } from "node:crypto";
import { pythonJsonDumps } from "./json.ts";
import type { JsonObject, ReadonlyJsonObject, ReadonlyJsonValue } from "./json.ts";
import { MAX_PRIORITY, MIN_PRIORITY, queueKey } from "./lanes.ts";
import {
  BASE64_BODY_ENCODING,
  JSON_CONTENT_TYPE,
  PERSISTENT_DELIVERY_MODE,
  RESERVED_HEADERS,
  UTF8_CONTENT_ENCODING,
} from "./protocol.ts";
import { argsRepr, kwargsRepr } from "./saferepr.ts";
import { formatTimestamp, precise } from "./timestamps.ts";
import type { TimeInput } from "./timestamps.ts";

/** The workflow part of the body: signatures to run after the task. cadent sends none. */
export interface EmbedInput {
  readonly callbacks?: ReadonlyJsonValue;
  readonly errbacks?: ReadonlyJsonValue;
  readonly chain?: ReadonlyJsonValue;
  readonly chord?: ReadonlyJsonValue;
}

export interface TaskMessageInput {
  /** The registered task name (`headers.task`). */
  readonly task: string;
  /** The task id: the result key's suffix and the correlation id. */
  readonly id: string;
  readonly args?: readonly ReadonlyJsonValue[];
  readonly kwargs?: ReadonlyJsonObject;
  /** The queue, which is also the routing key on the anonymous exchange. */
  readonly queue: string;
  /** 0..9; on Redis the lower number is consumed first. Chooses the list key (see lanes.ts). */
  readonly priority?: number;
  /** Not before this time. Keep it short: a worker holds ETA messages unacked until due. */
  readonly eta?: TimeInput | null;
  /** A worker that receives or starts the task after this time revokes it (REVOKED, "expired"). */
  readonly expires?: TimeInput | null;
  /**
   * The time of publishing. Celery derives `properties.expiration` (milliseconds until `expires`)
   * from it; the Redis transport ignores that property, but it is part of what Celery writes.
   */
  readonly now: Date;
  readonly retries?: number;
  /** Seconds; the `timelimit` header is `[hard, soft]`. */
  readonly timeLimit?: { readonly hard?: number | null; readonly soft?: number | null };
  /** Another name for the task in logs. */
  readonly shadow?: string | null;
  readonly group?: string | null;
  readonly groupIndex?: number | null;
  /** Defaults to the task's own id, as Celery does for a task without a parent. */
  readonly rootId?: string | null;
  readonly parentId?: string | null;
  /** The producer's node name (Celery writes `gen<pid>@<host>`). */
  readonly origin?: string;
  /** The producer's language; Celery writes "py". */
  readonly lang?: string;
  readonly ignoreResult?: boolean;
  /** The client's reply queue; unused with the Redis result backend. */
  readonly replyTo?: string;
  /** Custom headers, written after the protocol's own. They may not reuse a protocol header name. */
  readonly headers?: ReadonlyJsonObject;
  readonly embed?: EmbedInput;
  /** Overrides for the display texts; by default they are rendered like Celery's saferepr. */
  readonly argsrepr?: string;
  readonly kwargsrepr?: string;
  /** Any unique string; a fresh uuid4 by default. kombu's unacked bookkeeping is keyed by it. */
  readonly deliveryTag?: string;
  /**
   * Properties some Celery paths add after `reply_to` (a worker's retry adds
   * `replaced_task_nesting` and `origin`, vector w01).
   */
  readonly extraProperties?: ReadonlyJsonObject;
}

export interface EncodedTaskMessage {
  /** The Redis list to LPUSH onto: the queue, or its priority lane. */
  readonly key: string;
  /** The exact value to push. */
  readonly text: string;
  readonly envelope: JsonObject;
}

/**
 * Builds the message Celery's producer would write for the same call. Throws a TypeError or
 * RangeError, naming the field, when the input cannot make a valid message: these are programming or
 * validation errors upstream, not conditions to handle at run time.
 */
export function encodeTaskMessage(input: TaskMessageInput): EncodedTaskMessage {
  requireText("task", input.task);
  requireText("id", input.id);
  requireText("queue", input.queue);
  const priority = input.priority ?? 0;
  if (!Number.isInteger(priority) || priority < MIN_PRIORITY || priority > MAX_PRIORITY) {
    throw new RangeError(`priority must be an integer from 0 to 9, got ${String(priority)}`);
  }
  const retries = input.retries ?? 0;
  if (!Number.isInteger(retries) || retries < 0) {
    throw new RangeError(`retries must be a non-negative integer, got ${String(retries)}`);
  }
  const hard = optionalSeconds("timeLimit.hard", input.timeLimit?.hard);
  const soft = optionalSeconds("timeLimit.soft", input.timeLimit?.soft);
  const custom = input.headers ?? {};
  for (const name of Object.keys(custom)) {
    if (RESERVED_HEADERS.has(name)) {
      throw new TypeError(
        `custom header "${name}" would replace a Celery protocol header; choose another name`,
      );
    }
  }
  const args = input.args ?? [];
  const kwargs = input.kwargs ?? {};
  const embed = input.embed ?? {};

  const bodyText = pythonJsonDumps([
    args,
    kwargs,
    {
      callbacks: embed.callbacks ?? null,
      errbacks: embed.errbacks ?? null,
      chain: embed.chain ?? null,
      chord: embed.chord ?? null,
    },
  ]);

  const headers: JsonObject = {
    lang: input.lang ?? "ts",
    task: input.task,
    id: input.id,
    shadow: input.shadow ?? null,
    eta: input.eta ? formatTimestamp(input.eta) : null,
    expires: input.expires ? formatTimestamp(input.expires) : null,
    group: input.group ?? null,
    group_index: input.groupIndex ?? null,
    retries,
    timelimit: [hard, soft],
    root_id: input.rootId || input.id,
    parent_id: input.parentId ?? null,
    argsrepr: input.argsrepr ?? argsRepr(args),
    kwargsrepr: input.kwargsrepr ?? kwargsRepr(kwargs),
    origin: input.origin ?? "cadent",
    ignore_result: input.ignoreResult ?? false,
    ...toMutable(custom),
  };

  const properties: JsonObject = {
    correlation_id: input.id,
    reply_to: input.replyTo ?? "",
    ...toMutable(input.extraProperties ?? {}),
    delivery_mode: PERSISTENT_DELIVERY_MODE,
  };
  if (input.expires) properties["expiration"] = expirationMs(input.expires, input.now);
  properties["delivery_info"] = { exchange: "", routing_key: input.queue };
  properties["priority"] = priority;
  properties["body_encoding"] = BASE64_BODY_ENCODING;
  properties["delivery_tag"] = input.deliveryTag ?? randomUUID();

  const envelope: JsonObject = {
    body: Buffer.from(bodyText, "utf8").toString("base64"),
    "content-encoding": UTF8_CONTENT_ENCODING,
    "content-type": JSON_CONTENT_TYPE,
    headers,
    properties,
  };
  return { key: queueKey(input.queue, priority), text: pythonJsonDumps(envelope), envelope };
}

/** kombu's `str(int(seconds * 1000))`, never negative (Celery clamps a past `expires` to 0). */
function expirationMs(expires: TimeInput, now: Date): string {
  const at = precise(expires);
  const atMicros = Math.floor(at.date.getTime() / 1000) * 1_000_000 + at.microsecond;
  const nowMicros = now.getTime() * 1000;
  return String(Math.max(0, Math.trunc((atMicros - nowMicros) / 1000)));
}

function requireText(field: string, value: string): void {
  if (typeof value !== "string" || value.length === 0) {
    throw new TypeError(`${field} must be a non-empty string`);
  }
}

function optionalSeconds(field: string, value: number | null | undefined): number | null {
  if (value === undefined || value === null) return null;
  if (!Number.isFinite(value) || value <= 0) {
    throw new RangeError(`${field} must be a positive number of seconds, got ${String(value)}`);
  }
  return value;
}

/** The encoder only copies JSON values into the envelope; it never mutates them. */
function toMutable(value: ReadonlyJsonObject): JsonObject {
  return value as JsonObject;
}
