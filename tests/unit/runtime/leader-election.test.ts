import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { LeaderElector, leaseRequestTimeoutMs } from "../../../src/runtime/leader-election.ts";
import type { LeaderElectionOptions } from "../../../src/runtime/leader-election.ts";
import { FakeLeaseServer, StallableClock, deferred } from "./fakes.ts";

const T0 = new Date("2030-01-01T00:00:00Z").getTime();
const NS = "cadent-system";
const LEASE = "cadent-controller";

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});

afterEach(() => {
  vi.useRealTimers();
});

const elapsed = (): number => Date.now() - T0;

/** A candidate with the default timings (15 s / 10 s / 2 s), no jitter, and a log of what it lived. */
function candidate(server: FakeLeaseServer, identity: string, options: Partial<LeaderElectionOptions> = {}) {
  const client = server.client(identity);
  const log: string[] = [];
  const moments: Record<string, number> = {};
  const note = (what: string): void => {
    moments[what] ??= elapsed();
    log.push(`${what}@${elapsed()}`);
  };
  const elector = new LeaderElector({
    client,
    namespace: NS,
    name: LEASE,
    identity,
    random: () => 0,
    onStartedLeading: (signal) => {
      note("started");
      signal.addEventListener("abort", () => note("aborted"));
    },
    onStoppedLeading: () => note("stopped"),
    onNewLeader: (leader) => note(`sees ${leader}`),
    ...options,
  });
  return { elector, client, log, moments };
}

describe("LeaderElector", () => {
  it("a lone candidate creates the missing Lease and leads, writing times as MicroTime", async () => {
    const server = new FakeLeaseServer();
    const a = candidate(server, "a");
    void a.elector.run();
    await vi.advanceTimersByTimeAsync(0);
    expect(a.log).toEqual(["sees a@0", "started@0"]);
    expect(a.elector.isLeading()).toBe(true);
    const spec = server.lease(NS, LEASE)?.spec;
    expect(spec).toMatchObject({ holderIdentity: "a", leaseDurationSeconds: 15, leaseTransitions: 0 });
    // The API server rejects a MicroTime with millisecond precision; V1MicroTime writes microseconds.
    expect(String(spec?.renewTime)).toMatch(/^2030-01-01T00:00:00\.\d{6}Z$/);
  });

  it("of two candidates started together only one leads; the other follows and renewals keep it following", async () => {
    const server = new FakeLeaseServer();
    const a = candidate(server, "a");
    const b = candidate(server, "b");
    void a.elector.run();
    void b.elector.run();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(a.log).toEqual(["sees a@0", "started@0"]);
    // b lost the create race at 0 (409 AlreadyExists) and reads the holder at its next retry.
    expect(b.log).toEqual(["sees a@2000"]);
    expect(b.elector.isLeading()).toBe(false);
    expect(server.writes.filter((w) => w.client === "a").length).toBeGreaterThan(25);
    expect(server.writes.filter((w) => w.client === "b")).toEqual([]);
  });

  it("the leader stops working when renewals fail past the renew deadline, before the lease expires for others", async () => {
    const server = new FakeLeaseServer();
    const a = candidate(server, "a");
    const b = candidate(server, "b");
    void a.elector.run();
    await vi.advanceTimersByTimeAsync(0);
    void b.elector.run();
    const lastRenewal = 10_000;
    await vi.advanceTimersByTimeAsync(lastRenewal);
    a.client.down = true;
    await vi.advanceTimersByTimeAsync(60_000);

    const leaderGivesUp = lastRenewal + 10_000;
    const leaseExpiresForOthers = lastRenewal + 15_000;
    expect(a.moments["aborted"]).toBe(leaderGivesUp);
    expect(a.moments["stopped"]).toBe(leaderGivesUp);
    expect(b.moments["started"]).toBeGreaterThanOrEqual(leaseExpiresForOthers);
    expect(b.log).toEqual(["sees a@0", "sees b@26000", "started@26000"]);
    expect(server.lease(NS, LEASE)?.spec?.holderIdentity).toBe("b");
    expect(server.lease(NS, LEASE)?.spec?.leaseTransitions).toBe(1);
  });

  it("a leader whose renew request hangs still stops at the renew deadline", async () => {
    const server = new FakeLeaseServer();
    const a = candidate(server, "a");
    const ended = a.elector.run();
    const lastRenewal = 10_000;
    await vi.advanceTimersByTimeAsync(lastRenewal);
    a.client.hang = true;
    await vi.advanceTimersByTimeAsync(30_000);
    expect(a.moments["aborted"]).toBe(lastRenewal + 10_000);
    await expect(ended).resolves.toBeUndefined();
  });

  it("release ends a campaign whose request hangs", async () => {
    const server = new FakeLeaseServer();
    const setup = server.client("setup");
    await setup.create(NS, {
      metadata: { name: LEASE },
      spec: { holderIdentity: "", leaseDurationSeconds: 1 },
    });
    const a = candidate(server, "a");
    a.client.hang = true;
    const ended = a.elector.run();
    await vi.advanceTimersByTimeAsync(1_000);
    await a.elector.release();
    await expect(ended).resolves.toBeUndefined();
    expect(a.moments["started"]).toBeUndefined();
  });

  it("a stalled leader (SIGSTOP) stops leading the moment it resumes, without writing the lease", async () => {
    const server = new FakeLeaseServer();
    const clock = new StallableClock();
    const a = candidate(server, "a", { clock });
    void a.elector.run();
    await vi.advanceTimersByTimeAsync(4_000);
    const requestsBeforeStall = a.client.requests;
    clock.stall(20_000);
    expect(a.elector.isLeading()).toBe(false);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(a.moments["aborted"]).toBe(6_000);
    expect(a.client.requests).toBe(requestsBeforeStall);
  });

  it("a renewal that finds another holder stops the work at once, not at the deadline", async () => {
    const server = new FakeLeaseServer();
    const a = candidate(server, "a");
    void a.elector.run();
    await vi.advanceTimersByTimeAsync(3_000);
    const current = server.get(NS, LEASE);
    server.replace("intruder", NS, LEASE, {
      ...current,
      spec: { ...current.spec, holderIdentity: "intruder" },
    });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(a.moments["aborted"]).toBe(4_000);
    expect(a.log).toContain("sees intruder@4000");
  });

  it("release empties the holder, so a follower leads at its next retry instead of after the lease duration", async () => {
    const server = new FakeLeaseServer();
    const a = candidate(server, "a");
    const b = candidate(server, "b");
    const aEnded = a.elector.run();
    await vi.advanceTimersByTimeAsync(0);
    void b.elector.run();
    await vi.advanceTimersByTimeAsync(5_000);
    await a.elector.release();
    expect(a.moments["aborted"]).toBe(5_000);
    expect(server.lease(NS, LEASE)?.spec).toMatchObject({ holderIdentity: "", leaseDurationSeconds: 1 });
    await expect(aEnded).resolves.toBeUndefined();
    await vi.advanceTimersByTimeAsync(2_000);
    expect(b.moments["started"]).toBe(6_000);
  });

  it("release waits for the leader's work to return before handing the lease over", async () => {
    const server = new FakeLeaseServer();
    const workReturned = deferred();
    const a = candidate(server, "a", { onStartedLeading: () => workReturned.promise });
    void a.elector.run();
    await vi.advanceTimersByTimeAsync(1_000);
    const released = a.elector.release();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(server.lease(NS, LEASE)?.spec?.holderIdentity).toBe("a");
    workReturned.resolve();
    await released;
    expect(server.lease(NS, LEASE)?.spec?.holderIdentity).toBe("");
  });

  it("a deleted Lease (404) is recreated by the leader at its next renewal, without losing leadership", async () => {
    const server = new FakeLeaseServer();
    const a = candidate(server, "a");
    void a.elector.run();
    await vi.advanceTimersByTimeAsync(3_000);
    server.delete(NS, LEASE);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(server.lease(NS, LEASE)?.spec?.holderIdentity).toBe("a");
    expect(a.log).toEqual(["sees a@0", "started@0"]);
    expect(a.elector.isLeading()).toBe(true);
  });

  it("a write that loses the optimistic-concurrency race (409) is retried from a fresh read", async () => {
    const server = new FakeLeaseServer();
    const setup = server.client("setup");
    await setup.create(NS, {
      metadata: { name: LEASE },
      spec: { holderIdentity: "", leaseDurationSeconds: 1 },
    });
    const a = candidate(server, "a");
    a.client.beforeNextReplace = () => {
      const current = server.get(NS, LEASE);
      server.replace("other", NS, LEASE, {
        ...current,
        metadata: { ...current.metadata, labels: { touched: "yes" } },
      });
    };
    void a.elector.run();
    await vi.advanceTimersByTimeAsync(0);
    expect(a.moments["started"]).toBeUndefined();
    await vi.advanceTimersByTimeAsync(2_000);
    expect(a.moments["started"]).toBe(2_000);
    expect(server.lease(NS, LEASE)?.metadata?.labels).toEqual({ touched: "yes" });
  });

  it.each([
    {
      name: "renewDeadline not below leaseDuration",
      timings: { leaseDurationMs: 10_000, renewDeadlineMs: 10_000 },
      error: /leaseDuration/,
    },
    {
      name: "retryPeriod too close to renewDeadline",
      timings: { renewDeadlineMs: 2_000, retryPeriodMs: 2_000 },
      error: /retryPeriod/,
    },
    {
      name: "a lease duration in fractions of a second",
      timings: { leaseDurationMs: 15_500 },
      error: /whole seconds/,
    },
  ])("refuses $name", ({ timings, error }) => {
    const server = new FakeLeaseServer();
    expect(() => candidate(server, "a", timings)).toThrow(error);
  });
});

describe("leaseRequestTimeoutMs", () => {
  it.each([
    ["the defaults (renew deadline 10 s, retry 2 s)", 10_000, 2_000, 4_000],
    ["a long deadline", 90_000, 2_000, 44_000],
    ["a deadline barely over the retry period, floored at 1 s", 2_500, 2_000, 1_000],
  ])("%s: %i ms / %i ms → %i ms per request", (_case, renewDeadline, retryPeriod, timeout) => {
    expect(leaseRequestTimeoutMs(renewDeadline, retryPeriod)).toBe(timeout);
  });

  it("leaves room for a stuck get and replace, a retry period and a second attempt inside the deadline", () => {
    const [deadline, retry] = [10_000, 2_000];
    const timeout = leaseRequestTimeoutMs(deadline, retry);
    // The worst first attempt: its get answered at once, its replace stuck until abandoned.
    expect(timeout + retry).toBeLessThan(deadline);
  });
});
