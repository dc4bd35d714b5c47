/**
 * `cadent worker` options: flag, else environment variable, else default — the controller's
 * convention — validated into {@link WorkerCliOptions}, with errors that name the flag, its
 * variable and where the bad value came from.
 */
import { hostname } from "node:os";
import { DEFAULT_RESULT_EXPIRES_SECONDS, DEFAULT_VISIBILITY_TIMEOUT_SECONDS } from "../celery/index.ts";
import { LOG_LEVELS, redactUrl } from "../observability/logger.ts";
import type { LogLevel } from "../observability/logger.ts";
import { DEFAULT_DEAD_LETTER_KEY } from "./dead-letter.ts";
import { DEFAULT_CONCURRENCY, DEFAULT_PREFETCH_MULTIPLIER, DEFAULT_SHUTDOWN_GRACE_MS } from "./worker.ts";
import { OptionsError } from "../cli/options-error.ts";
import { REDIS_FLAGS } from "../cli/redis-options.ts";

export interface WorkerCliOptions {
  /** Module paths whose exported task definitions are registered. */
  readonly tasks: readonly string[];
  readonly queues: readonly string[];
  readonly concurrency: number;
  readonly prefetchMultiplier: number;
  readonly visibilityTimeoutSeconds: number;
  /** May carry a password: log it only through `redactUrl`. */
  readonly redisUrl: string;
  readonly redisPasswordFile: string | undefined;
  readonly hostname: string;
  readonly logLevel: LogLevel;
  readonly shutdownGraceMs: number;
  /** 0: results never expire. */
  readonly resultExpiresSeconds: number;
  readonly deadLetterKey: string;
}

export type WorkerFlagName =
  | "tasks"
  | "queues"
  | "concurrency"
  | "prefetchMultiplier"
  | "visibilityTimeout"
  | "redisUrl"
  | "redisPasswordFile"
  | "hostname"
  | "logLevel"
  | "shutdownGrace"
  | "resultExpires"
  | "deadLetterKey";

/** Flag values as commander hands them over; `tasks` may be given several times. */
export type WorkerFlags = Partial<Record<WorkerFlagName, string | string[]>>;

export interface WorkerFlagSpec {
  readonly flag: string;
  readonly value: string;
  readonly env: string;
  readonly description: string;
  readonly defaultValue?: string;
  readonly defaultText?: string;
  readonly secret?: boolean;
}

/** Every worker flag, in `--help` order. */
export const WORKER_FLAGS: Readonly<Record<WorkerFlagName, WorkerFlagSpec>> = {
  tasks: {
    flag: "--tasks",
    value: "<module>",
    env: "CADENT_TASKS",
    description:
      "JavaScript or TypeScript module whose exported defineTask() values are registered; repeat the flag for several (the variable takes a comma-separated list)",
  },
  queues: {
    flag: "--queues",
    value: "<list>",
    env: "CADENT_QUEUES",
    description: "comma-separated queues to consume, each with its priority lanes",
    defaultValue: "celery",
  },
  concurrency: {
    flag: "--concurrency",
    value: "<number>",
    env: "CADENT_CONCURRENCY",
    description: "task handlers running at once",
    defaultValue: String(DEFAULT_CONCURRENCY),
  },
  prefetchMultiplier: {
    flag: "--prefetch-multiplier",
    value: "<number>",
    env: "CADENT_PREFETCH_MULTIPLIER",
    description: "reserve at most concurrency × this many messages (Celery's worker_prefetch_multiplier)",
    defaultValue: String(DEFAULT_PREFETCH_MULTIPLIER),
  },
  visibilityTimeout: {
    flag: "--visibility-timeout",
    value: "<seconds>",
    env: "CADENT_VISIBILITY_TIMEOUT",
    description:
      "an unacknowledged message older than this is delivered again (kombu's visibility_timeout; use the same value on every worker of a Redis)",
    defaultValue: String(DEFAULT_VISIBILITY_TIMEOUT_SECONDS),
  },
  ...REDIS_FLAGS,
  hostname: {
    flag: "--hostname",
    value: "<name>",
    env: "CADENT_HOSTNAME",
    description: "the worker's node name in results and logs",
    defaultText: "cadent@<host name>",
  },
  logLevel: {
    flag: "--log-level",
    value: "<level>",
    env: "LOG_LEVEL",
    description: `log level: ${LOG_LEVELS.join(", ")}`,
    defaultValue: "info",
  },
  shutdownGrace: {
    flag: "--shutdown-grace",
    value: "<seconds>",
    env: "CADENT_SHUTDOWN_GRACE",
    description:
      "after SIGTERM, how long running tasks may take to finish before they are aborted and handed back",
    defaultValue: String(DEFAULT_SHUTDOWN_GRACE_MS / 1000),
  },
  resultExpires: {
    flag: "--result-expires",
    value: "<seconds>",
    env: "CADENT_RESULT_EXPIRES",
    description: "how long results are kept (Celery's result_expires); 0 keeps them forever",
    defaultValue: String(DEFAULT_RESULT_EXPIRES_SECONDS),
  },
  deadLetterKey: {
    flag: "--dead-letter-key",
    value: "<key>",
    env: "CADENT_DEAD_LETTER_KEY",
    description: "Redis list receiving messages that cannot be run (malformed, unknown task, unrestorable)",
    defaultValue: DEFAULT_DEAD_LETTER_KEY,
  },
};

/** Invalid worker options; `problems` has one line per bad setting. */
export class WorkerOptionsError extends OptionsError {
  override name = "WorkerOptionsError";
}

type Source = "flag" | "env" | "default";

interface Raw {
  readonly text: string;
  readonly source: Source;
}

/**
 * Resolves and validates the options. Pure: `env` is passed in and nothing is read from disk.
 * Throws a {@link WorkerOptionsError} naming every bad setting.
 */
export function parseWorkerOptions(
  flags: WorkerFlags,
  env: Readonly<Record<string, string | undefined>>,
): WorkerCliOptions {
  const problems: string[] = [];
  const raw = (name: WorkerFlagName): Raw | undefined => {
    const spec = WORKER_FLAGS[name];
    const fromFlag = flags[name];
    if (fromFlag !== undefined) {
      return { text: Array.isArray(fromFlag) ? fromFlag.join(",") : fromFlag, source: "flag" };
    }
    const fromEnv = env[spec.env];
    if (fromEnv !== undefined && fromEnv !== "") return { text: fromEnv, source: "env" };
    return spec.defaultValue === undefined ? undefined : { text: spec.defaultValue, source: "default" };
  };
  const problem = (name: WorkerFlagName, message: string, value: Raw): void => {
    const spec = WORKER_FLAGS[name];
    const shown = spec.secret ? redactUrl(value.text) : value.text;
    const from =
      value.source === "flag" ? spec.flag : value.source === "env" ? `$${spec.env}` : "the default";
    problems.push(`${spec.flag} (env ${spec.env}): ${message}, got "${shown}" from ${from}`);
  };
  const whole = (name: WorkerFlagName, min: number): number => {
    const value = raw(name);
    if (value === undefined) return min;
    const n = Number(value.text);
    if (!/^\s*\d+\s*$/.test(value.text) || n < min)
      problem(name, `expected a whole number of at least ${min}`, value);
    return n;
  };
  const seconds = (name: WorkerFlagName, zeroAllowed: boolean): number => {
    const value = raw(name);
    if (value === undefined) return 0;
    const n = Number(value.text);
    if (value.text.trim() === "" || !Number.isFinite(n) || n < 0 || (!zeroAllowed && n === 0)) {
      problem(name, `expected a ${zeroAllowed ? "non-negative" : "positive"} number of seconds`, value);
    }
    return n;
  };
  const list = (name: WorkerFlagName): string[] => {
    const value = raw(name);
    if (value === undefined) return [];
    const items = value.text
      .split(",")
      .map((item) => item.trim())
      .filter((item) => item !== "");
    if (items.length === 0) problem(name, "expected at least one name", value);
    return items;
  };

  const tasksRaw = raw("tasks");
  if (tasksRaw === undefined) {
    problems.push(
      `${WORKER_FLAGS.tasks.flag} (env ${WORKER_FLAGS.tasks.env}) is required: name the module that exports your tasks, e.g. --tasks ./dist/tasks.js`,
    );
  }
  const tasks = tasksRaw === undefined ? [] : list("tasks");
  const queues = list("queues");
  const concurrency = whole("concurrency", 1);
  const prefetchMultiplier = whole("prefetchMultiplier", 1);
  const visibilityTimeoutSeconds = seconds("visibilityTimeout", false);
  const shutdownGraceSeconds = seconds("shutdownGrace", true);
  const resultExpiresSeconds = seconds("resultExpires", true);
  if (resultExpiresSeconds > 0 && !Number.isInteger(resultExpiresSeconds)) {
    const value = raw("resultExpires");
    if (value !== undefined)
      problem("resultExpires", "expected whole seconds (Redis SETEX takes whole seconds)", value);
  }

  const redisUrl = raw("redisUrl");
  let url = WORKER_FLAGS.redisUrl.defaultValue ?? "";
  if (redisUrl !== undefined) {
    url = redisUrl.text;
    let protocol = "";
    try {
      protocol = new URL(url).protocol;
    } catch {
      // reported below
    }
    if (protocol !== "redis:" && protocol !== "rediss:") {
      problem("redisUrl", "expected a redis:// or rediss:// URL such as redis://127.0.0.1:6379/0", redisUrl);
    }
  }

  const levelRaw = raw("logLevel");
  const level = levelRaw?.text ?? "info";
  if (levelRaw !== undefined && !(LOG_LEVELS as readonly string[]).includes(level)) {
    problem("logLevel", `expected one of ${LOG_LEVELS.join(", ")}`, levelRaw);
  }

  const hostnameRaw = raw("hostname");
  const name = hostnameRaw?.text.trim() || `cadent@${hostname()}`;
  const deadLetterKey = raw("deadLetterKey")?.text.trim() || DEFAULT_DEAD_LETTER_KEY;

  if (problems.length > 0) throw new WorkerOptionsError(problems);
  return {
    tasks,
    queues,
    concurrency,
    prefetchMultiplier,
    visibilityTimeoutSeconds,
    redisUrl: url,
    redisPasswordFile: raw("redisPasswordFile")?.text,
    hostname: name,
    logLevel: level as LogLevel,
    shutdownGraceMs: Math.round(shutdownGraceSeconds * 1000),
    resultExpiresSeconds,
    deadLetterKey,
  };
}
