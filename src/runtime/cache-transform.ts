import type { KubernetesObject } from "@kubernetes/client-node";

/**
 * Keeping informer caches small. A controller holds every object it watches for as long as the
 * object exists, and as the API server sends them most of their bytes are bookkeeping no
 * reconciler reads (`metadata.managedFields`, kubectl's last-applied-configuration) and strings
 * that repeat across thousands of objects (the namespace, apiVersion, label values, condition
 * reasons), each a separate copy after JSON.parse. The helpers here take an object that was just
 * decoded and that nothing else references yet (an informer `transform`), and change it in place.
 * docs/benchmarks.md ("Controller footprint") has the measurements behind them.
 *
 * In place, and by assignment rather than `delete`: V8 turns an object that loses a property into
 * a slower and larger dictionary-mode object, and a copy would allocate for every event.
 */

/** Written by `kubectl apply` (and Argo CD's default sync): the whole manifest again, as JSON. */
export const LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration";

/**
 * Drops `metadata.managedFields` (server-side apply's field ownership, often larger than the rest
 * of the object; client-go's controllers strip it the same way) and the last-applied annotation.
 * Nothing a controller writes is built from either: status writes are merge patches of `status`
 * and annotation writes merge single keys.
 */
export function dropBookkeeping<T extends KubernetesObject>(obj: T): T {
  const meta = obj.metadata;
  if (!meta) return obj;
  if (meta.managedFields !== undefined) meta.managedFields = undefined;
  const annotations = meta.annotations;
  if (annotations && LAST_APPLIED_ANNOTATION in annotations) {
    const kept: Record<string, string> = {};
    for (const [key, value] of Object.entries(annotations)) {
      if (key !== LAST_APPLIED_ANNOTATION) kept[key] = value;
    }
    meta.annotations = kept;
  }
  return obj;
}

/**
 * One shared copy of each repeated string, as Java's `String.intern`: V8 shares property names
 * but gives every string value of a parsed JSON document its own copy. Bounded: after
 * `maxEntries` different strings the pool starts again, which costs only future sharing, so a
 * stream of unique values cannot grow it without limit.
 */
export class StringPool {
  readonly #strings = new Map<string, string>();
  readonly #maxEntries: number;

  constructor(maxEntries = 20_000) {
    this.#maxEntries = maxEntries;
  }

  get size(): number {
    return this.#strings.size;
  }

  /** The pool's copy of `value` (which becomes the pool's copy if it has none). */
  intern(value: string): string {
    const known = this.#strings.get(value);
    if (known !== undefined) return known;
    if (this.#strings.size >= this.#maxEntries) this.#strings.clear();
    this.#strings.set(value, value);
    return value;
  }

  /** Replaces the string values of `record` (labels, annotations) by the pool's copies. */
  internValues(record: Record<string, unknown> | undefined): void {
    if (!record) return;
    for (const [key, value] of Object.entries(record)) {
      if (typeof value === "string") record[key] = this.intern(value);
    }
  }

  /** Replaces the string-valued `fields` of each object in `list` by the pool's copies. */
  internFields(list: readonly object[] | undefined, fields: readonly string[]): void {
    for (const item of list ?? []) {
      const record = item as Record<string, unknown>;
      for (const field of fields) {
        const value = record[field];
        if (typeof value === "string") record[field] = this.intern(value);
      }
    }
  }
}

/**
 * Shares the strings of `metadata` that repeat across objects: apiVersion and kind, the
 * namespace, label and annotation values, and owner references' apiVersion, kind and name (a run's
 * owner name is also its `cadent.dev/periodic-task` label value). Names, uids and
 * resourceVersions are unique and left alone.
 */
export function internMetadata(obj: KubernetesObject, pool: StringPool): void {
  if (obj.apiVersion !== undefined) obj.apiVersion = pool.intern(obj.apiVersion);
  if (obj.kind !== undefined) obj.kind = pool.intern(obj.kind);
  const meta = obj.metadata;
  if (!meta) return;
  if (meta.namespace !== undefined) meta.namespace = pool.intern(meta.namespace);
  pool.internValues(meta.labels);
  pool.internValues(meta.annotations);
  pool.internFields(meta.ownerReferences, ["apiVersion", "kind", "name"]);
}

/** Shares the strings of metav1.Conditions, most of which say the same as thousands of others. */
export function internConditions(conditions: readonly object[] | undefined, pool: StringPool): void {
  pool.internFields(conditions, ["type", "status", "reason", "message", "lastTransitionTime"]);
}
