/** Names and values fixed by Celery's message protocol v2 and kombu's Redis transport. */

/** The only content type cadent writes and accepts; anything else is never deserialized. */
export const JSON_CONTENT_TYPE = "application/json";
export const UTF8_CONTENT_ENCODING = "utf-8";
export const BASE64_BODY_ENCODING = "base64";
/** AMQP "persistent"; the Redis transport ignores it, Celery writes it anyway. */
export const PERSISTENT_DELIVERY_MODE = 2;
/** Celery's default queue (and routing key). */
export const DEFAULT_QUEUE = "celery";

/** The headers Celery's `as_task_v2` writes, in its order. Custom headers follow these. */
export const PROTOCOL_HEADERS = [
  "lang",
  "task",
  "id",
  "shadow",
  "eta",
  "expires",
  "group",
  "group_index",
  "retries",
  "timelimit",
  "root_id",
  "parent_id",
  "argsrepr",
  "kwargsrepr",
  "origin",
  "ignore_result",
] as const;

/**
 * Header names a custom header may not use: the protocol's own, and those Celery or kombu add on the
 * way (`redelivered` on a restore; `meth`, `stamps` and `stamped_headers` in other Celery versions).
 */
export const RESERVED_HEADERS: ReadonlySet<string> = new Set<string>([
  ...PROTOCOL_HEADERS,
  "redelivered",
  "meth",
  "stamps",
  "stamped_headers",
  "replaced_task_nesting",
]);
