import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  ApiException,
  KubeConfig,
  RequestContext,
  ResponseContext,
  SelfDecodingBody,
  setHeaderOptions,
  wrapHttpLibrary,
} from "@kubernetes/client-node";
import type { HttpLibrary } from "@kubernetes/client-node";
import {
  DEFAULT_REQUEST_TIMEOUT_MS,
  createKubeClients,
  loadKubeConfig,
  describeRequest,
  rateLimitedHttpLibrary,
} from "../../../src/kube/client.ts";
import type { KubeRequest } from "../../../src/kube/client.ts";
import { RequestRateLimiter } from "../../../src/kube/rate-limiter.ts";

const T0 = new Date("2030-01-01T00:00:00Z").getTime();
const SERVER = "https://kube.example:6443";

const KUBECONFIG_YAML = `
apiVersion: v1
kind: Config
clusters: [{name: test, cluster: {server: "${SERVER}"}}]
users: [{name: robot, user: {token: s3cr3t-token}}]
contexts: [{name: test, context: {cluster: test, user: robot}}]
current-context: test
`;

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});

afterEach(() => {
  vi.useRealTimers();
});

const elapsed = (): number => Date.now() - T0;

function response(status: number, body: unknown, headers: Record<string, string> = {}): ResponseContext {
  return new ResponseContext(
    status,
    { "content-type": "application/json", ...headers },
    new SelfDecodingBody(Promise.resolve(Buffer.from(JSON.stringify(body)))),
  );
}

/** A transport that records requests and answers with `reply` (or throws what it returns). */
function fakeTransport(
  reply: (request: RequestContext) => ResponseContext | Error = () => response(200, {}),
): {
  httpApi: HttpLibrary;
  requests: RequestContext[];
} {
  const requests: RequestContext[] = [];
  const httpApi = wrapHttpLibrary({
    async send(request) {
      requests.push(request);
      const answer = reply(request);
      if (answer instanceof Error) {
        throw answer;
      }
      return answer;
    },
  });
  return { httpApi, requests };
}

/** Records each counted request as "verb resource[/subresource] code". */
function recordingMetrics(): {
  countApiRequest: (request: KubeRequest, code: string) => void;
  counted: string[];
} {
  const counted: string[] = [];
  return {
    counted,
    countApiRequest: ({ verb, resource, subresource }, code) =>
      counted.push(`${verb} ${[resource, subresource].filter(Boolean).join("/")} ${code}`),
  };
}

function kubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromString(KUBECONFIG_YAML);
  return kc;
}

/** With a CA, for which client-node makes an undici Agent (a connection pool) per request. */
function kubeConfigWithCa(): KubeConfig {
  const kc = new KubeConfig();
  const ca = Buffer.from("a CA certificate").toString("base64");
  kc.loadFromString(
    KUBECONFIG_YAML.replace(
      `{server: "${SERVER}"}`,
      `{server: "${SERVER}", certificate-authority-data: ${ca}}`,
    ),
  );
  return kc;
}

describe("describeRequest", () => {
  it.each([
    ["GET", "/api/v1/namespaces", "list", "namespaces", ""],
    ["GET", "/api/v1/namespaces/team-a", "get", "namespaces", ""],
    ["PUT", "/api/v1/namespaces/team-a/status", "update", "namespaces", "status"],
    ["GET", "/api/v1/namespaces/team-a/pods", "list", "pods", ""],
    ["GET", "/api/v1/namespaces/team-a/pods/web-0", "get", "pods", ""],
    ["GET", "/api/v1/namespaces/team-a/pods/web-0/log", "get", "pods", "log"],
    ["GET", "/api/v1/pods?watch=true&resourceVersion=5", "watch", "pods", ""],
    ["GET", "/api/v1/watch/namespaces/team-a/pods", "watch", "pods", ""],
    ["POST", "/api/v1/namespaces/team-a/events", "create", "events", ""],
    ["GET", "/apis/cadent.dev/v1alpha1/periodictasks", "list", "periodictasks", ""],
    ["GET", "/apis/cadent.dev/v1alpha1/namespaces/team-a/periodictasks/nightly", "get", "periodictasks", ""],
    ["POST", "/apis/cadent.dev/v1alpha1/namespaces/team-a/tasks", "create", "tasks", ""],
    [
      "PUT",
      "/apis/coordination.k8s.io/v1/namespaces/default/leases/cadent-controller",
      "update",
      "leases",
      "",
    ],
    [
      "PATCH",
      "/apis/cadent.dev/v1alpha1/namespaces/team-a/tasks/nightly-1/status",
      "patch",
      "tasks",
      "status",
    ],
    ["DELETE", "/apis/batch/v1/namespaces/team-a/jobs/nightly-1", "delete", "jobs", ""],
    ["DELETE", "/apis/batch/v1/namespaces/team-a/jobs", "deletecollection", "jobs", ""],
    ["GET", "/apis/cadent.dev/v1alpha1", "get", "", ""],
    ["GET", "/version", "get", "", ""],
    ["GET", "/k8s/clusters/c-m-1/api/v1/namespaces/team-a/pods", "list", "pods", ""],
    ["OPTIONS", "/api/v1/pods", "options", "pods", ""],
  ])("%s %s is %s of %s, subresource '%s'", (method, path, verb, resource, subresource) => {
    expect(describeRequest(method, `${SERVER}${path}`)).toEqual({ verb, resource, subresource });
  });
});

describe("rateLimitedHttpLibrary", () => {
  it("waits for the limiter before sending", async () => {
    const { httpApi, requests } = fakeTransport();
    const library = rateLimitedHttpLibrary(httpApi, new RequestRateLimiter({ qps: 10, burst: 1 }));
    const sentAt: number[] = [];
    for (let i = 0; i < 3; i++) {
      void library
        .send(new RequestContext(`${SERVER}/api/v1/namespaces`, "GET"))
        .toPromise()
        .then(() => sentAt.push(elapsed()));
    }
    await vi.advanceTimersByTimeAsync(1_000);
    expect(requests).toHaveLength(3);
    expect(sentAt).toEqual([0, 100, 200]);
  });

  it("counts each request by verb, resource and status code, and a request without a response as <error>", async () => {
    const metrics = recordingMetrics();
    const { httpApi } = fakeTransport((req) =>
      req.getHttpMethod() === "DELETE" ? new Error("socket hang up") : response(404, {}),
    );
    const library = rateLimitedHttpLibrary(httpApi, new RequestRateLimiter({ qps: 100, burst: 10 }), {
      metrics,
    });
    await library.send(new RequestContext(`${SERVER}/api/v1/namespaces/team-a`, "GET")).toPromise();
    await expect(
      library.send(new RequestContext(`${SERVER}/apis/batch/v1/namespaces/a/jobs/j`, "DELETE")).toPromise(),
    ).rejects.toThrow("socket hang up");
    expect(metrics.counted).toEqual(["get namespaces 404", "delete jobs <error>"]);
  });

  it("pauses every request for the Retry-After of a 429, and passes the 429 on", async () => {
    const limiter = new RequestRateLimiter({ qps: 100, burst: 10 });
    const { httpApi } = fakeTransport((req) =>
      req.getUrl().endsWith("/throttled") ? response(429, {}, { "retry-after": "2" }) : response(200, {}),
    );
    const library = rateLimitedHttpLibrary(httpApi, limiter);
    const throttled = await library.send(new RequestContext(`${SERVER}/api/v1/throttled`, "GET")).toPromise();
    expect(throttled.httpStatusCode).toBe(429);
    expect(limiter.pausedForMs()).toBe(2_000);

    let sentAt: number | undefined;
    void library
      .send(new RequestContext(`${SERVER}/api/v1/namespaces`, "GET"))
      .toPromise()
      .then(() => (sentAt = elapsed()));
    await vi.advanceTimersByTimeAsync(5_000);
    expect(sentAt).toBe(2_010);
  });

  it("does not pause for a 429 without Retry-After", async () => {
    const limiter = new RequestRateLimiter({ qps: 100, burst: 10 });
    const { httpApi } = fakeTransport(() => response(429, {}));
    await rateLimitedHttpLibrary(httpApi, limiter)
      .send(new RequestContext(`${SERVER}/api/v1/namespaces`, "GET"))
      .toPromise();
    expect(limiter.pausedForMs()).toBe(0);
  });
});

describe("createKubeClients", () => {
  it("sends generated-client requests to the cluster, authenticated, through the limiter and the counter", async () => {
    const metrics = recordingMetrics();
    const { httpApi, requests } = fakeTransport(() =>
      response(200, { apiVersion: "v1", kind: "Namespace", metadata: { name: "team-a" } }),
    );
    const clients = createKubeClients(kubeConfig(), { qps: 50, burst: 100, metrics, httpApi });

    const namespace = await clients.core.readNamespace({ name: "team-a" });

    expect(namespace.metadata?.name).toBe("team-a");
    expect(requests[0]?.getUrl()).toBe(`${SERVER}/api/v1/namespaces/team-a`);
    expect(requests[0]?.getHeaders()).toMatchObject({
      Authorization: "Bearer s3cr3t-token",
      "User-Agent": "cadent",
    });
    expect(metrics.counted).toEqual(["get namespaces 200"]);
  });

  it("sends every request through one connection pool, where client-node would make a new one per request", async () => {
    const { httpApi, requests } = fakeTransport(() => response(200, { items: [], metadata: {} }));
    const clients = createKubeClients(kubeConfigWithCa(), { qps: 50, burst: 100, httpApi });

    await clients.core.listNamespace();
    await clients.batch.listNamespacedJob({ namespace: "team-a" });
    await clients.coordination.listNamespacedLease({ namespace: "default" });

    const [first, ...others] = requests.map((r) => r.getDispatcher());
    expect(first).toBeDefined();
    expect(others).toHaveLength(2);
    for (const dispatcher of others) expect(dispatcher).toBe(first);
  });

  it("limits and counts every client, including calls that bring their own middleware", async () => {
    const metrics = recordingMetrics();
    const { httpApi } = fakeTransport(() => response(200, { items: [], metadata: {} }));
    const clients = createKubeClients(kubeConfig(), { qps: 50, burst: 100, metrics, httpApi });

    await clients.customObjects.listClusterCustomObject({
      group: "cadent.dev",
      version: "v1alpha1",
      plural: "periodictasks",
    });
    await clients.batch.listNamespacedJob({ namespace: "team-a" }, setHeaderOptions("X-Test", "1"));
    // A per-call middleware list without a merge strategy replaces the configured middleware.
    await clients.coordination.listNamespacedLease({ namespace: "default" }, { middleware: [] });
    await clients.events.listNamespacedEvent({ namespace: "team-a" });

    expect(metrics.counted).toEqual([
      "list periodictasks 200",
      "list jobs 200",
      "list leases 200",
      "list events 200",
    ]);
  });

  it("keeps Lease requests out of the shared bucket, so reconcile traffic cannot delay a renewal", async () => {
    const { httpApi } = fakeTransport(() => response(200, { items: [], metadata: {} }));
    const clients = createKubeClients(kubeConfig(), { qps: 1, burst: 1, httpApi });
    const sentAt: Record<string, number> = {};
    void clients.core.listNamespace().then(() => (sentAt.first = elapsed()));
    void clients.core.listNamespace().then(() => (sentAt.second = elapsed()));
    void clients.coordination
      .readNamespacedLease({ namespace: "default", name: "cadent-controller" })
      .then(() => (sentAt.lease = elapsed()));
    await vi.advanceTimersByTimeAsync(2_000);
    expect(sentAt).toEqual({ first: 0, second: 1_000, lease: 0 });
  });

  it("turns an API error into an ApiException carrying the status code", async () => {
    const { httpApi } = fakeTransport(() =>
      response(409, { kind: "Status", code: 409, reason: "AlreadyExists", message: "exists" }),
    );
    const clients = createKubeClients(kubeConfig(), { qps: 50, burst: 100, httpApi });
    const failure = clients.core.readNamespace({ name: "team-a" });
    await expect(failure).rejects.toBeInstanceOf(ApiException);
    await expect(failure).rejects.toMatchObject({ code: 409 });
  });

  it("gives a KubeConfig for watches that reads the same cluster and takes a token before authenticating", async () => {
    const clients = createKubeClients(kubeConfig(), { qps: 1, burst: 1, httpApi: fakeTransport().httpApi });
    expect(clients.kubeConfig.getCurrentCluster()?.server).toBe(SERVER);

    const authenticatedAt: number[] = [];
    const contexts = [0, 1].map(() => new RequestContext(`${SERVER}/api/v1/pods?watch=true`, "GET"));
    for (const context of contexts) {
      void clients.kubeConfig
        .applySecurityAuthentication(context)
        .then(() => authenticatedAt.push(elapsed()));
    }
    await vi.advanceTimersByTimeAsync(2_000);
    expect(authenticatedAt).toEqual([0, 1_000]);
    expect(contexts[1]?.getHeaders()).toMatchObject({ Authorization: "Bearer s3cr3t-token" });
  });

  it("counts each watch the watch KubeConfig authenticates once, with the code <unseen>", async () => {
    const metrics = recordingMetrics();
    const clients = createKubeClients(kubeConfig(), {
      qps: 50,
      burst: 100,
      metrics,
      httpApi: fakeTransport().httpApi,
    });
    await clients.kubeConfig.applySecurityAuthentication(
      new RequestContext(`${SERVER}/apis/cadent.dev/v1alpha1/namespaces/team-a/tasks?watch=true`, "GET"),
    );
    expect(metrics.counted).toEqual(["watch tasks <unseen>"]);
  });

  it("shares the limiter between the API clients and the watch KubeConfig", async () => {
    const { httpApi } = fakeTransport(() => response(200, { items: [], metadata: {} }));
    const clients = createKubeClients(kubeConfig(), { qps: 1, burst: 1, httpApi });
    await clients.core.listNamespace();
    let watchAt: number | undefined;
    void clients.kubeConfig
      .applySecurityAuthentication(new RequestContext(`${SERVER}/api/v1/pods?watch=true`, "GET"))
      .then(() => (watchAt = elapsed()));
    await vi.advanceTimersByTimeAsync(2_000);
    expect(watchAt).toBe(1_000);
  });
});

/** A transport whose requests are never answered, as on a half-open connection: they end only when aborted. */
function silentTransport(): HttpLibrary {
  return wrapHttpLibrary({
    send(request) {
      return new Promise((_resolve, reject) => {
        const signal = request.getSignal();
        signal?.addEventListener("abort", () => reject(signal.reason as Error), { once: true });
      });
    },
  });
}

/** "abandoned@<ms>" when `call` fails, "answered" when it succeeds. */
const outcome = (call: Promise<unknown>): Promise<string> =>
  call.then(
    () => "answered",
    () => `abandoned@${elapsed()}`,
  );

describe("request timeouts", () => {
  it("abandons a request that has no response after the timeout, says which one, and counts it as <error>", async () => {
    const metrics = recordingMetrics();
    const library = rateLimitedHttpLibrary(
      silentTransport(),
      new RequestRateLimiter({ qps: 100, burst: 10 }),
      {
        metrics,
        timeoutMs: 5_000,
      },
    );
    const path = "/apis/cadent.dev/v1alpha1/namespaces/team-a/tasks/nightly-1/status";
    const failure = library
      .send(new RequestContext(`${SERVER}${path}`, "PATCH"))
      .toPromise()
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    await vi.advanceTimersByTimeAsync(4_999);
    expect(metrics.counted).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(await failure).toEqual(
      new Error(
        `no response from the Kubernetes API server to PATCH ${path} within 5000 ms (a half-open connection?); the request was abandoned`,
      ),
    );
    expect(metrics.counted).toEqual(["patch tasks/status <error>"]);
  });

  it("starts the clock when the request is sent, not while it waits for the limiter", async () => {
    const limiter = new RequestRateLimiter({ qps: 1, burst: 1 });
    const library = rateLimitedHttpLibrary(silentTransport(), limiter, { timeoutMs: 5_000 });
    const first = outcome(library.send(new RequestContext(`${SERVER}/api/v1/namespaces`, "GET")).toPromise());
    const second = outcome(
      library.send(new RequestContext(`${SERVER}/api/v1/namespaces`, "GET")).toPromise(),
    );
    await vi.advanceTimersByTimeAsync(10_000);
    expect([await first, await second]).toEqual(["abandoned@5000", "abandoned@6000"]);
  });

  it("a caller's own abort still ends the request, with the caller's reason", async () => {
    const library = rateLimitedHttpLibrary(
      silentTransport(),
      new RequestRateLimiter({ qps: 100, burst: 10 }),
      {
        timeoutMs: 5_000,
      },
    );
    const request = new RequestContext(`${SERVER}/api/v1/namespaces`, "GET");
    const caller = new AbortController();
    request.setSignal(caller.signal);
    const failure = library
      .send(request)
      .toPromise()
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    await vi.advanceTimersByTimeAsync(1_000);
    caller.abort(new Error("leadership lost"));
    expect(await failure).toEqual(new Error("leadership lost"));
  });

  it("Lease requests have a timeout of their own, so a stuck renewal fails inside the renew deadline", async () => {
    const clients = createKubeClients(kubeConfig(), {
      qps: 50,
      burst: 100,
      httpApi: silentTransport(),
      requestTimeoutMs: 60_000,
      leaseRequestTimeoutMs: 4_000,
    });
    const lease = outcome(clients.coordination.readNamespacedLease({ namespace: "default", name: "cadent" }));
    const namespace = outcome(clients.core.readNamespace({ name: "team-a" }));
    await vi.advanceTimersByTimeAsync(60_000);
    expect({ lease: await lease, namespace: await namespace }).toEqual({
      lease: "abandoned@4000",
      namespace: "abandoned@60000",
    });
  });

  it("a request abandoned for lack of a response retires the shared pool: the next request gets a new one", async () => {
    const requests: RequestContext[] = [];
    const silent = silentTransport();
    const httpApi = wrapHttpLibrary({
      send(request) {
        requests.push(request);
        return requests.length === 1 ? silent.send(request).toPromise() : Promise.resolve(response(200, {}));
      },
    });
    const clients = createKubeClients(kubeConfigWithCa(), {
      qps: 50,
      burst: 100,
      httpApi,
      requestTimeoutMs: 5_000,
    });
    const stuck = outcome(clients.core.readNamespace({ name: "team-a" }));
    await clients.core.readNamespace({ name: "team-b" }); // answered, on the same pool
    await vi.advanceTimersByTimeAsync(5_000);
    expect(await stuck).toBe("abandoned@5000");
    await clients.core.readNamespace({ name: "team-c" });

    const [pool, sameMeanwhile, next] = requests.map((r) => r.getDispatcher());
    expect(sameMeanwhile).toBe(pool);
    expect(next).toBeDefined();
    expect(next).not.toBe(pool);
    // Destroyed, so whatever else was stuck on it fails now rather than at its own timeout.
    expect(pool).toHaveProperty("destroyed", true);
  });

  it("every request has a timeout by default: the API server's own minute", async () => {
    const clients = createKubeClients(kubeConfig(), { qps: 50, burst: 100, httpApi: silentTransport() });
    const namespace = outcome(clients.core.readNamespace({ name: "team-a" }));
    const lease = outcome(clients.coordination.readNamespacedLease({ namespace: "default", name: "cadent" }));
    await vi.advanceTimersByTimeAsync(DEFAULT_REQUEST_TIMEOUT_MS);
    expect([await namespace, await lease]).toEqual([
      `abandoned@${DEFAULT_REQUEST_TIMEOUT_MS}`,
      `abandoned@${DEFAULT_REQUEST_TIMEOUT_MS}`,
    ]);
  });
});

describe("loadKubeConfig", () => {
  let dir = "";
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "cadent-kubeconfig-"));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it("loads the file it is given", () => {
    const file = join(dir, "config");
    writeFileSync(file, KUBECONFIG_YAML);
    expect(loadKubeConfig(file).getCurrentCluster()?.server).toBe(SERVER);
  });

  it("merges several files joined with the path delimiter, the first one's context winning", () => {
    const first = join(dir, "first");
    const second = join(dir, "second");
    writeFileSync(first, KUBECONFIG_YAML);
    writeFileSync(
      second,
      KUBECONFIG_YAML.replaceAll("test", "other")
        .replaceAll("robot", "other-robot")
        .replace(SERVER, "https://other.example:6443"),
    );
    const kc = loadKubeConfig(`${first}${delimiter}${second}`);
    expect(kc.getCurrentCluster()?.server).toBe(SERVER);
    expect(kc.getClusters().map((c) => c.name)).toEqual(["test", "other"]);
  });

  it("fails naming the file when it has no current cluster", () => {
    const file = join(dir, "config");
    writeFileSync(file, "apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts: []\n");
    expect(() => loadKubeConfig(file)).toThrow(`no Kubernetes cluster configured in ${file}`);
  });
});
