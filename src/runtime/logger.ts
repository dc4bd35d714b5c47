/**
 * The logging surface the runtime needs: structured fields first, a fixed message second
 * (controller-runtime style), so a pino `Logger` can be passed as is.
 */
export interface Logger {
  debug(fields: Record<string, unknown>, msg: string): void;
  info(fields: Record<string, unknown>, msg: string): void;
  warn(fields: Record<string, unknown>, msg: string): void;
  error(fields: Record<string, unknown>, msg: string): void;
}

const ignore = (): void => {};

/** Drops everything; the default so the runtime never writes to stdout unless asked to. */
export const silentLogger: Logger = { debug: ignore, info: ignore, warn: ignore, error: ignore };
