/** Kubernetes helpers for integration tests: clients for the shared cluster, namespaces, waits. */
import { randomBytes } from "node:crypto";
import * as k8s from "@kubernetes/client-node";
import { inject } from "vitest";
import { waitFor } from "./ports.ts";

export { k8s };

export function loadKubeConfig(path: string): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

/** The cluster-admin KubeConfig of the shared test cluster. */
export function kubeConfig(): k8s.KubeConfig {
  return loadKubeConfig(inject("kubeconfigPath"));
}

/** A short random suffix for names that must not collide between tests and runs. */
export function uniqueSuffix(): string {
  return randomBytes(3).toString("hex");
}

/** Creates a Namespace `<prefix>-<random>` and returns its name with a cleanup function. */
export async function createTestNamespace(
  kc: k8s.KubeConfig,
  prefix: string,
  labels: Record<string, string> = {},
): Promise<{ name: string; cleanup: () => Promise<void> }> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const name = `${prefix}-${uniqueSuffix()}`;
  await core.createNamespace({ body: { metadata: { name, labels } } });
  return {
    name,
    cleanup: async () => {
      await core.deleteNamespace({ name }).catch(() => undefined);
    },
  };
}

/** HTTP status of a client-node ApiException (or undefined for other errors). */
export function errorCode(err: unknown): number | undefined {
  return err instanceof k8s.ApiException ? err.code : undefined;
}

/** Creates the fake Node that kwok manages; Pods scheduled there "run" per kwok-stages.yaml. */
export async function createFakeNode(kubeconfigPath: string, name = "kwok-node-0"): Promise<void> {
  const core = loadKubeConfig(kubeconfigPath).makeApiClient(k8s.CoreV1Api);
  await core.createNode({
    body: {
      metadata: {
        name,
        annotations: { "kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0" },
        labels: {
          "kubernetes.io/hostname": name,
          "kubernetes.io/os": "linux",
          "kubernetes.io/arch": "amd64",
          type: "kwok",
        },
      },
      spec: {},
    },
  });
  await waitFor(
    `node ${name} Ready`,
    async () => {
      const node = await core.readNode({ name });
      return node.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
    },
    { timeoutMs: 60_000 },
  );
  // The TaintNodesByCondition admission plugin taints every new Node not-ready; the node
  // lifecycle controller, which would lift it, is not run here (it would evict kwok's Pods on a
  // missed heartbeat), so lift it once the Node is Ready.
  await core.patchNode(
    { name, body: { spec: { taints: [] } } },
    k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
  );
}

/** Waits until the Job has the condition `type` ("Complete", "Failed", ...) with status True. */
export async function waitForJobCondition(
  kc: k8s.KubeConfig,
  namespace: string,
  name: string,
  type: string,
  timeoutMs = 60_000,
): Promise<k8s.V1Job> {
  const batch = kc.makeApiClient(k8s.BatchV1Api);
  let job: k8s.V1Job | undefined;
  await waitFor(
    `Job ${namespace}/${name} to be ${type}`,
    async () => {
      job = await batch.readNamespacedJob({ namespace, name });
      return job.status?.conditions?.some((c) => c.type === type && c.status === "True") ?? false;
    },
    { timeoutMs, intervalMs: 250 },
  );
  if (!job) throw new Error("unreachable: waitFor resolved without reading the Job");
  return job;
}
