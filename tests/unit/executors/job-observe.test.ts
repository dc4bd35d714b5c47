/**
 * What the Job executor reports for a Job that has not finished yet: Queued until its Pod is
 * ready, then Running — and still Running in the moment between the Pod's end and the Job's
 * Complete or Failed condition, so a Task never steps back from Running to Queued.
 */
import type { BatchV1Api, CoreV1Api, V1Job, V1JobStatus } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { JobExecutor } from "../../../src/executors/job.ts";
import type { TaskContext } from "../../../src/executors/executor.ts";
import type { ReadonlyStore } from "../../../src/runtime/store.ts";

const TASK_UID = "3f1c2a9e-0000-4000-8000-000000000001";
const NOW = new Date("2026-11-25T06:00:05Z");

function executorWith(job: V1Job): JobExecutor {
  const jobs = { getByName: () => job } as unknown as ReadonlyStore<V1Job>;
  const unused = {} as unknown;
  return new JobExecutor({ jobs, batch: unused as BatchV1Api, core: unused as CoreV1Api });
}

function jobWith(status: V1JobStatus): V1Job {
  return {
    metadata: {
      name: "report-1795068000",
      namespace: "ns",
      ownerReferences: [
        { apiVersion: "cadent.dev/v1alpha1", kind: "Task", name: "t", uid: TASK_UID, controller: true },
      ],
    },
    status,
  };
}

const ctx = {
  task: {
    spec: { task: "app.tasks.report", jobTemplate: { spec: { template: { spec: { containers: [] } } } } },
  },
  object: {},
  namespace: "ns",
  name: "report-1795068000",
  uid: TASK_UID,
  taskId: "id",
  scheduledTime: new Date("2026-11-25T06:00:00Z"),
  status: { phase: "Running", jobName: "report-1795068000" },
  now: NOW,
} as unknown as TaskContext;

const condition = (type: string) => ({ type, status: "True", lastTransitionTime: NOW });

describe("an unfinished Job's Task phase", () => {
  it.each([
    { what: "no Pod ready yet", status: { active: 1 }, phase: "Queued" },
    { what: "its Pod ready", status: { active: 1, ready: 1 }, phase: "Running" },
    { what: "its Pod succeeded, Complete not yet set", status: { succeeded: 1, ready: 0 }, phase: "Running" },
    {
      what: "SuccessCriteriaMet, Complete not yet set",
      status: { succeeded: 1, conditions: [condition("SuccessCriteriaMet")] },
      phase: "Running",
    },
    {
      what: "FailureTarget, Failed not yet set",
      status: { failed: 1, conditions: [condition("FailureTarget")] },
      phase: "Running",
    },
    { what: "a failed Pod waiting for its retry", status: { failed: 1, active: 1 }, phase: "Queued" },
  ] as const)("$what: $phase", async ({ status, phase }) => {
    const observed = await executorWith(jobWith(status as V1JobStatus)).sync(ctx);
    expect(observed.phase).toBe(phase);
  });
});
