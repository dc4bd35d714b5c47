import { hostname } from "node:os";
import type { CoreV1Api, CoreV1Event, KubernetesObject, V1ObjectReference } from "@kubernetes/client-node";
import { systemClock } from "./clock.ts";
import type { Clock } from "./clock.ts";
import { describeApiError, isNotFound } from "./errors.ts";
import { silentLogger } from "./logger.ts";
import type { Logger } from "./logger.ts";
import { mergePatchOptions } from "./status.ts";

/**
 * An Event recorder for the decisions a user wants to see in `kubectl describe`.
 *
 * Why core/v1 Events rather than events.k8s.io/v1: both APIs are views of the same stored
 * objects, so tools reading either see these; but only the core/v1 fields (count,
 * firstTimestamp, lastTimestamp, source) give every `kubectl describe` version its
 * "Age / From / 3x over 5m" columns, and the legacy core/v1 validation does not require the
 * MicroTime `eventTime`, which client-node sends with millisecond precision unless a V1MicroTime
 * is built by hand. `reportingComponent` (core/v1's name for reportingController) is
 * "cadent.dev/controller".
 *
 * Guarantees:
 * - `event()` never throws and never blocks: writes happen in the background; failures are
 *   logged and the Event dropped.
 * - Client-side aggregation: the same object + type + reason + message within `windowMs` of its
 *   previous occurrence bumps `count`/`lastTimestamp` of the existing Event instead of creating
 *   a new one, and bumps are coalesced into at most one PATCH per `flushIntervalMs` per Event.
 * - Spam filter (client-go's defaults): a bucket of 25 new Events, refilled one per 5 minutes;
 *   beyond that new Events are dropped (repeats still count). Decisions (the default) and routine
 *   Events draw on separate buckets, so routine Events can never crowd out a decision:
 *   - a decision's bucket is its involved object's (client-go's key);
 *   - a routine Event's (`{ routine: true }`: "run created", "succeeded", one or more per run)
 *     bucket is its series': the object's controller owner when it has one (every run of a
 *     PeriodicTask and the PeriodicTask itself share one), else the object. A run every few
 *     seconds then costs no Event write once the burst is spent; the runs themselves stay visible
 *     in the owner's status and as objects.
 * - Messages are capped at 1024 characters (events.k8s.io/v1's limit on `note`).
 * - `close()` flushes pending bumps and then drops further Events.
 *
 * Caveats: aggregation is per process (a new leader starts new Events); memory is bounded by
 * `maxEntries` keys, evicting the least recently seen.
 */

export const REPORTING_CONTROLLER = "cadent.dev/controller";

export type EventType = "Normal" | "Warning";

export interface EventOptions {
  /**
   * A routine step that happens on every run ("run created", "succeeded"), rather than a decision
   * a user must see (missed, skipped, replaced, failed, invalid, broker unavailable): it draws on
   * the spam-filter bucket of its series (see above). Default false.
   */
  routine?: boolean;
}

/** The two Event writes; {@link coreV1EventSink} adapts CoreV1Api. */
export interface EventSink {
  create(namespace: string, event: CoreV1Event): Promise<CoreV1Event>;
  patch(namespace: string, name: string, patch: Readonly<Record<string, unknown>>): Promise<CoreV1Event>;
}

export function coreV1EventSink(api: CoreV1Api): EventSink {
  return {
    create: (namespace, body) => api.createNamespacedEvent({ namespace, body }),
    patch: (namespace, name, body) => api.patchNamespacedEvent({ namespace, name, body }, mergePatchOptions),
  };
}

export interface EventRecorderOptions {
  sink: EventSink;
  /** Default: the hostname (at most 128 characters). */
  reportingInstance?: string;
  /** Default 10 min. */
  windowMs?: number;
  /** Default 10 s. */
  flushIntervalMs?: number;
  /** New Events per bucket (object, or series of routine Events) before the spam filter drops; default 25. */
  burst?: number;
  /** One new Event per bucket per this many ms after the burst; default 5 min. */
  refillEveryMs?: number;
  /** Default 4096. */
  maxEntries?: number;
  clock?: Clock;
  logger?: Logger;
}

const MAX_MESSAGE = 1024;
const MAX_REASON = 128;

interface Entry {
  namespace: string;
  /** The Event's name once created. */
  name: string | undefined;
  count: number;
  writtenCount: number;
  lastTimestamp: Date;
  lastSeen: number;
  /** Serializes the create and later patches of this Event. */
  chain: Promise<void>;
  flushTimer: ReturnType<typeof setTimeout> | undefined;
}

interface Bucket {
  tokens: number;
  last: number;
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export class EventRecorder {
  readonly #sink: EventSink;
  readonly #instance: string;
  readonly #windowMs: number;
  readonly #flushIntervalMs: number;
  readonly #burst: number;
  readonly #refillEveryMs: number;
  readonly #maxEntries: number;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #entries = new Map<string, Entry>();
  readonly #buckets = new Map<string, Bucket>();
  #sequence = 0;
  #closed = false;

  constructor(options: EventRecorderOptions) {
    this.#sink = options.sink;
    this.#instance = truncate(options.reportingInstance ?? hostname(), 128);
    this.#windowMs = options.windowMs ?? 10 * 60_000;
    this.#flushIntervalMs = options.flushIntervalMs ?? 10_000;
    this.#burst = options.burst ?? 25;
    this.#refillEveryMs = options.refillEveryMs ?? 5 * 60_000;
    this.#maxEntries = options.maxEntries ?? 4096;
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? silentLogger;
  }

  /** Records an Event about `obj`. Never throws. */
  event(
    obj: KubernetesObject,
    type: EventType,
    reason: string,
    message: string,
    options: EventOptions = {},
  ): void {
    try {
      this.#record(obj, type, reason, message, options.routine ?? false);
    } catch (err) {
      this.#logger.error({ reason, err }, "cannot record event; dropped");
    }
  }

  /** Writes every pending count bump now. Never rejects. */
  async flush(): Promise<void> {
    const pending = [...this.#entries.values()].map((entry) => {
      clearTimeout(entry.flushTimer);
      entry.flushTimer = undefined;
      return this.#enqueueFlush(entry);
    });
    await Promise.all(pending);
  }

  /** Flushes, then drops every later Event. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.flush();
  }

  #record(obj: KubernetesObject, type: EventType, reason: string, message: string, routine: boolean): void {
    if (this.#closed) {
      return;
    }
    const meta = obj.metadata;
    if (!obj.kind || !meta?.name) {
      this.#logger.warn({ kind: obj.kind, reason }, "event about an object without kind or name; dropped");
      return;
    }
    const involvedObject: V1ObjectReference = {
      apiVersion: obj.apiVersion,
      kind: obj.kind,
      name: meta.name,
      namespace: meta.namespace,
      uid: meta.uid,
      resourceVersion: meta.resourceVersion,
    };
    const objectId = meta.uid ?? `${obj.kind}/${meta.namespace ?? ""}/${meta.name}`;
    const cappedMessage = truncate(message, MAX_MESSAGE);
    const cappedReason = truncate(reason, MAX_REASON);
    const key = JSON.stringify([objectId, type, cappedReason, cappedMessage]);
    const nowMono = this.#clock.monotonic();
    const now = new Date(this.#clock.now());

    const existing = this.#entries.get(key);
    if (existing && nowMono - existing.lastSeen < this.#windowMs) {
      existing.count += 1;
      existing.lastTimestamp = now;
      existing.lastSeen = nowMono;
      this.#touch(key, existing);
      existing.flushTimer ??= setTimeout(() => {
        existing.flushTimer = undefined;
        void this.#enqueueFlush(existing);
      }, this.#flushIntervalMs);
      return;
    }

    const owner = meta.ownerReferences?.find((ref) => ref.controller)?.uid;
    const bucketKey = routine ? `routine/${owner ?? objectId}` : objectId;
    if (!this.#takeToken(bucketKey, nowMono)) {
      this.#logger.debug({ object: objectId, reason: cappedReason }, "event dropped by the spam filter");
      return;
    }
    const namespace = meta.namespace ?? "default";
    const entry: Entry = {
      namespace,
      name: undefined,
      count: 1,
      writtenCount: 0,
      lastTimestamp: now,
      lastSeen: nowMono,
      chain: Promise.resolve(),
      flushTimer: undefined,
    };
    if (existing) {
      // Its window is over: write its last bumps before a new Event takes over the key.
      clearTimeout(existing.flushTimer);
      void this.#enqueueFlush(existing);
    }
    this.#touch(key, entry);
    const sequence = BigInt(this.#sequence++ % 1_000_000);
    const name = `${meta.name.slice(0, 200)}.${(BigInt(this.#clock.now()) * 1_000_000n + sequence).toString(16)}`;
    const event: CoreV1Event = {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name, namespace },
      involvedObject,
      type,
      reason: cappedReason,
      message: cappedMessage,
      count: 1,
      firstTimestamp: now,
      lastTimestamp: now,
      source: { component: REPORTING_CONTROLLER },
      reportingComponent: REPORTING_CONTROLLER,
      reportingInstance: this.#instance,
    };
    entry.chain = this.#create(key, entry, event);
  }

  async #create(key: string, entry: Entry, event: CoreV1Event): Promise<void> {
    try {
      const created = await this.#sink.create(entry.namespace, event);
      entry.name = created.metadata.name ?? event.metadata.name;
      entry.writtenCount = 1;
    } catch (err) {
      this.#logger.warn(
        { event: event.metadata.name, reason: event.reason, error: describeApiError(err) },
        "cannot create event; dropped",
      );
      if (this.#entries.get(key) === entry) {
        this.#entries.delete(key);
      }
      clearTimeout(entry.flushTimer);
    }
  }

  #enqueueFlush(entry: Entry): Promise<void> {
    entry.chain = entry.chain.then(() => this.#patch(entry));
    return entry.chain;
  }

  async #patch(entry: Entry): Promise<void> {
    if (entry.name === undefined || entry.count === entry.writtenCount) {
      return;
    }
    const count = entry.count;
    try {
      await this.#sink.patch(entry.namespace, entry.name, {
        count,
        lastTimestamp: entry.lastTimestamp.toISOString(),
      });
      entry.writtenCount = count;
    } catch (err) {
      // 404: the API server's event TTL (1 h by default) removed it; the next occurrence starts a new one.
      entry.writtenCount = count;
      if (isNotFound(err)) {
        entry.lastSeen = -Infinity;
      }
      this.#logger.warn(
        { event: entry.name, error: describeApiError(err) },
        "cannot update event count; dropped",
      );
    }
  }

  /** Re-inserts as most recent and evicts the least recently seen beyond maxEntries. */
  #touch(key: string, entry: Entry): void {
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    while (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done) {
        break;
      }
      const evicted = this.#entries.get(oldest.value);
      // An evicted Event with unwritten bumps is flushed first so its count is not lost.
      if (evicted) {
        clearTimeout(evicted.flushTimer);
        void this.#enqueueFlush(evicted);
      }
      this.#entries.delete(oldest.value);
    }
  }

  #takeToken(key: string, now: number): boolean {
    const bucket = this.#buckets.get(key) ?? { tokens: this.#burst, last: now };
    bucket.tokens = Math.min(this.#burst, bucket.tokens + (now - bucket.last) / this.#refillEveryMs);
    bucket.last = now;
    this.#buckets.delete(key);
    this.#buckets.set(key, bucket);
    while (this.#buckets.size > this.#maxEntries) {
      const oldest = this.#buckets.keys().next();
      if (oldest.done) {
        break;
      }
      this.#buckets.delete(oldest.value);
    }
    if (bucket.tokens < 1) {
      return false;
    }
    bucket.tokens -= 1;
    return true;
  }
}
