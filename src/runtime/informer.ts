import { Watch, loadYaml } from "@kubernetes/client-node";
import type { KubeConfig, KubernetesListObject, KubernetesObject } from "@kubernetes/client-node";
import { ExponentialBackoff } from "./backoff.ts";
import type { BackoffPolicy } from "./backoff.ts";
import { systemClock } from "./clock.ts";
import type { Clock } from "./clock.ts";
import { apiErrorCode, describeApiError } from "./errors.ts";
import { silentLogger } from "./logger.ts";
import type { Logger } from "./logger.ts";
import { ObjectStore, objectKey } from "./store.ts";
import type { IndexFunc, ReadonlyStore } from "./store.ts";

/**
 * A list+watch informer: a local cache of one resource kept current by the API server's watch,
 * with synchronous add/update/delete callbacks.
 *
 * Why not client-node's `ListWatch`/`makeInformer`: in 2.0.x it stops for good on any watch or
 * list error other than 410 and client timeouts (it only fires `error` callbacks), its `start()`
 * resolves even when the first list failed, it cannot relist on demand (the resourceVersion is
 * private), it never asks for bookmarks, and it has no indexes. Restarting it from outside would
 * race its own reconnect path. So this is a small list+watch loop of its own over client-node's
 * `Watch` (see {@link kubeListWatchSource}), with one restart path for every failure.
 *
 * Guarantees:
 * - Restarts after ANY failure (list error, watch error, watch `ERROR` event, clean close,
 *   inactivity) through one single-flight path: however many failures arrive together, exactly
 *   one restart is scheduled, and callbacks of the abandoned attempt are ignored.
 * - Failures back off exponentially with jitter; the backoff resets once a watch delivers an
 *   event or bookmark. A client-side watch timeout re-watches at once (the timeout already
 *   throttled it), as does a clean close of a watch that lived at least `minHealthyWatchMs`.
 * - 410 Gone (as an HTTP status or a watch `ERROR` event) relists; the relist is diffed against
 *   the cache, so objects deleted meanwhile get a `delete` callback with `finalStateUnknown`.
 * - `hasSynced()` becomes true only after the first successful list has been delivered to the
 *   callbacks, and stays true across restarts (the cache stays usable, if stale).
 * - If nothing (event, bookmark, list result) arrives for `inactivityTimeoutMs`, the attempt is
 *   presumed half-open and restarted: this also catches a list or watch request that hangs.
 * - Every `relistPeriodMs` the informer relists (a safety net against missed events); every
 *   `resyncPeriodMs` it re-delivers `update(obj, obj)` for each cached object.
 *
 * Caveats:
 * - Callbacks run synchronously inside the informer and must only enqueue keys; a throwing
 *   callback is logged and does not stop delivery to the others.
 * - Cached objects are shared references: never mutate them.
 * - An `update` for an unchanged resourceVersion is suppressed (the resync is the exception).
 */

/** One decoded watch event; the source turns raw watch lines into these. */
export type WatchEvent<T> =
  | { type: "ADDED" | "MODIFIED" | "DELETED"; object: T }
  | { type: "BOOKMARK"; resourceVersion: string }
  | { type: "ERROR"; status: { code?: number; reason?: string; message?: string } };

export interface ListResult<T> {
  items: T[];
  resourceVersion: string;
}

/**
 * Where the informer's data comes from: the API server in production ({@link kubeListWatchSource}),
 * a scripted fake in unit tests.
 */
export interface ListWatchSource<T> {
  list(signal: AbortSignal): Promise<ListResult<T>>;
  /**
   * Starts a watch from `resourceVersion`. Events go to `onEvent`; the end of the watch, clean
   * (null) or not, goes to `onDone`. A rejected promise counts as `onDone(error)`. Aborting
   * `signal` must close the watch (a late `onDone` after that is ignored).
   */
  watch(
    resourceVersion: string,
    signal: AbortSignal,
    onEvent: (event: WatchEvent<T>) => void,
    onDone: (err: unknown) => void,
  ): Promise<void>;
}

export interface InformerEvents<T> {
  add: (obj: T) => void;
  update: (oldObj: T, newObj: T) => void;
  /** `finalStateUnknown`: the deletion was inferred by a relist, `obj` is the last cached state. */
  delete: (obj: T, info: { finalStateUnknown: boolean }) => void;
}

export interface InformerStatus {
  synced: boolean;
  /** A watch is open or being opened, rather than waiting out a backoff. */
  running: boolean;
  /** Wall-clock ms of the last event, bookmark or list result; undefined before any. */
  lastActivityAt: number | undefined;
  restarts: number;
  lastError: string | undefined;
}

export interface InformerOptions<T extends KubernetesObject> {
  /** For logs, e.g. "periodictasks.cadent.dev". */
  name: string;
  source: ListWatchSource<T>;
  indexers?: Readonly<Record<string, IndexFunc<T>>>;
  /** Default: 800 ms doubling to 30 s, jitter 1.0 (client-go's reflector). */
  backoff?: BackoffPolicy;
  /** Default 120 s: the API server sends a bookmark about every minute to a watch that asks. */
  inactivityTimeoutMs?: number;
  /** Default 30 min; 0 disables. Jittered by up to 10 % so replicas do not relist together. */
  relistPeriodMs?: number;
  /** Default 0 (off). */
  resyncPeriodMs?: number;
  /** Default 1 s. */
  minHealthyWatchMs?: number;
  clock?: Clock;
  random?: () => number;
  logger?: Logger;
}

type RestartCause = "error" | "gone" | "closed" | "timeout" | "inactive" | "relist";

export class Informer<T extends KubernetesObject> {
  readonly name: string;
  readonly #source: ListWatchSource<T>;
  readonly #store: ObjectStore<T>;
  readonly #backoff: ExponentialBackoff;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #logger: Logger;
  readonly #inactivityTimeoutMs: number;
  readonly #relistPeriodMs: number;
  readonly #resyncPeriodMs: number;
  readonly #minHealthyWatchMs: number;
  readonly #handlers: { [E in keyof InformerEvents<T>]: Set<InformerEvents<T>[E]> } = {
    add: new Set(),
    update: new Set(),
    delete: new Set(),
  };

  #stopped = true;
  #synced = false;
  #syncWaiters: (() => void)[] = [];
  #resourceVersion = "";
  #needRelist = true;
  /** Bumped by every attempt and every restart: callbacks carrying an older value are stale. */
  #generation = 0;
  #attemptAbort: AbortController | undefined;
  #restartPending = false;
  #restartTimer: ReturnType<typeof setTimeout> | undefined;
  #watchdogTimer: ReturnType<typeof setTimeout> | undefined;
  #relistTimer: ReturnType<typeof setTimeout> | undefined;
  #resyncTimer: ReturnType<typeof setTimeout> | undefined;
  #aliveAt = 0;
  #watchStartedAt: number | undefined;
  #progressThisAttempt = false;
  #lastActivityAt: number | undefined;
  #restarts = 0;
  #lastError: string | undefined;

  constructor(options: InformerOptions<T>) {
    this.name = options.name;
    this.#source = options.source;
    this.#store = new ObjectStore(options.indexers);
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
    this.#backoff = new ExponentialBackoff(
      options.backoff ?? { initialMs: 800, maxMs: 30_000, factor: 2, jitter: 1 },
      this.#random,
    );
    this.#logger = options.logger ?? silentLogger;
    this.#inactivityTimeoutMs = options.inactivityTimeoutMs ?? 120_000;
    this.#relistPeriodMs = options.relistPeriodMs ?? 30 * 60_000;
    this.#resyncPeriodMs = options.resyncPeriodMs ?? 0;
    this.#minHealthyWatchMs = options.minHealthyWatchMs ?? 1_000;
  }

  /** The cache. Read-only: objects are shared with the informer. */
  get store(): ReadonlyStore<T> {
    return this.#store;
  }

  /** Subscribes to changes; returns the unsubscribe function. */
  on<E extends keyof InformerEvents<T>>(event: E, handler: InformerEvents<T>[E]): () => void {
    const set = this.#handlers[event] as Set<InformerEvents<T>[E]>;
    set.add(handler);
    return () => set.delete(handler);
  }

  /** Starts listing and watching in the background; a no-op when running. */
  start(): void {
    if (!this.#stopped) {
      return;
    }
    this.#stopped = false;
    this.#needRelist = true;
    this.#backoff.reset();
    this.#scheduleResync();
    void this.#attempt();
  }

  /** Stops for good (until `start()`): closes the watch, clears every timer. Idempotent. */
  stop(): void {
    if (this.#stopped) {
      return;
    }
    this.#stopped = true;
    this.#generation += 1;
    this.#attemptAbort?.abort();
    this.#attemptAbort = undefined;
    this.#restartPending = false;
    for (const timer of [this.#restartTimer, this.#watchdogTimer, this.#relistTimer, this.#resyncTimer]) {
      clearTimeout(timer);
    }
    const waiters = this.#syncWaiters;
    this.#syncWaiters = [];
    for (const wake of waiters) {
      wake();
    }
  }

  /** True once the first list has been delivered; stays true across restarts. */
  hasSynced(): boolean {
    return this.#synced;
  }

  /** Resolves true once synced, false if stopped or `signal` aborts first. */
  waitForSync(signal?: AbortSignal): Promise<boolean> {
    if (this.#synced || this.#stopped || signal?.aborted) {
      return Promise.resolve(this.#synced);
    }
    return new Promise((resolve) => {
      const wake = (): void => {
        signal?.removeEventListener("abort", wake);
        resolve(this.#synced);
      };
      signal?.addEventListener("abort", wake, { once: true });
      this.#syncWaiters.push(wake);
    });
  }

  status(): InformerStatus {
    return {
      synced: this.#synced,
      running: !this.#stopped && !this.#restartPending,
      lastActivityAt: this.#lastActivityAt,
      restarts: this.#restarts,
      lastError: this.#lastError,
    };
  }

  async #attempt(): Promise<void> {
    if (this.#stopped) {
      return;
    }
    this.#restartPending = false;
    this.#generation += 1;
    const generation = this.#generation;
    const abort = new AbortController();
    this.#attemptAbort = abort;
    this.#progressThisAttempt = false;
    this.#watchStartedAt = undefined;
    this.#aliveAt = this.#clock.monotonic();
    this.#armWatchdog(generation);
    try {
      if (this.#needRelist || this.#resourceVersion === "") {
        const list = await this.#source.list(abort.signal);
        if (generation !== this.#generation) {
          return;
        }
        this.#applyList(list);
        this.#noteActivity();
        this.#scheduleRelist();
        if (!this.#synced) {
          this.#synced = true;
          const waiters = this.#syncWaiters;
          this.#syncWaiters = [];
          for (const wake of waiters) {
            wake();
          }
          this.#logger.info({ informer: this.name, objects: this.#store.size }, "informer synced");
        }
      }
      this.#watchStartedAt = this.#clock.monotonic();
      await this.#source.watch(
        this.#resourceVersion,
        abort.signal,
        (event) => this.#onEvent(generation, event),
        (err) => this.#onDone(generation, err),
      );
    } catch (err) {
      if (generation === this.#generation) {
        this.#restart(apiErrorCode(err) === 410 ? "gone" : "error", err);
      }
    }
  }

  #applyList(list: ListResult<T>): void {
    const listed = new Set<string>();
    for (const obj of list.items) {
      listed.add(objectKey(obj));
      this.#upsert(obj);
    }
    for (const key of this.#store.keys()) {
      if (!listed.has(key)) {
        const old = this.#store.remove(key);
        if (old) {
          this.#emitDelete(old, true);
        }
      }
    }
    this.#resourceVersion = list.resourceVersion;
    this.#needRelist = false;
  }

  #upsert(obj: T): void {
    const old = this.#store.upsert(obj);
    if (!old) {
      this.#emit("add", (fn) => fn(obj));
    } else if (
      old.metadata?.resourceVersion === undefined ||
      old.metadata.resourceVersion !== obj.metadata?.resourceVersion
    ) {
      this.#emit("update", (fn) => fn(old, obj));
    }
  }

  #emitDelete(obj: T, finalStateUnknown: boolean): void {
    this.#emit("delete", (fn) => fn(obj, { finalStateUnknown }));
  }

  #emit<E extends keyof InformerEvents<T>>(event: E, call: (handler: InformerEvents<T>[E]) => void): void {
    const handlers = this.#handlers[event] as Set<InformerEvents<T>[E]>;
    for (const handler of handlers) {
      try {
        call(handler);
      } catch (err) {
        this.#logger.error(
          { informer: this.name, event, err },
          "informer callback threw; callbacks must only enqueue",
        );
      }
    }
  }

  #onEvent(generation: number, event: WatchEvent<T>): void {
    if (generation !== this.#generation) {
      return;
    }
    switch (event.type) {
      case "ADDED":
      case "MODIFIED":
        this.#upsert(event.object);
        this.#resourceVersion = event.object.metadata?.resourceVersion ?? this.#resourceVersion;
        break;
      case "DELETED": {
        const old = this.#store.remove(objectKey(event.object));
        if (old) {
          this.#emitDelete(event.object, false);
        }
        this.#resourceVersion = event.object.metadata?.resourceVersion ?? this.#resourceVersion;
        break;
      }
      case "BOOKMARK":
        this.#resourceVersion = event.resourceVersion || this.#resourceVersion;
        break;
      case "ERROR":
        if (event.status.code === 410) {
          this.#needRelist = true;
          this.#restart("gone", event.status);
        } else {
          this.#restart("error", event.status);
        }
        return;
    }
    this.#progressThisAttempt = true;
    this.#backoff.reset();
    this.#noteActivity();
  }

  #onDone(generation: number, err: unknown): void {
    if (generation !== this.#generation) {
      return;
    }
    if (err === null || err === undefined) {
      this.#restart("closed");
    } else if (isClientTimeout(err)) {
      this.#restart("timeout", err);
    } else if (apiErrorCode(err) === 410) {
      this.#needRelist = true;
      this.#restart("gone", err);
    } else {
      this.#restart("error", err);
    }
  }

  /** The one restart path. Single flight: while a restart is pending, further requests are no-ops. */
  #restart(cause: RestartCause, err?: unknown): void {
    if (this.#stopped || this.#restartPending) {
      return;
    }
    this.#restartPending = true;
    this.#generation += 1;
    this.#attemptAbort?.abort();
    this.#attemptAbort = undefined;
    clearTimeout(this.#watchdogTimer);
    this.#restarts += 1;
    if (cause === "gone" || cause === "relist") {
      this.#needRelist = true;
    }
    const watchLived =
      this.#watchStartedAt !== undefined &&
      this.#clock.monotonic() - this.#watchStartedAt >= this.#minHealthyWatchMs;
    let delayMs: number;
    switch (cause) {
      case "timeout":
      case "relist":
        delayMs = 0;
        break;
      case "closed":
      case "gone":
        delayMs = this.#progressThisAttempt || watchLived ? 0 : this.#backoff.next();
        break;
      case "error":
      case "inactive":
        delayMs = this.#backoff.next();
        break;
    }
    if (err !== undefined && cause !== "timeout") {
      this.#lastError = describeApiError(err);
    }
    const fields = { informer: this.name, cause, delayMs: Math.round(delayMs), error: this.#lastError };
    if (cause === "error" || cause === "inactive") {
      this.#logger.warn(fields, "informer restarting");
    } else {
      this.#logger.debug(fields, "informer restarting");
    }
    this.#restartTimer = setTimeout(() => void this.#attempt(), delayMs);
  }

  #noteActivity(): void {
    this.#aliveAt = this.#clock.monotonic();
    this.#lastActivityAt = this.#clock.now();
  }

  /** Fires at aliveAt + inactivity; re-arms itself for the remainder when there was activity since. */
  #armWatchdog(generation: number): void {
    clearTimeout(this.#watchdogTimer);
    const remaining = this.#aliveAt + this.#inactivityTimeoutMs - this.#clock.monotonic();
    this.#watchdogTimer = setTimeout(
      () => {
        if (generation !== this.#generation) {
          return;
        }
        if (this.#clock.monotonic() - this.#aliveAt >= this.#inactivityTimeoutMs) {
          this.#restart("inactive", new Error(`no watch activity for ${this.#inactivityTimeoutMs} ms`));
        } else {
          this.#armWatchdog(generation);
        }
      },
      Math.max(0, remaining),
    );
  }

  #scheduleRelist(): void {
    clearTimeout(this.#relistTimer);
    if (this.#relistPeriodMs <= 0) {
      return;
    }
    const delay = this.#relistPeriodMs * (1 + 0.1 * this.#random());
    this.#relistTimer = setTimeout(() => {
      this.#needRelist = true;
      this.#restart("relist");
    }, delay);
  }

  #scheduleResync(): void {
    if (this.#resyncPeriodMs <= 0) {
      return;
    }
    this.#resyncTimer = setTimeout(() => {
      if (this.#synced) {
        for (const obj of this.#store.list()) {
          this.#emit("update", (fn) => fn(obj, obj));
        }
      }
      this.#scheduleResync();
    }, this.#resyncPeriodMs);
  }
}

/** One page of a paginated list: pass both to the list call (`limit`, and `_continue` when set). */
export interface ListPage {
  limit: number;
  continue: string | undefined;
}

/** The default page size of a list, client-go's reflector's. */
export const LIST_PAGE_SIZE = 500;

export interface KubeListWatchOptions<T extends KubernetesObject> {
  /** The collection's URL path, e.g. `/apis/cadent.dev/v1alpha1/periodictasks` (all namespaces). */
  path: string;
  /**
   * One list call for one page, e.g. `(page) => customObjects.listClusterCustomObject({...,
   * limit: page.limit, _continue: page.continue})`. A call that ignores `page` lists everything
   * at once.
   */
  list: (page: ListPage) => Promise<KubernetesListObject<T>>;
  /** Objects per page; default {@link LIST_PAGE_SIZE}. */
  pageSize?: number;
  labelSelector?: string;
  fieldSelector?: string;
  /**
   * Turns a raw watch object into T. client-node deserializes list responses of built-in kinds
   * into model classes (Date fields) but hands watch objects over as raw JSON (string dates), so
   * for a built-in kind pass {@link decodeBuiltInKind}. Default: the raw object, right for custom
   * resources, which CustomObjectsApi lists as raw JSON too.
   */
  decode?: (raw: unknown) => T;
  /**
   * What the cache keeps of an object (client-go's `SetTransform`), applied to every listed and
   * watched object as soon as it is decoded, and a page at a time, so that a large list never
   * holds more than one page of full objects. It receives an object nothing else references and
   * may change it in place. Default: the object as decoded. See cache-transforms.ts.
   */
  transform?: (obj: T) => T;
  /** Server-side watch timeout; default 5–10 min at random, as client-go's reflector. */
  timeoutSeconds?: number;
}

/**
 * A `decode` for built-in kinds (Job, ConfigMap…): the raw watch object becomes client-node's
 * model class with Date fields, as the generated list methods return. It goes through
 * client-node's public `loadYaml` (JSON is YAML), which picks the model from apiVersion/kind.
 */
export function decodeBuiltInKind<T extends KubernetesObject>(raw: unknown): T {
  return loadYaml<T>(JSON.stringify(raw));
}

/** The token of the next page: `continue` in raw JSON, `_continue` in client-node's V1ListMeta. */
function continueToken(list: KubernetesListObject<KubernetesObject>): string | undefined {
  const meta: Record<string, unknown> = { ...list.metadata };
  const token = meta["continue"] ?? meta["_continue"];
  return typeof token === "string" && token !== "" ? token : undefined;
}

/** client-node's Watch ends an idle watch with a DOMException named TimeoutError. */
function isClientTimeout(err: unknown): boolean {
  return typeof err === "object" && err !== null && "name" in err && err.name === "TimeoutError";
}

function isKubernetesObject(value: unknown): value is KubernetesObject {
  return (
    typeof value === "object" && value !== null && "metadata" in value && typeof value.metadata === "object"
  );
}

/**
 * A {@link ListWatchSource} over the API server using client-node's `Watch`. Asks for bookmarks,
 * so a quiet but healthy watch still shows activity, and a server-side timeout, so no watch lives
 * forever. client-node's `Watch` also aborts a watch after 30 s without any data (a
 * `TimeoutError`), which the informer treats as a normal, immediate re-watch.
 */
export function kubeListWatchSource<T extends KubernetesObject>(
  kubeConfig: KubeConfig,
  options: KubeListWatchOptions<T>,
): ListWatchSource<T> {
  const watcher = new Watch(kubeConfig);
  // Raw watch objects are plain JSON; by default they are taken as T, like client-node's own informer.
  const decode = options.decode ?? ((raw: unknown) => raw as T);
  const transform = options.transform ?? ((obj: T) => obj);
  const limit = options.pageSize ?? LIST_PAGE_SIZE;
  return {
    async list(signal) {
      // Pages of one consistent snapshot (the continue token pins its resourceVersion), as
      // client-go's reflector lists: the API server never builds one huge response, and each page
      // is transformed before the next arrives. An expired token (410) fails the list, and the
      // informer lists again from the start.
      const items: T[] = [];
      let page: ListPage = { limit, continue: undefined };
      for (;;) {
        signal.throwIfAborted();
        const list = await options.list(page);
        for (const obj of list.items) items.push(transform(obj));
        const next = continueToken(list);
        if (!next) return { items, resourceVersion: list.metadata?.resourceVersion ?? "" };
        page = { limit, continue: next };
      }
    },
    async watch(resourceVersion, signal, onEvent, onDone) {
      const params: Record<string, string | number | boolean | undefined> = {
        resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds: options.timeoutSeconds ?? Math.floor(300 + Math.random() * 300),
        labelSelector: options.labelSelector,
        fieldSelector: options.fieldSelector,
      };
      const controller = await watcher.watch(
        options.path,
        params,
        (type: string, raw: unknown) => {
          if (type === "ERROR") {
            const status = typeof raw === "object" && raw !== null ? raw : {};
            onEvent({
              type: "ERROR",
              status: {
                code: "code" in status && typeof status.code === "number" ? status.code : undefined,
                reason: "reason" in status && typeof status.reason === "string" ? status.reason : undefined,
                message:
                  "message" in status && typeof status.message === "string" ? status.message : undefined,
              },
            });
          } else if (type === "BOOKMARK") {
            onEvent({
              type,
              resourceVersion: isKubernetesObject(raw) ? (raw.metadata?.resourceVersion ?? "") : "",
            });
          } else if (
            (type === "ADDED" || type === "MODIFIED" || type === "DELETED") &&
            isKubernetesObject(raw)
          ) {
            onEvent({ type, object: transform(decode(raw)) });
          }
        },
        onDone,
      );
      if (signal.aborted) {
        controller.abort();
      } else {
        signal.addEventListener("abort", () => controller.abort(), { once: true });
      }
    },
  };
}
