import { execFile } from "node:child_process";
import { resolve } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { runCli } from "../../../src/cli/program.ts";
import { CONTROLLER_FLAGS } from "../../../src/controller/options.ts";
import type { ControllerOptions } from "../../../src/controller/options.ts";

const runController = vi.hoisted(() => vi.fn(async (_options: ControllerOptions) => {}));
vi.mock("../../../src/controller/manager.ts", () => ({ runController }));

const ROOT = resolve(import.meta.dirname, "../../..");
const NODE = resolve(ROOT, "node_modules/.bin/node");
const MAIN = resolve(ROOT, "src/cli/main.ts");

/** Runs the real CLI in a child process with only PATH and HOME from this environment. */
function cadent(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(
      NODE,
      [MAIN, ...args],
      { cwd: ROOT, env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env } },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === "number" ? err.code : -1;
        done({ code, stdout, stderr });
      },
    );
  });
}

afterEach(() => {
  runController.mockClear();
  vi.restoreAllMocks();
});

describe("cadent controller (child process)", () => {
  it("--help lists every flag with its environment variable, and exits 0", async () => {
    const { code, stdout } = await cadent(["controller", "--help"]);
    expect(code).toBe(0);
    const help = stdout.replace(/\s+/g, " ");
    for (const spec of Object.values(CONTROLLER_FLAGS)) {
      expect(help).toContain(`${spec.flag}${spec.value ? ` ${spec.value}` : ""} `);
      expect(help).toContain(`env: ${spec.env}`);
    }
    expect(help).toContain("--no-leader-elect ");
  });

  it("exits 2 on an unknown flag", async () => {
    const { code, stderr } = await cadent(["controller", "--leader-elction"]);
    expect(code).toBe(2);
    expect(stderr).toContain("unknown option '--leader-elction'");
  });

  it("exits 2 on an invalid value, naming the flag and its variable, before starting anything", async () => {
    const { code, stderr } = await cadent(["controller"], { CADENT_WORKERS: "none" });
    expect(code).toBe(2);
    expect(stderr).toContain(
      'invalid option: --workers (env CADENT_WORKERS): expected a whole number of at least 1, got "none" from $CADENT_WORKERS',
    );
  });
});

describe("cadent controller (in process)", () => {
  it("hands the parsed options to runController", async () => {
    const code = await runCli([
      "node",
      "cadent",
      "controller",
      "--namespaces",
      "team-a,team-b",
      "--no-leader-elect",
      "--lease-duration",
      "30s",
      "--identity",
      "cadent-0",
    ]);
    expect(code).toBe(0);
    expect(runController).toHaveBeenCalledTimes(1);
    expect(runController.mock.calls[0]?.[0]).toMatchObject({
      namespaces: ["team-a", "team-b"],
      leaderElect: false,
      leaseDurationMs: 30_000,
      identity: "cadent-0",
    });
  });

  it("returns the usage exit code, and does not start the manager, when an option is invalid", async () => {
    const stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    const code = await runCli(["node", "cadent", "controller", "--kube-api-qps", "-1"]);
    expect(code).toBe(2);
    expect(runController).not.toHaveBeenCalled();
    expect(stderr.mock.calls.map((c) => String(c[0])).join("")).toContain(
      "--kube-api-qps (env CADENT_KUBE_API_QPS)",
    );
  });
});
