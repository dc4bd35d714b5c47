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
  SecurityAuthentication,
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
 * the same limiter and counts the request, so every watch (re)start is limited and counted too,
 * with the code {@link UNSEEN_CODE}: its status code never reaches the KubeConfig.
 *
 * 429: a `429 Too Many Requests` with `Retry-After` pauses the whole limiter for that long (see
 * {@link RequestRateLimiter.pauseFor}); the 429 itself still reaches the caller as an
 * `ApiException` with code 429, whose work queue retries it with backoff. A 429 without
 * `Retry-After` only fails that request.
 *
 * Timeouts: client-node sets none, and undici notices a dead HTTP/2 connection only after minutes
 * of pings, so a request caught on a connection that went half-open would hold its reconcile (or
 * the Lease renewal, and with it leadership) that long. Every request is abandoned
 * `requestTimeoutMs` after it was sent; watches have their own inactivity timeout (informer.ts).
 */

/** A Kubernetes API request as the API server's audit log and metrics name it. */
export interface KubeRequest {
  /** get, list, watch, create, update, patch, delete, deletecollection (see {@link describeRequest}). */
  verb: string;
  /** The resource plural ("tasks", "events", "leases"); "" for discovery and other non-resource paths. */
  resource: string;
  /** "status", "log", …; "" for the resource itself. */
  subresource: string;
}

/** The code of a request that got no response (a network error, an abort). */
export const ERROR_CODE = "<error>";
/** The code of a request whose response the client never sees (watches: see above). */
export const UNSEEN_CODE = "<unseen>";

/** The counting hook; `ControllerMetrics` satisfies it. */
export interface ApiRequestMetrics {
  /** `code` is the HTTP status as text, {@link ERROR_CODE} or {@link UNSEEN_CODE}. */
  countApiRequest(request: KubeRequest, code: string): void;
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
  /**
   * How long a request may wait for its response once sent (headers and body); default
   * {@link DEFAULT_REQUEST_TIMEOUT_MS}. Without a limit, a request sent on a connection that has
   * gone half-open (a NAT or load balancer forgot it) waits for minutes: it is abandoned instead,
   * and the reconcile that made it is retried.
   */
  requestTimeoutMs?: number;
  /**
   * The same for the Lease client; default `requestTimeoutMs`. Keep it well inside the renew
   * deadline, so that a renewal stuck on a dead connection is retried before the deadline passes.
   */
  leaseRequestTimeoutMs?: number;
}

/** The API server's own limit for a request that is not a watch (`--request-timeout`, 1 min). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;

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
  const auth = reusingConnections(kubeConfig);
  const configurationFor = (limiter: RequestRateLimiter, timeoutMs: number) =>
    createConfiguration({
      baseServer: new ServerConfiguration(cluster.server, {}),
      authMethods: { default: auth },
      httpApi: rateLimitedHttpLibrary(transport, limiter, {
        metrics: options.metrics,
        clock,
        timeoutMs,
        onTimeout: (request) => auth.retire(request.getDispatcher()),
      }),
      middleware: [setHeaderMiddleware("User-Agent", options.userAgent ?? "cadent")],
    });
  const limiter = new RequestRateLimiter({ qps: options.qps, burst: options.burst }, clock);
  const timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const shared = configurationFor(limiter, timeoutMs);
  const make = <T extends ApiType>(api: ApiConstructor<T>): T => new api(shared);
  // Lease renewals get a bucket of their own (controller-runtime builds a separate client for
  // leader election for the same reason): a backlog of reconcile requests, or a 429 pause, must
  // not make the leader miss its renew deadline and drop its work.
  const leaseLimiter = new RequestRateLimiter({ qps: options.qps, burst: options.burst }, clock);
  return {
    kubeConfig: rateLimitedView(kubeConfig, limiter, options.metrics),
    customObjects: make(CustomObjectsApi),
    core: make(CoreV1Api),
    batch: make(BatchV1Api),
    coordination: new CoordinationV1Api(
      configurationFor(leaseLimiter, options.leaseRequestTimeoutMs ?? timeoutMs),
    ),
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
  options: {
    metrics?: ApiRequestMetrics;
    clock?: Clock;
    /** Abandon a request that has no complete response this long after it was sent. */
    timeoutMs?: number;
    /** Called when a request was abandoned for `timeoutMs`, before its error is thrown. */
    onTimeout?: (request: RequestContext) => void;
  } = {},
): HttpLibrary {
  const clock = options.clock ?? systemClock;
  return wrapHttpLibrary({
    async send(request: RequestContext): Promise<ResponseContext> {
      await limiter.acquire(request.getSignal());
      // Set after the limiter: the time spent waiting for a token is not the server's.
      const timeout = options.timeoutMs === undefined ? undefined : timeoutSignal(options.timeoutMs);
      if (timeout) {
        const own = request.getSignal();
        request.setSignal(own ? AbortSignal.any([own, timeout]) : timeout);
      }
      const described = describeRequest(request.getHttpMethod(), request.getUrl());
      let response: ResponseContext;
      try {
        response = await inner.send(request).toPromise();
      } catch (err) {
        options.metrics?.countApiRequest(described, ERROR_CODE);
        if (timeout?.aborted && err === timeout.reason) {
          options.onTimeout?.(request);
          throw new Error(
            `no response from the Kubernetes API server to ${request.getHttpMethod()} ${new URL(request.getUrl()).pathname} within ${options.timeoutMs} ms (a half-open connection?); the request was abandoned`,
            { cause: err },
          );
        }
        throw err;
      }
      options.metrics?.countApiRequest(described, String(response.httpStatusCode));
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

/**
 * A signal that aborts `ms` from now. Not AbortSignal.timeout: its timer is out of reach of
 * injected fake timers. The timer is not cleared when the response arrives, because the signal
 * also guards reading the body, later; it is unref'd and does nothing once the request is done.
 */
function timeoutSignal(ms: number): AbortSignal {
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new DOMException(`no response within ${ms} ms`, "TimeoutError")),
    ms,
  );
  timer.unref?.();
  return controller.signal;
}

const NAMESPACE_SUBRESOURCES = new Set(["status", "finalize"]);

/**
 * The verb, resource and subresource of a request, from its method and URL, as the API server's
 * RequestInfoFactory derives them: a GET on a collection is `list` (or `watch` with `watch=true`),
 * on an object `get`; a DELETE on a collection is `deletecollection`. Anything outside `/api` and
 * `/apis` (discovery, `/version`) has no resource and is `get` for GET, else the lower-cased method.
 */
export function describeRequest(method: string, url: string): KubeRequest {
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
  const [resource = "", , subresource = ""] = rest;
  return { verb: verbOf(method, rest.length === 1, watch), resource, subresource };
}

function verbOf(method: string, collection: boolean, watch: boolean): string {
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
 * authenticators and the TLS agent cache are the same objects) but takes a limiter token and
 * counts the request before authenticating it.
 */
function rateLimitedView(
  kubeConfig: KubeConfig,
  limiter: RequestRateLimiter,
  metrics: ApiRequestMetrics | undefined,
): KubeConfig {
  const view = Object.create(kubeConfig) as KubeConfig;
  view.applySecurityAuthentication = async (context: RequestContext): Promise<void> => {
    await limiter.acquire(context.getSignal());
    metrics?.countApiRequest(describeRequest(context.getHttpMethod(), context.getUrl()), UNSEEN_CODE);
    await kubeConfig.applySecurityAuthentication(context);
  };
  return view;
}

/**
 * The KubeConfig's authentication, with one connection pool for every request.
 *
 * client-node 2.0.1 builds a new undici Agent for every request it authenticates
 * (`KubeConfig.applySecurityAuthentication` -> `createDispatcher`, uncached), so no connection is
 * ever reused: each request pays a TCP connect, a TLS handshake and a new SecureContext (which
 * parses the CA), on the client and on the API server. In a CPU profile of the controller creating
 * 100 Jobs a minute, that was a third of its CPU time, and the API server's handshakes came on top.
 * The first Agent made is kept and set on every later request, so requests share its connections
 * (one HTTP/2 connection, as with client-go). Credentials in headers (tokens, exec plugins) are
 * still applied per request; the TLS settings (CA, client certificate) are those of the first.
 *
 * One shared connection is also one point of failure: if it goes half-open (a NAT or load
 * balancer forgets it), every request sent on it hangs, and undici notices only after one or two
 * minutes of unanswered pings. So a request abandoned for lack of a response `retire`s the pool
 * it used (as client-go closes a connection whose health-check ping goes unanswered): the requests
 * still on it fail at once and are retried, and the next request opens a new connection.
 */
function reusingConnections(
  kubeConfig: KubeConfig,
): SecurityAuthentication & { retire(used: ReturnType<RequestContext["getDispatcher"]>): void } {
  let dispatcher: ReturnType<RequestContext["getDispatcher"]>;
  return {
    getName: () => kubeConfig.getName(),
    async applySecurityAuthentication(context: RequestContext): Promise<void> {
      await kubeConfig.applySecurityAuthentication(context);
      const made = context.getDispatcher();
      if (made === undefined) return;
      dispatcher ??= made;
      // The Agent just made has opened no connection yet: dropping it costs nothing.
      if (made !== dispatcher) context.setDispatcher(dispatcher);
    },
    retire(used) {
      if (used === undefined || used !== dispatcher) return; // already retired
      dispatcher = undefined;
      void used.destroy().catch(() => undefined);
    },
  };
}
