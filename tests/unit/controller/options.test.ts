import { describe, expect, it } from "vitest";
import {
  CONTROLLER_FLAGS,
  ControllerOptionsError,
  loadRedisPassword,
  parseControllerOptions,
  parseDuration,
} from "../../../src/controller/options.ts";
import type { ControllerFlags, ControllerOptions } from "../../../src/controller/options.ts";

const fixedIdentity = (): string => "controller-7f9c_1a2b3c4d";

function parse(flags: ControllerFlags = {}, env: Record<string, string> = {}): ControllerOptions {
  return parseControllerOptions(flags, env, fixedIdentity);
}

/** The error message parsing would give, or a failure if it parses. */
function problem(flags: ControllerFlags, env: Record<string, string> = {}): string {
  try {
    parse(flags, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ControllerOptionsError);
    return (err as Error).message;
  }
  throw new Error(`expected ${JSON.stringify({ flags, env })} to be refused`);
}

describe("parseControllerOptions", () => {
  it("uses the documented defaults when neither flags nor environment say anything", () => {
    expect(parse()).toEqual({
      kubeconfig: undefined,
      namespaces: [],
      redisUrl: "redis://127.0.0.1:6379/0",
      redisPasswordFile: undefined,
      defaultQueue: "celery",
      leaderElect: true,
      leaderElectionNamespace: "default",
      leaderElectionId: "cadent-controller",
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      metricsAddr: ":8080",
      healthAddr: ":8081",
      kubeApiQps: 50,
      kubeApiBurst: 100,
      logLevel: "info",
      workers: 4,
      identity: "controller-7f9c_1a2b3c4d",
    } satisfies ControllerOptions);
  });

  it("reads every option from its environment variable", () => {
    const env = {
      KUBECONFIG: "/etc/kube/config",
      WATCH_NAMESPACES: "team-a, team-b,team-a",
      REDIS_URL: "rediss://redis.example:6380/2",
      REDIS_PASSWORD_FILE: "/var/run/secrets/redis/password",
      CADENT_DEFAULT_QUEUE: "reports",
      CADENT_LEADER_ELECT: "false",
      POD_NAMESPACE: "cadent-system",
      CADENT_LEADER_ELECTION_ID: "cadent-staging",
      CADENT_LEASE_DURATION: "30s",
      CADENT_RENEW_DEADLINE: "20s",
      CADENT_RETRY_PERIOD: "4s",
      CADENT_METRICS_ADDR: "127.0.0.1:9090",
      CADENT_HEALTH_ADDR: "127.0.0.1:9091",
      CADENT_KUBE_API_QPS: "20.5",
      CADENT_KUBE_API_BURST: "40",
      LOG_LEVEL: "debug",
      CADENT_WORKERS: "8",
      CADENT_IDENTITY: "cadent-0",
    };
    expect(parse({}, env)).toEqual({
      kubeconfig: "/etc/kube/config",
      namespaces: ["team-a", "team-b"],
      redisUrl: "rediss://redis.example:6380/2",
      redisPasswordFile: "/var/run/secrets/redis/password",
      defaultQueue: "reports",
      leaderElect: false,
      leaderElectionNamespace: "cadent-system",
      leaderElectionId: "cadent-staging",
      leaseDurationMs: 30_000,
      renewDeadlineMs: 20_000,
      retryPeriodMs: 4_000,
      metricsAddr: "127.0.0.1:9090",
      healthAddr: "127.0.0.1:9091",
      kubeApiQps: 20.5,
      kubeApiBurst: 40,
      logLevel: "debug",
      workers: 8,
      identity: "cadent-0",
    } satisfies ControllerOptions);
  });

  it("lets a flag win over its environment variable, for every option", () => {
    const env = Object.fromEntries(Object.values(CONTROLLER_FLAGS).map((spec) => [spec.env, "from-env"]));
    const options = parse(
      {
        kubeconfig: "/flag/config",
        namespaces: "flag-ns",
        redisUrl: "redis://flag:6379/0",
        redisPasswordFile: "/flag/password",
        defaultQueue: "flag-queue",
        leaderElect: true,
        leaderElectionNamespace: "flag-ns",
        leaderElectionId: "flag-lease",
        leaseDuration: "16s",
        renewDeadline: "11s",
        retryPeriod: "3s",
        metricsAddr: ":7080",
        healthAddr: ":7081",
        kubeApiQps: "7",
        kubeApiBurst: "9",
        logLevel: "warn",
        workers: "2",
        identity: "flag-id",
      },
      env,
    );
    expect(Object.values(options)).not.toContain("from-env");
    expect(options).toMatchObject({
      kubeconfig: "/flag/config",
      leaderElect: true,
      leaseDurationMs: 16_000,
      workers: 2,
    });
  });

  it("takes --no-leader-elect (false) over CADENT_LEADER_ELECT=true", () => {
    expect(parse({ leaderElect: false }, { CADENT_LEADER_ELECT: "true" }).leaderElect).toBe(false);
  });

  it("treats an empty environment variable as unset", () => {
    expect(parse({}, { REDIS_URL: "", WATCH_NAMESPACES: "", LOG_LEVEL: "" })).toMatchObject({
      redisUrl: "redis://127.0.0.1:6379/0",
      namespaces: [],
      logLevel: "info",
    });
  });

  it("calls the identity maker only when no identity is given", () => {
    let calls = 0;
    const make = (): string => `generated-${++calls}`;
    expect(parseControllerOptions({}, {}, make).identity).toBe("generated-1");
    expect(parseControllerOptions({ identity: "given" }, {}, make).identity).toBe("given");
    expect(calls).toBe(1);
  });

  it.each([
    ["yes", true],
    ["1", true],
    ["TRUE", true],
    ["no", false],
    ["0", false],
    ["False", false],
  ])("reads CADENT_LEADER_ELECT=%s as %s", (text, value) => {
    expect(parse({}, { CADENT_LEADER_ELECT: text }).leaderElect).toBe(value);
  });

  it.each<[string, ControllerFlags, Record<string, string>, string]>([
    [
      "a queries-per-second that is not a number, from the flag",
      { kubeApiQps: "fast" },
      {},
      '--kube-api-qps (env CADENT_KUBE_API_QPS): expected a number greater than 0, got "fast" from --kube-api-qps',
    ],
    [
      "a zero burst, from the environment",
      {},
      { CADENT_KUBE_API_BURST: "0" },
      '--kube-api-burst (env CADENT_KUBE_API_BURST): expected a whole number of at least 1, got "0" from $CADENT_KUBE_API_BURST',
    ],
    [
      "a fractional worker count",
      { workers: "2.5" },
      {},
      '--workers (env CADENT_WORKERS): expected a whole number of at least 1, got "2.5" from --workers',
    ],
    [
      "an unknown log level",
      {},
      { LOG_LEVEL: "verbose" },
      '--log-level (env LOG_LEVEL): expected one of trace, debug, info, warn, error, got "verbose" from $LOG_LEVEL',
    ],
    [
      "a duration without a unit",
      { leaseDuration: "15" },
      {},
      '--lease-duration (env CADENT_LEASE_DURATION): expected a duration such as 15s, 1m30s or 500ms, got "15" from --lease-duration',
    ],
    [
      "an upper-case namespace",
      { namespaces: "team-a,Team-B" },
      {},
      "--namespaces (env WATCH_NAMESPACES): expected a comma-separated list of namespace names",
    ],
    [
      "a port-only listen address",
      { metricsAddr: "8080" },
      {},
      '--metrics-addr (env CADENT_METRICS_ADDR): expected host:port, such as ":8080" or "127.0.0.1:8080", got "8080"',
    ],
    [
      "a boolean that is neither true nor false",
      {},
      { CADENT_LEADER_ELECT: "maybe" },
      '--leader-elect (env CADENT_LEADER_ELECT): expected true or false, got "maybe" from $CADENT_LEADER_ELECT',
    ],
    [
      "an empty queue name given as a flag",
      { defaultQueue: "" },
      {},
      '--default-queue (env CADENT_DEFAULT_QUEUE): expected a queue name, got "" from --default-queue',
    ],
    [
      "a Lease name with an underscore",
      { leaderElectionId: "cadent_controller" },
      {},
      "--leader-election-id (env CADENT_LEADER_ELECTION_ID): expected a Lease name",
    ],
  ])(
    "refuses %s, naming the flag, its variable and where the value came from",
    (_case, flags, env, message) => {
      expect(problem(flags, env)).toContain(message);
    },
  );

  it.each([
    ["an http:// URL", "http://redis:6379"],
    ["a URL without a host", "redis://"],
    ["a database that is not a number", "redis://redis:6379/zero"],
    ["no URL at all", "redis"],
  ])("refuses %s as the Redis URL", (_case, url) => {
    expect(problem({ redisUrl: url })).toContain(
      "--redis-url (env REDIS_URL): expected a redis:// or rediss:// URL such as redis://127.0.0.1:6379/0",
    );
  });

  it("never repeats a Redis password in an error message", () => {
    const message = problem({}, { REDIS_URL: "http://:hunter2@redis:6379/0" });
    expect(message).toContain('got "http://redis:6379/0" from $REDIS_URL');
    expect(message).not.toContain("hunter2");
  });

  it("lists every bad option at once", () => {
    const err = (() => {
      try {
        parse({ workers: "0" }, { LOG_LEVEL: "loud" });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(ControllerOptionsError);
    expect((err as ControllerOptionsError).problems).toEqual([
      expect.stringContaining("--log-level"),
      expect.stringContaining("--workers"),
    ]);
  });

  it.each<[string, ControllerFlags, string]>([
    [
      "a lease no longer than the renew deadline",
      { leaseDuration: "10s", renewDeadline: "10s" },
      "--lease-duration (env CADENT_LEASE_DURATION) (10000 ms) must be longer than --renew-deadline (env CADENT_RENEW_DEADLINE) (10000 ms)",
    ],
    [
      "a renew deadline within 1.2 retry periods",
      { retryPeriod: "9s" },
      "--renew-deadline (env CADENT_RENEW_DEADLINE) (10000 ms) must be longer than 1.2 × --retry-period (env CADENT_RETRY_PERIOD) (9000 ms)",
    ],
    [
      "a lease duration in fractions of a second",
      { leaseDuration: "15500ms" },
      "--lease-duration (env CADENT_LEASE_DURATION) must be whole seconds",
    ],
    [
      "metrics and health on the same address",
      { metricsAddr: ":9000", healthAddr: ":9000" },
      "--metrics-addr (env CADENT_METRICS_ADDR) and --health-addr (env CADENT_HEALTH_ADDR) are both :9000",
    ],
  ])("refuses %s", (_case, flags, message) => {
    expect(problem(flags)).toContain(message);
  });

  it("does not check leader election timing when leader election is off", () => {
    expect(parse({ leaderElect: false, leaseDuration: "1s", renewDeadline: "5s" }).leaseDurationMs).toBe(
      1_000,
    );
  });

  it("allows metrics and health both on port 0, since each gets its own free port", () => {
    expect(parse({ metricsAddr: "127.0.0.1:0", healthAddr: "127.0.0.1:0" }).healthAddr).toBe("127.0.0.1:0");
  });
});

describe("parseDuration", () => {
  it.each([
    ["15s", 15_000],
    ["500ms", 500],
    ["1m30s", 90_000],
    ["1.5s", 1_500],
    ["2h", 7_200_000],
    ["1h1m1s1ms", 3_661_001],
  ])("%s is %i ms", (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(["", "15", "s", "15 s", "-1s", "1d", "1.s"])("%j is not a duration", (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });
});

describe("loadRedisPassword", () => {
  const files: Record<string, string> = {
    "/secrets/password": "from-file\n",
    "/secrets/crlf": "from-file\r\n",
    "/secrets/empty": "\n",
  };
  const read = async (path: string): Promise<string> => {
    const content = files[path];
    if (content === undefined) {
      throw new Error(`ENOENT: no such file or directory, open '${path}'`);
    }
    return content;
  };

  it("prefers the file over the URL's password, dropping the trailing newline", async () => {
    const options = { redisUrl: "redis://:from-url@redis:6379/0", redisPasswordFile: "/secrets/password" };
    expect(await loadRedisPassword(options, read)).toBe("from-file");
  });

  it("drops a Windows line ending too", async () => {
    const options = { redisUrl: "redis://redis:6379/0", redisPasswordFile: "/secrets/crlf" };
    expect(await loadRedisPassword(options, read)).toBe("from-file");
  });

  it("falls back to the URL's password, percent-decoded", async () => {
    const options = { redisUrl: "redis://default:p%40ss@redis:6379/0", redisPasswordFile: undefined };
    expect(await loadRedisPassword(options, read)).toBe("p@ss");
  });

  it("has no password when neither gives one", async () => {
    const options = { redisUrl: "redis://redis:6379/0", redisPasswordFile: undefined };
    expect(await loadRedisPassword(options, read)).toBeUndefined();
  });

  it("names the file, the flag and the variable when the file cannot be read", async () => {
    const options = { redisUrl: "redis://redis:6379/0", redisPasswordFile: "/secrets/missing" };
    await expect(loadRedisPassword(options, read)).rejects.toThrow(
      "cannot read the Redis password from /secrets/missing (--redis-password-file (env REDIS_PASSWORD_FILE)): ENOENT",
    );
  });

  it("refuses an empty password file", async () => {
    const options = { redisUrl: "redis://redis:6379/0", redisPasswordFile: "/secrets/empty" };
    await expect(loadRedisPassword(options, read)).rejects.toThrow("the Redis password file /secrets/empty");
  });
});
