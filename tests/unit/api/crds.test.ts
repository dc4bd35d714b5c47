import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { generatedFiles } from "../../../hack/gen-crds.ts";
import { LABELS, ANNOTATIONS } from "../../../src/api/constants.ts";
import { periodicTaskCrd, taskCrd, type CustomResourceDefinition } from "../../../src/api/crds.ts";
import type { StructuralSchema } from "../../../src/api/openapi.ts";

const root = new URL("../../../", import.meta.url);

describe("committed generated files", async () => {
  const files = [...(await generatedFiles())];

  it("cover both CRDs (also in the Helm chart) and the API reference", () => {
    expect(files.map(([path]) => path).sort()).toEqual([
      "charts/cadent/crds/periodictasks.cadent.dev.yaml",
      "charts/cadent/crds/tasks.cadent.dev.yaml",
      "crds/periodictasks.cadent.dev.yaml",
      "crds/tasks.cadent.dev.yaml",
      "docs/api.md",
    ]);
  });

  it.each(files)(
    "%s matches what the zod schemas generate (run npm run gen:crds)",
    async (path, generated) => {
      const committed = await readFile(new URL(path, root), "utf8");
      expect(committed).toBe(generated);
    },
  );
});

function schemaOf(crd: CustomResourceDefinition): StructuralSchema {
  const v = crd.spec.versions[0];
  if (v === undefined) throw new Error("no version");
  return v.schema.openAPIV3Schema;
}

/** Every node of a schema with its path. */
function nodes(s: StructuralSchema, path = ""): [string, StructuralSchema][] {
  const out: [string, StructuralSchema][] = [[path, s]];
  for (const [k, child] of Object.entries(s.properties ?? {})) out.push(...nodes(child, `${path}.${k}`));
  if (s.items) out.push(...nodes(s.items, `${path}[]`));
  if (s.additionalProperties) out.push(...nodes(s.additionalProperties, `${path}.*`));
  return out;
}

const crds = [
  ["Task", taskCrd()],
  ["PeriodicTask", periodicTaskCrd()],
] as const;

describe.each(crds)("the %s CRD", (_kind, crd) => {
  const all = nodes(schemaOf(crd));

  it("is structural: every node has a type, or is int-or-string, or keeps unknown fields", () => {
    const untyped = all.filter(
      ([, s]) =>
        s.type === undefined &&
        !s["x-kubernetes-int-or-string"] &&
        !s["x-kubernetes-preserve-unknown-fields"],
    );
    expect(untyped.map(([p]) => p)).toEqual([]);
  });

  it("uses no $ref, no additionalProperties: false and no anyOf but int-or-string", () => {
    const text = JSON.stringify(crd);
    expect(text).not.toContain('"$ref"');
    expect(text).not.toContain('"additionalProperties":false');
    const unions = all.filter(([, s]) => s.anyOf !== undefined && !s["x-kubernetes-int-or-string"]);
    expect(unions).toEqual([]);
  });

  it("describes every field under spec and status (kubectl explain)", () => {
    const bare = all.filter(
      ([p, s]) => /^\.(spec|status)/.test(p) && !/(\[\]|\.\*)$/.test(p) && !s.description,
    );
    expect(bare.map(([p]) => p)).toEqual([]);
  });

  // The Job spec inside jobTemplate is kept as written: the Job API validates it, and no rule reads it.
  it("bounds every string, list and map of spec, except the Job spec kept as written", () => {
    const unbounded = all.filter(
      ([p, s]) =>
        /^\.spec/.test(p) &&
        !/\.jobTemplate\.spec\./.test(p) &&
        ((s.type === "string" && s.maxLength === undefined && s.enum === undefined) ||
          (s.type === "array" && s.maxItems === undefined) ||
          (s.type === "object" &&
            (s.additionalProperties !== undefined ||
              (s["x-kubernetes-preserve-unknown-fields"] && s.properties === undefined)) &&
            s.maxProperties === undefined)),
    );
    expect(unbounded.map(([p]) => p)).toEqual([]);
  });

  // kube-openapi skips the type check of a non-numeric field with a format when the value is a
  // string or a list, and nothing else applies to a list: `eta: []` was stored (fuzz-crd-schema).
  it("declares no format, so the API server refuses a list where a string belongs", () => {
    const formatted = all.filter(([, s]) => s.format !== undefined);
    expect(formatted.map(([p, s]) => `${p}: ${s.format}`)).toEqual([]);
  });

  it("has a status subresource and the cadent category", () => {
    expect(crd.spec.versions[0]?.subresources).toEqual({ status: {} });
    expect(crd.spec.names.categories).toEqual(["cadent"]);
    expect(crd.spec.scope).toBe("Namespaced");
  });
});

describe("contract details (product.md §1)", () => {
  const columns = (crd: CustomResourceDefinition) => crd.spec.versions[0]?.additionalPrinterColumns ?? [];

  it("Task columns are TASK, PHASE, ATTEMPTS, RESULT, STARTED, AGE", () => {
    expect(columns(taskCrd()).map((c) => c.name)).toEqual([
      "TASK",
      "PHASE",
      "ATTEMPTS",
      "RESULT",
      "STARTED",
      "AGE",
    ]);
  });

  it("PeriodicTask columns are SCHEDULE ... AGE, with NEXT RUN a time rather than an age", () => {
    const cols = columns(periodicTaskCrd());
    expect(cols.map((c) => c.name)).toEqual([
      "SCHEDULE",
      "TIMEZONE",
      "SUSPEND",
      "ACTIVE",
      "LAST SCHEDULE",
      "NEXT RUN",
      "LAST RESULT",
      "RUNS",
      "AGE",
    ]);
    expect(cols.find((c) => c.name === "NEXT RUN")).toMatchObject({ type: "string", format: "date-time" });
  });

  it("PeriodicTask has short names ptask and pt", () => {
    expect(periodicTaskCrd().spec.names.shortNames).toEqual(["ptask", "pt"]);
  });

  it("names are bounded by root-level rules on self.metadata.name, reported at metadata.name", () => {
    expect(schemaOf(taskCrd())["x-kubernetes-validations"]).toEqual([
      expect.objectContaining({ rule: "self.metadata.name.size() <= 63", fieldPath: ".metadata.name" }),
    ]);
    expect(schemaOf(periodicTaskCrd())["x-kubernetes-validations"]).toEqual([
      expect.objectContaining({ rule: "self.metadata.name.size() <= 52", fieldPath: ".metadata.name" }),
    ]);
  });

  it("a Task's spec is immutable, a PeriodicTask's is not", () => {
    const rules = (crd: CustomResourceDefinition) =>
      (schemaOf(crd).properties?.spec?.["x-kubernetes-validations"] ?? []).map((r) => r.rule);
    expect(rules(taskCrd())).toContain("self == oldSelf");
    expect(rules(periodicTaskCrd())).not.toContain("self == oldSelf");
  });

  it("server-side defaults are those of product.md", () => {
    const spec = schemaOf(periodicTaskCrd()).properties?.spec?.properties ?? {};
    expect({
      timeZone: spec.timeZone?.default,
      concurrencyPolicy: spec.concurrencyPolicy?.default,
      catchUp: spec.catchUp?.default,
      suspend: spec.suspend?.default,
      successfulRunsHistoryLimit: spec.successfulRunsHistoryLimit?.default,
      failedRunsHistoryLimit: spec.failedRunsHistoryLimit?.default,
    }).toEqual({
      timeZone: "UTC",
      concurrencyPolicy: "Allow",
      catchUp: "Latest",
      suspend: false,
      successfulRunsHistoryLimit: 3,
      failedRunsHistoryLimit: 1,
    });
    expect(spec.concurrencyPolicy?.enum).toEqual(["Allow", "Forbid", "Replace"]);
    expect(spec.catchUp?.enum).toEqual(["Latest", "All"]);
  });

  it("labels and annotations keep their contract names", () => {
    expect([
      LABELS.periodicTask,
      LABELS.task,
      ANNOTATIONS.scheduledTime,
      ANNOTATIONS.trigger,
      ANNOTATIONS.runNow,
    ]).toEqual([
      "cadent.dev/periodic-task",
      "cadent.dev/task",
      "cadent.dev/scheduled-time",
      "cadent.dev/trigger",
      "cadent.dev/run-now",
    ]);
  });
});
