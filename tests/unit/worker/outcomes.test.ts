import { describe, expect, it } from "vitest";
import {
  decodeTaskMessage,
  formatTimestamp,
  parseTimestamp,
  pythonJsonDumps,
} from "../../../src/celery/index.ts";
import type { JsonObject, TaskMessage } from "../../../src/celery/index.ts";
import { TaskError, recordError } from "../../../src/worker/errors.ts";
import {
  expired,
  failed,
  maxRetriesMessage,
  notRegistered,
  refused,
  retried,
  startedResult,
  succeeded,
} from "../../../src/worker/outcomes.ts";
import { field, rawOf } from "../celery/vectors.ts";

function decode(text: string): TaskMessage {
  const decoded = decodeTaskMessage(text);
  if (!decoded.ok) throw new Error(decoded.error.reason);
  return decoded.message;
}

/** A minimal message with this id, as the r-vectors' tasks were sent. */
function messageWithId(id: string, task = "app.tasks.x"): TaskMessage {
  return decode(
    JSON.stringify({
      body: JSON.stringify([[], {}, {}]),
      "content-type": "application/json",
      headers: { task, id },
      properties: { delivery_tag: `tag-${id}`, delivery_info: { exchange: "", routing_key: "celery" } },
    }),
  );
}

/** The instant a vector's result was written (its naive UTC date_done). */
function doneAt(vector: string): Date {
  const decoded = field<{ date_done: string }>(vector, "decoded");
  const parsed = parseTimestamp(decoded.date_done);
  if (!parsed.ok) throw new Error(parsed.reason);
  return parsed.value.date;
}

describe("results, byte for byte as Celery writes them", () => {
  it("REVOKED for an expired message (r09)", () => {
    const message = messageWithId("e1000000-0000-4000-8000-000000000008");
    const now = doneAt("r09_revoked_expired");
    // date_done carries microseconds in the vector; a Date has milliseconds, so compare the rest.
    const written = JSON.parse(
      expired(message, { hostname: "w", pid: 1, now }).result?.value ?? "null",
    ) as JsonObject;
    const vector = field<JsonObject>("r09_revoked_expired", "decoded");
    expect({ ...written, date_done: null }).toEqual({ ...vector, date_done: null });
  });

  it("FAILURE NotRegistered for an unknown task (r14)", () => {
    const message = messageWithId("f5000000-0000-4000-8000-000000000009", "app.tasks.does_not_exist");
    const commit = notRegistered(
      message,
      { hostname: "w", pid: 1, now: doneAt("r14_failure_not_registered") },
      "celery",
      "raw",
    );
    const written = JSON.parse(commit.result?.value ?? "null") as JsonObject;
    expect({ ...written, date_done: null }).toEqual({
      ...field<JsonObject>("r14_failure_not_registered", "decoded"),
      date_done: null,
    });
    expect(commit.ack).toBe(message.deliveryTag);
  });

  it("STARTED with the worker's pid and hostname (r10)", () => {
    const message = messageWithId("e2000000-0000-4000-8000-000000000003");
    const started = startedResult(message, { hostname: "w2solo_late@vm", pid: 10251, now: new Date() });
    expect(started?.value).toBe(rawOf("r10_started_track_started"));
  });

  it("SUCCESS with the returned value; undefined is stored as null (Python's None)", () => {
    const message = messageWithId("id-1");
    const now = new Date("2026-11-25T11:23:28.896Z");
    expect(succeeded(message, { hostname: "w", pid: 1, now }, { a: 1 }).result?.value).toBe(
      '{"status": "SUCCESS", "result": {"a": 1}, "traceback": null, "children": [], "date_done": "2026-11-25T11:23:28.896000", "task_id": "id-1"}',
    );
    expect(
      JSON.parse(succeeded(message, { hostname: "w", pid: 1, now }, undefined).result?.value ?? ""),
    ).toMatchObject({
      result: null,
    });
  });

  it("FAILURE with the exception's args as exc_message (r04)", () => {
    const message = messageWithId("e1000000-0000-4000-8000-000000000004");
    const error = recordError(new TaskError("CustomError", [42, "bad"], { module: "app.tasks" }));
    const written = JSON.parse(
      failed(message, { hostname: "w", pid: 1, now: new Date() }, error).result?.value ?? "",
    );
    expect(written.result).toEqual(field<JsonObject>("r04_failure_custom_exc", "decoded")["result"]);
  });
});

describe("a retry (ctx.retry)", () => {
  // The message whose retry w01 shows: the same, before its first retry.
  const w01 = field<JsonObject & { headers: JsonObject; properties: JsonObject }>(
    "w01_retry_message_published_by_worker",
    "envelope",
  );
  const original = structuredClone(w01);
  Object.assign(original.headers, { eta: null, retries: 0, parent_id: null, origin: "gen9245@vm" });
  delete original.properties["replaced_task_nesting"];
  delete original.properties["origin"];
  original.properties["delivery_tag"] = "original-tag";
  const message = decode(pythonJsonDumps(original));
  const eta = new Date("2026-11-25T11:23:30.001Z");
  const writer = { hostname: "gen9294@vm", pid: 9294, now: new Date("2026-11-25T11:23:29.001Z") };

  it("re-publishes the message Celery's worker publishes (w01): same id, retries + 1, eta, parent_id = own id", () => {
    const commit = retried(message, writer, { eta, countdown: 1, exc: undefined }, "celery");
    expect(commit.publish?.key).toBe("celery");
    const republished = JSON.parse(commit.publish?.text ?? "") as typeof w01;
    const expected = structuredClone(w01);
    // cadent is the producer of the retry: lang "ts"; a fresh delivery tag; eta to the millisecond.
    Object.assign(expected.headers, { lang: "ts", eta: formatTimestamp(eta) });
    expected.properties["delivery_tag"] = republished.properties["delivery_tag"] ?? null;
    expect(republished).toEqual(expected);
    expect(republished.properties["delivery_tag"]).not.toBe("original-tag");
    expect(commit.ack).toBe("original-tag");
  });

  it("stores RETRY with the exception, children holding the retry, and no date_done (r05)", () => {
    const r05 = field<JsonObject>("r05_retry_with_exc", "decoded");
    const exc = new TaskError("KeyError", ["attempt 0"], { module: "builtins" });
    const id = String(r05["task_id"]);
    const commit = retried(messageWithId(id), writer, { eta, countdown: 1, exc }, "celery");
    const written = JSON.parse(commit.result?.value ?? "") as JsonObject;
    expect({ ...written, traceback: null }).toEqual({ ...r05, traceback: null });
    expect(written["traceback"]).toMatch(
      /celery\.exceptions\.Retry: Retry in 1s: KeyError\('attempt 0'\)\n$/,
    );
  });

  it("stores RETRY with a null result for a bare retry (r08)", () => {
    const commit = retried(messageWithId("id-8"), writer, { eta, countdown: 1, exc: undefined }, "celery");
    expect(JSON.parse(commit.result?.value ?? "")).toMatchObject({ status: "RETRY", result: null });
  });

  it("goes to the queue it was consumed from when the routing key is empty", () => {
    const orphan = decode(
      JSON.stringify({
        body: JSON.stringify([[], {}, {}]),
        "content-type": "application/json",
        headers: { task: "t", id: "id-9" },
        properties: { delivery_tag: "t9", delivery_info: { exchange: "", routing_key: "" }, priority: 9 },
      }),
    );
    expect(retried(orphan, writer, { eta, countdown: 1, exc: undefined }, "reports").publish?.key).toBe(
      "reports\x06\x169",
    );
  });

  it("explains exhausted retries as Celery does", () => {
    expect(maxRetriesMessage(messageWithId("id-1", "app.tasks.flaky"))).toBe(
      "Can't retry app.tasks.flaky[id-1] args:() kwargs:{}",
    );
  });
});

describe("a refused message", () => {
  it.each([
    ["h06_no_content_type", "ContentDisallowed", "kombu.exceptions"],
    ["h19_pickle_content_type", "ContentDisallowed", "kombu.exceptions"],
    ["h10_body_as_json_array_not_string", "DecodeError", "kombu.exceptions"],
    ["h05_two_element_body", "DecodeError", "kombu.exceptions"],
  ])("%s is answered with FAILURE %s and dead-lettered", (vector, excType, excModule) => {
    const raw = rawOf(vector);
    const decoded = decodeTaskMessage(raw);
    if (decoded.ok) throw new Error("expected a refusal");
    const commit = refused(decoded.error, { hostname: "w@h", pid: 1, now: new Date() }, "celery", raw);
    expect(JSON.parse(commit.result?.value ?? "")).toMatchObject({
      status: "FAILURE",
      result: { exc_type: excType, exc_module: excModule },
      task_id: decoded.error.taskId,
    });
    expect(JSON.parse(commit.deadLetter ?? "")).toMatchObject({
      reason: "malformed",
      kind: decoded.error.kind,
      message: raw,
    });
    expect(commit.ack).toBeUndefined();
  });

  it("with an invalid eta is InvalidTaskError", () => {
    const raw = JSON.stringify({
      body: JSON.stringify([[], {}, {}]),
      "content-type": "application/json",
      headers: { task: "t", id: "id-1", eta: "tomorrow" },
      properties: { delivery_tag: "t1", delivery_info: { exchange: "", routing_key: "celery" } },
    });
    const decoded = decodeTaskMessage(raw);
    if (decoded.ok) throw new Error("expected a refusal");
    const commit = refused(decoded.error, { hostname: "w@h", pid: 1, now: new Date() }, "celery", raw);
    expect(JSON.parse(commit.result?.value ?? "")).toMatchObject({
      result: { exc_type: "InvalidTaskError" },
    });
  });

  it("without a task id gets no result, only the dead letter", () => {
    const raw = rawOf("h16_no_id_header");
    const decoded = decodeTaskMessage(raw);
    if (decoded.ok) throw new Error("expected a refusal");
    const commit = refused(decoded.error, { hostname: "w@h", pid: 1, now: new Date() }, "celery", raw);
    expect(commit.result).toBeNull();
    expect(commit.deadLetter).toContain('"kind": "missing-task-id"');
  });
});
