/**
 * Reads a task message as a Celery 5.2 worker (kombu's Redis transport) would, but never crashes on
 * one: every input gives either a validated `TaskMessage` or a `MessageDecodeError` that says what is
 * wrong and carries whatever could be read (task id, delivery tag, routing), so a worker can still
 * store a FAILURE result, acknowledge the message, or restore it.
 *
 * Where Celery itself crashes or loses the message (no properties, delivery_tag, delivery_info,
 * content-type or headers.id; a two-element body — vectors h05, h06, h14-h17), cadent refuses the
 * message with a typed error instead of accepting it: a message that kills a Python worker must not
 * look valid just because a cadent worker happened to take it.
 */
import { z } from "zod";
import { isJsonObject, parseJson } from "./json.ts";
import type { JsonObject, JsonValue } from "./json.ts";
import { BASE64_BODY_ENCODING, JSON_CONTENT_TYPE, RESERVED_HEADERS } from "./protocol.ts";
import { parseTimestamp } from "./timestamps.ts";
import type { ParsedTimestamp } from "./timestamps.ts";

export interface TaskMessage {
  /** 2 for Celery's current protocol; 1 for the old one (headers empty, everything in the body). */
  readonly protocol: 1 | 2;
  readonly id: string;
  /** The registered task name to run. */
  readonly task: string;
  /** `shadow`, the name to show in logs, or null. */
  readonly shadow: string | null;
  readonly args: JsonValue[];
  readonly kwargs: JsonObject;
  /** Workflow signatures (`callbacks`, `errbacks`, `chain`, `chord`); `{}` when absent. */
  readonly embed: JsonObject;
  readonly retries: number;
  readonly eta: ParsedTimestamp | null;
  readonly expires: ParsedTimestamp | null;
  /** Seconds, from the `timelimit` header `[hard, soft]`. */
  readonly timeLimit: { readonly hard: number | null; readonly soft: number | null };
  readonly rootId: string | null;
  readonly parentId: string | null;
  readonly group: string | null;
  readonly groupIndex: number | null;
  readonly lang: string | null;
  readonly origin: string | null;
  readonly argsrepr: string | null;
  readonly kwargsrepr: string | null;
  readonly ignoreResult: boolean;
  /**
   * False only for a protocol 1 message written with `utc: false`: its naive times are in the
   * producer's timezone, which the message does not name. cadent reads naive times as UTC.
   */
  readonly utc: boolean;
  /** Set by kombu when it restores an unacknowledged message (headers.redelivered). */
  readonly redelivered: boolean;
  /** Headers outside the protocol (`x-custom` in vector a2), in wire order. */
  readonly customHeaders: JsonObject;
  /** The headers exactly as received. */
  readonly headers: JsonObject;
  /** kombu's unacked bookkeeping key for this delivery. Not necessarily a uuid (h21). */
  readonly deliveryTag: string;
  /** `delivery_info.exchange`: "" for Celery's anonymous exchange. */
  readonly exchange: string;
  /**
   * `delivery_info.routing_key`. Consumption does not look at it (the list key decides, h20); a
   * restore pushes the message back to this queue.
   */
  readonly routingKey: string;
  /** `properties.priority` as written, or null. The lane was chosen by the list key. */
  readonly priority: number | null;
  readonly correlationId: string | null;
  readonly replyTo: string | null;
  /** The parsed envelope, for the unacked entry and restores. */
  readonly envelope: JsonObject;
}

export type MessageDecodeErrorKind =
  /** The value is not UTF-8 JSON text. */
  | "not-json"
  /** Not a JSON object, or `properties`, `delivery_tag` or `delivery_info` missing or malformed. */
  | "invalid-envelope"
  /** `content-type` missing or not application/json. The body was not deserialized. */
  | "content-disallowed"
  | "unsupported-content-encoding"
  /** Body not a string; bad base64, UTF-8 or JSON; or not `[args, kwargs, embed]` / a v1 dict. */
  | "invalid-body"
  /** No task id: nothing can be reported for this message. */
  | "missing-task-id"
  /** The task name, eta, expires, retries, timelimit or ignore_result is malformed. */
  | "invalid-headers";

export interface MessageDecodeError {
  readonly kind: MessageDecodeErrorKind;
  readonly reason: string;
  /** What was readable before the message was refused; null where unknown. */
  readonly taskId: string | null;
  readonly task: string | null;
  readonly deliveryTag: string | null;
  readonly exchange: string | null;
  readonly routingKey: string | null;
  readonly envelope: JsonObject | null;
}

export type DecodeResult = { ok: true; message: TaskMessage } | { ok: false; error: MessageDecodeError };

interface Known {
  taskId: string | null;
  task: string | null;
  deliveryTag: string | null;
  exchange: string | null;
  routingKey: string | null;
  envelope: JsonObject | null;
}

class Refusal {
  readonly kind: MessageDecodeErrorKind;
  readonly reason: string;
  constructor(kind: MessageDecodeErrorKind, reason: string) {
    this.kind = kind;
    this.reason = reason;
  }
}

/** Decodes one value popped from a queue (a string, or bytes from a Buffer-returning client). */
export function decodeTaskMessage(raw: string | Uint8Array): DecodeResult {
  const known: Known = {
    taskId: null,
    task: null,
    deliveryTag: null,
    exchange: null,
    routingKey: null,
    envelope: null,
  };
  try {
    return { ok: true, message: decode(raw, known) };
  } catch (err) {
    // Refusals are the expected path; anything else is a bug here, still reported as data.
    const refusal =
      err instanceof Refusal
        ? err
        : new Refusal("invalid-envelope", `unexpected error while decoding: ${String(err)}`);
    return { ok: false, error: { kind: refusal.kind, reason: refusal.reason, ...known } };
  }
}

const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** Encodings kombu decodes a JSON body with as UTF-8 (or does not decode at all). */
const UTF8_ENCODINGS = new Set(["utf-8", "utf8", "binary", "ascii-8bit"]);

function decode(raw: string | Uint8Array, known: Known): TaskMessage {
  let text: string;
  if (typeof raw === "string") {
    text = raw;
  } else {
    try {
      text = UTF8.decode(raw);
    } catch {
      throw new Refusal("not-json", "message is not UTF-8 text");
    }
  }
  const parsed = parseJson(text);
  if (!parsed.ok) throw new Refusal("not-json", `message is not JSON: ${parsed.reason}`);
  const envelope = parsed.value;
  if (!isJsonObject(envelope)) {
    throw new Refusal(
      "invalid-envelope",
      `message must be a JSON object (an envelope), got ${describe(envelope)}`,
    );
  }
  known.envelope = envelope;

  // Read everything that identifies the message before judging any of it.
  const headersValue = envelope["headers"];
  const headers: JsonObject | null =
    headersValue === undefined || headersValue === null
      ? {}
      : isJsonObject(headersValue)
        ? headersValue
        : null;
  if (headers !== null) {
    known.taskId = nonEmptyText(headers["id"]);
    known.task = nonEmptyText(headers["task"]);
  }
  const propertiesValue = envelope["properties"];
  const properties = isJsonObject(propertiesValue) ? propertiesValue : null;
  const deliveryInfoValue = properties?.["delivery_info"];
  const deliveryInfo = isJsonObject(deliveryInfoValue) ? deliveryInfoValue : null;
  if (deliveryInfo !== null) {
    known.exchange = typeof deliveryInfo["exchange"] === "string" ? deliveryInfo["exchange"] : null;
    known.routingKey = typeof deliveryInfo["routing_key"] === "string" ? deliveryInfo["routing_key"] : null;
  }
  known.deliveryTag = deliveryTagOf(properties?.["delivery_tag"]);
  refuseDeepNesting(text, "invalid-envelope", "message");

  if (headers === null) {
    throw new Refusal("invalid-envelope", `headers must be an object, got ${describe(headersValue)}`);
  }
  if (properties === null) {
    throw new Refusal(
      "invalid-envelope",
      propertiesValue === undefined
        ? "properties is missing: kombu reads delivery_tag and delivery_info from it (a Celery worker crashes and loses this message)"
        : `properties must be an object, got ${describe(propertiesValue)}`,
    );
  }
  if (known.deliveryTag === null) {
    throw new Refusal(
      "invalid-envelope",
      properties["delivery_tag"] === undefined
        ? "properties.delivery_tag is missing: it keys the unacked bookkeeping (a Celery worker crashes and loses this message)"
        : `properties.delivery_tag must be a non-empty string, got ${describe(properties["delivery_tag"])}`,
    );
  }
  if (deliveryInfo === null || known.exchange === null || known.routingKey === null) {
    throw new Refusal(
      "invalid-envelope",
      deliveryInfoValue === undefined
        ? 'properties.delivery_info is missing: write {"exchange": "", "routing_key": "<queue>"} (a Celery worker crashes and loses this message)'
        : 'properties.delivery_info must be {"exchange": <string>, "routing_key": <string>}',
    );
  }

  const contentType = envelope["content-type"];
  if (contentType !== JSON_CONTENT_TYPE) {
    throw new Refusal(
      "content-disallowed",
      contentType === undefined || contentType === null
        ? `content-type is missing: only ${JSON_CONTENT_TYPE} is accepted (a Celery worker crashes on this message)`
        : `content-type ${describe(contentType)} is refused: only ${JSON_CONTENT_TYPE} is accepted, other content is never deserialized`,
    );
  }
  const contentEncoding = envelope["content-encoding"];
  if (
    contentEncoding !== undefined &&
    contentEncoding !== null &&
    !(typeof contentEncoding === "string" && UTF8_ENCODINGS.has(contentEncoding.toLowerCase()))
  ) {
    throw new Refusal(
      "unsupported-content-encoding",
      `content-encoding ${describe(contentEncoding)} is not supported: write "utf-8" or leave it out`,
    );
  }

  const body = decodeBody(envelope["body"], properties["body_encoding"]);
  const message = "task" in headers ? fromProtocol2(headers, body) : fromProtocol1(headers, body, known);
  return {
    ...message,
    headers,
    deliveryTag: known.deliveryTag,
    exchange: known.exchange,
    routingKey: known.routingKey,
    priority: typeof properties["priority"] === "number" ? properties["priority"] : null,
    correlationId: nonEmptyText(properties["correlation_id"]),
    replyTo: typeof properties["reply_to"] === "string" ? properties["reply_to"] : null,
    redelivered: headers["redelivered"] === true || deliveryInfo["redelivered"] === true,
    envelope,
  };
}

function decodeBody(body: JsonValue | undefined, bodyEncoding: JsonValue | undefined): JsonValue {
  if (typeof body !== "string") {
    throw new Refusal(
      "invalid-body",
      `body must be a string holding the JSON text (base64 when properties.body_encoding is "base64"), got ${describe(body)}`,
    );
  }
  let text: string;
  if (bodyEncoding === undefined || bodyEncoding === null) {
    text = body;
  } else if (bodyEncoding === BASE64_BODY_ENCODING) {
    const compact = body.replace(/[\t\n\r ]/g, "");
    if (compact.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(compact)) {
      throw new Refusal("invalid-body", 'body is not valid base64, but properties.body_encoding is "base64"');
    }
    try {
      text = UTF8.decode(Buffer.from(compact, "base64"));
    } catch {
      throw new Refusal("invalid-body", "body is not UTF-8 text after base64 decoding");
    }
  } else {
    throw new Refusal(
      "invalid-body",
      `properties.body_encoding ${describe(bodyEncoding)} is not supported: use "base64" or leave it out`,
    );
  }
  const parsed = parseJson(text);
  if (!parsed.ok) throw new Refusal("invalid-body", `body is not JSON: ${parsed.reason}`);
  refuseDeepNesting(text, "invalid-body", "body");
  return parsed.value;
}

/**
 * How deeply a message may nest arrays and objects. Python's json stops at its recursion limit
 * (1000), so a Celery worker cannot read a deeper message; and cadent's writers (results, retries,
 * kombu's restore) recurse too, so a deeper message, once accepted, could never be restored.
 */
export const MAX_MESSAGE_NESTING = 1000;

function refuseDeepNesting(text: string, kind: MessageDecodeErrorKind, what: "message" | "body"): void {
  // A scan of the text rather than of the parsed value: no recursion, and brackets in strings skipped.
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > MAX_MESSAGE_NESTING) {
        throw new Refusal(
          kind,
          `${what} nests arrays and objects more than ${MAX_MESSAGE_NESTING} levels deep: Python's json cannot read it, and a worker could not restore it`,
        );
      }
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
}

type Decoded = Omit<
  TaskMessage,
  | "headers"
  | "deliveryTag"
  | "exchange"
  | "routingKey"
  | "priority"
  | "correlationId"
  | "replyTo"
  | "redelivered"
  | "envelope"
>;

function fromProtocol2(headers: JsonObject, body: JsonValue): Decoded {
  if (!Array.isArray(body) || body.length !== 3) {
    throw new Refusal(
      "invalid-body",
      Array.isArray(body)
        ? `body must be [args, kwargs, embed], got ${body.length} element(s) (a Celery worker crashes on this message)`
        : `body must be the array [args, kwargs, embed], got ${describe(body)}`,
    );
  }
  const [args, kwargs, embed] = body as [JsonValue, JsonValue, JsonValue];
  if (!Array.isArray(args))
    throw new Refusal("invalid-body", `args (body[0]) must be an array, got ${describe(args)}`);
  if (!isJsonObject(kwargs)) {
    throw new Refusal("invalid-body", `kwargs (body[1]) must be an object, got ${describe(kwargs)}`);
  }
  if (embed !== null && !isJsonObject(embed)) {
    throw new Refusal("invalid-body", `embed (body[2]) must be an object or null, got ${describe(embed)}`);
  }
  const fields = readRequest(headers, "headers");
  // fromEntries defines own properties, so a header named "__proto__" stays a header.
  const customHeaders: JsonObject = Object.fromEntries(
    Object.entries(headers).filter(([name]) => !RESERVED_HEADERS.has(name)),
  );
  return { protocol: 2, ...fields, args, kwargs, embed: embed ?? {}, utc: true, customHeaders };
}

function fromProtocol1(headers: JsonObject, body: JsonValue, known: Known): Decoded {
  if (!isJsonObject(body) || typeof body["task"] !== "string") {
    throw new Refusal(
      "invalid-body",
      "message is neither protocol 2 (headers.task) nor protocol 1 (a body object with task): nothing names the task to run",
    );
  }
  known.task = nonEmptyText(body["task"]);
  known.taskId = nonEmptyText(body["id"]);
  const args = body["args"] ?? [];
  const kwargs = body["kwargs"] ?? {};
  if (!Array.isArray(args))
    throw new Refusal("invalid-body", `body.args must be an array, got ${describe(args)}`);
  if (!isJsonObject(kwargs)) {
    throw new Refusal("invalid-body", `body.kwargs must be an object, got ${describe(kwargs)}`);
  }
  // Celery's proto1_to_proto2: the taskset field, when present, is the group.
  const request: JsonObject = "taskset" in body ? { ...body, group: body["taskset"] ?? null } : body;
  const fields = readRequest(request, "body");
  return {
    protocol: 1,
    ...fields,
    args,
    kwargs,
    embed: {
      callbacks: body["callbacks"] ?? null,
      errbacks: body["errbacks"] ?? null,
      chain: null,
      chord: body["chord"] ?? null,
    },
    utc: body["utc"] === undefined || body["utc"] === true,
    customHeaders: headers,
  };
}

// Fields a worker acts on are validated; a wrong one refuses the message. Display-only fields
// (origin, argsrepr, ...) are read as null when mistyped: Celery does not look at them either.
const lenientText = z
  .string()
  .nullish()
  .catch(null)
  .transform((v) => v ?? null);

const timestamp = z
  .string({ error: "must be an ISO-8601 string or null" })
  .nullish()
  .transform((text, ctx): ParsedTimestamp | null => {
    // Celery treats an empty string like null (maybe_iso8601).
    if (text === undefined || text === null || text === "") return null;
    const parsed = parseTimestamp(text);
    if (parsed.ok) return parsed.value;
    ctx.issues.push({ code: "custom", message: parsed.reason, input: text });
    return z.NEVER;
  });

const seconds = z.number({ error: "must be a number of seconds or null" }).nonnegative().nullable();

const requestSchema = z.object({
  task: z.string({ error: "must be the task name" }).min(1, { error: "must be the task name" }),
  retries: z
    .int({ error: "must be a non-negative integer" })
    .nonnegative({ error: "must be a non-negative integer" })
    .nullish()
    .transform((v) => v ?? 0),
  eta: timestamp,
  expires: timestamp,
  timelimit: z
    .tuple([seconds, seconds], { error: "must be [hard, soft] in seconds" })
    .nullish()
    .transform((v) => ({ hard: v?.[0] ?? null, soft: v?.[1] ?? null })),
  ignore_result: z
    .boolean({ error: "must be true or false" })
    .nullish()
    .transform((v) => v ?? false),
  shadow: lenientText,
  root_id: lenientText,
  parent_id: lenientText,
  group: lenientText,
  group_index: z
    .int()
    .nullish()
    .catch(null)
    .transform((v) => v ?? null),
  lang: lenientText,
  origin: lenientText,
  argsrepr: lenientText,
  kwargsrepr: lenientText,
});

type RequestFields = Pick<
  Decoded,
  | "id"
  | "task"
  | "shadow"
  | "retries"
  | "eta"
  | "expires"
  | "timeLimit"
  | "rootId"
  | "parentId"
  | "group"
  | "groupIndex"
  | "lang"
  | "origin"
  | "argsrepr"
  | "kwargsrepr"
  | "ignoreResult"
>;

function readRequest(request: JsonObject, where: "headers" | "body"): RequestFields {
  const id = nonEmptyText(request["id"]);
  if (id === null) {
    throw new Refusal(
      "missing-task-id",
      request["id"] === undefined
        ? `${where}.id is missing: the task id names the result (a Celery worker crashes on this message)`
        : `${where}.id must be a non-empty string, got ${describe(request["id"])}`,
    );
  }
  const parsed = requestSchema.safeParse(request);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue === undefined ? "" : issue.path.map(String).join(".");
    throw new Refusal("invalid-headers", `${where}.${path}: ${issue?.message ?? "invalid"}`);
  }
  const f = parsed.data;
  return {
    id,
    task: f.task,
    shadow: f.shadow,
    retries: f.retries,
    eta: f.eta,
    expires: f.expires,
    timeLimit: f.timelimit,
    rootId: f.root_id,
    parentId: f.parent_id,
    group: f.group,
    groupIndex: f.group_index,
    lang: f.lang,
    origin: f.origin,
    argsrepr: f.argsrepr,
    kwargsrepr: f.kwargsrepr,
    ignoreResult: f.ignore_result,
  };
}

function nonEmptyText(value: JsonValue | undefined): string | null {
  return typeof value === "string" && value.length > 0 ? value : null;
}

/** kombu uses the tag as a hash field and zset member; redis-py writes a number as its digits. */
function deliveryTagOf(value: JsonValue | undefined): string | null {
  if (typeof value === "string") return value.length > 0 ? value : null;
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  return null;
}

function describe(value: JsonValue | undefined): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  if (typeof value === "string")
    return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  return `${typeof value} ${String(value)}`;
}
