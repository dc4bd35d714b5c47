/**
 * The Helm chart (charts/cadent) in integration tests: helm and kubectl against the test cluster,
 * rendered manifests, ServiceAccount identities with bound tokens, and `cadent controller` started
 * with the flags the installed chart gives it (a real process, as there is no container runtime).
 */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { expect, inject } from "vitest";
import { parseAllDocuments } from "yaml";
import { GROUP, VERSION, startControllerProcess, type ControllerProcess } from "./cadent.ts";
import { REPO_ROOT } from "./environment.ts";
import { errorCode, k8s } from "./kube.ts";

export const CHART = join(REPO_ROOT, "charts/cadent");

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Helm's caches and config go under the run's scratch directory, never the user's home. */
function helmHome(kind: string): string {
  return join(inject("workDir"), "helm", kind);
}

/** Runs a CLI (helm, kubectl) against the test cluster, feeding `input` on stdin. */
function run(command: string, args: readonly string[], input?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: {
        ...process.env,
        KUBECONFIG: inject("kubeconfigPath"),
        HELM_CACHE_HOME: helmHome("cache"),
        HELM_CONFIG_HOME: helmHome("config"),
        HELM_DATA_HOME: helmHome("data"),
      },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? "");
  });
}

export const helm = (...args: string[]): Promise<RunResult> => run(join(inject("kubeBin"), "helm"), args);
export const kubectl = (args: readonly string[], input?: string): Promise<RunResult> =>
  run(join(inject("kubeBin"), "kubectl"), args, input);

export type Values = Readonly<Record<string, string | readonly string[] | undefined>>;

/** `--set` flags from a flat record; lists are written as {a,b}. */
export function setFlags(values: Values): string[] {
  return Object.entries(values).flatMap(([key, value]) =>
    value === undefined
      ? []
      : ["--set", `${key}=${typeof value === "string" ? value : `{${value.join(",")}}`}`],
  );
}

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: k8s.V1ObjectMeta;
  spec?: Record<string, unknown>;
  rules?: k8s.V1PolicyRule[];
}

/** The objects of a multi-document YAML stream (helm template, helm get manifest). */
export const manifests = (text: string): Manifest[] =>
  parseAllDocuments(text)
    .map((d) => d.toJS() as Manifest | null)
    .filter((m): m is Manifest => m !== null);

/** `helm template` of the chart as it would be installed as `release` into `namespace`. */
export async function renderChart(opts: {
  release: string;
  namespace: string;
  kubeVersion: string;
  values: Values;
}): Promise<string> {
  const out = await helm(
    "template",
    opts.release,
    CHART,
    "--namespace",
    opts.namespace,
    "--kube-version",
    opts.kubeVersion,
    ...setFlags(opts.values),
  );
  expect(out.code, out.stderr).toBe(0);
  return out.stdout;
}

/** The Kubernetes version of the test cluster, for `helm template --kube-version`. */
export async function serverVersion(kc: k8s.KubeConfig): Promise<string> {
  return (await kc.makeApiClient(k8s.VersionApi).getCode()).gitVersion;
}

/**
 * A Kubernetes API error's status and message (the Status's own message when the body is one),
 * to assert on both; 200 and "" when the call succeeded.
 */
export async function outcome(call: () => Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await call();
    return { code: 200, message: "" };
  } catch (err) {
    const code = errorCode(err);
    if (code === undefined) throw err;
    return { code, message: err instanceof k8s.ApiException ? statusMessage(String(err.body)) : "" };
  }
}

function statusMessage(body: string): string {
  try {
    const status: unknown = JSON.parse(body);
    if (
      typeof status === "object" &&
      status !== null &&
      "message" in status &&
      typeof status.message === "string"
    )
      return status.message;
  } catch {
    // Not a Status: the raw body is the best message there is.
  }
  return body;
}

/** Creates a cadent object as the user of `kc`: the API server's answer, admission included. */
export function createAs(
  kc: k8s.KubeConfig,
  namespace: string,
  plural: "tasks" | "periodictasks",
  body: object,
  dryRun?: string,
): Promise<{ code: number; message: string }> {
  return outcome(() =>
    kc.makeApiClient(k8s.CustomObjectsApi).createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural,
      namespace,
      body,
      dryRun,
    }),
  );
}

export interface ServiceAccountIdentity {
  kc: k8s.KubeConfig;
  /** A kubeconfig file for processes (`cadent controller --kubeconfig`). */
  path: string;
}

/** A kubeconfig that authenticates as a ServiceAccount, with a bound token from the TokenRequest API. */
export async function serviceAccountKubeConfig(
  admin: k8s.KubeConfig,
  namespace: string,
  name: string,
  dir: string,
): Promise<ServiceAccountIdentity> {
  const core = admin.makeApiClient(k8s.CoreV1Api);
  const request = await core.createNamespacedServiceAccountToken({
    namespace,
    name,
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  const token = request.status?.token;
  if (!token) throw new Error(`the TokenRequest for ${namespace}/${name} returned no token`);
  const cluster = admin.getCurrentCluster();
  if (!cluster) throw new Error("the admin kubeconfig has no current cluster");
  const user = `${namespace}-${name}`;
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [cluster],
    users: [{ name: user, token }],
    contexts: [{ name: user, cluster: cluster.name, user }],
    currentContext: user,
  });
  const path = join(dir, `${user}.kubeconfig`);
  writeFileSync(path, kc.exportConfig(), { mode: 0o600 });
  return { kc, path };
}

/**
 * A user for admission and authorization tests: a ServiceAccount `name` in `namespace` bound to a
 * Role of that name with `rules`, and a kubeconfig that authenticates as it.
 */
export async function createUser(
  admin: k8s.KubeConfig,
  namespace: string,
  name: string,
  rules: readonly k8s.V1PolicyRule[],
  dir: string,
): Promise<ServiceAccountIdentity> {
  const core = admin.makeApiClient(k8s.CoreV1Api);
  const rbac = admin.makeApiClient(k8s.RbacAuthorizationV1Api);
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
  await rbac.createNamespacedRole({ namespace, body: { metadata: { name }, rules: [...rules] } });
  await rbac.createNamespacedRoleBinding({
    namespace,
    body: {
      metadata: { name },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name },
      subjects: [{ kind: "ServiceAccount", name, namespace }],
    },
  });
  return serviceAccountKubeConfig(admin, namespace, name, dir);
}

/**
 * `helm install` of the chart as `release` into `namespace`; resolves once Helm reports success.
 * The CRDs exist already (server-side applied by installCrds): Helm skips them, or is told to.
 */
export async function installChart(
  release: string,
  namespace: string,
  values: Values,
  { skipCrds = false }: { skipCrds?: boolean } = {},
): Promise<void> {
  const install = await helm(
    "install",
    release,
    CHART,
    "--namespace",
    namespace,
    ...(skipCrds ? ["--skip-crds"] : []),
    ...setFlags(values),
  );
  expect(install.code, install.stdout + install.stderr).toBe(0);
}

export async function uninstallChart(release: string, namespace: string): Promise<void> {
  await helm("uninstall", release, "--namespace", namespace, "--wait");
}

/**
 * Starts `cadent controller` as the installed release's ServiceAccount, with the flags of the
 * release's controller Deployment (minus the listen addresses and log level, which the harness
 * sets) and the Lease namespace the Pod's POD_NAMESPACE would give it.
 */
export async function startChartController(opts: {
  release: string;
  /** The release namespace: the ServiceAccount and the Lease live there. */
  namespace: string;
  /** The namespace the harness passes as --namespaces (the chart's own flag follows and wins). */
  watched: string;
  identity: ServiceAccountIdentity;
}): Promise<ControllerProcess> {
  const manifest = await helm("get", "manifest", opts.release, "--namespace", opts.namespace);
  const deployment = manifests(manifest.stdout).find(
    (m) => m.kind === "Deployment" && m.metadata.name === `${opts.release}-controller`,
  );
  const args = (deployment?.spec?.["template"] as k8s.V1PodTemplateSpec).spec?.containers[0]?.args ?? [];
  expect(args[0]).toBe("controller");
  const chartArgs = args.slice(1).filter((a) => !/^--(metrics-addr|health-addr|log-level)=/.test(a));
  return startControllerProcess({
    namespace: opts.watched,
    kubeconfigPath: opts.identity.path,
    leaderElectionNamespace: opts.namespace,
    extraArgs: chartArgs,
  });
}
