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
  createKubeClients,
  loadKubeConfig,
  rateLimitedHttpLibrary,
  requestVerb,
} from "../../../src/kube/client.ts";
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

function recordingMetrics(): { countApiRequest: (verb: string, code: string) => void; counted: string[] } {
  const counted: string[] = [];
  return { counted, countApiRequest: (verb, code) => counted.push(`${verb} ${code}`) };
}

function kubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromString(KUBECONFIG_YAML);
  return kc;
}

describe("requestVerb", () => {
  it.each([
    ["GET", "/api/v1/namespaces", "list"],
    ["GET", "/api/v1/namespaces/team-a", "get"],
    ["PUT", "/api/v1/namespaces/team-a/status", "update"],
    ["GET", "/api/v1/namespaces/team-a/pods", "list"],
    ["GET", "/api/v1/namespaces/team-a/pods/web-0", "get"],
    ["GET", "/api/v1/namespaces/team-a/pods/web-0/log", "get"],
    ["GET", "/api/v1/pods?watch=true&resourceVersion=5", "watch"],
    ["GET", "/api/v1/watch/namespaces/team-a/pods", "watch"],
    ["GET", "/apis/cadent.dev/v1alpha1/periodictasks", "list"],
    ["GET", "/apis/cadent.dev/v1alpha1/namespaces/team-a/periodictasks/nightly", "get"],
    ["POST", "/apis/cadent.dev/v1alpha1/namespaces/team-a/tasks", "create"],
    ["PUT", "/apis/coordination.k8s.io/v1/namespaces/default/leases/cadent-controller", "update"],
    ["PATCH", "/apis/cadent.dev/v1alpha1/namespaces/team-a/tasks/nightly-1/status", "patch"],
    ["DELETE", "/apis/batch/v1/namespaces/team-a/jobs/nightly-1", "delete"],
    ["DELETE", "/apis/batch/v1/namespaces/team-a/jobs", "deletecollection"],
    ["GET", "/apis/cadent.dev/v1alpha1", "get"],
    ["GET", "/version", "get"],
    ["GET", "/k8s/clusters/c-m-1/api/v1/namespaces/team-a/pods", "list"],
    ["OPTIONS", "/api/v1/pods", "options"],
  ])("%s %s is %s", (method, path, verb) => {
    expect(requestVerb(method, `${SERVER}${path}`)).toBe(verb);
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

  it("counts each request by verb and status code, and a request without a response as <error>", async () => {
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
    expect(metrics.counted).toEqual(["get 404", "delete <error>"]);
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
    expect(metrics.counted).toEqual(["get 200"]);
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

    expect(metrics.counted).toEqual(["list 200", "list 200", "list 200", "list 200"]);
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
