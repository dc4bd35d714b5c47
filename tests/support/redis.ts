/** A private redis-server (Debian's) on a free loopback port with its own data directory. */
import { mkdirSync } from "node:fs";
import { createConnection } from "node:net";
import { join } from "node:path";
import { freePort, waitFor } from "./ports.ts";
import { spawnTracked, type TrackedProcess } from "./processes.ts";

export interface RedisServer {
  url: string;
  port: number;
  process: TrackedProcess;
  /** Stops the server (SIGTERM, so an AOF is flushed) and starts it again on the same port and data. */
  restart(): Promise<void>;
  stop(): Promise<void>;
  /** Starts a stopped server again on the same port and data (`stop()` + `start()` = an outage). */
  start(): Promise<void>;
}

/**
 * Sends PING (after AUTH when the server has a password) and resolves true on +PONG. Used instead
 * of a client so the harness has no state.
 */
function ping(port: number, password?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const auth = password === undefined ? "" : `AUTH ${password}\r\n`;
    const socket = createConnection({ host: "127.0.0.1", port }, () => socket.write(`${auth}PING\r\n`));
    socket.setTimeout(1_000, () => socket.destroy());
    let replies = "";
    socket.on("data", (data) => {
      replies += data.toString();
      if (password !== undefined && !replies.includes("\r\n+")) return;
      resolve(replies.includes("+PONG"));
      socket.destroy();
    });
    socket.on("error", () => resolve(false));
    socket.on("close", () => resolve(false));
  });
}

export async function startRedis(opts: {
  workDir: string;
  name?: string;
  appendOnly?: boolean;
  command?: string;
  /** `requirepass`: clients must AUTH with it (the harness's own probe does). */
  requirePass?: string;
}): Promise<RedisServer> {
  const name = opts.name ?? "redis";
  const dir = join(opts.workDir, name);
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const args = [
    "--bind",
    "127.0.0.1",
    "--port",
    String(port),
    "--dir",
    dir,
    "--save",
    "",
    "--appendonly",
    opts.appendOnly ? "yes" : "no",
    "--daemonize",
    "no",
    "--protected-mode",
    "yes",
    "--loglevel",
    "warning",
    ...(opts.requirePass === undefined ? [] : ["--requirepass", opts.requirePass]),
  ];
  const start = async (): Promise<TrackedProcess> => {
    const proc = spawnTracked({
      name,
      command: opts.command ?? "redis-server",
      args,
      logDir: join(opts.workDir, "logs"),
    });
    await waitFor(`${name} on port ${port}`, () => ping(port, opts.requirePass), { timeoutMs: 20_000 });
    return proc;
  };
  const server: RedisServer = {
    url: `redis://127.0.0.1:${port}/0`,
    port,
    process: await start(),
    async restart() {
      await server.process.stop();
      server.process = await start();
    },
    async stop() {
      await server.process.stop();
    },
    async start() {
      server.process = await start();
    },
  };
  return server;
}
