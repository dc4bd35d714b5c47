/**
 * cadent in integration tests: install the CRDs, run `cadent controller` as a real process (so
 * tests can kill -9 it), and read cadent objects back from the API server (never from a cache).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { inject } from "vitest";
import { REPO_ROOT } from "./environment.ts";
import { k8s } from "./kube.ts";
import { freePort, GiveUp, waitFor } from "./ports.ts";
import { spawnTracked, type TrackedProcess } from "./processes.ts";

export const GROUP = "cadent.dev";
export const VERSION = "v1alpha1";
const CRD_NAMES = ["tasks.cadent.dev", "periodictasks.cadent.dev"] as const;

/** Server-side applies both CRDs (idempotent across test files) and waits until they are served. */
export async function installCrds(kc: k8s.KubeConfig): Promise<void> {
  const api = kc.makeApiClient(k8s.ApiextensionsV1Api);
  for (const name of CRD_NAMES) {
    const body: unknown = parseYaml(readFileSync(join(REPO_ROOT, "crds", `${name}.yaml`), "utf8"));
    await api.patchCustomResourceDefinition(
      { name, body: body as object, fieldManager: "cadent-tests", force: true },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.ServerSideApply),
    );
  }
  await waitFor(
    "the cadent CRDs to be Established",
    async () => {
      for (const name of CRD_NAMES) {
        const crd = await api.readCustomResourceDefinition({ name });
        if (!crd.status?.conditions?.some((c) => c.type === "Established" && c.status === "True"))
          return false;
      }
      return true;
    },
    { timeoutMs: 60_000, intervalMs: 250 },
  );
}

export interface CadentObject {
  apiVersion?: string;
  kind?: string;
  metadata: k8s.V1ObjectMeta;
  spec?: Record<string, unknown>;
  status?: Record<string, unknown> & {
    phase?: string;
    conditions?: { type: string; status: string; reason: string; message: string }[];
  };
}

/** Typed access to cadent's resources in one namespace, always from the API server. */
export class Cadent {
  readonly api: k8s.CustomObjectsApi;
  readonly namespace: string;

  constructor(kc: k8s.KubeConfig, namespace: string) {
    this.api = kc.makeApiClient(k8s.CustomObjectsApi);
    this.namespace = namespace;
  }

  async create(plural: "tasks" | "periodictasks", body: object): Promise<CadentObject> {
    return (await this.api.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural,
      namespace: this.namespace,
      body,
    })) as CadentObject;
  }

  async get(plural: "tasks" | "periodictasks", name: string): Promise<CadentObject> {
    return (await this.api.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural,
      namespace: this.namespace,
      name,
    })) as CadentObject;
  }

  async list(plural: "tasks" | "periodictasks", labelSelector?: string): Promise<CadentObject[]> {
    const list = (await this.api.listNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural,
      namespace: this.namespace,
      labelSelector,
    })) as { items: CadentObject[] };
    return list.items;
  }

  async patch(plural: "tasks" | "periodictasks", name: string, body: object): Promise<CadentObject> {
    return (await this.api.patchNamespacedCustomObject(
      { group: GROUP, version: VERSION, plural, namespace: this.namespace, name, body },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    )) as CadentObject;
  }

  async delete(plural: "tasks" | "periodictasks", name: string): Promise<void> {
    await this.api.deleteNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural,
      namespace: this.namespace,
      name,
      propagationPolicy: "Foreground",
    });
  }

  /** The runs of a PeriodicTask, oldest first. */
  async runs(periodicTask: string): Promise<CadentObject[]> {
    const items = await this.list("tasks", `cadent.dev/periodic-task=${periodicTask}`);
    return items.sort((a, b) => (a.metadata.name ?? "").localeCompare(b.metadata.name ?? ""));
  }

  /** Waits until `predicate` holds for the object; returns it. */
  async waitFor(
    plural: "tasks" | "periodictasks",
    name: string,
    what: string,
    predicate: (obj: CadentObject) => boolean,
    timeoutMs = 60_000,
  ): Promise<CadentObject> {
    let last: CadentObject | undefined;
    await waitFor(
      `${plural}/${name}: ${what}`,
      async () => {
        last = await this.get(plural, name);
        return predicate(last);
      },
      { timeoutMs, intervalMs: 250 },
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}\nlast seen: ${JSON.stringify(last?.status ?? null)}`);
    });
    if (!last) throw new Error("unreachable");
    return last;
  }

  /** Events about one object, oldest first. */
  async events(kc: k8s.KubeConfig, name: string): Promise<k8s.CoreV1Event[]> {
    const list = await kc.makeApiClient(k8s.CoreV1Api).listNamespacedEvent({
      namespace: this.namespace,
      fieldSelector: `involvedObject.name=${name}`,
    });
    return list.items;
  }
}

export interface ControllerProcess {
  process: TrackedProcess;
  healthPort: number;
  metricsPort: number;
  identity: string;
  stop(): Promise<void>;
  kill(): Promise<void>;
  /** GET a path on the health or metrics port. */
  get(port: number, path: string): Promise<{ status: number; body: string }>;
}

/**
 * Starts `cadent controller` on the project-local Node 24, watching one namespace, with its
 * Lease in that namespace (so test files never share one), and waits until /readyz says ready.
 */
export async function startControllerProcess(opts: {
  namespace: string;
  /** Whose credentials the controller uses; default: the cluster-admin kubeconfig of the run. */
  kubeconfigPath?: string;
  /** Where the Lease lives; default: `namespace`. */
  leaderElectionNamespace?: string;
  /** The broker; default: the run's shared Redis. */
  redisUrl?: string;
  identity?: string;
  extraArgs?: readonly string[];
  env?: NodeJS.ProcessEnv;
  waitReady?: boolean;
}): Promise<ControllerProcess> {
  const healthPort = await freePort();
  const metricsPort = await freePort();
  const identity = opts.identity ?? `controller-${healthPort}`;
  const proc = spawnTracked({
    name: `cadent-${identity}`,
    command: process.execPath,
    args: [
      join(REPO_ROOT, "src/cli/main.ts"),
      "controller",
      "--kubeconfig",
      opts.kubeconfigPath ?? inject("kubeconfigPath"),
      "--namespaces",
      opts.namespace,
      "--leader-election-namespace",
      opts.leaderElectionNamespace ?? opts.namespace,
      "--identity",
      identity,
      "--health-addr",
      `127.0.0.1:${healthPort}`,
      "--metrics-addr",
      `127.0.0.1:${metricsPort}`,
      "--log-level",
      "debug",
      "--redis-url",
      opts.redisUrl ?? inject("redisUrl"),
      ...(opts.extraArgs ?? []),
    ],
    logDir: join(inject("workDir"), "logs"),
    env: { ...process.env, ...opts.env },
  });
  const get = async (port: number, path: string): Promise<{ status: number; body: string }> => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`);
    return { status: res.status, body: await res.text() };
  };
  if (opts.waitReady ?? true) {
    await waitFor(
      `controller ${identity} /readyz`,
      async () => {
        if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
          throw new GiveUp(`controller exited:\n${proc.logTail()}`);
        }
        return (await get(healthPort, "/readyz")).status === 200;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
  }
  return {
    process: proc,
    healthPort,
    metricsPort,
    identity,
    stop: () => proc.stop(10_000),
    kill: () => proc.kill(),
    get,
  };
}

/** A Job-executor PeriodicTask manifest whose Pods succeed (or behave as `podAnnotations` say). */
export function jobPeriodicTask(
  name: string,
  spec: Record<string, unknown>,
  podAnnotations: Record<string, string> = {},
  taskSpec: Record<string, unknown> = {},
): object {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: "PeriodicTask",
    metadata: { name },
    spec: {
      ...spec,
      taskTemplate: {
        spec: {
          task: "app.tasks.report",
          args: [1, "x"],
          ...taskSpec,
          jobTemplate: {
            spec: {
              template: {
                metadata: { annotations: podAnnotations },
                spec: { containers: [{ name: "main", image: "busybox" }] },
              },
            },
          },
        },
      },
    },
  };
}
