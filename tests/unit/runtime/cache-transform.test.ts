import { describe, expect, it } from "vitest";
import type { KubernetesObject } from "@kubernetes/client-node";
import {
  LAST_APPLIED_ANNOTATION,
  StringPool,
  dropBookkeeping,
  internConditions,
  internMetadata,
} from "../../../src/runtime/cache-transform.ts";

/** A ConfigMap as the API server sends it after `kubectl apply`. */
function applied(): KubernetesObject & { data: Record<string, string> } {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: "settings",
      namespace: "payments",
      uid: "5f1c",
      resourceVersion: "7",
      labels: { app: "billing" },
      annotations: { [LAST_APPLIED_ANNOTATION]: '{"apiVersion":"v1","kind":"ConfigMap"}\n', owner: "team-a" },
      managedFields: [{ manager: "kubectl-client-side-apply", operation: "Update", fieldsType: "FieldsV1" }],
      ownerReferences: [
        { apiVersion: "cadent.dev/v1alpha1", kind: "PeriodicTask", name: "nightly", uid: "9a" },
      ],
    },
    data: { mode: "fast" },
  };
}

describe("dropBookkeeping", () => {
  it("drops managedFields and kubectl's last-applied configuration, and keeps everything else", () => {
    const expected = applied();
    expected.metadata = { ...expected.metadata, managedFields: undefined, annotations: { owner: "team-a" } };
    expect(dropBookkeeping(applied())).toEqual(expected);
  });

  it.each([
    { name: "an object without metadata", obj: { apiVersion: "v1", kind: "List" } },
    { name: "an object without annotations", obj: { metadata: { name: "a", labels: { x: "y" } } } },
  ])("leaves $name as it is", ({ obj }) => {
    expect(dropBookkeeping(structuredClone(obj))).toEqual(obj);
  });
});

describe("StringPool", () => {
  it("hands back the first copy of a string for every equal one", () => {
    const pool = new StringPool();
    const first = ["name", "space"].join("");
    expect(pool.intern(first)).toBe(first);
    expect(pool.intern(["names", "pace"].join(""))).toBe("namespace");
    expect(pool.size).toBe(1);
  });

  it("starts again after maxEntries different strings, so unique values cannot grow it for ever", () => {
    const pool = new StringPool(3);
    for (const s of ["a", "b", "c"]) pool.intern(s);
    expect(pool.size).toBe(3);
    pool.intern("d");
    expect(pool.size).toBe(1);
  });
});

describe("internMetadata and internConditions", () => {
  it("change no value: the object reads the same", () => {
    const pool = new StringPool();
    const obj = dropBookkeeping(applied());
    const before = structuredClone(obj);
    internMetadata(obj, pool);
    expect(obj).toEqual(before);
    const conditions = [{ type: "Ready", status: "True", reason: "Scheduled", message: "next run at 03:00" }];
    internConditions(conditions, pool);
    expect(conditions).toEqual([
      { type: "Ready", status: "True", reason: "Scheduled", message: "next run at 03:00" },
    ]);
  });

  it("pool the repeated strings of metadata, and not names, uids or resourceVersions", () => {
    const pool = new StringPool();
    internMetadata(dropBookkeeping(applied()), pool);
    expect(pool.size).toBe(8);
    for (const repeated of ["v1", "ConfigMap", "payments", "billing", "team-a", "PeriodicTask", "nightly"]) {
      const size = pool.size;
      pool.intern(repeated);
      expect(pool.size, repeated).toBe(size);
    }
    for (const unique of ["settings", "5f1c", "7"]) {
      const size = pool.size;
      pool.intern(unique);
      expect(pool.size, unique).toBe(size + 1);
    }
  });
});
