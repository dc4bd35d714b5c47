import { PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import type { CustomObjectsApi, KubernetesObject } from "@kubernetes/client-node";
import { isConflict } from "./errors.ts";

/**
 * Status writes to the `/status` subresource of custom resources, with the patch content type
 * always explicit.
 *
 * client-node 2.0.x quirk: the generated `patch*` methods choose the first content type of their
 * list, `application/json-patch+json`, so a plain object body is sent as an (invalid) JSON patch
 * unless the Content-Type is overridden per call with `setHeaderOptions('Content-Type', …)`.
 * Strategic merge patch is refused for custom resources, so the choices here are JSON merge
 * patch and server-side apply.
 *
 * Merge-patch caveat: a merge patch replaces arrays whole. Always send the complete `conditions`
 * array (see conditions.ts), never only the condition that changed.
 */

/** The field manager of every cadent write (server-side apply and managedFields attribution). */
export const FIELD_MANAGER = "cadent";

/** A namespaced custom resource, as CustomObjectsApi addresses it. */
export interface CustomResourceRef {
  group: string;
  version: string;
  /** Lower-case plural, e.g. "periodictasks". */
  plural: string;
  namespace: string;
  name: string;
}

/** The two CustomObjectsApi calls status writes use; a CustomObjectsApi satisfies it. */
export type StatusApi = Pick<
  CustomObjectsApi,
  "patchNamespacedCustomObjectStatus" | "getNamespacedCustomObjectStatus"
>;

export const mergePatchOptions = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
export const applyPatchOptions = setHeaderOptions("Content-Type", PatchStrategy.ServerSideApply);

/**
 * Merge-patches `status`. With `resourceVersion`, the write is conditional: the API server
 * answers 409 Conflict if the object changed since that version.
 */
export async function mergePatchStatus(
  api: StatusApi,
  ref: CustomResourceRef,
  status: Readonly<Record<string, unknown>>,
  options: { resourceVersion?: string } = {},
): Promise<KubernetesObject> {
  const body: Record<string, unknown> = { status };
  if (options.resourceVersion !== undefined) {
    body["metadata"] = { resourceVersion: options.resourceVersion };
  }
  const result: unknown = await api.patchNamespacedCustomObjectStatus(
    { ...ref, body, fieldManager: FIELD_MANAGER },
    mergePatchOptions,
  );
  return asObject(result, ref);
}

/**
 * Server-side applies `status` as field manager "cadent", forcing ownership of the fields it
 * sets. Fields cadent applied before and omits now are removed; fields other managers own stay.
 */
export async function applyStatus(
  api: StatusApi,
  ref: CustomResourceRef & { kind: string },
  status: Readonly<Record<string, unknown>>,
): Promise<KubernetesObject> {
  const body = {
    apiVersion: `${ref.group}/${ref.version}`,
    kind: ref.kind,
    metadata: { name: ref.name, namespace: ref.namespace },
    status,
  };
  const result: unknown = await api.patchNamespacedCustomObjectStatus(
    {
      group: ref.group,
      version: ref.version,
      plural: ref.plural,
      namespace: ref.namespace,
      name: ref.name,
      body,
      fieldManager: FIELD_MANAGER,
      force: true,
    },
    applyPatchOptions,
  );
  return asObject(result, ref);
}

export interface ConflictRetryOptions<T> {
  /** Reads the latest object from the API server (not a cache). */
  read: () => Promise<T>;
  /**
   * Builds the write from the latest object; undefined when nothing needs writing. It must be a
   * pure function of `latest`, since it runs again on every conflict.
   */
  build: (latest: T) => Readonly<Record<string, unknown>> | undefined;
  /** Writes conditionally on `resourceVersion` (409 when stale). */
  write: (patch: Readonly<Record<string, unknown>>, resourceVersion: string) => Promise<T>;
  /** A possibly stale starting point (the informer's copy), saving the first read. */
  initial?: T;
  /** Default 5. */
  attempts?: number;
}

/**
 * Optimistic concurrency: build from the latest object, write conditionally, and on 409 re-read
 * and rebuild, at most `attempts` times. Returns the object written (or read, when nothing
 * needed writing). Errors other than 409 propagate at once.
 */
export async function writeWithConflictRetry<T extends KubernetesObject>(
  options: ConflictRetryOptions<T>,
): Promise<T> {
  const attempts = options.attempts ?? 5;
  let latest = options.initial ?? (await options.read());
  for (let attempt = 1; ; attempt++) {
    const patch = options.build(latest);
    if (patch === undefined) {
      return latest;
    }
    const resourceVersion = latest.metadata?.resourceVersion;
    if (!resourceVersion) {
      throw new Error(
        `cannot write ${latest.kind ?? "object"} ${latest.metadata?.name ?? ""} conditionally: it has no resourceVersion`,
      );
    }
    try {
      return await options.write(patch, resourceVersion);
    } catch (err) {
      if (!isConflict(err) || attempt >= attempts) {
        if (isConflict(err)) {
          throw new Error(
            `gave up writing ${latest.kind ?? "object"} ${latest.metadata?.namespace ?? ""}/${latest.metadata?.name ?? ""} after ${attempts} conflicts: it keeps changing underneath`,
            { cause: err },
          );
        }
        throw err;
      }
      latest = await options.read();
    }
  }
}

/**
 * Merge-patches the status built by `build` from the latest object, conditional on its
 * resourceVersion, retrying on conflict (see {@link writeWithConflictRetry}).
 */
export function updateStatusWithRetry(
  api: StatusApi,
  ref: CustomResourceRef,
  build: (latest: KubernetesObject) => Readonly<Record<string, unknown>> | undefined,
  options: { initial?: KubernetesObject; attempts?: number } = {},
): Promise<KubernetesObject> {
  return writeWithConflictRetry<KubernetesObject>({
    read: async () => asObject(await api.getNamespacedCustomObjectStatus(ref), ref),
    build,
    write: (status, resourceVersion) => mergePatchStatus(api, ref, status, { resourceVersion }),
    initial: options.initial,
    attempts: options.attempts,
  });
}

function asObject(value: unknown, ref: CustomResourceRef): KubernetesObject {
  if (typeof value !== "object" || value === null || !("metadata" in value)) {
    throw new Error(`the API server returned no object for ${ref.plural}/${ref.namespace}/${ref.name}`);
  }
  // CustomObjectsApi is typed `any`: the API server's JSON is trusted to be an object here.
  return value as KubernetesObject;
}
