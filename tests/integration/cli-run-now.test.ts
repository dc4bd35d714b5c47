import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { Cadent, installCrds } from "../support/cadent.ts";
import { createTestNamespace, kubeConfig } from "../support/kube.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const NODE = resolve(ROOT, "node_modules/.bin/node");
const MAIN = resolve(ROOT, "src/cli/main.ts");
const RUN_NOW = "cadent.dev/run-now";

/** The real CLI as a child process, against the shared API server. No controller runs here. */
function cadent(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(
      NODE,
      [MAIN, ...args, "--kubeconfig", inject("kubeconfigPath")],
      { cwd: ROOT, env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "" } },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === "number" ? err.code : -1;
        done({ code, stdout, stderr });
      },
    );
  });
}

/** Written out here rather than imported, so the test checks the CLI against product.md §1.3. */
function expectedRunName(periodicTask: string, token: string): string {
  return `${periodicTask}-m${createHash("sha256").update(token).digest("hex").slice(0, 9)}`;
}

describe("cadent run-now", () => {
  const kc = kubeConfig();
  let namespace: { name: string; cleanup: () => Promise<void> };
  let cadentApi: Cadent;

  beforeAll(async () => {
    await installCrds(kc);
    namespace = await createTestNamespace(kc, "cli-run-now");
    cadentApi = new Cadent(kc, namespace.name);
    await cadentApi.create("periodictasks", {
      apiVersion: "cadent.dev/v1alpha1",
      kind: "PeriodicTask",
      metadata: { name: "nightly", annotations: { "example.com/owner": "team-a" } },
      spec: { schedule: "0 3 * * *", taskTemplate: { spec: { task: "app.tasks.nightly" } } },
    });
  });

  afterAll(async () => {
    await namespace.cleanup();
  });

  it("sets the run-now annotation to the given token, keeps other annotations, and prints the run's name", async () => {
    const result = await cadent("run-now", "pt/nightly", "-n", namespace.name, "--token", "deploy-42");
    expect(result).toEqual({
      code: 0,
      stdout: `token: deploy-42\nrun: ${expectedRunName("nightly", "deploy-42")}\n`,
      stderr: "",
    });
    const pt = await cadentApi.get("periodictasks", "nightly");
    expect(pt.metadata.annotations).toEqual({ "example.com/owner": "team-a", [RUN_NOW]: "deploy-42" });
  });

  it.each(["periodictask/nightly", "periodictasks/nightly", "ptask/nightly"])(
    "accepts %s and makes up a new token each time",
    async (ref) => {
      const before = (await cadentApi.get("periodictasks", "nightly")).metadata.annotations?.[RUN_NOW];
      const result = await cadent("run-now", ref, "--namespace", namespace.name);
      expect(result.code).toBe(0);
      const token = /^token: (.+)$/m.exec(result.stdout)?.[1] ?? "";
      expect(token).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z-[0-9a-f]{6}$/);
      expect(token).not.toBe(before);
      expect(result.stdout).toContain(`run: ${expectedRunName("nightly", token)}\n`);
      const pt = await cadentApi.get("periodictasks", "nightly");
      expect(pt.metadata.annotations?.[RUN_NOW]).toBe(token);
    },
  );

  it("exits 1 with a clear error when the PeriodicTask does not exist, and creates nothing", async () => {
    const result = await cadent("run-now", "pt/no-such-task", "-n", namespace.name);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain(`PeriodicTask "no-such-task" not found in namespace "${namespace.name}"`);
    expect((await cadentApi.list("periodictasks")).map((p) => p.metadata.name)).toEqual(["nightly"]);
  });

  it.each([
    { ref: "nightly", why: "no resource prefix", says: "'nightly' is not a PeriodicTask: write pt/NAME" },
    { ref: "deployment/nightly", why: "another kind", says: "'deployment/nightly' is not a PeriodicTask" },
    { ref: "pt/Not_A_Name", why: "an invalid object name", says: "'Not_A_Name' is not a valid object name" },
  ])("exits 2 on $why ($ref)", async ({ ref, says }) => {
    const result = await cadent("run-now", ref, "-n", namespace.name);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(says);
  });
});
