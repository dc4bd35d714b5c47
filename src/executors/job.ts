/**
 * The Job executor (product.md §3.2): a Task with a `jobTemplate` runs as a batch/v1 Job named
 * like the Task, owned by it (controller reference, so deleting the Task deletes the Job and its
 * Pods) and labelled `cadent.dev/task=<task>`.
 *
 * - Every container (and init container) gets CADENT_TASK_ID, CADENT_TASK_NAME, CADENT_ARGS,
 *   CADENT_KWARGS and CADENT_SCHEDULED_TIME.
 * - `timeoutSeconds` becomes `activeDeadlineSeconds` and `retry.limit` becomes `backoffLimit`
 *   (0 without `retry`: a failed attempt fails the Task, as with the Redis executor).
 * - Phases follow the Job: no Pod running yet → Queued, a Pod running → Running, Complete →
 *   Succeeded, Failed → Failed (reason TimedOut when the deadline ended it).
 * - The result is the termination message of the succeeded Pod (JSON when it parses, else the
 *   text); a failure carries the failed container's reason, exit code and message.
 */
import {
  type BatchV1Api,
  type CoreV1Api,
  type V1Container,
  type V1EnvVar,
  type V1Job,
  type V1JobCondition,
  type V1Pod,
} from "@kubernetes/client-node";
import { API_VERSION, LABELS, TASK_KIND } from "../api/index.ts";
import { isAlreadyExists, isNotFound } from "../runtime/errors.ts";
import type { ReadonlyStore } from "../runtime/store.ts";
import type { Executor, Observation, TaskContext, TaskError } from "./executor.ts";

export interface JobExecutorOptions {
  batch: BatchV1Api;
  core: CoreV1Api;
  /** The Jobs informer's cache (Jobs labelled cadent.dev/task). */
  jobs: ReadonlyStore<V1Job>;
}

const POD_JOB_LABEL = "batch.kubernetes.io/job-name";

const toIso = (value: Date | string | undefined): string | undefined => {
  if (value === undefined) return undefined;
  const d = value instanceof Date ? value : new Date(value);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString().replace(/\.\d{3}Z$/, "Z");
};

/** The environment a Job's containers get, in a stable order. */
export function cadentEnv(ctx: TaskContext): V1EnvVar[] {
  const spec = ctx.task.spec;
  return [
    { name: "CADENT_TASK_ID", value: ctx.taskId },
    { name: "CADENT_TASK_NAME", value: spec.task ?? ctx.name },
    { name: "CADENT_ARGS", value: JSON.stringify(spec.args ?? []) },
    { name: "CADENT_KWARGS", value: JSON.stringify(spec.kwargs ?? {}) },
    { name: "CADENT_SCHEDULED_TIME", value: toIso(ctx.scheduledTime) ?? "" },
  ];
}

function withEnv(containers: unknown, env: V1EnvVar[]): V1Container[] | undefined {
  if (!Array.isArray(containers)) return undefined;
  const names = new Set(env.map((e) => e.name));
  return containers.map((raw: unknown) => {
    const c = (typeof raw === "object" && raw !== null ? raw : {}) as V1Container;
    const own = (c.env ?? []).filter((e) => !names.has(e.name));
    return { ...c, env: [...own, ...env] };
  });
}

/** The Job for a Task: a pure function of the Task, so every attempt to create it is the same. */
export function buildJob(ctx: TaskContext): V1Job {
  const template = ctx.task.spec.jobTemplate;
  if (!template) throw new Error(`Task ${ctx.namespace}/${ctx.name} has no jobTemplate`);
  const env = cadentEnv(ctx);
  const jobSpec = structuredClone(template.spec) as Record<string, unknown> & {
    template: { metadata?: Record<string, unknown>; spec: Record<string, unknown> };
  };
  const podSpec = { ...jobSpec.template.spec };
  const containers = withEnv(podSpec["containers"], env);
  if (containers) podSpec["containers"] = containers;
  const initContainers = withEnv(podSpec["initContainers"], env);
  if (initContainers) podSpec["initContainers"] = initContainers;
  if (podSpec["restartPolicy"] === undefined) podSpec["restartPolicy"] = "Never";
  const spec: Record<string, unknown> = { ...jobSpec, template: { ...jobSpec.template, spec: podSpec } };
  const { timeoutSeconds, retry } = ctx.task.spec;
  if (timeoutSeconds !== undefined) spec["activeDeadlineSeconds"] = timeoutSeconds;
  if (retry !== undefined) spec["backoffLimit"] = retry.limit;
  else if (spec["backoffLimit"] === undefined) spec["backoffLimit"] = 0;
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: {
      name: ctx.name,
      namespace: ctx.namespace,
      labels: { ...template.metadata?.labels, [LABELS.task]: ctx.name },
      annotations: { ...template.metadata?.annotations },
      ownerReferences: [
        {
          apiVersion: API_VERSION,
          kind: TASK_KIND,
          name: ctx.name,
          uid: ctx.uid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    // The template was validated by the API server (and a dry run); it is the Job spec as written.
    spec: spec as unknown as V1Job["spec"],
  };
}

const condition = (job: V1Job, type: string): V1JobCondition | undefined =>
  job.status?.conditions?.find((c) => c.type === type && c.status === "True");

/** The terminated state of the Pod's first container that has one with a message, else any. */
function terminated(pod: V1Pod) {
  const states = (pod.status?.containerStatuses ?? [])
    .map((s) => s.state?.terminated)
    .filter((t) => t !== undefined);
  return states.find((t) => t.message) ?? states[0];
}

/** The result: JSON when the termination message parses, otherwise the text itself. */
export function parseTerminationMessage(message: string | undefined): unknown {
  if (message === undefined || message === "") return null;
  try {
    return JSON.parse(message) as unknown;
  } catch {
    return message;
  }
}

const newestFirst = (a: V1Pod, b: V1Pod): number =>
  (toIso(b.metadata?.creationTimestamp) ?? "").localeCompare(toIso(a.metadata?.creationTimestamp) ?? "");

export class JobExecutor implements Executor {
  readonly kind = "job" as const;
  readonly #options: JobExecutorOptions;

  constructor(options: JobExecutorOptions) {
    this.#options = options;
  }

  async sync(ctx: TaskContext): Promise<Observation> {
    let job = this.#options.jobs.getByName(ctx.namespace, ctx.name);
    const ours = (j: V1Job | undefined): boolean =>
      j?.metadata?.ownerReferences?.some((o) => o.uid === ctx.uid && o.controller) ?? false;
    if (job && !ours(job)) {
      return {
        phase: "Failed",
        completionTime: toIso(ctx.now),
        error: {
          reason: "JobNameTaken",
          message: `a Job named ${ctx.name} exists and is not owned by this Task`,
        },
        reason: "JobNameTaken",
        message: `a Job named ${ctx.name} exists and is not owned by this Task`,
      };
    }
    if (!job) {
      if (ctx.status.jobName) {
        // The Job was made and is gone (deleted by someone, or not in the cache yet): ask the server.
        try {
          job = await this.#options.batch.readNamespacedJob({ namespace: ctx.namespace, name: ctx.name });
        } catch (err) {
          if (!isNotFound(err)) throw err;
          const message = `Job ${ctx.name} was deleted before it finished`;
          return {
            phase: "Failed",
            completionTime: toIso(ctx.now),
            error: { reason: "JobDeleted", message },
            reason: "JobDeleted",
            message,
          };
        }
      } else {
        try {
          job = await this.#options.batch.createNamespacedJob({
            namespace: ctx.namespace,
            body: buildJob(ctx),
          });
        } catch (err) {
          if (!isAlreadyExists(err)) throw err;
          job = await this.#options.batch.readNamespacedJob({ namespace: ctx.namespace, name: ctx.name });
          if (!ours(job)) return this.sync(ctx);
        }
        return {
          phase: "Queued",
          queuedTime: toIso(ctx.now),
          jobName: ctx.name,
          attempts: 0,
          reason: "JobCreated",
          message: `created Job ${ctx.name}`,
        };
      }
    }
    return this.#observe(ctx, job);
  }

  async #observe(ctx: TaskContext, job: V1Job): Promise<Observation> {
    const status = job.status ?? {};
    const attempts = (status.failed ?? 0) + (status.succeeded ?? 0) + (status.active ?? 0);
    const base = { jobName: ctx.name, attempts, startTime: toIso(status.startTime) };
    const complete = condition(job, "Complete");
    const failed = condition(job, "Failed");
    if (complete) {
      const pod = (await this.#pods(ctx)).filter((p) => p.status?.phase === "Succeeded").sort(newestFirst)[0];
      const state = pod ? terminated(pod) : undefined;
      return {
        ...base,
        phase: "Succeeded",
        completionTime: toIso(status.completionTime ?? complete.lastTransitionTime ?? ctx.now),
        result: parseTerminationMessage(state?.message),
        worker: pod?.metadata?.name,
        reason: "Succeeded",
        message: `Job ${ctx.name} completed`,
      };
    }
    if (failed) {
      const pod = (await this.#pods(ctx)).filter((p) => p.status?.phase === "Failed").sort(newestFirst)[0];
      const state = pod ? terminated(pod) : undefined;
      const timedOut = failed.reason === "DeadlineExceeded";
      const reason = timedOut ? "TimedOut" : (failed.reason ?? "JobFailed");
      const message = timedOut
        ? `Job ${ctx.name} ran longer than timeoutSeconds (${ctx.task.spec.timeoutSeconds ?? "?"} s)`
        : [
            failed.message ?? `Job ${ctx.name} failed`,
            state
              ? `container exited with code ${state.exitCode}${state.message ? `: ${state.message}` : ""}`
              : "",
          ]
            .filter(Boolean)
            .join("; ");
      const error: TaskError = {
        reason,
        message: message.slice(0, 8192),
        ...(state?.reason ? { type: state.reason } : {}),
        ...(state && !timedOut ? { exitCode: state.exitCode } : {}),
      };
      return {
        ...base,
        phase: "Failed",
        completionTime: toIso(failed.lastTransitionTime ?? ctx.now),
        error,
        worker: pod?.metadata?.name,
        reason,
        message,
      };
    }
    // status.ready counts the Job's Pods that are Ready: the attempt is running, not just queued.
    // Between a Pod's end and the Job's Complete/Failed condition the Pod is no longer ready but
    // the Job already counts it (or says SuccessCriteriaMet/FailureTarget): still Running, so the
    // Task does not step back to Queued for a moment (and write its status twice more).
    const finishing =
      (status.succeeded ?? 0) > 0 ||
      condition(job, "SuccessCriteriaMet") !== undefined ||
      condition(job, "FailureTarget") !== undefined;
    return (status.ready ?? 0) > 0 || finishing
      ? { ...base, phase: "Running", reason: "Running", message: `Job ${ctx.name} is running` }
      : { ...base, phase: "Queued", reason: "JobCreated", message: `Job ${ctx.name} is waiting for its Pod` };
  }

  async #pods(ctx: TaskContext): Promise<V1Pod[]> {
    const list = await this.#options.core.listNamespacedPod({
      namespace: ctx.namespace,
      labelSelector: `${POD_JOB_LABEL}=${ctx.name}`,
    });
    return list.items;
  }

  async cancel(ctx: TaskContext): Promise<void> {
    try {
      await this.#options.batch.deleteNamespacedJob({
        namespace: ctx.namespace,
        name: ctx.name,
        propagationPolicy: "Background",
      });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}
