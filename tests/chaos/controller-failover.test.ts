/**
 * Chaos: the controller killed and stalled under a steady load of both executors (product.md §5:
 * at most one run per scheduled time across restarts, failovers and two leaders at once; no run
 * silently dropped). Every scenario ends with the audit of ./support/load.ts.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ControllerProcess } from "../support/cadent.ts";
import { waitFor } from "../support/ports.ts";
import { Load } from "./support/load.ts";
import { controllerLogs, leaseHolder, startController, startWorker } from "./support/processes.ts";
import { scale, startWorld, type World } from "./support/world.ts";

/** Short leases so that 20 takeovers fit in a couple of minutes; the ratios are the defaults'. */
const LEADING = "leading; waiting for caches to sync";
const FAST_LEASE = ["--lease-duration", "6s", "--renew-deadline", "4s", "--retry-period", "500ms"];

describe("the controller killed and stalled under load", () => {
  let world: World;
  const stops: (() => Promise<void>)[] = [];
  const track = <T extends { stop(): Promise<void> } | { process: { stop(): Promise<void> } }>(p: T): T => {
    stops.push(() => ("stop" in p ? p.stop() : p.process.stop()));
    return p;
  };

  beforeAll(async () => {
    world = await startWorld("failover");
  });
  afterAll(async () => {
    await Promise.all(stops.map((stop) => stop().catch(() => undefined)));
    await world?.stop();
  });

  it("control: with no fault, every scheduled time of both executors runs exactly once", async () => {
    const load = await Load.start(world, "control", { redis: 3, jobs: 2, durationSeconds: scale(12, 30) });
    track(await startWorker(world, load));
    track(await startController(world, load, "solo"));
    await load.settle();
    const counts = await load.expectNothingLost("control (no fault)");
    expect(counts.missed, "nothing is missed without a fault").toBe(0);
    expect(counts.runs).toBe(counts.scheduled);
  });

  it("kill -9 of the leader at random points, again and again, with two replicas: no duplicate, nothing lost", async () => {
    const kills = scale(6, 20);
    const load = await Load.start(world, "kill9", {
      redis: 4,
      jobs: 2,
      durationSeconds: kills * 5 + 10,
      leadSeconds: 10,
    });
    track(await startWorker(world, load));
    const replicas = new Map<string, ControllerProcess>();
    const replica = async (identity: string): Promise<void> => {
      replicas.set(identity, track(await startController(world, load, identity, { extraArgs: FAST_LEASE })));
    };
    await replica("replica-0");
    await replica("replica-1");
    const delays: number[] = [];
    for (let i = 0; i < kills; i++) {
      let holder: string | undefined;
      await waitFor(
        "a running replica to lead",
        async () => replicas.has((holder = await leaseHolder(world, load)) ?? ""),
        { timeoutMs: 60_000, intervalMs: 100 },
      );
      // A random point in the 3 s schedule period and beyond, so kills land before, during and
      // after fires, publishes, Task creations and status writes.
      const delay = 500 + Math.floor(Math.random() * 3500);
      delays.push(delay);
      await sleep(delay);
      const leader = replicas.get(holder ?? "");
      if (!leader) throw new Error(`no replica named ${String(holder)}`);
      await leader.kill();
      replicas.delete(leader.identity);
      await replica(`replica-${i + 2}`);
    }
    await load.settle();
    await load.expectNothingLost("controller kill -9 (two replicas)", {
      kills,
      killDelaysMs: delays.join(" "),
    });
  });

  it("a leader stalled past its renew deadline (SIGSTOP) stops acting when resumed, before the standby takes over", async () => {
    const load = await Load.start(world, "stall", { redis: 2, jobs: 1, durationSeconds: 30 });
    track(await startWorker(world, load));
    // renew deadline 4 s, lease 8 s: a 5 s stall is past the deadline; the standby may take over
    // only 8 s after it last saw the Lease change, so the resumed leader has ≥ 2.5 s to stand down.
    const lease = ["--lease-duration", "8s", "--renew-deadline", "4s", "--retry-period", "500ms"];
    const a = track(await startController(world, load, "stall-a", { extraArgs: lease }));
    const b = track(await startController(world, load, "stall-b", { extraArgs: lease }));
    let holder: string | undefined;
    await waitFor("a leader", async () =>
      ["stall-a", "stall-b"].includes((holder = await leaseHolder(world, load)) ?? ""),
    );
    const [leader, standby] = holder === "stall-a" ? [a, b] : [b, a];
    await load.untilEnd(-20_000); // a few runs made by the leader first

    leader.process.signal("SIGSTOP");
    await sleep(5_000);
    const resumedAt = Date.now();
    leader.process.signal("SIGCONT");
    await waitFor("the stalled leader to exit", async () => leader.process.child.exitCode !== null, {
      timeoutMs: 30_000,
      intervalMs: 100,
    });
    await waitFor("the standby to lead", async () => (await leaseHolder(world, load)) === standby.identity, {
      timeoutMs: 30_000,
      intervalMs: 100,
    });

    const leaderLogs = controllerLogs(leader);
    const stoppedAt = leaderLogs.find((l) => l.msg === "leadership lost; stopping")?.time;
    expect(stoppedAt, "the resumed leader says it lost leadership").toBeDefined();
    const acted = leaderLogs.filter((l) => l.time >= resumedAt && l.msg === "run created");
    expect(acted, "runs created by the leader after it resumed").toEqual([]);
    let standbyLed: number | undefined;
    await waitFor(
      "the standby to log that it leads",
      async () => (standbyLed = controllerLogs(standby).find((l) => l.msg === LEADING)?.time) !== undefined,
      { timeoutMs: 10_000, intervalMs: 100 },
    );
    expect(standbyLed, "the standby's first leading moment").toBeDefined();
    expect(stoppedAt ?? Infinity, "the old leader stopped before the standby led").toBeLessThanOrEqual(
      standbyLed ?? -Infinity,
    );

    await load.settle();
    await load.expectNothingLost("leader SIGSTOP 5 s past its renew deadline, then SIGCONT", {
      stallMs: 5_000,
    });
  });
});
