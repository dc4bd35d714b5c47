/**
 * What fills a V8 heap: reads a `.heapsnapshot` (from `node --heapsnapshot-signal`,
 * `v8.writeHeapSnapshot()` or Chrome DevTools) and prints, as markdown,
 *
 * - the heap by node type (objects, strings, code, arrays, ...);
 * - the largest groups by constructor (or kind, for strings, code and V8 internals), with their
 *   self size and the size they retain (as DevTools' Summary view computes it: nodes dominated by
 *   another node of the same group are counted once, in that node);
 * - the largest single retainers, each with its dominator chain up to a GC root, e.g.
 *   `Informer › #store › ObjectStore › #objects › Map`.
 *
 * - what the largest of them (`--inside`, default 3) hold, by group.
 *
 *   node bench/heap-summary.ts FILE.heapsnapshot [--top 25] [--inside 3]
 *
 * Hand-written rather than a library: the snapshots of a controller holding 40,000 objects are
 * larger than the longest string V8 can JSON.parse, and no maintained npm package reads the format
 * as a stream (DevTools' own reader lives in the Chromium front end). The format is documented in
 * the snapshot's own `meta` (node and edge field names and types), which is what this reads.
 */
import { createReadStream } from "node:fs";
import { parseArgs } from "node:util";

interface Meta {
  node_fields: string[];
  node_types: [string[], ...unknown[]];
  edge_fields: string[];
  edge_types: [string[], ...unknown[]];
}

interface Snapshot {
  meta: Meta;
  nodes: Float64Array;
  edges: Float64Array;
  strings: string[];
}

/**
 * Streams the file once: the header is small JSON, `nodes` and `edges` are long arrays of
 * non-negative integers (read straight into typed arrays), `strings` an array of JSON strings.
 */
async function readSnapshot(path: string): Promise<Snapshot> {
  let meta: Meta | undefined;
  let counts = { nodes: 0, edges: 0 };
  let mode: "header" | "seek" | "numbers" | "strings" = "header";
  let pending = "";
  let target: "nodes" | "edges" = "nodes";
  const arrays: { nodes: Float64Array; edges: Float64Array } = {
    nodes: new Float64Array(0),
    edges: new Float64Array(0),
  };
  let filled = 0;
  let number = -1;
  const strings: string[] = [];
  let inString = false;
  let escaped = false;
  let piece = "";
  let stringsDone = false;

  /** Allocates the typed array for `which`; returns the mode that fills it. */
  const startNumbers = (which: "nodes" | "edges"): "numbers" => {
    if (!meta) throw new Error(`${path}: no snapshot meta before "${which}"`);
    const fields = which === "nodes" ? meta.node_fields.length : meta.edge_fields.length;
    arrays[which] = new Float64Array(counts[which] * fields);
    target = which;
    filled = 0;
    number = -1;
    return "numbers";
  };

  for await (const chunk of createReadStream(path, { encoding: "utf8", highWaterMark: 1 << 22 })) {
    let text = pending + (chunk as string);
    pending = "";
    let i = 0;
    while (i < text.length && !stringsDone) {
      if (mode === "header") {
        const at = text.indexOf('"nodes":[');
        if (at < 0) {
          pending = text;
          break;
        }
        const head = `${text.slice(0, at).trimEnd().replace(/,$/, "")}}`;
        const parsed = JSON.parse(head) as {
          snapshot: { meta: Meta; node_count: number; edge_count: number };
        };
        meta = parsed.snapshot.meta;
        counts = { nodes: parsed.snapshot.node_count, edges: parsed.snapshot.edge_count };
        text = text.slice(at + '"nodes":['.length);
        i = 0;
        mode = startNumbers("nodes");
      } else if (mode === "seek") {
        const marker = target === "nodes" ? '"edges":[' : '"strings":[';
        const at = text.indexOf(marker, i);
        if (at < 0) {
          pending = text.slice(Math.max(i, text.length - marker.length));
          break;
        }
        i = at + marker.length;
        mode = target === "nodes" ? startNumbers("edges") : "strings";
      } else if (mode === "numbers") {
        const out = arrays[target];
        for (; i < text.length; i++) {
          const c = text.charCodeAt(i);
          if (c >= 48 && c <= 57) {
            number = number < 0 ? c - 48 : number * 10 + (c - 48);
            continue;
          }
          if (number >= 0) {
            out[filled++] = number;
            number = -1;
          }
          if (c === 93 /* ] */) {
            if (filled !== out.length) {
              throw new Error(`${path}: "${target}" has ${filled} numbers, the meta says ${out.length}`);
            }
            mode = "seek";
            i++;
            break;
          }
        }
      } else {
        let start = i;
        for (; i < text.length; i++) {
          const c = text.charCodeAt(i);
          if (inString) {
            if (escaped) escaped = false;
            else if (c === 92 /* \ */) escaped = true;
            else if (c === 34 /* " */) {
              strings.push(JSON.parse(`"${piece}${text.slice(start, i)}"`) as string);
              piece = "";
              inString = false;
            }
          } else if (c === 34) {
            inString = true;
            start = i + 1;
          } else if (c === 93) {
            stringsDone = true;
            break;
          }
        }
        if (inString) piece += text.slice(start);
      }
    }
  }
  if (!meta || !stringsDone) throw new Error(`${path}: not a complete heap snapshot`);
  return { meta, nodes: arrays.nodes, edges: arrays.edges, strings };
}

/** Immediate dominators (Lengauer–Tarjan, simple version) over the non-weak edges, from node 0. */
function dominators(
  nodeCount: number,
  firstEdge: Int32Array,
  edgeTarget: Int32Array,
  edgeUsable: Uint8Array,
): { order: Int32Array; idom: Int32Array; reached: number } {
  // DFS numbering from the root (node 0): number[node] = 1..n, order[number] = node.
  const number = new Int32Array(nodeCount);
  const order = new Int32Array(nodeCount + 1);
  const parent = new Int32Array(nodeCount + 1);
  const stackNode = new Int32Array(nodeCount);
  const stackEdge = new Int32Array(nodeCount);
  let n = 0;
  let top = 0;
  number[0] = ++n;
  order[n] = 0;
  stackNode[0] = 0;
  stackEdge[0] = firstEdge[0] ?? 0;
  while (top >= 0) {
    const v = stackNode[top] ?? 0;
    const e = stackEdge[top] ?? 0;
    if (e >= (firstEdge[v + 1] ?? 0)) {
      top--;
      continue;
    }
    stackEdge[top] = e + 1;
    if (!edgeUsable[e]) continue;
    const w = edgeTarget[e] ?? 0;
    if (number[w] !== 0) continue;
    number[w] = ++n;
    order[n] = w;
    parent[n] = number[v] ?? 0;
    top++;
    stackNode[top] = w;
    stackEdge[top] = firstEdge[w] ?? 0;
  }
  // Predecessors in DFS numbers.
  const predCount = new Int32Array(n + 2);
  for (let v = 0; v < nodeCount; v++) {
    if (number[v] === 0) continue;
    for (let e = firstEdge[v] ?? 0; e < (firstEdge[v + 1] ?? 0); e++) {
      const w = number[edgeTarget[e] ?? 0] ?? 0;
      if (edgeUsable[e] && w !== 0) predCount[w + 1] = (predCount[w + 1] ?? 0) + 1;
    }
  }
  for (let i = 1; i < predCount.length; i++) predCount[i] = (predCount[i] ?? 0) + (predCount[i - 1] ?? 0);
  const preds = new Int32Array(predCount[n + 1] ?? 0);
  const fill = predCount.slice();
  for (let v = 0; v < nodeCount; v++) {
    const from = number[v] ?? 0;
    if (from === 0) continue;
    for (let e = firstEdge[v] ?? 0; e < (firstEdge[v + 1] ?? 0); e++) {
      const w = number[edgeTarget[e] ?? 0] ?? 0;
      if (edgeUsable[e] && w !== 0) preds[(fill[w] = (fill[w] ?? 0) + 1) - 1] = from;
    }
  }
  const semi = new Int32Array(n + 1);
  const label = new Int32Array(n + 1);
  const ancestor = new Int32Array(n + 1);
  const idom = new Int32Array(n + 1);
  const bucketHead = new Int32Array(n + 1);
  const bucketNext = new Int32Array(n + 1);
  for (let i = 1; i <= n; i++) {
    semi[i] = i;
    label[i] = i;
  }
  const path: number[] = [];
  const evaluate = (v: number): number => {
    if (ancestor[v] === 0) return v;
    // Path compression, iteratively: the ancestors of v that have ancestors themselves.
    let x = v;
    while ((ancestor[ancestor[x] ?? 0] ?? 0) !== 0) {
      path.push(x);
      x = ancestor[x] ?? 0;
    }
    for (let k = path.length - 1; k >= 0; k--) {
      const y = path[k] ?? 0;
      const a = ancestor[y] ?? 0;
      if ((semi[label[a] ?? 0] ?? 0) < (semi[label[y] ?? 0] ?? 0)) label[y] = label[a] ?? 0;
      ancestor[y] = ancestor[a] ?? 0;
    }
    path.length = 0;
    return label[v] ?? 0;
  };
  for (let w = n; w >= 2; w--) {
    for (let k = predCount[w] ?? 0; k < (predCount[w + 1] ?? 0); k++) {
      const u = evaluate(preds[k] ?? 0);
      if ((semi[u] ?? 0) < (semi[w] ?? 0)) semi[w] = semi[u] ?? 0;
    }
    const s = semi[w] ?? 0;
    bucketNext[w] = bucketHead[s] ?? 0;
    bucketHead[s] = w;
    const p = parent[w] ?? 0;
    ancestor[w] = p;
    for (let v = bucketHead[p] ?? 0; v !== 0; v = bucketNext[v] ?? 0) {
      const u = evaluate(v);
      idom[v] = (semi[u] ?? 0) < (semi[v] ?? 0) ? u : p;
    }
    bucketHead[p] = 0;
  }
  for (let w = 2; w <= n; w++) {
    if (idom[w] !== semi[w]) idom[w] = idom[idom[w] ?? 0] ?? 0;
  }
  return { order, idom, reached: n };
}

const mb = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MB`;

function summarize(snapshot: Snapshot, top: number, inside: number): string {
  const { meta, nodes, edges, strings } = snapshot;
  const nf = meta.node_fields.length;
  const ef = meta.edge_fields.length;
  const nodeTypes = meta.node_types[0];
  const edgeTypes = meta.edge_types[0];
  const [TYPE, NAME, SELF, EDGES] = ["type", "name", "self_size", "edge_count"].map((f) =>
    meta.node_fields.indexOf(f),
  ) as [number, number, number, number];
  const [E_TYPE, E_NAME, E_TO] = ["type", "name_or_index", "to_node"].map((f) =>
    meta.edge_fields.indexOf(f),
  ) as [number, number, number];
  const nodeCount = nodes.length / nf;
  const edgeCount = edges.length / ef;
  const firstEdge = new Int32Array(nodeCount + 1);
  for (let v = 0; v < nodeCount; v++) firstEdge[v + 1] = (firstEdge[v] ?? 0) + (nodes[v * nf + EDGES] ?? 0);
  const edgeTarget = new Int32Array(edgeCount);
  const edgeUsable = new Uint8Array(edgeCount);
  const weak = edgeTypes.indexOf("weak");
  for (let e = 0; e < edgeCount; e++) {
    edgeTarget[e] = (edges[e * ef + E_TO] ?? 0) / nf;
    edgeUsable[e] = edges[e * ef + E_TYPE] === weak ? 0 : 1;
  }
  const type = (v: number): string => nodeTypes[nodes[v * nf + TYPE] ?? 0] ?? "?";
  const self = (v: number): number => nodes[v * nf + SELF] ?? 0;
  const name = (v: number): string => strings[nodes[v * nf + NAME] ?? 0] ?? "";
  /** DevTools' grouping: constructor name for objects and closures, a kind for the rest. */
  const group = (v: number): string => {
    const t = type(v);
    switch (t) {
      case "object":
      case "native":
        return name(v);
      case "closure":
        return `${name(v) || "(anonymous)"}()`;
      case "string":
      case "concatenated string":
      case "sliced string":
        return "(string)";
      case "code":
        return "(compiled code)";
      case "array":
        return `(array${name(v) ? ` ${name(v)}` : ""})`;
      case "hidden":
        return `(${name(v) || "system"})`;
      default:
        return `(${t})`;
    }
  };
  const edgeName = (e: number): string => {
    const t = edgeTypes[edges[e * ef + E_TYPE] ?? 0];
    const value = edges[e * ef + E_NAME] ?? 0;
    return t === "element" || t === "hidden" ? `[${value}]` : (strings[value] ?? "?");
  };

  const { order, idom, reached } = dominators(nodeCount, firstEdge, edgeTarget, edgeUsable);
  const retained = new Float64Array(reached + 1);
  for (let i = 1; i <= reached; i++) retained[i] = self(order[i] ?? 0);
  for (let i = reached; i >= 2; i--)
    retained[idom[i] ?? 0] = (retained[idom[i] ?? 0] ?? 0) + (retained[i] ?? 0);

  let total = 0;
  const byType = new Map<string, { self: number; count: number }>();
  const byGroup = new Map<string, { self: number; count: number; retained: number }>();
  for (let i = 1; i <= reached; i++) {
    const v = order[i] ?? 0;
    const size = self(v);
    total += size;
    const t = byType.get(type(v)) ?? { self: 0, count: 0 };
    t.self += size;
    t.count++;
    byType.set(type(v), t);
    const g = group(v);
    const entry = byGroup.get(g) ?? { self: 0, count: 0, retained: 0 };
    entry.self += size;
    entry.count++;
    // Counted once per group: a node dominated by a node of its own group is inside that one.
    if (i === 1 || group(order[idom[i] ?? 0] ?? 0) !== g) entry.retained += retained[i] ?? 0;
    byGroup.set(g, entry);
  }

  const lines: string[] = [];
  lines.push(`Reachable heap: ${mb(total)} in ${reached.toLocaleString("en")} nodes.`, "");
  lines.push("| node type | self size | share | count |", "| --- | --: | --: | --: |");
  for (const [t, { self: s, count }] of [...byType].sort((a, b) => b[1].self - a[1].self)) {
    lines.push(`| ${t} | ${mb(s)} | ${((100 * s) / total).toFixed(1)} % | ${count.toLocaleString("en")} |`);
  }
  lines.push("", "| group (constructor) | count | self size | retained size |", "| --- | --: | --: | --: |");
  for (const [g, e] of [...byGroup].sort((a, b) => b[1].self - a[1].self).slice(0, top)) {
    lines.push(
      `| ${g.replaceAll("|", "\\|").slice(0, 80)} | ${e.count.toLocaleString("en")} | ${mb(e.self)} | ${mb(e.retained)} |`,
    );
  }
  // The largest retainers that are not just a GC root or a wrapper of the next one in the list.
  const candidates: number[] = [];
  for (let i = 2; i <= reached; i++) if ((retained[i] ?? 0) >= total / 100) candidates.push(i);
  candidates.sort((a, b) => (retained[b] ?? 0) - (retained[a] ?? 0));
  const edgeFromDominator = (i: number): string => {
    const d = order[idom[i] ?? 0] ?? 0;
    const v = order[i] ?? 0;
    for (let e = firstEdge[d] ?? 0; e < (firstEdge[d + 1] ?? 0); e++)
      if (edgeTarget[e] === v) return edgeName(e);
    return "…";
  };
  const chain = (i: number): string => {
    const parts: string[] = [];
    for (let k = i; k > 1 && parts.length < 16; k = idom[k] ?? 1) {
      parts.unshift(`${edgeFromDominator(k)} → ${group(order[k] ?? 0)}`);
    }
    return parts.join(" › ");
  };
  // Source text shows up here: V8 keeps every loaded script's source for lazy compilation.
  const stringNodes: number[] = [];
  for (let i = 1; i <= reached; i++) if (group(order[i] ?? 0) === "(string)") stringNodes.push(order[i] ?? 0);
  stringNodes.sort((a, b) => self(b) - self(a));
  lines.push("", "| largest strings | size | starts with |", "| --: | --: | --- |");
  for (const [rank, v] of stringNodes.slice(0, Math.min(10, top)).entries()) {
    const text = JSON.stringify(name(v).slice(0, 60)).replaceAll("|", "\\|");
    lines.push(`| ${rank + 1} | ${mb(self(v))} | \`${text}\` |`);
  }
  lines.push("", "| retains | self | node | dominator chain (from a GC root) |", "| --: | --: | --- | --- |");
  for (const i of candidates.slice(0, top)) {
    const v = order[i] ?? 0;
    lines.push(
      `| ${mb(retained[i] ?? 0)} | ${mb(self(v))} | ${group(v).replaceAll("|", "\\|").slice(0, 60)} | ${chain(i).replaceAll("|", "\\|")} |`,
    );
  }
  // What the largest retainers hold: their dominator subtrees by group. A retainer whose dominator
  // is listed already is inside it and skipped.
  const children: number[][] = Array.from({ length: reached + 1 }, () => []);
  for (let i = 2; i <= reached; i++) children[idom[i] ?? 1]?.push(i);
  const shown = new Set<number>();
  const isInside = (i: number): boolean => {
    for (let k = idom[i] ?? 1; k > 1; k = idom[k] ?? 1) if (shown.has(k)) return true;
    return false;
  };
  for (const i of candidates.filter((c) => group(order[c] ?? 0) !== "(string)")) {
    if (shown.size >= inside) break;
    if (isInside(i)) continue;
    shown.add(i);
    const parts = new Map<string, { self: number; count: number }>();
    for (const stack = [i]; stack.length > 0;) {
      const k = stack.pop() ?? 1;
      const g = group(order[k] ?? 0);
      const part = parts.get(g) ?? { self: 0, count: 0 };
      part.self += self(order[k] ?? 0);
      part.count++;
      parts.set(g, part);
      stack.push(...(children[k] ?? []));
    }
    lines.push("", `Inside ${chain(i).replaceAll("|", "\\|")} (${mb(retained[i] ?? 0)}):`, "");
    lines.push("| group | count | self size |", "| --- | --: | --: |");
    for (const [g, part] of [...parts].sort((a, b) => b[1].self - a[1].self).slice(0, 12)) {
      lines.push(
        `| ${g.replaceAll("|", "\\|").slice(0, 60)} | ${part.count.toLocaleString("en")} | ${mb(part.self)} |`,
      );
    }
  }
  return lines.join("\n");
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: "string", default: "25" }, inside: { type: "string", default: "3" } },
});
for (const file of positionals) {
  const started = performance.now();
  const snapshot = await readSnapshot(file);
  console.log(`## ${file}\n`);
  console.log(summarize(snapshot, Number(values.top), Number(values.inside)));
  console.error(`(read and analysed in ${((performance.now() - started) / 1000).toFixed(1)} s)`);
}
if (positionals.length === 0) {
  console.error("usage: node bench/heap-summary.ts FILE.heapsnapshot [more files] [--top 25] [--inside 3]");
  process.exitCode = 2;
}
