import { describe, expect, it } from "vitest";
import { z } from "zod";
import { withRules } from "../../../src/api/cel.ts";
import { toStructuralSchema } from "../../../src/api/openapi.ts";

describe("toStructuralSchema", () => {
  it("keeps any JSON value as preserve-unknown-fields, and a nullable one as nullable", () => {
    expect(toStructuralSchema(z.object({ v: z.unknown().nullable().optional().describe("v") }))).toEqual({
      type: "object",
      properties: { v: { description: "v", nullable: true, "x-kubernetes-preserve-unknown-fields": true } },
    });
  });

  it("turns a record of any JSON values into an object that keeps unknown fields", () => {
    expect(toStructuralSchema(z.record(z.string(), z.unknown()))).toEqual({
      type: "object",
      "x-kubernetes-preserve-unknown-fields": true,
    });
  });

  it("writes integer | string as x-kubernetes-int-or-string with the bounds of both branches", () => {
    expect(toStructuralSchema(z.union([z.int().min(1).max(9), z.string().max(5)]))).toEqual({
      minimum: 1,
      maximum: 9,
      maxLength: 5,
      "x-kubernetes-int-or-string": true,
      anyOf: [{ type: "integer" }, { type: "string" }],
    });
  });

  it("writes a nullable string as nullable", () => {
    expect(toStructuralSchema(z.string().nullable())).toEqual({ type: "string", nullable: true });
  });

  it("does not write zod's safe-integer range for a plain integer", () => {
    expect(toStructuralSchema(z.int())).toEqual({ type: "integer" });
  });

  it("writes defaulted fields as optional, with their default", () => {
    expect(toStructuralSchema(z.object({ n: z.int().min(0).default(3).describe("n") }))).toEqual({
      type: "object",
      properties: { n: { description: "n", type: "integer", default: 3, minimum: 0 } },
    });
  });

  it("carries CEL rules, appending to the rules a schema already has", () => {
    const once = withRules(z.object({ a: z.int().optional().describe("a") }), [
      { rule: "has(self.a)", message: "a is required", holds: (s) => s.a !== undefined },
    ]);
    const twice = withRules(once, [{ rule: "self.a > 0", message: "a must be positive", fieldPath: ".a" }]);
    expect(toStructuralSchema(twice)["x-kubernetes-validations"]).toEqual([
      { rule: "has(self.a)", message: "a is required" },
      { rule: "self.a > 0", message: "a must be positive", fieldPath: ".a" },
    ]);
    expect(twice.safeParse({}).success).toBe(false);
  });

  const refused: { name: string; schema: z.ZodType; error: RegExp }[] = [
    {
      name: "a field without a description",
      schema: z.object({ a: z.string() }),
      error: /a: every field needs a description/,
    },
    {
      name: "a union other than integer | string",
      schema: z.union([z.string(), z.boolean()]),
      error: /integer \| string/,
    },
    { name: "a Date, which JSON cannot carry", schema: z.date(), error: /Date/ },
    { name: "a recursive schema, which needs $ref", schema: z.json(), error: /[Cc]ycle/ },
    { name: "a union of objects", schema: z.union([z.object({}), z.object({})]), error: /integer \| string/ },
  ];
  it.each(refused)("refuses $name instead of dropping it", ({ schema, error }) => {
    expect(() => toStructuralSchema(schema)).toThrow(error);
  });
});
