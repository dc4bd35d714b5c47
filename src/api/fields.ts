import { z } from "zod";

/** Largest value of a Kubernetes int32 field; the upper bound of every duration in seconds. */
export const INT32_MAX = 2_147_483_647;

/**
 * RFC 3339 with a zone offset, read as zod's `z.iso.datetime({ offset: true })` reads it (real
 * calendar dates, seconds required, hours and offsets in range), with the lowercase `t` and `z`
 * RFC 3339 also allows. docs.ts recognises a time field by this pattern.
 */
export const RFC3339_PATTERN =
  /^(?:(?:\d\d[2468][048]|\d\d[13579][26]|\d\d0[48]|[02468][048]00|[13579][26]00)-02-29|\d{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\d|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]\d|30)|02-(?:0[1-9]|1\d|2[0-8])))[Tt](?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d+)?(?:[Zz]|[+-](?:[01]\d|2[0-3]):[0-5]\d)$/;

/**
 * An RFC 3339 time with a zone offset (`Z` or `+08:00`), as Kubernetes writes times.
 *
 * The CRD gives it the pattern and no `format: date-time`, for two reasons found by
 * tests/integration/fuzz-crd-schema.test.ts:
 * - kube-openapi's type check passes any JSON list for a `type: string` field that has a format
 *   (pkg/validation/validate/type.go skips non-numeric types with a format when the value is a
 *   string or a slice), and neither the format nor the pattern applies to a list: `eta: []` was
 *   stored, and the controller could not read the Task. Without a format the type is checked.
 * - with `format: date-time`, CEL reads the field as a timestamp, whose parser refuses the
 *   lowercase `t` and `z`; without it, CEL reads a string, and a rule that needs the instant
 *   converts it with celInstant().
 * The pattern alone is also stricter than the API server's date-time check, which takes any
 * character before the fraction, offsets such as +99:99 and text after a second "t".
 */
export function dateTimeString() {
  return z.string().max(64).regex(RFC3339_PATTERN, {
    message: "must be an RFC 3339 date-time with a zone offset, for example 2026-12-01T06:00:00Z",
  });
}

export function dateTime(description: string) {
  return dateTimeString().describe(description);
}

/** Milliseconds since the epoch of a string accepted by dateTimeString(). */
export function instant(s: string): number {
  return Date.parse(s.toUpperCase());
}

/** CEL's timestamp range, 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z (cel-go). */
const CEL_TIMESTAMP_MIN_MS = Date.parse("0001-01-01T00:00:00Z");
const CEL_TIMESTAMP_END_MS = Date.parse("+010000-01-01T00:00:00Z");

/**
 * The CEL expression for the instant of `expr`, a string accepted by dateTimeString(). CEL's
 * timestamp() reads RFC 3339 with an uppercase `T` and `Z` only; upperAscii() comes from the strings
 * extension library Kubernetes' CEL includes. timestamp() fails to evaluate (the object is refused)
 * for an instant outside CEL's range: see isCelTimestamp().
 */
export function celInstant(expr: string): string {
  return `timestamp(${expr}.upperAscii())`;
}

/**
 * Whether celInstant() can evaluate on `s`: a year-0000 time, or one that an offset moves before
 * 0001-01-01T00:00:00Z or past 9999-12-31T23:59:59.999999999Z, is a "timestamp overflow" to CEL.
 * Milliseconds decide it exactly: both ends of the range are whole milliseconds.
 */
export function isCelTimestamp(s: string): boolean {
  const t = instant(s);
  return t >= CEL_TIMESTAMP_MIN_MS && t < CEL_TIMESTAMP_END_MS;
}

/**
 * Orders two strings accepted by dateTimeString() as celInstant() does: to the nanosecond (digits
 * past the ninth are dropped, as Go's time.Parse drops them), where a Date stops at the millisecond.
 */
export function compareDateTimes(a: string, b: string): number {
  const nanosWithinMillisecond = (s: string): number =>
    Number((/\.(\d+)/.exec(s)?.[1] ?? "").slice(3, 9).padEnd(6, "0"));
  return instant(a) - instant(b) || nanosWithinMillisecond(a) - nanosWithinMillisecond(b);
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
