import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Action, TerminalError, WorkQueue, isTerminalError } from "../../../src/runtime/workqueue.ts";
import type { Reconciler } from "../../../src/runtime/workqueue.ts";
import { deferred } from "./fakes.ts";
import type { Deferred } from "./fakes.ts";

const T0 = new Date("2030-01-01T00:00:00Z").getTime();

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});

afterEach(() => {
  vi.useRealTimers();
});

/** Milliseconds since T0 on the faked clock. */
const elapsed = (): number => Date.now() - T0;

/** A reconciler that records every call and lets the test decide when each one ends. */
function scriptedReconciler(): {
  reconcile: Reconciler;
  calls: { key: string; at: number; signal: AbortSignal }[];
  running: Map<string, number>;
  maxConcurrentPerKey: number;
  release: (key: string, outcome?: Action | Error) => void;
} {
  const pending = new Map<string, Deferred<Action | undefined>[]>();
  const state = {
    calls: [] as { key: string; at: number; signal: AbortSignal }[],
    running: new Map<string, number>(),
    maxConcurrentPerKey: 0,
    reconcile: async (key: string, signal: AbortSignal): Promise<Action | undefined> => {
      state.calls.push({ key, at: elapsed(), signal });
      const now = (state.running.get(key) ?? 0) + 1;
      state.running.set(key, now);
      state.maxConcurrentPerKey = Math.max(state.maxConcurrentPerKey, now);
      const d = deferred<Action | undefined>();
      pending.set(key, [...(pending.get(key) ?? []), d]);
      try {
        return await d.promise;
      } finally {
        state.running.set(key, (state.running.get(key) ?? 1) - 1);
      }
    },
    release: (key: string, outcome?: Action | Error) => {
      const d = pending.get(key)?.shift();
      if (!d) {
        throw new Error(`no reconcile of ${key} is running`);
      }
      if (outcome instanceof Error) {
        d.reject(outcome);
      } else {
        d.resolve(outcome);
      }
    },
  };
  return state;
}

describe("WorkQueue", () => {
  it("reconciles a key added twice while queued once", async () => {
    const queue = new WorkQueue({ name: "test" });
    const r = scriptedReconciler();
    queue.add("ns/a");
    queue.add("ns/a");
    expect(queue.len()).toBe(1);
    const running = queue.run(1, r.reconcile);
    await vi.advanceTimersByTimeAsync(0);
    r.release("ns/a");
    await vi.advanceTimersByTimeAsync(0);
    expect(r.calls.map((c) => c.key)).toEqual(["ns/a"]);
    await queue.shutDown();
    await running;
  });

  it("reconciles a key added during its reconcile again after it, never concurrently", async () => {
    const queue = new WorkQueue({ name: "test" });
    const r = scriptedReconciler();
    queue.add("ns/a");
    const running = queue.run(4, r.reconcile);
    await vi.advanceTimersByTimeAsync(0);
    queue.add("ns/a");
    queue.add("ns/a");
    await vi.advanceTimersByTimeAsync(0);
    expect(r.calls).toHaveLength(1);
    r.release("ns/a");
    await vi.advanceTimersByTimeAsync(0);
    expect(r.calls).toHaveLength(2);
    r.release("ns/a");
    await vi.advanceTimersByTimeAsync(0);
    expect(r.calls).toHaveLength(2);
    expect(r.maxConcurrentPerKey).toBe(1);
    await queue.shutDown();
    await running;
  });

  it("reconciles different keys concurrently, up to the number of workers", async () => {
    const queue = new WorkQueue({ name: "test" });
    const r = scriptedReconciler();
    for (const key of ["a", "b", "c"]) {
      queue.add(key);
    }
    const running = queue.run(2, r.reconcile);
    await vi.advanceTimersByTimeAsync(0);
    expect(r.calls.map((c) => c.key)).toEqual(["a", "b"]);
    r.release("a");
    await vi.advanceTimersByTimeAsync(0);
    expect(r.calls.map((c) => c.key)).toEqual(["a", "b", "c"]);
    r.release("b");
    r.release("c");
    await queue.shutDown();
    await running;
  });

  describe("addAfter: the earliest request wins", () => {
    it.each([
      { name: "a later request does not delay an earlier one", first: 1000, second: 5000, readyAt: 1000 },
      { name: "an earlier request advances a later one", first: 5000, second: 1000, readyAt: 1000 },
    ])("$name", async ({ first, second, readyAt }) => {
      const queue = new WorkQueue({ name: "test" });
      queue.addAfter("a", first);
      queue.addAfter("a", second);
      await vi.advanceTimersByTimeAsync(readyAt - 1);
      expect(queue.len()).toBe(0);
      await vi.advanceTimersByTimeAsync(1);
      expect(queue.len()).toBe(1);
      expect(await queue.get()).toBe("a");
      queue.done("a");
      await vi.advanceTimersByTimeAsync(10_000);
      expect(queue.len()).toBe(0);
    });
  });

  describe("addAfter beyond setTimeout's range (2^31 - 1 ms, about 24.8 days)", () => {
    const DAY = 86_400_000;
    it.each([
      { name: "a key due in 40 days is added after 40 days, not at once", ms: 40 * DAY },
      { name: "a key due in a year is added after a year, not at once", ms: 365 * DAY },
    ])("$name", async ({ ms }) => {
      const queue = new WorkQueue({ name: "test" });
      queue.addAfter("a", ms);
      await vi.advanceTimersByTimeAsync(1);
      expect(queue.len()).toBe(0);
      await vi.advanceTimersByTimeAsync(ms - 2);
      expect(queue.len()).toBe(0);
      await vi.advanceTimersByTimeAsync(1);
      expect(queue.len()).toBe(1);
      await queue.shutDown();
    });
  });

  it("adds many delayed keys, each at its own time, in the order they fall due", async () => {
    const queue = new WorkQueue({ name: "test" });
    const delays = { e: 500, a: 100, d: 400, b: 200, c: 300 };
    for (const [key, ms] of Object.entries(delays)) queue.addAfter(key, ms);
    queue.addAfter("d", 250);
    const seen: string[] = [];
    for (const at of [100, 200, 250, 300, 500]) {
      await vi.advanceTimersByTimeAsync(at - elapsed());
      while (queue.len() > 0) {
        const key = (await queue.get()) ?? "";
        seen.push(`${key}@${elapsed()}`);
        queue.done(key);
      }
    }
    expect(seen).toEqual(["a@100", "b@200", "d@250", "c@300", "e@500"]);
    await queue.shutDown();
  });

  it("backs a failing key off exponentially: 5, 10, 20, 40 ms after each failure", async () => {
    const queue = new WorkQueue({ name: "test" });
    const failedAt: number[] = [];
    queue.add("a");
    const running = queue.run(1, async () => {
      failedAt.push(elapsed());
      throw new Error("API server unavailable");
    });
    await vi.advanceTimersByTimeAsync(5 + 10 + 20 + 40);
    expect(failedAt).toEqual([0, 5, 15, 35, 75]);
    expect(queue.numRequeues("a")).toBe(5);
    await queue.shutDown();
    await running;
  });

  it("caps the per-key backoff at maxDelay", async () => {
    const queue = new WorkQueue({ name: "test", rateLimit: { baseDelayMs: 1000, maxDelayMs: 3000 } });
    const delays: number[] = [];
    for (let i = 0; i < 4; i++) {
      const before = elapsed();
      queue.addRateLimited("a");
      await vi.advanceTimersToNextTimerAsync();
      delays.push(elapsed() - before);
      expect(await queue.get()).toBe("a");
      queue.done("a");
    }
    expect(delays).toEqual([1000, 2000, 3000, 3000]);
  });

  it("spreads retries of many keys with the global token bucket once its burst is spent", async () => {
    const queue = new WorkQueue({ name: "test", rateLimit: { qps: 10, burst: 2 } });
    const readyAt = new Map<string, number>();
    for (const key of ["a", "b", "c", "d"]) {
      queue.addRateLimited(key);
    }
    const running = queue.run(4, async (key) => {
      readyAt.set(key, elapsed());
      return Action.awaitChange();
    });
    await vi.advanceTimersByTimeAsync(1000);
    // Two tokens in the bucket, then one every 100 ms; the per-key backoff (5 ms) is the floor.
    expect(Object.fromEntries(readyAt)).toEqual({ a: 5, b: 5, c: 100, d: 200 });
    await queue.shutDown();
    await running;
  });

  it("forget resets the per-key backoff", async () => {
    const queue = new WorkQueue({ name: "test" });
    queue.addRateLimited("a");
    queue.addRateLimited("a");
    queue.addRateLimited("a");
    expect(queue.numRequeues("a")).toBe(3);
    queue.forget("a");
    expect(queue.numRequeues("a")).toBe(0);
  });

  describe("the reconcile result decides what happens to the key", () => {
    it("a TerminalError is not retried, and onError hears it is terminal", async () => {
      const queue = new WorkQueue({ name: "test" });
      const errors: { key: string; terminal: boolean }[] = [];
      let calls = 0;
      queue.add("a");
      const running = queue.run(
        1,
        async () => {
          calls += 1;
          throw new TerminalError("schedule '0 0 30 2 *' never fires: February has no 30th");
        },
        { onError: (key, _err, terminal) => errors.push({ key, terminal }) },
      );
      await vi.advanceTimersByTimeAsync(60_000);
      expect(calls).toBe(1);
      expect(errors).toEqual([{ key: "a", terminal: true }]);
      expect(queue.numRequeues("a")).toBe(0);
      await queue.shutDown();
      await running;
    });

    it("a returned requeueAfter forgets past failures and adds the key back after the delay", async () => {
      const queue = new WorkQueue({ name: "test" });
      const r = scriptedReconciler();
      queue.addRateLimited("a");
      queue.addRateLimited("a");
      const running = queue.run(1, r.reconcile);
      await vi.advanceTimersByTimeAsync(10);
      expect(r.calls).toHaveLength(1);
      const releasedAt = elapsed();
      r.release("a", Action.requeueAfter(30_000));
      await vi.advanceTimersByTimeAsync(0);
      expect(queue.numRequeues("a")).toBe(0);
      await vi.advanceTimersByTimeAsync(30_000);
      expect(r.calls).toHaveLength(2);
      expect(r.calls[1]?.at).toBe(releasedAt + 30_000);
      r.release("a");
      await queue.shutDown();
      await running;
    });

    it("awaitChange does not add the key back", async () => {
      const queue = new WorkQueue({ name: "test" });
      let calls = 0;
      queue.add("a");
      const running = queue.run(1, async () => {
        calls += 1;
        return Action.awaitChange();
      });
      await vi.advanceTimersByTimeAsync(3_600_000);
      expect(calls).toBe(1);
      await queue.shutDown();
      await running;
    });
  });

  it.each([
    { name: "a TerminalError", err: new TerminalError("bad spec"), terminal: true },
    {
      name: "an error caused by a TerminalError",
      err: new Error("wrapped", { cause: new TerminalError("bad") }),
      terminal: true,
    },
    { name: "a plain error", err: new Error("timeout"), terminal: false },
    { name: "a thrown string", err: "boom", terminal: false },
  ])("isTerminalError: $name → $terminal", ({ err, terminal }) => {
    expect(isTerminalError(err)).toBe(terminal);
  });

  it("shutDown stops handing out keys at once and resolves when in-flight reconciles are done", async () => {
    const queue = new WorkQueue({ name: "test" });
    const r = scriptedReconciler();
    queue.add("a");
    queue.add("b");
    queue.addAfter("c", 1000);
    const running = queue.run(1, r.reconcile);
    await vi.advanceTimersByTimeAsync(0);
    let drained = false;
    void queue.shutDown().then(() => {
      drained = true;
    });
    await vi.advanceTimersByTimeAsync(5000);
    expect(drained).toBe(false);
    r.release("a");
    await vi.advanceTimersByTimeAsync(0);
    expect(drained).toBe(true);
    await running;
    expect(r.calls.map((c) => c.key)).toEqual(["a"]);
    queue.add("d");
    expect(queue.len()).toBe(0);
  });

  it("aborting the run's signal aborts in-flight reconciles and stops the workers", async () => {
    const queue = new WorkQueue({ name: "test" });
    const r = scriptedReconciler();
    const lease = new AbortController();
    queue.add("a");
    const running = queue.run(2, r.reconcile, { signal: lease.signal });
    await vi.advanceTimersByTimeAsync(0);
    lease.abort(new Error("leadership lost"));
    expect(r.calls[0]?.signal.aborted).toBe(true);
    r.release("a", new Error("aborted"));
    await running;
    expect(queue.shuttingDown).toBe(true);
  });

  it("reports the depth of the queue to the metrics hook", async () => {
    const depths: number[] = [];
    const queue = new WorkQueue({ name: "test", metrics: { depth: (n) => depths.push(n) } });
    queue.add("a");
    queue.add("b");
    queue.add("b");
    await queue.get();
    expect(depths).toEqual([1, 2, 1]);
  });

  it("refuses a worker count that is not a positive integer", async () => {
    const queue = new WorkQueue({ name: "test" });
    await expect(queue.run(0, async () => undefined)).rejects.toThrow(/positive integer/);
  });
});
