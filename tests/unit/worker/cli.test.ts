import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { WORKER_FLAGS } from "../../../src/worker/options.ts";

const ROOT = resolve(import.meta.dirname, "../../..");
const NODE = resolve(ROOT, "node_modules/.bin/node");
const MAIN = resolve(ROOT, "src/cli/main.ts");
const WORKER_SDK = pathToFileURL(resolve(ROOT, "src/worker/index.ts")).href;

const dir = mkdtempSync(join(tmpdir(), "cadent-worker-cli-"));
function module(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** Runs the real CLI in a child process with only PATH and HOME from this environment. */
function cadent(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(
      NODE,
      [MAIN, ...args],
      { cwd: ROOT, env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "" } },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === "number" ? err.code : -1;
        done({ code, stdout, stderr });
      },
    );
  });
}

describe("cadent worker (child process)", () => {
  it("--help lists every flag with its environment variable, and exits 0", async () => {
    const { code, stdout } = await cadent(["worker", "--help"]);
    expect(code).toBe(0);
    const help = stdout.replace(/\s+/g, " ");
    for (const spec of Object.values(WORKER_FLAGS)) {
      expect(help).toContain(`${spec.flag} ${spec.value}`);
      expect(help).toContain(`env: ${spec.env}`);
    }
  });

  it.each([
    [["worker", "--tasks", "t.js", "--concurency", "4"], "unknown option '--concurency'"],
    [["worker"], "--tasks (env CADENT_TASKS) is required"],
    [
      ["worker", "--tasks", "t.js", "--concurrency", "many"],
      "--concurrency (env CADENT_CONCURRENCY): expected a whole number",
    ],
    [["worker", "--tasks", "no-such-tasks.js"], "cannot find the task module no-such-tasks.js"],
  ])("exits 2 on %j", async (args, message) => {
    const { code, stderr } = await cadent(args);
    expect(code).toBe(2);
    expect(stderr).toContain(message);
  });

  it("exits 2 when the module exports no tasks", async () => {
    const path = module("none.ts", "export const helper = (): number => 1;\n");
    const { code, stderr } = await cadent(["worker", "--tasks", path]);
    expect(code).toBe(2);
    expect(stderr).toContain("exports no tasks");
  });

  it("exits 2 when two modules define different tasks with one name", async () => {
    const a = module(
      "a.ts",
      `import { defineTask } from "${WORKER_SDK}";\nexport const t = defineTask("dup", () => 1);\n`,
    );
    const b = module(
      "b.ts",
      `import { defineTask } from "${WORKER_SDK}";\nexport const t = defineTask("dup", () => 2);\n`,
    );
    const { code, stderr } = await cadent(["worker", "--tasks", a, "--tasks", b]);
    expect(code).toBe(2);
    expect(stderr).toContain('two different tasks are defined with the name "dup"');
  });

  it("exits 1 when the module throws while loading", async () => {
    const path = module("broken.ts", 'throw new Error("no database");\n');
    const { code, stderr } = await cadent(["worker", "--tasks", path]);
    expect(code).toBe(1);
    expect(stderr).toContain("loading the task module");
    expect(stderr).toContain("no database");
  });
});
