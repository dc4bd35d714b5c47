import { describe, expect, it } from "vitest";
import { decodeTaskMessage, encodeTaskMessage } from "../../../src/celery/index.ts";
import type { JsonObject, TaskMessage, TaskMessageInput } from "../../../src/celery/index.ts";
import { field, rawOf } from "./vectors.ts";

function decodeOk(raw: string): TaskMessage {
  const decoded = decodeTaskMessage(raw);
  if (!decoded.ok) throw new Error(decoded.error.reason);
  return decoded.message;
}

/** The encoder's input that says what the decoded message says. */
function inputFrom(m: TaskMessage, now: Date): TaskMessageInput {
  return {
    task: m.task,
    id: m.id,
    args: m.args,
    kwargs: m.kwargs,
    queue: m.routingKey,
    priority: m.priority ?? 0,
    eta: m.eta,
    expires: m.expires,
    now,
    retries: m.retries,
    timeLimit: m.timeLimit,
    shadow: m.shadow,
    group: m.group,
    groupIndex: m.groupIndex,
    rootId: m.rootId,
    parentId: m.parentId,
    origin: m.origin ?? undefined,
    lang: m.lang ?? undefined,
    ignoreResult: m.ignoreResult,
    replyTo: m.replyTo ?? undefined,
    headers: m.customHeaders,
    embed: m.embed,
    deliveryTag: m.deliveryTag,
  };
}

// Only b_reports has an expires; Celery computed its `expiration` (120000 ms) from expires=120 s.
const PUBLISHED_B_REPORTS = new Date("2026-11-25T11:22:29.538Z");
const ANY_TIME = new Date("2026-11-25T11:00:00Z");

describe("re-encoding what Celery's producer wrote", () => {
  const producerVectors = [
    { name: "a_default_queue", now: ANY_TIME },
    { name: "a2_extras_timelimit_shadow_customheader_eta_unicode", now: ANY_TIME },
    { name: "b_reports_priority5_countdown_expires_retries", now: PUBLISHED_B_REPORTS },
    { name: "b_priority9", now: ANY_TIME },
  ];

  it.each(producerVectors)("writes $name byte for byte, to the same list key", ({ name, now }) => {
    const encoded = encodeTaskMessage(inputFrom(decodeOk(rawOf(name)), now));
    // Structure first, for a readable diff; then the bytes, argsrepr and kwargsrepr included.
    expect(encoded.envelope).toEqual(field<JsonObject>(name, "envelope"));
    expect(encoded.text).toBe(rawOf(name));
    expect(encoded.key).toBe(field<string>(name, "redis_key"));
  });

  it("writes a worker's retry message byte for byte, given its extra properties and display texts (w01)", () => {
    const name = "w01_retry_message_published_by_worker";
    const m = decodeOk(rawOf(name));
    const properties = field<JsonObject>(name, "envelope")["properties"] as JsonObject;
    const encoded = encodeTaskMessage({
      ...inputFrom(m, ANY_TIME),
      // The worker rendered args from a tuple: "(2,)".
      argsrepr: m.argsrepr ?? undefined,
      kwargsrepr: m.kwargsrepr ?? undefined,
      extraProperties: {
        replaced_task_nesting: properties["replaced_task_nesting"] ?? null,
        origin: properties["origin"] ?? null,
      },
    });
    expect(encoded.text).toBe(rawOf(name));
  });
});

const CREATED = new Date("2026-12-01T05:59:00.000Z");

function cadentMessage(overrides: Partial<TaskMessageInput> = {}) {
  return encodeTaskMessage({
    task: "app.tasks.del_redis_data",
    id: "9f0c0000-0000-4000-8000-000000000001",
    args: [1, "x"],
    kwargs: { dry_run: false },
    queue: "celery",
    now: CREATED,
    ...overrides,
  });
}

describe("what cadent writes for a Task", () => {
  it("fills the headers and properties as Celery's producer does, naming itself as the producer", () => {
    const { envelope } = cadentMessage();
    expect(envelope["headers"]).toEqual({
      lang: "ts",
      task: "app.tasks.del_redis_data",
      id: "9f0c0000-0000-4000-8000-000000000001",
      shadow: null,
      eta: null,
      expires: null,
      group: null,
      group_index: null,
      retries: 0,
      timelimit: [null, null],
      root_id: "9f0c0000-0000-4000-8000-000000000001",
      parent_id: null,
      argsrepr: "[1, 'x']",
      kwargsrepr: "{'dry_run': False}",
      origin: "cadent",
      ignore_result: false,
    });
    const properties = envelope["properties"] as JsonObject;
    expect(Object.keys(properties)).toEqual([
      "correlation_id",
      "reply_to",
      "delivery_mode",
      "delivery_info",
      "priority",
      "body_encoding",
      "delivery_tag",
    ]);
    expect(properties["delivery_info"]).toEqual({ exchange: "", routing_key: "celery" });
    expect(properties["delivery_tag"]).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
  });

  it("gives every message its own delivery tag", () => {
    const a = cadentMessage().envelope["properties"] as JsonObject;
    const b = cadentMessage().envelope["properties"] as JsonObject;
    expect(a["delivery_tag"]).not.toBe(b["delivery_tag"]);
  });

  it("writes a millisecond ETA with six fraction digits, so Celery 5.2 does not read microseconds", () => {
    const headers = cadentMessage({ eta: new Date("2026-12-01T06:00:00.123Z") }).envelope[
      "headers"
    ] as JsonObject;
    expect(headers["eta"]).toBe("2026-12-01T06:00:00.123000+00:00");
  });

  it("writes expires as a header and, as Celery does, the milliseconds left as properties.expiration", () => {
    const { envelope } = cadentMessage({ expires: new Date(CREATED.getTime() + 3_600_000) });
    expect((envelope["headers"] as JsonObject)["expires"]).toBe("2026-12-01T06:59:00+00:00");
    const properties = envelope["properties"] as JsonObject;
    expect(properties["expiration"]).toBe("3600000");
    expect(Object.keys(properties).indexOf("expiration")).toBe(
      Object.keys(properties).indexOf("delivery_mode") + 1,
    );
  });

  it("writes an expiration of 0 for an expires already past, as Celery clamps it", () => {
    const properties = cadentMessage({ expires: new Date(CREATED.getTime() - 5000) }).envelope[
      "properties"
    ] as JsonObject;
    expect(properties["expiration"]).toBe("0");
  });

  it("writes timeoutSeconds as the hard time limit", () => {
    const headers = cadentMessage({ timeLimit: { hard: 600 } }).envelope["headers"] as JsonObject;
    expect(headers["timelimit"]).toEqual([600, null]);
  });

  it("appends custom headers after the protocol's own", () => {
    const headers = cadentMessage({ headers: { tenant: "acme" } }).envelope["headers"] as JsonObject;
    expect(Object.keys(headers).slice(-2)).toEqual(["ignore_result", "tenant"]);
  });

  const lanes = [
    { priority: 0, key: "celery" },
    { priority: 2, key: "celery" },
    { priority: 3, key: "celery\x06\x163" },
    { priority: 8, key: "celery\x06\x166" },
    { priority: 9, key: "celery\x06\x169" },
  ];
  it.each(lanes)(
    "pushes priority $priority onto $key, writing the priority as given",
    ({ priority, key }) => {
      const encoded = cadentMessage({ priority });
      expect(encoded.key).toBe(key);
      expect((encoded.envelope["properties"] as JsonObject)["priority"]).toBe(priority);
    },
  );

  it("writes the text it returns as the envelope it returns", () => {
    const encoded = cadentMessage({ kwargs: { name: "naïve ✓ 😀" } });
    expect(JSON.parse(encoded.text)).toEqual(encoded.envelope);
    expect(encoded.text).toMatch(/^[\x20-\x7e]*$/);
  });
});

describe("refusing input that cannot make a valid message", () => {
  const cases: { name: string; overrides: Partial<TaskMessageInput>; error: RegExp }[] = [
    { name: "an empty task name", overrides: { task: "" }, error: /task must be a non-empty string/ },
    { name: "an empty task id", overrides: { id: "" }, error: /id must be a non-empty string/ },
    { name: "an empty queue", overrides: { queue: "" }, error: /queue must be a non-empty string/ },
    {
      name: "priority 10",
      overrides: { priority: 10 },
      error: /priority must be an integer from 0 to 9, got 10/,
    },
    { name: "priority 1.5", overrides: { priority: 1.5 }, error: /priority must be an integer/ },
    { name: "negative retries", overrides: { retries: -1 }, error: /retries must be a non-negative integer/ },
    {
      name: "a zero time limit",
      overrides: { timeLimit: { hard: 0 } },
      error: /timeLimit.hard must be a positive/,
    },
    {
      name: "a custom header named like a protocol header",
      overrides: { headers: { id: "other" } },
      error: /custom header "id" would replace a Celery protocol header/,
    },
    {
      name: "a custom header named redelivered",
      overrides: { headers: { redelivered: true } },
      error: /custom header "redelivered"/,
    },
  ];

  it.each(cases)("throws for $name", ({ overrides, error }) => {
    expect(() => cadentMessage(overrides)).toThrow(error);
  });
});
