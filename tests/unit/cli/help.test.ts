import type { Command } from "commander";
import { afterEach, describe, expect, it, vi } from "vitest";
import { buildProgram, runCli } from "../../../src/cli/program.ts";

/** Every command path under the program: ["controller"], ["schedule"], ["schedule", "next"], ... */
function verbs(command: Command, path: string[] = []): string[][] {
  return command.commands.flatMap((sub) => {
    const here = [...path, sub.name()];
    return [here, ...verbs(sub, here)];
  });
}

const VERBS = verbs(buildProgram());

afterEach(() => {
  vi.restoreAllMocks();
});

describe("--help", () => {
  it("finds the verbs the contract names (so the table below cannot be empty)", () => {
    expect(VERBS.map((v) => v.join(" "))).toEqual(
      expect.arrayContaining(["controller", "schedule next", "run-now", "import django-celery-beat"]),
    );
  });

  it.each(VERBS.map((path) => ({ verb: path.join(" "), path })))(
    "cadent $verb --help prints a Usage line naming the verb and exits 0",
    async ({ verb, path }) => {
      let out = "";
      vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
        out += String(chunk);
        return true;
      });
      const code = await runCli(["node", "cadent", ...path, "--help"]);
      expect(code).toBe(0);
      expect(out).toMatch(new RegExp(`^Usage: cadent ${verb} `, "m"));
    },
  );
});
