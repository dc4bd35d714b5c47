import { z } from "zod";
import { VALIDATIONS_KEY, type ValidationRule } from "./cel.ts";
import {
  CATEGORY,
  GROUP,
  PERIODIC_TASK_KIND,
  PERIODIC_TASK_LIST_KIND,
  PERIODIC_TASK_PLURAL,
  PERIODIC_TASK_SHORT_NAMES,
  PERIODIC_TASK_SINGULAR,
  TASK_KIND,
  TASK_LIST_KIND,
  TASK_PLURAL,
  TASK_SINGULAR,
  VERSION,
} from "./constants.ts";
import { toStructuralSchema, type StructuralSchema } from "./openapi.ts";
import { periodicTaskSchema } from "./periodic-task.ts";
import { taskSchema } from "./task.ts";

export interface PrinterColumn {
  name: string;
  type: "string" | "integer" | "number" | "boolean" | "date";
  format?: "date-time";
  jsonPath: string;
  description: string;
  priority?: number;
}

/** An apiextensions.k8s.io/v1 CustomResourceDefinition, as cadent writes them. */
export interface CustomResourceDefinition {
  apiVersion: "apiextensions.k8s.io/v1";
  kind: "CustomResourceDefinition";
  metadata: { name: string };
  spec: {
    group: string;
    scope: "Namespaced";
    names: {
      plural: string;
      singular: string;
      kind: string;
      listKind: string;
      shortNames?: string[];
      categories: string[];
    };
    versions: {
      name: string;
      served: boolean;
      storage: boolean;
      subresources: { status: Record<string, never> };
      additionalPrinterColumns: PrinterColumn[];
      schema: { openAPIV3Schema: StructuralSchema };
    }[];
  };
}

const AGE: PrinterColumn = {
  name: "AGE",
  type: "date",
  jsonPath: ".metadata.creationTimestamp",
  description: "Time since the object was created.",
};

export const TASK_COLUMNS: readonly PrinterColumn[] = [
  { name: "TASK", type: "string", jsonPath: ".spec.task", description: "Celery task name." },
  { name: "PHASE", type: "string", jsonPath: ".status.phase", description: "Where the Task is." },
  {
    name: "ATTEMPTS",
    type: "integer",
    jsonPath: ".status.attempts",
    description: "Attempts started so far.",
  },
  {
    name: "RESULT",
    type: "string",
    jsonPath: ".status.resultPreview",
    description: "The returned value, shortened.",
  },
  {
    name: "STARTED",
    type: "date",
    jsonPath: ".status.startTime",
    description: "Time since the last attempt started.",
  },
  AGE,
];

export const PERIODIC_TASK_COLUMNS: readonly PrinterColumn[] = [
  { name: "SCHEDULE", type: "string", jsonPath: ".spec.schedule", description: "The schedule." },
  { name: "TIMEZONE", type: "string", jsonPath: ".spec.timeZone", description: "Time zone of the schedule." },
  {
    name: "SUSPEND",
    type: "boolean",
    jsonPath: ".spec.suspend",
    description: "Whether new runs are stopped.",
  },
  {
    name: "ACTIVE",
    type: "integer",
    jsonPath: ".status.activeCount",
    description: "Runs that have not finished.",
  },
  {
    name: "LAST SCHEDULE",
    type: "date",
    jsonPath: ".status.lastScheduleTime",
    description: "Time since the scheduled time of the newest run.",
  },
  {
    // A time, not an age: "in 3h" is what a reader wants, and an age column would print "<invalid>".
    name: "NEXT RUN",
    type: "string",
    format: "date-time",
    jsonPath: ".status.nextScheduleTime",
    description: "When the next run is due.",
  },
  {
    // recentRuns is newest first and the Table shows the first match: the newest finished run.
    name: "LAST RESULT",
    type: "string",
    jsonPath: ".status.recentRuns[?(@.completionTime)].phase",
    description: "Phase of the newest finished run.",
  },
  { name: "RUNS", type: "integer", jsonPath: ".status.runs.total", description: "Runs made so far." },
  AGE,
];

type ResourceSchema = z.ZodObject<{ spec: z.ZodType; status: z.ZodType }>;

/** The CRD root: the standard object fields, spec and status from zod, and the root-level rules. */
function rootSchema(schema: ResourceSchema): StructuralSchema {
  const meta = z.globalRegistry.get(schema) ?? {};
  const rules = (meta[VALIDATIONS_KEY] ?? []) as ValidationRule[];
  const description = meta.description;
  if (typeof description !== "string") throw new Error("a resource schema needs a description");
  return {
    description,
    type: "object",
    properties: {
      apiVersion: {
        description: "Versioned schema of this representation of an object (cadent.dev/v1alpha1).",
        type: "string",
      },
      kind: { description: "The REST resource this object represents.", type: "string" },
      // The API server allows nothing but name and generateName under metadata, not even a description;
      // name is declared so the name rule can be reported at metadata.name.
      metadata: { type: "object", properties: { name: { type: "string" } } },
      spec: toStructuralSchema(schema.shape.spec),
      status: toStructuralSchema(schema.shape.status),
    },
    required: ["spec"],
    "x-kubernetes-validations": rules,
  };
}

function crd(
  names: CustomResourceDefinition["spec"]["names"],
  columns: readonly PrinterColumn[],
  openAPIV3Schema: StructuralSchema,
): CustomResourceDefinition {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${names.plural}.${GROUP}` },
    spec: {
      group: GROUP,
      scope: "Namespaced",
      names,
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [...columns],
          schema: { openAPIV3Schema },
        },
      ],
    },
  };
}

export function taskCrd(): CustomResourceDefinition {
  return crd(
    {
      plural: TASK_PLURAL,
      singular: TASK_SINGULAR,
      kind: TASK_KIND,
      listKind: TASK_LIST_KIND,
      categories: [CATEGORY],
    },
    TASK_COLUMNS,
    rootSchema(taskSchema),
  );
}

export function periodicTaskCrd(): CustomResourceDefinition {
  return crd(
    {
      plural: PERIODIC_TASK_PLURAL,
      singular: PERIODIC_TASK_SINGULAR,
      kind: PERIODIC_TASK_KIND,
      listKind: PERIODIC_TASK_LIST_KIND,
      shortNames: [...PERIODIC_TASK_SHORT_NAMES],
      categories: [CATEGORY],
    },
    PERIODIC_TASK_COLUMNS,
    rootSchema(periodicTaskSchema),
  );
}

/** Both CRDs, keyed by the file they are committed as. */
export function crdFiles(): { path: string; crd: CustomResourceDefinition }[] {
  return [taskCrd(), periodicTaskCrd()].map((c) => ({ path: `crds/${c.metadata.name}.yaml`, crd: c }));
}
