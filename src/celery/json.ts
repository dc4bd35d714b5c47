/**
 * JSON values and Python-compatible JSON text.
 *
 * Celery (through kombu) writes every message and result with Python's `json.dumps` defaults:
 * `ensure_ascii=True` and the separators `", "` and `": "`. Python workers read any valid JSON, so the
 * spacing does not matter to them (vectors h22/h23), but writing the same bytes lets our tests compare
 * with the captured vectors byte for byte, and keeps what cadent writes indistinguishable from Celery.
 */

export type JsonPrimitive = string | number | boolean | null;
export type JsonValue = JsonPrimitive | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

/** Accepts read-only views of JSON values, so callers can pass `as const` data and frozen specs. */
export type ReadonlyJsonValue = JsonPrimitive | readonly ReadonlyJsonValue[] | ReadonlyJsonObject;
export interface ReadonlyJsonObject {
  readonly [key: string]: ReadonlyJsonValue;
}

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export type JsonParseResult = { ok: true; value: JsonValue } | { ok: false; reason: string };

/** `JSON.parse` without the throw. */
export function parseJson(text: string): JsonParseResult {
  try {
    return { ok: true, value: JSON.parse(text) as JsonValue };
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * `json.dumps(value)` as Python writes it.
 *
 * Differences that JavaScript cannot avoid, all harmless to a reader:
 * - A number carries no int/float distinction: `2.0` from Python is read as `2` and written back as `2`.
 *   Integer values below 1e21 are written as integers; other numbers as Python's `repr(float)`
 *   (`1e-05`, `1e+16`, `1.5`).
 * - `NaN` and `Infinity` are written as `null` (as `JSON.stringify` does); Python would write the
 *   non-standard `NaN`, which most JSON readers, including `JSON.parse`, refuse.
 * - Object keys that look like array indexes ("1", "42") come first in a JavaScript object, so their
 *   order may differ from the producer's.
 *
 * Throws a TypeError on a cycle, like Python's "Circular reference detected".
 */
export function pythonJsonDumps(value: ReadonlyJsonValue | undefined): string {
  const parts: string[] = [];
  writeValue(value, parts, new Set());
  return parts.join("");
}

function writeValue(value: ReadonlyJsonValue | undefined, out: string[], path: Set<object>): void {
  if (value === null || value === undefined) {
    out.push("null");
  } else if (typeof value === "boolean") {
    out.push(value ? "true" : "false");
  } else if (typeof value === "number") {
    out.push(Number.isFinite(value) ? pythonNumber(value) : "null");
  } else if (typeof value === "string") {
    out.push(pythonJsonString(value));
  } else if (isReadonlyArray(value)) {
    enter(value, path);
    out.push("[");
    value.forEach((item, i) => {
      if (i > 0) out.push(", ");
      writeValue(item, out, path);
    });
    out.push("]");
    path.delete(value);
  } else {
    enter(value, path);
    out.push("{");
    let first = true;
    for (const [key, item] of Object.entries(value)) {
      // Like JSON.stringify: an undefined property is absent, not null.
      if (item === undefined) continue;
      if (!first) out.push(", ");
      first = false;
      out.push(pythonJsonString(key), ": ");
      writeValue(item, out, path);
    }
    out.push("}");
    path.delete(value);
  }
}

function isReadonlyArray(value: unknown): value is readonly ReadonlyJsonValue[] {
  return Array.isArray(value);
}

function enter(container: object, path: Set<object>): void {
  if (path.has(container)) throw new TypeError("cannot write JSON: circular reference detected");
  path.add(container);
}

const SHORT_ESCAPES: Readonly<Record<string, string>> = {
  '"': '\\"',
  "\\": "\\\\",
  "\b": "\\b",
  "\f": "\\f",
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
};

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/**
 * A JSON string literal with `ensure_ascii`: everything outside printable ASCII (" " to "~") is a
 * `\uXXXX` escape with lowercase hex, characters beyond the BMP as two surrogate escapes. DEL (0x7f) is
 * escaped too, as Python does.
 */
export function pythonJsonString(text: string): string {
  // Printable ASCII only (the common case: task names, ids, most arguments): JSON.stringify writes
  // exactly Python's bytes — `"` and `\` escaped, nothing else — in native code.
  if (PRINTABLE_ASCII.test(text)) return JSON.stringify(text);
  let out = '"';
  for (let i = 0; i < text.length; i++) {
    const ch = text.charAt(i);
    const code = text.charCodeAt(i);
    const short = SHORT_ESCAPES[ch];
    if (short !== undefined) out += short;
    else if (code >= 0x20 && code <= 0x7e) out += ch;
    else out += "\\u" + code.toString(16).padStart(4, "0");
  }
  return out + '"';
}

/** Python's text for a number: an int's digits, or `repr(float)`. */
export function pythonNumber(value: number): string {
  if (Number.isInteger(value) && Math.abs(value) < 1e21) {
    // Object.is(-0, ...) would print "-0"; JSON's "-0" is Python's int 0.
    return value === 0 ? "0" : String(value);
  }
  return pythonFloatRepr(value);
}

/**
 * Python's `repr(float)`: the shortest round-tripping digits (the same digits JavaScript picks), in
 * positional notation when the decimal exponent is in [-4, 16), otherwise in scientific notation with
 * at least two exponent digits.
 */
export function pythonFloatRepr(value: number): string {
  if (Number.isNaN(value)) return "nan";
  if (!Number.isFinite(value)) return value > 0 ? "inf" : "-inf";
  if (value === 0) return Object.is(value, -0) ? "-0.0" : "0.0";
  const sign = value < 0 ? "-" : "";
  // toExponential() without an argument gives the shortest digits that identify the number.
  const match = /^(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(Math.abs(value).toExponential());
  if (match === null) return String(value);
  const digits = (match[1] ?? "") + (match[2] ?? "");
  const exponent = Number(match[3]);
  const decimalPoint = exponent + 1;
  if (decimalPoint > -4 && decimalPoint <= 16) {
    if (decimalPoint <= 0) return `${sign}0.${"0".repeat(-decimalPoint)}${digits}`;
    if (decimalPoint >= digits.length) return `${sign}${digits}${"0".repeat(decimalPoint - digits.length)}.0`;
    return `${sign}${digits.slice(0, decimalPoint)}.${digits.slice(decimalPoint)}`;
  }
  const mantissa = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
  const expSign = exponent < 0 ? "-" : "+";
  return `${sign}${mantissa}e${expSign}${String(Math.abs(exponent)).padStart(2, "0")}`;
}
