/**
 * Detached watchdog: `node reaper.ts <owner pid> <registry file>`. When the owner process is gone
 * (even after SIGKILL), kills the process groups listed in the registry that are still the very
 * processes the owner started (same PID and start time), then removes the registry and exits.
 */
import { readFileSync, rmSync } from "node:fs";
import { processStartTime } from "./processes.ts";

const ownerPid = Number(process.argv[2]);
const registryFile = process.argv[3] ?? "";
const ownerStart = processStartTime(ownerPid);

interface Entry {
  pid: number;
  start: string;
}

function isEntryList(value: unknown): value is Entry[] {
  return (
    Array.isArray(value) &&
    value.every(
      (e: unknown) =>
        typeof e === "object" && e !== null && "pid" in e && typeof e.pid === "number" && "start" in e,
    )
  );
}

const timer = setInterval(() => {
  if (ownerStart !== undefined && processStartTime(ownerPid) === ownerStart) return;
  clearInterval(timer);
  let entries: Entry[] = [];
  try {
    const parsed: unknown = JSON.parse(readFileSync(registryFile, "utf8"));
    if (isEntryList(parsed)) entries = parsed;
  } catch {
    // Nothing registered.
  }
  for (const { pid, start } of entries) {
    if (processStartTime(pid) !== start) continue;
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // Gone.
    }
  }
  rmSync(registryFile, { force: true });
}, 500);
