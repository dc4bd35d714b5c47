import { hostname } from "node:os";
import { randomUUID } from "node:crypto";
import { V1MicroTime } from "@kubernetes/client-node";
import type { CoordinationV1Api, V1Lease } from "@kubernetes/client-node";
import { sleep, systemClock } from "./clock.ts";
import type { Clock } from "./clock.ts";
import { describeApiError, isAlreadyExists, isConflict, isNotFound } from "./errors.ts";
import { silentLogger } from "./logger.ts";
import type { Logger } from "./logger.ts";

/**
 * Leader election on a `coordination.k8s.io/v1` Lease, after client-go's `leaderelection`
 * (client-node has none).
 *
 * Guarantees:
 * - A candidate takes the Lease only when it is free (no holder, e.g. released) or when its
 *   record has not changed for `leaseDuration` as measured on the candidate's own monotonic clock
 *   from the moment it first observed that record. Writes carry the read resourceVersion, so two
 *   candidates racing for an expired Lease cannot both win (the loser gets 409).
 * - The leader's work stops the moment leadership is lost: the AbortSignal given to
 *   `onStartedLeading` aborts when a renewal observes another holder, and when no renewal has
 *   succeeded for `renewDeadline` on the local monotonic clock. The deadline is counted from when
 *   the last successful renewal was *sent*, and a timer fires at it even if a request hangs.
 *   Because renewDeadline (10 s) < leaseDuration (15 s), the old leader stops ≥ 5 s before any
 *   other candidate may take over, even if the API server stays reachable to the others.
 * - After a stall (SIGSTOP, a long GC pause, a frozen VM) the leader does not renew first and
 *   ask later: the next renewal step sees the deadline has passed and gives up without writing.
 * - `release()` (SIGTERM) aborts the work, waits for it to return, then writes an empty holder
 *   with leaseDurationSeconds 1 (client-go's ReleaseOnCancel) so a successor takes over at its
 *   next retry instead of waiting out the lease.
 *
 * Clock-skew assumptions:
 * - Wall clocks are never compared across machines. `renewTime`/`acquireTime` are written for
 *   humans and other tools; expiry is judged by each candidate on its own monotonic clock from
 *   the time it observed a record change, as client-go does. Any clock *offset* is harmless.
 * - Clock *rates* must agree to within the margin (leaseDuration − renewDeadline)/leaseDuration
 *   (33 % with the defaults), which any real clock does.
 *
 * Caveats:
 * - The AbortSignal fires from a timer. After a process stall, Node may run pending I/O callbacks
 *   before timers, so code about to write should check `isLeading()`, a synchronous monotonic
 *   check, rather than only the signal.
 * - Kubernetes has no fencing tokens: an old leader's request already in flight can still land.
 *   Writes that must happen at most once also need their own idempotency (deterministic names).
 * - `run()` campaigns once: after leadership ends it resolves; exit or build a new elector.
 */

/** The Lease operations the elector needs; {@link coordinationLeaseClient} adapts the real API. */
export interface LeaseClient {
  /** Throws an ApiException with code 404 when absent. */
  get(namespace: string, name: string): Promise<V1Lease>;
  /** Throws 409 AlreadyExists when taken. */
  create(namespace: string, lease: V1Lease): Promise<V1Lease>;
  /** Throws 409 Conflict when `lease.metadata.resourceVersion` is stale. */
  replace(namespace: string, name: string, lease: V1Lease): Promise<V1Lease>;
}

export function coordinationLeaseClient(api: CoordinationV1Api): LeaseClient {
  return {
    get: (namespace, name) => api.readNamespacedLease({ namespace, name }),
    create: (namespace, body) => api.createNamespacedLease({ namespace, body }),
    replace: (namespace, name, body) => api.replaceNamespacedLease({ namespace, name, body }),
  };
}

export interface LeaderElectionOptions {
  client: LeaseClient;
  namespace: string;
  /** The Lease name, e.g. "cadent-controller". */
  name: string;
  /** Default: hostname + "_" + a random UUID. */
  identity?: string;
  /** Default 15 s. How long others wait after the last observed change before taking over. */
  leaseDurationMs?: number;
  /** Default 10 s. The leader gives up if it has not renewed for this long. */
  renewDeadlineMs?: number;
  /** Default 2 s. Between attempts (jittered by up to 1.2× while acquiring). */
  retryPeriodMs?: number;
  /**
   * Starts the leader's work; `signal` aborts when leadership ends. A returned promise is awaited
   * by `release()` before the Lease is handed over; if it rejects, leadership is released.
   */
  onStartedLeading: (signal: AbortSignal) => void | Promise<void>;
  onStoppedLeading?: () => void;
  /** Called when a different holder is observed (including this one). */
  onNewLeader?: (identity: string) => void;
  clock?: Clock;
  random?: () => number;
  logger?: Logger;
}

/** client-go's JitterFactor for the acquire loop. */
const ACQUIRE_JITTER = 1.2;

/**
 * How long one Lease request (a get or a replace) may take before it is abandoned: half of what
 * the renew deadline leaves after one retry period. A renewal caught on a dead (half-open)
 * connection then fails in time for a second attempt, on a new connection, before the deadline;
 * without a limit it would hold the elector until the deadline and leadership would be lost
 * although the API server answers.
 */
export function leaseRequestTimeoutMs(renewDeadlineMs: number, retryPeriodMs: number): number {
  return Math.max(1_000, Math.floor((renewDeadlineMs - retryPeriodMs) / 2));
}

/** `promise`'s value, or false as soon as `signal` aborts. */
function untilAborted(promise: Promise<boolean>, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) {
    return Promise.resolve(false);
  }
  return new Promise((resolve) => {
    const onAbort = (): void => resolve(false);
    signal.addEventListener("abort", onAbort, { once: true });
    void promise.then((value) => {
      signal.removeEventListener("abort", onAbort);
      resolve(value);
    });
  });
}

/** Lease times as received: client-node types them V1MicroTime but leaves them strings. */
function timeText(value: unknown): string {
  if (value instanceof Date) {
    return value.toISOString();
  }
  return value === undefined || value === null ? "" : String(value);
}

function recordOf(lease: V1Lease): string {
  const spec = lease.spec ?? {};
  return JSON.stringify([
    spec.holderIdentity ?? "",
    spec.leaseDurationSeconds ?? 0,
    timeText(spec.acquireTime),
    timeText(spec.renewTime),
    spec.leaseTransitions ?? 0,
  ]);
}

export class LeaderElector {
  readonly identity: string;
  readonly #client: LeaseClient;
  readonly #namespace: string;
  readonly #name: string;
  readonly #leaseDurationMs: number;
  readonly #renewDeadlineMs: number;
  readonly #retryPeriodMs: number;
  readonly #options: LeaderElectionOptions;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #logger: Logger;
  /** Aborted by release(): ends sleeps and the campaign. */
  readonly #stop = new AbortController();

  #observedLease: V1Lease | undefined;
  #observedRecord = "";
  #observedAt = 0;
  #reportedLeader: string | undefined;
  #leading = false;
  #lastRenewAt = 0;
  #work: AbortController | undefined;
  #workDone: Promise<void> = Promise.resolve();
  #deadlineTimer: ReturnType<typeof setTimeout> | undefined;
  #resolveEnded: (() => void) | undefined;
  #running: Promise<void> | undefined;
  #releasing: Promise<void> | undefined;

  constructor(options: LeaderElectionOptions) {
    this.#options = options;
    this.#client = options.client;
    this.#namespace = options.namespace;
    this.#name = options.name;
    this.identity = options.identity ?? `${hostname()}_${randomUUID()}`;
    this.#leaseDurationMs = options.leaseDurationMs ?? 15_000;
    this.#renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.#retryPeriodMs = options.retryPeriodMs ?? 2_000;
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
    this.#logger = options.logger ?? silentLogger;
    if (this.#leaseDurationMs <= this.#renewDeadlineMs) {
      throw new Error(
        `leader election: leaseDuration (${this.#leaseDurationMs} ms) must be greater than renewDeadline (${this.#renewDeadlineMs} ms), or two leaders could overlap`,
      );
    }
    if (this.#renewDeadlineMs <= ACQUIRE_JITTER * this.#retryPeriodMs) {
      throw new Error(
        `leader election: renewDeadline (${this.#renewDeadlineMs} ms) must be greater than ${ACQUIRE_JITTER} × retryPeriod (${this.#retryPeriodMs} ms)`,
      );
    }
    if (this.#leaseDurationMs % 1000 !== 0) {
      throw new Error(
        `leader election: leaseDuration must be whole seconds (the Lease stores seconds), got ${this.#leaseDurationMs} ms`,
      );
    }
  }

  /**
   * True while this replica leads and renewed within renewDeadline by the monotonic clock.
   * Check it right before a write that only the leader may make.
   */
  isLeading(): boolean {
    return this.#leading && this.#clock.monotonic() - this.#lastRenewAt < this.#renewDeadlineMs;
  }

  /** Campaigns, leads, and resolves when leadership ends or `release()` stopped the campaign. */
  run(): Promise<void> {
    this.#running ??= this.#campaign();
    return this.#running;
  }

  async #campaign(): Promise<void> {
    const ended = new Promise<void>((resolve) => {
      this.#resolveEnded = resolve;
    });
    while (!this.#stop.signal.aborted) {
      const sentAt = this.#clock.monotonic();
      // Raced against release(), so a hung request cannot keep run() from ending.
      if (await untilAborted(this.#tryAcquireOrRenew(), this.#stop.signal)) {
        if (!this.#stop.signal.aborted) {
          this.#becomeLeader(sentAt);
          void this.#renewLoop();
          await ended;
        }
        return;
      }
      await sleep(this.#retryPeriodMs * (1 + (ACQUIRE_JITTER - 1) * this.#random()), this.#stop.signal);
    }
  }

  #becomeLeader(renewedAt: number): void {
    this.#leading = true;
    this.#lastRenewAt = renewedAt;
    this.#armDeadline();
    this.#work = new AbortController();
    this.#logger.info(
      { lease: `${this.#namespace}/${this.#name}`, identity: this.identity },
      "became leader",
    );
    const signal = this.#work.signal;
    this.#workDone = (async () => {
      try {
        await this.#options.onStartedLeading(signal);
      } catch (err) {
        this.#logger.error({ lease: this.#name, err }, "leader work failed; releasing the lease");
        void this.release();
      }
    })();
  }

  async #renewLoop(): Promise<void> {
    while (this.#leading) {
      await sleep(this.#retryPeriodMs, this.#work?.signal);
      if (!this.#leading) {
        return;
      }
      // After a stall the deadline may already be gone: never renew a lease we may have lost.
      if (this.#clock.monotonic() - this.#lastRenewAt >= this.#renewDeadlineMs) {
        this.#loseLeadership(`no successful renewal for ${this.#renewDeadlineMs} ms`);
        return;
      }
      const sentAt = this.#clock.monotonic();
      const renewed = await this.#tryAcquireOrRenew();
      if (!this.#leading) {
        return;
      }
      if (renewed) {
        this.#lastRenewAt = sentAt;
        this.#armDeadline();
      } else if (this.#heldByOther()) {
        this.#loseLeadership(
          `lease taken by ${this.#observedLease?.spec?.holderIdentity ?? "another holder"}`,
        );
        return;
      }
    }
  }

  #heldByOther(): boolean {
    const holder = this.#observedLease?.spec?.holderIdentity ?? "";
    return holder !== "" && holder !== this.identity;
  }

  /** A timer at lastRenew + renewDeadline, so a hung request cannot keep work running. */
  #armDeadline(): void {
    clearTimeout(this.#deadlineTimer);
    const remaining = this.#lastRenewAt + this.#renewDeadlineMs - this.#clock.monotonic();
    this.#deadlineTimer = setTimeout(
      () => {
        if (this.#leading && this.#clock.monotonic() - this.#lastRenewAt >= this.#renewDeadlineMs) {
          this.#loseLeadership(`no successful renewal for ${this.#renewDeadlineMs} ms`);
        } else if (this.#leading) {
          this.#armDeadline();
        }
      },
      Math.max(0, remaining),
    );
  }

  #loseLeadership(reason: string): void {
    if (!this.#leading) {
      return;
    }
    this.#leading = false;
    clearTimeout(this.#deadlineTimer);
    this.#work?.abort(new Error(`leadership lost: ${reason}`));
    this.#logger.warn(
      { lease: `${this.#namespace}/${this.#name}`, identity: this.identity, reason },
      "leadership lost",
    );
    try {
      this.#options.onStoppedLeading?.();
    } catch (err) {
      this.#logger.error({ err }, "onStoppedLeading threw");
    }
    this.#resolveEnded?.();
  }

  /** One step of client-go's tryAcquireOrRenew; false on any failure (logged), never throws. */
  async #tryAcquireOrRenew(): Promise<boolean> {
    const now = new V1MicroTime(this.#clock.now());
    const durationSeconds = this.#leaseDurationMs / 1000;
    let current: V1Lease;
    try {
      current = await this.#client.get(this.#namespace, this.#name);
    } catch (err) {
      if (!isNotFound(err)) {
        this.#logger.warn({ lease: this.#name, error: describeApiError(err) }, "cannot read the lease");
        return false;
      }
      try {
        const created = await this.#client.create(this.#namespace, {
          apiVersion: "coordination.k8s.io/v1",
          kind: "Lease",
          metadata: { name: this.#name, namespace: this.#namespace },
          spec: {
            holderIdentity: this.identity,
            leaseDurationSeconds: durationSeconds,
            acquireTime: now,
            renewTime: now,
            leaseTransitions: 0,
          },
        });
        this.#observe(created);
        return true;
      } catch (createErr) {
        if (!isAlreadyExists(createErr)) {
          this.#logger.warn(
            { lease: this.#name, error: describeApiError(createErr) },
            "cannot create the lease",
          );
        }
        return false;
      }
    }

    this.#observe(current);
    const spec = current.spec ?? {};
    const holder = spec.holderIdentity ?? "";
    const expired = this.#clock.monotonic() - this.#observedAt >= this.#leaseDurationMs;
    if (holder !== "" && holder !== this.identity && !expired) {
      return false;
    }
    const mine = holder === this.identity && this.#leading;
    const next: V1Lease = {
      ...current,
      spec: {
        ...spec,
        holderIdentity: this.identity,
        leaseDurationSeconds: durationSeconds,
        acquireTime: mine ? spec.acquireTime : now,
        renewTime: now,
        leaseTransitions: (spec.leaseTransitions ?? 0) + (holder === this.identity ? 0 : 1),
      },
    };
    try {
      this.#observe(await this.#client.replace(this.#namespace, this.#name, next));
      return true;
    } catch (err) {
      if (!isConflict(err)) {
        this.#logger.warn({ lease: this.#name, error: describeApiError(err) }, "cannot update the lease");
      }
      return false;
    }
  }

  #observe(lease: V1Lease): void {
    this.#observedLease = lease;
    const record = recordOf(lease);
    if (record !== this.#observedRecord) {
      this.#observedRecord = record;
      this.#observedAt = this.#clock.monotonic();
    }
    const holder = lease.spec?.holderIdentity ?? "";
    if (holder !== "" && holder !== this.#reportedLeader) {
      this.#reportedLeader = holder;
      try {
        this.#options.onNewLeader?.(holder);
      } catch (err) {
        this.#logger.error({ err }, "onNewLeader threw");
      }
    }
  }

  /**
   * Stops campaigning; if leading, aborts the work, waits for it, and hands the Lease over.
   * Idempotent; never throws (a failed release only means others wait out the lease).
   */
  release(): Promise<void> {
    this.#releasing ??= this.#release();
    return this.#releasing;
  }

  async #release(): Promise<void> {
    const wasLeading = this.#leading;
    this.#stop.abort();
    this.#loseLeadership("released");
    this.#resolveEnded?.();
    await this.#workDone;
    const lease = this.#observedLease;
    if (!wasLeading || lease?.spec?.holderIdentity !== this.identity) {
      return;
    }
    const now = new V1MicroTime(this.#clock.now());
    try {
      this.#observe(
        await this.#client.replace(this.#namespace, this.#name, {
          ...lease,
          spec: {
            ...lease.spec,
            holderIdentity: "",
            leaseDurationSeconds: 1,
            acquireTime: now,
            renewTime: now,
          },
        }),
      );
      this.#logger.info(
        { lease: `${this.#namespace}/${this.#name}`, identity: this.identity },
        "lease released",
      );
    } catch (err) {
      this.#logger.warn(
        { lease: this.#name, error: describeApiError(err) },
        "cannot release the lease; others will wait for it to expire",
      );
    }
  }
}
