/**
 * The local sandbox: a real Kubernetes control plane (with kwok's fake Node) and Redis on
 * loopback, started from the same harness the tests use. Prints the KUBECONFIG to use with
 * kubectl and runs until Ctrl-C, then stops everything it started.
 *
 * Run through hack/sandbox.sh, which installs and builds what is missing first.
 */
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { startControlPlane } from "../tests/support/control-plane.ts";
import { toolPaths, REPO_ROOT } from "../tests/support/environment.ts";
import { createFakeNode } from "../tests/support/kube.ts";
import { startRedis } from "../tests/support/redis.ts";

const workDir = join(REPO_ROOT, ".sandbox");
rmSync(workDir, { recursive: true, force: true });
mkdirSync(workDir, { recursive: true });
const { kubeBin } = toolPaths();

const controlPlane = await startControlPlane({ binDir: kubeBin, workDir });
await createFakeNode(controlPlane.kubeconfigPath);
const redis = await startRedis({ workDir });

process.stdout.write(
  [
    "",
    "cadent sandbox is up: a Kubernetes 1.36 control plane with one kwok Node, and Redis.",
    "",
    `  export KUBECONFIG=${controlPlane.kubeconfigPath}`,
    `  export PATH=${kubeBin}:$PATH      # kubectl, helm`,
    `  export REDIS_URL=${redis.url}`,
    "  kubectl get nodes",
    "",
    `Logs: ${join(workDir, "logs")}. Press Ctrl-C to stop everything.`,
    "",
  ].join("\n"),
);

let stopping = false;
const stop = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  process.stdout.write("\nstopping the sandbox...\n");
  await redis.stop().catch(() => undefined);
  await controlPlane.stop().catch(() => undefined);
  process.exit(0);
};
process.on("SIGINT", () => void stop());
process.on("SIGTERM", () => void stop());
setInterval(() => undefined, 1 << 30);
