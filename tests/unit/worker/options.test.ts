import { hostname } from "node:os";
import { describe, expect, it } from "vitest";
import { WORKER_FLAGS, WorkerOptionsError, parseWorkerOptions } from "../../../src/worker/options.ts";

describe("cadent worker options", () => {
  it("takes Celery's and kombu's defaults for everything but --tasks", () => {
    expect(parseWorkerOptions({ tasks: ["./dist/tasks.js"] }, {})).toEqual({
      tasks: ["./dist/tasks.js"],
      queues: ["celery"],
      concurrency: 16,
      prefetchMultiplier: 4,
      visibilityTimeoutSeconds: 3600,
      redisUrl: "redis://127.0.0.1:6379/0",
      redisPasswordFile: undefined,
      hostname: `cadent@${hostname()}`,
      logLevel: "info",
      shutdownGraceMs: 25_000,
      resultExpiresSeconds: 86_400,
      deadLetterKey: "cadent.dead-letter",
    });
  });

  it("reads the flags of the contract's example", () => {
    const options = parseWorkerOptions(
      { tasks: ["./dist/tasks.js"], queues: "celery,reports", concurrency: "16", prefetchMultiplier: "1" },
      {},
    );
    expect(options).toMatchObject({ queues: ["celery", "reports"], concurrency: 16, prefetchMultiplier: 1 });
  });

  it("takes a repeated --tasks as several modules", () => {
    expect(parseWorkerOptions({ tasks: ["a.js", "b.js"] }, {}).tasks).toEqual(["a.js", "b.js"]);
  });

  it("falls back to the environment, and a flag wins over its variable", () => {
    const env = { CADENT_TASKS: "a.js,b.js", REDIS_URL: "redis://redis:6379/2", CADENT_CONCURRENCY: "8" };
    expect(parseWorkerOptions({}, env)).toMatchObject({
      tasks: ["a.js", "b.js"],
      redisUrl: "redis://redis:6379/2",
      concurrency: 8,
    });
    expect(parseWorkerOptions({ concurrency: "2" }, env).concurrency).toBe(2);
  });

  it("reads fractional seconds for timeouts and the grace period", () => {
    expect(
      parseWorkerOptions({ tasks: ["t.js"], visibilityTimeout: "2.5", shutdownGrace: "0.5" }, {}),
    ).toMatchObject({ visibilityTimeoutSeconds: 2.5, shutdownGraceMs: 500 });
  });

  const tasks = ["t.js"];
  it.each([
    [{}, "--tasks (env CADENT_TASKS) is required"],
    [
      { tasks, concurrency: "0" },
      '--concurrency (env CADENT_CONCURRENCY): expected a whole number of at least 1, got "0" from --concurrency',
    ],
    [
      { tasks, prefetchMultiplier: "1.5" },
      "--prefetch-multiplier (env CADENT_PREFETCH_MULTIPLIER): expected a whole number",
    ],
    [
      { tasks, visibilityTimeout: "0" },
      "--visibility-timeout (env CADENT_VISIBILITY_TIMEOUT): expected a positive number of seconds",
    ],
    [
      { tasks, shutdownGrace: "-1" },
      "--shutdown-grace (env CADENT_SHUTDOWN_GRACE): expected a non-negative number",
    ],
    [{ tasks, resultExpires: "1.5" }, "--result-expires (env CADENT_RESULT_EXPIRES): expected whole seconds"],
    [{ tasks, queues: " , " }, "--queues (env CADENT_QUEUES): expected at least one name"],
    [
      { tasks, logLevel: "loud" },
      "--log-level (env LOG_LEVEL): expected one of trace, debug, info, warn, error",
    ],
    [{ tasks, redisUrl: "http://host" }, "--redis-url (env REDIS_URL): expected a redis:// or rediss:// URL"],
  ])("refuses %j, naming the flag and its variable", (flags, message) => {
    expect(() => parseWorkerOptions(flags, {})).toThrow(WorkerOptionsError);
    expect(() => parseWorkerOptions(flags, {})).toThrow(message);
  });

  it("never shows a password from a bad Redis URL", () => {
    let message = "";
    try {
      parseWorkerOptions({ tasks, redisUrl: "http://user:hunter2@host" }, {});
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain("--redis-url");
    expect(message).not.toContain("hunter2");
  });

  it("reports every bad setting at once", () => {
    try {
      parseWorkerOptions({ concurrency: "x", queues: "" }, {});
      expect.unreachable();
    } catch (err) {
      expect((err as WorkerOptionsError).problems).toHaveLength(3);
    }
  });

  it("gives every flag an environment variable", () => {
    for (const spec of Object.values(WORKER_FLAGS)) expect(spec.env).toMatch(/^[A-Z_]+$/);
  });
});
