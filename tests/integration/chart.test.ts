/**
 * The Helm chart on the real control plane: it lints, its manifests pass the API server's own
 * validation, and once installed its ServiceAccount can run the controller (a real process here,
 * as there is no container runtime) — and can do little else. The admission policy and the
 * restricted Pod Security profile are checked against the real admission chain.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  Cadent,
  GROUP,
  VERSION,
  installCrds,
  jobPeriodicTask,
  type ControllerProcess,
} from "../support/cadent.ts";
import {
  CHART,
  createAs,
  createUser,
  helm,
  installChart,
  kubectl,
  manifests,
  outcome,
  renderChart,
  serverVersion,
  serviceAccountKubeConfig,
  setFlags,
  startChartController,
  uninstallChart,
  type ServiceAccountIdentity,
  type Values,
} from "../support/chart.ts";
import { createTestNamespace, errorCode, k8s, kubeConfig, uniqueSuffix } from "../support/kube.ts";
import { waitFor } from "../support/ports.ts";

/** Release "cadent": its resources (ServiceAccount, Lease) are named "cadent" too. */
const RELEASE = "cadent";

describe.runIf(inject("kubeBin") !== "" && inject("jobsRun"))("the cadent Helm chart", () => {
  const kc = kubeConfig();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const scratch = join(inject("workDir"), `chart-${uniqueSuffix()}`);
  let kubeVersion: string;
  let releaseNs: Awaited<ReturnType<typeof createTestNamespace>>;
  let watchedNs: Awaited<ReturnType<typeof createTestNamespace>>;
  let otherNs: Awaited<ReturnType<typeof createTestNamespace>>;

  /** `helm template` of the chart as it would be installed into the release namespace. */
  const render = (values: Values): Promise<string> =>
    renderChart({ release: RELEASE, namespace: releaseNs.name, kubeVersion, values });

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
    let sa: ServiceAccountIdentity;

    beforeAll(async () => {
      // The CRDs exist already (server-side applied by installCrds): Helm must skip them, not fail.
      await installChart(RELEASE, releaseNs.name, {
        "rbac.namespaces": [watchedNs.name],
        "redisUrl.value": inject("redisUrl"),
      });
      sa = await serviceAccountKubeConfig(kc, releaseNs.name, RELEASE, scratch);
      controller = await startChartController({
        release: RELEASE,
        namespace: releaseNs.name,
        watched: watchedNs.name,
        identity: sa,
      });
    });
    afterAll(async () => {
      await controller?.stop();
      await uninstallChart(RELEASE, releaseNs.name);
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
    ) => createAs(users[user], ns.name, plural, body, dryRun);

    beforeAll(async () => {
      ns = await createTestNamespace(kc, "chart-adm");
      await installChart(
        `${RELEASE}-adm`,
        ns.name,
        { "rbac.namespaces": [ns.name], "redisUrl.value": inject("redisUrl") },
        { skipCrds: true },
      );
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
        users[user] = (await createUser(kc, ns.name, user.toLowerCase(), rules, scratch)).kc;
      }
      // A new policy takes effect once the API server's policy informer has seen it.
      await waitFor(
        "the admission policy to refuse a jobTemplate from a user without Job rights",
        async () => (await create("tasksOnly", "tasks", taskWithJob("probe"), "All")).code === 403,
        { timeoutMs: 30_000, intervalMs: 250 },
      );
    });
    afterAll(async () => {
      await uninstallChart(`${RELEASE}-adm`, ns.name);
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
