/**
 * Renders the daylight-saving table of tests/unit/schedule/dst-cases.ts into docs/schedules.md
 * (between its dst-table markers), formatted as `prettier --check` expects. `npm run
 * docs:schedules`; tests/unit/schedule/dst-table.test.ts fails when the two differ.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as prettier from "prettier";
import { withDstTable } from "../tests/unit/schedule/dst-cases.ts";

const path = fileURLToPath(new URL("../docs/schedules.md", import.meta.url));
const before = readFileSync(path, "utf8");
const options = (await prettier.resolveConfig(path)) ?? {};
const after = await prettier.format(withDstTable(before), { ...options, filepath: path });
if (after !== before) writeFileSync(path, after);
process.stdout.write(after === before ? "docs/schedules.md is up to date\n" : "docs/schedules.md updated\n");
