import type { KubernetesObject } from "@kubernetes/client-node";

/**
 * The informer's cache: objects by key, with secondary indexes.
 *
 * Keys follow client-go's MetaNamespaceKeyFunc: `namespace/name`, or `name` for cluster-scoped
 * objects. Objects are stored as received and handed out by reference: treat them as read-only
 * (copy before changing), as with a client-go lister.
 */

/** `namespace/name`, or `name` for a cluster-scoped object. */
export function keyFor(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

/** The cache key of an object; throws if it has no name (the API server never sends one). */
export function objectKey(obj: KubernetesObject): string {
  const name = obj.metadata?.name;
  if (!name) {
    throw new Error(`object of kind ${obj.kind ?? "unknown"} has no metadata.name, so it has no cache key`);
  }
  return keyFor(obj.metadata?.namespace, name);
}

/** The inverse of {@link keyFor}. */
export function splitKey(key: string): { namespace: string | undefined; name: string } {
  const slash = key.indexOf("/");
  return slash < 0
    ? { namespace: undefined, name: key }
    : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

/** Values an object is indexed under, e.g. its owners' UIDs. */
export type IndexFunc<T> = (obj: T) => readonly string[];

/** The owner-UID index every store has, for "the Jobs this Task owns". */
export const OWNER_INDEX = "ownerUid";

const ownerUids: IndexFunc<KubernetesObject> = (obj) =>
  (obj.metadata?.ownerReferences ?? []).map((ref) => ref.uid);

/** The read side of a store, what reconcilers get. */
export interface ReadonlyStore<T extends KubernetesObject> {
  get(key: string): T | undefined;
  getByName(namespace: string | undefined, name: string): T | undefined;
  /** Every object, or those of one namespace. */
  list(namespace?: string): T[];
  /** Objects whose labels include every pair of `selector` (equality-based; a scan). */
  listByLabels(selector: Readonly<Record<string, string>>, namespace?: string): T[];
  /** Objects an indexer mapped to `value`. */
  byIndex(indexName: string, value: string): T[];
  /** Objects with an ownerReference to `uid`. */
  byOwner(uid: string): T[];
  keys(): string[];
  readonly size: number;
}

export class ObjectStore<T extends KubernetesObject> implements ReadonlyStore<T> {
  readonly #objects = new Map<string, T>();
  readonly #indexers: ReadonlyMap<string, IndexFunc<T>>;
  /** index name → value → keys */
  readonly #indexes = new Map<string, Map<string, Set<string>>>();

  constructor(indexers: Readonly<Record<string, IndexFunc<T>>> = {}) {
    this.#indexers = new Map<string, IndexFunc<T>>([[OWNER_INDEX, ownerUids], ...Object.entries(indexers)]);
    for (const name of this.#indexers.keys()) {
      this.#indexes.set(name, new Map());
    }
  }

  get size(): number {
    return this.#objects.size;
  }

  get(key: string): T | undefined {
    return this.#objects.get(key);
  }

  getByName(namespace: string | undefined, name: string): T | undefined {
    return this.#objects.get(keyFor(namespace, name));
  }

  list(namespace?: string): T[] {
    const all = [...this.#objects.values()];
    return namespace === undefined ? all : all.filter((obj) => obj.metadata?.namespace === namespace);
  }

  listByLabels(selector: Readonly<Record<string, string>>, namespace?: string): T[] {
    const pairs = Object.entries(selector);
    return this.list(namespace).filter((obj) => {
      const labels = obj.metadata?.labels ?? {};
      return pairs.every(([k, v]) => labels[k] === v);
    });
  }

  byIndex(indexName: string, value: string): T[] {
    const index = this.#indexes.get(indexName);
    if (!index) {
      throw new Error(`no index named "${indexName}"; known: ${[...this.#indexes.keys()].join(", ")}`);
    }
    const keys = index.get(value) ?? new Set<string>();
    return [...keys].flatMap((key) => {
      const obj = this.#objects.get(key);
      return obj ? [obj] : [];
    });
  }

  byOwner(uid: string): T[] {
    return this.byIndex(OWNER_INDEX, uid);
  }

  keys(): string[] {
    return [...this.#objects.keys()];
  }

  /** Stores `obj` and returns what it replaced. */
  upsert(obj: T): T | undefined {
    const key = objectKey(obj);
    const old = this.#objects.get(key);
    if (old) {
      this.#unindex(key, old);
    }
    this.#objects.set(key, obj);
    this.#index(key, obj);
    return old;
  }

  /** Removes the object under `key` and returns it. */
  remove(key: string): T | undefined {
    const old = this.#objects.get(key);
    if (old) {
      this.#unindex(key, old);
      this.#objects.delete(key);
    }
    return old;
  }

  #index(key: string, obj: T): void {
    for (const [name, fn] of this.#indexers) {
      const index = this.#indexes.get(name);
      for (const value of fn(obj)) {
        let keys = index?.get(value);
        if (!keys) {
          keys = new Set();
          index?.set(value, keys);
        }
        keys.add(key);
      }
    }
  }

  #unindex(key: string, obj: T): void {
    for (const [name, fn] of this.#indexers) {
      const index = this.#indexes.get(name);
      for (const value of fn(obj)) {
        const keys = index?.get(value);
        keys?.delete(key);
        if (keys?.size === 0) {
          index?.delete(value);
        }
      }
    }
  }
}
