/**
 * One resource watched in every namespace, or in a given list of them (one informer each, since a
 * namespaced Role grants no cluster-wide list), behind a single read-only store.
 */
import type { KubeConfig, KubernetesListObject, KubernetesObject } from "@kubernetes/client-node";
import { Informer, kubeListWatchSource, type InformerEvents, type ListPage } from "../runtime/informer.ts";
import type { Logger } from "../runtime/logger.ts";
import type { ReadonlyStore } from "../runtime/store.ts";
import { splitKey } from "../runtime/store.ts";

export interface ResourceInformerOptions<T extends KubernetesObject> {
  name: string;
  kubeConfig: KubeConfig;
  /** Empty: all namespaces. */
  namespaces: readonly string[];
  /** The collection path for a namespace, or for all of them (undefined). */
  path: (namespace: string | undefined) => string;
  /** One page of the list, for a namespace or for all of them (undefined). */
  list: (namespace: string | undefined, page: ListPage) => Promise<KubernetesListObject<T>>;
  labelSelector?: string;
  decode?: (raw: unknown) => T;
  /** What the cache keeps of each object (see cache-transforms.ts). */
  transform?: (obj: T) => T;
  logger: Logger;
}

export class ResourceInformer<T extends KubernetesObject> implements ReadonlyStore<T> {
  readonly name: string;
  readonly #informers: Map<string | undefined, Informer<T>>;

  constructor(o: ResourceInformerOptions<T>) {
    this.name = o.name;
    const scopes: (string | undefined)[] = o.namespaces.length ? [...o.namespaces] : [undefined];
    this.#informers = new Map(
      scopes.map((ns) => [
        ns,
        new Informer<T>({
          name: ns ? `${o.name}/${ns}` : o.name,
          logger: o.logger,
          source: kubeListWatchSource<T>(o.kubeConfig, {
            path: o.path(ns),
            list: (page) => o.list(ns, page),
            labelSelector: o.labelSelector,
            decode: o.decode,
            transform: o.transform,
          }),
        }),
      ]),
    );
  }

  on<E extends keyof InformerEvents<T>>(event: E, handler: InformerEvents<T>[E]): void {
    for (const informer of this.#informers.values()) informer.on(event, handler);
  }

  start(): void {
    for (const informer of this.#informers.values()) informer.start();
  }

  stop(): void {
    for (const informer of this.#informers.values()) informer.stop();
  }

  hasSynced(): boolean {
    return [...this.#informers.values()].every((i) => i.hasSynced());
  }

  async waitForSync(signal?: AbortSignal): Promise<boolean> {
    const results = await Promise.all([...this.#informers.values()].map((i) => i.waitForSync(signal)));
    return results.every(Boolean);
  }

  #stores(namespace?: string): ReadonlyStore<T>[] {
    const scoped = this.#informers.get(namespace);
    if (namespace !== undefined && scoped) return [scoped.store];
    return [...this.#informers.values()].map((i) => i.store);
  }

  get(key: string): T | undefined {
    const { namespace } = splitKey(key);
    for (const store of this.#stores(namespace)) {
      const found = store.get(key);
      if (found) return found;
    }
    return undefined;
  }

  getByName(namespace: string | undefined, name: string): T | undefined {
    for (const store of this.#stores(namespace)) {
      const found = store.getByName(namespace, name);
      if (found) return found;
    }
    return undefined;
  }

  list(namespace?: string): T[] {
    return this.#stores(namespace).flatMap((s) => s.list(namespace));
  }

  listByLabels(selector: Readonly<Record<string, string>>, namespace?: string): T[] {
    return this.#stores(namespace).flatMap((s) => s.listByLabels(selector, namespace));
  }

  byIndex(indexName: string, value: string): T[] {
    return this.#stores().flatMap((s) => s.byIndex(indexName, value));
  }

  byOwner(uid: string): T[] {
    return this.#stores().flatMap((s) => s.byOwner(uid));
  }

  keys(): string[] {
    return this.#stores().flatMap((s) => s.keys());
  }

  get size(): number {
    return this.#stores().reduce((n, s) => n + s.size, 0);
  }
}
