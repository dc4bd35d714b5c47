import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  DEFAULT_VISIBILITY_TIMEOUT_SECONDS,
  decodeTaskMessage,
  decodeUnackedEntry,
  encodeUnackedEntry,
  formatTimestamp,
} from "../../../src/celery/index.ts";
import { TaskError } from "../../../src/worker/errors.ts";
import { defineTask } from "../../../src/worker/task.ts";
import type { TaskContext } from "../../../src/worker/task.ts";
import { unackedEntry } from "../../../src/worker/worker.ts";
import { rawOf } from "../celery/vectors.ts";
import { FakeBroker } from "./fake-broker.ts";
import { T0, celeryMessage, gate, startWorker, useFakeClock } from "./harness.ts";

beforeEach(() => {
  useFakeClock();
});
afterEach(() => {
  vi.useRealTimers();
});

const add = defineTask("app.tasks.add", ({ args }) => Number(args[0]) + Number(args[1]));

describe("a task message from Celery's send_task", () => {
  it("runs the handler and stores SUCCESS with the ack in the same commit", async () => {
    const h = await startWorker([add]);
    const m = celeryMessage("app.tasks.add", { args: [20, 22] });
    h.send(m);
    await h.advance();

    expect(h.broker.result(m.id)).toMatchObject({ status: "SUCCESS", result: 42, task_id: m.id });
    const commit = h.broker.commits.find((c) => c.acks.includes(m.tag));
    expect(commit?.results.map((r) => r.taskId)).toEqual([m.id]);
    expect(h.broker.unacked.size).toBe(0);
  });

  it("hands the handler the request: args, kwargs, id, retries, hostname and the decoded message", async () => {
    let seen: TaskContext | undefined;
    const echo = defineTask("app.tasks.echo", (ctx) => {
      seen = ctx;
      return null;
    });
    const h = await startWorker([echo]);
    const m = celeryMessage("app.tasks.echo", { args: [1, "x"], kwargs: { k: 2 }, retries: 3 });
    h.send(m);
    await h.advance();

    expect(seen).toMatchObject({
      args: [1, "x"],
      kwargs: { k: 2 },
      taskId: m.id,
      name: "app.tasks.echo",
      retries: 3,
      hostname: "cadent@test",
    });
    expect(seen?.message.deliveryTag).toBe(m.tag);
    expect(seen?.signal.aborted).toBe(false);
  });

  it("records the message as unacknowledged, in kombu's entry format, while the handler runs", async () => {
    const running = gate();
    const wait = defineTask("app.tasks.wait", () => running.promise);
    const h = await startWorker([wait]);
    const m = celeryMessage("app.tasks.wait");
    h.send(m);
    await h.advance();

    const entry = h.broker.unacked.get(m.tag);
    const decoded = decodeTaskMessage(m.text);
    if (!decoded.ok || entry === undefined) throw new Error("expected an unacked entry");
    expect(entry).toBe(
      encodeUnackedEntry({ envelope: decoded.message.envelope, exchange: "", routingKey: "celery" }),
    );
    expect(h.broker.unackedIndex.get(m.tag)).toBe(T0.getTime() / 1000);

    running.open();
    await h.advance();
    expect(h.broker.unacked.has(m.tag)).toBe(false);
  });

  it("reports STARTED while the handler runs, then the final state", async () => {
    const running = gate();
    const wait = defineTask("app.tasks.wait", () => running.promise);
    const h = await startWorker([wait]);
    const m = celeryMessage("app.tasks.wait");
    h.send(m);
    await h.advance();
    expect(h.broker.result(m.id)).toMatchObject({
      status: "STARTED",
      result: { pid: 4242, hostname: "cadent@test" },
    });

    running.open();
    await h.advance();
    expect(h.broker.statuses(m.id)).toEqual(["STARTED", "SUCCESS"]);
  });

  it("writes no STARTED for a task that finished before the STARTED write went out", async () => {
    const h = await startWorker([add]);
    const m = celeryMessage("app.tasks.add", { args: [1, 2] });
    h.send(m);
    await h.advance();
    expect(h.broker.statuses(m.id)).toEqual(["SUCCESS"]);
  });

  it("stores nothing for a message with ignore_result", async () => {
    const h = await startWorker([add]);
    const m = celeryMessage("app.tasks.add", { args: [1, 2], ignoreResult: true });
    h.send(m);
    await h.advance();
    expect(h.broker.result(m.id)).toBeNull();
    expect(h.broker.unacked.size).toBe(0);
  });

  it("stores a handler's exception as FAILURE with Celery's exception fields", async () => {
    const fail = defineTask("app.tasks.fail", () => {
      throw new TaskError("ValueError", ["boom"], { module: "builtins" });
    });
    const h = await startWorker([fail]);
    const m = celeryMessage("app.tasks.fail");
    h.send(m);
    await h.advance();
    expect(h.broker.result(m.id)).toMatchObject({
      status: "FAILURE",
      result: { exc_type: "ValueError", exc_message: ["boom"], exc_module: "builtins" },
    });
    expect(h.broker.unacked.size).toBe(0);
  });

  it("treats a handler that throws before returning a promise like one that rejects", async () => {
    const sync = defineTask("app.tasks.sync", (): number => {
      throw new RangeError("out of range");
    });
    const h = await startWorker([sync]);
    const m = celeryMessage("app.tasks.sync");
    h.send(m);
    await h.advance();
    expect(h.broker.result(m.id)).toMatchObject({
      status: "FAILURE",
      result: { exc_type: "RangeError", exc_message: ["out of range"], exc_module: "javascript" },
    });
  });

  it("stores FAILURE EncodeError for a return value JSON cannot hold", async () => {
    const big = defineTask("app.tasks.big", () => 10n);
    const h = await startWorker([big]);
    const m = celeryMessage("app.tasks.big");
    h.send(m);
    await h.advance();
    expect(h.broker.result(m.id)).toMatchObject({
      status: "FAILURE",
      result: { exc_type: "EncodeError", exc_module: "kombu.exceptions" },
    });
  });

  it("never overwrites a stored SUCCESS (a duplicate delivery of a finished task)", async () => {
    const fail = defineTask("app.tasks.add", () => {
      throw new Error("second run fails");
    });
    const broker = new FakeBroker();
    const m = celeryMessage("app.tasks.add");
    broker.results.set(
      `celery-task-meta-${m.id}`,
      JSON.stringify({ status: "SUCCESS", result: 1, task_id: m.id }),
    );
    const h = await startWorker([fail], {}, broker);
    h.send(m);
    await h.advance();
    expect(h.broker.result(m.id)).toMatchObject({ status: "SUCCESS", result: 1 });
  });
});

describe("taking messages", () => {
  it("pops the queues' lanes in kombu's order: priority step first, then queue", async () => {
    const h = await startWorker([add], { queues: ["prio", "celery"] });
    expect(h.broker.pops[0]?.keys).toEqual([
      "prio",
      "celery",
      "prio\x06\x163",
      "celery\x06\x163",
      "prio\x06\x166",
      "celery\x06\x166",
      "prio\x06\x169",
      "celery\x06\x169",
    ]);
  });

  it("takes lower priority numbers first, as Celery on Redis does", async () => {
    const order: number[] = [];
    const record = defineTask("app.tasks.record", ({ args }) => {
      order.push(Number(args[0]));
      return null;
    });
    const broker = new FakeBroker();
    for (const priority of [9, 6, 0, 3]) {
      const m = celeryMessage("app.tasks.record", { args: [priority], priority });
      broker.lpush(m.key, m.text);
    }
    const h = await startWorker([record], { concurrency: 1, prefetchMultiplier: 1 }, broker);
    await h.advance(1000);
    expect(order).toEqual([0, 3, 6, 9]);
  });

  it("moves the queue it just served to the end of the order, so no queue starves another", async () => {
    const h = await startWorker([add], { queues: ["a", "b"] });
    const m = celeryMessage("app.tasks.add", { args: [1, 1], queue: "a" });
    h.send(m);
    await h.advance();
    expect(h.broker.pops.at(-1)?.keys.slice(0, 2)).toEqual(["b", "a"]);
  });

  it("never reserves more than concurrency × prefetch multiplier messages", async () => {
    const running = gate();
    const wait = defineTask("app.tasks.wait", () => running.promise);
    const h = await startWorker([wait], { concurrency: 2, prefetchMultiplier: 3 });
    const messages = Array.from({ length: 10 }, () => celeryMessage("app.tasks.wait"));
    h.send(...messages);
    await h.advance(5_000);

    expect(h.broker.unacked.size).toBe(6);
    expect(h.broker.list("celery")).toHaveLength(4);
    expect(Math.max(...h.broker.pops.map((p) => p.max))).toBeLessThanOrEqual(6);

    running.open();
    await h.advance(5_000);
    expect(h.broker.list("celery")).toHaveLength(0);
    expect(h.broker.unacked.size).toBe(0);
  });

  it("runs at most `concurrency` handlers at once", async () => {
    let active = 0;
    let most = 0;
    const slow = defineTask("app.tasks.slow", async () => {
      active++;
      most = Math.max(most, active);
      await new Promise((r) => setTimeout(r, 100));
      active--;
      return null;
    });
    const h = await startWorker([slow], { concurrency: 3 });
    h.send(...Array.from({ length: 10 }, () => celeryMessage("app.tasks.slow")));
    await h.advance(2_000);
    expect(most).toBe(3);
    expect(h.broker.commits.flatMap((c) => c.acks)).toHaveLength(10);
  });
});

describe("messages that cannot be run", () => {
  // Every hand-crafted vector that crashes a Python worker or loses the message, plus ones it refuses.
  const cases = [
    { vector: "h05_two_element_body", id: "f5000000-0000-4000-8000-000000000005", excType: "DecodeError" },
    {
      vector: "h06_no_content_type",
      id: "f5000000-0000-4000-8000-000000000006",
      excType: "ContentDisallowed",
    },
    {
      vector: "h10_body_as_json_array_not_string",
      id: "f5000000-0000-4000-8000-000000000010",
      excType: "DecodeError",
    },
    { vector: "h14_no_delivery_info", id: "f5000000-0000-4000-8000-000000000014", excType: "DecodeError" },
    { vector: "h15_no_delivery_tag", id: "f5000000-0000-4000-8000-000000000015", excType: "DecodeError" },
    { vector: "h16_no_id_header", id: null, excType: null },
    { vector: "h17_no_properties", id: "f5000000-0000-4000-8000-000000000017", excType: "DecodeError" },
    {
      vector: "h19_pickle_content_type",
      id: "f5000000-0000-4000-8000-000000000019",
      excType: "ContentDisallowed",
    },
  ] as const;

  it.each(cases)(
    "$vector: FAILURE $excType where it has an id, dead-lettered, never run",
    async ({ vector, id, excType }) => {
      const ran: string[] = [];
      const whoami = defineTask("app.tasks.whoami", ({ taskId }) => {
        ran.push(taskId);
        return null;
      });
      const h = await startWorker([whoami]);
      const raw = rawOf(vector);
      h.broker.lpush("celery", raw);
      await h.advance();

      expect(ran).toEqual([]);
      if (id === null) {
        expect(h.broker.results.size).toBe(0);
      } else {
        expect(h.broker.result(id)).toMatchObject({
          status: "FAILURE",
          result: { exc_type: excType },
          task_id: id,
        });
      }
      expect(h.broker.deadLetters).toHaveLength(1);
      const letter = JSON.parse(h.broker.deadLetters[0] ?? "{}") as Record<string, unknown>;
      expect(letter).toMatchObject({
        reason: "malformed",
        task_id: id,
        queue: "celery",
        message: raw,
        worker: "cadent@test",
      });
      expect(h.broker.unacked.size).toBe(0);
    },
  );

  it("keeps working after malformed messages: the next valid message runs", async () => {
    const h = await startWorker([add]);
    h.broker.lpush("celery", "not json at all", rawOf("h05_two_element_body"), rawOf("h16_no_id_header"));
    const m = celeryMessage("app.tasks.add", { args: [2, 3] });
    h.send(m);
    await h.advance(1_000);
    expect(h.broker.deadLetters).toHaveLength(3);
    expect(h.broker.result(m.id)).toMatchObject({ status: "SUCCESS", result: 5 });
  });

  it("answers an unknown task with FAILURE NotRegistered, acks it and keeps it on the dead-letter list", async () => {
    const h = await startWorker([add]);
    const m = celeryMessage("app.tasks.does_not_exist");
    h.send(m);
    await h.advance();
    expect(h.broker.result(m.id)).toMatchObject({
      status: "FAILURE",
      result: {
        exc_type: "NotRegistered",
        exc_message: ["app.tasks.does_not_exist"],
        exc_module: "celery.exceptions",
      },
      traceback: null,
    });
    expect(JSON.parse(h.broker.deadLetters[0] ?? "{}")).toMatchObject({
      reason: "not-registered",
      message: m.text,
    });
    expect(h.broker.unacked.size).toBe(0);
  });
});

describe("eta and expires", () => {
  const due = new Date(T0.getTime() + 60_000);

  it("holds an eta message until it is due, unacknowledged but outside the prefetch limit", async () => {
    const h = await startWorker([add], { concurrency: 1, prefetchMultiplier: 1 });
    const later = celeryMessage("app.tasks.add", { args: [1, 1], eta: due });
    const now = celeryMessage("app.tasks.add", { args: [2, 2] });
    h.send(later, now);
    await h.advance(1_000);

    expect(h.broker.result(now.id)).toMatchObject({ status: "SUCCESS", result: 4 });
    expect(h.broker.result(later.id)).toBeNull();
    expect(h.broker.unacked.has(later.tag)).toBe(true);

    await h.advance(59_000);
    expect(h.broker.result(later.id)).toMatchObject({ status: "SUCCESS", result: 2 });
    expect(h.broker.unacked.size).toBe(0);
  });

  it("revokes a message whose expires has passed when it arrives, without running it", async () => {
    const ran = vi.fn(() => null);
    const task = defineTask("app.tasks.late", ran);
    const h = await startWorker([task]);
    const m = celeryMessage("app.tasks.late", { expires: new Date(T0.getTime() - 1_000) });
    h.send(m);
    await h.advance();
    expect(ran).not.toHaveBeenCalled();
    expect(h.broker.result(m.id)).toMatchObject({
      status: "REVOKED",
      result: { exc_type: "TaskRevokedError", exc_message: ["expired"], exc_module: "celery.exceptions" },
    });
    expect(h.broker.unacked.size).toBe(0);
  });

  it("revokes an eta message whose expires passes while it waits", async () => {
    const ran = vi.fn(() => null);
    const task = defineTask("app.tasks.late", ran);
    const h = await startWorker([task]);
    const m = celeryMessage("app.tasks.late", { eta: due, expires: new Date(T0.getTime() + 30_000) });
    h.send(m);
    await h.advance(61_000);
    expect(ran).not.toHaveBeenCalled();
    expect(h.broker.result(m.id)).toMatchObject({ status: "REVOKED" });
  });
});

describe("time limits", () => {
  it("aborts the signal at the soft limit with SoftTimeLimitExceeded; a handler that stops fails with it", async () => {
    const polite = defineTask("app.tasks.polite", ({ signal }) => {
      return new Promise((_, reject) =>
        signal.addEventListener("abort", () => reject(signal.reason as Error)),
      );
    });
    const h = await startWorker([polite]);
    const m = celeryMessage("app.tasks.polite", { timeLimit: { soft: 2, hard: 10 } });
    h.send(m);
    await h.advance(1_999);
    expect(h.broker.result(m.id)).toMatchObject({ status: "STARTED" });
    await h.advance(1);
    expect(h.broker.result(m.id)).toMatchObject({
      status: "FAILURE",
      result: { exc_type: "SoftTimeLimitExceeded", exc_message: [2], exc_module: "billiard.exceptions" },
    });
  });

  it("records the time limit, not the AbortError, when an abortable Node API gave up on the signal", async () => {
    const sleepy = defineTask("app.tasks.sleepy", async ({ signal }) => {
      const { setTimeout: delay } = await import("node:timers/promises");
      await delay(60_000, undefined, { signal });
    });
    const h = await startWorker([sleepy]);
    const m = celeryMessage("app.tasks.sleepy", { timeLimit: { soft: 1 } });
    h.send(m);
    await h.advance(1_000);
    expect(h.broker.result(m.id)).toMatchObject({
      status: "FAILURE",
      result: { exc_type: "SoftTimeLimitExceeded", exc_module: "billiard.exceptions" },
    });
  });

  it("records TimeLimitExceeded at the hard limit even if the handler ignores its signal", async () => {
    let abortedWith: unknown;
    const stubborn = defineTask("app.tasks.stubborn", ({ signal }) => {
      signal.addEventListener("abort", () => (abortedWith = signal.reason));
      return new Promise(() => undefined);
    });
    const h = await startWorker([stubborn], { concurrency: 1 });
    const m = celeryMessage("app.tasks.stubborn", { timeLimit: { hard: 3 } });
    const next = celeryMessage("app.tasks.stubborn", { timeLimit: { hard: 3 } });
    h.send(m, next);
    await h.advance(3_000);
    expect(h.broker.result(m.id)).toMatchObject({
      status: "FAILURE",
      result: { exc_type: "TimeLimitExceeded", exc_message: [3], exc_module: "billiard.exceptions" },
    });
    expect(abortedWith).toMatchObject({ type: "TimeLimitExceeded" });
    expect(h.broker.unacked.has(m.tag)).toBe(false);
    // The slot is given to the next message.
    expect(h.broker.result(next.id)).toMatchObject({ status: "STARTED" });
  });

  it("uses the task's default limits when the message sets none", async () => {
    const stubborn = defineTask("app.tasks.stubborn", () => new Promise(() => undefined), {
      timeLimit: { hard: 5 },
    });
    const h = await startWorker([stubborn]);
    const m = celeryMessage("app.tasks.stubborn");
    h.send(m);
    await h.advance(5_000);
    expect(h.broker.result(m.id)).toMatchObject({
      status: "FAILURE",
      result: { exc_type: "TimeLimitExceeded" },
    });
  });
});

describe("ctx.retry()", () => {
  const flaky = defineTask(
    "app.tasks.flaky",
    ({ retries, retry }) => {
      if (retries < 2)
        retry({
          countdown: 1,
          exc: new TaskError("KeyError", [`attempt ${retries}`], { module: "builtins" }),
        });
      return { attempts: retries + 1 };
    },
    { maxRetries: 3 },
  );

  it("stores RETRY, re-publishes the same id with retries + 1, an eta and parent_id = its own id, and acks, in one commit", async () => {
    const h = await startWorker([flaky]);
    const m = celeryMessage("app.tasks.flaky", { args: [2], rootId: "root-1" });
    h.send(m);
    await h.advance();

    expect(h.broker.result(m.id)).toMatchObject({
      status: "RETRY",
      result: { exc_type: "KeyError", exc_message: ["attempt 0"], exc_module: "builtins" },
      children: [[[m.id, null], null]],
      date_done: null,
    });
    const commit = h.broker.commits.find((c) => c.publishes.length > 0);
    expect(commit?.acks).toEqual([m.tag]);
    const republished = decodeTaskMessage(commit?.publishes[0]?.text ?? "");
    if (!republished.ok) throw new Error(republished.error.reason);
    expect(republished.message).toMatchObject({
      id: m.id,
      task: "app.tasks.flaky",
      args: [2],
      retries: 1,
      parentId: m.id,
      rootId: "root-1",
      routingKey: "celery",
    });
    expect(republished.message.eta?.text).toBe(formatTimestamp(new Date(T0.getTime() + 1_000)));
    expect(republished.message.deliveryTag).not.toBe(m.tag);
  });

  it("runs the retries and ends with SUCCESS", async () => {
    const h = await startWorker([flaky]);
    const m = celeryMessage("app.tasks.flaky");
    h.send(m);
    await h.advance(5_000);
    // No STARTED in between: each attempt finished before its STARTED write went out.
    expect(h.broker.statuses(m.id)).toEqual(["RETRY", "RETRY", "SUCCESS"]);
    expect(h.broker.result(m.id)).toMatchObject({
      status: "SUCCESS",
      result: { attempts: 3 },
      parent_id: m.id,
    });
  });

  it("throws `exc` (FAILURE) instead of retrying when the retries are used up", async () => {
    const limited = defineTask("app.tasks.limited", ({ retry }) =>
      retry({ maxRetries: 1, exc: new TaskError("KeyError", ["no more"], { module: "builtins" }) }),
    );
    const h = await startWorker([limited]);
    const m = celeryMessage("app.tasks.limited", { retries: 1 });
    h.send(m);
    await h.advance();
    expect(h.broker.result(m.id)).toMatchObject({
      status: "FAILURE",
      result: { exc_type: "KeyError", exc_message: ["no more"] },
    });
    expect(h.broker.commits.flatMap((c) => c.publishes)).toEqual([]);
  });

  it("throws MaxRetriesExceededError when no `exc` was given", async () => {
    const bare = defineTask("app.tasks.bare", ({ retry }) => retry(), { maxRetries: 0 });
    const h = await startWorker([bare]);
    const m = celeryMessage("app.tasks.bare", { args: [7] });
    h.send(m);
    await h.advance();
    expect(h.broker.result(m.id)).toMatchObject({
      status: "FAILURE",
      result: {
        exc_type: "MaxRetriesExceededError",
        exc_message: [`Can't retry app.tasks.bare[${m.id}] args:(7,) kwargs:{}`],
        exc_module: "celery.exceptions",
      },
    });
  });

  it("waits the task's retry delay (Celery's 180 s default) for a retry without a countdown", async () => {
    const bare = defineTask("app.tasks.bare", ({ retry, retries }) => (retries === 0 ? retry() : "done"));
    const h = await startWorker([bare]);
    const m = celeryMessage("app.tasks.bare");
    h.send(m);
    await h.advance();
    expect(h.broker.result(m.id)).toMatchObject({ status: "RETRY", result: null });
    await h.advance(179_000);
    expect(h.broker.result(m.id)).toMatchObject({ status: "RETRY" });
    await h.advance(1_000);
    expect(h.broker.result(m.id)).toMatchObject({ status: "SUCCESS", result: "done" });
  });
});

describe("visibility timeout", () => {
  it("restores messages older than the visibility timeout at start, then every half timeout (at most 60 s)", async () => {
    const h = await startWorker([add], { visibilityTimeoutSeconds: 10 });
    expect(h.broker.restoreVisibleCalls).toEqual([{ now: T0, visibilityTimeoutSeconds: 10 }]);
    await h.advance(5_000);
    expect(h.broker.restoreVisibleCalls).toHaveLength(2);
  });

  it("defaults to kombu's one hour", async () => {
    const h = await startWorker([add]);
    expect(h.broker.restoreVisibleCalls[0]?.visibilityTimeoutSeconds).toBe(
      DEFAULT_VISIBILITY_TIMEOUT_SECONDS,
    );
  });

  it("hands out again a message another worker left unacknowledged longer than the timeout", async () => {
    const broker = new FakeBroker();
    const m = celeryMessage("app.tasks.add", { args: [1, 2] });
    const decoded = decodeTaskMessage(m.text);
    if (!decoded.ok) throw new Error("bad fixture");
    broker.unacked.set(m.tag, unackedEntry(m.text, decoded.message));
    broker.unackedIndex.set(m.tag, T0.getTime() / 1000 - 11);
    const h = await startWorker([add], { visibilityTimeoutSeconds: 10 }, broker);
    await h.advance(1_000);
    expect(h.broker.restoredTags).toEqual([m.tag]);
    expect(h.broker.result(m.id)).toMatchObject({ status: "SUCCESS", result: 3 });
  });

  it("refreshes the delivery time of the messages it holds, so a long task is not restored elsewhere", async () => {
    const running = gate();
    const wait = defineTask("app.tasks.wait", () => running.promise);
    const h = await startWorker([wait], { visibilityTimeoutSeconds: 8 });
    const m = celeryMessage("app.tasks.wait");
    h.send(m);
    await h.advance(20_000);
    expect(h.broker.unackedIndex.get(m.tag)).toBe((T0.getTime() + 20_000) / 1000);
    expect(h.broker.restoredTags).toEqual([]);
    running.open();
  });
});

describe("unacked entries", () => {
  it("are byte for byte kombu's for a message Celery wrote (w02)", () => {
    const raw = rawOf("w02_unacked_entry_on_delivery");
    // The entry is `[<message as Celery wrote it>, "", "celery"]`.
    const message = raw.slice(1, -', "", "celery"]'.length);
    const decoded = decodeTaskMessage(message);
    if (!decoded.ok) throw new Error(decoded.error.reason);
    expect(unackedEntry(message, decoded.message)).toBe(raw);
  });

  it("hold the same JSON value for a compact message with raw UTF-8 (h22)", () => {
    const raw = rawOf("h22_compact_json_utf8_base64");
    const decoded = decodeTaskMessage(raw);
    if (!decoded.ok) throw new Error(decoded.error.reason);
    const entry = decodeUnackedEntry(unackedEntry(raw, decoded.message));
    expect(entry.ok && entry.entry.envelope).toEqual(JSON.parse(raw));
  });
});

describe("shutdown", () => {
  it("hands back messages not started, lets running ones finish, and acks them", async () => {
    const running = gate();
    const wait = defineTask("app.tasks.wait", () => running.promise);
    const h = await startWorker([wait], { concurrency: 1, prefetchMultiplier: 4 });
    const [first, ...rest] = Array.from({ length: 4 }, () => celeryMessage("app.tasks.wait"));
    if (first === undefined) throw new Error("no message");
    h.send(first, ...rest);
    await h.advance();

    const closed = h.worker.close({ graceMs: 10_000 });
    await h.advance();
    expect(h.broker.restoredTags.sort()).toEqual(rest.map((m) => m.tag).sort());
    const requeued = h.broker.list("celery").map((text) => decodeTaskMessage(text));
    expect(requeued.every((d) => d.ok && d.message.redelivered)).toBe(true);

    running.open();
    await h.advance(1_000);
    const report = await closed;
    expect(report).toEqual({ handedBack: 3, abandoned: 0, clean: true });
    expect(h.broker.result(first.id)).toMatchObject({ status: "SUCCESS" });
    expect(h.broker.unacked.size).toBe(0);
    expect(h.broker.closed).toBe(true);
  });

  it("aborts tasks still running when the grace period ends and hands their messages back", async () => {
    let reason: unknown;
    const stubborn = defineTask("app.tasks.stubborn", ({ signal }) => {
      signal.addEventListener("abort", () => (reason = signal.reason));
      return new Promise(() => undefined);
    });
    const h = await startWorker([stubborn]);
    const m = celeryMessage("app.tasks.stubborn");
    h.send(m);
    await h.advance();

    const closed = h.worker.close({ graceMs: 5_000 });
    await h.advance(4_999);
    expect(h.broker.restoredTags).toEqual([]);
    await h.advance(1_001);
    expect(await closed).toEqual({ handedBack: 1, abandoned: 1, clean: true });
    expect(reason).toMatchObject({ type: "WorkerShutdown" });
    expect(h.broker.restoredTags).toEqual([m.tag]);
    expect(h.broker.result(m.id)).toMatchObject({ status: "STARTED" });
  });

  it("cuts the grace period short when asked again with no grace (a second SIGTERM)", async () => {
    const stubborn = defineTask("app.tasks.stubborn", () => new Promise(() => undefined));
    const h = await startWorker([stubborn]);
    h.send(celeryMessage("app.tasks.stubborn"));
    await h.advance();
    const closed = h.worker.close({ graceMs: 60_000 });
    await h.advance(1_000);
    void h.worker.close({ graceMs: 0 });
    await h.advance(1_000);
    expect(await closed).toMatchObject({ abandoned: 1 });
  });

  it("hands back, without running them, messages whose recording finished after shutdown began", async () => {
    const ran = vi.fn(() => null);
    const task = defineTask("app.tasks.late", ran);
    const h = await startWorker([task]);
    const recorded = gate();
    const record = h.broker.recordUnacked.bind(h.broker);
    h.broker.recordUnacked = async (records, now) => {
      await recorded.promise;
      return record(records, now);
    };
    const m = celeryMessage("app.tasks.late");
    h.send(m);
    await h.advance();
    const closed = h.worker.close({ graceMs: 5_000 });
    recorded.open();
    await h.advance(2_000);
    expect(await closed).toMatchObject({ clean: true });
    expect(ran).not.toHaveBeenCalled();
    expect(h.broker.restoredTags).toEqual([m.tag]);
    expect(h.broker.unacked.size).toBe(0);
  });

  it("puts back, in order, messages a pop returned after shutdown began", async () => {
    const h = await startWorker([add], { concurrency: 1, prefetchMultiplier: 1 });
    const closed = h.worker.close({ graceMs: 0 });
    const late = celeryMessage("app.tasks.add", { args: [1, 1] });
    h.send(late);
    await h.advance(1_000);
    await closed;
    expect(h.broker.list("celery")).toEqual([late.text]);
    expect(h.broker.result(late.id)).toBeNull();
  });
});

describe("a broker outage", () => {
  it("does not keep a shutdown waiting forever: unanswered hand-backs are left to the visibility timeout", async () => {
    const running = gate();
    const wait = defineTask("app.tasks.wait", () => running.promise);
    const h = await startWorker([wait], { concurrency: 1 });
    h.send(celeryMessage("app.tasks.wait"), celeryMessage("app.tasks.wait"));
    await h.advance();
    h.broker.restore = () => new Promise(() => undefined);
    h.broker.pop = () => new Promise(() => undefined);
    let report: unknown;
    void h.worker.close({ graceMs: 0 }).then((r) => (report = r));
    await h.advance(30_000);
    expect(report).toEqual({ handedBack: 2, abandoned: 1, clean: false });
    expect(
      h.logged(
        "could not hand messages back; they stay unacknowledged and are restored after the visibility timeout",
      ),
    ).toHaveLength(2);
  });

  it("retries a commit that failed until it is written", async () => {
    const h = await startWorker([add]);
    h.broker.failCommits = 2;
    const m = celeryMessage("app.tasks.add", { args: [1, 1] });
    h.send(m);
    await h.advance();
    expect(h.broker.result(m.id)).toBeNull();
    await h.advance(1_000);
    expect(h.broker.result(m.id)).toMatchObject({ status: "SUCCESS", result: 2 });
    expect(h.logged("cannot store results and acknowledgements; retrying")).toHaveLength(2);
  });
});
