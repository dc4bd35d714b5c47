import { EventEmitter } from "node:events";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ShutdownCoordinator } from "../../../src/runtime/shutdown.ts";
import type { SignalSource } from "../../../src/runtime/shutdown.ts";
import { deferred } from "./fakes.ts";

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe("ShutdownCoordinator", () => {
  it("runs every step in the order added, even after one throws or rejects", async () => {
    const ran: string[] = [];
    const shutdown = new ShutdownCoordinator()
      .add("leader election", () => {
        ran.push("leader election");
        throw new Error("lease release failed: HTTP 503");
      })
      .add("work queues", async () => {
        ran.push("work queues");
        throw new Error("drain failed");
      })
      .add("events", () => {
        ran.push("events");
      });
    const report = await shutdown.shutdown("SIGTERM");
    expect(ran).toEqual(["leader election", "work queues", "events"]);
    expect(report).toEqual({
      reason: "SIGTERM",
      ok: false,
      steps: [
        { name: "leader election", outcome: "failed", error: "lease release failed: HTTP 503" },
        { name: "work queues", outcome: "failed", error: "drain failed" },
        { name: "events", outcome: "ok" },
      ],
    });
  });

  it("is idempotent: a second shutdown returns the same report and runs no step twice", async () => {
    let closes = 0;
    const shutdown = new ShutdownCoordinator().add("redis", () => {
      closes += 1;
    });
    const first = shutdown.shutdown("SIGTERM");
    const second = shutdown.shutdown("SIGINT");
    expect(second).toBe(first);
    expect((await second).reason).toBe("SIGTERM");
    expect(closes).toBe(1);
  });

  it("stops waiting for a step at the deadline and still starts the steps after it", async () => {
    const ran: string[] = [];
    const shutdown = new ShutdownCoordinator({ deadlineMs: 25_000 })
      .add("hung queue drain", () => new Promise<void>(() => ran.push("hung queue drain")))
      .add("redis", () => {
        ran.push("redis");
      });
    const report = shutdown.shutdown("SIGTERM");
    await vi.advanceTimersByTimeAsync(24_999);
    expect(ran).toEqual(["hung queue drain"]);
    await vi.advanceTimersByTimeAsync(1);
    expect(ran).toEqual(["hung queue drain", "redis"]);
    expect((await report).steps.map((s) => s.outcome)).toEqual(["timedOut", "timedOut"]);
  });

  it("aborts its signal as soon as shutdown begins", async () => {
    const shutdown = new ShutdownCoordinator();
    expect(shutdown.signal.aborted).toBe(false);
    void shutdown.shutdown("SIGTERM");
    expect(shutdown.signal.aborted).toBe(true);
  });

  it("refuses steps added after shutdown began", async () => {
    const shutdown = new ShutdownCoordinator();
    await shutdown.shutdown("SIGTERM");
    expect(() => shutdown.add("late", () => {})).toThrow(/already begun/);
  });

  describe("signal handlers", () => {
    function processLike(): EventEmitter & SignalSource {
      return new EventEmitter();
    }

    it.each([
      { name: "exits 0 after SIGTERM when every step succeeded", fail: false, code: 0 },
      { name: "exits 1 after SIGTERM when a step failed", fail: true, code: 1 },
    ])("$name", async ({ fail, code }) => {
      const source = processLike();
      const exit = vi.fn<(code: number) => void>();
      const shutdown = new ShutdownCoordinator().add("step", () => {
        if (fail) {
          throw new Error("failed");
        }
      });
      shutdown.installSignalHandlers({ source, exit });
      source.emit("SIGTERM", "SIGTERM");
      await vi.advanceTimersByTimeAsync(0);
      expect(exit.mock.calls).toEqual([[code]]);
    });

    it("a second signal during shutdown exits at once", async () => {
      const source = processLike();
      const exit = vi.fn<(code: number) => void>();
      const drain = deferred();
      const shutdown = new ShutdownCoordinator().add("drain", () => drain.promise);
      shutdown.installSignalHandlers({ source, exit });
      source.emit("SIGTERM", "SIGTERM");
      await vi.advanceTimersByTimeAsync(0);
      expect(exit).not.toHaveBeenCalled();
      source.emit("SIGINT", "SIGINT");
      expect(exit.mock.calls).toEqual([[1]]);
    });

    it("the returned function removes the handlers", () => {
      const source = processLike();
      const uninstall = new ShutdownCoordinator().installSignalHandlers({ source, exit: () => {} });
      expect(source.listenerCount("SIGTERM")).toBe(1);
      uninstall();
      expect(source.listenerCount("SIGTERM")).toBe(0);
      expect(source.listenerCount("SIGINT")).toBe(0);
    });
  });
});
