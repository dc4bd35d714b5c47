import { readFileSync } from "node:fs";
import { request, type RequestOptions } from "node:https";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { parsePeriodicTask, parseTask } from "../../src/api/parse.ts";
import {
  INVALID_MANIFESTS,
  INVALID_STATUSES,
  VALID_EDGE_CASES,
  exampleManifests,
  task,
  type Manifest,
} from "../fixtures/api-manifests.ts";
import { createTestNamespace, k8s, kubeConfig } from "../support/kube.ts";
import { waitFor } from "../support/ports.ts";

const CRD_NAMES = ["tasks.cadent.dev", "periodictasks.cadent.dev"] as const;
const API = "/apis/cadent.dev/v1alpha1";
/** What `kubectl get` asks for: the server renders the printer columns. */
const TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io";
const MERGE_PATCH = "application/merge-patch+json";

interface Reply {
  status: number;
  body: unknown;
}

/**
 * One raw API request. client-node's typed models rename or drop CRD schema keys (`default`,
 * `x-kubernetes-*`) when they serialize, and cannot ask for Table output, so these tests send
 * the bytes a user's kubectl would.
 */
async function call(
  kc: k8s.KubeConfig,
  method: string,
  path: string,
  options: { body?: unknown; contentType?: string; accept?: string } = {},
): Promise<Reply> {
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new Error("the kubeconfig has no current cluster");
  const https: RequestOptions = {};
  await kc.applyToHTTPSOptions(https);
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, server),
      {
        ...https,
        method,
        headers: {
          ...https.headers,
          accept: options.accept ?? "application/json",
          ...(payload === undefined ? {} : { "content-type": options.contentType ?? "application/json" }),
        },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (text += chunk));
        res.on("end", () => {
          let body: unknown = text;
          try {
            body = JSON.parse(text);
          } catch {
            // Not JSON: keep the text for the failure message.
          }
          resolve({ status: res.statusCode ?? 0, body });
        });
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}

function field(value: unknown, ...path: (string | number)[]): unknown {
  let v = value;
  for (const key of path) {
    if (typeof v !== "object" || v === null) return undefined;
    v = (v as Record<string | number, unknown>)[key];
  }
  return v;
}

/** The Status message of a refusal, or the whole body when there is none. */
function messageOf(reply: Reply): string {
  const m = field(reply.body, "message");
  return typeof m === "string" ? m : JSON.stringify(reply.body);
}

function expectStatus(reply: Reply, status: number): void {
  if (reply.status !== status) {
    throw new Error(`expected HTTP ${status}, got ${reply.status}: ${messageOf(reply)}`);
  }
}

function pluralOf(m: Manifest): string {
  return m.kind === "Task" ? "tasks" : "periodictasks";
}

describe("the cadent CRDs on a real API server", () => {
  const kc = kubeConfig();
  let ns: Awaited<ReturnType<typeof createTestNamespace>>;
  const collection = (m: Manifest) => `${API}/namespaces/${ns.name}/${pluralOf(m)}`;
  const create = (m: Manifest, query = "") =>
    call(kc, "POST", `${collection(m)}${query}`, {
      body: { ...m, metadata: { ...m.metadata, namespace: ns.name } },
    });

  beforeAll(async () => {
    // Server-side apply under one field manager: idempotent, whichever test file installs them first.
    for (const name of CRD_NAMES) {
      const crd: unknown = parseYaml(
        readFileSync(new URL(`../../crds/${name}.yaml`, import.meta.url), "utf8"),
      );
      const reply = await call(
        kc,
        "PATCH",
        `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}?fieldManager=cadent-tests&force=true`,
        { body: crd, contentType: "application/apply-patch+yaml" },
      );
      if (reply.status !== 200 && reply.status !== 201) {
        throw new Error(`installing CRD ${name} failed with HTTP ${reply.status}: ${messageOf(reply)}`);
      }
    }
    await waitFor(
      "both CRDs to be Established and served",
      async () => {
        for (const name of CRD_NAMES) {
          const crd = await call(
            kc,
            "GET",
            `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`,
          );
          if (!conditionIsTrue(crd.body, "Established")) return false;
        }
        const discovery = await call(kc, "GET", API);
        const served = field(discovery.body, "resources");
        return Array.isArray(served) && served.length >= 4; // tasks, tasks/status, periodictasks, periodictasks/status
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    ns = await createTestNamespace(kc, "api-crds");
  });

  afterAll(async () => {
    await ns?.cleanup();
  });

  function conditionIsTrue(obj: unknown, type: string): boolean {
    const conditions = field(obj, "status", "conditions");
    return (
      Array.isArray(conditions) &&
      conditions.some((c) => field(c, "type") === type && field(c, "status") === "True")
    );
  }

  describe("installation", () => {
    it.each(CRD_NAMES)("%s is Established, its names accepted, and its schema structural", async (name) => {
      const crd = await call(kc, "GET", `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
      expect(conditionIsTrue(crd.body, "Established")).toBe(true);
      expect(conditionIsTrue(crd.body, "NamesAccepted")).toBe(true);
      expect(conditionIsTrue(crd.body, "NonStructuralSchema")).toBe(false);
    });

    it("serves both kinds in the cadent category, PeriodicTask with short names ptask and pt", async () => {
      const discovery = await call(kc, "GET", API);
      const resources = field(discovery.body, "resources");
      if (!Array.isArray(resources)) throw new Error(`no resources in ${JSON.stringify(discovery.body)}`);
      const byName = (n: string) => resources.find((r) => field(r, "name") === n) as unknown;
      expect(field(byName("tasks"), "categories")).toEqual(["cadent"]);
      expect(field(byName("periodictasks"), "categories")).toEqual(["cadent"]);
      expect(field(byName("periodictasks"), "shortNames")).toEqual(["ptask", "pt"]);
    });
  });

  describe("examples/", () => {
    it.each(exampleManifests())(
      "accepts $file and stores the same defaults zod applies",
      async ({ manifest }) => {
        const reply = await create(manifest);
        expectStatus(reply, 201);
        const parsed = manifest.kind === "Task" ? parseTask(manifest) : parsePeriodicTask(manifest);
        if (!parsed.ok) throw new Error(parsed.error);
        expect(field(reply.body, "spec")).toEqual(parsed.value.spec);
      },
    );
  });

  describe("edge cases", () => {
    it.each(VALID_EDGE_CASES)("accepts $name", async ({ manifest }) => {
      expectStatus(await create(manifest, "?dryRun=All"), 201);
    });
  });

  describe("invalid manifests", () => {
    it.each(INVALID_MANIFESTS)("refuses $name with 422, naming $path", async ({ manifest, path }) => {
      const reply = await create(manifest, "?dryRun=All");
      expect(reply.status, messageOf(reply)).toBe(422);
      expect(messageOf(reply)).toContain(path);
    });
  });

  describe("invalid statuses", () => {
    beforeAll(async () => {
      // A status is written on an object that exists: one of each kind, shared by the cases.
      const owners = new Map(INVALID_STATUSES.map(({ manifest: m }) => [`${m.kind}/${m.metadata.name}`, m]));
      for (const owner of owners.values()) expectStatus(await create(owner), 201);
    });
    const writeStatus = (m: Manifest, status: Record<string, unknown>) =>
      call(kc, "PATCH", `${collection(m)}/${m.metadata.name}/status?dryRun=All`, {
        body: { status },
        contentType: MERGE_PATCH,
      });

    it.each(INVALID_STATUSES)("refuses $name with 422, naming $path", async ({ manifest, status, path }) => {
      const reply = await writeStatus(manifest, status);
      expect(reply.status, messageOf(reply)).toBe(422);
      expect(messageOf(reply)).toContain(path);
    });

    it("accepts status times with a lowercase t and z, as zod does", async () => {
      const manifest = INVALID_STATUSES.find((c) => c.manifest.kind === "Task")?.manifest;
      if (manifest === undefined) throw new Error("no Task among the status cases");
      const status = { startTime: "2026-12-01t06:00:00z", completionTime: "2026-12-01t06:00:05.5z" };
      expectStatus(await writeStatus(manifest, status), 200);
      expect(parseTask({ ...manifest, status })).toMatchObject({ ok: true });
    });
  });

  describe("a Task's spec is immutable", () => {
    const original = task({ task: "app.tasks.add", args: [1, 2] }, "immutable");
    let stored: unknown;

    beforeAll(async () => {
      const reply = await create(original);
      expectStatus(reply, 201);
      stored = reply.body;
    });
    const url = () => `${collection(original)}/${original.metadata.name}`;

    it("refuses an update that changes the spec, naming spec", async () => {
      const changed = { ...(stored as object), spec: { ...(field(stored, "spec") as object), args: [3, 4] } };
      const reply = await call(kc, "PUT", url(), { body: changed });
      expect(reply.status).toBe(422);
      expect(messageOf(reply)).toMatch(/spec: .*spec is immutable/);
    });

    it("refuses a merge patch that adds a field to the spec", async () => {
      const reply = await call(kc, "PATCH", url(), {
        body: { spec: { priority: 3 } },
        contentType: MERGE_PATCH,
      });
      expect(reply.status).toBe(422);
      expect(messageOf(reply)).toContain("spec is immutable");
    });

    it("accepts applying the same manifest again", async () => {
      const reply = await call(kc, "PATCH", `${url()}?fieldManager=cadent-tests`, {
        body: { ...original, metadata: { ...original.metadata, namespace: ns.name } },
        contentType: "application/apply-patch+yaml",
      });
      expectStatus(reply, 200);
    });

    it("accepts changes to labels and to status", async () => {
      expectStatus(
        await call(kc, "PATCH", url(), {
          body: { metadata: { labels: { team: "a" } } },
          contentType: MERGE_PATCH,
        }),
        200,
      );
      expectStatus(
        await call(kc, "PATCH", `${url()}/status`, {
          body: { status: { phase: "Queued" } },
          contentType: MERGE_PATCH,
        }),
        200,
      );
    });
  });

  // With `format: date-time` on eta, CEL read it as a timestamp, failed on the lowercase t, and so
  // refused every write to such a Task, its status included: the controller could not report on it.
  it("lets a Task with a lowercase eta take label and status writes", async () => {
    const lower = task({ task: "app.tasks.add", eta: "2026-12-01t06:00:00z" }, "lowercase-eta");
    expectStatus(await create(lower), 201);
    const url = `${collection(lower)}/${lower.metadata.name}`;
    const patch = (path: string, body: unknown) =>
      call(kc, "PATCH", path, { body, contentType: MERGE_PATCH });
    expectStatus(await patch(url, { metadata: { labels: { team: "a" } } }), 200);
    expectStatus(await patch(`${url}/status`, { status: { phase: "Scheduled" } }), 200);
  });

  it("lets a PeriodicTask's spec be edited", async () => {
    const pt = exampleManifests().find((e) => e.manifest.kind === "PeriodicTask")?.manifest;
    if (!pt) throw new Error("examples/ has no PeriodicTask");
    const edited: Manifest = { ...pt, metadata: { name: "editable" } };
    expectStatus(await create(edited), 201);
    const reply = await call(kc, "PATCH", `${collection(edited)}/editable`, {
      body: { spec: { suspend: true, schedule: "5 * * * *" } },
      contentType: MERGE_PATCH,
    });
    expectStatus(reply, 200);
    expect(field(reply.body, "spec", "suspend")).toBe(true);
  });

  describe("the printer columns kubectl get shows", () => {
    async function table(m: Manifest, status: Record<string, unknown>): Promise<Map<string, unknown>> {
      expectStatus(await create(m), 201);
      const url = `${collection(m)}/${m.metadata.name}`;
      expectStatus(
        await call(kc, "PATCH", `${url}/status`, { body: { status }, contentType: MERGE_PATCH }),
        200,
      );
      const reply = await call(kc, "GET", url, { accept: TABLE });
      expectStatus(reply, 200);
      expect(field(reply.body, "kind")).toBe("Table");
      const columns = field(reply.body, "columnDefinitions");
      const cells = field(reply.body, "rows", 0, "cells");
      if (!Array.isArray(columns) || !Array.isArray(cells))
        throw new Error(`not a Table: ${JSON.stringify(reply.body)}`);
      // kubectl prints NAME first, from the object; the CRD's columns follow.
      return new Map(columns.map((c, i) => [String(field(c, "name")), cells[i]]));
    }

    it("for a Task: TASK, PHASE, ATTEMPTS, RESULT (the preview), STARTED, AGE", async () => {
      const cells = await table(task({ task: "app.tasks.del_redis_data" }, "table-task"), {
        phase: "Succeeded",
        attempts: 2,
        startTime: "2026-01-01T00:00:00Z",
        result: { deleted: 42 },
        resultPreview: '{"deleted":42}',
      });
      expect([...cells.keys()]).toEqual(["Name", "TASK", "PHASE", "ATTEMPTS", "RESULT", "STARTED", "AGE"]);
      expect(cells.get("TASK")).toBe("app.tasks.del_redis_data");
      expect(cells.get("PHASE")).toBe("Succeeded");
      expect(cells.get("ATTEMPTS")).toBe(2);
      expect(cells.get("RESULT")).toBe('{"deleted":42}');
    });

    it("for a PeriodicTask: NEXT RUN as a time, LAST RESULT from the newest finished run", async () => {
      const nextRun = "2026-12-01T07:01:00Z";
      const pt: Manifest = {
        apiVersion: "cadent.dev/v1alpha1",
        kind: "PeriodicTask",
        metadata: { name: "table-pt" },
        spec: {
          schedule: "1 * * * *",
          timeZone: "Asia/Shanghai",
          taskTemplate: { spec: { task: "app.tasks.add" } },
        },
      };
      const cells = await table(pt, {
        nextScheduleTime: nextRun,
        lastScheduleTime: "2026-12-01T06:01:00Z",
        activeCount: 1,
        runs: { total: 5, succeeded: 3, failed: 1 },
        recentRuns: [
          { name: "table-pt-1796108460", scheduledTime: "2026-12-01T06:01:00Z", phase: "Running" },
          {
            name: "table-pt-1796104860",
            scheduledTime: "2026-12-01T05:01:00Z",
            completionTime: "2026-12-01T05:01:09Z",
            phase: "Failed",
          },
        ],
      });
      expect([...cells.keys()]).toEqual([
        "Name",
        "SCHEDULE",
        "TIMEZONE",
        "SUSPEND",
        "ACTIVE",
        "LAST SCHEDULE",
        "NEXT RUN",
        "LAST RESULT",
        "RUNS",
        "AGE",
      ]);
      expect(cells.get("SCHEDULE")).toBe("1 * * * *");
      expect(cells.get("TIMEZONE")).toBe("Asia/Shanghai");
      expect(cells.get("SUSPEND")).toBe(false);
      expect(cells.get("ACTIVE")).toBe(1);
      expect(cells.get("NEXT RUN")).toBe(nextRun);
      expect(cells.get("LAST RESULT")).toBe("Failed");
      expect(cells.get("RUNS")).toBe(5);
    });
  });
});
