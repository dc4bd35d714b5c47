/**
 * Chaos: the API server misbehaving under a steady load of both executors (product.md §5: "the
 * controller survives watch expiry (410), API server restarts, … 409 conflicts … without crashing
 * and without losing work"; issue #8). The API server restarted, alone and with etcd; watches
 * expired by an etcd compaction; connections gone half-open; a second writer making the
 * controller's conditional status writes conflict; the API server refusing writes with 429.
 * Every scenario ends with the audit of ./support/load.ts, and checks from the controller's debug
 * log ("informer restarting", with its cause) and its `cadent_kube_requests_total` that it did
 * what the fault calls for: re-watched, relisted, noticed the silence, met the 409s, held back.
 *
 * The scenarios that restart the API server run one at a time; the other three share the world
 * and run together, each in a namespace of its own with a controller of its own.
 *
 * The world's API server admits a small number of mutating requests at a time
 * (`--max-mutating-requests-inflight`). Members of system:masters are never refused for it, so
 * every client here but the 429 scenario's controller and its slot holder, which run as
 * ServiceAccounts, is unaffected.
 */
import { connect, type TLSSocket } from "node:tls";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ControllerProcess } from "../support/cadent.ts";
import { createUser } from "../support/chart.ts";
import { errorCode, k8s } from "../support/kube.ts";
import { waitFor } from "../support/ports.ts";
import { Load, TERMINAL } from "./support/load.ts";
import { startProxy } from "./support/proxy.ts";
import { controllerLogs, leaseHolder, Started, startController, startWorker } from "./support/processes.ts";
import { kubeconfigVia, scale, startWorld, type World } from "./support/world.ts";

/** The controller's informers, named by the resource they list and watch. */
const RESOURCES = ["periodictasks", "tasks", "jobs"] as const;
type Resource = (typeof RESOURCES)[number];

/**
 * The world's limit on mutating requests in flight. Members of system:masters take a free slot
 * too (they are only never refused), so there are enough slots that the admin traffic of the
 * scenarios running alongside (a second writer, KCM, kwok) does not fill them by itself.
 */
const MUTATING_SLOTS = 16;

/**
 * An API server restart takes longer than the default renew deadline (10 s) on a busy machine,
 * and a leader that cannot renew exits by design (controller-failover.test.ts covers that), with
 * nothing here to restart it. These scenarios are about informers and writes living through the
 * outage, so the lease outlasts it.
 */
const OUTLAST_OUTAGES = ["--lease-duration", "120s", "--renew-deadline", "90s", "--retry-period", "2s"];

const EVERYTHING_IN_NAMESPACE: k8s.V1PolicyRule[] = [{ apiGroups: ["*"], resources: ["*"], verbs: ["*"] }];

describe("the API server failing under load", () => {
  let world: World;
  const started = new Started();
  const track = started.track.bind(started);

  beforeAll(async () => {
    world = await startWorld("api-server", {
      apiServerArgs: [`--max-mutating-requests-inflight=${MUTATING_SLOTS}`],
    });
  });
  afterAll(async () => {
    await started.stopAll();
    await world?.stop();
  });

  /** A load of both executors with a cadent worker and one controller (the admin's unless told). */
  async function loadWithController(
    prefix: string,
    options: { extraArgs?: readonly string[]; kubeconfigPath?: (load: Load) => Promise<string> } = {},
  ): Promise<{ load: Load; controller: ControllerProcess }> {
    const load = await Load.start(world, prefix, {
      redis: 3,
      jobs: 2,
      durationSeconds: scale(12, 60),
      leadSeconds: 6,
    });
    track(await startWorker(world, load));
    const controller = track(
      await startController(world, load, prefix, {
        extraArgs: options.extraArgs,
        kubeconfigPath: await options.kubeconfigPath?.(load),
      }),
    );
    return { load, controller };
  }

  it.each([
    {
      fault: "the API server restarted",
      prefix: "apiserver-restart",
      outage: (w: World) => w.controlPlane.restartApiServer(),
    },
    {
      fault: `etcd and the API server down together for ${scale(4, 15)} s`,
      prefix: "etcd-down",
      outage: (w: World) => w.controlPlane.restartEtcdAndApiServer(scale(4_000, 15_000)),
    },
  ])("$fault mid-load: every informer watches again, nothing is lost or run twice", async (scenario) => {
    const { load, controller } = await loadWithController(scenario.prefix, { extraArgs: OUTLAST_OUTAGES });
    const outages = scale(1, 3);
    const outageMs: number[] = [];
    await untilLoadTime(load, 3_000);
    const before = await kubeRequests(controller);
    const faultAt = Date.now();
    for (let i = 0; i < outages; i++) {
      const from = Date.now();
      await scenario.outage(world);
      outageMs.push(Date.now() - from);
      if (i < outages - 1) await sleep(3_000 + Math.random() * 5_000);
    }
    await load.settle();
    const after = await kubeRequests(controller);
    const restarts = informerRestarts(controller, faultAt);
    const counts = await load.expectNothingLost(`${scenario.fault} mid-load`, {
      outages,
      outageMs: outageMs.join(" "),
      informerRestarts: summarize(restarts),
      ...requestSummary(before, after),
    });
    expect(counts.missed, "nothing missed: the outage is far shorter than startingDeadlineSeconds").toBe(0);
    expect(controller.process.child.exitCode, "the controller kept running").toBeNull();
    for (const resource of RESOURCES) {
      expect(
        restarts.filter((r) => r.resource === resource),
        `the ${resource} informer restarted after its watch broke`,
      ).not.toEqual([]);
      expect(
        requestsBetween(before, after, { verb: "watch", resource }),
        `the ${resource} informer watched again`,
      ).toBeGreaterThan(0);
    }
  });

  it("watch expiry (410 Gone) after etcd is compacted past the controller's resourceVersions: every informer relists", async () => {
    const { load, controller } = await loadWithController("expired", { extraArgs: OUTLAST_OUTAGES });
    await untilLoadTime(load, 3_000); // the watches are open and resourceVersions have gone by
    const before = await kubeRequests(controller);
    const faultAt = Date.now();
    const revision = await compactEtcd(world.controlPlane.etcdUrl);
    // The restart breaks every watch, and the new API server's watch cache starts at a revision
    // after the compaction: a watch from any older resourceVersion, from the cache or from etcd,
    // can only get 410.
    await world.controlPlane.restartApiServer();
    await load.settle();
    const after = await kubeRequests(controller);
    const restarts = informerRestarts(controller, faultAt);
    const counts = await load.expectNothingLost("watch expiry (410) after etcd compaction", {
      compactedRevision: revision,
      informerRestarts: summarize(restarts),
      ...requestSummary(before, after),
    });
    expect(counts.missed, "nothing missed").toBe(0);
    for (const resource of RESOURCES) {
      const gone = restarts.filter((r) => r.resource === resource && r.cause === "gone");
      expect(gone, `the ${resource} informer saw 410 Gone`).not.toEqual([]);
      expect(
        requestsBetween(before, after, { verb: "list", resource }),
        `the ${resource} informer relisted after 410`,
      ).toBeGreaterThan(0);
    }
  });

  it.concurrent(
    "a half-open connection to the API server (silent, never closed): the controller notices, reconnects and keeps its lease",
    async () => {
      const target = new URL(world.controlPlane.server);
      const proxy = track(await startProxy({ host: target.hostname, port: Number(target.port) }));
      // Default lease timings: the API server still answers on new connections, so a healthy
      // controller keeps its lease through this, whatever requests the freeze caught mid-flight.
      const { load, controller } = await loadWithController("half-open", {
        kubeconfigPath: async () => kubeconfigVia(world, proxy.port),
      });
      // Just after a fire time, when runs are being created and written.
      await untilLoadTime(load, 6_100);
      const before = await kubeRequests(controller);
      const frozenAt = Date.now();
      const frozen = proxy.freezeOpenConnections();
      await waitFor(
        "every informer to give up its silent watch",
        async () => {
          const restarted = new Set(informerRestarts(controller, frozenAt).map((r) => r.resource));
          return RESOURCES.every((r) => restarted.has(r));
        },
        { timeoutMs: 180_000, intervalMs: 1_000 },
      );
      const noticedWithinS = Math.ceil((Date.now() - frozenAt) / 1000);
      await load.settle();
      const after = await kubeRequests(controller);
      const restarts = informerRestarts(controller, frozenAt);
      const counts = await load.expectNothingLost(
        "half-open connections to the API server, frozen mid-load",
        {
          frozenConnections: frozen,
          noticedWithinS,
          abandonedRequests: requestsBetween(
            before,
            after,
            (s) => s.verb !== "watch" && s.code === "<error>",
          ),
          informerRestarts: summarize(restarts),
          ...requestSummary(before, after),
        },
      );
      expect(frozen, "connections frozen: at least the three watches").toBeGreaterThanOrEqual(
        RESOURCES.length,
      );
      expect(counts.missed, "nothing missed").toBe(0);
      expect(controller.process.child.exitCode, "the controller kept running").toBeNull();
      expect(await leaseHolder(world, load), "and kept its lease").toBe(controller.identity);
      for (const resource of RESOURCES)
        expect(
          requestsBetween(before, after, { verb: "watch", resource }),
          `the ${resource} informer watched again, on a new connection`,
        ).toBeGreaterThan(0);
    },
  );

  it.concurrent(
    "409 Conflict: a second writer keeps changing every object under the controller's conditional status writes",
    async () => {
      const { load, controller } = await loadWithController("conflicts");
      const before = await kubeRequests(controller);
      const poker = startPoker(load);
      await load.untilEnd();
      const pokes = await poker.stop();
      await load.settle();
      const after = await kubeRequests(controller);
      const conflicts = (resource: Resource) =>
        requestsBetween(before, after, { verb: "patch", resource, subresource: "status", code: "409" });
      const counts = await load.expectNothingLost("409 conflicts from a second writer on every object", {
        pokes,
        conflicts409PeriodicTasks: conflicts("periodictasks"),
        conflicts409Tasks: conflicts("tasks"),
      });
      expect(pokes, "the second writer wrote").toBeGreaterThan(0);
      expect(
        conflicts("periodictasks") + conflicts("tasks"),
        "status writes refused with 409 Conflict",
      ).toBeGreaterThan(0);
      expect(counts.missed, "nothing missed").toBe(0);
    },
  );

  it.concurrent(
    "429 Too Many Requests: with every write slot taken, the controller holds back within its limits, then catches up",
    async () => {
      const qps = 10;
      const burst = 20;
      const { load, controller } = await loadWithController("throttled", {
        extraArgs: [...OUTLAST_OUTAGES, "--kube-api-qps", String(qps), "--kube-api-burst", String(burst)],
        // An ordinary user: system:masters is never refused for the in-flight limit.
        kubeconfigPath: async (l) =>
          (await createUser(world.kc, l.namespace, "cadent", EVERYTHING_IN_NAMESPACE, world.workDir)).path,
      });
      const hog = await createUser(world.kc, load.namespace, "hog", EVERYTHING_IN_NAMESPACE, world.workDir);
      await untilLoadTime(load, 2_000);
      const slots = await holdWriteSlots(world, hog.kc, load.namespace, MUTATING_SLOTS);
      const before = await kubeRequests(controller);
      const from = Date.now();
      await sleep(scale(10_000, 60_000));
      const after = await kubeRequests(controller);
      const windowS = (Date.now() - from) / 1000;
      await slots.release();
      await load.settle();
      // The Lease has a limiter of its own; everything else shares one.
      const shared = (s: KubeRequestSample) => s.resource !== "leases";
      const made = requestsBetween(before, after, shared);
      const refused = requestsBetween(before, after, (s) => shared(s) && s.code === "429");
      const limiterBound = burst + qps * windowS;
      const counts = await load.expectNothingLost("429 from an API server with every write slot taken", {
        throttledS: Math.round(windowS),
        requests: made,
        refused429: refused,
        limiterBound: Math.floor(limiterBound),
        slotHolders: slots.holders,
      });
      expect(refused, "requests refused with 429").toBeGreaterThan(0);
      expect(made, `requests in ${windowS} s: at most burst + qps × window`).toBeLessThanOrEqual(
        limiterBound,
      );
      expect(counts.missed, "nothing missed").toBe(0);
    },
  );
});

/** Sleeps until `offsetMs` after the load's first scheduled time. */
async function untilLoadTime(load: Load, offsetMs: number): Promise<void> {
  await sleep(Math.max(0, load.startTime.getTime() + offsetMs - Date.now()));
}

/** One series of `cadent_kube_requests_total`. */
interface KubeRequestSample {
  verb: string;
  resource: string;
  subresource: string;
  code: string;
  value: number;
}
type SampleLabels = Omit<KubeRequestSample, "value">;

/** The controller's `cadent_kube_requests_total`, from its /metrics. */
async function kubeRequests(controller: ControllerProcess): Promise<KubeRequestSample[]> {
  const { status, body } = await controller.get(controller.metricsPort, "/metrics");
  if (status !== 200) throw new Error(`controller ${controller.identity}: /metrics answered ${status}`);
  const samples: KubeRequestSample[] = [];
  for (const line of body.split("\n")) {
    const match = /^cadent_kube_requests_total\{([^}]*)\} (\S+)$/.exec(line);
    if (!match) continue;
    const labels = new Map([...(match[1] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    samples.push({
      verb: labels.get("verb") ?? "",
      resource: labels.get("resource") ?? "",
      subresource: labels.get("subresource") ?? "",
      code: labels.get("code") ?? "",
      value: Number(match[2]),
    });
  }
  if (samples.length === 0)
    throw new Error(`controller ${controller.identity}: /metrics has no cadent_kube_requests_total`);
  return samples;
}

/** Requests counted between two reads of `cadent_kube_requests_total`, in the series matching `filter`. */
function requestsBetween(
  before: readonly KubeRequestSample[],
  after: readonly KubeRequestSample[],
  filter: Partial<SampleLabels> | ((s: KubeRequestSample) => boolean),
): number {
  const matches =
    typeof filter === "function"
      ? filter
      : (s: KubeRequestSample) =>
          Object.entries(filter).every(([label, value]) => s[label as keyof SampleLabels] === value);
  const key = (s: KubeRequestSample) => `${s.verb} ${s.resource} ${s.subresource} ${s.code}`;
  const earlier = new Map(before.map((s) => [key(s), s.value]));
  return after.filter(matches).reduce((n, s) => n + s.value - (earlier.get(key(s)) ?? 0), 0);
}

/**
 * Lists and watches per informer between two reads, and status writes refused with 409 (the
 * controller meets some without any second writer: its cache lags its own writes), for the report.
 */
function requestSummary(
  before: readonly KubeRequestSample[],
  after: readonly KubeRequestSample[],
): Record<string, string | number> {
  const per = (verb: string) =>
    RESOURCES.map((resource) => `${resource}:${requestsBetween(before, after, { verb, resource })}`).join(
      " ",
    );
  return {
    lists: per("list"),
    watches: per("watch"),
    statusConflicts409: requestsBetween(before, after, { verb: "patch", subresource: "status", code: "409" }),
  };
}

interface InformerRestart {
  resource: Resource | undefined;
  cause: string;
}

/** The controller's "informer restarting" log lines since `since` (ms). */
function informerRestarts(controller: ControllerProcess, since: number): InformerRestart[] {
  return controllerLogs(controller)
    .filter((line) => line.time >= since && line.msg === "informer restarting")
    .map((line) => {
      // An informer is named "<plural>.<group>/<namespace>".
      const plural = String(line["informer"]).split(".")[0];
      return { resource: RESOURCES.find((r) => r === plural), cause: String(line["cause"]) };
    });
}

/** "periodictasks:gone×1 tasks:error×2 …" */
function summarize(restarts: readonly InformerRestart[]): string {
  const counts = new Map<string, number>();
  for (const { resource, cause } of restarts) {
    const key = `${resource ?? "other"}:${cause}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([key, n]) => `${key}×${n}`).join(" ") || "none";
}

/**
 * Compacts etcd physically at its current revision, through etcd's gRPC gateway: every
 * resourceVersion a client has seen so far is gone. Returns the revision.
 */
async function compactEtcd(etcdUrl: string): Promise<number> {
  const post = async (path: string, body: object): Promise<unknown> => {
    const res = await fetch(`${etcdUrl}${path}`, { method: "POST", body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`etcd ${path} answered ${res.status}: ${await res.text()}`);
    return res.json();
  };
  // Any read carries the store's current revision in its header (int64s are strings in JSON).
  const range = (await post("/v3/kv/range", { key: Buffer.from("/registry").toString("base64") })) as {
    header?: { revision?: string };
  };
  const revision = Number(range.header?.revision);
  if (!Number.isSafeInteger(revision) || revision <= 0)
    throw new Error(`etcd's range answer has no revision: ${JSON.stringify(range)}`);
  await post("/v3/kv/compaction", { revision: String(revision), physical: true });
  return revision;
}

/**
 * A second writer that keeps touching every PeriodicTask and unfinished Task of the load: a merge
 * patch of an annotation of its own on the object itself. It never touches status or spec, so it
 * cannot make the controller's counts wrong, but every patch moves the resourceVersion, so a
 * status write the controller prepared from the version before is refused with 409 Conflict.
 */
function startPoker(load: Load): { stop(): Promise<number> } {
  let stopped = false;
  let pokes = 0;
  const poke = async (plural: "periodictasks" | "tasks", name: string): Promise<void> => {
    try {
      await load.cadent.patch(plural, name, {
        metadata: { annotations: { "chaos.cadent.dev/poke": String(pokes) } },
      });
      pokes++;
    } catch (err) {
      if (errorCode(err) !== 404) throw err; // a Task deleted by its history limit meanwhile
    }
  };
  const running = (async () => {
    while (!stopped) {
      const open = (await load.cadent.list("tasks")).filter((t) => !TERMINAL.has(t.status?.phase ?? ""));
      const targets = [
        ...load.names.map((name) => ["periodictasks", name] as const),
        ...open.map((t) => ["tasks", t.metadata.name ?? ""] as const),
      ];
      // A few at a time: enough to conflict, too few to fill the API server's write slots.
      for (let i = 0; i < targets.length; i += 4)
        await Promise.all(targets.slice(i, i + 4).map(([plural, name]) => poke(plural, name)));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await running;
      return pokes;
    },
  };
}

/**
 * Takes every one of the API server's `slots` mutating in-flight slots, as clients with slow
 * uploads do: each holder sends the headers of a PATCH but not its body, so the API server admits
 * the request (takes a slot) and waits for the rest. A holder answered at once was refused (429:
 * the slots were full at that moment) and is replaced, until all are held and a write by an
 * ordinary user is refused. `release()` sends the bodies.
 *
 * Deterministic where a flood of requests would not be: a flood holds slots only part of the
 * time, and on two shared cores it would slow everything else down too.
 */
async function holdWriteSlots(
  world: World,
  kc: k8s.KubeConfig,
  namespace: string,
  slots: number,
): Promise<{ holders: number; release(): Promise<void> }> {
  await world.kc
    .makeApiClient(k8s.CoreV1Api)
    .createNamespacedConfigMap({ namespace, body: { metadata: { name: "slot" } } });
  const server = new URL(world.controlPlane.server);
  const body = JSON.stringify({ metadata: { annotations: { "chaos.cadent.dev/slot": "held" } } });
  const head = [
    `PATCH /api/v1/namespaces/${namespace}/configmaps/slot HTTP/1.1`,
    `Host: ${server.host}`,
    `Authorization: Bearer ${kc.getCurrentUser()?.token ?? ""}`,
    "Content-Type: application/merge-patch+json",
    `Content-Length: ${Buffer.byteLength(body)}`,
    "",
    "",
  ].join("\r\n");
  const holders: { socket: TLSSocket; answered: boolean }[] = [];
  const held = () => holders.filter((h) => !h.answered);
  const hold = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const holder = {
        answered: false,
        socket: connect(
          {
            host: server.hostname,
            port: Number(server.port),
            ca: world.controlPlane.ca,
            ALPNProtocols: ["http/1.1"],
          },
          () => {
            holder.socket.write(head);
            resolve();
          },
        ),
      };
      holder.socket.once("data", () => {
        holder.answered = true;
        holder.socket.destroy();
      });
      holder.socket.on("error", reject);
      holders.push(holder);
    });
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const refused = async (): Promise<boolean> => {
    try {
      await core.createNamespacedConfigMap({
        namespace,
        body: { metadata: { generateName: "probe-" } },
        dryRun: "All",
      });
      return false;
    } catch (err) {
      if (errorCode(err) === 429) return true;
      throw err;
    }
  };
  await waitFor(
    "every write slot to be held",
    async () => {
      await Promise.all(Array.from({ length: slots - held().length }, hold));
      await sleep(300); // for the API server to admit or refuse them
      return held().length >= slots && (await refused());
    },
    { timeoutMs: 30_000, intervalMs: 100 },
  );
  return {
    holders: held().length,
    async release() {
      for (const { socket } of held()) socket.end(body);
      await sleep(500);
      for (const { socket } of holders) socket.destroy();
    },
  };
}
