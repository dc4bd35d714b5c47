import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dropBookkeeping } from "../../src/runtime/cache-transform.ts";
import { EventRecorder, coreV1EventSink } from "../../src/runtime/events.ts";
import { Informer, decodeBuiltInKind, kubeListWatchSource } from "../../src/runtime/informer.ts";
import { LeaderElector, coordinationLeaseClient } from "../../src/runtime/leader-election.ts";
import { applyStatus, mergePatchStatus, updateStatusWithRetry } from "../../src/runtime/status.ts";
import type { CustomResourceRef } from "../../src/runtime/status.ts";
import { createTestNamespace, k8s, kubeConfig, uniqueSuffix } from "../support/kube.ts";
import { waitFor } from "../support/ports.ts";

// The runtime against a real API server: the watch protocol, optimistic concurrency on a real
// Lease, status subresource patches and Event validation are the API server's, not a fake's.

const kc = kubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
let ns: Awaited<ReturnType<typeof createTestNamespace>>;

beforeAll(async () => {
  ns = await createTestNamespace(kc, "runtime");
});

afterAll(async () => {
  await ns.cleanup();
});

describe("Informer", () => {
  it("syncs, then sees a ConfigMap created, updated and deleted", async () => {
    const seen: string[] = [];
    const informer = new Informer<k8s.V1ConfigMap>({
      name: "configmaps",
      source: kubeListWatchSource(kc, {
        path: `/api/v1/namespaces/${ns.name}/configmaps`,
        list: () => core.listNamespacedConfigMap({ namespace: ns.name }),
        decode: decodeBuiltInKind,
      }),
    });
    const mine = (cm: k8s.V1ConfigMap): boolean => cm.metadata?.name === "watched";
    informer.on("add", (cm) => mine(cm) && seen.push(`add ${cm.data?.["v"]}`));
    informer.on("update", (_old, cm) => mine(cm) && seen.push(`update ${cm.data?.["v"]}`));
    informer.on("delete", (cm) => mine(cm) && seen.push("delete"));
    informer.start();
    try {
      expect(await informer.waitForSync(AbortSignal.timeout(30_000))).toBe(true);
      await core.createNamespacedConfigMap({
        namespace: ns.name,
        body: { metadata: { name: "watched" }, data: { v: "1" } },
      });
      await waitFor("the add", async () => seen.includes("add 1"), { timeoutMs: 15_000 });
      await core.patchNamespacedConfigMap(
        { namespace: ns.name, name: "watched", body: { data: { v: "2" } } },
        k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
      );
      await waitFor("the update", async () => seen.includes("update 2"), { timeoutMs: 15_000 });
      const cached = informer.store.getByName(ns.name, "watched");
      expect(cached?.data).toEqual({ v: "2" });
      // Decoded like the list's items: client-node's model with a Date, not the raw watch JSON.
      expect(cached?.metadata?.creationTimestamp).toBeInstanceOf(Date);
      await core.deleteNamespacedConfigMap({ namespace: ns.name, name: "watched" });
      await waitFor("the delete", async () => seen.includes("delete"), { timeoutMs: 15_000 });
      expect(seen).toEqual(["add 1", "update 2", "delete"]);
      expect(informer.store.getByName(ns.name, "watched")).toBeUndefined();
      expect(informer.status()).toMatchObject({ synced: true, restarts: 0 });
    } finally {
      informer.stop();
    }
  });
});

describe("Informer with pages and a transform", () => {
  it("lists every page and caches listed and watched objects as the transform leaves them", async () => {
    const labelSelector = "paged=yes";
    const create = (name: string) =>
      core.createNamespacedConfigMap({
        namespace: ns.name,
        body: { metadata: { name, labels: { paged: "yes" } }, data: { v: name } },
      });
    for (const name of ["paged-0", "paged-1", "paged-2", "paged-3", "paged-4"]) await create(name);
    const pagesAsked: (string | undefined)[] = [];
    const informer = new Informer<k8s.V1ConfigMap>({
      name: "configmaps-paged",
      source: kubeListWatchSource(kc, {
        path: `/api/v1/namespaces/${ns.name}/configmaps`,
        labelSelector,
        pageSize: 2,
        list: (page) => {
          pagesAsked.push(page.continue);
          return core.listNamespacedConfigMap({
            namespace: ns.name,
            labelSelector,
            limit: page.limit,
            _continue: page.continue,
          });
        },
        decode: decodeBuiltInKind,
        transform: dropBookkeeping,
      }),
    });
    informer.start();
    try {
      expect(await informer.waitForSync(AbortSignal.timeout(30_000))).toBe(true);
      expect(pagesAsked).toHaveLength(3);
      expect(pagesAsked[0]).toBeUndefined();
      expect(informer.store.keys().sort()).toEqual(
        ["paged-0", "paged-1", "paged-2", "paged-3", "paged-4"].map((n) => `${ns.name}/${n}`),
      );
      await create("paged-5");
      await waitFor("the watched ConfigMap", async () => informer.store.size === 6, { timeoutMs: 15_000 });
      // The API server sends managedFields with every object; the cache keeps none.
      const live = await core.readNamespacedConfigMap({ namespace: ns.name, name: "paged-5" });
      expect(live.metadata?.managedFields?.length).toBeGreaterThan(0);
      expect(informer.store.list().map((cm) => cm.metadata?.managedFields)).toEqual(Array(6).fill(undefined));
      expect(informer.store.getByName(ns.name, "paged-5")?.data).toEqual({ v: "paged-5" });
    } finally {
      informer.stop();
    }
  });
});

describe("LeaderElector on a real Lease", () => {
  it("lets only one of two electors lead, and release hands over to the other", async () => {
    const coordination = kc.makeApiClient(k8s.CoordinationV1Api);
    const moments: string[] = [];
    const leading = new Set<string>();
    const elector = (identity: string): LeaderElector =>
      new LeaderElector({
        client: coordinationLeaseClient(coordination),
        namespace: ns.name,
        name: "runtime-test",
        identity,
        leaseDurationMs: 4_000,
        renewDeadlineMs: 3_000,
        retryPeriodMs: 500,
        onStartedLeading: (signal) => {
          moments.push(`${identity} started`);
          leading.add(identity);
          signal.addEventListener("abort", () => {
            moments.push(`${identity} stopped`);
            leading.delete(identity);
          });
        },
      });
    const a = elector("a");
    const b = elector("b");
    void a.run();
    await waitFor("a to lead", async () => leading.has("a"), { timeoutMs: 15_000 });
    void b.run();
    // Several lease durations: b must keep following a leader that renews.
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    expect([...leading]).toEqual(["a"]);
    const lease = await coordination.readNamespacedLease({ namespace: ns.name, name: "runtime-test" });
    expect(lease.spec?.holderIdentity).toBe("a");
    // The API server accepted renewTime as a MicroTime (microsecond precision).
    expect(String(lease.spec?.renewTime)).toMatch(/\.\d{6}Z$/);

    await a.release();
    await waitFor("b to lead", async () => leading.has("b"), { timeoutMs: 15_000 });
    expect(moments).toEqual(["a started", "a stopped", "b started"]);
    await b.release();
    const released = await coordination.readNamespacedLease({ namespace: ns.name, name: "runtime-test" });
    expect(released.spec).toMatchObject({ holderIdentity: "", leaseDurationSeconds: 1 });
  });
});

describe("status writes to a custom resource", () => {
  // A CRD of its own (unique group per run), so these tests do not depend on cadent's CRDs.
  const group = `rt${uniqueSuffix()}.test.cadent.dev`;
  const crdName = `widgets.${group}`;
  const extensions = kc.makeApiClient(k8s.ApiextensionsV1Api);
  const customObjects = kc.makeApiClient(k8s.CustomObjectsApi);
  const ref = (name: string): CustomResourceRef => ({
    group,
    version: "v1",
    plural: "widgets",
    namespace: ns.name,
    name,
  });
  const createWidget = async (name: string): Promise<k8s.KubernetesObject> =>
    (await customObjects.createNamespacedCustomObject({
      group,
      version: "v1",
      namespace: ns.name,
      plural: "widgets",
      body: { apiVersion: `${group}/v1`, kind: "Widget", metadata: { name }, spec: { size: 1 } },
    })) as k8s.KubernetesObject;
  const readStatus = async (name: string): Promise<Record<string, unknown>> => {
    const obj = (await customObjects.getNamespacedCustomObjectStatus(ref(name))) as {
      status?: Record<string, unknown>;
    };
    return obj.status ?? {};
  };

  beforeAll(async () => {
    await extensions.createCustomResourceDefinition({
      body: {
        metadata: { name: crdName },
        spec: {
          group,
          scope: "Namespaced",
          names: { plural: "widgets", singular: "widget", kind: "Widget", listKind: "WidgetList" },
          versions: [
            {
              name: "v1",
              served: true,
              storage: true,
              subresources: { status: {} },
              schema: { openAPIV3Schema: { type: "object", x_kubernetes_preserve_unknown_fields: true } },
            },
          ],
        },
      },
    });
    await waitFor(
      `CRD ${crdName} to be established`,
      async () => {
        const crd = await extensions.readCustomResourceDefinition({ name: crdName });
        return crd.status?.conditions?.some((c) => c.type === "Established" && c.status === "True") ?? false;
      },
      { timeoutMs: 30_000 },
    );
  });

  afterAll(async () => {
    await extensions.deleteCustomResourceDefinition({ name: crdName }).catch(() => undefined);
  });

  it("retries a merge patch that hit a 409 conflict, rebuilding from the latest object", async () => {
    const stale = await createWidget("conflicted");
    await mergePatchStatus(customObjects, ref("conflicted"), { writtenBy: "someone else" });
    const builtFrom: (string | undefined)[] = [];
    await updateStatusWithRetry(
      customObjects,
      ref("conflicted"),
      (latest) => {
        builtFrom.push(latest.metadata?.resourceVersion);
        return { observedResourceVersion: latest.metadata?.resourceVersion };
      },
      { initial: stale },
    );
    expect(builtFrom).toHaveLength(2);
    expect(builtFrom[0]).toBe(stale.metadata?.resourceVersion);
    expect(await readStatus("conflicted")).toEqual({
      writtenBy: "someone else",
      observedResourceVersion: builtFrom[1],
    });
  });

  it("a merge patch replaces the conditions array whole", async () => {
    await createWidget("conditions");
    const ready = {
      type: "Ready",
      status: "True",
      reason: "Scheduled",
      message: "",
      lastTransitionTime: "2030-01-01T00:00:00Z",
    };
    const stalled = { ...ready, type: "Stalled", status: "False", reason: "AsExpected" };
    await mergePatchStatus(customObjects, ref("conditions"), { conditions: [ready, stalled] });
    await mergePatchStatus(customObjects, ref("conditions"), { conditions: [stalled] });
    expect((await readStatus("conditions"))["conditions"]).toEqual([stalled]);
  });

  it("server-side applies the status as field manager cadent", async () => {
    await createWidget("applied");
    const applied = (await applyStatus(
      customObjects,
      { ...ref("applied"), kind: "Widget" },
      { phase: "Active" },
    )) as {
      status?: unknown;
      metadata?: k8s.V1ObjectMeta;
    };
    expect(applied.status).toEqual({ phase: "Active" });
    expect(applied.metadata?.managedFields).toContainEqual(
      expect.objectContaining({ manager: "cadent", operation: "Apply", subresource: "status" }),
    );
  });
});

describe("EventRecorder", () => {
  it("writes core/v1 Events the API server accepts, aggregating repeats into a count", async () => {
    const cm = await core.createNamespacedConfigMap({
      namespace: ns.name,
      body: { metadata: { name: "evented" } },
    });
    const recorder = new EventRecorder({ sink: coreV1EventSink(core), flushIntervalMs: 200 });
    const subject = { ...cm, apiVersion: "v1", kind: "ConfigMap" };
    recorder.event(subject, "Warning", "BrokerUnavailable", "redis://redis:6379: connection refused");
    recorder.event(subject, "Warning", "BrokerUnavailable", "redis://redis:6379: connection refused");
    recorder.event(subject, "Warning", "BrokerUnavailable", "redis://redis:6379: connection refused");
    await recorder.close();
    const events = await core.listNamespacedEvent({
      namespace: ns.name,
      fieldSelector: `involvedObject.name=evented,involvedObject.uid=${cm.metadata?.uid ?? ""}`,
    });
    expect(events.items).toHaveLength(1);
    expect(events.items[0]).toMatchObject({
      type: "Warning",
      reason: "BrokerUnavailable",
      count: 3,
      reportingComponent: "cadent.dev/controller",
      involvedObject: { kind: "ConfigMap", name: "evented" },
    });
  });
});
