import { describe, expect, it } from "vitest";
import {
  LANE_SEPARATOR,
  brpopKeys,
  clampPriority,
  priorityStep,
  queueBinding,
  queueKey,
  queueOfKey,
  directExchangeQueues,
  parseBindingMember,
} from "../../../src/celery/index.ts";
import { field, rawOf } from "./vectors.ts";

describe("priority lanes", () => {
  it("separates queue and step with kombu's \\x06\\x16", () => {
    expect(LANE_SEPARATOR).toBe("\u0006\u0016");
  });

  const table: { priority: unknown; step: number; key: string }[] = [
    { priority: 0, step: 0, key: "reports" },
    { priority: 1, step: 0, key: "reports" },
    { priority: 2, step: 0, key: "reports" },
    { priority: 3, step: 3, key: "reports\x06\x163" },
    { priority: 4, step: 3, key: "reports\x06\x163" },
    { priority: 5, step: 3, key: "reports\x06\x163" },
    { priority: 6, step: 6, key: "reports\x06\x166" },
    { priority: 7, step: 6, key: "reports\x06\x166" },
    { priority: 8, step: 6, key: "reports\x06\x166" },
    { priority: 9, step: 9, key: "reports\x06\x169" },
    // kombu clamps to 0..9 and takes int() of what it finds; anything unreadable is 0.
    { priority: 12, step: 9, key: "reports\x06\x169" },
    { priority: -3, step: 0, key: "reports" },
    { priority: 5.9, step: 3, key: "reports\x06\x163" },
    { priority: "7", step: 6, key: "reports\x06\x166" },
    { priority: "high", step: 0, key: "reports" },
    { priority: null, step: 0, key: "reports" },
    { priority: undefined, step: 0, key: "reports" },
  ];

  it.each(table)("puts priority $priority in step $step, list $key", ({ priority, step, key }) => {
    expect(priorityStep(priority)).toBe(step);
    expect(queueKey("reports", priority)).toBe(key);
  });

  it("clamps what it cannot use to the nearest priority", () => {
    expect([clampPriority(Infinity), clampPriority(Number.NaN), clampPriority(true)]).toEqual([0, 0, 1]);
  });

  const producers = [
    "a_default_queue",
    "a2_extras_timelimit_shadow_customheader_eta_unicode",
    "b_reports_priority5_countdown_expires_retries",
    "b_priority9",
  ];
  it.each(producers)("agrees with the list Celery pushed %s onto", (name) => {
    const properties = (
      JSON.parse(rawOf(name)) as { properties: { priority: number; delivery_info: { routing_key: string } } }
    ).properties;
    expect(queueKey(properties.delivery_info.routing_key, properties.priority)).toBe(
      field<string>(name, "redis_key"),
    );
  });

  it("builds the worker's BRPOP keys priority step first, then queue (w06)", () => {
    const brpop = field<string[]>("w06_worker_startup_and_brpop", "brpop_command");
    // BRPOP <keys...> <timeout>: the worker's queue rotation at that moment was prio, celery.
    expect(brpopKeys(["prio", "celery"])).toEqual(brpop.slice(1, -1));
  });

  const keys = [
    { key: "celery", queue: "celery" },
    { key: "reports\x06\x163", queue: "reports" },
    { key: "prio\x06\x169", queue: "prio" },
    // rsplit(sep, 1): only the last separator is the lane's.
    { key: "odd\x06\x16name\x06\x166", queue: "odd\x06\x16name" },
  ];
  it.each(keys)("strips the lane from $key", ({ key, queue }) => {
    expect(queueOfKey(key)).toBe(queue);
  });
});

describe("bindings", () => {
  const sadds = field<[string, string, string][]>("w06_worker_startup_and_brpop", "sadd_commands");

  it("declares a queue's binding as Celery's worker does (w06)", () => {
    const { key, member } = queueBinding("prio");
    expect(sadds).toContainEqual(["SADD", key, member]);
  });

  it("reads the members of every binding set the worker declared", () => {
    for (const [, , member] of sadds) expect(parseBindingMember(member)).not.toBeNull();
    expect(parseBindingMember("worker.#\x06\x16\x06\x16celeryev.x")).toEqual({
      routingKey: "worker.#",
      pattern: "",
      queue: "celeryev.x",
    });
    expect(parseBindingMember("no separators")).toBeNull();
  });

  it("routes a routing key through a direct exchange's bindings, once per queue", () => {
    const members = [
      "celery\x06\x16\x06\x16celery",
      "celery\x06\x16\x06\x16celery",
      "other\x06\x16\x06\x16other",
    ];
    expect(directExchangeQueues(members, "celery")).toEqual(["celery"]);
    expect(directExchangeQueues(members, "missing")).toEqual([]);
  });
});
