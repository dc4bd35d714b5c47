/** Converting what a handler returns or throws into JSON values a result can hold. */
import type { JsonValue } from "../celery/index.ts";

export type JsonConversion = { ok: true; value: JsonValue } | { ok: false; reason: string };

/**
 * The JSON value `JSON.stringify` would write for `value`: `undefined` becomes null (a handler
 * that returns nothing stores Python's None), dates become strings, `toJSON` is honoured. Fails
 * for what JSON cannot hold (BigInt, cycles, a bare function or symbol).
 */
export function toJsonValue(value: unknown): JsonConversion {
  if (value === undefined || value === null) return { ok: true, value: null };
  switch (typeof value) {
    case "string":
    case "boolean":
      return { ok: true, value };
    case "number":
      return { ok: true, value: Number.isFinite(value) ? value : null };
    case "function":
    case "symbol":
      return { ok: false, reason: `a ${typeof value} cannot be stored as JSON` };
    default:
      break;
  }
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : String(err) };
  }
  if (text === undefined) return { ok: false, reason: `${typeof value} cannot be stored as JSON` };
  return { ok: true, value: JSON.parse(text) as JsonValue };
}
