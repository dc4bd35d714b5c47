/**
 * The PeriodicTask reconciler: reads the PeriodicTask and its runs, lets
 * {@link planPeriodicTask} decide, and carries the plan out in this order:
 *
 * 1. validate: the spec, the schedule and time zone, and (Job executor) the template by a
 *    server-side dry run, once per generation; an invalid one gets Ready=False and a Warning
 *    Event, and no runs;
 * 2. create the runs (a Task named `<periodictask>-<unix seconds>`; AlreadyExists means it was
 *    made already and is adopted, never made twice);
 * 3. cancel replaced runs, prune history, record Events;
 * 4. write the status, conditional on the resourceVersion the plan was made from — at once, or a
 *    few seconds later with the next change when all it records is routine (status-coalescing.ts);
 * 5. requeue at the next due time (no polling).
 */
import type { BatchV1Api, CustomObjectsApi, KubernetesObject } from "@kubernetes/client-node";
import {
  ANNOTATIONS,
  API_VERSION,
  GROUP,
  LABELS,
  PERIODIC_TASK_KIND,
  PERIODIC_TASK_PLURAL,
  READY_REASONS,
  TASK_KIND,
  TASK_PLURAL,
  TRIGGERS,
  VERSION,
  parsePeriodicTask,
  type PeriodicTask,
  type PeriodicTaskStatus,
  type TaskPhase,
  type Trigger,
} from "../api/index.ts";
import type { TaskContext } from "../executors/executor.ts";
import { buildJob } from "../executors/job.ts";
import type { ControllerMetrics } from "../observability/metrics.ts";
import { MAX_TIMER_MS } from "../runtime/clock.ts";
import { setCondition } from "../runtime/conditions.ts";
import { apiErrorCode, describeApiError, isAlreadyExists, isNotFound } from "../runtime/errors.ts";
import type { EventRecorder } from "../runtime/events.ts";
import type { Logger } from "../runtime/logger.ts";
import { mergePatchOptions } from "../runtime/status.ts";
import type { ReadonlyStore } from "../runtime/store.ts";
import { objectKey, splitKey } from "../runtime/store.ts";
import { Action } from "../runtime/workqueue.ts";
import { ScheduleError, compileSchedule, type CompiledSchedule } from "../schedule/index.ts";
import { deleteTask, writeStatus } from "./objects.ts";
import { planPeriodicTask, runCreatedEvent, type PlannedRun, type RunView } from "./periodic-task-plan.ts";
import { runTaskId } from "./runs.ts";
import { CACHE_CATCH_UP_MS, OwnWrites, periodicTaskChange, StatusCoalescer } from "./status-coalescing.ts";

export interface PeriodicTaskReconcilerOptions {
  periodicTasks: ReadonlyStore<KubernetesObject>;
  tasks: ReadonlyStore<KubernetesObject>;
  customObjects: CustomObjectsApi;
  batch: BatchV1Api;
  events: EventRecorder;
  metrics: ControllerMetrics | undefined;
  logger: Logger;
  now: () => Date;
  /** Checked right before every write: a replica that lost its lease must not act. */
  isLeading: () => boolean;
  /**
   * Fast firing for Redis-executor runs (RedisExecutor): the first attempt is published at the fire
   * time, before the Task exists, and journalled so a crash before the Task's creation cannot lose
   * the run. Undefined: no fast path.
   */
  early?: EarlyPublisher | undefined;
  /** Called after a fire-time publish (see `fire`), to reconcile the PeriodicTask right away. */
  onFired?: ((key: string) => void) | undefined;
}

export interface EarlyPublisher {
  publish(ctx: TaskContext, attempt: number, journal: { periodicTaskUid: string }): Promise<unknown>;
  earlyPublished(periodicTaskUid: string, afterMs: number): Promise<{ name: string; scheduledTime: Date }[]>;
  forgetEarlyPublished(periodicTaskUid: string, uptoMs: number): Promise<void>;
}

interface Invalid {
  reason: string;
  message: string;
}

type TaskObject = KubernetesObject & {
  status?: { phase?: TaskPhase; startTime?: string; completionTime?: string };
};

/** A Task of the cache as the planner sees it. */
export function runView(obj: TaskObject): RunView {
  const annotations = obj.metadata?.annotations ?? {};
  const trigger = annotations[ANNOTATIONS.trigger];
  const scheduled = Date.parse(annotations[ANNOTATIONS.scheduledTime] ?? "");
  return {
    name: obj.metadata?.name ?? "",
    uid: obj.metadata?.uid,
    trigger: (TRIGGERS as readonly string[]).includes(trigger ?? "") ? (trigger as Trigger) : "schedule",
    scheduledTime: new Date(
      Number.isNaN(scheduled) ? Date.parse(String(obj.metadata?.creationTimestamp ?? 0)) : scheduled,
    ),
    runNowToken: annotations[ANNOTATIONS.runNowToken],
    phase: obj.status?.phase,
    startTime: obj.status?.startTime,
    completionTime: obj.status?.completionTime,
    cancelRequested: annotations[ANNOTATIONS.cancel] !== undefined,
  };
}

/** A run just made (or found made) by this process, before the cache shows it. */
function madeRunView(run: PlannedRun, uid: string | undefined): RunView {
  return {
    name: run.name,
    uid,
    trigger: run.trigger,
    scheduledTime: run.scheduledTime,
    runNowToken: run.runNowToken,
    phase: undefined,
    startTime: undefined,
    completionTime: undefined,
    cancelRequested: false,
  };
}

/** How long a graceful stop may spend writing the status changes still waiting. */
const FLUSH_BUDGET_MS = 5_000;

/** Test-only fault points (docs/development.md): die like kill -9 inside a critical window. */
const FAULT_INJECTION = process.env["CADENT_FAULT_INJECTION"];

/** The schedule of a PeriodicTask; `H` is hashed from namespace/name (stable across re-applies). */
function scheduleOf(pt: PeriodicTask, namespace: string, name: string, created: Date): CompiledSchedule {
  return compileSchedule({
    expression: pt.spec.schedule,
    timeZone: pt.spec.timeZone,
    hashKey: `${namespace}/${name}`,
    createdAt: created,
  });
}

/** Runs published at their fire time: Redis-executor runs due when made (no eta or countdown). */
function firesEarly(pt: PeriodicTask): boolean {
  const spec = pt.spec.taskTemplate.spec;
  return !spec.jobTemplate && !spec.eta && !spec.countdown;
}

const iso = (t: Date): string => t.toISOString().replace(/\.\d{3}Z$/, "Z");

export class PeriodicTaskReconciler {
  readonly #o: PeriodicTaskReconcilerOptions;
  /** Template dry-run verdicts by uid, for the generation they were made for. */
  readonly #templateChecks = new Map<string, { generation: number; invalid: Invalid | undefined }>();
  /** Fire-time publish timers, by PeriodicTask key. */
  readonly #fireTimers = new Map<string, ReturnType<typeof setTimeout>>();
  /**
   * Validation results by cached object: an informer replaces the object on every change, so one
   * parse serves every reconcile and fire of a version (zod was an eighth of a fire's CPU).
   */
  readonly #parsed = new WeakMap<object, ReturnType<typeof parsePeriodicTask>>();

  #parse(obj: KubernetesObject): ReturnType<typeof parsePeriodicTask> {
    let parsed = this.#parsed.get(obj);
    if (!parsed) this.#parsed.set(obj, (parsed = parsePeriodicTask(obj)));
    return parsed;
  }

  /** The newest scheduled time each PeriodicTask's fire-time publish has sent (this process). */
  readonly #firedUpTo = new Map<string, number>();
  /**
   * Runs this process made that the written status does not record yet, by PeriodicTask key and
   * run name (controller-runtime's "expectations"): the planner adopts them even before the cache
   * shows them, and, when a user deletes one first, still counts it (as deleted).
   */
  readonly #made = new Map<string, Map<string, RunView>>();
  /** Runs this process asked to delete that the cache still shows, by PeriodicTask key: asked once. */
  readonly #pruning = new Map<string, Set<string>>();
  readonly #coalescer = new StatusCoalescer();
  readonly #ownWrites = new OwnWrites();
  /** Shutting down: write every change at once, arm no fire-time timer. */
  #closed = false;

  constructor(options: PeriodicTaskReconcilerOptions) {
    this.#o = options;
  }

  async reconcile(key: string): Promise<Action> {
    const obj = this.#o.periodicTasks.get(key);
    if (!obj) {
      this.#cancelFire(key);
      this.#firedUpTo.delete(key);
      this.#made.delete(key);
      this.#pruning.delete(key);
      this.#coalescer.settled(key);
      this.#ownWrites.forget(key);
      return Action.awaitChange();
    }
    // Our last status write is on its way to the cache, and brings the PeriodicTask back here.
    if (this.#ownWrites.isBehind(key, obj.metadata?.resourceVersion))
      return Action.requeueAfter(CACHE_CATCH_UP_MS);
    const { namespace = "", name } = splitKey(key);
    const uid = obj.metadata?.uid ?? "";
    const generation = obj.metadata?.generation ?? 0;
    const now = this.#o.now();
    const prev = ((obj as { status?: PeriodicTaskStatus }).status ?? {}) as PeriodicTaskStatus;

    // 1. Validate.
    const parsed = this.#parse(obj);
    if (!parsed.ok) {
      await this.#reportInvalid(obj, prev, { reason: READY_REASONS.invalidTemplate, message: parsed.error });
      return Action.awaitChange();
    }
    const pt = parsed.value;
    const created = new Date(obj.metadata?.creationTimestamp ?? now);
    let schedule: CompiledSchedule | undefined;
    let invalid: Invalid | undefined;
    try {
      schedule = scheduleOf(pt, namespace, name, created);
    } catch (err) {
      if (!(err instanceof ScheduleError)) throw err;
      invalid = { reason: err.reason, message: err.message };
    }
    const templateInvalid = await this.#checkTemplate(obj, pt, namespace, name, generation);
    invalid = templateInvalid ?? invalid;

    // 2. Read the runs.
    const runs = this.#runs(key, uid, prev);
    const journalled = await this.#recoverEarlyRuns(key, obj, pt, namespace, prev, created, runs);
    const deletedActive = await this.#confirmDeleted(namespace, prev, new Set(runs.map((r) => r.name)));
    const plan = planPeriodicTask({
      name,
      uid,
      generation,
      creationTimestamp: created,
      runNowToken: templateInvalid ? undefined : obj.metadata?.annotations?.[ANNOTATIONS.runNow],
      spec: pt.spec,
      status: prev,
      schedule: invalid ? undefined : schedule,
      runs,
      deletedActive,
      now,
    });

    // 3. Act.
    this.#assertLeading();
    const uids = new Map<string, string>();
    for (const run of plan.create) {
      const published = await this.#publishEarly(obj, pt, namespace, run);
      // Between publishing a run's message and creating its Task.
      if (published && FAULT_INJECTION === "crash-after-early-publish") process.kill(process.pid, "SIGKILL");
      const made = await this.#createRun(key, obj, pt, namespace, run);
      if (made) uids.set(run.name, made);
      // Between creating a run and recording it in status: the status-as-commit-log window.
      if (made && FAULT_INJECTION === "crash-after-run-created") process.kill(process.pid, "SIGKILL");
    }
    for (const victim of plan.cancel)
      await this.#cancelRun(namespace, victim, plan.create.at(-1)?.name ?? "");
    await this.#prune(key, namespace, plan.prune, runs);

    // 4. Status.
    const status = plan.status;
    status.active = status.active?.map((a) =>
      a.uid || !uids.has(a.name) ? a : { ...a, uid: uids.get(a.name) },
    );
    const ready = invalid
      ? { status: "False" as const, ...invalid }
      : plan.finished
        ? { status: "False" as const, reason: READY_REASONS.finished, message: plan.finished }
        : pt.spec.suspend
          ? {
              status: "True" as const,
              reason: "Suspended",
              message: "suspend is true: no scheduled runs are made",
            }
          : {
              status: "True" as const,
              reason: "Scheduled",
              message: status.nextScheduleTime ? `next run at ${status.nextScheduleTime}` : "waiting",
            };
    if (invalid && prev.conditions?.find((c) => c.type === "Ready")?.message !== invalid.message) {
      this.#o.events.event(obj, "Warning", invalid.reason, invalid.message);
    }
    if (
      plan.finished &&
      prev.conditions?.find((c) => c.type === "Ready")?.reason !== READY_REASONS.finished
    ) {
      this.#o.events.event(obj, "Normal", READY_REASONS.finished, plan.finished);
    }
    status.conditions = setCondition(
      prev.conditions,
      { type: "Ready", ...ready, observedGeneration: generation },
      now,
    );
    if (invalid) delete status.nextScheduleTime;
    const change = periodicTaskChange(prev, status, plan);
    const decision = this.#coalescer.decide(
      key,
      this.#closed && change === "routine" ? "urgent" : change,
      now.getTime(),
    );
    if (decision.write) {
      await this.#writeStatus(obj, prev, status);
      this.#coalescer.settled(key);
      if (this.#o.early && (journalled || plan.create.length) && status.lastScheduleTime) {
        await this.#o.early
          .forgetEarlyPublished(uid, Date.parse(status.lastScheduleTime))
          .catch((err: unknown) =>
            this.#o.logger.debug({ namespace, name, err }, "cannot trim the early journal"),
          );
      }
      // Only now is the plan committed: a plan whose status write failed (or waits) is made again,
      // and its Events and counts with it. RunCreated went out with the Task (#createRun).
      for (const e of plan.events)
        if (e.run === undefined) this.#o.events.event(obj, e.type, e.reason, e.message);
      const m = this.#o.metrics;
      if (m) {
        for (const outcome of ["missed", "skipped", "replaced"] as const) {
          if (plan.outcomes[outcome]) m.countRun(outcome, plan.outcomes[outcome]);
        }
      }
    }

    // 5. Next time: the reconcile, and (Redis runs) a fire-time publish ahead of it.
    const wakeAt = invalid ? undefined : plan.wakeAt;
    if (wakeAt && !this.#closed) this.#scheduleFire(key, pt, wakeAt);
    else this.#cancelFire(key);
    const lookAgainAt = decision.write ? undefined : decision.lookAgainAt;
    const next = Math.min(wakeAt?.getTime() ?? Infinity, lookAgainAt ?? Infinity);
    if (next !== Infinity) return Action.requeueAfter(Math.max(0, next - now.getTime()) + 100);
    return Action.awaitChange();
  }

  /**
   * The runs the planner sees: the cache's, plus those this process made that the written status
   * does not record yet and the cache does not show (yet, or any more).
   */
  #runs(key: string, uid: string, prev: PeriodicTaskStatus): RunView[] {
    const runs = this.#o.tasks.byOwner(uid).map((t) => runView(t as TaskObject));
    const made = this.#made.get(key);
    if (!made) return runs;
    const cached = new Set(runs.map((r) => r.name));
    const committedUpTo = prev.lastScheduleTime ? Date.parse(prev.lastScheduleTime) : -Infinity;
    for (const [name, run] of made) {
      const committed =
        run.trigger === "manual"
          ? run.runNowToken === prev.lastRunNowToken || cached.has(name)
          : run.scheduledTime.getTime() <= committedUpTo;
      if (committed) made.delete(name);
      else if (!cached.has(name)) runs.push(run);
    }
    if (made.size === 0) this.#made.delete(key);
    return runs;
  }

  /** Deletes the runs beyond the history limits, each once while the cache still shows it. */
  async #prune(
    key: string,
    namespace: string,
    names: readonly string[],
    runs: readonly RunView[],
  ): Promise<void> {
    const asked = this.#pruning.get(key) ?? new Set<string>();
    const present = new Set(runs.map((r) => r.name));
    for (const name of asked) if (!present.has(name)) asked.delete(name);
    for (const name of names) {
      if (asked.has(name)) continue;
      await deleteTask(this.#o.customObjects, namespace, name);
      asked.add(name);
    }
    if (asked.size > 0) this.#pruning.set(key, asked);
    else this.#pruning.delete(key);
  }

  /**
   * Fast firing for many PeriodicTasks due at once: at the due time, plans from the cache with no
   * API call and publishes every Redis run the next reconcile will make, all concurrently (one
   * round trip each, pipelined on one connection), then asks for that reconcile, which creates the
   * Tasks and finds the messages published (the publish is idempotent per task id and attempt, and
   * journalled so a crash before the Task exists cannot lose the run). Manual runs are left to
   * the reconcile. Never throws: a failure only loses the head start.
   */
  async fire(key: string): Promise<void> {
    try {
      const obj = this.#o.periodicTasks.get(key);
      if (!obj || !this.#o.early || !this.#o.isLeading()) return;
      const parsed = this.#parse(obj);
      if (!parsed.ok) return;
      const pt = parsed.value;
      if (!firesEarly(pt)) return;
      const { namespace = "", name } = splitKey(key);
      const created = new Date(obj.metadata?.creationTimestamp ?? 0);
      const schedule = scheduleOf(pt, namespace, name, created);
      const uid = obj.metadata?.uid ?? "";
      const status = ((obj as { status?: PeriodicTaskStatus }).status ?? {}) as PeriodicTaskStatus;
      const plan = planPeriodicTask({
        name,
        uid,
        generation: obj.metadata?.generation ?? 0,
        creationTimestamp: created,
        runNowToken: undefined,
        spec: pt.spec,
        status,
        schedule,
        runs: this.#runs(key, uid, status),
        deletedActive: new Set(),
        now: this.#o.now(),
      });
      // The next fire is armed here too, not only by the reconcile: when reconciles lag behind
      // (thousands of runs due together, each a Task to create through the API server), the next
      // fire time must not wait for them. The plan's wakeAt is the fire after the runs it makes.
      if (plan.wakeAt && plan.wakeAt.getTime() > this.#o.now().getTime() && !this.#closed)
        this.#scheduleFire(key, pt, plan.wakeAt);
      // Runs an earlier fire published are left to the reconcile that still has to create them.
      const firedUpTo = this.#firedUpTo.get(key) ?? -Infinity;
      const fresh = plan.create.filter((run) => run.scheduledTime.getTime() > firedUpTo);
      const newest = Math.max(firedUpTo, ...fresh.map((run) => run.scheduledTime.getTime()));
      if (newest > -Infinity) this.#firedUpTo.set(key, newest);
      const published = await Promise.all(fresh.map((run) => this.#publishEarly(obj, pt, namespace, run)));
      // Between publishing runs' messages and creating their Tasks.
      if (published.includes(true) && FAULT_INJECTION === "crash-after-early-publish") {
        process.kill(process.pid, "SIGKILL");
      }
    } catch (err) {
      this.#o.logger.debug({ key, err }, "fire-time publish skipped");
    } finally {
      this.#o.onFired?.(key);
    }
  }

  #scheduleFire(key: string, pt: PeriodicTask, at: Date): void {
    this.#cancelFire(key);
    if (!this.#o.early || !firesEarly(pt)) return;
    // A couple of ms late rather than early: an early timer would find nothing due yet.
    const timer = setTimeout(
      () => {
        this.#fireTimers.delete(key);
        void this.fire(key);
      },
      // From now, not from the start of the reconcile, which may have taken a while.
      Math.min(MAX_TIMER_MS, Math.max(0, at.getTime() - this.#o.now().getTime()) + 2),
    );
    timer.unref();
    this.#fireTimers.set(key, timer);
  }

  #cancelFire(key: string): void {
    clearTimeout(this.#fireTimers.get(key));
    this.#fireTimers.delete(key);
  }

  /**
   * Stops every fire-time timer (shutdown, lost lease); from now on every status change is
   * written at once.
   */
  close(): void {
    this.#closed = true;
    for (const key of [...this.#fireTimers.keys()]) this.#cancelFire(key);
  }

  /**
   * After {@link close}, once the work queue has drained and while still leading (before the Lease
   * is released): reconciles every PeriodicTask whose status change is still waiting, so a
   * graceful stop leaves each status recording every run made. What is not written within
   * `budgetMs` (a very large backlog) the next leader adopts. Never throws.
   */
  async flush(budgetMs: number = FLUSH_BUDGET_MS): Promise<void> {
    const deadline = performance.now() + budgetMs;
    for (const key of this.#coalescer.pending()) {
      if (!this.#closed || performance.now() > deadline || !this.#o.isLeading()) return;
      try {
        await this.reconcile(key);
      } catch (err) {
        this.#o.logger.debug({ key, err }, "cannot write a waiting status; the next leader will");
      }
    }
  }

  #assertLeading(): void {
    if (!this.#o.isLeading()) throw new Error("not the leader any more: not acting");
  }

  async #reportInvalid(obj: KubernetesObject, prev: PeriodicTaskStatus, invalid: Invalid): Promise<void> {
    const condition = prev.conditions?.find((c) => c.type === "Ready");
    if (condition?.message === invalid.message && condition.status === "False") return;
    this.#o.events.event(obj, "Warning", invalid.reason, invalid.message);
    this.#assertLeading();
    await this.#writeStatus(obj, prev, {
      ...prev,
      conditions: setCondition(
        prev.conditions,
        { type: "Ready", status: "False", ...invalid, observedGeneration: obj.metadata?.generation },
        this.#o.now(),
      ),
    });
  }

  /** A server-side dry run of the Job the template makes, once per generation. */
  async #checkTemplate(
    obj: KubernetesObject,
    pt: PeriodicTask,
    namespace: string,
    name: string,
    generation: number,
  ): Promise<Invalid | undefined> {
    if (!pt.spec.taskTemplate.spec.jobTemplate) return undefined;
    const uid = obj.metadata?.uid ?? "";
    const cached = this.#templateChecks.get(uid);
    if (cached?.generation === generation) return cached.invalid;
    const runName = `${name}-dryrun`;
    const job = buildJob({
      task: {
        apiVersion: API_VERSION,
        kind: TASK_KIND,
        metadata: { name: runName },
        spec: pt.spec.taskTemplate.spec,
      },
      object: obj,
      namespace,
      name: runName,
      uid,
      taskId: runTaskId(uid, runName),
      scheduledTime: this.#o.now(),
      status: {},
      now: this.#o.now(),
    });
    let invalid: Invalid | undefined;
    try {
      await this.#o.batch.createNamespacedJob({ namespace, body: job, dryRun: "All" });
    } catch (err) {
      const code = apiErrorCode(err);
      if (code !== 422 && code !== 400) throw err;
      invalid = {
        reason: READY_REASONS.invalidTemplate,
        message: `spec.taskTemplate.spec.jobTemplate: the API server refuses the Job it makes: ${describeApiError(err)}`,
      };
    }
    this.#templateChecks.set(uid, { generation, invalid });
    return invalid;
  }

  /** Names in status.active absent from the cache that the API server confirms are gone. */
  async #confirmDeleted(
    namespace: string,
    prev: PeriodicTaskStatus,
    cached: Set<string>,
  ): Promise<Set<string>> {
    const gone = new Set<string>();
    for (const { name } of prev.active ?? []) {
      if (cached.has(name)) continue;
      try {
        await this.#o.customObjects.getNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          plural: TASK_PLURAL,
          namespace,
          name,
        });
      } catch (err) {
        if (isNotFound(err)) gone.add(name);
        else throw err;
      }
    }
    return gone;
  }

  /**
   * Runs whose message went out early but whose Task was never created (the controller died in
   * between): create the Task now, so the planner adopts the run instead of counting it missed.
   * Returns whether the journal had anything newer than the status records.
   */
  async #recoverEarlyRuns(
    key: string,
    obj: KubernetesObject,
    pt: PeriodicTask,
    namespace: string,
    prev: PeriodicTaskStatus,
    created: Date,
    runs: RunView[],
  ): Promise<boolean> {
    const early = this.#o.early;
    if (!early || pt.spec.taskTemplate.spec.jobTemplate) return false;
    const uid = obj.metadata?.uid ?? "";
    const after = prev.lastScheduleTime ? Date.parse(prev.lastScheduleTime) : created.getTime() - 1;
    let journal: { name: string; scheduledTime: Date }[];
    try {
      journal = await early.earlyPublished(uid, after);
    } catch (err) {
      this.#o.logger.debug({ namespace, err }, "cannot read the early journal; Redis is away");
      return false;
    }
    const known = new Set(runs.map((r) => r.name));
    for (const entry of journal) {
      if (known.has(entry.name)) continue;
      this.#assertLeading();
      const run: PlannedRun = { name: entry.name, scheduledTime: entry.scheduledTime, trigger: "schedule" };
      runs.push(madeRunView(run, await this.#createRun(key, obj, pt, namespace, run)));
    }
    return journal.length > 0;
  }

  /**
   * Fast firing: a Redis run's message goes out at the fire time with its deterministic task id,
   * without waiting for the Task's round trip through the API server; the Task reconciler finds
   * the attempt already published. A failure here only loses the head start.
   */
  async #publishEarly(
    obj: KubernetesObject,
    pt: PeriodicTask,
    namespace: string,
    run: PlannedRun,
  ): Promise<boolean> {
    const early = this.#o.early;
    if (!early || run.trigger === "manual" || !firesEarly(pt)) return false;
    const spec = pt.spec.taskTemplate.spec;
    const now = this.#o.now();
    try {
      await early.publish(
        {
          task: { apiVersion: API_VERSION, kind: TASK_KIND, metadata: { name: run.name }, spec },
          object: { metadata: { name: run.name, namespace, creationTimestamp: now } },
          namespace,
          name: run.name,
          uid: "",
          taskId: runTaskId(obj.metadata?.uid ?? "", run.name),
          scheduledTime: run.scheduledTime,
          status: {},
          now,
        },
        1,
        { periodicTaskUid: obj.metadata?.uid ?? "" },
      );
      return true;
    } catch (err) {
      this.#o.logger.warn(
        { namespace, name: run.name, err },
        "early publish failed; the Task will publish it",
      );
      return false;
    }
  }

  /**
   * Creates a run; returns its uid, or undefined when it existed already (adopted). A run made
   * here is announced (RunCreated, `cadent_runs_total{outcome="created"}`) at once, and expected
   * (see #made) until a written status records it.
   */
  async #createRun(
    key: string,
    obj: KubernetesObject,
    pt: PeriodicTask,
    namespace: string,
    run: PlannedRun,
  ): Promise<string | undefined> {
    const template = pt.spec.taskTemplate;
    const rawSpec = (obj as { spec?: { taskTemplate?: { spec?: unknown } } }).spec?.taskTemplate?.spec;
    const body = {
      apiVersion: API_VERSION,
      kind: TASK_KIND,
      metadata: {
        name: run.name,
        namespace,
        labels: { ...template.metadata?.labels, [LABELS.periodicTask]: obj.metadata?.name ?? "" },
        annotations: {
          ...template.metadata?.annotations,
          [ANNOTATIONS.scheduledTime]: iso(run.scheduledTime),
          [ANNOTATIONS.trigger]: run.trigger,
          ...(run.runNowToken !== undefined ? { [ANNOTATIONS.runNowToken]: run.runNowToken } : {}),
        },
        ownerReferences: [
          {
            apiVersion: API_VERSION,
            kind: PERIODIC_TASK_KIND,
            name: obj.metadata?.name ?? "",
            uid: obj.metadata?.uid ?? "",
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      spec: rawSpec ?? template.spec,
    };
    try {
      const made: unknown = await this.#o.customObjects.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        plural: TASK_PLURAL,
        namespace,
        body,
      });
      const uid = (made as KubernetesObject).metadata?.uid;
      this.#o.logger.info({ namespace, name: run.name, trigger: run.trigger }, "run created");
      const expected = this.#made.get(key) ?? new Map<string, RunView>();
      expected.set(run.name, madeRunView(run, uid));
      this.#made.set(key, expected);
      const announced = runCreatedEvent(run);
      // Scheduled runs are routine (a spam-filter budget shared with their Tasks); a manual run
      // answers an explicit request, so it is a decision.
      this.#o.events.event(obj, announced.type, announced.reason, announced.message, {
        routine: run.trigger !== "manual",
      });
      this.#o.metrics?.countRun("created");
      return uid;
    } catch (err) {
      if (isAlreadyExists(err)) return undefined;
      throw err;
    }
  }

  async #cancelRun(namespace: string, name: string, replacement: string): Promise<void> {
    try {
      await this.#o.customObjects.patchNamespacedCustomObject(
        {
          group: GROUP,
          version: VERSION,
          plural: TASK_PLURAL,
          namespace,
          name,
          body: { metadata: { annotations: { [ANNOTATIONS.cancel]: `replaced by ${replacement}` } } },
        },
        mergePatchOptions,
      );
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  async #writeStatus(
    obj: KubernetesObject,
    prev: PeriodicTaskStatus,
    next: PeriodicTaskStatus,
  ): Promise<void> {
    if (JSON.stringify(prev) === JSON.stringify(next)) return;
    this.#assertLeading();
    const written = await writeStatus(this.#o.customObjects, PERIODIC_TASK_PLURAL, obj, prev, next);
    this.#ownWrites.wrote(objectKey(obj), obj.metadata?.resourceVersion, written);
  }
}
