/** The writes both reconcilers make to cadent's own objects. */
import type { CustomObjectsApi, KubernetesObject } from "@kubernetes/client-node";
import { GROUP, TASK_PLURAL, VERSION } from "../api/index.ts";
import { isConflict, isNotFound } from "../runtime/errors.ts";
import { mergePatchStatus } from "../runtime/status.ts";
import { StaleObjectError } from "../runtime/workqueue.ts";

/** Deletes a Task (its Job goes with it, by owner reference); a Task already gone is fine. */
export async function deleteTask(api: CustomObjectsApi, namespace: string, name: string): Promise<void> {
  try {
    await api.deleteNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: TASK_PLURAL,
      namespace,
      name,
      propagationPolicy: "Background",
    });
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}

/** A merge patch that sets `next` and removes the keys of `prev` that `next` lacks. */
export function statusPatch(prev: object, next: object): Record<string, unknown> {
  const patch: Record<string, unknown> = { ...next };
  for (const key of Object.keys(prev)) if (!(key in next)) patch[key] = null;
  return patch;
}

/**
 * Writes `next` as the status of `obj` when it differs from `prev`, conditional on the
 * resourceVersion both were read at: a 409 (a stale cache) becomes a StaleObjectError, and the
 * reconcile runs again from the latest object. Returns the object's resourceVersion after the
 * write, or undefined when nothing was written.
 */
export async function writeStatus(
  api: CustomObjectsApi,
  plural: string,
  obj: KubernetesObject,
  prev: object,
  next: object,
): Promise<string | undefined> {
  if (JSON.stringify(prev) === JSON.stringify(next)) return undefined;
  try {
    const written = await mergePatchStatus(
      api,
      {
        group: GROUP,
        version: VERSION,
        plural,
        namespace: obj.metadata?.namespace ?? "",
        name: obj.metadata?.name ?? "",
      },
      statusPatch(prev, next),
      { resourceVersion: obj.metadata?.resourceVersion },
    );
    return written.metadata?.resourceVersion;
  } catch (err) {
    if (isConflict(err)) throw new StaleObjectError(obj, err);
    throw err;
  }
}
