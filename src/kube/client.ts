import { delimiter } from "node:path";
import {
  BatchV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  EventsV1Api,
  IsomorphicFetchHttpLibrary,
  KubeConfig,
  ServerConfiguration,
  createConfiguration,
  setHeaderMiddleware,
  wrapHttpLibrary,
} from "@kubernetes/client-node";
import type {
  ApiConstructor,
  ApiType,
  HttpLibrary,
  RequestContext,
  ResponseContext,
} from "@kubernetes/client-node";
import { systemClock } from "../runtime/clock.ts";
import type { Clock } from "../runtime/clock.ts";
import { RequestRateLimiter, retryAfterMs } from "./rate-limiter.ts";

/**
 * Kubernetes API clients behind a client-side rate limit (one bucket shared by all of them, except
 * the Lease client, which has its own) that count every request.
 *
 * Where the limit sits, and why there: client-node 2.0.x builds each call as request factory
 * (auth) → middleware `pre` → `httpApi.send` → middleware `post` → response processor, and takes
 * all four from a `Configuration` (`createConfiguration`). The limiter and the request counter
 * wrap `httpApi`, the one step that sees a request and its response (or its network error)
 * together. A middleware would not do: its `post` cannot tell which request a response belongs to
 * (calls run concurrently), it never sees requests that failed without a response, and a per-call
 * `{ middleware: [...] }` option without `middlewareMergeStrategy` *replaces* the configured
 * middleware, which would silently bypass the limit. (client-node's generated code also reverses
 * the shared middleware array in place on every call, so middleware must not rely on its order.)
 *
 * Watches do not go through the generated clients: client-node's `Watch` fetches on its own, after
 * calling `applySecurityAuthentication` on the KubeConfig it was given. {@link KubeClients.kubeConfig}
 * is a view of the loaded KubeConfig whose `applySecurityAuthentication` first takes a token from
 * the same limiter, so every watch (re)start is limited too. Watches are not counted in
 * `cadent_api_requests_total`: their status code never reaches the KubeConfig.
 *
 * 429: a `429 Too Many Requests` with `Retry-After` pauses the whole limiter for that long (see
 * {@link RequestRateLimiter.pauseFor}); the 429 itself still reaches the caller as an
 * `ApiException` with code 429, whose work queue retries it with backoff. A 429 without
 * `Retry-After` only fails that request.
 */

/** The counting hook; `ControllerMetrics` satisfies it. */
export interface ApiRequestMetrics {
  countApiRequest(verb: string, code: string): void;
}

export interface KubeClientOptions {
  /** Sustained requests per second (`--kube-api-qps`). */
  qps: number;
  /** Requests allowed at once before `qps` applies (`--kube-api-burst`). */
  burst: number;
  metrics?: ApiRequestMetrics;
  /** Default "cadent". */
  userAgent?: string;
  clock?: Clock;
  /** The transport under the limiter; default client-node's own (undici fetch). Tests pass a fake. */
  httpApi?: HttpLibrary;
}

export interface KubeClients {
  /**
   * Pass this one to `kubeListWatchSource`/`Watch` (and to anything else that builds its own
   * requests from a KubeConfig): a read-only view of the loaded config whose requests take a
   * token from the shared limiter. Do not modify it.
   */
  readonly kubeConfig: KubeConfig;
  readonly customObjects: CustomObjectsApi;
  readonly core: CoreV1Api;
  readonly batch: BatchV1Api;
  /** For leader election only: its requests have a limiter of their own (same qps and burst). */
  readonly coordination: CoordinationV1Api;
  readonly events: EventsV1Api;
  /** The limiter shared by every client but `coordination`. */
  readonly limiter: RequestRateLimiter;
}

/**
 * Loads the KubeConfig: from `path` (a file, or several joined with the platform's path
 * delimiter, merged as kubectl does) when given, else client-node's default search: $KUBECONFIG,
 * then ~/.kube/config, then the in-cluster service account.
 */
export function loadKubeConfig(path: string | undefined): KubeConfig {
  const kubeConfig = new KubeConfig();
  const files = (path ?? "").split(delimiter).filter((file) => file !== "");
  const [first, ...rest] = files;
  if (first === undefined) {
    kubeConfig.loadFromDefault();
  } else {
    kubeConfig.loadFromFile(first);
    for (const file of rest) {
      const more = new KubeConfig();
      more.loadFromFile(file);
      // kubectl's rule: the first file that sets current-context wins (client-node's default is the last).
      kubeConfig.mergeConfig(more, Boolean(kubeConfig.getCurrentContext()));
    }
  }
  if (!kubeConfig.getCurrentCluster()) {
    throw new Error(
      `no Kubernetes cluster configured${first === undefined ? " (looked at $KUBECONFIG, ~/.kube/config and the in-cluster service account)" : ` in ${path}`}: set --kubeconfig, or run in a Pod with a service account`,
    );
  }
  return kubeConfig;
}

/** Builds the API clients the controller uses, all behind one limiter. */
export function createKubeClients(kubeConfig: KubeConfig, options: KubeClientOptions): KubeClients {
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster) {
    throw new Error("the KubeConfig has no current cluster: set a current-context or pass --kubeconfig");
  }
  const clock = options.clock ?? systemClock;
  const transport = options.httpApi ?? new IsomorphicFetchHttpLibrary();
  const configurationFor = (limiter: RequestRateLimiter) =>
    createConfiguration({
      baseServer: new ServerConfiguration(cluster.server, {}),
      authMethods: { default: kubeConfig },
      httpApi: rateLimitedHttpLibrary(transport, limiter, { metrics: options.metrics, clock }),
      middleware: [setHeaderMiddleware("User-Agent", options.userAgent ?? "cadent")],
    });
  const limiter = new RequestRateLimiter({ qps: options.qps, burst: options.burst }, clock);
  const shared = configurationFor(limiter);
  const make = <T extends ApiType>(api: ApiConstructor<T>): T => new api(shared);
  // Lease renewals get a bucket of their own (controller-runtime builds a separate client for
  // leader election for the same reason): a backlog of reconcile requests, or a 429 pause, must
  // not make the leader miss its renew deadline and drop its work.
  const leaseLimiter = new RequestRateLimiter({ qps: options.qps, burst: options.burst }, clock);
  return {
    kubeConfig: rateLimitedView(kubeConfig, limiter),
    customObjects: make(CustomObjectsApi),
    core: make(CoreV1Api),
    batch: make(BatchV1Api),
    coordination: new CoordinationV1Api(configurationFor(leaseLimiter)),
    events: make(EventsV1Api),
    limiter,
  };
}

/**
 * An `HttpLibrary` that waits for the limiter before sending, counts the outcome, and pauses the
 * limiter on `429` + `Retry-After`.
 */
export function rateLimitedHttpLibrary(
  inner: HttpLibrary,
  limiter: RequestRateLimiter,
  options: { metrics?: ApiRequestMetrics; clock?: Clock } = {},
): HttpLibrary {
  const clock = options.clock ?? systemClock;
  return wrapHttpLibrary({
    async send(request: RequestContext): Promise<ResponseContext> {
      await limiter.acquire(request.getSignal());
      const verb = requestVerb(request.getHttpMethod(), request.getUrl());
      let response: ResponseContext;
      try {
        response = await inner.send(request).toPromise();
      } catch (err) {
        options.metrics?.countApiRequest(verb, "<error>");
        throw err;
      }
      options.metrics?.countApiRequest(verb, String(response.httpStatusCode));
      if (response.httpStatusCode === 429) {
        const pauseMs = retryAfterMs(response.headers["retry-after"], clock.now());
        if (pauseMs !== undefined) {
          limiter.pauseFor(pauseMs);
        }
      }
      return response;
    },
  });
}

const NAMESPACE_SUBRESOURCES = new Set(["status", "finalize"]);

/**
 * The Kubernetes verb of a request, from its method and URL, as the API server's
 * RequestInfoFactory derives it: a GET on a collection is `list` (or `watch` with `watch=true`),
 * on an object `get`; a DELETE on a collection is `deletecollection`. Anything outside `/api` and
 * `/apis` (discovery, `/version`) is `get` for GET, else the lower-cased method.
 */
export function requestVerb(method: string, url: string): string {
  const parsed = new URL(url, "http://localhost");
  const segments = parsed.pathname.split("/").filter((s) => s !== "");
  // A cluster URL may have a path prefix (a proxy such as Rancher's /k8s/clusters/<id>).
  const root = segments.findIndex((s) => s === "api" || s === "apis");
  let rest = root === -1 ? [] : segments.slice(root + (segments[root] === "api" ? 2 : 3));
  let watch = parsed.searchParams.get("watch") === "true" || parsed.searchParams.get("watch") === "1";
  if (rest[0] === "watch") {
    watch = true;
    rest = rest.slice(1);
  }
  // .../namespaces/<ns>/<resource>... is namespaced; .../namespaces/<ns>/status is the Namespace's own.
  if (rest[0] === "namespaces" && rest.length >= 3 && !NAMESPACE_SUBRESOURCES.has(rest[2] ?? "")) {
    rest = rest.slice(2);
  }
  const collection = rest.length === 1;
  switch (method.toUpperCase()) {
    case "GET":
      if (watch) return "watch";
      return collection ? "list" : "get";
    case "POST":
      return "create";
    case "PUT":
      return "update";
    case "PATCH":
      return "patch";
    case "DELETE":
      return collection ? "deletecollection" : "delete";
    default:
      return method.toLowerCase();
  }
}

/**
 * A KubeConfig that reads everything from `kubeConfig` (prototype delegation, so clusters, users,
 * authenticators and the TLS agent cache are the same objects) but takes a limiter token before
 * authenticating a request.
 */
function rateLimitedView(kubeConfig: KubeConfig, limiter: RequestRateLimiter): KubeConfig {
  const view = Object.create(kubeConfig) as KubeConfig;
  view.applySecurityAuthentication = async (context: RequestContext): Promise<void> => {
    await limiter.acquire(context.getSignal());
    await kubeConfig.applySecurityAuthentication(context);
  };
  return view;
}
