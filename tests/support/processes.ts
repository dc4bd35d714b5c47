/**
 * Processes started by the tests, tracked by PID so that they, and only they, are stopped.
 *
 * Guarantees:
 * - Every process is started in its own process group (`detached`), so stopping it also stops
 *   the children it forked (Celery's prefork pool), and a terminal's Ctrl-C reaches the test
 *   runner only, which then stops them in order.
 * - Processes are stopped on `stop()`, on the owner's normal exit, on SIGINT/SIGTERM/SIGHUP of the
 *   owner, and — if the owner is killed with SIGKILL — by a small detached reaper that polls the
 *   owner's PID and kills whatever the owner had registered.
 * - A PID is identified with its start time (from /proc), so a recycled PID is never killed.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export interface TrackedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  readonly child: ChildProcess;
  /** Resolves with the exit code (or signal name) when the process has exited. */
  readonly exited: Promise<number | string>;
  /** SIGTERM to the process group, SIGKILL after `graceMs`; resolves when it has exited. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL to the process group, at once. */
  kill(): Promise<void>;
  /** Sends a signal to the process group (e.g. SIGSTOP/SIGCONT). */
  signal(sig: NodeJS.Signals): void;
  /** The tail of the log file, for error messages. */
  logTail(lines?: number): string;
}

export interface SpawnOptions {
  name: string;
  command: string;
  args: readonly string[];
  logDir: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Start time of a PID in clock ticks since boot (field 22 of /proc/PID/stat), or undefined. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return rest[19];
  } catch {
    return undefined;
  }
}

interface Registered {
  pid: number;
  start: string;
  name: string;
}

const registry = new Map<number, Registered>();
let registryFile: string | undefined;
let hooksInstalled = false;

function persistRegistry(): void {
  if (!registryFile) return;
  writeFileSync(registryFile, JSON.stringify([...registry.values()]));
}

/** Kills every registered process group that is still the process we started. Synchronous. */
export function killAllTracked(signal: NodeJS.Signals = "SIGKILL"): void {
  for (const entry of registry.values()) {
    if (processStartTime(entry.pid) !== entry.start) continue;
    try {
      process.kill(-entry.pid, signal);
    } catch {
      // Already gone.
    }
  }
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  const dir = join(tmpdir(), "cadent-test-pids");
  mkdirSync(dir, { recursive: true });
  registryFile = join(dir, `${process.pid}-${processStartTime(process.pid) ?? "0"}.json`);
  persistRegistry();
  process.on("exit", () => killAllTracked("SIGKILL"));
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(sig, () => {
      // When the program handles the signal itself (the sandbox stops gracefully), let it.
      if (process.listenerCount(sig) > 0) return;
      killAllTracked("SIGKILL");
      process.kill(process.pid, sig);
    });
  }
  // The reaper outlives us only to clean up after a SIGKILL of this process.
  const reaper = spawn(
    process.execPath,
    [fileURLToPath(new URL("./reaper.ts", import.meta.url)), String(process.pid), registryFile],
    { detached: true, stdio: "ignore" },
  );
  reaper.unref();
}

/** Starts a process in its own group, with stdout and stderr appended to `<logDir>/<name>.log`. */
export function spawnTracked(opts: SpawnOptions): TrackedProcess {
  installHooks();
  mkdirSync(opts.logDir, { recursive: true });
  const logFile = join(opts.logDir, `${opts.name}.log`);
  const fd = openSync(logFile, "a");
  const child = spawn(opts.command, [...opts.args], {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    detached: true,
    stdio: ["ignore", fd, fd],
  });
  closeSync(fd);
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${opts.name} (${opts.command})`);
  const start = processStartTime(pid) ?? "";
  registry.set(pid, { pid, start, name: opts.name });
  persistRegistry();

  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => {
      registry.delete(pid);
      persistRegistry();
      resolve(code ?? signal ?? "unknown");
    });
  });
  child.unref();

  const sendToGroup = (sig: NodeJS.Signals): void => {
    if (!registry.has(pid) || processStartTime(pid) !== start) return;
    try {
      process.kill(-pid, sig);
    } catch {
      // The group is gone already.
    }
  };
  const logTail = (lines = 30): string => {
    try {
      return readFileSync(logFile, "utf8").split("\n").slice(-lines).join("\n");
    } catch {
      return "";
    }
  };

  return {
    name: opts.name,
    pid,
    logFile,
    child,
    exited,
    signal: sendToGroup,
    logTail,
    async stop(graceMs = 5_000) {
      sendToGroup("SIGCONT");
      sendToGroup("SIGTERM");
      const timer = setTimeout(() => sendToGroup("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
      // Children that ignored SIGTERM (or were forked after it) go with the group.
      try {
        process.kill(-pid, "SIGKILL");
      } catch {
        // The group is empty.
      }
    },
    async kill() {
      sendToGroup("SIGKILL");
      await exited;
    },
  };
}
