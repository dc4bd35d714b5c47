/**
 * The steady load of a chaos scenario and the audit that counts what happened to it.
 *
 * A load is a set of PeriodicTasks of both executors on one short schedule, each bounded by
 * `startTime` and `endTime`, so the set of scheduled times is known exactly in advance whatever the
 * scenario does to the controller meanwhile. Redis runs execute `app.tasks.tally` (in the cadent
 * worker and the Python app alike), which pushes its task id onto a list before it sleeps: every
 * execution is counted in Redis, independently of the status the controller writes.
 *
 * The audit reads the objects from the API server and the tally from Redis, and counts, per
 * PeriodicTask and in total: scheduled times, runs made, duplicates (two Tasks for one time, or a
 * Task for a time that was not scheduled), runs lost (a scheduled time with neither a Task nor a
 * `missed` count), missed runs and their Events, Tasks not in a terminal phase, executions.
 */
import { appendFileSync } from "node:fs";
import { join } from "node:path";
import { Redis } from "ioredis";
import { expect } from "vitest";
import { compileSchedule } from "../../../src/schedule/index.ts";
import { Cadent, GROUP, VERSION, jobPeriodicTask, type CadentObject } from "../../support/cadent.ts";
import { createTestNamespace, k8s } from "../../support/kube.ts";
import { waitFor } from "../../support/ports.ts";
import type { World } from "./world.ts";

export const TERMINAL = new Set(["Succeeded", "Failed", "Expired", "Cancelled"]);

export interface LoadOptions {
  /** PeriodicTasks with the Redis executor (app.tasks.tally on `queue`). */
  redis: number;
  /** PeriodicTasks with the Job executor (kwok Pods that succeed after `jobSeconds`). */
  jobs: number;
  /** Every `periodSeconds` seconds (a divisor of 60); default 3. */
  periodSeconds?: number;
  /** How long the PeriodicTasks fire: startTime + durationSeconds = endTime. */
  durationSeconds: number;
  /** Seconds from now to startTime (time to create the objects); default 8. */
  leadSeconds?: number;
  /** How long one Redis execution sleeps; default 0.5 s. */
  taskSeconds?: number;
  /** How long one Job's Pod runs; default 1 s. */
  jobSeconds?: number;
  /** spec.startingDeadlineSeconds; default 600, so outages shorter than that are caught up. */
  startingDeadlineSeconds?: number;
  concurrencyPolicy?: "Allow" | "Forbid" | "Replace";
}

export interface Counts {
  periodicTasks: number;
  scheduled: number;
  runs: number;
  duplicates: number;
  /** Scheduled times with no Task and not counted in status.runs.missed. */
  lost: number;
  missed: number;
  missedEvents: number;
  skipped: number;
  nonTerminal: number;
  succeeded: number;
  failed: number;
  /** Redis runs: executions recorded by the task itself, and Tasks executed more than once. */
  executions: number;
  reExecuted: number;
  /** Succeeded Redis Tasks that the tally never saw executed. */
  unexecuted: number;
}

export const ZERO: Counts = {
  periodicTasks: 0,
  scheduled: 0,
  runs: 0,
  duplicates: 0,
  lost: 0,
  missed: 0,
  missedEvents: 0,
  skipped: 0,
  nonTerminal: 0,
  succeeded: 0,
  failed: 0,
  executions: 0,
  reExecuted: 0,
  unexecuted: 0,
};

export function addCounts(a: Counts, b: Counts): Counts {
  const sum = { ...a };
  for (const key of Object.keys(sum) as (keyof Counts)[]) sum[key] = a[key] + b[key];
  return sum;
}

const scheduledMs = (o: CadentObject): number =>
  Date.parse(o.metadata.annotations?.["cadent.dev/scheduled-time"] ?? "");
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class Load {
  readonly namespace: string;
  readonly queue: string;
  readonly tallyList: string;
  readonly cadent: Cadent;
  readonly startTime: Date;
  readonly endTime: Date;
  readonly names: string[] = [];
  private readonly options: Required<LoadOptions>;
  private readonly world: World;
  private readonly cleanup: () => Promise<void>;

  private constructor(
    world: World,
    namespace: { name: string; cleanup: () => Promise<void> },
    options: Required<LoadOptions>,
  ) {
    this.world = world;
    this.namespace = namespace.name;
    this.cleanup = namespace.cleanup;
    this.options = options;
    this.queue = `q-${namespace.name}`;
    this.tallyList = `tally:${namespace.name}`;
    this.cadent = new Cadent(world.kc, namespace.name);
    const period = options.periodSeconds * 1000;
    const start = Math.ceil((Date.now() + options.leadSeconds * 1000) / period) * period;
    this.startTime = new Date(start);
    this.endTime = new Date(start + options.durationSeconds * 1000);
  }

  /** Creates a namespace with the load's PeriodicTasks, the first fire `leadSeconds` from now. */
  static async start(world: World, prefix: string, options: LoadOptions): Promise<Load> {
    const ns = await createTestNamespace(world.kc, prefix);
    const load = new Load(world, ns, {
      periodSeconds: 3,
      leadSeconds: 8,
      taskSeconds: 0.5,
      jobSeconds: 1,
      startingDeadlineSeconds: 600,
      concurrencyPolicy: "Allow",
      ...options,
    });
    await load.create();
    return load;
  }

  get schedule(): string {
    return `*/${this.options.periodSeconds} * * * * *`;
  }

  private commonSpec(): Record<string, unknown> {
    const o = this.options;
    return {
      schedule: this.schedule,
      startTime: this.startTime.toISOString(),
      endTime: this.endTime.toISOString(),
      catchUp: "All",
      startingDeadlineSeconds: o.startingDeadlineSeconds,
      concurrencyPolicy: o.concurrencyPolicy,
      successfulRunsHistoryLimit: 100,
      failedRunsHistoryLimit: 100,
    };
  }

  private async create(): Promise<void> {
    const o = this.options;
    const manifests: { name: string; body: object }[] = [];
    for (let i = 0; i < o.redis; i++) {
      const name = `redis-${i}`;
      manifests.push({
        name,
        body: {
          apiVersion: `${GROUP}/${VERSION}`,
          kind: "PeriodicTask",
          metadata: { name },
          spec: {
            ...this.commonSpec(),
            taskTemplate: {
              spec: { task: "app.tasks.tally", args: [o.taskSeconds, this.tallyList], queue: this.queue },
            },
          },
        },
      });
    }
    for (let i = 0; i < o.jobs; i++) {
      const name = `job-${i}`;
      manifests.push({
        name,
        body: jobPeriodicTask(name, this.commonSpec(), {
          "test.cadent.dev/delay": `${o.jobSeconds}s`,
        }),
      });
    }
    for (const m of manifests) {
      await this.cadent.create("periodictasks", m.body);
      this.names.push(m.name);
    }
    if (Date.now() > this.startTime.getTime() - 1000)
      throw new Error("creating the load took longer than leadSeconds: raise it");
  }

  /** Every scheduled time of the load, in ms: startTime ≤ t ≤ endTime. */
  scheduledTimes(): number[] {
    const schedule = compileSchedule({
      expression: this.schedule,
      hashKey: "chaos",
      createdAt: this.startTime,
    });
    const times: number[] = [];
    for (
      let t = schedule.next(new Date(this.startTime.getTime() - 1));
      t && t <= this.endTime;
      t = schedule.next(t)
    ) {
      times.push(t.getTime());
    }
    return times;
  }

  /** Sleeps until the load's last scheduled time has passed (plus `extraMs`). */
  async untilEnd(extraMs = 0): Promise<void> {
    await sleep(Math.max(0, this.endTime.getTime() + extraMs - Date.now()));
  }

  /**
   * Waits until every scheduled time has been dealt with (a run or a missed count) and every run
   * has finished: the point after which nothing in the load changes any more.
   */
  async settle(timeoutMs = 240_000): Promise<void> {
    await this.untilEnd();
    const times = this.scheduledTimes().length;
    let last = "";
    await waitFor(
      `the load in ${this.namespace} to settle`,
      async () => {
        const pts = await this.cadent.list("periodictasks");
        const tasks = await this.cadent.list("tasks");
        const counted = pts.map((pt) => {
          const runs = (pt.status?.["runs"] ?? {}) as Record<string, number>;
          return (runs["total"] ?? 0) + (runs["missed"] ?? 0) + (runs["skipped"] ?? 0);
        });
        const open = tasks.filter((t) => !TERMINAL.has(t.status?.phase ?? ""));
        last = `${counted.filter((c) => c < times).length} PeriodicTasks short of ${times} times; ${open.length} Tasks not finished (${open
          .slice(0, 5)
          .map((t) => `${t.metadata.name}:${t.status?.phase ?? "-"}`)
          .join(", ")})`;
        return counted.every((c) => c >= times) && open.length === 0;
      },
      { timeoutMs, intervalMs: 1_000 },
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${last}`);
    });
  }

  /** Counts what happened to the load; see the module comment. */
  async audit(
    redisUrl = this.world.redis.url,
  ): Promise<{ total: Counts; perObject: Record<string, Counts> }> {
    const expected = this.scheduledTimes();
    const expectedSet = new Set(expected);
    const pts = await this.cadent.list("periodictasks");
    const tasks = await this.cadent.list("tasks");
    const events = (
      await this.world.kc.makeApiClient(k8s.CoreV1Api).listNamespacedEvent({ namespace: this.namespace })
    ).items;
    const redis = new Redis(redisUrl);
    const executions = new Map<string, number>();
    try {
      for (const id of await redis.lrange(this.tallyList, 0, -1))
        executions.set(id, (executions.get(id) ?? 0) + 1);
    } finally {
      redis.disconnect();
    }

    const perObject: Record<string, Counts> = {};
    let total = ZERO;
    for (const pt of pts) {
      const name = pt.metadata.name ?? "";
      const mine = tasks.filter((t) => t.metadata.labels?.["cadent.dev/periodic-task"] === name);
      const scheduledRuns = mine.filter((t) => t.metadata.annotations?.["cadent.dev/trigger"] !== "manual");
      const byTime = new Map<number, number>();
      for (const t of scheduledRuns) byTime.set(scheduledMs(t), (byTime.get(scheduledMs(t)) ?? 0) + 1);
      const status = (pt.status?.["runs"] ?? {}) as Record<string, number>;
      const missed = status["missed"] ?? 0;
      const skipped = status["skipped"] ?? 0;
      const ran = expected.filter((t) => byTime.has(t)).length;
      const isRedis =
        (pt.spec?.["taskTemplate"] as { spec?: { jobTemplate?: unknown } } | undefined)?.spec?.jobTemplate ===
        undefined;
      const redisRuns = isRedis ? mine : [];
      const counts: Counts = {
        periodicTasks: 1,
        scheduled: expected.length,
        runs: scheduledRuns.length,
        duplicates:
          [...byTime.values()].reduce((n, c) => n + c - 1, 0) +
          [...byTime.keys()].filter((t) => !expectedSet.has(t)).length,
        lost: Math.max(0, expected.length - ran - missed - skipped),
        missed,
        missedEvents: events
          .filter((e) => e.involvedObject.name === name && e.reason === "MissedRuns")
          .reduce((n, e) => n + (e.count ?? 1), 0),
        skipped,
        nonTerminal: mine.filter((t) => !TERMINAL.has(t.status?.phase ?? "")).length,
        succeeded: mine.filter((t) => t.status?.phase === "Succeeded").length,
        failed: mine.filter((t) => t.status?.phase === "Failed").length,
        executions: redisRuns.reduce((n, t) => n + (executions.get(String(t.status?.["taskId"])) ?? 0), 0),
        reExecuted: redisRuns.filter((t) => (executions.get(String(t.status?.["taskId"])) ?? 0) > 1).length,
        unexecuted: redisRuns.filter(
          (t) => t.status?.phase === "Succeeded" && !executions.has(String(t.status["taskId"])),
        ).length,
      };
      perObject[name] = counts;
      total = addCounts(total, counts);
    }
    return { total, perObject };
  }

  /**
   * The assertions every scenario shares: every scheduled time was run or counted missed (with an
   * Event), none twice, every run finished, every succeeded Redis run was executed. Returns the
   * counts after recording them in the chaos report.
   */
  async expectNothingLost(scenario: string, extra: Record<string, number | string> = {}): Promise<Counts> {
    const { total, perObject } = await this.audit();
    report(this.world, scenario, total, extra);
    const detail = JSON.stringify(perObject, null, 1);
    expect(total.periodicTasks, "PeriodicTasks audited").toBe(this.names.length);
    expect(total.duplicates, `duplicates\n${detail}`).toBe(0);
    expect(total.lost, `runs lost without a missed count\n${detail}`).toBe(0);
    expect(total.runs + total.missed + total.skipped, `runs + missed + skipped\n${detail}`).toBe(
      total.scheduled,
    );
    if (total.missed > 0) expect(total.missedEvents, "an Event for missed runs").toBeGreaterThan(0);
    expect(total.nonTerminal, `Tasks not finished\n${detail}`).toBe(0);
    expect(total.unexecuted, `succeeded Redis Tasks never executed\n${detail}`).toBe(0);
    return total;
  }

  async delete(): Promise<void> {
    await this.cleanup();
  }
}

/**
 * Appends a scenario's counts to the run's chaos report (`<workDir>/chaos-report.jsonl`, and
 * CADENT_CHAOS_REPORT when set) and prints them: docs/reliability.md quotes these lines.
 */
export function report(
  world: World,
  scenario: string,
  counts: Counts,
  extra: Record<string, number | string> = {},
): void {
  const line = JSON.stringify({ scenario, at: new Date().toISOString(), ...counts, ...extra });
  process.stdout.write(`[chaos] ${line}\n`);
  for (const file of [join(world.workDir, "..", "chaos-report.jsonl"), process.env.CADENT_CHAOS_REPORT])
    if (file) appendFileSync(file, `${line}\n`);
}
