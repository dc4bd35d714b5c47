import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { WorkerSetupError, loadTaskModules } from "../../../src/worker/load.ts";
import { defineTask } from "../../../src/worker/task.ts";

const dir = mkdtempSync(join(tmpdir(), "cadent-load-"));
const file = (name: string): string => {
  writeFileSync(join(dir, name), "// stand-in: the importer below supplies the exports\n");
  return name;
};
const add = defineTask("app.tasks.add", () => 3);
const fail = defineTask("app.tasks.fail", () => null);

describe("loading --tasks modules", () => {
  it("registers the exported definitions, the default export included, and nothing else", async () => {
    const loaded = await loadTaskModules([file("tasks.js")], dir, async () => ({
      add,
      default: fail,
      helper: () => 1,
      VERSION: "1.0",
    }));
    expect(loaded.map((t) => t.name)).toEqual(["app.tasks.add", "app.tasks.fail"]);
  });

  it("resolves paths against the working directory and imports them by file URL", async () => {
    const urls: string[] = [];
    await loadTaskModules([`./${file("a.js")}`], dir, async (url) => {
      urls.push(url);
      return { add };
    });
    expect(urls).toEqual([`file://${join(dir, "a.js")}`]);
  });

  it("is a usage error when the file does not exist", async () => {
    const attempt = loadTaskModules(["missing.js"], dir, async () => ({}));
    await expect(attempt).rejects.toThrow(
      `cannot find the task module missing.js (looked for ${join(dir, "missing.js")})`,
    );
    await expect(attempt).rejects.toMatchObject({ usage: true });
  });

  it("is a usage error when the module exports no tasks", async () => {
    const attempt = loadTaskModules([file("empty.js")], dir, async () => ({ helper: () => 1 }));
    await expect(attempt).rejects.toThrow("exports no tasks: export the values defineTask() returns");
    await expect(attempt).rejects.toBeInstanceOf(WorkerSetupError);
  });

  it("is a failure, not a usage error, when the module throws while loading", async () => {
    const attempt = loadTaskModules([file("broken.js")], dir, async () => {
      throw new Error("cannot reach the database");
    });
    await expect(attempt).rejects.toThrow(
      "loading the task module broken.js failed: cannot reach the database",
    );
    await expect(attempt).rejects.toMatchObject({ usage: false });
  });
});
