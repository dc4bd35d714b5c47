/**
 * A TypeScript task module for `cadent worker`, serving the same task names as the Python Celery
 * app in the seed, so either kind of worker can consume the `celery` queue:
 *
 *   cadent worker --tasks ./examples/ts-worker/tasks.ts --queues celery --concurrency 16
 *
 * Node runs TypeScript directly; a build (tsc) to ./dist/tasks.js works the same way.
 * Arguments arrive as JSON from any producer: validate them before use.
 */
import { setTimeout as delay } from "node:timers/promises";
import { Redis } from "ioredis";
import { TaskError, defineTask } from "cadent/worker";
import type { TaskContext } from "cadent/worker";

/** An argument error that Python callers can catch as `TypeError` / `ValueError`. */
function badArgument(type: "TypeError" | "ValueError", message: string): TaskError {
  return new TaskError(type, [message], { module: "builtins" });
}

/**
 * The seed's hourly clean-up: deletes the keys matching `pattern` (SCAN + UNLINK in batches, so
 * Redis is never blocked), or only counts them with `dry_run`. Stops between batches when the
 * worker aborts the task (time limit, shutdown).
 */
export const delRedisData = defineTask(
  "app.tasks.del_redis_data",
  async ({ kwargs, signal, log }) => {
    const pattern = kwargs["pattern"] ?? "cache:*";
    const dryRun = kwargs["dry_run"] ?? false;
    if (typeof pattern !== "string" || pattern === "")
      throw badArgument("TypeError", "pattern must be a string");
    if (typeof dryRun !== "boolean") throw badArgument("TypeError", "dry_run must be true or false");
    const redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379/0");
    try {
      let cursor = "0";
      let matched = 0;
      do {
        signal.throwIfAborted();
        const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 500);
        cursor = next;
        matched += keys.length;
        if (!dryRun && keys.length > 0) await redis.unlink(...keys);
      } while (cursor !== "0");
      log.info({ pattern, matched, dryRun }, "deleted matching keys");
      return { pattern, deleted: dryRun ? 0 : matched, matched, dry_run: dryRun };
    } finally {
      redis.disconnect();
    }
  },
  // An hourly clean-up that takes longer than half an hour is stuck.
  { timeLimit: { soft: 25 * 60, hard: 30 * 60 } },
);

/** `add(x, y)`, the "hello world" of Celery. */
export const add = defineTask("app.tasks.add", ({ args }) => {
  const [x, y] = args;
  if (typeof x !== "number" || typeof y !== "number") {
    throw badArgument("TypeError", `add expects two numbers, got ${JSON.stringify(args)}`);
  }
  return x + y;
});

/**
 * A monthly report: `kwargs.month` ("2026-11", default: last month), `kwargs.format`. The work is
 * simulated with an abortable wait; a real one would pass `signal` to its database client or fetch.
 */
async function buildReport({ kwargs, signal, log, taskId }: TaskContext) {
  const month = kwargs["month"] ?? previousMonth(new Date());
  const format = kwargs["format"] ?? "json";
  if (typeof month !== "string" || !/^\d{4}-(0[1-9]|1[0-2])$/.test(month)) {
    throw badArgument("ValueError", `month must look like 2026-11, got ${JSON.stringify(month)}`);
  }
  log.info({ month, format }, "building the report");
  await delay(200, undefined, { signal });
  return { month, format, rows: 3, url: `reports/${month}.${String(format)}`, taskId };
}

export const report = defineTask("app.tasks.report", buildReport, {
  timeLimit: { soft: 25 * 60, hard: 30 * 60 },
});
/** The name examples/monthly-report.yaml schedules. */
export const monthlyReport = defineTask("app.tasks.monthly_report", buildReport, {
  timeLimit: { soft: 25 * 60, hard: 30 * 60 },
});

function previousMonth(now: Date): string {
  const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1));
  return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, "0")}`;
}

/** Always fails: a Python caller's `AsyncResult.get()` raises `ValueError(message)`. */
export const fail = defineTask("app.tasks.fail", ({ args }) => {
  const [message = "boom"] = args;
  throw new TaskError("ValueError", [message], { module: "builtins" });
});

/**
 * Retries itself `kwargs.times` times (default 1) like Celery's `self.retry()`, then returns how
 * often it was retried — the same task as the Python app's. Each retry stores RETRY with a
 * KeyError and comes back one second later with `retries + 1`.
 */
export const flaky = defineTask("app.tasks.flaky", ({ kwargs, retries, retry }) => {
  const times = kwargs["times"] ?? 1;
  if (typeof times !== "number" || !Number.isInteger(times) || times < 0) {
    throw badArgument("TypeError", "times must be a whole number");
  }
  if (retries < times) {
    retry({
      countdown: 1,
      maxRetries: times,
      exc: new TaskError("KeyError", [`attempt ${retries}`], { module: "builtins" }),
    });
  }
  return { retries };
});
