// In-memory stand-ins for the runtime's injectable dependencies. Unit tests only: integration
// tests talk to a real API server.
import { ApiException } from "@kubernetes/client-node";
import type { KubernetesObject, V1Lease } from "@kubernetes/client-node";
import type { Clock } from "../../../src/runtime/clock.ts";
import type { ListResult, ListWatchSource, WatchEvent } from "../../../src/runtime/informer.ts";
import type { LeaseClient } from "../../../src/runtime/leader-election.ts";

export interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (err: unknown) => void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** An ApiException shaped as client-node 2.0.x raises it: the body is the Status as JSON text. */
export function apiError(code: number, reason: string, message = reason): ApiException<string> {
  return new ApiException(
    code,
    "Unknown API Status Code!",
    JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", code, reason, message }),
    {},
  );
}

/**
 * The system clock (faked by vi.useFakeTimers) plus a monotonic offset, to play a process
 * stall: the monotonic clock jumps while no timer runs.
 */
export class StallableClock implements Clock {
  #stalled = 0;
  now(): number {
    return Date.now() + this.#stalled;
  }
  monotonic(): number {
    return performance.now() + this.#stalled;
  }
  stall(ms: number): void {
    this.#stalled += ms;
  }
}

export interface FakeWatch<T> {
  resourceVersion: string;
  signal: AbortSignal;
  emit(event: WatchEvent<T>): void;
  end(err: unknown): void;
}

/** A list/watch source driven by the test: it answers lists from `items` and exposes each watch. */
export class FakeSource<T extends KubernetesObject> implements ListWatchSource<T> {
  items: T[] = [];
  resourceVersion = "100";
  lists = 0;
  readonly watches: FakeWatch<T>[] = [];
  /** Set to make the next lists fail (or hang); cleared by the test. */
  listFailure: unknown;
  listHangs = false;

  async list(): Promise<ListResult<T>> {
    this.lists += 1;
    if (this.listHangs) {
      return new Promise<never>(() => {});
    }
    if (this.listFailure !== undefined) {
      throw this.listFailure;
    }
    return { items: [...this.items], resourceVersion: this.resourceVersion };
  }

  async watch(
    resourceVersion: string,
    signal: AbortSignal,
    onEvent: (event: WatchEvent<T>) => void,
    onDone: (err: unknown) => void,
  ): Promise<void> {
    this.watches.push({ resourceVersion, signal, emit: onEvent, end: onDone });
  }

  /** The most recent watch; fails the test if there is none. */
  get current(): FakeWatch<T> {
    const watch = this.watches.at(-1);
    if (!watch) {
      throw new Error("no watch was opened");
    }
    return watch;
  }

  /** Watches the informer has not aborted. */
  get open(): FakeWatch<T>[] {
    return this.watches.filter((w) => !w.signal.aborted);
  }
}

/** An in-memory Lease store with the API server's optimistic concurrency. */
export class FakeLeaseServer {
  readonly #leases = new Map<string, V1Lease>();
  #resourceVersion = 1;
  readonly writes: { client: string; holder: string | undefined }[] = [];

  /** What is stored, as the API server would return it. */
  lease(namespace: string, name: string): V1Lease | undefined {
    const lease = this.#leases.get(`${namespace}/${name}`);
    return lease ? clone(lease) : undefined;
  }

  delete(namespace: string, name: string): void {
    this.#leases.delete(`${namespace}/${name}`);
  }

  client(clientName: string): FakeLeaseClient {
    return new FakeLeaseClient(this, clientName);
  }

  get(namespace: string, name: string): V1Lease {
    const lease = this.#leases.get(`${namespace}/${name}`);
    if (!lease) {
      throw apiError(404, "NotFound", `leases.coordination.k8s.io "${name}" not found`);
    }
    return clone(lease);
  }

  create(clientName: string, namespace: string, lease: V1Lease): V1Lease {
    const name = lease.metadata?.name ?? "";
    if (this.#leases.has(`${namespace}/${name}`)) {
      throw apiError(409, "AlreadyExists", `leases.coordination.k8s.io "${name}" already exists`);
    }
    return this.#store(clientName, namespace, name, lease);
  }

  replace(clientName: string, namespace: string, name: string, lease: V1Lease): V1Lease {
    const current = this.#leases.get(`${namespace}/${name}`);
    if (!current) {
      throw apiError(404, "NotFound", `leases.coordination.k8s.io "${name}" not found`);
    }
    if (lease.metadata?.resourceVersion !== current.metadata?.resourceVersion) {
      throw apiError(
        409,
        "Conflict",
        "the object has been modified; please apply your changes to the latest version",
      );
    }
    return this.#store(clientName, namespace, name, lease);
  }

  #store(clientName: string, namespace: string, name: string, lease: V1Lease): V1Lease {
    this.#resourceVersion += 1;
    // JSON round trip: V1MicroTime becomes the string the API server would send back.
    const stored = clone(lease);
    stored.metadata = { ...stored.metadata, name, namespace, resourceVersion: String(this.#resourceVersion) };
    this.#leases.set(`${namespace}/${name}`, stored);
    this.writes.push({ client: clientName, holder: stored.spec?.holderIdentity });
    return clone(stored);
  }
}

/** One candidate's connection to the fake server; it can be cut (`down`) or made to hang. */
export class FakeLeaseClient implements LeaseClient {
  readonly #server: FakeLeaseServer;
  readonly #name: string;
  down = false;
  hang = false;
  requests = 0;
  /** Runs once between this client's read and its next replace, to play a concurrent writer. */
  beforeNextReplace: (() => void) | undefined;

  constructor(server: FakeLeaseServer, name: string) {
    this.#server = server;
    this.#name = name;
  }

  async get(namespace: string, name: string): Promise<V1Lease> {
    this.#connect();
    return this.#server.get(namespace, name);
  }

  async create(namespace: string, lease: V1Lease): Promise<V1Lease> {
    this.#connect();
    return this.#server.create(this.#name, namespace, lease);
  }

  async replace(namespace: string, name: string, lease: V1Lease): Promise<V1Lease> {
    this.#connect();
    if (this.hang) {
      return new Promise<never>(() => {});
    }
    const interleave = this.beforeNextReplace;
    this.beforeNextReplace = undefined;
    interleave?.();
    return this.#server.replace(this.#name, namespace, name, lease);
  }

  #connect(): void {
    this.requests += 1;
    if (this.down) {
      throw Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:6443"), { code: "ECONNREFUSED" });
    }
  }
}

function clone<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
