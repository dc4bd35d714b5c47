import { describe, expect, it } from "vitest";
import { celery52Reading, decodeTaskMessage, formatTimestamp } from "../../../src/celery/index.ts";
import type { JsonObject, MessageDecodeErrorKind, TaskMessage } from "../../../src/celery/index.ts";
import { field, rawOf, vectorFiles } from "./vectors.ts";

type Verdict =
  | { verdict: "accepted"; protocol: 1 | 2; id: string; task: string }
  | { verdict: "refused"; kind: MessageDecodeErrorKind; taskId: string | null; why: string }
  | { verdict: "not a message"; see: string };

const accepted = (protocol: 1 | 2, id: string, task: string): Verdict => ({
  verdict: "accepted",
  protocol,
  id,
  task,
});
const refused = (kind: MessageDecodeErrorKind, taskId: string | null, why: string): Verdict => ({
  verdict: "refused",
  kind,
  taskId,
  why,
});
const result: Verdict = { verdict: "not a message", see: "results.test.ts" };

const f5 = (n: string) => `f5000000-0000-4000-8000-0000000000${n}`;

/** Every file in celery-vectors, with what the decoder must make of it. */
const VERDICTS: Record<string, Verdict> = {
  a_default_queue: accepted(2, "11111111-1111-4111-8111-111111111111", "app.tasks.del_redis_data"),
  a2_extras_timelimit_shadow_customheader_eta_unicode: accepted(
    2,
    "44444444-4444-4444-8444-444444444444",
    "app.tasks.del_redis_data",
  ),
  a3_celery_protocol_v1_producer: accepted(
    1,
    "66666666-6666-4666-8666-666666666661",
    "app.tasks.del_redis_data",
  ),
  b_priority9: accepted(2, "33333333-3333-4333-8333-333333333339", "app.tasks.add"),
  b_reports_priority5_countdown_expires_retries: accepted(
    2,
    "22222222-2222-4222-8222-222222222222",
    "app.tasks.del_redis_data",
  ),
  h01_minimal_v2_base64: accepted(2, f5("01"), "app.tasks.whoami"),
  h02_minimal_v2_plain_json_body: accepted(2, f5("02"), "app.tasks.whoami"),
  h03_full_ts_style_eta_expires_Z: accepted(2, f5("03"), "app.tasks.whoami"),
  h04_empty_embed: accepted(2, f5("04"), "app.tasks.whoami"),
  h05_two_element_body: refused("invalid-body", f5("05"), "a two-element body crashes Celery's Request"),
  h06_no_content_type: refused(
    "content-disallowed",
    f5("06"),
    "without content-type kombu returns raw bytes",
  ),
  h07_protocol_v1: accepted(1, f5("07"), "app.tasks.whoami"),
  h08_protocol_v1_no_headers_key: accepted(1, f5("08"), "app.tasks.whoami"),
  // Whether a task is registered is the worker's question, not the decoder's.
  h09_unregistered_task: accepted(2, f5("09"), "app.tasks.does_not_exist"),
  h10_body_as_json_array_not_string: refused("invalid-body", f5("10"), "kombu raises DecodeError"),
  h11_priority_key_9: accepted(2, f5("11"), "app.tasks.whoami"),
  h12_add_minimal: accepted(2, f5("12"), "app.tasks.add"),
  h13_fail_minimal: accepted(2, f5("13"), "app.tasks.fail"),
  h14_no_delivery_info: refused("invalid-envelope", f5("14"), "kombu's QoS.append crashes; message lost"),
  h15_no_delivery_tag: refused("invalid-envelope", f5("15"), "kombu's Message crashes; message lost"),
  h16_no_id_header: refused("missing-task-id", null, "Celery's Request crashes; poison loop"),
  h17_no_properties: refused("invalid-envelope", f5("17"), "kombu's Message crashes; message lost"),
  h18_no_content_encoding: accepted(2, f5("18"), "app.tasks.whoami"),
  h19_pickle_content_type: refused("content-disallowed", f5("19"), "accept_content is json only"),
  h20_routing_key_mismatch: accepted(2, f5("20"), "app.tasks.whoami"),
  h21_non_uuid_delivery_tag: accepted(2, f5("21"), "app.tasks.whoami"),
  h22_compact_json_utf8_base64: accepted(2, "f8000000-0000-4000-8000-000000000001", "app.tasks.whoami"),
  h23_compact_json_utf8_plain_body: accepted(2, "f8000000-0000-4000-8000-000000000002", "app.tasks.whoami"),
  h3x_eta_js_iso_plus5s: accepted(2, "f6000000-0000-4000-8000-000000000001", "app.tasks.whoami"),
  h3x_eta_naive_plus5s: accepted(2, "f6000000-0000-4000-8000-000000000002", "app.tasks.whoami"),
  h3x_expires_past_js_iso: accepted(2, "f6000000-0000-4000-8000-000000000003", "app.tasks.whoami"),
  h3x_retries_3: accepted(2, "f6000000-0000-4000-8000-000000000004", "app.tasks.whoami"),
  r01_success_dict: result,
  r02_success_int: result,
  r03_failure_builtin_exc: result,
  r04_failure_custom_exc: result,
  r05_retry_with_exc: result,
  r06_retry_second_has_parent_id: result,
  r07_success_after_retries: result,
  r08_retry_without_exc: result,
  r09_revoked_expired: result,
  r10_started_track_started: result,
  r11_success_result_extended: result,
  r12_failure_result_extended: result,
  r13_started_ignore_result_stuck: result,
  r14_failure_not_registered: result,
  w01_retry_message_published_by_worker: accepted(
    2,
    "e1000000-0000-4000-8000-000000000005",
    "app.tasks.flaky",
  ),
  w02_unacked_entry_on_delivery: { verdict: "not a message", see: "unacked.test.ts" },
  w03_visibility_timeout_restore: accepted(
    2,
    "e4000000-0000-4000-8000-000000000001",
    "app.tasks.slow_whoami",
  ),
  w04_warm_shutdown_restore_eta: accepted(2, "e4000000-0000-4000-8000-000000000002", "app.tasks.add"),
  w05_restore_visible_startup_sequence: { verdict: "not a message", see: "unacked.test.ts" },
  w06_worker_startup_and_brpop: { verdict: "not a message", see: "lanes.test.ts" },
};

const entries = Object.entries(VERDICTS);
const acceptedVectors = entries.flatMap(([name, v]) => (v.verdict === "accepted" ? [{ name, ...v }] : []));
const refusedVectors = entries.flatMap(([name, v]) => (v.verdict === "refused" ? [{ name, ...v }] : []));

function decodeOk(raw: string | Uint8Array): TaskMessage {
  const decoded = decodeTaskMessage(raw);
  if (!decoded.ok) throw new Error(`expected the message to decode: ${decoded.error.reason}`);
  return decoded.message;
}

function properties(name: string): JsonObject {
  return (JSON.parse(rawOf(name)) as { properties: JsonObject }).properties;
}

describe("decoding every captured vector", () => {
  it("has a verdict for every file in celery-vectors, so a new vector cannot go unjudged", () => {
    expect(Object.keys(VERDICTS).sort()).toEqual(vectorFiles());
  });

  it.each(acceptedVectors)(
    "accepts $name as protocol $protocol task $task",
    ({ name, protocol, id, task }) => {
      const message = decodeOk(rawOf(name));
      expect({ protocol: message.protocol, id: message.id, task: message.task }).toEqual({
        protocol,
        id,
        task,
      });
      const body = field<unknown>(name, "body_decoded");
      if (protocol === 2) {
        expect([message.args, message.kwargs]).toEqual((body as unknown[]).slice(0, 2));
      } else {
        const v1 = body as { args: unknown; kwargs: unknown };
        expect([message.args, message.kwargs]).toEqual([v1.args, v1.kwargs]);
      }
      expect(message.deliveryTag).toBe(properties(name)["delivery_tag"]);
      expect(message.routingKey).toBe((properties(name)["delivery_info"] as JsonObject)["routing_key"]);
      expect(message.envelope).toEqual(JSON.parse(rawOf(name)));
    },
  );

  it.each(refusedVectors)("refuses $name as $kind ($why)", ({ name, kind, taskId }) => {
    const decoded = decodeTaskMessage(rawOf(name));
    expect(decoded.ok).toBe(false);
    if (decoded.ok) return;
    expect(decoded.error.kind).toBe(kind);
    expect(decoded.error.reason).not.toBe("");
    // The worker needs the id to store a FAILURE and the tag to take the message off its books.
    expect(decoded.error.taskId).toBe(taskId);
    const props = JSON.parse(rawOf(name)).properties as JsonObject | undefined;
    expect(decoded.error.deliveryTag).toBe(props?.["delivery_tag"] ?? null);
    expect(decoded.error.envelope).toEqual(JSON.parse(rawOf(name)));
  });
});

describe("what the decoder reads from a message", () => {
  it("reads time limits, shadow, an ETA without fraction, custom headers and non-ASCII kwargs (a2)", () => {
    const m = decodeOk(rawOf("a2_extras_timelimit_shadow_customheader_eta_unicode"));
    expect(m.timeLimit).toEqual({ hard: 60, soft: 50 });
    expect(m.shadow).toBe("shadow-name");
    expect(m.eta?.date.toISOString()).toBe("2030-01-02T03:04:05.000Z");
    expect(m.customHeaders).toEqual({ "x-custom": "v" });
    expect(m.kwargs).toEqual({ a: "é", b: [1.5, null, true] });
    expect(m.kwargsrepr).toBe("{'a': 'é', 'b': [1.5, None, True]}");
  });

  it("reads queue, priority, retries, countdown ETA and expires to the microsecond (b_reports)", () => {
    const m = decodeOk(rawOf("b_reports_priority5_countdown_expires_retries"));
    expect(m.routingKey).toBe("reports");
    expect(m.priority).toBe(5);
    expect(m.retries).toBe(3);
    expect(m.eta && formatTimestamp(m.eta)).toBe("2026-11-25T11:22:59.538461+00:00");
    expect(m.expires && formatTimestamp(m.expires)).toBe("2026-11-25T11:24:29.538461+00:00");
  });

  it("reads a protocol 1 message's fields from its body (a3), taking its times as UTC", () => {
    const m = decodeOk(rawOf("a3_celery_protocol_v1_producer"));
    expect(m.eta?.date.toISOString()).toBe("2026-11-25T11:30:23.049Z");
    expect(m.expires?.date.toISOString()).toBe("2026-11-25T11:31:53.049Z");
    expect(m.utc).toBe(true);
    expect(m.timeLimit).toEqual({ hard: null, soft: null });
    expect(m.embed).toEqual({ callbacks: null, errbacks: null, chain: null, chord: null });
    expect(m.headers).toEqual({});
  });

  it("reads a protocol 1 message that has no headers key at all (h08)", () => {
    const m = decodeOk(rawOf("h08_protocol_v1_no_headers_key"));
    expect(m.args).toEqual([8, "v1-noheaders"]);
    expect(m.headers).toEqual({});
  });

  it("takes the restore destination from delivery_info, not from the list it was popped from (h20)", () => {
    expect(decodeOk(rawOf("h20_routing_key_mismatch")).routingKey).toBe("elsewhere");
  });

  it("keeps a delivery tag that is not a uuid (h21)", () => {
    expect(decodeOk(rawOf("h21_non_uuid_delivery_tag")).deliveryTag).toBe("ts-tag-21");
  });

  it("reads properties.priority as written; the lane came from the key (h11)", () => {
    expect(decodeOk(rawOf("h11_priority_key_9")).priority).toBe(9);
  });

  it("counts retries from the header (h3x_retries_3)", () => {
    expect(decodeOk(rawOf("h3x_retries_3")).retries).toBe(3);
  });

  it("marks a message kombu restored as redelivered (w03)", () => {
    expect(decodeOk(rawOf("w03_visibility_timeout_restore")).redelivered).toBe(true);
    expect(decodeOk(rawOf("a_default_queue")).redelivered).toBe(false);
  });

  it("reads the parent id a worker's retry sets to the task itself (w01)", () => {
    const m = decodeOk(rawOf("w01_retry_message_published_by_worker"));
    expect([m.parentId, m.rootId, m.retries]).toEqual([m.id, m.id, 1]);
  });

  it("reads compact JSON with raw UTF-8, given as the bytes Redis holds (h22, h23)", () => {
    for (const name of ["h22_compact_json_utf8_base64", "h23_compact_json_utf8_plain_body"]) {
      const bytes = Buffer.from(rawOf(name), "utf8");
      expect(decodeOk(bytes).args).toEqual(decodeOk(rawOf(name)).args);
    }
    expect(decodeOk(rawOf("h22_compact_json_utf8_base64")).args).toEqual([1, "héllo ✓ 😀"]);
    expect(decodeOk(rawOf("h23_compact_json_utf8_plain_body")).args).toEqual([2, "naïve ✓"]);
  });

  describe("timestamps", () => {
    it("reads JavaScript's millisecond form as milliseconds, where Celery 5.2 reads microseconds (h3x_eta_js_iso)", () => {
      const m = decodeOk(rawOf("h3x_eta_js_iso_plus5s"));
      expect(m.eta?.date.toISOString()).toBe("2026-11-25T11:29:59.771Z");
      expect(m.eta?.fractionDigits).toBe(3);
      // The vector's worker ran the task at 11:29:59.001650: it had read .771 as 771 µs.
      const celery = celery52Reading("2026-11-25T11:29:59.771Z");
      expect(celery && formatTimestamp(celery)).toBe("2026-11-25T11:29:59.000771+00:00");
    });

    it("reads a naive timestamp as UTC, keeping its microseconds (h3x_eta_naive)", () => {
      const eta = decodeOk(rawOf("h3x_eta_naive_plus5s")).eta;
      expect(eta?.utcOffsetMinutes).toBeNull();
      expect(eta && formatTimestamp(eta)).toBe("2026-11-25T11:29:59.771323+00:00");
    });

    it("reads an expires in the past like any other; expiring is the worker's decision (h3x_expires_past)", () => {
      const m = decodeOk(rawOf("h3x_expires_past_js_iso"));
      expect(m.expires?.date.toISOString()).toBe("2026-11-25T11:29:49.771Z");
    });

    it("reads eta and expires in JavaScript's Z form (h03)", () => {
      const m = decodeOk(rawOf("h03_full_ts_style_eta_expires_Z"));
      expect([m.eta?.date.toISOString(), m.expires?.date.toISOString()]).toEqual([
        "2026-11-25T11:28:59.170Z",
        "2026-11-25T11:30:56.170Z",
      ]);
    });
  });
});

/** h01 with a change applied to its parsed envelope. */
function h01With(change: (envelope: Record<string, unknown>) => void): string {
  const envelope = JSON.parse(rawOf("h01_minimal_v2_base64")) as Record<string, unknown>;
  change(envelope);
  return JSON.stringify(envelope);
}
const headersOf = (e: Record<string, unknown>) => e["headers"] as Record<string, unknown>;
const propsOf = (e: Record<string, unknown>) => e["properties"] as Record<string, unknown>;
const plainBody = (body: unknown) => (e: Record<string, unknown>) => {
  e["body"] = JSON.stringify(body);
  delete propsOf(e)["body_encoding"];
};

describe("refusing malformed messages with a reason", () => {
  const cases: { name: string; raw: string | Uint8Array; kind: MessageDecodeErrorKind; reason: RegExp }[] = [
    { name: "text that is not JSON", raw: "hello", kind: "not-json", reason: /not JSON/ },
    { name: "bytes that are not UTF-8", raw: Uint8Array.of(0xff, 0xfe), kind: "not-json", reason: /UTF-8/ },
    {
      name: "a JSON array instead of an envelope",
      raw: "[1, 2]",
      kind: "invalid-envelope",
      reason: /an array/,
    },
    {
      name: "headers that are a list",
      raw: h01With((e) => (e["headers"] = [])),
      kind: "invalid-envelope",
      reason: /headers must be an object/,
    },
    {
      name: "an empty delivery tag",
      raw: h01With((e) => (propsOf(e)["delivery_tag"] = "")),
      kind: "invalid-envelope",
      reason: /delivery_tag must be a non-empty string/,
    },
    {
      name: "delivery_info without a routing key",
      raw: h01With((e) => (propsOf(e)["delivery_info"] = { exchange: "" })),
      kind: "invalid-envelope",
      reason: /routing_key/,
    },
    {
      name: "a JSON content type with parameters, which kombu does not accept either",
      raw: h01With((e) => (e["content-type"] = "application/json; charset=utf-8")),
      kind: "content-disallowed",
      reason: /only application\/json/,
    },
    {
      name: "a content encoding other than UTF-8",
      raw: h01With((e) => (e["content-encoding"] = "latin-1")),
      kind: "unsupported-content-encoding",
      reason: /"latin-1"/,
    },
    {
      name: "a body encoding other than base64",
      raw: h01With((e) => (propsOf(e)["body_encoding"] = "gzip")),
      kind: "invalid-body",
      reason: /body_encoding "gzip"/,
    },
    {
      name: "a base64 body that is not base64",
      raw: h01With((e) => (e["body"] = "[[1], {}, {}]")),
      kind: "invalid-body",
      reason: /not valid base64/,
    },
    {
      name: "an empty body",
      raw: h01With((e) => {
        e["body"] = "";
        delete propsOf(e)["body_encoding"];
      }),
      kind: "invalid-body",
      reason: /not JSON/,
    },
    {
      name: "args that are an object",
      raw: h01With((e) => {
        e["body"] = '[{"a": 1}, {}, {}]';
        delete propsOf(e)["body_encoding"];
      }),
      kind: "invalid-body",
      reason: /args \(body\[0\]\) must be an array/,
    },
    {
      name: "kwargs that are a list",
      raw: h01With(plainBody([[], [], {}])),
      kind: "invalid-body",
      reason: /kwargs \(body\[1\]\) must be an object/,
    },
    {
      name: "an embed that is a string",
      raw: h01With(plainBody([[], {}, "x"])),
      kind: "invalid-body",
      reason: /embed/,
    },
    {
      name: "a body naming no task under either protocol",
      raw: h01With((e) => {
        delete headersOf(e)["task"];
      }),
      kind: "invalid-body",
      reason: /neither protocol 2/,
    },
    {
      name: "an empty task id",
      raw: h01With((e) => (headersOf(e)["id"] = "")),
      kind: "missing-task-id",
      reason: /headers\.id must be a non-empty string/,
    },
    {
      name: "a null task name",
      raw: h01With((e) => (headersOf(e)["task"] = null)),
      kind: "invalid-headers",
      reason: /headers\.task: must be the task name/,
    },
    {
      name: "retries as a string",
      raw: h01With((e) => (headersOf(e)["retries"] = "3")),
      kind: "invalid-headers",
      reason: /headers\.retries: must be a non-negative integer/,
    },
    {
      name: "an eta that is not a date",
      raw: h01With((e) => (headersOf(e)["eta"] = "tomorrow")),
      kind: "invalid-headers",
      reason: /headers\.eta: "tomorrow" is not an ISO-8601 date-time/,
    },
    {
      name: "an expires on a day that does not exist",
      raw: h01With((e) => (headersOf(e)["expires"] = "2026-02-30T00:00:00+00:00")),
      kind: "invalid-headers",
      reason: /headers\.expires: .* not a valid calendar date/,
    },
    {
      name: "a time limit with one number",
      raw: h01With((e) => (headersOf(e)["timelimit"] = [10])),
      kind: "invalid-headers",
      reason: /headers\.timelimit/,
    },
    {
      name: "ignore_result as a string",
      raw: h01With((e) => (headersOf(e)["ignore_result"] = "yes")),
      kind: "invalid-headers",
      reason: /headers\.ignore_result: must be true or false/,
    },
  ];

  it.each(cases)("refuses $name as $kind", ({ raw, kind, reason }) => {
    const decoded = decodeTaskMessage(raw);
    expect(decoded.ok).toBe(false);
    if (decoded.ok) return;
    expect(decoded.error.kind).toBe(kind);
    expect(decoded.error.reason).toMatch(reason);
  });

  it("still reports the task id and delivery tag of a message it refuses for its eta", () => {
    const decoded = decodeTaskMessage(h01With((e) => (headersOf(e)["eta"] = "tomorrow")));
    expect(decoded.ok ? null : [decoded.error.taskId, decoded.error.deliveryTag]).toEqual([
      f5("01"),
      "1f791dc4-348b-43c3-8db4-7e17a9faca6b",
    ]);
  });
});

describe("tolerating what Celery tolerates", () => {
  const cases: { name: string; raw: string; check: (m: TaskMessage) => unknown; expected: unknown }[] = [
    {
      name: "a numeric delivery tag, kept as the digits redis-py would write",
      raw: h01With((e) => (propsOf(e)["delivery_tag"] = 42)),
      check: (m) => m.deliveryTag,
      expected: "42",
    },
    {
      name: "an empty eta string, which Celery reads as no eta",
      raw: h01With((e) => (headersOf(e)["eta"] = "")),
      check: (m) => m.eta,
      expected: null,
    },
    {
      name: "a null embed",
      raw: h01With(plainBody([[1], {}, null])),
      check: (m) => m.embed,
      expected: {},
    },
    {
      name: "a mistyped display-only header, read as null",
      raw: h01With((e) => (headersOf(e)["origin"] = 7)),
      check: (m) => m.origin,
      expected: null,
    },
    {
      name: "a protocol 1 taskset, which is the group",
      raw: h01With((e) => {
        e["headers"] = {};
        e["body"] = JSON.stringify({ task: "t", id: "i", taskset: "g1", group: "ignored" });
        delete propsOf(e)["body_encoding"];
      }),
      check: (m) => [m.group, m.args, m.kwargs],
      expected: ["g1", [], {}],
    },
    {
      name: "a protocol 1 message with utc false, flagged so its naive times can be questioned",
      raw: h01With((e) => {
        e["headers"] = {};
        e["body"] = JSON.stringify({ task: "t", id: "i", utc: false });
        delete propsOf(e)["body_encoding"];
      }),
      check: (m) => m.utc,
      expected: false,
    },
  ];

  it.each(cases)("accepts $name", ({ raw, check, expected }) => {
    const decoded = decodeTaskMessage(raw);
    expect(decoded.ok ? check(decoded.message) : decoded.error.reason).toEqual(expected);
  });
});
