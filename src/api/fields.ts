import { z } from "zod";

/** Largest value of a Kubernetes int32 field; the upper bound of every duration in seconds. */
export const INT32_MAX = 2_147_483_647;

const rfc3339 = z.iso.datetime({ offset: true });

/**
 * An RFC 3339 time with a zone offset (`Z` or `+08:00`), as Kubernetes writes times. RFC 3339 also
 * allows a lowercase `t` and `z`, and so does the API server's `date-time` format; zod's check does
 * not, hence the upper-casing. The CRD carries `format: date-time` rather than zod's long pattern,
 * so the API server's refusal reads "must be of type date-time".
 */
export function dateTimeString() {
  return z
    .string()
    .max(64)
    .refine((s) => rfc3339.safeParse(s.toUpperCase()).success, {
      message: "must be an RFC 3339 date-time with a zone offset, for example 2026-12-01T06:00:00Z",
    })
    .meta({ format: "date-time" });
}

export function dateTime(description: string) {
  return dateTimeString().describe(description);
}

/** Milliseconds since the epoch of a string accepted by dateTimeString(). */
export function instant(s: string): number {
  return Date.parse(s.toUpperCase());
}

/** An integer in [min, max]. */
export function int(min: number, max: number, description: string) {
  return z.int().min(min).max(max).describe(description);
}

/** A string -> string map with at most `maxProperties` entries. */
export function stringMap(maxProperties: number, valueMaxLength: number, description: string) {
  return maxPropertiesOf(z.record(z.string(), z.string().max(valueMaxLength)), maxProperties, description);
}

/** Any JSON object with at most `maxProperties` keys; the API server keeps it as it is. */
export function anyJsonObject(maxProperties: number, description: string) {
  return maxPropertiesOf(z.record(z.string(), z.unknown()), maxProperties, description);
}

/** Any JSON array with at most `maxItems` items, of any JSON values. */
export function anyJsonArray(maxItems: number, description: string) {
  return z.array(z.unknown().describe("Any JSON value.")).max(maxItems).describe(description);
}

// zod has no maxProperties check for records: refine, and say it in the schema for the CRD.
function maxPropertiesOf<S extends z.ZodType<Record<string, unknown>>>(
  schema: S,
  maxProperties: number,
  description: string,
): S {
  return schema
    .refine((m) => Object.keys(m).length <= maxProperties, {
      message: `must have at most ${maxProperties} entries`,
    })
    .meta({ description, maxProperties });
}

/** Labels and annotations copied onto the objects made from a template. */
export function templateMetadata(madeObjects: string) {
  return z
    .object({
      labels: stringMap(64, 63, `Labels added to ${madeObjects}.`).optional(),
      annotations: stringMap(64, 8192, `Annotations added to ${madeObjects}.`).optional(),
    })
    .describe(
      `Labels and annotations for ${madeObjects}. Other metadata fields are set by the controller and dropped here.`,
    );
}

/** metav1.Condition, with the bounds and patterns Kubernetes declares for it. */
export const conditionSchema = z
  .object({
    type: z
      .string()
      .min(1)
      .max(316)
      .regex(
        /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$/,
      )
      .describe("Type of condition in CamelCase, for example Ready."),
    status: z.enum(["True", "False", "Unknown"]).describe("Status of the condition: True, False or Unknown."),
    observedGeneration: z
      .int()
      .min(0)
      .optional()
      .describe("The .metadata.generation that the condition was set based upon."),
    lastTransitionTime: dateTime("Last time the condition changed from one status to another."),
    reason: z
      .string()
      .min(1)
      .max(1024)
      .regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/)
      .describe("Machine-readable reason for the condition's last transition, in CamelCase."),
    message: z.string().max(32768).describe("Human-readable message with details about the transition."),
  })
  .describe("A condition in the metav1.Condition shape.");
export type Condition = z.infer<typeof conditionSchema>;

/** Conditions, merged by type as Kubernetes conventions ask. */
export function conditions(description: string) {
  return z
    .array(conditionSchema)
    .max(16)
    .meta({
      description,
      "x-kubernetes-list-type": "map",
      "x-kubernetes-list-map-keys": ["type"],
    });
}

/** `metadata` of an object read from the API server: the fields cadent reads, the rest kept. */
export const objectMetaSchema = z.looseObject({
  name: z.string(),
  namespace: z.string().optional(),
  uid: z.string().optional(),
  resourceVersion: z.string().optional(),
  generation: z.int().optional(),
  creationTimestamp: z.string().optional(),
  deletionTimestamp: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  ownerReferences: z
    .array(
      z.looseObject({
        apiVersion: z.string(),
        kind: z.string(),
        name: z.string(),
        uid: z.string(),
        controller: z.boolean().optional(),
        blockOwnerDeletion: z.boolean().optional(),
      }),
    )
    .optional(),
  finalizers: z.array(z.string()).optional(),
});
export type ObjectMeta = z.infer<typeof objectMetaSchema>;
