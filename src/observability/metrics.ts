import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { KubeRequest } from "../kube/client.ts";
import type { QueueMetrics } from "../runtime/workqueue.ts";

/** Which executor ran a Task. */
export type Executor = "redis" | "job";

/** Every way a run of a PeriodicTask can end up, as counted by `cadent_runs_total`. */
export const RUN_OUTCOMES = [
  "created",
  "succeeded",
  "failed",
  "expired",
  "cancelled",
  "missed",
  "skipped",
  "replaced",
] as const;
export type RunOutcome = (typeof RUN_OUTCOMES)[number];

const EXECUTORS: readonly Executor[] = ["redis", "job"];

/**
 * From 1 ms (a publish right on time) to 10 min (a run held back by a long outage, just inside a
 * typical startingDeadlineSeconds), roughly ×2–×2.5 per step so an SLO such as "p99 < 1 s" falls on a
 * bucket boundary.
 */
const SCHEDULE_LAG_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600,
];

/** A reconcile is mostly API round trips: milliseconds normally, tens of seconds when throttled. */
const RECONCILE_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/**
 * The controller's Prometheus metrics, in a registry of their own (never prom-client's global
 * one, so tests and embedders can make as many as they like), together with prom-client's default
 * Node.js process metrics (CPU, memory, event-loop lag, GC, handles).
 *
 * Call sites use the typed methods below; the prom-client objects stay private so label names and
 * values cannot drift from what dashboards expect.
 */
export class ControllerMetrics {
  readonly registry = new Registry();
  readonly #scheduleLag: Histogram<"executor">;
  readonly #runs: Counter<"outcome">;
  readonly #reconcileDuration: Histogram<"controller">;
  readonly #reconcileErrors: Counter<"controller">;
  readonly #queueDepth: Gauge<"queue">;
  readonly #leader: Gauge;
  readonly #informerSynced: Gauge<"resource">;
  readonly #apiRequests: Counter<"verb" | "code">;
  readonly #kubeRequests: Counter<"verb" | "resource" | "subresource" | "code">;
  readonly #redisUp: Gauge;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.#scheduleLag = new Histogram({
      name: "cadent_schedule_lag_seconds",
      help: "Seconds from a run's scheduled time (or a Task's eta) to its publish on Redis or its Job's creation.",
      labelNames: ["executor"],
      buckets: SCHEDULE_LAG_BUCKETS,
      registers,
    });
    this.#runs = new Counter({
      name: "cadent_runs_total",
      help: "PeriodicTask runs by outcome: created, succeeded, failed, expired, cancelled, missed (past the starting deadline), skipped (Forbid) and replaced (Replace).",
      labelNames: ["outcome"],
      registers,
    });
    this.#reconcileDuration = new Histogram({
      name: "cadent_reconcile_duration_seconds",
      help: "Duration of one reconcile, successful or not, by controller.",
      labelNames: ["controller"],
      buckets: RECONCILE_BUCKETS,
      registers,
    });
    this.#reconcileErrors = new Counter({
      name: "cadent_reconcile_errors_total",
      help: "Reconciles that failed (retried with backoff, or terminal), by controller.",
      labelNames: ["controller"],
      registers,
    });
    this.#queueDepth = new Gauge({
      name: "cadent_workqueue_depth",
      help: "Keys waiting in a work queue to be reconciled.",
      labelNames: ["queue"],
      registers,
    });
    this.#leader = new Gauge({
      name: "cadent_leader",
      help: "1 while this replica holds the leader election Lease (or runs without leader election), else 0.",
      registers,
    });
    this.#informerSynced = new Gauge({
      name: "cadent_informer_synced",
      help: "1 once the informer of a resource has delivered its first complete list, else 0.",
      labelNames: ["resource"],
      registers,
    });
    this.#apiRequests = new Counter({
      name: "cadent_api_requests_total",
      help: 'Kubernetes API requests by verb and HTTP status code ("<error>" when no response arrived, "<unseen>" for watches). cadent_kube_requests_total has the same counts by resource too.',
      labelNames: ["verb", "code"],
      registers,
    });
    this.#kubeRequests = new Counter({
      name: "cadent_kube_requests_total",
      help: 'Kubernetes API requests this process made, by verb (get, list, watch, create, update, patch, delete, deletecollection), resource plural, subresource ("status", or "") and HTTP status code ("<error>" when no response arrived, "<unseen>" for watches).',
      labelNames: ["verb", "resource", "subresource", "code"],
      registers,
    });
    this.#redisUp = new Gauge({
      name: "cadent_redis_up",
      help: "1 while the connection to the Redis broker is ready, else 0.",
      registers,
    });

    // Series that exist from the start, so rate() and absent() work before the first event.
    for (const outcome of RUN_OUTCOMES) {
      this.#runs.inc({ outcome }, 0);
    }
    for (const executor of EXECUTORS) {
      this.#scheduleLag.zero({ executor });
    }
    this.#leader.set(0);
    this.#redisUp.set(0);
  }

  /** How late a run or Task started compared with when it was due. */
  observeScheduleLag(executor: Executor, seconds: number): void {
    // A run published a little before its time (clock granularity) is on time, not negative lag.
    this.#scheduleLag.observe({ executor }, Math.max(0, seconds));
  }

  countRun(outcome: RunOutcome, count = 1): void {
    this.#runs.inc({ outcome }, count);
  }

  observeReconcile(controller: string, seconds: number): void {
    this.#reconcileDuration.observe({ controller }, seconds);
  }

  countReconcileError(controller: string): void {
    this.#reconcileErrors.inc({ controller });
  }

  setQueueDepth(queue: string, depth: number): void {
    this.#queueDepth.set({ queue }, depth);
  }

  setLeader(leading: boolean): void {
    this.#leader.set(leading ? 1 : 0);
  }

  setInformerSynced(resource: string, synced: boolean): void {
    this.#informerSynced.set({ resource }, synced ? 1 : 0);
  }

  /** `code` is the HTTP status as text, "<error>" when the request got no response, "<unseen>" for a watch. */
  countApiRequest(request: KubeRequest, code: string): void {
    this.#apiRequests.inc({ verb: request.verb, code });
    this.#kubeRequests.inc({ ...request, code });
  }

  setRedisUp(up: boolean): void {
    this.#redisUp.set(up ? 1 : 0);
  }

  /**
   * The hooks a runtime `WorkQueue` takes (`new WorkQueue({ name, metrics: m.queueMetrics(name) })`),
   * feeding the depth gauge (labelled with the queue name) and the reconcile duration and error
   * series (labelled with the controller name; one queue per controller, so usually the same).
   */
  queueMetrics(queue: string, controller: string = queue): QueueMetrics {
    return {
      depth: (depth) => this.setQueueDepth(queue, depth),
      reconciled: (outcome, durationMs) => {
        this.observeReconcile(controller, durationMs / 1000);
        if (outcome === "error" || outcome === "terminal") {
          this.countReconcileError(controller);
        }
      },
    };
  }

  /** The Content-Type of {@link render}'s output (Prometheus text format 0.0.4). */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Every metric in Prometheus text format. */
  render(): Promise<string> {
    return this.registry.metrics();
  }
}
