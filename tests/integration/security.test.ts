/**
 * The security properties of issue #8, against the real control plane, admission chain and Redis:
 *
 * 1. RBAC: the controller, running with the chart's ServiceAccount in namespaced mode, cannot read
 *    Secrets, never acts outside its namespaces, and needs nothing beyond docs/security.md's list.
 * 2. The admission policy refuses a jobTemplate naming a ServiceAccount the requester may not
 *    `use`, or making Pods the namespace's enforced Pod Security level would refuse.
 * 3. JSON only: no other content is ever deserialized, by the worker or the controller.
 * 4. Redis passwords appear in no log, Event or status, whatever goes wrong with Redis.
 * 5. A Task's result or error, however large or deep, cannot push its object past the API
 *    server's limits, nor make the controller loop or crash.
 */
import { execFile } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { encodeTaskMessage, resultKey } from "../../src/celery/index.ts";
import {
  Cadent,
  GROUP,
  VERSION,
  installCrds,
  jobPeriodicTask,
  startControllerProcess,
  type CadentObject,
  type ControllerProcess,
} from "../support/cadent.ts";
import {
  createAs,
  createUser,
  installChart,
  manifests,
  outcome,
  renderChart,
  serverVersion,
  serviceAccountKubeConfig,
  startChartController,
  uninstallChart,
  type ServiceAccountIdentity,
} from "../support/chart.ts";
import { REPO_ROOT } from "../support/environment.ts";
import { createTestNamespace, k8s, kubeConfig, uniqueSuffix } from "../support/kube.ts";
import { waitFor } from "../support/ports.ts";
import { startRedis, type RedisServer } from "../support/redis.ts";
import { startCadentWorker, uniqueQueue, waitForStatus, type CadentWorker } from "./worker-support.ts";

/** Contains "cadent", so the release's full name, ServiceAccount and Lease are "cadent-sec". */
const RELEASE = "cadent-sec";
const SECURITY_TASKS = join(REPO_ROOT, "tests/fixtures/security-tasks.ts");
const DEAD_LETTER_KEY = "cadent.dead-letter";
const KiB = 1024;
const MiB = 1024 * KiB;
/** The API server's default limit on a request body (etcd's own limit is the same order). */
const API_SERVER_OBJECT_LIMIT = 1.5 * MiB;

type Namespace = Awaited<ReturnType<typeof createTestNamespace>>;

/** A log line that says the API server refused a request of this process. */
const REFUSED_REQUEST = /HTTP 40[13]\b|\bforbidden\b|\bunauthorized\b/i;

/** The sum of a Prometheus counter's series whose labels include `labels`. */
function metricSum(body: string, name: string, labels: Record<string, string>): number {
  let sum = 0;
  for (const line of body.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

/** Runs the Celery virtualenv's Python with `code`; resolves with its stdout bytes. */
function python(code: string, args: readonly string[] = []): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    execFile(
      join(inject("venv"), "bin", "python"),
      ["-c", code, ...args],
      { encoding: "buffer", timeout: 60_000 },
      (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr.toString()}`)) : resolve(stdout),
    );
  });
}

/**
 * The rules docs/security.md lists under "What the controller may do", as "group resource verb"
 * triples: the groups and resources are the table's backticked names, the verbs its verb words.
 */
function documentedRules(): Set<string> {
  const text = readFileSync(join(REPO_ROOT, "docs/security.md"), "utf8");
  const section = text.slice(text.indexOf("## What the controller may do"));
  const table = section.slice(0, section.indexOf("\n\n", section.indexOf("| API group")));
  const verbs = new Set(["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]);
  const triples = new Set<string>();
  for (const row of table.split("\n").slice(2)) {
    const [group, resources, verbText] = row
      .split("|")
      .slice(1)
      .map((cell) => cell.trim());
    const names = (cell: string | undefined): string[] =>
      [...(cell ?? "").matchAll(/`([^`]*)`/g)].map((m) => (m[1] === '""' ? "" : (m[1] ?? "")));
    for (const g of names(group))
      for (const r of names(resources))
        for (const v of (verbText ?? "").split(/[^a-z]+/).filter((w) => verbs.has(w)))
          triples.add(`${g} ${r} ${v}`);
  }
  return triples;
}

/** The same triples from the controller's (Cluster)Roles and the leader-election Role the chart renders. */
function renderedRules(text: string): Set<string> {
  const triples = new Set<string>();
  for (const m of manifests(text).filter((m) => m.kind === "Role" || m.kind === "ClusterRole")) {
    for (const rule of m.rules ?? [])
      for (const g of rule.apiGroups ?? [])
        for (const r of rule.resources ?? []) for (const v of rule.verbs) triples.add(`${g} ${r} ${v}`);
  }
  return triples;
}

const task = (name: string, spec: Record<string, unknown>): object => ({
  apiVersion: `${GROUP}/${VERSION}`,
  kind: "Task",
  metadata: { name },
  spec,
});

/** A Job-executor Task whose Pod spec is `pod` (containers default to one busybox). */
const jobTask = (name: string, pod: Record<string, unknown>, spec: Record<string, unknown> = {}): object =>
  task(name, {
    task: "app.tasks.report",
    jobTemplate: {
      spec: {
        template: {
          spec: { containers: [{ name: "main", image: "busybox" }], restartPolicy: "Never", ...pod },
        },
      },
    },
    ...spec,
  });

/** jobPeriodicTask with `pod` merged into the Pod spec of its jobTemplate. */
function jobPeriodicTaskWithPod(
  name: string,
  spec: Record<string, unknown>,
  pod: Record<string, unknown>,
): object {
  const pt = jobPeriodicTask(name, spec) as {
    spec: {
      taskTemplate: { spec: { jobTemplate: { spec: { template: { spec: Record<string, unknown> } } } } };
    };
  };
  Object.assign(pt.spec.taskTemplate.spec.jobTemplate.spec.template.spec, pod);
  return pt;
}

describe.runIf(inject("kubeBin") !== "" && inject("jobsRun"))("cadent's security properties (#8)", () => {
  const kc = kubeConfig();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const batch = kc.makeApiClient(k8s.BatchV1Api);
  const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
  const scratch = join(inject("workDir"), `security-${uniqueSuffix()}`);
  let kubeVersion: string;
  let releaseNs: Namespace;
  let watchedNs: Namespace;
  let otherNs: Namespace;

  beforeAll(async () => {
    mkdirSync(scratch, { recursive: true });
    await installCrds(kc);
    kubeVersion = await serverVersion(kc);
    releaseNs = await createTestNamespace(kc, "sec-rel");
    watchedNs = await createTestNamespace(kc, "sec-watched");
    otherNs = await createTestNamespace(kc, "sec-other");
    // Admission policy at its defaults: the chart's secure defaults are what is tested.
    await installChart(RELEASE, releaseNs.name, {
      "rbac.namespaces": [watchedNs.name],
      "redisUrl.value": inject("redisUrl"),
    });
  });
  afterAll(async () => {
    if (releaseNs) await uninstallChart(RELEASE, releaseNs.name);
    for (const ns of [releaseNs, watchedNs, otherNs]) await ns?.cleanup();
  });

  describe("RBAC: the controller with the chart's ServiceAccount, watching one namespace", () => {
    let sa: ServiceAccountIdentity;
    let controller: ControllerProcess;

    beforeAll(async () => {
      sa = await serviceAccountKubeConfig(kc, releaseNs.name, RELEASE, scratch);
      // The runs below name this ServiceAccount: the controller, which may not `use` it, must
      // still be able to create them (their template was checked when the PeriodicTask was).
      await core.createNamespacedServiceAccount({
        namespace: watchedNs.name,
        body: { metadata: { name: "runner" } },
      });
      controller = await startChartController({
        release: RELEASE,
        namespace: releaseNs.name,
        watched: watchedNs.name,
        identity: sa,
      });
    });
    afterAll(async () => {
      await controller?.stop();
    });

    it.each([
      { mode: "namespaced", values: (ns: string) => ({ "rbac.namespaces": [ns] }) },
      { mode: "cluster-wide", values: () => ({}) },
    ])("grants exactly what docs/security.md lists ($mode)", async ({ values }) => {
      const text = await renderChart({
        release: RELEASE,
        namespace: releaseNs.name,
        kubeVersion,
        values: { "redisUrl.value": "redis://redis.example:6379/0", ...values(watchedNs.name) },
      });
      const documented = documentedRules();
      // The parser itself: a table it could not read would make the comparison vacuous.
      expect(documented).toContain("cadent.dev tasks/status patch");
      expect(documented).toContain("coordination.k8s.io leases update");
      expect([...renderedRules(text)].sort()).toEqual([...documented].sort());
      // "get, update on the release's Lease": only that Lease.
      const leaseRole = manifests(text).find(
        (m) => m.kind === "Role" && m.metadata.name?.endsWith("-leader-election"),
      );
      const named = leaseRole?.rules?.filter((r) => r.verbs.includes("get") || r.verbs.includes("update"));
      expect(named?.map((r) => r.resourceNames)).toEqual([[RELEASE]]);
    });

    it("cannot read Secrets, not even the Secret holding its own Redis URL: 403", async () => {
      const saCore = sa.kc.makeApiClient(k8s.CoreV1Api);
      const secretName = `${RELEASE}-redis-url`;
      // The control: the Secret exists and the cluster admin can read it.
      await expect(
        core.readNamespacedSecret({ namespace: releaseNs.name, name: secretName }),
      ).resolves.toBeTruthy();
      const calls = {
        "get the Redis URL Secret": () =>
          saCore.readNamespacedSecret({ namespace: releaseNs.name, name: secretName }),
        "list Secrets in the release namespace": () =>
          saCore.listNamespacedSecret({ namespace: releaseNs.name }),
        "list Secrets in the watched namespace": () =>
          saCore.listNamespacedSecret({ namespace: watchedNs.name }),
        "list Secrets in all namespaces": () => saCore.listSecretForAllNamespaces(),
      };
      for (const [what, call] of Object.entries(calls)) {
        expect((await outcome(call)).code, what).toBe(403);
      }
    });

    it("runs its namespace's work with every verb it has, and leaves another namespace untouched", async () => {
      const watched = new Cadent(kc, watchedNs.name);
      const other = new Cadent(kc, otherNs.name);
      // Outside the list first, so they exist for the whole time the controller works inside it.
      await other.create("periodictasks", jobPeriodicTask("outside", { schedule: "*/2 * * * * *" }));
      await other.create("tasks", task("outside-redis", { task: "app.tasks.add", args: [1, 2] }));
      await other.create("tasks", jobTask("outside-job", {}));

      // create + delete Tasks (history limit), create Jobs, list Pods (results), patch statuses, Events.
      await watched.create(
        "periodictasks",
        jobPeriodicTask(
          "every2",
          { schedule: "*/2 * * * * *", successfulRunsHistoryLimit: 1 },
          { "test.cadent.dev/termination-message": '{"ok":true}' },
        ),
      );
      await watched.create(
        "periodictasks",
        jobPeriodicTaskWithPod(
          "as-runner",
          { schedule: "*/2 * * * * *", maxRuns: 1 },
          { serviceAccountName: "runner" },
        ),
      );
      // patch Tasks (the cancel annotation of Replace) and delete Jobs (cancellation).
      await watched.create(
        "periodictasks",
        jobPeriodicTask(
          "replace",
          { schedule: "*/2 * * * * *", concurrencyPolicy: "Replace", failedRunsHistoryLimit: 10 },
          { "test.cadent.dev/outcome": "run-forever" },
        ),
      );
      // delete a finished Task and its Job (ttlSecondsAfterFinished).
      await watched.create("tasks", jobTask("short-lived", {}, { ttlSecondsAfterFinished: 1 }));

      const runs = (o: CadentObject) => (o.status?.["runs"] ?? {}) as Record<string, number>;
      await watched.waitFor(
        "periodictasks",
        "every2",
        "three runs succeeded",
        (o) => (runs(o)["succeeded"] ?? 0) >= 3,
      );
      await watched.waitFor(
        "periodictasks",
        "as-runner",
        "its run succeeded",
        (o) => (runs(o)["succeeded"] ?? 0) >= 1,
      );
      const runnerRun = (await watched.runs("as-runner"))[0];
      expect(runnerRun?.status?.phase).toBe("Succeeded");
      const cancelled = async () =>
        (await watched.runs("replace"))
          .filter((r) => r.status?.phase === "Cancelled")
          .map((r) => r.metadata.name ?? "");
      await waitFor(
        "two runs of the Replace schedule to be cancelled",
        async () => (await cancelled()).length >= 2,
      );
      for (const name of await cancelled()) {
        await waitFor(`the Job of the cancelled run ${name} to be deleted`, async () => {
          const jobs = await batch.listNamespacedJob({
            namespace: watchedNs.name,
            labelSelector: `cadent.dev/task=${name}`,
          });
          return jobs.items.length === 0;
        });
      }
      await waitFor("the short-lived Task to be deleted after its TTL", async () => {
        const left = await watched.list("tasks");
        return !left.some((t) => t.metadata.name === "short-lived");
      });
      let kept: CadentObject[] = [];
      await waitFor("old runs to be pruned to the history limit", async () => {
        kept = (await watched.runs("every2")).filter((r) => r.status?.phase === "Succeeded");
        return kept.length === 1;
      });
      // The result is the Pod's termination message: read by listing the Job's Pods.
      expect(kept[0]?.status?.["result"]).toEqual({ ok: true });
      const every2 = await watched.get("periodictasks", "every2");
      expect(every2.status?.conditions?.find((c) => c.type === "Ready")?.status).toBe("True");

      // Meanwhile, in the namespace outside its list: nothing at all.
      expect((await other.get("periodictasks", "outside")).status).toBeUndefined();
      expect(await other.runs("outside")).toEqual([]);
      for (const name of ["outside-redis", "outside-job"]) {
        expect((await other.get("tasks", name)).status, name).toBeUndefined();
      }
      expect((await batch.listNamespacedJob({ namespace: otherNs.name })).items).toEqual([]);
      const events = await core.listNamespacedEvent({ namespace: otherNs.name });
      expect(events.items.filter((e) => e.involvedObject.apiVersion?.startsWith(GROUP))).toEqual([]);
    });

    it("was refused nothing while doing all that: its log and its request metrics show no 401/403", async () => {
      const log = readFileSync(controller.process.logFile, "utf8");
      // The log is the controller's working log (the control for an empty or wrong file).
      expect(log).toContain("caches synced; reconciling");
      expect(log.split("\n").filter((line) => REFUSED_REQUEST.test(line))).toEqual([]);
      const metrics = (await controller.get(controller.metricsPort, "/metrics")).body;
      expect(metricSum(metrics, "cadent_kube_requests_total", { code: "403" })).toBe(0);
      expect(metricSum(metrics, "cadent_kube_requests_total", { code: "401" })).toBe(0);
      expect(
        metricSum(metrics, "cadent_kube_requests_total", { resource: "tasks", code: "201" }),
      ).toBeGreaterThan(0);
    });

    it("would show a refused request in that log: told to watch a namespace outside its list, it is refused (403)", async () => {
      const stray = await startControllerProcess({
        namespace: otherNs.name,
        kubeconfigPath: sa.path,
        leaderElectionNamespace: releaseNs.name,
        identity: `stray-${uniqueSuffix()}`,
        extraArgs: ["--no-leader-elect"],
        waitReady: false,
      });
      try {
        await waitFor("the stray controller to log a refused list", async () =>
          readFileSync(stray.process.logFile, "utf8")
            .split("\n")
            .some((line) => REFUSED_REQUEST.test(line)),
        );
        expect((await new Cadent(kc, otherNs.name).get("periodictasks", "outside")).status).toBeUndefined();
      } finally {
        await stray.stop();
      }
    });
  });

  describe("the admission policy (chart defaults)", () => {
    const levels = ["privileged", "baseline", "restricted"] as const;
    type Level = (typeof levels)[number];
    const namespaces = {} as Record<Level, Namespace>;
    /** In each namespace: may create Tasks, PeriodicTasks and Jobs, but `use` no ServiceAccount. */
    const makers = {} as Record<Level, ServiceAccountIdentity>;

    beforeAll(async () => {
      for (const level of levels) {
        namespaces[level] = await createTestNamespace(
          kc,
          `sec-psa-${level}`,
          level === "privileged"
            ? {}
            : {
                "pod-security.kubernetes.io/enforce": level,
                "pod-security.kubernetes.io/enforce-version": "latest",
              },
        );
        const ns = namespaces[level].name;
        await core.createNamespacedServiceAccount({
          namespace: ns,
          body: { metadata: { name: "deployer" } },
        });
        makers[level] = await createUser(
          kc,
          ns,
          "maker",
          [
            { apiGroups: [GROUP], resources: ["tasks", "periodictasks"], verbs: ["create", "get", "patch"] },
            { apiGroups: ["batch"], resources: ["jobs"], verbs: ["create"] },
          ],
          scratch,
        );
      }
      // A new policy takes effect once the API server's policy informer has seen it.
      await waitFor(
        "the admission policy to refuse a privileged jobTemplate in a baseline namespace",
        async () =>
          (
            await createAs(
              makers.baseline.kc,
              namespaces.baseline.name,
              "tasks",
              jobTask("probe", { hostNetwork: true }),
              "All",
            )
          ).code === 403,
        { timeoutMs: 30_000, intervalMs: 250 },
      );
    });
    afterAll(async () => {
      for (const level of levels) await namespaces[level]?.cleanup();
    });

    describe("a ServiceAccount named by the jobTemplate needs `use` (requireServiceAccountUse, on by default)", () => {
      const asDeployer = (name: string, serviceAccountName = "deployer") =>
        jobTask(name, { serviceAccountName });
      const periodicAsDeployer = (name: string) =>
        jobPeriodicTaskWithPod(name, { schedule: "0 6 1 * *" }, { serviceAccountName: "deployer" });

      it("is refused to a user who may create Jobs but not use it, Task and PeriodicTask alike", async () => {
        const ns = namespaces.privileged.name;
        for (const [plural, body] of [
          ["tasks", asDeployer(`sa-t-${uniqueSuffix()}`)],
          ["periodictasks", periodicAsDeployer(`sa-pt-${uniqueSuffix()}`)],
          // The deprecated alias, which the API server copies into serviceAccountName.
          ["tasks", jobTask(`sa-alias-${uniqueSuffix()}`, { serviceAccount: "deployer" })],
        ] as const) {
          const refused = await createAs(makers.privileged.kc, ns, plural, body);
          expect(refused.code, plural).toBe(403);
          expect(refused.message).toContain("may not use the ServiceAccount named by the jobTemplate");
        }
        // The control: the same user, the same Job, without a ServiceAccount of its choosing.
        const plain = await createAs(
          makers.privileged.kc,
          ns,
          "tasks",
          jobTask(`sa-none-${uniqueSuffix()}`, {}),
        );
        expect(plain, plain.message).toMatchObject({ code: 200 });
      });

      it("is admitted once the user is granted `use` on that ServiceAccount, and only that one", async () => {
        const ns = namespaces.privileged.name;
        await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: "other" } } });
        await rbac.createNamespacedRole({
          namespace: ns,
          body: {
            metadata: { name: "use-deployer" },
            rules: [
              {
                apiGroups: [""],
                resources: ["serviceaccounts"],
                verbs: ["use"],
                resourceNames: ["deployer"],
              },
            ],
          },
        });
        await rbac.createNamespacedRoleBinding({
          namespace: ns,
          body: {
            metadata: { name: "use-deployer" },
            roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "use-deployer" },
            subjects: [{ kind: "ServiceAccount", name: "maker", namespace: ns }],
          },
        });
        // RBAC changes reach the authorizer through its informer: wait for the grant to count.
        await waitFor("the `use` grant to be seen by the authorizer", async () => {
          const result = await createAs(makers.privileged.kc, ns, "tasks", asDeployer("probe"), "All");
          return result.code === 200;
        });
        for (const [plural, body] of [
          ["tasks", asDeployer(`sa-t-${uniqueSuffix()}`)],
          ["periodictasks", periodicAsDeployer(`sa-pt-${uniqueSuffix()}`)],
        ] as const) {
          const admitted = await createAs(makers.privileged.kc, ns, plural, body);
          expect(admitted, `${plural}: ${admitted.message}`).toMatchObject({ code: 200 });
        }
        const another = await createAs(
          makers.privileged.kc,
          ns,
          "tasks",
          asDeployer(`sa-o-${uniqueSuffix()}`, "other"),
        );
        expect(another.code).toBe(403);
      });
    });

    describe("a Pod the namespace's enforced Pod Security level would refuse (checkPodSecurity, on by default)", () => {
      const main = (securityContext?: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
        name: "main",
        image: "busybox",
        ...(securityContext ? { securityContext } : {}),
        ...extra,
      });
      /** Container settings that meet restricted. */
      const RESTRICTED = {
        allowPrivilegeEscalation: false,
        runAsNonRoot: true,
        capabilities: { drop: ["ALL"] },
        seccompProfile: { type: "RuntimeDefault" },
      };
      const without = (key: keyof typeof RESTRICTED) =>
        Object.fromEntries(Object.entries(RESTRICTED).filter(([k]) => k !== key));

      const CASES: {
        what: string;
        pod: Record<string, unknown>;
        refusedFrom: Level | null;
        says?: string;
      }[] = [
        {
          what: "a privileged container",
          pod: { containers: [main({ privileged: true })] },
          refusedFrom: "baseline",
          says: 'container "main" is privileged',
        },
        {
          what: "a privileged init container",
          pod: {
            initContainers: [{ name: "init", image: "busybox", securityContext: { privileged: true } }],
            containers: [main()],
          },
          refusedFrom: "baseline",
          says: 'container "init" is privileged',
        },
        {
          what: "hostNetwork",
          pod: { hostNetwork: true },
          refusedFrom: "baseline",
          says: "hostNetwork: true",
        },
        { what: "hostPID", pod: { hostPID: true }, refusedFrom: "baseline", says: "hostPID: true" },
        { what: "hostIPC", pod: { hostIPC: true }, refusedFrom: "baseline", says: "hostIPC: true" },
        {
          what: "a hostPath volume",
          pod: { volumes: [{ name: "root", hostPath: { path: "/" } }] },
          refusedFrom: "baseline",
          says: 'hostPath volume "root"',
        },
        {
          what: "a hostPort",
          pod: { containers: [main(undefined, { ports: [{ containerPort: 80, hostPort: 8080 }] })] },
          refusedFrom: "baseline",
          says: 'container "main" uses a hostPort',
        },
        {
          what: "an added capability beyond the baseline set (SYS_ADMIN)",
          pod: { containers: [main({ capabilities: { add: ["SYS_ADMIN"] } })] },
          refusedFrom: "baseline",
          says: "adds capabilities beyond the baseline set",
        },
        {
          what: "allowPrivilegeEscalation not set to false",
          pod: { containers: [main(without("allowPrivilegeEscalation"))] },
          refusedFrom: "restricted",
          says: "must set securityContext.allowPrivilegeEscalation: false",
        },
        {
          what: "runAsNonRoot missing",
          pod: { containers: [main(without("runAsNonRoot"))] },
          refusedFrom: "restricted",
          says: "must run with runAsNonRoot: true",
        },
        {
          what: "runAsUser 0",
          pod: { containers: [main({ ...RESTRICTED, runAsUser: 0 })] },
          refusedFrom: "restricted",
          says: "must not run as user 0",
        },
        {
          what: "capabilities not dropped",
          pod: { containers: [main(without("capabilities"))] },
          refusedFrom: "restricted",
          says: "must drop ALL capabilities",
        },
        {
          what: "an added capability baseline allows but restricted does not (CHOWN)",
          pod: { containers: [main({ ...RESTRICTED, capabilities: { drop: ["ALL"], add: ["CHOWN"] } })] },
          refusedFrom: "restricted",
          says: "may add only NET_BIND_SERVICE",
        },
        {
          what: "no seccomp profile",
          pod: { containers: [main(without("seccompProfile"))] },
          refusedFrom: "restricted",
          says: "needs seccompProfile RuntimeDefault or Localhost",
        },
        {
          what: "restricted settings on the container",
          pod: { containers: [main(RESTRICTED)] },
          refusedFrom: null,
        },
        {
          what: "restricted settings split between Pod and container, adding NET_BIND_SERVICE",
          pod: {
            securityContext: {
              runAsNonRoot: true,
              runAsUser: 1000,
              seccompProfile: { type: "RuntimeDefault" },
            },
            containers: [
              main({
                allowPrivilegeEscalation: false,
                capabilities: { drop: ["ALL"], add: ["NET_BIND_SERVICE"] },
              }),
            ],
          },
          refusedFrom: null,
        },
      ];
      const rank = (level: Level | null): number => (level === null ? Infinity : levels.indexOf(level));

      it.each(CASES)(
        "$what: refused from level $refusedFrom up, as Pod Security refuses the Pod itself",
        async (c) => {
          for (const level of levels) {
            const ns = namespaces[level].name;
            const expected = rank(level) >= rank(c.refusedFrom) ? 403 : 200;
            // What Pod Security admission says of the Pod created directly: the premise of the case.
            const pod = await outcome(() =>
              core.createNamespacedPod({
                namespace: ns,
                dryRun: "All",
                body: {
                  metadata: { name: "direct" },
                  spec: { containers: [main()], ...c.pod } as k8s.V1PodSpec,
                },
              }),
            );
            expect({ level, pod: pod.code }, pod.message).toEqual({ level, pod: expected });

            const created = await createAs(
              makers[level].kc,
              ns,
              "tasks",
              jobTask(`psa-${uniqueSuffix()}`, c.pod),
            );
            expect({ level, task: created.code }, created.message).toEqual({ level, task: expected });
            if (expected === 403) {
              expect(created.message).toContain(`namespace ${ns} refuses`);
              expect(created.message).toContain(`Pod Security level "${level}"`);
              expect(created.message).toContain(c.says);
            }
          }
        },
      );

      it("checks a PeriodicTask's template too, on creation and when an update changes it", async () => {
        const ns = namespaces.baseline.name;
        const privileged = (name: string) =>
          jobPeriodicTaskWithPod(name, { schedule: "0 6 1 * *" }, { hostPID: true });
        const refused = await createAs(makers.baseline.kc, ns, "periodictasks", privileged("hostpid"));
        expect(refused.code).toBe(403);
        expect(refused.message).toContain("hostPID: true");
        const admittedElsewhere = await createAs(
          makers.privileged.kc,
          namespaces.privileged.name,
          "periodictasks",
          privileged("hostpid"),
        );
        expect(admittedElsewhere, admittedElsewhere.message).toMatchObject({ code: 200 });

        const created = await createAs(
          makers.baseline.kc,
          ns,
          "periodictasks",
          jobPeriodicTask("fine", { schedule: "0 6 1 * *" }),
        );
        expect(created, created.message).toMatchObject({ code: 200 });
        const update = await outcome(() =>
          makers.baseline.kc.makeApiClient(k8s.CustomObjectsApi).patchNamespacedCustomObject(
            {
              group: GROUP,
              version: VERSION,
              plural: "periodictasks",
              namespace: ns,
              name: "fine",
              body: {
                spec: {
                  taskTemplate: {
                    spec: {
                      jobTemplate: {
                        spec: {
                          template: {
                            spec: { hostPID: true, containers: [{ name: "main", image: "busybox" }] },
                          },
                        },
                      },
                    },
                  },
                },
              },
            },
            k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
          ),
        );
        expect(update.code).toBe(403);
        expect(update.message).toContain("hostPID: true");
      });
    });
  });

  describe("with a private Redis, a controller and a cadent worker", () => {
    let redisServer: RedisServer;
    let redis: Redis;
    let worker: CadentWorker;
    let controller: ControllerProcess;
    let ns: Namespace;
    let cadent: Cadent;
    const queue = uniqueQueue("sec");
    /** A queue nobody consumes: its Tasks wait Queued until the test writes their result. */
    const idleQueue = uniqueQueue("sec-idle");

    beforeAll(async () => {
      redisServer = await startRedis({ workDir: inject("workDir"), name: `sec-redis-${uniqueSuffix()}` });
      redis = new Redis(redisServer.url);
      ns = await createTestNamespace(kc, "sec-results");
      cadent = new Cadent(kc, ns.name);
      worker = await startCadentWorker({
        redisUrl: redisServer.url,
        queues: [queue],
        extraTasks: [SECURITY_TASKS],
      });
      controller = await startControllerProcess({ namespace: ns.name, redisUrl: redisServer.url });
    });
    afterAll(async () => {
      await controller?.stop();
      await worker?.process.stop(30_000);
      redis?.disconnect();
      await redisServer?.stop();
      await ns?.cleanup();
    });

    /** Creates a Redis-executor Task on the idle queue and waits until it is published. */
    async function queuedTask(name: string): Promise<string> {
      await cadent.create("tasks", task(name, { task: "app.tasks.add", args: [1, 2], queue: idleQueue }));
      const queued = await cadent.waitFor("tasks", name, "Queued", (o) => o.status?.phase === "Queued");
      return String(queued.status?.["taskId"]);
    }

    /** Writes a result value as a result backend would (SET + PUBLISH on the key's channel). */
    async function writeResult(taskId: string, value: string | Buffer): Promise<void> {
      await redis.set(resultKey(taskId), value);
      await redis.publish(resultKey(taskId), value);
    }

    describe("JSON only", () => {
      const marker = (label: string) => join(scratch, `unpickled-${label}`);

      /** A pickle that runs `touch <file>` when loaded — what a Python worker accepting pickle would do. */
      const shellPickle = (file: string) =>
        python(
          "import os, pickle, sys\n" +
            "class Touch:\n" +
            "    def __reduce__(self): return (os.system, ('touch ' + sys.argv[1],))\n" +
            "sys.stdout.buffer.write(pickle.dumps(Touch()))",
          [file],
        );

      /** A message for `app.tasks.add` whose content-type and body (before base64) are replaced. */
      function message(id: string, contentType: string, body: Buffer, encoding: string): string {
        const { text } = encodeTaskMessage({
          task: "app.tasks.add",
          id,
          args: [2, 3],
          queue,
          now: new Date(),
        });
        const envelope = JSON.parse(text) as Record<string, unknown>;
        envelope["content-type"] = contentType;
        envelope["content-encoding"] = encoding;
        envelope["body"] = body.toString("base64");
        return JSON.stringify(envelope);
      }

      it("the pickle payloads are real: they call os.system when loaded (checked with pickletools, never loaded)", async () => {
        const payload = await shellPickle(marker("premise"));
        const listing = (
          await python("import pickletools, sys\npickletools.dis(bytes.fromhex(sys.argv[1]))", [
            payload.toString("hex"),
          ])
        ).toString();
        expect(listing).toMatch(/GLOBAL\s+'(posix|os) system'|STACK_GLOBAL/);
        expect(listing).toContain("REDUCE");
        expect(listing).toContain(marker("premise"));
      });

      it("a worker answers pickle, YAML, msgpack and pickle-labelled-as-JSON with FAILURE and a dead letter, and runs none", async () => {
        const cases = [
          {
            label: "pickle",
            contentType: "application/x-python-serialize",
            encoding: "binary",
            body: await shellPickle(marker("pickle")),
            excType: "ContentDisallowed",
          },
          {
            label: "yaml",
            contentType: "application/x-yaml",
            encoding: "utf-8",
            body: Buffer.from(`!!python/object/apply:os.system ["touch ${marker("yaml")}"]\n`),
            excType: "ContentDisallowed",
          },
          {
            label: "msgpack",
            contentType: "application/x-msgpack",
            encoding: "binary",
            // [[2, 3], {}, {}] in msgpack.
            body: Buffer.from([0x93, 0x92, 0x02, 0x03, 0x80, 0x80]),
            excType: "ContentDisallowed",
          },
          {
            label: "pickle-as-json",
            contentType: "application/json",
            encoding: "utf-8",
            body: await shellPickle(marker("pickle-as-json")),
            excType: "DecodeError",
          },
        ].map((c) => {
          const id = randomUUID();
          return { ...c, id, text: message(id, c.contentType, c.body, c.encoding) };
        });
        const before = await redis.llen(DEAD_LETTER_KEY);
        for (const c of cases) await redis.lpush(queue, c.text);
        // A valid message behind them: the worker is still consuming after refusing them.
        const validId = randomUUID();
        const valid = encodeTaskMessage({
          task: "app.tasks.add",
          id: validId,
          args: [20, 22],
          queue,
          now: new Date(),
        });
        await redis.lpush(valid.key, valid.text);
        expect((await waitForStatus(redis, validId, ["SUCCESS"])).result).toBe(42);

        for (const c of cases) {
          const meta = await waitForStatus(redis, c.id, ["FAILURE", "SUCCESS"]);
          expect({
            label: c.label,
            status: meta.status,
            excType: meta.kind === "failure" ? meta.exception?.type : null,
          }).toEqual({ label: c.label, status: "FAILURE", excType: c.excType });
          expect(existsSync(marker(c.label)), `${c.label} was not unpickled or evaluated`).toBe(false);
        }
        await waitFor(
          "the refused messages on the dead-letter list",
          async () => (await redis.llen(DEAD_LETTER_KEY)) >= before + cases.length,
        );
        const letters = (await redis.lrange(DEAD_LETTER_KEY, 0, -1)).map(
          (l) => JSON.parse(l) as Record<string, unknown>,
        );
        for (const c of cases) {
          const letter = letters.find((l) => l["task_id"] === c.id);
          expect(letter?.["message"], c.label).toBe(c.text);
          // The payload is kept byte for byte, for an operator to inspect or re-route.
          const kept = JSON.parse(String(letter?.["message"])) as { body: string };
          expect(Buffer.from(kept.body, "base64").equals(c.body), c.label).toBe(true);
        }
        expect(worker.process.child.exitCode).toBeNull();
      });

      it("the controller's result reader refuses results that are not JSON: the Task fails InvalidResult", async () => {
        const cases = [
          {
            label: "pickle",
            value: await python(
              "import pickle, sys\nsys.stdout.buffer.write(pickle.dumps({'status': 'SUCCESS', 'result': 42, 'traceback': None, 'children': [], 'task_id': sys.argv[1]}))",
              ["x"],
            ),
          },
          {
            label: "yaml",
            value: Buffer.from("status: SUCCESS\nresult: 42\ntraceback: null\nchildren: []\n"),
          },
          // {"status": "SUCCESS", "result": 42} in msgpack.
          {
            label: "msgpack",
            value: Buffer.concat([
              Buffer.from([0x82, 0xa6]),
              Buffer.from("status"),
              Buffer.from([0xa7]),
              Buffer.from("SUCCESS"),
              Buffer.from([0xa6]),
              Buffer.from("result"),
              Buffer.from([0x2a]),
            ]),
          },
        ];
        for (const c of cases) {
          const name = `result-${c.label}`;
          const taskId = await queuedTask(name);
          await writeResult(taskId, c.value);
          const failed = await cadent.waitFor("tasks", name, "Failed", (o) => o.status?.phase === "Failed");
          expect(failed.status?.["error"], c.label).toMatchObject({ reason: "InvalidResult" });
          expect(String((failed.status?.["error"] as { message?: string }).message)).toMatch(
            /is not JSON|is not UTF-8/,
          );
          expect(failed.status?.["result"], c.label).toBeUndefined();
        }
      });
    });

    describe("result and error sizes", () => {
      const MAX_OBJECT = API_SERVER_OBJECT_LIMIT / 16;

      /** Runs `spec` as a Task to its end and checks the object stays small; returns its status. */
      async function finished(name: string, spec: Record<string, unknown>): Promise<Record<string, unknown>> {
        await cadent.create("tasks", task(name, { queue, ...spec }));
        const done = await cadent.waitFor("tasks", name, "finished", (o) =>
          ["Succeeded", "Failed"].includes(o.status?.phase ?? ""),
        );
        expect(Buffer.byteLength(JSON.stringify(done), "utf8")).toBeLessThan(MAX_OBJECT);
        return done.status ?? {};
      }

      function expectCappedResult(status: Record<string, unknown>, start: string): void {
        expect(status["phase"]).toBe("Succeeded");
        expect(status["resultTruncated"]).toBe(true);
        const result = status["result"];
        expect(typeof result).toBe("string");
        expect(Buffer.byteLength(result as string, "utf8")).toBeLessThanOrEqual(16 * KiB);
        expect((result as string).startsWith(start)).toBe(true);
        expect(String(status["resultPreview"]).length).toBeLessThanOrEqual(80);
      }

      it.each([
        { what: "a 2 MiB string", args: [2 * MiB], start: '"xxxxxxxx' },
        { what: "a 2 MiB string of two-byte characters", args: [MiB, "é"], start: '"éééé' },
      ])("$what is cut to 16 KiB of JSON text, resultTruncated", async ({ args, start }) => {
        expectCappedResult(
          await finished(`big-${uniqueSuffix()}`, { task: "security.huge_string", args }),
          start,
        );
      });

      it.each([
        { what: "arrays", kwargs: {}, start: "[[[[" },
        { what: "objects", kwargs: { objects: true }, start: '{"level":{"level":' },
      ])(
        "$what nested 1,000 deep are kept as their JSON text, resultTruncated",
        async ({ kwargs, start }) => {
          const status = await finished(`deep-${uniqueSuffix()}`, {
            task: "security.nested",
            args: [1000],
            kwargs,
          });
          expectCappedResult(status, start);
          // Short enough to keep whole: only the structure is given up, not the content.
          expect(() => JSON.parse(status["result"] as string) as unknown).not.toThrow();
        },
      );

      it("a return value nested too deep to encode ends Failed with EncodeError, and the worker goes on", async () => {
        const status = await finished(`deeper-${uniqueSuffix()}`, {
          task: "security.nested",
          args: [100_000],
        });
        expect(status["phase"]).toBe("Failed");
        expect(status["error"]).toMatchObject({ type: "EncodeError" });
        expect(worker.process.child.exitCode).toBeNull();
      });

      it("a result nested 200,000 deep, written by any producer, is stored as cut text", async () => {
        const name = `raw-deep-${uniqueSuffix()}`;
        const taskId = await queuedTask(name);
        const depth = 200_000;
        await writeResult(
          taskId,
          `{"status": "SUCCESS", "result": ${"[".repeat(depth)}${"]".repeat(depth)}, "traceback": null, "children": [], "task_id": "${taskId}"}`,
        );
        const done = await cadent.waitFor("tasks", name, "Succeeded", (o) => o.status?.phase === "Succeeded");
        expectCappedResult(done.status ?? {}, "[[[[");
        expect(Buffer.byteLength(JSON.stringify(done), "utf8")).toBeLessThan(MAX_OBJECT);
      });

      it("a 2 MiB error message and traceback are cut to 8 KiB, keeping the traceback's end", async () => {
        const status = await finished(`err-${uniqueSuffix()}`, {
          task: "security.huge_error",
          args: [2 * MiB],
        });
        expect(status["phase"]).toBe("Failed");
        const error = status["error"] as { type: string; message: string; traceback: string };
        expect(error.type).toBe("TTTTTTTTTT");
        expect(error.message).toBe("m".repeat(8192));
        expect(error.traceback.length).toBeLessThanOrEqual(8192);
        expect(error.traceback).toMatch(/security-tasks\.ts/);
      });

      it("an exception type name longer than the schema allows is cut, not refused by the API server", async () => {
        const status = await finished(`long-type-${uniqueSuffix()}`, {
          task: "security.huge_error",
          args: [10, 1000],
        });
        expect(status["phase"]).toBe("Failed");
        expect((status["error"] as { type: string }).type).toBe("T".repeat(256));
      });

      it("afterwards the controller is alive, wrote no status twice for a finished Task, and was refused no write", async () => {
        const before = new Map(
          (await cadent.list("tasks")).map((t) => [t.metadata.name, t.metadata.resourceVersion]),
        );
        // A causal anchor instead of a pause: once this later Task is done, the controller has
        // reconciled past everything that was queued before it.
        const status = await finished(`anchor-${uniqueSuffix()}`, { task: "app.tasks.add", args: [1, 1] });
        expect(status["result"]).toBe(2);
        const after = new Map(
          (await cadent.list("tasks")).map((t) => [t.metadata.name, t.metadata.resourceVersion]),
        );
        for (const [name, version] of before)
          expect({ name, version: after.get(name) }).toEqual({ name, version });
        expect(controller.process.child.exitCode).toBeNull();
        const metrics = (await controller.get(controller.metricsPort, "/metrics")).body;
        expect(metricSum(metrics, "cadent_reconcile_errors_total", { controller: "task" })).toBe(0);
        expect(metricSum(metrics, "cadent_kube_requests_total", { resource: "tasks", code: "422" })).toBe(0);
        expect(readFileSync(controller.process.logFile, "utf8")).not.toMatch(/RangeError|Maximum call stack/);
      });
    });
  });

  describe("Redis passwords", () => {
    const password = `pw-${randomBytes(12).toString("hex")}`;
    const wrongPassword = `wrong-${randomBytes(12).toString("hex")}`;
    let redisServer: RedisServer;
    let ns: Namespace;
    let cadent: Cadent;
    const queue = uniqueQueue("sec-pw");
    const logFiles: string[] = [];

    beforeAll(async () => {
      redisServer = await startRedis({
        workDir: inject("workDir"),
        name: `sec-redis-pw-${uniqueSuffix()}`,
        requirePass: password,
      });
      ns = await createTestNamespace(kc, "sec-pw");
      cadent = new Cadent(kc, ns.name);
      // A schedule that keeps publishing through every outage below, for its status and Events too.
      await cadent.create("periodictasks", {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: "PeriodicTask",
        metadata: { name: "every5" },
        spec: {
          schedule: "*/5 * * * * *",
          successfulRunsHistoryLimit: 1,
          failedRunsHistoryLimit: 1,
          taskTemplate: { spec: { task: "app.tasks.add", args: [2, 2], queue } },
        },
      });
    });
    afterAll(async () => {
      await redisServer?.stop();
      await ns?.cleanup();
    });

    const urlWith = (secret: string) =>
      `redis://:${encodeURIComponent(secret)}@127.0.0.1:${redisServer.port}/0`;
    function passwordFile(secret: string): string {
      const file = join(scratch, `redis-password-${randomBytes(4).toString("hex")}`);
      writeFileSync(file, `${secret}\n`, { mode: 0o600 });
      return file;
    }

    /** The controller and worker connect with `secret`, in the URL or from a password file. */
    async function start(mode: "url" | "file", secret: string, waitReady: boolean) {
      const connection =
        mode === "url"
          ? { redisUrl: urlWith(secret), extraArgs: [] }
          : { redisUrl: redisServer.url, extraArgs: ["--redis-password-file", passwordFile(secret)] };
      const controller = await startControllerProcess({
        namespace: ns.name,
        identity: `pw-${mode}-${uniqueSuffix()}`,
        redisUrl: connection.redisUrl,
        extraArgs: connection.extraArgs,
      });
      const worker = await startCadentWorker({
        redisUrl: connection.redisUrl,
        queues: [queue],
        extraArgs: connection.extraArgs,
        waitReady,
      });
      logFiles.push(controller.process.logFile, worker.process.logFile);
      return { controller, worker };
    }

    /** Waits for the BrokerUnavailable Event of a Task; resolves with its message. */
    async function brokerUnavailable(name: string): Promise<string> {
      let message = "";
      await waitFor(`a BrokerUnavailable Event on ${name}`, async () => {
        const event = (await cadent.events(kc, name)).find((e) => e.reason === "BrokerUnavailable");
        message = event?.message ?? "";
        return event !== undefined;
      });
      return message;
    }
    const succeeded = (name: string) =>
      cadent.waitFor("tasks", name, "Succeeded", (o) => o.status?.phase === "Succeeded", 120_000);
    const workerLogged = (worker: CadentWorker, what: string, after = 0) =>
      waitFor(`the worker to log ${what}`, async () =>
        worker
          .logs()
          .slice(after)
          .some((line) => line["msg"] === "redis connection error; retrying"),
      );

    it.each(["url", "file"] as const)(
      "with the password in the %s: a wrong password, then an outage, then recovery",
      async (mode) => {
        // A wrong password: both keep retrying; the Task waits, with a BrokerUnavailable Event.
        const wrong = await start(mode, wrongPassword, false);
        await cadent.create("tasks", task(`${mode}-a`, { task: "app.tasks.add", args: [1, 2], queue }));
        // The Event says why, so the user can act on it.
        expect(await brokerUnavailable(`${mode}-a`)).toContain("WRONGPASS");
        await workerLogged(wrong.worker, "an authentication error");
        await wrong.controller.stop();
        await wrong.worker.process.stop(30_000);

        // The right one: the waiting Task runs.
        const right = await start(mode, password, true);
        expect((await succeeded(`${mode}-a`)).status?.["result"]).toBe(3);

        // Redis goes away and comes back.
        const logged = right.worker.logs().length;
        await redisServer.stop();
        await cadent.create("tasks", task(`${mode}-b`, { task: "app.tasks.add", args: [2, 3], queue }));
        expect(await brokerUnavailable(`${mode}-b`)).toMatch(/ECONNREFUSED|the connection was closed/);
        await workerLogged(right.worker, "the outage", logged);
        await redisServer.start();
        expect((await succeeded(`${mode}-b`)).status?.["result"]).toBe(5);
        await right.controller.stop();
        await right.worker.process.stop(30_000);
      },
    );

    it("appears in no log, Event or status, while the errors themselves were recorded", async () => {
      const secrets = [password, wrongPassword, encodeURIComponent(password)];
      expect(logFiles).toHaveLength(8);
      const logs = logFiles.map((file) => ({ file, text: readFileSync(file, "utf8") }));
      // The control: the failures are in the logs, so the logs are the ones that could leak.
      expect(logs.filter((l) => l.text.includes("redis connection error")).length).toBeGreaterThanOrEqual(4);
      for (const { file, text } of logs) {
        for (const secret of secrets) expect(text.includes(secret), `${secret} in ${file}`).toBe(false);
      }

      const events = (await core.listNamespacedEvent({ namespace: ns.name })).items;
      expect(events.filter((e) => e.reason === "BrokerUnavailable").length).toBeGreaterThanOrEqual(4);
      const statuses = [...(await cadent.list("tasks")), ...(await cadent.list("periodictasks"))].map(
        (o) => ({
          name: o.metadata.name,
          status: o.status,
        }),
      );
      expect(statuses.length).toBeGreaterThan(1);
      const written = JSON.stringify({ events: events.map((e) => [e.reason, e.message]), statuses });
      for (const secret of secrets) expect(written.includes(secret), secret).toBe(false);
    });
  });
});
