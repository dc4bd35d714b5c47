import { readdir, readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";

const root = new URL("../../", import.meta.url);
const source = new URL("crds/", root);
const chart = new URL("charts/cadent/crds/", root);
const FIX = "copy them again: cp crds/*.yaml charts/cadent/crds/";

const yamlFiles = async (dir: URL): Promise<string[]> =>
  (await readdir(dir)).filter((name) => name.endsWith(".yaml")).sort();

describe("the Helm chart's CRDs", async () => {
  const names = await yamlFiles(source);

  it("are the same files as crds/", async () => {
    expect(await yamlFiles(chart), FIX).toEqual(names);
  });

  it.each(names)("%s is byte-for-byte the generated CRD", async (name) => {
    const [generated, copied] = await Promise.all([
      readFile(new URL(name, source), "utf8"),
      readFile(new URL(name, chart), "utf8"),
    ]);
    expect(copied === generated, `charts/cadent/crds/${name} differs from crds/${name}: ${FIX}`).toBe(true);
  });
});
