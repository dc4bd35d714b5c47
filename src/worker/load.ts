/** Loading the task modules named by `cadent worker --tasks`. */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { isTaskDefinition } from "./task.ts";
import type { TaskDefinition } from "./task.ts";

/**
 * Start-up input that cannot be used: a task module, the Redis password file. `usage` is true
 * when the command line is at fault (no such file, nothing exported), false when a module itself
 * failed while loading.
 */
export class WorkerSetupError extends Error {
  override name = "WorkerSetupError";
  readonly usage: boolean;

  constructor(message: string, usage: boolean, options?: { cause?: unknown }) {
    super(message, options);
    this.usage = usage;
  }
}

export type ModuleImporter = (url: string) => Promise<Record<string, unknown>>;

const importModule: ModuleImporter = (url) => import(url) as Promise<Record<string, unknown>>;

/**
 * Imports each module (paths relative to `cwd`) and returns the task definitions among its
 * exports, the default export included. Node runs `.ts` modules directly (type stripping), so a
 * TypeScript task module needs no build step.
 */
export async function loadTaskModules(
  paths: readonly string[],
  cwd: string = process.cwd(),
  load: ModuleImporter = importModule,
): Promise<TaskDefinition[]> {
  const definitions: TaskDefinition[] = [];
  for (const path of paths) {
    const absolute = resolve(cwd, path);
    if (!existsSync(absolute)) {
      throw new WorkerSetupError(`cannot find the task module ${path} (looked for ${absolute})`, true);
    }
    let exports: Record<string, unknown>;
    try {
      exports = await load(pathToFileURL(absolute).href);
    } catch (err) {
      throw new WorkerSetupError(
        `loading the task module ${path} failed: ${err instanceof Error ? err.message : String(err)}`,
        false,
        { cause: err },
      );
    }
    const found = Object.values(exports).filter(isTaskDefinition);
    if (found.length === 0) {
      throw new WorkerSetupError(
        `the task module ${path} exports no tasks: export the values defineTask() returns, e.g. \`export const add = defineTask("app.tasks.add", ...)\``,
        true,
      );
    }
    definitions.push(...found);
  }
  return definitions;
}
