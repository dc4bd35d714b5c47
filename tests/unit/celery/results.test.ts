import { describe, expect, it } from "vitest";
import {
  DEFAULT_RESULT_EXPIRES_SECONDS,
  decodeResult,
  encodeResult,
  errorOfResult,
  mayOverwrite,
  notRegisteredException,
  phaseOfResult,
  pythonJsonDumps,
  resultChannel,
  resultKey,
} from "../../../src/celery/index.ts";
import type {
  ExceptionInput,
  JsonValue,
  ResultInput,
  ResultMeta,
  ResultPhase,
} from "../../../src/celery/index.ts";
import { field, rawOf, vectorFiles } from "./vectors.ts";

function decodeOk(raw: string): ResultMeta {
  const decoded = decodeResult(raw);
  if (!decoded.ok) throw new Error(decoded.reason);
  return decoded.meta;
}

const resultVectors = vectorFiles().filter((name) => name.startsWith("r"));

/** What each stored value means for a Task. */
const PHASES: Record<string, { kind: ResultMeta["kind"]; phase: ResultPhase }> = {
  r01_success_dict: { kind: "success", phase: "Succeeded" },
  r02_success_int: { kind: "success", phase: "Succeeded" },
  r03_failure_builtin_exc: { kind: "failure", phase: "Failed" },
  r04_failure_custom_exc: { kind: "failure", phase: "Failed" },
  r05_retry_with_exc: { kind: "retry", phase: "Retrying" },
  r06_retry_second_has_parent_id: { kind: "retry", phase: "Retrying" },
  r07_success_after_retries: { kind: "success", phase: "Succeeded" },
  r08_retry_without_exc: { kind: "retry", phase: "Retrying" },
  r09_revoked_expired: { kind: "revoked", phase: "Expired" },
  r10_started_track_started: { kind: "started", phase: "Running" },
  r11_success_result_extended: { kind: "success", phase: "Succeeded" },
  r12_failure_result_extended: { kind: "failure", phase: "Failed" },
  r13_started_ignore_result_stuck: { kind: "started", phase: "Running" },
  r14_failure_not_registered: { kind: "failure", phase: "Failed" },
};

describe("reading every captured result value", () => {
  it("has a phase for every r vector", () => {
    expect(Object.keys(PHASES).sort()).toEqual(resultVectors);
  });

  it.each(resultVectors)("reads %s into the kind and Task phase of the table", (name) => {
    const meta = decodeOk(rawOf(name));
    const expected = PHASES[name];
    expect({ kind: meta.kind, phase: phaseOfResult(meta) }).toEqual(expected);
    const decoded = field<Record<string, JsonValue>>(name, "decoded");
    expect([meta.status, meta.taskId, meta.result]).toEqual([
      decoded["status"],
      decoded["task_id"],
      decoded["result"],
    ]);
  });

  it.each(resultVectors)("reads %s from the key and channel Celery used, with its TTL", (name) => {
    const meta = decodeOk(rawOf(name));
    expect(resultKey(meta.taskId ?? "")).toBe(field(name, "redis_key"));
    expect(resultChannel(meta.taskId ?? "")).toBe(field(name, "publish_channel"));
  });

  it("expires results after the day Celery keeps them by default", () => {
    expect(DEFAULT_RESULT_EXPIRES_SECONDS).toBe(field("r01_success_dict", "ttl_seconds_set"));
  });

  it("reads a built-in exception and its str() (r03)", () => {
    const meta = decodeOk(rawOf("r03_failure_builtin_exc"));
    expect(errorOfResult(meta)).toEqual({
      type: "ValueError",
      module: "builtins",
      message: "boom",
      traceback: field<Record<string, JsonValue>>("r03_failure_builtin_exc", "decoded")["traceback"],
    });
  });

  it("renders several exception args as Python's traceback does (r04)", () => {
    const error = errorOfResult(decodeOk(rawOf("r04_failure_custom_exc")));
    expect([error?.type, error?.module, error?.message]).toEqual(["CustomError", "app.tasks", "(42, 'bad')"]);
    expect(error?.traceback).toContain(`app.tasks.CustomError: ${error?.message}`);
  });

  it("reads a bare retry as a retry without an exception (r08)", () => {
    const meta = decodeOk(rawOf("r08_retry_without_exc"));
    expect(meta.kind === "retry" && meta.exception).toBeNull();
    expect(errorOfResult(meta)).toBeNull();
  });

  it("reads the retry's child and the retried task's parent (r05, r06)", () => {
    const first = decodeOk(rawOf("r05_retry_with_exc"));
    expect(first.children).toEqual([[[first.taskId, null], null]]);
    expect(first.parentId).toBeNull();
    expect(first.dateDone).toBeNull();
    expect(decodeOk(rawOf("r06_retry_second_has_parent_id")).parentId).toBe(first.taskId);
  });

  it("reads who started the task (r10)", () => {
    const meta = decodeOk(rawOf("r10_started_track_started"));
    expect(meta.kind === "started" && [meta.pid, meta.hostname]).toEqual([10251, "w2solo_late@vm"]);
  });

  it("reads the extended fields (r11)", () => {
    expect(decodeOk(rawOf("r11_success_result_extended")).extended).toEqual({
      name: "app.tasks.del_redis_data",
      args: [1, "x"],
      kwargs: { k: 2 },
      worker: "w3@vm",
      retries: 0,
      queue: "celery",
    });
    expect(decodeOk(rawOf("r01_success_dict")).extended).toBeNull();
  });

  it("reads when the task finished, to the microsecond (r01)", () => {
    const done = decodeOk(rawOf("r01_success_dict")).dateDone;
    expect([done?.date.toISOString(), done?.microsecond, done?.utcOffsetMinutes]).toEqual([
      "2026-11-25T11:23:28.896Z",
      896145,
      null,
    ]);
  });

  it("reads why a task was revoked (r09)", () => {
    const meta = decodeOk(rawOf("r09_revoked_expired"));
    expect(meta.kind === "revoked" && meta.reason).toBe("expired");
    expect(errorOfResult(meta)?.type).toBe("TaskRevokedError");
  });
});

describe("reading the results workers stored for hand-crafted messages", () => {
  const outcomes = vectorFiles().flatMap((name) => {
    const outcome = name.startsWith("h")
      ? field<{ result_meta?: JsonValue } | undefined>(name, "outcome")
      : undefined;
    return outcome?.result_meta ? [{ name, meta: outcome.result_meta }] : [];
  });

  it.each(outcomes)("reads the result stored for $name", ({ meta }) => {
    const decoded = decodeResult(pythonJsonDumps(meta));
    expect(decoded.ok && decoded.meta.status).toBe((meta as { status: string }).status);
  });

  it("reads the expired message's REVOKED result as Expired (h3x_expires_past)", () => {
    const outcome = field<{ result_meta: JsonValue }>("h3x_expires_past_js_iso", "outcome");
    expect(phaseOfResult(decodeOk(pythonJsonDumps(outcome.result_meta)))).toBe("Expired");
  });
});

describe("phases for states the vectors do not show", () => {
  const table: { status: string; result: JsonValue; phase: ResultPhase }[] = [
    {
      status: "REVOKED",
      result: { exc_type: "TaskRevokedError", exc_message: ["revoked"], exc_module: "celery.exceptions" },
      phase: "Cancelled",
    },
    {
      status: "REVOKED",
      result: { exc_type: "TaskRevokedError", exc_message: ["terminated"], exc_module: "celery.exceptions" },
      phase: "Cancelled",
    },
    { status: "PENDING", result: null, phase: "Pending" },
    { status: "PROGRESS", result: { done: 3, total: 10 }, phase: "Running" },
  ];
  it.each(table)("maps $status with $result to $phase", ({ status, result, phase }) => {
    const meta = decodeOk(
      pythonJsonDumps({ status, result, traceback: null, children: [], date_done: null, task_id: "t" }),
    );
    expect(phaseOfResult(meta)).toBe(phase);
  });

  it("reads an exception message stored as a string, as Celery before 4 did", () => {
    const meta = decodeOk('{"status": "FAILURE", "result": {"exc_type": "KeyError", "exc_message": "k"}}');
    expect(errorOfResult(meta)).toEqual({ type: "KeyError", module: null, message: "k", traceback: null });
  });
});

describe("refusing values that are not results", () => {
  const table = [
    { raw: "not json", reason: /not JSON/ },
    { raw: "[]", reason: /must be a JSON object/ },
    { raw: '{"result": 1}', reason: /no status/ },
    { raw: Uint8Array.of(0xc3), reason: /UTF-8/ },
  ];
  it.each(table)("refuses $raw", ({ raw, reason }) => {
    const decoded = decodeResult(raw);
    expect(decoded.ok ? "" : decoded.reason).toMatch(reason);
  });
});

/** The encoder's input that reproduces a stored value, from what the decoder read of it. */
function inputFrom(meta: ResultMeta): ResultInput {
  // Non-ready states store no date; any time will do for them.
  const now = meta.dateDone ?? new Date("2026-11-25T00:00:00Z");
  const common = {
    taskId: meta.taskId ?? "",
    now,
    groupId: meta.groupId,
    parentId: meta.parentId,
    extended: meta.extended,
  };
  const exception = (m: { exception: { type: string; module: string | null; args: JsonValue[] } | null }) =>
    m.exception &&
    ({ type: m.exception.type, module: m.exception.module ?? "", args: m.exception.args } as ExceptionInput);
  switch (meta.kind) {
    case "success":
      return { ...common, status: "SUCCESS", result: meta.result };
    case "failure": {
      const exc = exception(meta);
      if (exc === null) throw new Error("failure without exception");
      return { ...common, status: "FAILURE", exception: exc, traceback: meta.traceback };
    }
    case "retry":
      return { ...common, status: "RETRY", exception: exception(meta), traceback: meta.traceback };
    case "started":
      return { ...common, status: "STARTED", pid: meta.pid ?? 0, hostname: meta.hostname ?? "" };
    case "revoked":
      return { ...common, status: "REVOKED", reason: meta.reason ?? "" };
    default:
      throw new Error(`no encoder input for ${meta.status}`);
  }
}

describe("writing result values as Celery writes them", () => {
  it.each(resultVectors)("writes %s byte for byte", (name) => {
    const encoded = encodeResult(inputFrom(decodeOk(rawOf(name))));
    expect(JSON.parse(encoded)).toEqual(field(name, "decoded"));
    expect(encoded).toBe(rawOf(name));
  });

  const TASK = "9f0c0000-0000-4000-8000-000000000001";
  const FINISHED = new Date("2026-12-01T06:00:01.250Z");

  it("writes SUCCESS with the naive UTC time it finished", () => {
    expect(encodeResult({ taskId: TASK, now: FINISHED, status: "SUCCESS", result: { deleted: 42 } })).toBe(
      `{"status": "SUCCESS", "result": {"deleted": 42}, "traceback": null, "children": [], ` +
        `"date_done": "2026-12-01T06:00:01.250000", "task_id": "${TASK}"}`,
    );
  });

  it("writes STARTED and RETRY without a date, and the retry as the task's child", () => {
    const started = JSON.parse(
      encodeResult({ taskId: TASK, now: FINISHED, status: "STARTED", pid: 7, hostname: "w@h" }),
    );
    expect([started.result, started.date_done, started.children]).toEqual([
      { pid: 7, hostname: "w@h" },
      null,
      [],
    ]);
    const retry = JSON.parse(
      encodeResult({ taskId: TASK, now: FINISHED, status: "RETRY", exception: null, traceback: "tb" }),
    );
    expect([retry.result, retry.date_done, retry.children]).toEqual([null, null, [[[TASK, null], null]]]);
  });

  it("writes an unknown task's FAILURE as Celery's NotRegistered (r14)", () => {
    const value = encodeResult({
      taskId: "f5000000-0000-4000-8000-000000000009",
      now: { date: new Date("2026-11-25T11:29:07.228Z"), microsecond: 228290 },
      status: "FAILURE",
      exception: notRegisteredException("app.tasks.does_not_exist"),
      traceback: null,
    });
    expect(value).toBe(rawOf("r14_failure_not_registered"));
  });

  it("writes a group id before the parent id, both only when set", () => {
    const value = JSON.parse(
      encodeResult({
        taskId: TASK,
        now: FINISHED,
        status: "SUCCESS",
        result: 1,
        groupId: "g",
        parentId: "p",
      }),
    );
    expect(Object.keys(value)).toEqual([
      "status",
      "result",
      "traceback",
      "children",
      "date_done",
      "group_id",
      "parent_id",
      "task_id",
    ]);
  });
});

describe("never replacing a stored SUCCESS", () => {
  const table: { name: string; stored: string | null; may: boolean }[] = [
    { name: "nothing", stored: null, may: true },
    { name: "a SUCCESS", stored: rawOf("r01_success_dict"), may: false },
    { name: "a FAILURE", stored: rawOf("r03_failure_builtin_exc"), may: true },
    { name: "a RETRY", stored: rawOf("r05_retry_with_exc"), may: true },
    { name: "a STARTED", stored: rawOf("r10_started_track_started"), may: true },
    { name: "a value that is not a result", stored: "garbage", may: true },
  ];
  it.each(table)("may write over $name: $may", ({ stored, may }) => {
    expect(mayOverwrite(stored)).toBe(may);
  });
});
