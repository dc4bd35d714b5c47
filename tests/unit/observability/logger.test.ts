import { describe, expect, it } from "vitest";
import { createLogger, objectLogger, redactUrl } from "../../../src/observability/logger.ts";
import type { LogLevel } from "../../../src/observability/logger.ts";
import type { Logger } from "../../../src/runtime/logger.ts";

/** A logger writing into an array of parsed JSON lines. */
function capture(level: LogLevel = "info"): {
  logger: ReturnType<typeof createLogger>;
  lines: Record<string, unknown>[];
} {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    level,
    component: "controller",
    destination: { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) },
  });
  return { logger, lines };
}

describe("createLogger", () => {
  it("writes one JSON line with a string level, an ISO time, the component, the fields and the message", () => {
    const { logger, lines } = capture();
    logger.info({ key: "default/nightly" }, "run created");
    expect(lines).toEqual([
      {
        level: "info",
        time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
        component: "controller",
        key: "default/nightly",
        msg: "run created",
      },
    ]);
  });

  it("can be handed to the runtime wherever it takes a Logger", () => {
    const { logger, lines } = capture();
    const runtimeLogger: Logger = logger;
    runtimeLogger.warn({ lease: "cadent-controller" }, "leadership lost");
    expect(lines[0]).toMatchObject({ level: "warn", lease: "cadent-controller", msg: "leadership lost" });
  });

  it.each<[LogLevel, string[]]>([
    ["trace", ["trace", "debug", "info", "warn", "error"]],
    ["debug", ["debug", "info", "warn", "error"]],
    ["info", ["info", "warn", "error"]],
    ["warn", ["warn", "error"]],
    ["error", ["error"]],
  ])("at level %s writes only %j", (level, written) => {
    const { logger, lines } = capture(level);
    logger.trace({}, "t");
    logger.debug({}, "d");
    logger.info({}, "i");
    logger.warn({}, "w");
    logger.error({}, "e");
    expect(lines.map((l) => l.level)).toEqual(written);
  });

  it("gives a child per object that adds controller, namespace and name to every line", () => {
    const { logger, lines } = capture();
    const child = objectLogger(logger, { controller: "periodictask", namespace: "team-a", name: "nightly" });
    child.info({ run: "nightly-1700000000" }, "run created");
    expect(lines[0]).toMatchObject({
      component: "controller",
      controller: "periodictask",
      namespace: "team-a",
      name: "nightly",
      run: "nightly-1700000000",
    });
  });

  it.each([
    ["password at the top level", { password: "hunter2" }],
    ["a token one level down", { auth: { token: "eyJhbGciOi" } }],
    ["an Authorization header", { request: { headers: { authorization: "Bearer eyJhbGciOi" } } }],
    ["a raw redisUrl", { redisUrl: "redis://:hunter2@redis:6379/0" }],
    ["a redisUrl inside options", { options: { redisUrl: "redis://:hunter2@redis:6379/0" } }],
  ])("redacts %s", (_case, fields) => {
    const { logger, lines } = capture();
    logger.info(fields, "connecting");
    const text = JSON.stringify(lines[0]);
    expect(text).toContain("[REDACTED]");
    expect(text).not.toMatch(/hunter2|eyJhbGciOi/);
  });
});

describe("redactUrl", () => {
  it.each([
    ["redis://:hunter2@redis:6379/0", "redis://redis:6379/0"],
    ["rediss://default:hunter2@redis.example.com:6380/1", "rediss://default@redis.example.com:6380/1"],
    ["redis://user:p%40ss@[::1]:6379", "redis://user@[::1]:6379"],
    ["redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"],
    ["not a url :hunter2@", "<unparseable URL>"],
  ])("%s is logged as %s", (url, shown) => {
    expect(redactUrl(url)).toBe(shown);
  });
});
