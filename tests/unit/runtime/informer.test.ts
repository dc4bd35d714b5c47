import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { KubeConfig, V1Job } from "@kubernetes/client-node";
import type { KubernetesListObject, V1ConfigMap } from "@kubernetes/client-node";
import { Informer, decodeBuiltInKind, kubeListWatchSource } from "../../../src/runtime/informer.ts";
import type { InformerOptions, ListPage } from "../../../src/runtime/informer.ts";
import { FakeSource, apiError } from "./fakes.ts";

const T0 = new Date("2030-01-01T00:00:00Z").getTime();

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});

afterEach(() => {
  vi.useRealTimers();
});

function configMap(
  name: string,
  resourceVersion: string,
  extra: { namespace?: string; labels?: Record<string, string>; owner?: string } = {},
): V1ConfigMap {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name,
      namespace: extra.namespace ?? "ns",
      resourceVersion,
      labels: extra.labels,
      ownerReferences: extra.owner
        ? [{ apiVersion: "cadent.dev/v1alpha1", kind: "Task", name: "owner", uid: extra.owner }]
        : undefined,
    },
  };
}

/** An informer over a fake source, with no jitter, recording every callback as a line. */
function setup(options: Partial<InformerOptions<V1ConfigMap>> = {}) {
  const source = new FakeSource<V1ConfigMap>();
  const informer = new Informer<V1ConfigMap>({
    name: "configmaps",
    source,
    random: () => 0,
    backoff: { initialMs: 1000, maxMs: 30_000, factor: 2, jitter: 1 },
    relistPeriodMs: 0,
    ...options,
  });
  const seen: string[] = [];
  informer.on("add", (obj) => seen.push(`add ${obj.metadata?.name}@${obj.metadata?.resourceVersion}`));
  informer.on("update", (oldObj, newObj) =>
    seen.push(
      `update ${newObj.metadata?.name}@${oldObj.metadata?.resourceVersion}->${newObj.metadata?.resourceVersion}`,
    ),
  );
  informer.on("delete", (obj, { finalStateUnknown }) =>
    seen.push(`delete ${obj.metadata?.name}${finalStateUnknown ? " (final state unknown)" : ""}`),
  );
  return { source, informer, seen };
}

describe("Informer", () => {
  it("is not synced while the first list fails, though start() returned; synced after a retry succeeds", async () => {
    const { source, informer, seen } = setup();
    source.items = [configMap("a", "1")];
    source.listFailure = apiError(503, "ServiceUnavailable");
    informer.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(informer.hasSynced()).toBe(false);
    expect(informer.status().lastError).toMatch(/503/);
    source.listFailure = undefined;
    await vi.advanceTimersByTimeAsync(1000);
    expect(informer.hasSynced()).toBe(true);
    expect(await informer.waitForSync()).toBe(true);
    expect(seen).toEqual(["add a@1"]);
    expect(source.lists).toBe(2);
    informer.stop();
  });

  it("delivers the watch's changes as callbacks and keeps the cache current", async () => {
    const { source, informer, seen } = setup();
    source.items = [configMap("a", "1")];
    informer.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(source.current.resourceVersion).toBe("100");
    source.current.emit({ type: "ADDED", object: configMap("b", "101") });
    source.current.emit({ type: "MODIFIED", object: configMap("a", "102") });
    source.current.emit({ type: "MODIFIED", object: configMap("a", "102") });
    source.current.emit({ type: "DELETED", object: configMap("b", "103") });
    expect(seen).toEqual(["add a@1", "add b@101", "update a@1->102", "delete b"]);
    expect(informer.store.keys()).toEqual(["ns/a"]);
    expect(informer.store.getByName("ns", "a")?.metadata?.resourceVersion).toBe("102");
    expect(informer.status().lastActivityAt).toBe(T0);
    informer.stop();
  });

  it("restarts once after two errors in a row (single flight), re-watching from the last resourceVersion", async () => {
    const { source, informer } = setup();
    informer.start();
    await vi.advanceTimersByTimeAsync(0);
    source.current.emit({ type: "MODIFIED", object: configMap("a", "150") });
    const first = source.current;
    first.emit({ type: "ERROR", status: { code: 500, reason: "InternalError" } });
    first.end(new Error("socket hang up"));
    await vi.advanceTimersByTimeAsync(60_000);
    expect(source.watches).toHaveLength(2);
    expect(source.lists).toBe(1);
    expect(first.signal.aborted).toBe(true);
    expect(source.current.resourceVersion).toBe("150");
    expect(informer.status().restarts).toBe(1);
    informer.stop();
  });

  it("a restart requested while another is pending (the relist timer during a backoff) does not race it", async () => {
    const { source, informer } = setup({ relistPeriodMs: 10_000, inactivityTimeoutMs: 3_600_000 });
    informer.start();
    await vi.advanceTimersByTimeAsync(9_500);
    source.current.end(new Error("connection reset"));
    await vi.advanceTimersByTimeAsync(5_000);
    // One attempt after the backoff, and it relists because the relist fell due meanwhile.
    expect(source.lists).toBe(2);
    expect(source.watches).toHaveLength(2);
    expect(source.open).toHaveLength(1);
    informer.stop();
  });

  it("ignores events from a watch it has abandoned", async () => {
    const { source, informer, seen } = setup();
    informer.start();
    await vi.advanceTimersByTimeAsync(0);
    const first = source.current;
    first.end(new Error("reset"));
    first.emit({ type: "ADDED", object: configMap("late", "101") });
    expect(seen).toEqual([]);
    informer.stop();
  });

  describe("410 Gone relists, and objects deleted meanwhile get a delete with final state unknown", () => {
    it.each([
      {
        name: "as a watch ERROR event",
        gone: (end: (e: unknown) => void, emit: (s: { code: number }) => void) => emit({ code: 410 }),
      },
      {
        name: "as the watch request's HTTP status",
        gone: (end: (e: unknown) => void) => end(Object.assign(new Error("Gone"), { statusCode: 410 })),
      },
    ])("$name", async ({ gone }) => {
      const { source, informer, seen } = setup();
      source.items = [configMap("a", "1"), configMap("b", "2")];
      informer.start();
      await vi.advanceTimersByTimeAsync(0);
      source.current.emit({ type: "BOOKMARK", resourceVersion: "120" });
      source.items = [configMap("a", "7")];
      source.resourceVersion = "200";
      const watch = source.current;
      gone(watch.end, (status) => watch.emit({ type: "ERROR", status }));
      await vi.advanceTimersByTimeAsync(0);
      expect(source.lists).toBe(2);
      expect(seen).toEqual(["add a@1", "add b@2", "update a@1->7", "delete b (final state unknown)"]);
      expect(source.current.resourceVersion).toBe("200");
      informer.stop();
    });
  });

  it("restarts a silent watch after the inactivity threshold, but not one that gets bookmarks", async () => {
    const { source, informer } = setup({ inactivityTimeoutMs: 120_000 });
    informer.start();
    await vi.advanceTimersByTimeAsync(0);
    for (let minute = 1; minute <= 5; minute++) {
      await vi.advanceTimersByTimeAsync(60_000);
      source.current.emit({ type: "BOOKMARK", resourceVersion: `${100 + minute}` });
    }
    expect(source.watches).toHaveLength(1);
    const silent = source.current;
    await vi.advanceTimersByTimeAsync(119_999);
    expect(silent.signal.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(silent.signal.aborted).toBe(true);
    await vi.advanceTimersByTimeAsync(1000);
    expect(source.watches).toHaveLength(2);
    expect(source.current.resourceVersion).toBe("105");
    informer.stop();
  });

  it("restarts a list that hangs after the inactivity threshold", async () => {
    const { source, informer } = setup({ inactivityTimeoutMs: 120_000 });
    source.listHangs = true;
    informer.start();
    await vi.advanceTimersByTimeAsync(120_000);
    source.listHangs = false;
    await vi.advanceTimersByTimeAsync(1000);
    expect(source.lists).toBe(2);
    expect(informer.hasSynced()).toBe(true);
    informer.stop();
  });

  it("backs failures off exponentially and resets the backoff once a watch delivers an event", async () => {
    const { source, informer } = setup();
    informer.start();
    await vi.advanceTimersByTimeAsync(0);
    const openedAt: number[] = [];
    for (let i = 0; i < 3; i++) {
      source.current.end(new Error("connection refused"));
      const before = source.watches.length;
      while (source.watches.length === before) {
        await vi.advanceTimersByTimeAsync(100);
      }
      openedAt.push(Date.now());
    }
    source.current.emit({ type: "BOOKMARK", resourceVersion: "101" });
    source.current.end(new Error("connection refused"));
    await vi.advanceTimersByTimeAsync(999);
    expect(source.watches).toHaveLength(4);
    await vi.advanceTimersByTimeAsync(1);
    expect(source.watches).toHaveLength(5);
    expect(openedAt.map((t, i) => t - (i === 0 ? T0 : (openedAt[i - 1] ?? 0)))).toEqual([1000, 2000, 4000]);
    informer.stop();
  });

  it.each([
    {
      name: "a client-side watch timeout re-watches at once",
      end: (e: (err: unknown) => void) => e(new DOMException("timed out", "TimeoutError")),
      lived: 0,
    },
    {
      name: "a clean close of a watch that lived re-watches at once",
      end: (e: (err: unknown) => void) => e(null),
      lived: 5000,
    },
  ])("$name", async ({ end, lived }) => {
    const { source, informer } = setup();
    informer.start();
    await vi.advanceTimersByTimeAsync(lived);
    end(source.current.end);
    await vi.advanceTimersByTimeAsync(0);
    expect(source.watches).toHaveLength(2);
    expect(source.lists).toBe(1);
    informer.stop();
  });

  it("backs off a watch that closes cleanly at once without any event", async () => {
    const { source, informer } = setup();
    informer.start();
    await vi.advanceTimersByTimeAsync(0);
    source.current.end(null);
    await vi.advanceTimersByTimeAsync(999);
    expect(source.watches).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(source.watches).toHaveLength(2);
    informer.stop();
  });

  it("relists every relistPeriod and reports objects that vanished unseen", async () => {
    const { source, informer, seen } = setup({ relistPeriodMs: 30 * 60_000, inactivityTimeoutMs: 3_600_000 });
    source.items = [configMap("a", "1")];
    informer.start();
    await vi.advanceTimersByTimeAsync(0);
    source.items = [];
    await vi.advanceTimersByTimeAsync(30 * 60_000 - 1);
    expect(source.lists).toBe(1);
    await vi.advanceTimersByTimeAsync(1000);
    expect(source.lists).toBe(2);
    expect(seen).toEqual(["add a@1", "delete a (final state unknown)"]);
    expect(source.open).toHaveLength(1);
    informer.stop();
  });

  it("re-delivers every cached object as an update every resyncPeriod", async () => {
    const { source, informer, seen } = setup({ resyncPeriodMs: 60_000 });
    source.items = [configMap("a", "1")];
    informer.start();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(seen).toEqual(["add a@1", "update a@1->1"]);
    expect(source.lists).toBe(1);
    informer.stop();
  });

  it("keeps delivering to the other callbacks when one throws", async () => {
    const { source, informer, seen } = setup();
    informer.on("add", () => {
      throw new Error("callbacks must only enqueue");
    });
    source.items = [configMap("a", "1")];
    informer.start();
    await vi.advanceTimersByTimeAsync(0);
    source.current.emit({ type: "ADDED", object: configMap("b", "101") });
    expect(seen).toEqual(["add a@1", "add b@101"]);
    informer.stop();
  });

  it("stop() closes the watch, cancels restarts and wakes waitForSync with false", async () => {
    const { source, informer } = setup();
    source.listFailure = new Error("down");
    informer.start();
    const synced = informer.waitForSync();
    await vi.advanceTimersByTimeAsync(0);
    informer.stop();
    await vi.advanceTimersByTimeAsync(600_000);
    expect(await synced).toBe(false);
    expect(source.lists).toBe(1);
  });

  it("answers reads from the cache: by key, namespace, labels, owner and a custom index", async () => {
    const { source, informer } = setup({
      indexers: { byApp: (cm) => (cm.metadata?.labels?.["app"] ? [cm.metadata.labels["app"]] : []) },
    });
    source.items = [
      configMap("a", "1", { labels: { app: "x", tier: "web" }, owner: "uid-1" }),
      configMap("b", "2", { labels: { app: "x" } }),
      configMap("c", "3", { namespace: "other", labels: { app: "y" }, owner: "uid-1" }),
    ];
    informer.start();
    await vi.advanceTimersByTimeAsync(0);
    const names = (list: V1ConfigMap[]): string[] => list.map((cm) => cm.metadata?.name ?? "").sort();
    expect(informer.store.get("ns/a")?.metadata?.name).toBe("a");
    expect(informer.store.get("a")).toBeUndefined();
    expect(names(informer.store.list("other"))).toEqual(["c"]);
    expect(names(informer.store.listByLabels({ app: "x", tier: "web" }))).toEqual(["a"]);
    expect(names(informer.store.byOwner("uid-1"))).toEqual(["a", "c"]);
    expect(names(informer.store.byIndex("byApp", "x"))).toEqual(["a", "b"]);
    source.current.emit({ type: "MODIFIED", object: configMap("a", "4", { labels: { app: "y" } }) });
    expect(names(informer.store.byIndex("byApp", "y"))).toEqual(["a", "c"]);
    expect(names(informer.store.byOwner("uid-1"))).toEqual(["c"]);
    expect(() => informer.store.byIndex("missing", "x")).toThrow(/no index named "missing"/);
    informer.stop();
  });
});

describe("decodeBuiltInKind", () => {
  it("turns a raw watch object of a built-in kind into client-node's model, with Dates as in lists", () => {
    const raw = {
      apiVersion: "batch/v1",
      kind: "Job",
      metadata: { name: "nightly-29000000", namespace: "ns", creationTimestamp: "2030-01-01T00:00:00Z" },
      status: { startTime: "2030-01-01T00:00:01Z" },
    };
    const job = decodeBuiltInKind<V1Job>(raw);
    expect(job).toBeInstanceOf(V1Job);
    expect(job.metadata?.creationTimestamp).toEqual(new Date("2030-01-01T00:00:00Z"));
    expect(job.status?.startTime).toEqual(new Date("2030-01-01T00:00:01Z"));
  });
});

describe("kubeListWatchSource lists", () => {
  /** A list call serving `items` in pages of `page.limit`, continue tokens as `field` names them. */
  function pagedList(items: V1ConfigMap[], field: "continue" | "_continue") {
    const asked: ListPage[] = [];
    const list = async (page: ListPage): Promise<KubernetesListObject<V1ConfigMap>> => {
      asked.push(page);
      const from = Number(page.continue ?? 0);
      const to = from + page.limit;
      const more = to < items.length ? { [field]: String(to) } : {};
      return { items: items.slice(from, to), metadata: { resourceVersion: "42", ...more } };
    };
    return { asked, list };
  }

  it.each([
    { form: "raw JSON (custom resources)", field: "continue" as const },
    { form: "client-node's V1ListMeta (built-in kinds)", field: "_continue" as const },
  ])("page by page, passing each continue token as $form names it", async ({ field }) => {
    const items = ["a", "b", "c", "d", "e"].map((name) => configMap(name, "1"));
    const { asked, list } = pagedList(items, field);
    const source = kubeListWatchSource(new KubeConfig(), { path: "/api/v1/configmaps", pageSize: 2, list });
    const result = await source.list(new AbortController().signal);
    expect(asked).toEqual([
      { limit: 2, continue: undefined },
      { limit: 2, continue: "2" },
      { limit: 2, continue: "4" },
    ]);
    expect(result.items.map((cm) => cm.metadata?.name)).toEqual(["a", "b", "c", "d", "e"]);
    expect(result.resourceVersion).toBe("42");
  });

  it("in pages of 500 by default, like client-go's reflector", async () => {
    const { asked, list } = pagedList([configMap("a", "1")], "continue");
    await kubeListWatchSource(new KubeConfig(), { path: "/api/v1/configmaps", list }).list(
      new AbortController().signal,
    );
    expect(asked).toEqual([{ limit: 500, continue: undefined }]);
  });

  it("hands the informer every item as the transform leaves it", async () => {
    const items = [configMap("a", "1"), configMap("b", "1")].map((cm) => ({ ...cm, data: { big: "x" } }));
    const { list } = pagedList(items, "continue");
    const source = kubeListWatchSource<V1ConfigMap>(new KubeConfig(), {
      path: "/api/v1/configmaps",
      pageSize: 1,
      list,
      transform: (cm) => ({ ...cm, data: undefined }),
    });
    const result = await source.list(new AbortController().signal);
    expect(result.items.map((cm) => [cm.metadata?.name, cm.data])).toEqual([
      ["a", undefined],
      ["b", undefined],
    ]);
  });
});
