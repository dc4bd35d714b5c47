import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { CoreV1Event, KubernetesObject } from "@kubernetes/client-node";
import { EventRecorder, REPORTING_CONTROLLER } from "../../../src/runtime/events.ts";
import type { EventRecorderOptions, EventSink } from "../../../src/runtime/events.ts";
import { apiError } from "./fakes.ts";

const T0 = new Date("2030-01-01T00:00:00Z").getTime();

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});

afterEach(() => {
  vi.useRealTimers();
});

const nightly: KubernetesObject = {
  apiVersion: "cadent.dev/v1alpha1",
  kind: "PeriodicTask",
  metadata: { name: "nightly", namespace: "team-a", uid: "uid-nightly", resourceVersion: "7" },
};

/** Records every write; `failCreates`/`failPatches` make them fail. */
class FakeSink implements EventSink {
  readonly created: CoreV1Event[] = [];
  readonly patches: { name: string; patch: Readonly<Record<string, unknown>> }[] = [];
  failCreates: unknown;
  failPatches: unknown;

  async create(namespace: string, event: CoreV1Event): Promise<CoreV1Event> {
    if (this.failCreates !== undefined) {
      throw this.failCreates;
    }
    this.created.push(event);
    return { ...event, metadata: { ...event.metadata, namespace } };
  }

  async patch(
    _namespace: string,
    name: string,
    patch: Readonly<Record<string, unknown>>,
  ): Promise<CoreV1Event> {
    if (this.failPatches !== undefined) {
      throw this.failPatches;
    }
    this.patches.push({ name, patch });
    return { involvedObject: {}, metadata: { name } };
  }
}

function setup(options: Partial<EventRecorderOptions> = {}) {
  const sink = new FakeSink();
  const recorder = new EventRecorder({ sink, reportingInstance: "controller-0", ...options });
  return { sink, recorder };
}

describe("EventRecorder", () => {
  it("creates a core/v1 Event referring to the object, as cadent.dev/controller", async () => {
    const { sink, recorder } = setup();
    recorder.event(nightly, "Normal", "RunCreated", "created run nightly-29000000");
    await vi.advanceTimersByTimeAsync(0);
    expect(sink.created).toEqual([
      {
        apiVersion: "v1",
        kind: "Event",
        metadata: { name: expect.stringMatching(/^nightly\.[0-9a-f]+$/), namespace: "team-a" },
        involvedObject: {
          apiVersion: "cadent.dev/v1alpha1",
          kind: "PeriodicTask",
          name: "nightly",
          namespace: "team-a",
          uid: "uid-nightly",
          resourceVersion: "7",
        },
        type: "Normal",
        reason: "RunCreated",
        message: "created run nightly-29000000",
        count: 1,
        firstTimestamp: new Date(T0),
        lastTimestamp: new Date(T0),
        source: { component: REPORTING_CONTROLLER },
        reportingComponent: "cadent.dev/controller",
        reportingInstance: "controller-0",
      },
    ]);
  });

  it("aggregates a hot loop: 1000 identical events make one Event and one count patch per flush interval", async () => {
    const { sink, recorder } = setup({ flushIntervalMs: 10_000 });
    for (let i = 0; i < 1000; i++) {
      recorder.event(nightly, "Warning", "BrokerUnavailable", "redis://redis:6379: connection refused");
      await vi.advanceTimersByTimeAsync(10);
    }
    await vi.advanceTimersByTimeAsync(10_000);
    expect(sink.created).toHaveLength(1);
    // The first repeat (10 ms) opened a 10 s flush window that all the other 998 repeats fell into.
    expect(sink.patches.map((p) => p.patch["count"])).toEqual([1000]);
  });

  it("starts a new Event once the same event has not recurred within the window", async () => {
    const { sink, recorder } = setup({ windowMs: 600_000 });
    recorder.event(nightly, "Normal", "RunSkipped", "previous run still active (Forbid)");
    await vi.advanceTimersByTimeAsync(600_000);
    recorder.event(nightly, "Normal", "RunSkipped", "previous run still active (Forbid)");
    await vi.advanceTimersByTimeAsync(0);
    expect(sink.created).toHaveLength(2);
  });

  it("drops new Events about one object beyond the spam filter's burst, refilling one per 5 minutes", async () => {
    const { sink, recorder } = setup({ burst: 25 });
    for (let i = 0; i < 40; i++) {
      recorder.event(nightly, "Warning", "RunFailed", `attempt ${i} failed`);
    }
    await vi.advanceTimersByTimeAsync(0);
    expect(sink.created).toHaveLength(25);
    await vi.advanceTimersByTimeAsync(5 * 60_000);
    recorder.event(nightly, "Warning", "RunFailed", "attempt 41 failed");
    recorder.event(nightly, "Warning", "RunFailed", "attempt 42 failed");
    await vi.advanceTimersByTimeAsync(0);
    expect(sink.created).toHaveLength(26);
  });

  it("gives routine Events of a PeriodicTask and of its runs one bucket, apart from decisions", async () => {
    const { sink, recorder } = setup({ burst: 25 });
    const run = (i: number): KubernetesObject => ({
      apiVersion: "cadent.dev/v1alpha1",
      kind: "Task",
      metadata: {
        name: `nightly-${i}`,
        namespace: "team-a",
        uid: `uid-run-${i}`,
        ownerReferences: [
          {
            apiVersion: "cadent.dev/v1alpha1",
            kind: "PeriodicTask",
            name: "nightly",
            uid: "uid-nightly",
            controller: true,
          },
        ],
      },
    });
    for (let i = 0; i < 20; i++) {
      recorder.event(nightly, "Normal", "RunCreated", `created run nightly-${i}`, { routine: true });
      recorder.event(run(i), "Normal", "Succeeded", "the task returned", { routine: true });
    }
    recorder.event(nightly, "Warning", "MissedRuns", "1 scheduled time(s) missed");
    recorder.event(run(20), "Warning", "TaskFailed", "ValueError: boom");
    await vi.advanceTimersByTimeAsync(0);
    const reasons = sink.created.map((e) => e.reason);
    expect(
      reasons.filter((r) => r === "RunCreated" || r === "Succeeded"),
      "routine Events",
    ).toHaveLength(25);
    expect(
      reasons.filter((r) => r === "MissedRuns" || r === "TaskFailed"),
      "decisions",
    ).toHaveLength(2);

    await vi.advanceTimersByTimeAsync(5 * 60_000);
    recorder.event(run(21), "Normal", "Succeeded", "the task returned", { routine: true });
    recorder.event(run(22), "Normal", "Succeeded", "the task returned", { routine: true });
    await vi.advanceTimersByTimeAsync(0);
    expect(
      sink.created.filter((e) => e.reason === "Succeeded"),
      "one more per 5 minutes",
    ).toHaveLength(13);
  });

  it("gives routine Events of unrelated objects buckets of their own", async () => {
    const { sink, recorder } = setup({ burst: 2 });
    const standalone = (name: string): KubernetesObject => ({
      apiVersion: "cadent.dev/v1alpha1",
      kind: "Task",
      metadata: { name, namespace: "team-a", uid: `uid-${name}` },
    });
    for (const name of ["a", "b", "c"]) {
      recorder.event(standalone(name), "Normal", "JobCreated", `created Job ${name}`, { routine: true });
      recorder.event(standalone(name), "Normal", "Succeeded", "the task returned", { routine: true });
    }
    await vi.advanceTimersByTimeAsync(0);
    expect(sink.created).toHaveLength(6);
  });

  it("caps the message at 1024 characters", async () => {
    const { sink, recorder } = setup();
    recorder.event(nightly, "Warning", "InvalidSchedule", "x".repeat(5000));
    await vi.advanceTimersByTimeAsync(0);
    expect(sink.created[0]?.message).toHaveLength(1024);
  });

  it("puts Events about cluster-scoped objects in the default namespace", async () => {
    const { sink, recorder } = setup();
    recorder.event(
      { apiVersion: "v1", kind: "Node", metadata: { name: "node-1", uid: "n1" } },
      "Normal",
      "Seen",
      "hello",
    );
    await vi.advanceTimersByTimeAsync(0);
    expect(sink.created[0]?.metadata.namespace).toBe("default");
  });

  it("never throws: failed writes and unusable objects are logged and dropped", async () => {
    const { sink, recorder } = setup();
    sink.failCreates = apiError(403, "Forbidden");
    expect(() => recorder.event(nightly, "Normal", "RunCreated", "x")).not.toThrow();
    expect(() => recorder.event({ metadata: {} }, "Normal", "RunCreated", "x")).not.toThrow();
    await vi.advanceTimersByTimeAsync(0);
    sink.failCreates = undefined;
    recorder.event(nightly, "Normal", "RunCreated", "x");
    await vi.advanceTimersByTimeAsync(0);
    expect(sink.created).toHaveLength(1);
  });

  it("close() writes pending counts, then drops later Events", async () => {
    const { sink, recorder } = setup({ flushIntervalMs: 60_000 });
    recorder.event(nightly, "Normal", "RunMissed", "missed 02:00");
    recorder.event(nightly, "Normal", "RunMissed", "missed 02:00");
    recorder.event(nightly, "Normal", "RunMissed", "missed 02:00");
    await recorder.close();
    expect(sink.patches).toEqual([
      {
        name: sink.created[0]?.metadata.name,
        patch: { count: 3, lastTimestamp: "2030-01-01T00:00:00.000Z" },
      },
    ]);
    recorder.event(nightly, "Normal", "RunMissed", "missed 03:00");
    await vi.advanceTimersByTimeAsync(120_000);
    expect(sink.created).toHaveLength(1);
  });

  it("a count patch that finds the Event gone (TTL) lets the next occurrence create a new one", async () => {
    const { sink, recorder } = setup({ flushIntervalMs: 1_000 });
    recorder.event(nightly, "Normal", "RunMissed", "missed 02:00");
    recorder.event(nightly, "Normal", "RunMissed", "missed 02:00");
    sink.failPatches = apiError(404, "NotFound");
    await vi.advanceTimersByTimeAsync(1_000);
    sink.failPatches = undefined;
    recorder.event(nightly, "Normal", "RunMissed", "missed 02:00");
    await vi.advanceTimersByTimeAsync(0);
    expect(sink.created).toHaveLength(2);
  });
});
