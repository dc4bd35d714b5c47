/**
 * Celery's wire format on Redis: task messages (protocol v2, JSON), kombu's priority lanes, bindings
 * and ack bookkeeping, and the Redis result backend. Pure functions; the Redis I/O lives with the
 * controller and the worker. docs/wire-format.md describes what is written and accepted.
 */
export * from "./bindings.ts";
export * from "./decode.ts";
export * from "./encode.ts";
export * from "./json.ts";
export * from "./lanes.ts";
export * from "./protocol.ts";
export * from "./results.ts";
export * from "./saferepr.ts";
export * from "./timestamps.ts";
export * from "./unacked.ts";
