import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { RequestRateLimiter, retryAfterMs } from "../../../src/kube/rate-limiter.ts";

const T0 = new Date("2030-01-01T00:00:00Z").getTime();

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});

afterEach(() => {
  vi.useRealTimers();
});

/** Milliseconds since T0 on the faked clock. */
const elapsed = (): number => Date.now() - T0;

/** Starts `count` acquires at once and records when each one is let through. */
function acquireMany(limiter: RequestRateLimiter, count: number, signal?: AbortSignal): number[] {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    void limiter.acquire(signal).then(() => times.push(elapsed()));
  }
  return times;
}

describe("RequestRateLimiter", () => {
  it("lets `burst` requests through at once, then one every 1/qps seconds", async () => {
    const limiter = new RequestRateLimiter({ qps: 10, burst: 3 });
    const times = acquireMany(limiter, 6);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(times).toEqual([0, 0, 0, 100, 200, 300]);
  });

  it("refills at qps while idle, up to burst", async () => {
    const limiter = new RequestRateLimiter({ qps: 10, burst: 3 });
    acquireMany(limiter, 3);
    await vi.advanceTimersByTimeAsync(10_000);
    const times = acquireMany(limiter, 4);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(times).toEqual([10_000, 10_000, 10_000, 10_100]);
  });

  it("holds every request during a pause, including those already waiting for a token", async () => {
    const limiter = new RequestRateLimiter({ qps: 10, burst: 1 });
    const times = acquireMany(limiter, 3); // 0, then waiting for 100 and 200
    await vi.advanceTimersByTimeAsync(50);
    limiter.pauseFor(1_000); // a 429 with Retry-After: 1 arrives at 50 ms
    await vi.advanceTimersByTimeAsync(5_000);
    // The two waiting ones already held their (future) tokens, so both go when the pause ends.
    expect(times).toEqual([0, 1_050, 1_050]);
  });

  it("resumes at the steady rate after a pause instead of spending the tokens that accrued", async () => {
    const limiter = new RequestRateLimiter({ qps: 10, burst: 5 });
    limiter.pauseFor(2_000);
    const times = acquireMany(limiter, 3);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(times).toEqual([2_100, 2_200, 2_300]);
  });

  it("lets a longer pause extend a shorter one, never the reverse", async () => {
    const limiter = new RequestRateLimiter({ qps: 100, burst: 10 });
    limiter.pauseFor(3_000);
    limiter.pauseFor(1_000);
    expect(limiter.pausedForMs()).toBe(3_000);
    await vi.advanceTimersByTimeAsync(500);
    limiter.pauseFor(4_000);
    expect(limiter.pausedForMs()).toBe(4_000);
  });

  it("cuts a pause to maxPauseMs", () => {
    const limiter = new RequestRateLimiter({ qps: 10, burst: 1, maxPauseMs: 30_000 });
    limiter.pauseFor(3_600_000);
    expect(limiter.pausedForMs()).toBe(30_000);
  });

  it("is not paused before any 429", () => {
    expect(new RequestRateLimiter({ qps: 10, burst: 1 }).pausedForMs()).toBe(0);
  });

  it("stops a waiting caller at once when its signal aborts, with the signal's reason", async () => {
    const limiter = new RequestRateLimiter({ qps: 1, burst: 1 });
    await limiter.acquire();
    const controller = new AbortController();
    const waiting = limiter.acquire(controller.signal);
    const outcome = waiting.then(
      () => "acquired",
      (err: unknown) => err,
    );
    await vi.advanceTimersByTimeAsync(100);
    controller.abort(new Error("reconcile cancelled"));
    await vi.advanceTimersByTimeAsync(0);
    expect(await outcome).toEqual(new Error("reconcile cancelled"));
    expect(elapsed()).toBe(100);
  });

  it("refuses a caller whose signal has already aborted", async () => {
    const limiter = new RequestRateLimiter({ qps: 1, burst: 1 });
    await expect(limiter.acquire(AbortSignal.abort(new Error("gone")))).rejects.toThrow("gone");
  });

  it("refuses settings that could never let a request through", () => {
    expect(() => new RequestRateLimiter({ qps: 0, burst: 1 })).toThrow(/qps > 0/);
    expect(() => new RequestRateLimiter({ qps: 1, burst: 0 })).toThrow(/burst >= 1/);
  });
});

describe("retryAfterMs", () => {
  const now = Date.parse("2030-01-01T00:00:00Z");

  it.each([
    ["delay-seconds", "3", 3_000],
    ["zero seconds", "0", 0],
    ["delay-seconds with spaces", " 12 ", 12_000],
    ["an HTTP-date 90 s ahead", "Tue, 01 Jan 2030 00:01:30 GMT", 90_000],
    ["an HTTP-date in the past", "Mon, 31 Dec 2029 23:59:00 GMT", 0],
    ["no header", undefined, undefined],
    ["garbage", "soon", undefined],
    ["a negative number", "-5", undefined],
  ])("reads %s", (_case, header, expected) => {
    expect(retryAfterMs(header, now)).toBe(expected);
  });
});
