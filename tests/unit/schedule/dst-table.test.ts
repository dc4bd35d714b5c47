import { readFileSync } from "node:fs";
import { expect, test } from "vitest";
import { DST_CASES, currentDstTable, renderDstTable, tableCells } from "./dst-cases.ts";

test("docs/schedules.md shows exactly the DST table the tests run (after editing dst-cases.ts, run npm run docs:schedules)", () => {
  const doc = readFileSync(new URL("../../../docs/schedules.md", import.meta.url), "utf8");
  const table = currentDstTable(doc);
  expect(table, "the dst-table markers in docs/schedules.md").not.toBeNull();
  const cells = tableCells(table ?? "");
  expect(cells).toHaveLength(DST_CASES.length + 1);
  expect(cells).toEqual(tableCells(renderDstTable()));
});
