/**
 * A TCP proxy on loopback between a client (the controller) and a server (kube-apiserver, Redis)
 * that can make the network misbehave the way production networks do: connections that go silent
 * without closing (a half-open connection after a NAT or load balancer forgot them) and
 * connections reset mid-stream. It passes bytes through untouched, so TLS works end to end.
 *
 * node:net is all it takes; a proxy library would add nothing a chaos test needs.
 */
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { freePort } from "../../support/ports.ts";

export interface ChaosProxy {
  readonly port: number;
  /** Connections currently open through the proxy. */
  readonly open: number;
  /**
   * Every connection open now stops carrying bytes in both directions and is never closed: the
   * peers see silence, not a FIN or RST. New connections pass normally.
   */
  freezeOpenConnections(): number;
  /** Every connection open now is destroyed (the client sees a reset). */
  resetOpenConnections(): number;
  /** While blocked, new connections are accepted and then left silent, like a black hole. */
  setBlackHole(on: boolean): void;
  close(): Promise<void>;
}

export async function startProxy(target: { host: string; port: number }): Promise<ChaosProxy> {
  const port = await freePort();
  const pairs = new Set<{ client: Socket; upstream: Socket; frozen: boolean }>();
  let blackHole = false;

  const server: Server = createServer((client) => {
    const upstream = createConnection({ host: target.host, port: target.port });
    const pair = { client, upstream, frozen: blackHole };
    pairs.add(pair);
    const forward = (from: Socket, to: Socket) =>
      from.on("data", (chunk: Buffer) => {
        if (!pair.frozen) to.write(chunk);
      });
    forward(client, upstream);
    forward(upstream, client);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    // A frozen pair swallows closes too: the other side must discover the silence by itself.
    client.on("close", () => (pair.frozen ? upstream.destroy() : end()));
    upstream.on("close", () => (pair.frozen ? undefined : end()));
    client.on("error", () => undefined);
    upstream.on("error", () => undefined);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });

  return {
    port,
    get open() {
      return pairs.size;
    },
    freezeOpenConnections() {
      let n = 0;
      for (const pair of pairs) {
        if (!pair.frozen) n++;
        pair.frozen = true;
      }
      return n;
    },
    resetOpenConnections() {
      const n = pairs.size;
      for (const pair of [...pairs]) {
        pair.client.resetAndDestroy();
        pair.upstream.destroy();
        pairs.delete(pair);
      }
      return n;
    },
    setBlackHole(on) {
      blackHole = on;
    },
    async close() {
      for (const pair of pairs) {
        pair.client.destroy();
        pair.upstream.destroy();
      }
      pairs.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
