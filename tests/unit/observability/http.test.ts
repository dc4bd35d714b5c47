import { afterEach, describe, expect, it } from "vitest";
import { ReadinessChecks, parseListenAddress, startHttpServer } from "../../../src/observability/http.ts";
import type { ObservabilityServer } from "../../../src/observability/http.ts";
import { ControllerMetrics } from "../../../src/observability/metrics.ts";

const servers: ObservabilityServer[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(options: Parameters<typeof startHttpServer>[0]): Promise<ObservabilityServer> {
  const server = await startHttpServer(options);
  servers.push(server);
  return server;
}

async function get(
  server: ObservabilityServer,
  path: string,
  method = "GET",
): Promise<{ status: number; body: string; type: string | null }> {
  const res = await fetch(`http://127.0.0.1:${server.port}${path}`, { method });
  return { status: res.status, body: await res.text(), type: res.headers.get("content-type") };
}

describe("parseListenAddress", () => {
  it.each([
    [":8080", { host: undefined, port: 8080 }],
    ["127.0.0.1:0", { host: "127.0.0.1", port: 0 }],
    ["0.0.0.0:9090", { host: "0.0.0.0", port: 9090 }],
    ["localhost:8081", { host: "localhost", port: 8081 }],
    ["[::1]:8080", { host: "::1", port: 8080 }],
    ["[::]:65535", { host: "::", port: 65535 }],
  ])("%s listens on %j", (text, address) => {
    expect(parseListenAddress(text)).toEqual(address);
  });

  it.each(["8080", "", ":", "host:", ":65536", "::1:8080", "127.0.0.1:http", " :8080", "[::1]"])(
    "%j is refused with an example of the right form",
    (text) => {
      expect(() => parseListenAddress(text)).toThrow(/is not host:port.*":8080" listens on every interface/);
    },
  );
});

describe("startHttpServer", () => {
  it("reports the bound port when asked for port 0", async () => {
    const server = await start({ address: "127.0.0.1:0", readiness: new ReadinessChecks() });
    expect(server.host).toBe("127.0.0.1");
    expect(server.port).toBeGreaterThan(0);
  });

  it("answers /healthz with 200 whatever the readiness checks say", async () => {
    const checks = new ReadinessChecks().add("informers-synced", () => false);
    const server = await start({ address: "127.0.0.1:0", readiness: checks });
    expect(await get(server, "/healthz")).toMatchObject({ status: 200, body: "ok\n" });
  });

  it("flips /readyz between 503 and 200 as the checks flip, listing the failing ones", async () => {
    const state = { synced: false, leaderOrStandby: false };
    const checks = new ReadinessChecks()
      .add("informers-synced", () => state.synced)
      .add("leader-or-standby", () => state.leaderOrStandby);
    const server = await start({ address: "127.0.0.1:0", readiness: checks });

    expect(await get(server, "/readyz")).toEqual({
      status: 503,
      type: "text/plain; charset=utf-8",
      body: "[-]informers-synced failed\n[-]leader-or-standby failed\nreadyz check failed\n",
    });

    state.synced = true;
    expect(await get(server, "/readyz")).toMatchObject({
      status: 503,
      body: "[+]informers-synced ok\n[-]leader-or-standby failed\nreadyz check failed\n",
    });

    state.leaderOrStandby = true;
    expect(await get(server, "/readyz")).toMatchObject({ status: 200, body: "ok\n" });
    expect(await get(server, "/readyz?verbose")).toMatchObject({
      status: 200,
      body: "[+]informers-synced ok\n[+]leader-or-standby ok\nreadyz check passed\n",
    });

    state.synced = false;
    expect((await get(server, "/readyz")).status).toBe(503);
  });

  it("counts a check that throws as failing, with its message", async () => {
    const checks = new ReadinessChecks().add("redis", () => {
      throw new Error("connection refused");
    });
    const server = await start({ address: "127.0.0.1:0", readiness: checks });
    expect(await get(server, "/readyz")).toMatchObject({
      status: 503,
      body: "[-]redis failed: connection refused\nreadyz check failed\n",
    });
  });

  it("is ready with no checks registered", async () => {
    const server = await start({ address: "127.0.0.1:0", readiness: new ReadinessChecks() });
    expect((await get(server, "/readyz")).status).toBe(200);
  });

  it("refuses a second check with the same name", () => {
    const checks = new ReadinessChecks().add("informers-synced", () => true);
    expect(() => checks.add("informers-synced", () => true)).toThrow(/already registered/);
  });

  it("serves /metrics in Prometheus text format", async () => {
    const metrics = new ControllerMetrics();
    metrics.setLeader(true);
    const server = await start({ address: "127.0.0.1:0", metrics });
    const res = await get(server, "/metrics");
    expect(res.status).toBe(200);
    expect(res.type).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(res.body).toMatch(/^cadent_leader 1$/m);
  });

  it("serves only the routes it was given", async () => {
    const metricsOnly = await start({ address: "127.0.0.1:0", metrics: new ControllerMetrics() });
    const healthOnly = await start({ address: "127.0.0.1:0", readiness: new ReadinessChecks() });
    expect((await get(metricsOnly, "/healthz")).status).toBe(404);
    expect((await get(healthOnly, "/metrics")).status).toBe(404);
    expect((await get(healthOnly, "/")).status).toBe(404);
  });

  it("answers HEAD like GET and refuses other methods with 405", async () => {
    const server = await start({ address: "127.0.0.1:0", readiness: new ReadinessChecks() });
    expect((await get(server, "/healthz", "HEAD")).status).toBe(200);
    expect((await get(server, "/healthz", "POST")).status).toBe(405);
  });

  it("rejects with the address and purpose when the port is taken", async () => {
    const first = await start({ address: "127.0.0.1:0", readiness: new ReadinessChecks() });
    await expect(
      startHttpServer({
        address: `127.0.0.1:${first.port}`,
        purpose: "metrics",
        metrics: new ControllerMetrics(),
      }),
    ).rejects.toThrow(`cannot listen on 127.0.0.1:${first.port} for metrics`);
  });

  it("closes idempotently, dropping keep-alive connections, and stops listening", async () => {
    const server = await startHttpServer({ address: "127.0.0.1:0", readiness: new ReadinessChecks() });
    // A keep-alive connection, as a Prometheus scraper holds one, must not keep close() waiting.
    await get(server, "/healthz");
    const closing = server.close();
    expect(server.close()).toBe(closing);
    await closing;
    await server.close();
    await expect(fetch(`http://127.0.0.1:${server.port}/healthz`)).rejects.toThrow();
  });
});
