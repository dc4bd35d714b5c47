import { z } from "zod";
import { VALIDATIONS_KEY, type ValidationRule } from "./cel.ts";

/**
 * The subset of apiextensions.k8s.io/v1 JSONSchemaProps cadent's CRDs use, always structural:
 * a `type` on every node (or preserve-unknown-fields / int-or-string), no $ref, no
 * additionalProperties: false, no type inside anyOf except the int-or-string pair.
 */
export interface StructuralSchema {
  description?: string;
  type?: "object" | "array" | "string" | "integer" | "number" | "boolean";
  format?: string;
  enum?: unknown[];
  default?: unknown;
  nullable?: boolean;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minItems?: number;
  maxItems?: number;
  maxProperties?: number;
  "x-kubernetes-int-or-string"?: boolean;
  anyOf?: StructuralSchema[];
  "x-kubernetes-preserve-unknown-fields"?: boolean;
  "x-kubernetes-list-type"?: "atomic" | "set" | "map";
  "x-kubernetes-list-map-keys"?: string[];
  items?: StructuralSchema;
  additionalProperties?: StructuralSchema;
  properties?: Record<string, StructuralSchema>;
  required?: string[];
  "x-kubernetes-validations"?: ValidationRule[];
}

type Json = Record<string, unknown>;

/**
 * Converts a zod schema to a structural OpenAPI v3 schema for a CRD.
 *
 * zod writes the JSON Schema (OpenAPI 3.0 flavour, input side so defaulted fields are optional);
 * this walk only reshapes what Kubernetes spells differently, and throws on anything it does not
 * know rather than drop a constraint silently.
 */
export function toStructuralSchema(schema: z.ZodType): StructuralSchema {
  const json = z.toJSONSchema(schema, {
    io: "input",
    target: "openapi-3.0",
    unrepresentable: "throw",
    cycles: "throw",
    reused: "inline",
  }) as Json;
  delete json.$schema;
  return convert(json, "");
}

const PASSED_THROUGH = [
  "description",
  "format",
  "enum",
  "default",
  "nullable",
  "minimum",
  "maximum",
  "minLength",
  "maxLength",
  "pattern",
  "minItems",
  "maxItems",
  "maxProperties",
  "x-kubernetes-preserve-unknown-fields",
  "x-kubernetes-list-type",
  "x-kubernetes-list-map-keys",
  VALIDATIONS_KEY,
] as const;
const HANDLED = new Set<string>([
  ...PASSED_THROUGH,
  "type",
  "anyOf",
  "items",
  "properties",
  "required",
  "additionalProperties",
]);

/** Output key order, so the YAML reads the same way on every node. */
const KEY_ORDER: readonly (keyof StructuralSchema)[] = [
  "description",
  "type",
  "format",
  "enum",
  "default",
  "nullable",
  "minimum",
  "maximum",
  "minLength",
  "maxLength",
  "pattern",
  "minItems",
  "maxItems",
  "maxProperties",
  "x-kubernetes-int-or-string",
  "anyOf",
  "x-kubernetes-preserve-unknown-fields",
  "x-kubernetes-list-type",
  "x-kubernetes-list-map-keys",
  "items",
  "additionalProperties",
  "properties",
  "required",
  "x-kubernetes-validations",
];

function convert(node: Json, path: string): StructuralSchema {
  const where = path === "" ? "<root>" : path;
  for (const key of Object.keys(node)) {
    if (!HANDLED.has(key)) {
      throw new Error(`${where}: JSON Schema keyword "${key}" has no place in a structural CRD schema`);
    }
  }
  const out: Record<string, unknown> = {};
  for (const key of PASSED_THROUGH) {
    if (node[key] !== undefined) out[key] = node[key];
  }
  // zod states the range of a plain z.int() as the safe-integer range; Kubernetes integers are int64.
  if (out.minimum === Number.MIN_SAFE_INTEGER) delete out.minimum;
  if (out.maximum === Number.MAX_SAFE_INTEGER) delete out.maximum;

  if (node.anyOf !== undefined) {
    Object.assign(out, intOrString(node.anyOf, where));
  } else if (node.type === undefined) {
    // z.unknown(): any JSON value, kept as written.
    out["x-kubernetes-preserve-unknown-fields"] = true;
  } else {
    out.type = node.type;
  }

  if (node.type === "array") {
    if (!isJson(node.items)) throw new Error(`${where}: an array needs one items schema`);
    out.items = convert(node.items, `${path}[]`);
  }
  if (node.type === "object") Object.assign(out, objectParts(node, path));
  return ordered(out);
}

function objectParts(node: Json, path: string): Json {
  const out: Json = {};
  const props = node.properties;
  if (isJson(props) && Object.keys(props).length > 0) {
    const converted: Record<string, StructuralSchema> = {};
    for (const [name, child] of Object.entries(props)) {
      const childPath = path === "" ? name : `${path}.${name}`;
      if (!isJson(child)) throw new Error(`${childPath}: not a schema`);
      const c = convert(child, childPath);
      if (!c.description)
        throw new Error(`${childPath}: every field needs a description (kubectl explain shows it)`);
      converted[name] = c;
    }
    out.properties = converted;
  }
  if (Array.isArray(node.required) && node.required.length > 0) out.required = node.required;

  const extra = node.additionalProperties;
  if (isJson(extra)) {
    if (Object.keys(extra).length === 0 || extra["x-kubernetes-preserve-unknown-fields"] === true) {
      // z.looseObject() or a record of z.unknown(): unknown keys are kept, not pruned.
      out["x-kubernetes-preserve-unknown-fields"] = true;
    } else {
      out.additionalProperties = convert(extra, `${path}.*`);
    }
  } else if (extra !== undefined && extra !== false) {
    throw new Error(`${path}: unsupported additionalProperties ${JSON.stringify(extra)}`);
  }
  if (out.properties !== undefined && out.additionalProperties !== undefined) {
    throw new Error(`${path}: a structural schema cannot have both properties and additionalProperties`);
  }
  return out;
}

/**
 * Kubernetes spells "an integer or a string" as x-kubernetes-int-or-string. The bounds of both
 * branches stay on the node: the API server applies numeric ones to integers and string ones to
 * strings.
 */
function intOrString(anyOf: unknown, where: string): Json {
  const branches = Array.isArray(anyOf) ? anyOf.filter(isJson) : [];
  const integer = branches.find((b) => b.type === "integer");
  const string = branches.find((b) => b.type === "string");
  if (branches.length !== 2 || integer === undefined || string === undefined) {
    throw new Error(`${where}: the only union a structural schema allows is integer | string`);
  }
  const out: Json = {
    "x-kubernetes-int-or-string": true,
    anyOf: [{ type: "integer" }, { type: "string" }],
  };
  const take = (branch: Json, keys: readonly string[]) => {
    for (const [k, v] of Object.entries(branch)) {
      if (k === "type") continue;
      if (!keys.includes(k)) throw new Error(`${where}: "${k}" in an int-or-string branch is not supported`);
      out[k] = v;
    }
  };
  take(integer, ["minimum", "maximum"]);
  take(string, ["format", "pattern", "minLength", "maxLength"]);
  if (out.minimum === Number.MIN_SAFE_INTEGER) delete out.minimum;
  if (out.maximum === Number.MAX_SAFE_INTEGER) delete out.maximum;
  return out;
}

function ordered(node: Record<string, unknown>): StructuralSchema {
  const out: Record<string, unknown> = {};
  for (const key of KEY_ORDER) {
    if (node[key] !== undefined) out[key] = node[key];
  }
  return out as StructuralSchema;
}

function isJson(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
