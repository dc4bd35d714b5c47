import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { z } from "zod";
import { parseListenAddress } from "../observability/http.ts";
import { LOG_LEVELS, redactUrl } from "../observability/logger.ts";
import type { LogLevel } from "../observability/logger.ts";
import { OptionsError } from "../cli/options-error.ts";
import { REDIS_FLAGS } from "../cli/redis-options.ts";

/**
 * The configuration of `cadent controller`. Every setting is a flag with an environment
 * variable equivalent; a flag wins over its variable, a variable over the default. An empty
 * variable counts as unset (Helm charts often render `value: ""`).
 */
export interface ControllerOptions {
  /** A kubeconfig path (or several, joined with ":"); undefined: $HOME/.kube/config, else in-cluster. */
  kubeconfig: string | undefined;
  /** Namespaces to watch; empty: all namespaces. */
  namespaces: string[];
  /** redis:// or rediss:// URL of the broker and result backend. May carry a password: log it only through `redactUrl`. */
  redisUrl: string;
  /** A file holding the Redis password, which overrides the URL's; see {@link loadRedisPassword}. */
  redisPasswordFile: string | undefined;
  /** The queue of a Redis-executor Task that names none. */
  defaultQueue: string;
  leaderElect: boolean;
  leaderElectionNamespace: string;
  /** The Lease name. */
  leaderElectionId: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  /** `host:port` for /metrics. */
  metricsAddr: string;
  /** `host:port` for /healthz and /readyz. */
  healthAddr: string;
  kubeApiQps: number;
  kubeApiBurst: number;
  logLevel: LogLevel;
  /** Concurrent reconciles per controller. */
  workers: number;
  /** This replica's name in the leader election Lease. */
  identity: string;
}

/** A Go-style duration ("15s", "1m30s", "500ms", "1.5h") in milliseconds; undefined if malformed. */
export function parseDuration(text: string): number | undefined {
  if (!/^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/.test(text)) {
    return undefined;
  }
  const unitMs: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  for (const [, amount, unit] of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) {
    total += Number(amount) * (unitMs[unit ?? ""] ?? Number.NaN);
  }
  return Math.round(total);
}

/** A string schema whose value `read` turns into T, or rejects (undefined) with "expected <what>". */
function textAs<T>(what: string, read: (text: string) => T | undefined) {
  return z.string().transform((text, ctx) => {
    const value = read(text.trim());
    if (value === undefined) {
      ctx.issues.push({ code: "custom", message: `expected ${what}`, input: text });
      return z.NEVER;
    }
    return value;
  });
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function namespaceList(text: string): string[] | undefined {
  const names = [...new Set(text.split(",").map((n) => n.trim()))].filter((n) => n !== "");
  return names.every((n) => DNS_LABEL.test(n)) ? names : undefined;
}

function redisUrl(text: string): string | undefined {
  try {
    const url = new URL(text);
    const okProtocol = url.protocol === "redis:" || url.protocol === "rediss:";
    const okDb = url.pathname === "" || url.pathname === "/" || /^\/\d+$/.test(url.pathname);
    return okProtocol && url.hostname !== "" && okDb ? text : undefined;
  } catch {
    return undefined;
  }
}

function positiveNumber(text: string): number | undefined {
  const n = /^\d+(?:\.\d+)?$/.test(text) ? Number(text) : Number.NaN;
  return n > 0 ? n : undefined;
}

function positiveInteger(text: string): number | undefined {
  const n = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  return Number.isSafeInteger(n) && n >= 1 ? n : undefined;
}

function positiveDuration(text: string): number | undefined {
  const ms = parseDuration(text);
  return ms !== undefined && ms > 0 ? ms : undefined;
}

function listenAddress(text: string): string | undefined {
  try {
    parseListenAddress(text);
    return text;
  } catch {
    return undefined;
  }
}

function booleanText(text: string): boolean | undefined {
  const lower = text.toLowerCase();
  if (["true", "1", "yes", "on"].includes(lower)) return true;
  if (["false", "0", "no", "off"].includes(lower)) return false;
  return undefined;
}

const nonEmpty = (what: string) => textAs(what, (text) => (text === "" ? undefined : text));

/** One schema per flag, keyed by commander's attribute name for the flag. */
const fieldsSchema = z.object({
  kubeconfig: nonEmpty("a kubeconfig file path").optional(),
  namespaces: textAs(
    'a comma-separated list of namespace names (lower-case letters, digits and "-", at most 63 characters)',
    namespaceList,
  ),
  redisUrl: textAs("a redis:// or rediss:// URL such as redis://127.0.0.1:6379/0", redisUrl),
  redisPasswordFile: nonEmpty("a file path").optional(),
  defaultQueue: nonEmpty("a queue name"),
  leaderElect: textAs("true or false", booleanText),
  leaderElectionNamespace: textAs("a namespace name", (t) => (DNS_LABEL.test(t) ? t : undefined)),
  leaderElectionId: textAs("a Lease name (a DNS subdomain such as cadent-controller)", (t) =>
    DNS_SUBDOMAIN.test(t) ? t : undefined,
  ),
  leaseDuration: textAs("a duration such as 15s, 1m30s or 500ms", positiveDuration),
  renewDeadline: textAs("a duration such as 10s, 1m30s or 500ms", positiveDuration),
  retryPeriod: textAs("a duration such as 2s, 1m30s or 500ms", positiveDuration),
  metricsAddr: textAs('host:port, such as ":8080" or "127.0.0.1:8080"', listenAddress),
  healthAddr: textAs('host:port, such as ":8081" or "127.0.0.1:8081"', listenAddress),
  kubeApiQps: textAs("a number greater than 0", positiveNumber),
  kubeApiBurst: textAs("a whole number of at least 1", positiveInteger),
  logLevel: textAs(`one of ${LOG_LEVELS.join(", ")}`, (t) => LOG_LEVELS.find((level) => level === t)),
  workers: textAs("a whole number of at least 1", positiveInteger),
  identity: nonEmpty("a non-empty name"),
});

export type ControllerFlagName = keyof z.input<typeof fieldsSchema>;

/** Flag values as commander hands them over (strings, and booleans for --[no-]leader-elect). */
export type ControllerFlags = Partial<Record<ControllerFlagName, string | boolean>>;

/** How a flag appears on the command line and in `--help`. */
export interface FlagSpec {
  /** The long flag, e.g. "--redis-url". */
  flag: string;
  /** The value placeholder, e.g. "<url>"; absent for a boolean flag. */
  value?: string;
  env: string;
  description: string;
  /** The default as the user would type it; absent when there is none or it is computed. */
  defaultValue?: string | boolean;
  /** How `--help` shows the default when `defaultValue` is absent or not self-explanatory. */
  defaultText?: string;
  /** The value may contain a secret: error messages show it through `redactUrl`. */
  secret?: boolean;
}

/** Every controller flag, in `--help` order. */
export const CONTROLLER_FLAGS: Readonly<Record<ControllerFlagName, FlagSpec>> = {
  kubeconfig: {
    flag: "--kubeconfig",
    value: "<path>",
    env: "KUBECONFIG",
    description: "kubeconfig file (several joined with ':' are merged)",
    defaultText: "$HOME/.kube/config, else the in-cluster service account",
  },
  namespaces: {
    flag: "--namespaces",
    value: "<list>",
    env: "WATCH_NAMESPACES",
    description: "comma-separated namespaces to watch",
    defaultValue: "",
    defaultText: "all namespaces",
  },
  ...REDIS_FLAGS,
  defaultQueue: {
    flag: "--default-queue",
    value: "<name>",
    env: "CADENT_DEFAULT_QUEUE",
    description: "Redis queue for Tasks whose spec names none",
    defaultValue: "celery",
  },
  leaderElect: {
    flag: "--leader-elect",
    env: "CADENT_LEADER_ELECT",
    description:
      "elect a leader on a coordination.k8s.io Lease so only one replica works; --no-leader-elect for a single replica",
    defaultValue: true,
  },
  leaderElectionNamespace: {
    flag: "--leader-election-namespace",
    value: "<ns>",
    env: "POD_NAMESPACE",
    description: "namespace of the leader election Lease",
    defaultValue: "default",
  },
  leaderElectionId: {
    flag: "--leader-election-id",
    value: "<name>",
    env: "CADENT_LEADER_ELECTION_ID",
    description: "name of the leader election Lease",
    defaultValue: "cadent-controller",
  },
  leaseDuration: {
    flag: "--lease-duration",
    value: "<duration>",
    env: "CADENT_LEASE_DURATION",
    description: "how long standby replicas wait after the last renewal before taking over",
    defaultValue: "15s",
  },
  renewDeadline: {
    flag: "--renew-deadline",
    value: "<duration>",
    env: "CADENT_RENEW_DEADLINE",
    description: "the leader stops working if it could not renew the Lease for this long",
    defaultValue: "10s",
  },
  retryPeriod: {
    flag: "--retry-period",
    value: "<duration>",
    env: "CADENT_RETRY_PERIOD",
    description: "interval between attempts to acquire or renew the Lease",
    defaultValue: "2s",
  },
  metricsAddr: {
    flag: "--metrics-addr",
    value: "<host:port>",
    env: "CADENT_METRICS_ADDR",
    description: "serve Prometheus metrics at /metrics on this address",
    defaultValue: ":8080",
  },
  healthAddr: {
    flag: "--health-addr",
    value: "<host:port>",
    env: "CADENT_HEALTH_ADDR",
    description: "serve /healthz and /readyz on this address",
    defaultValue: ":8081",
  },
  kubeApiQps: {
    flag: "--kube-api-qps",
    value: "<number>",
    env: "CADENT_KUBE_API_QPS",
    description: "sustained Kubernetes API requests per second",
    defaultValue: "50",
  },
  kubeApiBurst: {
    flag: "--kube-api-burst",
    value: "<number>",
    env: "CADENT_KUBE_API_BURST",
    description: "Kubernetes API requests allowed at once above the sustained rate",
    defaultValue: "100",
  },
  logLevel: {
    flag: "--log-level",
    value: "<level>",
    env: "LOG_LEVEL",
    description: `log level: ${LOG_LEVELS.join(", ")}`,
    defaultValue: "info",
  },
  workers: {
    flag: "--workers",
    value: "<number>",
    env: "CADENT_WORKERS",
    description: "concurrent reconciles per controller",
    defaultValue: "4",
  },
  identity: {
    flag: "--identity",
    value: "<name>",
    env: "CADENT_IDENTITY",
    description: "this replica's name in the leader election Lease",
    defaultText: "<hostname>_<random suffix>",
  },
};

/** Invalid controller options; `problems` has one line per bad setting. */
export class ControllerOptionsError extends OptionsError {
  override name = "ControllerOptionsError";
}

type Source = "flag" | "env" | "default";

/** The default identity: unique per process, so a restarted Pod does not inherit its old lease. */
export function defaultIdentity(): string {
  return `${hostname()}_${randomUUID().slice(0, 8)}`;
}

/**
 * Resolves and validates the options: flag, else environment variable, else default. Pure apart
 * from `makeIdentity`, which only runs when no identity is given. Throws a
 * {@link ControllerOptionsError} naming each bad flag and its variable.
 */
export function parseControllerOptions(
  flags: ControllerFlags,
  env: Readonly<Record<string, string | undefined>>,
  makeIdentity: () => string = defaultIdentity,
): ControllerOptions {
  // Everything is validated as text, so --[no-]leader-elect (a boolean) reads like its variable.
  const raw: Partial<Record<ControllerFlagName, string>> = {};
  const sources: Partial<Record<ControllerFlagName, Source>> = {};
  for (const name of Object.keys(CONTROLLER_FLAGS) as ControllerFlagName[]) {
    const spec = CONTROLLER_FLAGS[name];
    const fromFlag = flags[name];
    const fromEnv = env[spec.env];
    if (fromFlag !== undefined) {
      raw[name] = String(fromFlag);
      sources[name] = "flag";
    } else if (fromEnv !== undefined && fromEnv !== "") {
      raw[name] = fromEnv;
      sources[name] = "env";
    } else if (spec.defaultValue !== undefined) {
      raw[name] = String(spec.defaultValue);
      sources[name] = "default";
    } else if (name === "identity") {
      raw[name] = makeIdentity();
      sources[name] = "default";
    }
  }

  const parsed = fieldsSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = new Map<string, string>();
    for (const issue of parsed.error.issues) {
      const name = issue.path[0] as ControllerFlagName;
      if (!problems.has(name)) {
        problems.set(name, describeProblem(name, issue.message, raw[name], sources[name] ?? "default"));
      }
    }
    throw new ControllerOptionsError([...problems.values()]);
  }
  const f = parsed.data;
  const options: ControllerOptions = {
    kubeconfig: f.kubeconfig,
    namespaces: f.namespaces,
    redisUrl: f.redisUrl,
    redisPasswordFile: f.redisPasswordFile,
    defaultQueue: f.defaultQueue,
    leaderElect: f.leaderElect,
    leaderElectionNamespace: f.leaderElectionNamespace,
    leaderElectionId: f.leaderElectionId,
    leaseDurationMs: f.leaseDuration,
    renewDeadlineMs: f.renewDeadline,
    retryPeriodMs: f.retryPeriod,
    metricsAddr: f.metricsAddr,
    healthAddr: f.healthAddr,
    kubeApiQps: f.kubeApiQps,
    kubeApiBurst: f.kubeApiBurst,
    logLevel: f.logLevel,
    workers: f.workers,
    identity: f.identity,
  };
  const problems = crossFieldProblems(options);
  if (problems.length > 0) {
    throw new ControllerOptionsError(problems);
  }
  return options;
}

function flagAndEnv(name: ControllerFlagName): string {
  const spec = CONTROLLER_FLAGS[name];
  return `${spec.flag} (env ${spec.env})`;
}

function describeProblem(
  name: ControllerFlagName,
  message: string,
  value: string | undefined,
  source: Source,
): string {
  const spec = CONTROLLER_FLAGS[name];
  const shown = spec.secret && value !== undefined ? redactUrl(value) : String(value);
  const from = source === "flag" ? spec.flag : source === "env" ? `$${spec.env}` : "the default";
  return `${flagAndEnv(name)}: ${message}, got "${shown}" from ${from}`;
}

/**
 * The leader election timing rules of client-go (checked again by the elector, but a user should
 * hear about them as a usage error, not a crash), and two servers on one address.
 */
function crossFieldProblems(o: ControllerOptions): string[] {
  const problems: string[] = [];
  if (o.leaderElect) {
    if (o.leaseDurationMs <= o.renewDeadlineMs) {
      problems.push(
        `${flagAndEnv("leaseDuration")} (${o.leaseDurationMs} ms) must be longer than ${flagAndEnv("renewDeadline")} (${o.renewDeadlineMs} ms), or an old and a new leader could overlap`,
      );
    }
    if (o.renewDeadlineMs <= 1.2 * o.retryPeriodMs) {
      problems.push(
        `${flagAndEnv("renewDeadline")} (${o.renewDeadlineMs} ms) must be longer than 1.2 × ${flagAndEnv("retryPeriod")} (${o.retryPeriodMs} ms), so a renewal can be retried before the deadline`,
      );
    }
    if (o.leaseDurationMs % 1000 !== 0) {
      problems.push(
        `${flagAndEnv("leaseDuration")} must be whole seconds (a Lease stores seconds), got ${o.leaseDurationMs} ms`,
      );
    }
  }
  if (o.metricsAddr === o.healthAddr && parseListenAddress(o.metricsAddr).port !== 0) {
    problems.push(
      `${flagAndEnv("metricsAddr")} and ${flagAndEnv("healthAddr")} are both ${o.metricsAddr}: give them different ports`,
    );
  }
  return problems;
}

/**
 * ioredis lets a password in the URL win over its `password` option, so connect with the URL
 * stripped of its password: `new Redis(redactUrl(options.redisUrl), { password })`.
 */
export { loadRedisPassword } from "../cli/redis-options.ts";
