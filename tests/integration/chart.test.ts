/**
 * The Helm chart on the real control plane: it lints, its manifests pass the API server's own
 * validation, and once installed its ServiceAccount can run the controller (a real process here,
 * as there is no container runtime) — and can do little else. The admission policy and the
 * restricted Pod Security profile are checked against the real admission chain.
 */
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { parseAllDocuments } from "yaml";
import {
  Cadent,
  GROUP,
  VERSION,
  installCrds,
  jobPeriodicTask,
  startControllerProcess,
  type ControllerProcess,
} from "../support/cadent.ts";
import { REPO_ROOT } from "../support/environment.ts";
import { createTestNamespace, errorCode, k8s, kubeConfig, uniqueSuffix } from "../support/kube.ts";
import { waitFor } from "../support/ports.ts";

const CHART = join(REPO_ROOT, "charts/cadent");
/** Release "cadent": its resources (ServiceAccount, Lease) are named "cadent" too. */
const RELEASE = "cadent";

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
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

/** Helm's caches and config go under the run's scratch directory, never the user's home. */
function helmHome(kind: string): string {
  return join(inject("workDir"), "helm", kind);
}

const helm = (...args: string[]) => run(join(inject("kubeBin"), "helm"), args);
const kubectl = (args: readonly string[], input?: string) =>
  run(join(inject("kubeBin"), "kubectl"), args, input);

type Values = Readonly<Record<string, string | readonly string[] | undefined>>;

/** `--set` flags from a flat record; lists are written as {a,b}. */
function setFlags(values: Values): string[] {
  return Object.entries(values).flatMap(([key, value]) =>
    value === undefined
      ? []
      : ["--set", `${key}=${typeof value === "string" ? value : `{${value.join(",")}}`}`],
  );
}

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: k8s.V1ObjectMeta;
  spec?: Record<string, unknown>;
  rules?: k8s.V1PolicyRule[];
}

/** A Kubernetes API error's status and message, to assert on both. */
async function outcome(call: () => Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await call();
    return { code: 200, message: "" };
  } catch (err) {
    const code = errorCode(err);
    if (code === undefined) throw err;
    return { code, message: err instanceof k8s.ApiException ? String(err.body) : "" };
  }
}

/** A kubeconfig that authenticates as a ServiceAccount, with a bound token from the TokenRequest API. */
async function serviceAccountKubeConfig(
  admin: k8s.KubeConfig,
  namespace: string,
  name: string,
  dir: string,
): Promise<{ kc: k8s.KubeConfig; path: string }> {
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

/** The Kubernetes version of the test cluster, for `helm template --kube-version`. */
async function serverVersion(kc: k8s.KubeConfig): Promise<string> {
  return (await kc.makeApiClient(k8s.VersionApi).getCode()).gitVersion;
}

describe.runIf(inject("kubeBin") !== "" && inject("jobsRun"))("the cadent Helm chart", () => {
  const kc = kubeConfig();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
  const scratch = join(inject("workDir"), `chart-${uniqueSuffix()}`);
  let kubeVersion: string;
  let releaseNs: Awaited<ReturnType<typeof createTestNamespace>>;
  let watchedNs: Awaited<ReturnType<typeof createTestNamespace>>;
  let otherNs: Awaited<ReturnType<typeof createTestNamespace>>;

  /** `helm template` of the chart as it would be installed into the release namespace. */
  async function render(values: Values): Promise<string> {
    const out = await helm(
      "template",
      RELEASE,
      CHART,
      "--namespace",
      releaseNs.name,
      "--kube-version",
      kubeVersion,
      ...setFlags(values),
    );
    expect(out.code, out.stderr).toBe(0);
    return out.stdout;
  }

  const manifests = (text: string): Manifest[] =>
    parseAllDocuments(text)
      .map((d) => d.toJS() as Manifest | null)
      .filter((m): m is Manifest => m !== null);

  beforeAll(async () => {
    mkdirSync(scratch, { recursive: true });
    await installCrds(kc);
    kubeVersion = await serverVersion(kc);
    releaseNs = await createTestNamespace(kc, "chart-rel");
    watchedNs = await createTestNamespace(kc, "chart-watched");
    otherNs = await createTestNamespace(kc, "chart-other");
  });
  afterAll(async () => {
    await releaseNs?.cleanup();
    await watchedNs?.cleanup();
    await otherNs?.cleanup();
  });

  describe("lint and render", () => {
    it.each([
      { values: "defaults plus the try-out Redis", set: { "redis.enabled": "true" } },
      {
        values: "a namespace list, a worker, an existing Secret and a password file",
        set: {
          "rbac.namespaces": ["a", "b"],
          "worker.enabled": "true",
          "worker.tasks": ["/app/dist/tasks.js"],
          "redisUrl.existingSecret": "my-redis",
          "redisPassword.existingSecret": "my-redis-password",
        },
      },
    ])("helm lint passes with $values", async ({ set }) => {
      const out = await helm("lint", CHART, "--strict", "--kube-version", kubeVersion, ...setFlags(set));
      expect(out.code, out.stdout + out.stderr).toBe(0);
    });

    it.each([
      {
        problem: "a namespace name that is not a DNS label",
        set: { "redis.enabled": "true", "rbac.namespaces": ["Not_A_Name"] },
        expectedError: /rbac\/namespaces\/0/,
      },
      {
        problem: "a misspelt value",
        set: { "redis.enabled": "true", "controler.replicas": "3" },
        expectedError: /controler/,
      },
      { problem: "no Redis at all", set: {}, expectedError: /cadent needs a Redis/ },
      {
        problem: "a worker without task modules",
        set: { "redis.enabled": "true", "worker.enabled": "true" },
        expectedError: /worker\.enabled needs worker\.tasks/,
      },
    ])("helm template refuses $problem", async ({ set, expectedError }) => {
      // Not `helm lint`: it reports a template's `fail` as INFO, by design.
      const out = await helm("template", RELEASE, CHART, "--kube-version", kubeVersion, ...setFlags(set));
      expect(out.code).not.toBe(0);
      expect(out.stderr).toMatch(expectedError);
    });

    it.each([
      { mode: "cluster-wide, with the try-out Redis", set: () => ({ "redis.enabled": "true" }) },
      {
        mode: "namespaced, with a worker",
        set: (watched: string) => ({
          "rbac.namespaces": [watched],
          "redisUrl.value": "redis://redis.example:6379/0",
          "worker.enabled": "true",
          "worker.tasks": ["/app/dist/tasks.js"],
        }),
      },
    ])("the API server accepts every rendered manifest ($mode, server-side dry run)", async ({ set }) => {
      const values: Values = set(watchedNs.name);
      const text = await render(values);
      const out = await kubectl(["apply", "--dry-run=server", "-f", "-"], text);
      expect(out.code, out.stderr).toBe(0);
      const kinds = manifests(text).map((m) => m.kind);
      for (const kind of [
        "ServiceAccount",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
      ]) {
        expect(kinds).toContain(kind);
      }
    });

    it("cluster-wide mode grants a ClusterRole; namespaced mode a Role per namespace and --namespaces", async () => {
      const clusterWide = manifests(await render({ "redis.enabled": "true" }));
      expect(clusterWide.map((m) => m.kind)).toEqual(
        expect.arrayContaining(["ClusterRole", "ClusterRoleBinding"]),
      );
      const namespaced = manifests(
        await render({ "redis.enabled": "true", "rbac.namespaces": ["team-a", "team-b"] }),
      );
      expect(namespaced.map((m) => m.kind)).not.toContain("ClusterRole");
      const roleNamespaces = namespaced
        .filter((m) => m.kind === "Role" && m.metadata.name?.endsWith("-controller"))
        .map((m) => m.metadata.namespace);
      expect(roleNamespaces).toEqual(["team-a", "team-b"]);
      const deployment = namespaced.find(
        (m) => m.kind === "Deployment" && m.metadata.name === `${RELEASE}-controller`,
      );
      const pod = (deployment?.spec?.["template"] as k8s.V1PodTemplateSpec).spec;
      const container = pod?.containers[0];
      expect(container?.args).toContain("--namespaces=team-a,team-b");
      expect(container?.env?.find((e) => e.name === "POD_NAMESPACE")?.valueFrom?.fieldRef?.fieldPath).toBe(
        "metadata.namespace",
      );
      expect(container?.env?.find((e) => e.name === "REDIS_URL")?.valueFrom?.secretKeyRef?.name).toBeTruthy();
    });

    it("renders a ServiceMonitor only when asked", async () => {
      const without = manifests(await render({ "redis.enabled": "true" }));
      expect(without.map((m) => m.kind)).not.toContain("ServiceMonitor");
      const withIt = manifests(await render({ "redis.enabled": "true", "serviceMonitor.enabled": "true" }));
      expect(withIt.find((m) => m.kind === "ServiceMonitor")?.spec).toMatchObject({
        endpoints: [{ port: "metrics", path: "/metrics" }],
      });
    });
  });

  describe("installed for one namespace, with the controller running as the chart's ServiceAccount", () => {
    let controller: ControllerProcess;
    let sa: { kc: k8s.KubeConfig; path: string };

    beforeAll(async () => {
      // The CRDs exist already (server-side applied by installCrds): Helm must skip them, not fail.
      const install = await helm(
        "install",
        RELEASE,
        CHART,
        "--namespace",
        releaseNs.name,
        ...setFlags({ "rbac.namespaces": [watchedNs.name], "redisUrl.value": inject("redisUrl") }),
      );
      expect(install.code, install.stdout + install.stderr).toBe(0);
      sa = await serviceAccountKubeConfig(kc, releaseNs.name, RELEASE, scratch);

      // The controller gets the chart's own flags (minus the listen addresses, which must be free
      // loopback ports here) and the Lease namespace the Pod's POD_NAMESPACE would give it.
      const manifest = await helm("get", "manifest", RELEASE, "--namespace", releaseNs.name);
      const deployment = manifests(manifest.stdout).find(
        (m) => m.kind === "Deployment" && m.metadata.name === `${RELEASE}-controller`,
      );
      const args = (deployment?.spec?.["template"] as k8s.V1PodTemplateSpec).spec?.containers[0]?.args ?? [];
      expect(args[0]).toBe("controller");
      const chartArgs = args.slice(1).filter((a) => !/^--(metrics-addr|health-addr|log-level)=/.test(a));
      controller = await startControllerProcess({
        namespace: watchedNs.name,
        kubeconfigPath: sa.path,
        leaderElectionNamespace: releaseNs.name,
        extraArgs: chartArgs,
      });
    });
    afterAll(async () => {
      await controller?.stop();
      await helm("uninstall", RELEASE, "--namespace", releaseNs.name, "--wait");
    });

    it("is enough: a Job-executor PeriodicTask every 2 s gets runs that succeed, old runs are pruned, no request is refused", async () => {
      const cadent = new Cadent(kc, watchedNs.name);
      await cadent.create(
        "periodictasks",
        jobPeriodicTask("every2", { schedule: "*/2 * * * * *", successfulRunsHistoryLimit: 1 }),
      );
      const runs = (o: { status?: Record<string, unknown> }) =>
        (o.status?.["runs"] ?? {}) as Record<string, number>;
      await cadent.waitFor(
        "periodictasks",
        "every2",
        "three runs succeeded",
        (o) => (runs(o)["succeeded"] ?? 0) >= 3,
      );
      // History pruning deletes Tasks: at most the limit plus runs still in flight remain.
      await waitFor("old runs to be deleted", async () => {
        const finished = (await cadent.runs("every2")).filter((r) => r.status?.phase === "Succeeded");
        return finished.length <= 1;
      });

      const lease = await kc
        .makeApiClient(k8s.CoordinationV1Api)
        .readNamespacedLease({ namespace: releaseNs.name, name: RELEASE });
      expect(lease.spec?.holderIdentity).toBe(controller.identity);

      const metrics = await controller.get(controller.metricsPort, "/metrics");
      const refused = metrics.body
        .split("\n")
        .filter((l) => /^cadent_api_requests_total\{.*code="40[13]"/.test(l));
      expect(refused).toEqual([]);
    });

    it.each([
      { can: true, verb: "create", resource: "tasks", group: GROUP, where: "watched" },
      {
        can: true,
        verb: "patch",
        resource: "periodictasks",
        subresource: "status",
        group: GROUP,
        where: "watched",
      },
      { can: true, verb: "create", resource: "jobs", group: "batch", where: "watched" },
      {
        can: true,
        verb: "update",
        resource: "leases",
        group: "coordination.k8s.io",
        name: RELEASE,
        where: "release",
      },
      { can: false, verb: "get", resource: "secrets", group: "", where: "watched" },
      { can: false, verb: "list", resource: "secrets", group: "", where: "release" },
      { can: false, verb: "create", resource: "pods", group: "", where: "watched" },
      { can: false, verb: "delete", resource: "periodictasks", group: GROUP, where: "watched" },
      { can: false, verb: "get", resource: "secrets", group: "", where: "release" },
      { can: false, verb: "update", resource: "periodictasks", group: GROUP, where: "watched" },
      { can: false, verb: "list", resource: "tasks", group: GROUP, where: "other" },
      { can: false, verb: "create", resource: "tasks", group: GROUP, where: "other" },
      { can: false, verb: "create", resource: "jobs", group: "batch", where: "other" },
      { can: false, verb: "list", resource: "tasks", group: GROUP, where: "all namespaces" },
      {
        can: false,
        verb: "update",
        resource: "leases",
        group: "coordination.k8s.io",
        name: "someone-else",
        where: "release",
      },
      { can: false, verb: "create", resource: "leases", group: "coordination.k8s.io", where: "watched" },
    ])(
      "is tight: the ServiceAccount can=$can $verb $resource $subresource in the $where namespace",
      async ({ can, verb, resource, subresource, group, name, where }) => {
        const namespace = {
          watched: watchedNs.name,
          release: releaseNs.name,
          other: otherNs.name,
          "all namespaces": "",
        }[where];
        const review = await sa.kc.makeApiClient(k8s.AuthorizationV1Api).createSelfSubjectAccessReview({
          body: { spec: { resourceAttributes: { verb, resource, subresource, group, name, namespace } } },
        });
        expect(review.status?.allowed ?? false).toBe(can);
      },
    );

    it("is tight: reading Secrets and touching Tasks outside the list are refused with 403", async () => {
      const saCore = sa.kc.makeApiClient(k8s.CoreV1Api);
      const saCustom = sa.kc.makeApiClient(k8s.CustomObjectsApi);
      const calls = {
        "list secrets in the watched namespace": () =>
          saCore.listNamespacedSecret({ namespace: watchedNs.name }),
        "list tasks in another namespace": () =>
          saCustom.listNamespacedCustomObject({
            group: GROUP,
            version: VERSION,
            plural: "tasks",
            namespace: otherNs.name,
          }),
        "create a task in another namespace": () =>
          saCustom.createNamespacedCustomObject({
            group: GROUP,
            version: VERSION,
            plural: "tasks",
            namespace: otherNs.name,
            body: {
              apiVersion: `${GROUP}/${VERSION}`,
              kind: "Task",
              metadata: { name: "t" },
              spec: { task: "x" },
            },
          }),
      };
      for (const [what, call] of Object.entries(calls)) {
        expect((await outcome(call)).code, what).toBe(403);
      }
      // The control: the same client may list tasks where it is meant to.
      const allowed = await outcome(() =>
        saCustom.listNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          plural: "tasks",
          namespace: watchedNs.name,
        }),
      );
      expect(allowed.code).toBe(200);
    });
  });

  describe("the admission policy", () => {
    let ns: Awaited<ReturnType<typeof createTestNamespace>>;
    const users: Record<"tasksOnly" | "tasksAndJobs", k8s.KubeConfig> = {
      tasksOnly: new k8s.KubeConfig(),
      tasksAndJobs: new k8s.KubeConfig(),
    };

    const taskWithJob = (name: string) => ({
      apiVersion: `${GROUP}/${VERSION}`,
      kind: "Task",
      metadata: { name },
      spec: {
        task: "app.tasks.report",
        jobTemplate: { spec: { template: { spec: { containers: [{ name: "main", image: "busybox" }] } } } },
      },
    });
    const redisTask = (name: string) => ({
      apiVersion: `${GROUP}/${VERSION}`,
      kind: "Task",
      metadata: { name },
      spec: { task: "app.tasks.report" },
    });
    const periodicWithJob = (name: string) => ({
      ...jobPeriodicTask(name, { schedule: "0 6 1 * *" }),
      metadata: { name },
    });
    const create = (
      user: keyof typeof users,
      plural: "tasks" | "periodictasks",
      body: object,
      dryRun?: string,
    ) =>
      outcome(() =>
        users[user].makeApiClient(k8s.CustomObjectsApi).createNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          plural,
          namespace: ns.name,
          body,
          dryRun,
        }),
      );

    beforeAll(async () => {
      ns = await createTestNamespace(kc, "chart-adm");
      const install = await helm(
        "install",
        `${RELEASE}-adm`,
        CHART,
        "--namespace",
        ns.name,
        "--skip-crds",
        ...setFlags({ "rbac.namespaces": [ns.name], "redisUrl.value": inject("redisUrl") }),
      );
      expect(install.code, install.stdout + install.stderr).toBe(0);
      const roles = {
        tasksOnly: [
          { apiGroups: [GROUP], resources: ["tasks", "periodictasks"], verbs: ["create", "get", "patch"] },
        ],
        tasksAndJobs: [
          { apiGroups: [GROUP], resources: ["tasks", "periodictasks"], verbs: ["create", "get", "patch"] },
          { apiGroups: ["batch"], resources: ["jobs"], verbs: ["create"] },
        ],
      };
      for (const [user, rules] of Object.entries(roles) as [keyof typeof users, k8s.V1PolicyRule[]][]) {
        const name = user.toLowerCase();
        await core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name } } });
        await rbac.createNamespacedRole({ namespace: ns.name, body: { metadata: { name }, rules } });
        await rbac.createNamespacedRoleBinding({
          namespace: ns.name,
          body: {
            metadata: { name },
            roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name },
            subjects: [{ kind: "ServiceAccount", name, namespace: ns.name }],
          },
        });
        users[user] = (await serviceAccountKubeConfig(kc, ns.name, name, scratch)).kc;
      }
      // A new policy takes effect once the API server's policy informer has seen it.
      await waitFor(
        "the admission policy to refuse a jobTemplate from a user without Job rights",
        async () => (await create("tasksOnly", "tasks", taskWithJob("probe"), "All")).code === 403,
        { timeoutMs: 30_000, intervalMs: 250 },
      );
    });
    afterAll(async () => {
      await helm("uninstall", `${RELEASE}-adm`, "--namespace", ns.name, "--wait");
      await ns?.cleanup();
    });

    it.each([
      {
        user: "tasksOnly",
        what: "a Task with a jobTemplate",
        plural: "tasks",
        body: taskWithJob,
        admitted: false,
      },
      {
        user: "tasksOnly",
        what: "a PeriodicTask whose taskTemplate has a jobTemplate",
        plural: "periodictasks",
        body: periodicWithJob,
        admitted: false,
      },
      { user: "tasksOnly", what: "a Redis-executor Task", plural: "tasks", body: redisTask, admitted: true },
      {
        user: "tasksAndJobs",
        what: "a Task with a jobTemplate",
        plural: "tasks",
        body: taskWithJob,
        admitted: true,
      },
      {
        user: "tasksAndJobs",
        what: "a PeriodicTask whose taskTemplate has a jobTemplate",
        plural: "periodictasks",
        body: periodicWithJob,
        admitted: true,
      },
    ] as const)("from a user who may create $user: $what is admitted=$admitted", async (c) => {
      const name = `${c.plural === "tasks" ? "t" : "pt"}-${c.user.toLowerCase()}-${uniqueSuffix()}`;
      const result = await create(c.user, c.plural, c.body(name));
      if (c.admitted) {
        expect(result, result.message).toMatchObject({ code: 200 });
      } else {
        expect(result.code).toBe(403);
        expect(result.message).toContain("may not create jobs.batch in namespace");
      }
    });

    it("lets a user without Job rights relabel a PeriodicTask, but not change its jobTemplate", async () => {
      // A Task's spec is immutable, so updates matter for PeriodicTasks.
      await expect(create("tasksAndJobs", "periodictasks", periodicWithJob("shared"))).resolves.toMatchObject(
        {
          code: 200,
        },
      );
      const patch = (body: object) =>
        outcome(() =>
          users.tasksOnly.makeApiClient(k8s.CustomObjectsApi).patchNamespacedCustomObject(
            {
              group: GROUP,
              version: VERSION,
              plural: "periodictasks",
              namespace: ns.name,
              name: "shared",
              body,
            },
            k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
          ),
        );
      const relabel = await patch({ metadata: { labels: { team: "reports" } } });
      expect(relabel, relabel.message).toMatchObject({ code: 200 });
      const swapImage = await patch({
        spec: {
          taskTemplate: {
            spec: {
              jobTemplate: {
                spec: { template: { spec: { containers: [{ name: "main", image: "evil" }] } } },
              },
            },
          },
        },
      });
      expect(swapImage.code, swapImage.message).toBe(403);
      expect(swapImage.message).toContain("may not create jobs.batch in namespace");
    });
  });

  describe("restricted Pod Security", () => {
    let ns: Awaited<ReturnType<typeof createTestNamespace>>;

    beforeAll(async () => {
      ns = await createTestNamespace(kc, "chart-psa", {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
      });
    });
    afterAll(async () => {
      await ns?.cleanup();
    });

    it("admits a Pod made from every Deployment's pod template, and kwok runs it", async () => {
      const text = await render({
        "redis.enabled": "true",
        "worker.enabled": "true",
        "worker.tasks": ["/app/dist/tasks.js"],
        "redisPassword.existingSecret": "redis-password",
      });
      const deployments = manifests(text).filter((m) => m.kind === "Deployment");
      expect(deployments.map((d) => d.metadata.name).sort()).toEqual(
        [`${RELEASE}-controller`, `${RELEASE}-redis`, `${RELEASE}-worker`].sort(),
      );
      for (const deployment of deployments) {
        const template = deployment.spec?.["template"] as k8s.V1PodTemplateSpec;
        const spec = template.spec as k8s.V1PodSpec;
        if (spec.serviceAccountName) {
          await core
            .createNamespacedServiceAccount({
              namespace: ns.name,
              body: { metadata: { name: spec.serviceAccountName } },
            })
            .catch((err: unknown) => {
              if (errorCode(err) !== 409) throw err;
            });
        }
        const name = deployment.metadata.name ?? "";
        const created = await outcome(() =>
          core.createNamespacedPod({
            namespace: ns.name,
            body: { metadata: { name, labels: template.metadata?.labels }, spec },
          }),
        );
        expect(created, `${name}: ${created.message}`).toMatchObject({ code: 200 });
      }
      for (const deployment of deployments) {
        const name = deployment.metadata.name ?? "";
        await waitFor(`Pod ${name} to run on kwok's node`, async () => {
          const pod = await core.readNamespacedPod({ namespace: ns.name, name });
          return pod.status?.phase === "Running";
        });
      }
    });

    it("refuses a privileged Pod (the control: enforcement is on)", async () => {
      const refused = await outcome(() =>
        core.createNamespacedPod({
          namespace: ns.name,
          body: {
            metadata: { name: "privileged" },
            spec: { containers: [{ name: "main", image: "busybox", securityContext: { privileged: true } }] },
          },
        }),
      );
      expect(refused.code).toBe(403);
      expect(refused.message).toContain("violates PodSecurity");
    });
  });
});
