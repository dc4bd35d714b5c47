import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inject } from "vitest";
import { createTestNamespace, k8s, kubeConfig, waitForJobCondition } from "../support/kube.ts";
import { waitFor } from "../support/ports.ts";

describe("the test control plane is a real Kubernetes", () => {
  const kc = kubeConfig();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const batch = kc.makeApiClient(k8s.BatchV1Api);
  let ns: Awaited<ReturnType<typeof createTestNamespace>>;

  beforeAll(async () => {
    ns = await createTestNamespace(kc, "smoke");
  });
  afterAll(async () => {
    await ns.cleanup();
  });

  it("reports a version-stamped Kubernetes 1.36", async () => {
    const version = await kc.makeApiClient(k8s.VersionApi).getCode();
    expect(version.gitVersion).toMatch(/^v1\.36\.\d+$/);
  });

  it("refuses an unauthenticated client (RBAC and authentication are on)", async () => {
    const anonymous = new k8s.KubeConfig();
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error("no current cluster");
    anonymous.loadFromClusterAndUser(cluster, { name: "anonymous" });
    const err = await anonymous
      .makeApiClient(k8s.CoreV1Api)
      .listNamespacedConfigMap({ namespace: ns.name })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(k8s.ApiException);
    expect([401, 403]).toContain((err as k8s.ApiException<unknown>).code);
  });

  it("delivers a ConfigMap created in a new Namespace through a watch", async () => {
    const seen: string[] = [];
    const watch = new k8s.Watch(kc);
    const request = await watch.watch(
      `/api/v1/namespaces/${ns.name}/configmaps`,
      {},
      (phase: string, obj: k8s.V1ConfigMap) => seen.push(`${phase} ${obj.metadata?.name}`),
      () => undefined,
    );
    try {
      await core.createNamespacedConfigMap({
        namespace: ns.name,
        body: { metadata: { name: "hello" }, data: { greeting: "hi" } },
      });
      await core.patchNamespacedConfigMap(
        { namespace: ns.name, name: "hello", body: { data: { greeting: "hello" } } },
        k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
      );
      await waitFor("ADDED and MODIFIED events", async () => seen.includes("MODIFIED hello"), {
        timeoutMs: 10_000,
      });
      expect(seen).toContain("ADDED hello");
    } finally {
      request.abort();
    }
  });

  it.runIf(inject("jobsRun"))(
    "runs a Job to Complete on kwok's fake Node, and garbage-collects its Pods when the Job is deleted",
    async () => {
      await batch.createNamespacedJob({
        namespace: ns.name,
        body: {
          metadata: { name: "smoke-job" },
          spec: {
            backoffLimit: 0,
            template: {
              metadata: { annotations: { "test.cadent.dev/termination-message": '{"ok":true}' } },
              spec: { restartPolicy: "Never", containers: [{ name: "main", image: "busybox" }] },
            },
          },
        },
      });
      await waitForJobCondition(kc, ns.name, "smoke-job", "Complete");
      const pods = await core.listNamespacedPod({ namespace: ns.name, labelSelector: "job-name=smoke-job" });
      expect(pods.items).toHaveLength(1);
      const pod = pods.items[0];
      expect(pod?.spec?.nodeName).toBe("kwok-node-0");
      expect(pod?.status?.phase).toBe("Succeeded");
      expect(pod?.status?.containerStatuses?.[0]?.state?.terminated?.message).toBe('{"ok":true}');

      await batch.deleteNamespacedJob({
        namespace: ns.name,
        name: "smoke-job",
        propagationPolicy: "Background",
      });
      await waitFor(
        "the garbage collector to delete the Job's Pods",
        async () =>
          (await core.listNamespacedPod({ namespace: ns.name, labelSelector: "job-name=smoke-job" })).items
            .length === 0,
        { timeoutMs: 60_000, intervalMs: 500 },
      );
    },
  );

  it.runIf(inject("jobsRun"))("fails a Job whose Pod is told to fail, with its exit code", async () => {
    await batch.createNamespacedJob({
      namespace: ns.name,
      body: {
        metadata: { name: "smoke-fail" },
        spec: {
          backoffLimit: 0,
          template: {
            metadata: {
              annotations: { "test.cadent.dev/outcome": "fail", "test.cadent.dev/exit-code": "3" },
            },
            spec: { restartPolicy: "Never", containers: [{ name: "main", image: "busybox" }] },
          },
        },
      },
    });
    await waitForJobCondition(kc, ns.name, "smoke-fail", "Failed");
    const pods = await core.listNamespacedPod({ namespace: ns.name, labelSelector: "job-name=smoke-fail" });
    expect(pods.items[0]?.status?.containerStatuses?.[0]?.state?.terminated?.exitCode).toBe(3);
  });
});
