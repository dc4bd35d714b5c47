/**
 * A real Kubernetes control plane on loopback, built from Go modules by hack/build-kube.sh:
 * etcd, kube-apiserver (RBAC on, a static cluster-admin token), kube-controller-manager (Job,
 * CronJob, garbage collector, TTL-after-finished, namespace and service account controllers),
 * kube-scheduler and kwok with one fake Node whose Pods run and finish as their annotations say
 * (tests/support/kwok-stages.yaml). Every process gets free ports and is stopped by PID.
 */
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { apiGet, type ApiTarget } from "./https.ts";
import { freePort, waitFor } from "./ports.ts";
import { spawnTracked, type TrackedProcess } from "./processes.ts";

export const FAKE_NODE_NAME = "kwok-node-0";

export interface ControlPlaneOptions {
  /** Directory holding kube-apiserver, kube-controller-manager, kube-scheduler, etcd, kwok. */
  binDir: string;
  /** Directory for data, certificates, logs and the kubeconfig. */
  workDir: string;
  /** Start kube-controller-manager, kube-scheduler and kwok too (default true). */
  withNodes?: boolean;
  /** Appended to kube-apiserver's flags (a later flag wins), e.g. `--max-mutating-requests-inflight=1`. */
  apiServerArgs?: readonly string[];
}

export interface ControlPlane extends ApiTarget {
  kubeconfigPath: string;
  etcdUrl: string;
  logDir: string;
  processes: Record<string, TrackedProcess>;
  /** Stops the kube-apiserver and starts it again on the same port and data (chaos tests). */
  restartApiServer(): Promise<void>;
  /**
   * Stops kube-apiserver and etcd, keeps both down for `downMs`, then starts etcd and the API
   * server again on the same ports and data: every watch breaks and, with etcd compacted meanwhile
   * or not, clients must relist (chaos tests).
   */
  restartEtcdAndApiServer(downMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export function kubeconfigYaml(server: string, token: string, ca: string, user = "admin"): string {
  const caData = Buffer.from(ca).toString("base64");
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: cadent-test",
    "  cluster:",
    `    server: ${server}`,
    `    certificate-authority-data: ${caData}`,
    "users:",
    `- name: ${user}`,
    "  user:",
    `    token: ${token}`,
    "contexts:",
    "- name: cadent-test",
    "  context:",
    "    cluster: cadent-test",
    `    user: ${user}`,
    "current-context: cadent-test",
    "",
  ].join("\n");
}

/** The CA of the API server's self-signed certificate: the last PEM block of apiserver.crt. */
function caFromSelfSignedBundle(bundle: string): string {
  const blocks = bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];
  const last = blocks.at(-1);
  if (!last) throw new Error("kube-apiserver wrote no certificate");
  return last;
}

export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const { binDir, workDir } = opts;
  const withNodes = opts.withNodes ?? true;
  const logDir = join(workDir, "logs");
  const certDir = join(workDir, "certs");
  mkdirSync(logDir, { recursive: true });
  mkdirSync(certDir, { recursive: true });
  const processes: Record<string, TrackedProcess> = {};
  const bin = (name: string): string => join(binDir, name);

  const stopAll = async (): Promise<void> => {
    // Reverse start order; every step runs even if an earlier one failed.
    for (const name of ["kwok", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"]) {
      await processes[name]?.stop().catch(() => undefined);
    }
  };

  try {
    // --- etcd -------------------------------------------------------------------------------
    const [etcdClient, etcdPeer] = [await freePort(), await freePort()];
    const etcdUrl = `http://127.0.0.1:${etcdClient}`;
    const startEtcd = (): TrackedProcess =>
      spawnTracked({
        name: "etcd",
        command: bin("etcd"),
        args: [
          `--data-dir=${join(workDir, "etcd")}`,
          `--listen-client-urls=${etcdUrl}`,
          `--advertise-client-urls=${etcdUrl}`,
          `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
          `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
          `--initial-cluster=default=http://127.0.0.1:${etcdPeer}`,
          "--unsafe-no-fsync",
          "--log-level=warn",
        ],
        logDir,
      });
    const waitEtcd = (): Promise<void> =>
      waitFor("etcd health", async () => (await fetch(`${etcdUrl}/health`)).ok, { timeoutMs: 30_000 });
    processes.etcd = startEtcd();
    await waitEtcd();

    // --- kube-apiserver ---------------------------------------------------------------------
    const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const saKey = join(certDir, "sa.key");
    const saPub = join(certDir, "sa.pub");
    writeFileSync(saKey, privateKey.export({ type: "pkcs8", format: "pem" }));
    writeFileSync(saPub, publicKey.export({ type: "spki", format: "pem" }));
    const token = randomBytes(24).toString("hex");
    const tokenFile = join(certDir, "tokens.csv");
    writeFileSync(tokenFile, `${token},admin,admin-uid,system:masters\n`);
    const apiPort = await freePort();
    const server = `https://127.0.0.1:${apiPort}`;
    const apiArgs = [
      `--etcd-servers=${etcdUrl}`,
      "--bind-address=127.0.0.1",
      "--advertise-address=127.0.0.1",
      `--secure-port=${apiPort}`,
      `--cert-dir=${certDir}`,
      "--service-cluster-ip-range=10.0.0.0/24",
      "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
      `--service-account-key-file=${saPub}`,
      `--service-account-signing-key-file=${saKey}`,
      "--authorization-mode=RBAC",
      `--token-auth-file=${tokenFile}`,
      "--allow-privileged=true",
      "--enable-priority-and-fairness=false",
      "--storage-media-type=application/json",
      "--v=1",
      ...(opts.apiServerArgs ?? []),
    ];
    const startApiServer = (): TrackedProcess =>
      spawnTracked({ name: "kube-apiserver", command: bin("kube-apiserver"), args: apiArgs, logDir });
    processes["kube-apiserver"] = startApiServer();
    const certFile = join(certDir, "apiserver.crt");
    let ca = "";
    await waitFor(
      "kube-apiserver's certificate",
      async () => {
        ca = caFromSelfSignedBundle(readFileSync(certFile, "utf8"));
        return true;
      },
      { timeoutMs: 60_000 },
    );
    const target: ApiTarget = { server, token, ca };
    const waitReady = (): Promise<void> =>
      waitFor("kube-apiserver /readyz", async () => (await apiGet(target, "/readyz")).status === 200, {
        timeoutMs: 120_000,
      });
    await waitReady().catch((err: unknown) => {
      throw new Error(`${String(err)}\n${processes["kube-apiserver"]?.logTail()}`);
    });

    const kubeconfigPath = join(workDir, "kubeconfig");
    writeFileSync(kubeconfigPath, kubeconfigYaml(server, token, ca), { mode: 0o600 });
    const caFile = join(certDir, "ca.crt");
    writeFileSync(caFile, ca);

    if (withNodes) {
      // --- kube-controller-manager ----------------------------------------------------------
      processes["kube-controller-manager"] = spawnTracked({
        name: "kube-controller-manager",
        command: bin("kube-controller-manager"),
        args: [
          `--kubeconfig=${kubeconfigPath}`,
          "--controllers=job,cronjob,garbagecollector,ttl-after-finished,namespace,serviceaccount,serviceaccount-token",
          "--leader-elect=false",
          "--bind-address=127.0.0.1",
          `--secure-port=${await freePort()}`,
          `--service-account-private-key-file=${saKey}`,
          `--root-ca-file=${caFile}`,
          "--use-service-account-credentials=false",
          "--concurrent-job-syncs=10",
          "--kube-api-qps=200",
          "--kube-api-burst=400",
          "--v=1",
        ],
        logDir,
      });
      // --- kube-scheduler -------------------------------------------------------------------
      processes["kube-scheduler"] = spawnTracked({
        name: "kube-scheduler",
        command: bin("kube-scheduler"),
        args: [
          `--kubeconfig=${kubeconfigPath}`,
          "--leader-elect=false",
          "--bind-address=127.0.0.1",
          `--secure-port=${await freePort()}`,
          "--kube-api-qps=200",
          "--kube-api-burst=400",
          "--v=1",
        ],
        logDir,
      });
      // --- kwok and its fake Node -----------------------------------------------------------
      const stages = fileURLToPath(new URL("./kwok-stages.yaml", import.meta.url));
      processes.kwok = spawnTracked({
        name: "kwok",
        command: bin("kwok"),
        args: [
          `--kubeconfig=${kubeconfigPath}`,
          `--config=${stages}`,
          "--manage-all-nodes=false",
          "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
          "--cidr=10.0.1.0/24",
          "--node-ip=10.0.2.1",
          `--server-address=127.0.0.1:${await freePort()}`,
        ],
        logDir,
        env: { ...process.env, HOME: workDir },
      });
    }

    return {
      ...target,
      kubeconfigPath,
      etcdUrl,
      logDir,
      processes,
      async restartApiServer() {
        await processes["kube-apiserver"]?.stop();
        processes["kube-apiserver"] = startApiServer();
        await waitReady();
      },
      async restartEtcdAndApiServer(downMs = 0) {
        await processes["kube-apiserver"]?.stop();
        await processes.etcd?.stop();
        await new Promise((resolve) => setTimeout(resolve, downMs));
        processes.etcd = startEtcd();
        await waitEtcd();
        processes["kube-apiserver"] = startApiServer();
        await waitReady();
      },
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
