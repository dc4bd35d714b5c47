import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { BrokerUnavailableError } from "../../../src/worker/broker.ts";
import { Committer } from "../../../src/worker/committer.ts";
import { CommitRejectedError } from "../../../src/worker/redis-broker.ts";
import { silentLogger } from "../../../src/runtime/logger.ts";
import { FakeBroker } from "./fake-broker.ts";
import { useFakeClock } from "./harness.ts";

beforeEach(() => useFakeClock());
afterEach(() => vi.useRealTimers());

const result = (taskId: string, status: string) => ({
  taskId,
  value: JSON.stringify({ status, task_id: taskId }),
});

describe("the committer", () => {
  it("writes what one event-loop turn submits in one commit: results, retries, dead letters, acks", async () => {
    const broker = new FakeBroker();
    const committer = new Committer({ broker, logger: silentLogger });
    const done = Promise.all([
      committer.submit({ result: result("a", "SUCCESS"), ack: "tag-a" }),
      committer.submit({
        result: result("b", "RETRY"),
        publish: { key: "celery", text: "retry-b" },
        ack: "tag-b",
      }),
      committer.submit({ deadLetter: "letter" }),
    ]);
    await done;
    expect(broker.commits).toEqual([
      {
        results: [result("a", "SUCCESS"), result("b", "RETRY")],
        publishes: [{ key: "celery", text: "retry-b" }],
        deadLetters: ["letter"],
        acks: ["tag-a", "tag-b"],
      },
    ]);
  });

  it("drops a STARTED whose task's final state joins the same commit", async () => {
    const broker = new FakeBroker();
    const committer = new Committer({ broker, logger: silentLogger });
    committer.started(result("a", "STARTED"));
    committer.started(result("b", "STARTED"));
    await committer.submit({ result: result("a", "SUCCESS"), ack: "tag-a" });
    expect(broker.commits[0]?.results).toEqual([result("b", "STARTED"), result("a", "SUCCESS")]);
  });

  it("encodes a STARTED only when it is written, never when it is dropped", async () => {
    const broker = new FakeBroker();
    const committer = new Committer({ broker, logger: silentLogger });
    const encoded: string[] = [];
    const lazy = (taskId: string) => ({
      taskId,
      value: () => {
        encoded.push(taskId);
        return result(taskId, "STARTED").value;
      },
    });
    committer.started(lazy("a"));
    committer.started(lazy("b"));
    await committer.submit({ result: result("a", "SUCCESS"), ack: "tag-a" });
    expect(encoded).toEqual(["b"]);
    expect(broker.commits[0]?.results).toEqual([result("b", "STARTED"), result("a", "SUCCESS")]);
  });

  it("keeps a STARTED already written when the final state comes in a later commit", async () => {
    const broker = new FakeBroker();
    const committer = new Committer({ broker, logger: silentLogger });
    committer.started(result("a", "STARTED"));
    await committer.drain();
    await committer.submit({ result: result("a", "SUCCESS"), ack: "tag-a" });
    expect(broker.statuses("a")).toEqual(["STARTED", "SUCCESS"]);
  });

  it("retries a commit whose outcome is unknown, with a growing delay", async () => {
    const broker = new FakeBroker();
    broker.failCommits = 3;
    const committer = new Committer({ broker, logger: silentLogger, retryDelayMs: 100 });
    let written = false;
    void committer.submit({ ack: "tag-a" }).then(() => (written = true));
    await vi.advanceTimersByTimeAsync(0);
    await new Promise((r) => setImmediate(r));
    await vi.advanceTimersByTimeAsync(299); // 100 + 200 ms
    expect(written).toBe(false);
    await vi.advanceTimersByTimeAsync(401); // + 400 ms
    expect(written).toBe(true);
    expect(broker.commits).toHaveLength(1);
  });

  it("does not retry a commit Redis refused, and reports the submissions as done", async () => {
    const broker = new FakeBroker();
    let calls = 0;
    broker.commit = async () => {
      calls++;
      throw new CommitRejectedError("WRONGTYPE");
    };
    const committer = new Committer({ broker, logger: silentLogger });
    await committer.submit({ ack: "tag-a" });
    expect(calls).toBe(1);
  });

  it("gives up retrying once abandoned (a shutdown that cannot wait)", async () => {
    const broker = new FakeBroker();
    broker.commit = async () => {
      throw new BrokerUnavailableError("down");
    };
    const committer = new Committer({ broker, logger: silentLogger });
    const done = committer.submit({ ack: "tag-a" });
    await new Promise((r) => setImmediate(r));
    committer.abandon();
    await done;
    await committer.drain();
  });
});
