/** The Celery golden vectors in ../shared/design/celery-vectors (read-only, beside the repo). */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "./environment.ts";

export const VECTORS_DIR = join(REPO_ROOT, "..", "shared", "design", "celery-vectors");

export function vectorNames(): string[] {
  return readdirSync(VECTORS_DIR)
    .filter((f) => f.endsWith(".json"))
    .map((f) => f.replace(/\.json$/, ""))
    .sort();
}

/** The parsed vector file `name` (without .json). */
export function readVector(name: string): Record<string, unknown> {
  const parsed: unknown = JSON.parse(readFileSync(join(VECTORS_DIR, `${name}.json`), "utf8"));
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new Error(`vector ${name} is not a JSON object`);
  }
  return parsed as Record<string, unknown>;
}
