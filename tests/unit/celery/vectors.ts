/**
 * The golden vectors captured from Celery 5.2.6 and kombu 5.2.4 (shared/design/celery-vectors, beside
 * the repository; CI checks it out at the same place). Read, never copied: they are the contract.
 */
import { readFileSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const VECTORS_DIR = fileURLToPath(
  new URL("../../../../shared/design/celery-vectors/", import.meta.url),
);

export function vectorFiles(): string[] {
  return readdirSync(VECTORS_DIR)
    .filter((name) => name.endsWith(".json"))
    .map((name) => name.replace(/\.json$/, ""))
    .sort();
}

/** One vector file, as parsed JSON. Fields differ between kinds; tests read the ones they need. */
export function vector(name: string): Record<string, unknown> {
  const value: unknown = JSON.parse(readFileSync(`${VECTORS_DIR}${name}.json`, "utf8"));
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error(`vector ${name} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

/** The exact value the vector's Redis command wrote. */
export function rawOf(name: string): string {
  const raw = vector(name)["raw"];
  if (typeof raw !== "string") throw new Error(`vector ${name} has no raw value`);
  return raw;
}

export function field<T>(name: string, key: string): T {
  const v = vector(name);
  if (!(key in v)) throw new Error(`vector ${name} has no field ${key}`);
  return v[key] as T;
}
