import { describe, expect, it } from "vitest";
import { ControllerMetrics, RUN_OUTCOMES } from "../../../src/observability/metrics.ts";

/** The value of one sample line, e.g. sample(text, 'cadent_runs_total{outcome="created"}'). */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe("ControllerMetrics", () => {
  it("renders every cadent metric with its HELP and TYPE in Prometheus text format", async () => {
    const text = await new ControllerMetrics().render();
    const expected = {
      cadent_schedule_lag_seconds: "histogram",
      cadent_runs_total: "counter",
      cadent_reconcile_duration_seconds: "histogram",
      cadent_reconcile_errors_total: "counter",
      cadent_workqueue_depth: "gauge",
      cadent_leader: "gauge",
      cadent_informer_synced: "gauge",
      cadent_api_requests_total: "counter",
      cadent_kube_requests_total: "counter",
      cadent_redis_up: "gauge",
    };
    for (const [name, type] of Object.entries(expected)) {
      expect(text).toContain(`# HELP ${name} `);
      expect(text).toContain(`# TYPE ${name} ${type}`);
    }
  });

  it("includes the default Node.js process metrics in its own registry", async () => {
    const text = await new ControllerMetrics().render();
    expect(text).toContain("# TYPE process_cpu_user_seconds_total counter");
    expect(text).toContain("# TYPE nodejs_eventloop_lag_seconds gauge");
  });

  it("starts every run outcome at zero, and leader and redis_up at 0", async () => {
    const text = await new ControllerMetrics().render();
    for (const outcome of RUN_OUTCOMES) {
      expect(sample(text, `cadent_runs_total{outcome="${outcome}"}`)).toBe(0);
    }
    expect(sample(text, "cadent_leader")).toBe(0);
    expect(sample(text, "cadent_redis_up")).toBe(0);
  });

  it("keeps two instances apart (no global registry)", async () => {
    const a = new ControllerMetrics();
    const b = new ControllerMetrics();
    a.countRun("created");
    expect(sample(await a.render(), 'cadent_runs_total{outcome="created"}')).toBe(1);
    expect(sample(await b.render(), 'cadent_runs_total{outcome="created"}')).toBe(0);
  });

  it("puts schedule lag into buckets from 1 ms to 10 min, and a negative lag into the first", async () => {
    const metrics = new ControllerMetrics();
    metrics.observeScheduleLag("job", 0.0008);
    metrics.observeScheduleLag("job", 42);
    metrics.observeScheduleLag("job", -0.002);
    metrics.observeScheduleLag("redis", 700);
    const text = await metrics.render();
    expect(sample(text, 'cadent_schedule_lag_seconds_bucket{le="0.001",executor="job"}')).toBe(2);
    expect(sample(text, 'cadent_schedule_lag_seconds_bucket{le="30",executor="job"}')).toBe(2);
    expect(sample(text, 'cadent_schedule_lag_seconds_bucket{le="60",executor="job"}')).toBe(3);
    expect(sample(text, 'cadent_schedule_lag_seconds_bucket{le="600",executor="redis"}')).toBe(0);
    expect(sample(text, 'cadent_schedule_lag_seconds_bucket{le="+Inf",executor="redis"}')).toBe(1);
    expect(sample(text, 'cadent_schedule_lag_seconds_count{executor="job"}')).toBe(3);
  });

  it("records each typed call under its labels", async () => {
    const metrics = new ControllerMetrics();
    metrics.countRun("missed", 3);
    metrics.observeReconcile("periodictask", 0.02);
    metrics.countReconcileError("task");
    metrics.setQueueDepth("task", 7);
    metrics.setLeader(true);
    metrics.setInformerSynced("periodictasks.cadent.dev", true);
    metrics.countApiRequest({ verb: "patch", resource: "tasks", subresource: "status" }, "409");
    metrics.setRedisUp(true);
    const text = await metrics.render();
    expect(sample(text, 'cadent_runs_total{outcome="missed"}')).toBe(3);
    expect(sample(text, 'cadent_reconcile_duration_seconds_count{controller="periodictask"}')).toBe(1);
    expect(sample(text, 'cadent_reconcile_errors_total{controller="task"}')).toBe(1);
    expect(sample(text, 'cadent_workqueue_depth{queue="task"}')).toBe(7);
    expect(sample(text, "cadent_leader")).toBe(1);
    expect(sample(text, 'cadent_informer_synced{resource="periodictasks.cadent.dev"}')).toBe(1);
    expect(sample(text, 'cadent_api_requests_total{verb="patch",code="409"}')).toBe(1);
    expect(
      sample(
        text,
        'cadent_kube_requests_total{verb="patch",resource="tasks",subresource="status",code="409"}',
      ),
    ).toBe(1);
    expect(sample(text, "cadent_redis_up")).toBe(1);
  });

  it("feeds a work queue's hooks into depth, duration and error series", async () => {
    const metrics = new ControllerMetrics();
    const hooks = metrics.queueMetrics("periodictask");
    hooks.depth?.(5);
    hooks.reconciled?.("success", 250);
    hooks.reconciled?.("error", 10);
    hooks.reconciled?.("terminal", 10);
    hooks.reconciled?.("requeue", 10);
    const text = await metrics.render();
    expect(sample(text, 'cadent_workqueue_depth{queue="periodictask"}')).toBe(5);
    expect(sample(text, 'cadent_reconcile_duration_seconds_count{controller="periodictask"}')).toBe(4);
    expect(
      sample(text, 'cadent_reconcile_duration_seconds_bucket{le="0.25",controller="periodictask"}'),
    ).toBe(4);
    expect(sample(text, 'cadent_reconcile_errors_total{controller="periodictask"}')).toBe(2);
  });
});
