import { pino } from "pino";
import type { DestinationStream, Logger as PinoLogger } from "pino";

/** The levels `--log-level` accepts, most verbose first. */
export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * cadent's logger: pino, so it satisfies the runtime's `Logger` (src/runtime/logger.ts) as is,
 * plus `trace` and `child`.
 */
export type AppLogger = PinoLogger;

/** Field names whose values are secrets wherever they appear (top level or one level down). */
const SECRET_FIELDS = [
  "password",
  "redisPassword",
  "token",
  "bearerToken",
  "accessToken",
  "secret",
  "authorization",
  "Authorization",
  "apiKey",
  // A Redis URL may carry the password: log `redactUrl(url)` under another name instead.
  "redisUrl",
];

/** pino `redact` paths: one level of wildcard is what pino's redaction supports without a cost per key. */
export const REDACT_PATHS: readonly string[] = SECRET_FIELDS.flatMap((field) => [
  field,
  `*.${field}`,
  `*.headers.${field}`,
]);

export interface LoggerOptions {
  level: LogLevel;
  /** The `component` field of every line, e.g. "controller". */
  component: string;
  /** Default: stdout. Tests pass a stream to read the lines back. */
  destination?: DestinationStream;
}

/**
 * JSON lines with a string `level`, an ISO `time`, `component`, then the call's fields and `msg`:
 * what log collectors (Loki, Cloud Logging, Elasticsearch) index without extra parsing. Secrets
 * under the field names above are written as "[REDACTED]".
 */
export function createLogger(options: LoggerOptions): AppLogger {
  const settings = {
    level: options.level,
    base: { component: options.component },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
    redact: { paths: [...REDACT_PATHS], censor: "[REDACTED]" },
  };
  return options.destination ? pino(settings, options.destination) : pino(settings);
}

/** The object a log line is about, controller-runtime style. */
export interface ObjectRef {
  controller: string;
  namespace?: string;
  name: string;
}

/** A child logger whose every line carries `{controller, namespace, name}`. */
export function objectLogger(logger: AppLogger, ref: ObjectRef): AppLogger {
  return logger.child({ controller: ref.controller, namespace: ref.namespace, name: ref.name });
}

/**
 * The URL without its password, safe to log (`redis://user:pw@host:6379/0` →
 * `redis://user@host:6379/0`). Anything that does not parse as a URL is replaced whole, since it
 * might still contain a secret.
 */
export function redactUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return "<unparseable URL>";
  }
  parsed.password = "";
  return parsed.toString();
}
