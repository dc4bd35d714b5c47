import { z } from "zod";

/**
 * One `x-kubernetes-validations` rule of a CRD, with its twin in TypeScript.
 *
 * The API server enforces `rule` (CEL); zod enforces `holds`, so the controller refuses exactly what
 * the API server refuses when it validates objects it reads. Keep the two side by side and equal.
 */
export interface CelRule<T> {
  /** The CEL expression; `self` is the value of the field the rule is attached to. */
  readonly rule: string;
  /** Shown to the user; say what to change. */
  readonly message: string;
  /** Where the API server reports a violation, relative to `self`, e.g. `.queue`. */
  readonly fieldPath?: string;
  readonly reason?:
    "FieldValueInvalid" | "FieldValueForbidden" | "FieldValueRequired" | "FieldValueDuplicate";
  /**
   * The same rule for zod. Omitted only for transition rules (those reading `oldSelf`): a single
   * object cannot tell whether it changed.
   */
  readonly holds?: (self: T) => boolean;
}

/** The rule as it is written into the CRD. */
export interface ValidationRule {
  rule: string;
  message: string;
  fieldPath?: string;
  reason?: string;
}

export const VALIDATIONS_KEY = "x-kubernetes-validations";

/** Attaches CEL rules to a schema for the CRD, and their TypeScript twins for zod. */
export function withRules<S extends z.ZodType>(schema: S, rules: readonly CelRule<z.output<S>>[]): S {
  // `.superRefine()` makes a schema that does not inherit metadata, so carry it over by hand.
  const inherited = z.globalRegistry.get(schema) ?? {};
  const refined = schema.superRefine((self, ctx) => {
    for (const r of rules) {
      if (r.holds && !r.holds(self)) {
        ctx.addIssue({ code: "custom", message: r.message, path: pathOf(r.fieldPath), input: self });
      }
    }
  });
  return refined.meta({
    ...inherited,
    [VALIDATIONS_KEY]: [...validationsOf(inherited), ...rules.map(toValidationRule)],
  });
}

function toValidationRule<T>(r: CelRule<T>): ValidationRule {
  return {
    rule: r.rule,
    message: r.message,
    ...(r.fieldPath === undefined ? {} : { fieldPath: r.fieldPath }),
    ...(r.reason === undefined ? {} : { reason: r.reason }),
  };
}

function validationsOf(meta: Record<string, unknown>): ValidationRule[] {
  const v = meta[VALIDATIONS_KEY];
  return Array.isArray(v) ? (v as ValidationRule[]) : [];
}

/** `.spec.queue` -> ["spec", "queue"]; only the dotted form is used in cadent's rules. */
function pathOf(fieldPath: string | undefined): string[] {
  if (fieldPath === undefined) return [];
  return fieldPath.split(".").filter((s) => s.length > 0);
}

/** `has(self.x)` for an optional field, the way CEL reads it: present and not undefined. */
export function has<T extends object>(self: T, key: keyof T): boolean {
  return self[key] !== undefined;
}
