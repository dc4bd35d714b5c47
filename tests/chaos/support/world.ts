/**
 * A private world for one chaos test file: its own control plane (etcd, kube-apiserver, KCM,
 * scheduler, kwok with a fake Node) and its own Redis with AOF on, so a scenario may restart,
 * stop or starve any of them without touching another file's servers.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { inject } from "vitest";
import { installCrds } from "../../support/cadent.ts";
import { startControlPlane, type ControlPlane } from "../../support/control-plane.ts";
import { createFakeNode, k8s, loadKubeConfig } from "../../support/kube.ts";
import { startRedis, type RedisServer } from "../../support/redis.ts";

export interface World {
  readonly name: string;
  readonly workDir: string;
  readonly controlPlane: ControlPlane;
  readonly redis: RedisServer;
  readonly kubeconfigPath: string;
  readonly kc: k8s.KubeConfig;
  stop(): Promise<void>;
}

export interface WorldOptions {
  /** Extra kube-apiserver flags, e.g. in-flight limits that make it answer 429. */
  apiServerArgs?: readonly string[];
}

export async function startWorld(name: string, options: WorldOptions = {}): Promise<World> {
  const workDir = join(inject("workDir"), name);
  mkdirSync(workDir, { recursive: true });
  const controlPlane = await startControlPlane({
    binDir: inject("kubeBin"),
    workDir,
    apiServerArgs: options.apiServerArgs,
  });
  let redis: RedisServer | undefined;
  try {
    await createFakeNode(controlPlane.kubeconfigPath);
    redis = await startRedis({ workDir, appendOnly: true });
    const kc = loadKubeConfig(controlPlane.kubeconfigPath);
    await installCrds(kc);
    const started = redis;
    return {
      name,
      workDir,
      controlPlane,
      redis: started,
      kubeconfigPath: controlPlane.kubeconfigPath,
      kc,
      async stop() {
        await started.stop().catch(() => undefined);
        await controlPlane.stop();
      },
    };
  } catch (err) {
    await redis?.stop().catch(() => undefined);
    await controlPlane.stop();
    throw err;
  }
}

/**
 * A copy of the world's kubeconfig whose server is `127.0.0.1:<port>` (a ./proxy.ts in front of
 * the API server); the certificate still verifies, it names the address, not the port.
 */
export function kubeconfigVia(world: World, port: number, label = `via-${port}`): string {
  const server = new URL(world.controlPlane.server);
  const path = join(world.workDir, `kubeconfig-${label}`);
  writeFileSync(
    path,
    readFileSync(world.kubeconfigPath, "utf8").replace(
      `server: ${server.origin}`,
      `server: https://127.0.0.1:${port}`,
    ),
    { mode: 0o600 },
  );
  return path;
}

/** `short` in CI (the README's test command), `full` with CADENT_CHAOS=full (hack/chaos.sh). */
export const FULL = process.env.CADENT_CHAOS === "full";
export const scale = (short: number, full: number): number => (FULL ? full : short);
