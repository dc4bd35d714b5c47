import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { silentLogger } from "../runtime/logger.ts";
import type { Logger } from "../runtime/logger.ts";

/**
 * The controller's small HTTP endpoints, one factory for both `--health-addr` and
 * `--metrics-addr` (pass both `readiness` and `metrics` to serve everything on one port):
 *
 * - `GET /healthz`: 200 "ok" whenever the process can answer at all. It checks nothing else on
 *   purpose: a liveness probe that failed on a dependency (API server, Redis) would make the
 *   kubelet restart every replica during that dependency's outage.
 * - `GET /readyz`: 200 "ok" when every registered readiness check passes (none registered counts
 *   as ready), else 503 with one `[+]name ok` / `[-]name failed` line per check, as the
 *   kube-apiserver's own `/readyz` prints them. `?verbose` lists the checks on success too.
 * - `GET /metrics`: the registry in Prometheus text format.
 *
 * Node's http module is enough for three fixed routes, so there is no framework here.
 */

/** Where to listen, from a `host:port` string. An undefined host means every interface. */
export interface ListenAddress {
  host: string | undefined;
  port: number;
}

/**
 * Parses `host:port` as Go's net.Listen does: `:8080` is every interface, `127.0.0.1:0` picks a
 * free port on the loopback interface, an IPv6 host is bracketed (`[::1]:8080`).
 */
export function parseListenAddress(text: string): ListenAddress {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s]*)):(\d{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  if (!match || !(port <= 65535)) {
    throw new Error(
      `listen address "${text}" is not host:port with a port from 0 to 65535 (":8080" listens on every interface, "127.0.0.1:8080" on the loopback one, "[::1]:8080" on IPv6 loopback)`,
    );
  }
  const host = match[1] ?? match[2];
  return { host: host === "" ? undefined : host, port };
}

/** A readiness check: synchronous and cheap (it runs on every probe); throwing counts as failing. */
export type ReadinessCheck = () => boolean;

/** Named readiness checks, evaluated on every `/readyz` request. */
export class ReadinessChecks {
  readonly #checks = new Map<string, ReadinessCheck>();

  /** Adds a check; names are unique and appear in the `/readyz` output. */
  add(name: string, check: ReadinessCheck): this {
    if (this.#checks.has(name)) {
      throw new Error(`readiness check "${name}" is already registered`);
    }
    this.#checks.set(name, check);
    return this;
  }

  /** Every check's outcome, in the order added. */
  evaluate(): { name: string; ok: boolean; reason?: string }[] {
    return [...this.#checks].map(([name, check]) => {
      try {
        return { name, ok: check() };
      } catch (err) {
        return { name, ok: false, reason: err instanceof Error ? err.message : String(err) };
      }
    });
  }
}

/** What `/metrics` renders; `ControllerMetrics` is one. */
export interface MetricsSource {
  readonly contentType: string;
  render(): Promise<string>;
}

export interface HttpServerOptions {
  /** `host:port`, see {@link parseListenAddress}. */
  address: string;
  /** Serves `/healthz` and `/readyz` when given. */
  readiness?: ReadinessChecks;
  /** Serves `/metrics` when given. */
  metrics?: MetricsSource;
  /** For the error message when the port is taken, e.g. "health" or "metrics". */
  purpose?: string;
  logger?: Logger;
}

export interface ObservabilityServer {
  /** The host as given ("" for every interface). */
  readonly host: string;
  /** The bound port: the real one when the address asked for port 0. */
  readonly port: number;
  /** Stops listening and drops open keep-alive connections. Idempotent; never rejects. */
  close(): Promise<void>;
}

const TEXT = "text/plain; charset=utf-8";

/** Starts listening; rejects with an actionable message when the address cannot be bound. */
export async function startHttpServer(options: HttpServerOptions): Promise<ObservabilityServer> {
  const { host, port } = parseListenAddress(options.address);
  const logger = options.logger ?? silentLogger;
  const purpose = options.purpose ?? "http";
  const server = createServer((req, res) => {
    handle(options, req, res).catch((err: unknown) => {
      logger.error({ path: req.url, err }, "http handler failed");
      reply(res, 500, TEXT, "internal error\n");
    });
  });
  // Probes and scrapes are tiny: a client that has not sent its headers in 10 s is not a probe.
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      const hint = err.code === "EADDRINUSE" ? " (the port is taken; choose another with the flag)" : "";
      reject(new Error(`cannot listen on ${options.address} for ${purpose}: ${err.message}${hint}`));
    };
    server.once("error", onError);
    server.listen({ host, port }, () => {
      server.off("error", onError);
      resolve();
    });
  });
  server.on("error", (err) => logger.error({ address: options.address, purpose, err }, "http server error"));

  const bound = (server.address() as AddressInfo).port;
  logger.info({ address: options.address, port: bound, purpose }, "http server listening");
  let closed: Promise<void> | undefined;
  return {
    host: host ?? "",
    port: bound,
    close() {
      closed ??= closeServer(server);
      return closed;
    },
  };
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    // close() alone waits for idle keep-alive connections (a Prometheus scraper keeps one open).
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

async function handle(options: HttpServerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? "/", "http://localhost");
  const route = routeFor(options, url.pathname);
  if (route === undefined) {
    reply(res, 404, TEXT, "not found\n");
    return;
  }
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.setHeader("Allow", "GET, HEAD");
    reply(res, 405, TEXT, "method not allowed\n");
    return;
  }
  switch (route) {
    case "healthz":
      reply(res, 200, TEXT, "ok\n");
      return;
    case "readyz":
      readyz(options.readiness ?? new ReadinessChecks(), url.searchParams.has("verbose"), res);
      return;
    case "metrics": {
      const metrics = options.metrics;
      if (metrics) {
        reply(res, 200, metrics.contentType, await metrics.render());
      }
      return;
    }
  }
}

function routeFor(options: HttpServerOptions, path: string): "healthz" | "readyz" | "metrics" | undefined {
  if (options.readiness && path === "/healthz") return "healthz";
  if (options.readiness && path === "/readyz") return "readyz";
  if (options.metrics && path === "/metrics") return "metrics";
  return undefined;
}

function readyz(checks: ReadinessChecks, verbose: boolean, res: ServerResponse): void {
  const results = checks.evaluate();
  const ready = results.every((r) => r.ok);
  const lines = results.map((r) =>
    r.ok ? `[+]${r.name} ok` : `[-]${r.name} failed${r.reason ? `: ${r.reason}` : ""}`,
  );
  if (ready) {
    reply(res, 200, TEXT, verbose ? `${lines.join("\n")}\nreadyz check passed\n` : "ok\n");
  } else {
    reply(res, 503, TEXT, `${lines.join("\n")}\nreadyz check failed\n`);
  }
}

function reply(res: ServerResponse, status: number, contentType: string, body: string): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.statusCode = status;
  res.setHeader("Content-Type", contentType);
  res.setHeader("Cache-Control", "no-store");
  res.end(body);
}
