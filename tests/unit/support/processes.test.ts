import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { processStartTime } from "../../support/processes.ts";

const fixture = fileURLToPath(new URL("./fixtures/spawn-sleepers.ts", import.meta.url));

/** Starts the fixture and resolves with its PID and the PIDs of the processes it tracks. */
function startOwner(): Promise<{ owner: number; tracked: number[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fixture], { stdio: ["ignore", "pipe", "inherit"] });
    child.stdout.setEncoding("utf8");
    child.stdout.once("data", (line: string) => {
      const tracked: unknown = JSON.parse(line);
      if (!Array.isArray(tracked) || child.pid === undefined) reject(new Error(`bad fixture output ${line}`));
      else resolve({ owner: child.pid, tracked: tracked.map(Number) });
    });
    child.once("error", reject);
  });
}

async function gone(pids: number[], timeoutMs = 5_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (pids.every((pid) => processStartTime(pid) === undefined)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

describe("tracked test processes never outlive the run that started them", () => {
  it.each([
    ["is interrupted with Ctrl-C (SIGINT)", "SIGINT"],
    ["is terminated (SIGTERM)", "SIGTERM"],
    ["is killed outright (SIGKILL), through the reaper", "SIGKILL"],
  ] as const)("when the owner %s", async (_what, signal) => {
    const { owner, tracked } = await startOwner();
    expect(tracked.every((pid) => processStartTime(pid) !== undefined)).toBe(true);
    process.kill(owner, signal);
    expect(await gone([owner, ...tracked])).toBe(true);
  });
});
