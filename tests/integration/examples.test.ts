/**
 * Every manifest in examples/ applied as a user would, with `cadent controller` and `cadent
 * worker` (the example TypeScript task module) running: the fast demos run and succeed, and the
 * seed's two schedules are accepted and scheduled at the right instants.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  Cadent,
  installCrds,
  startControllerProcess,
  type CadentObject,
  type ControllerProcess,
} from "../support/cadent.ts";
import { REPO_ROOT } from "../support/environment.ts";
import { createTestNamespace, kubeConfig } from "../support/kube.ts";
import { freshDb, startCadentWorker, type CadentWorker } from "./worker-support.ts";
import { startCeleryWorker, type CeleryWorker } from "../support/celery.ts";
import { Redis } from "ioredis";

const runsOf = (o: CadentObject): Record<string, number> =>
  (o.status?.["runs"] ?? {}) as Record<string, number>;
const ready = (o: CadentObject) => o.status?.conditions?.find((c) => c.type === "Ready");

describe.runIf(inject("jobsRun"))("the examples, applied and running", () => {
  const kc = kubeConfig();
  let ns: Awaited<ReturnType<typeof createTestNamespace>>;
  let cadent: Cadent;
  let controller: ControllerProcess | undefined;
  let worker: CadentWorker | undefined;
  let celery: CeleryWorker | undefined;
  let redisUrl = "";

  beforeAll(async () => {
    await installCrds(kc);
    ns = await createTestNamespace(kc, "examples");
    cadent = new Cadent(kc, ns.name);
    // A database of its own: the examples use the default queue "celery".
    const { url, redis } = await freshDb(8);
    redis.disconnect();
    redisUrl = url;
    controller = await startControllerProcess({ namespace: ns.name, extraArgs: ["--redis-url", url] });
    worker = await startCadentWorker({ redisUrl: url, queues: ["celery"] });
    for (const file of readdirSync(join(REPO_ROOT, "examples")).filter((f) => f.endsWith(".yaml"))) {
      for (const doc of parseAllDocuments(readFileSync(join(REPO_ROOT, "examples", file), "utf8"))) {
        const manifest = doc.toJS() as { kind: string };
        await cadent.create(manifest.kind === "Task" ? "tasks" : "periodictasks", manifest);
      }
    }
  });
  afterAll(async () => {
    await celery?.stop();
    await worker?.process.stop();
    await controller?.stop();
    await ns?.cleanup();
  });

  it("runs the 10-second demo on the cadent worker, with the result in status", async () => {
    await cadent.waitFor(
      "periodictasks",
      "demo-every-10s",
      "a run succeeded",
      (o) => (runsOf(o)["succeeded"] ?? 0) >= 1,
      45_000,
    );
    const run = (await cadent.runs("demo-every-10s")).find((r) => r.status?.phase === "Succeeded");
    expect(run?.status?.["result"]).toBe(5);
  });

  it("runs the 15-second Job demo, with the termination message as the result", async () => {
    await cadent.waitFor(
      "periodictasks",
      "demo-job-every-15s",
      "a run succeeded",
      (o) => (runsOf(o)["succeeded"] ?? 0) >= 1,
      45_000,
    );
    const run = (await cadent.runs("demo-job-every-15s")).find((r) => r.status?.phase === "Succeeded");
    expect(run?.status?.["result"]).toEqual({ rows: 7 });
  });

  it("schedules the seed's del_redis_data at minute 1 of every hour", async () => {
    const pt = await cadent.waitFor(
      "periodictasks",
      "del-redis-data",
      "Ready",
      (o) => ready(o)?.status === "True",
    );
    const next = new Date(String(pt.status?.["nextScheduleTime"]));
    expect(next.getUTCMinutes()).toBe(1);
    expect(next.getUTCSeconds()).toBe(0);
    expect(next.getTime() - Date.now()).toBeLessThanOrEqual(3_600_000);
  });

  it("schedules the seed's monthly report at 06:00 Asia/Shanghai on the 1st", async () => {
    const pt = await cadent.waitFor(
      "periodictasks",
      "monthly-report",
      "Ready",
      (o) => ready(o)?.status === "True",
    );
    const next = new Date(String(pt.status?.["nextScheduleTime"]));
    const shanghai = new Intl.DateTimeFormat("en-GB", {
      timeZone: "Asia/Shanghai",
      day: "numeric",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
    }).format(next);
    expect(shanghai).toBe("1, 06:00");
  });

  it("holds the one-off Job Task until its eta, and accepts every other example", async () => {
    const task = await cadent.waitFor(
      "tasks",
      "export-once",
      "Scheduled",
      (o) => o.status?.phase === "Scheduled",
    );
    expect(task.status?.["scheduledTime"]).toBe("2026-11-30T22:00:00Z");
    const nightly = await cadent.waitFor(
      "periodictasks",
      "nightly-vacuum",
      "Ready",
      (o) => ready(o)?.status === "True",
    );
    expect(nightly.status?.["nextScheduleTime"]).toBeTruthy();
  });

  it("runs the seed's tasks on the example Python Celery app too", async () => {
    celery = await startCeleryWorker({
      venv: inject("venv"),
      app: "app",
      appDir: join(REPO_ROOT, "examples", "celery-app"),
      brokerUrl: redisUrl,
      queues: ["python"],
      concurrency: 1,
      logDir: `${inject("workDir")}/logs`,
    });
    const redis = new Redis(redisUrl);
    try {
      await redis.mset("example:1", "a", "example:2", "b", "keep:1", "c");
      await cadent.create("tasks", {
        apiVersion: "cadent.dev/v1alpha1",
        kind: "Task",
        metadata: { name: "py-cleanup" },
        spec: { task: "app.tasks.del_redis_data", kwargs: { pattern: "example:*" }, queue: "python" },
      });
      const done = await cadent.waitFor(
        "tasks",
        "py-cleanup",
        "Succeeded",
        (o) => o.status?.phase === "Succeeded",
      );
      expect(done.status?.["result"]).toMatchObject({ pattern: "example:*", deleted: 2, matched: 2 });
      expect(await redis.exists("example:1", "example:2", "keep:1")).toBe(1);
    } finally {
      redis.disconnect();
    }
  });
});
