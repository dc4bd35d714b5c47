/**
 * The local sandbox: cadent running for real on loopback.
 *
 * 1. a Kubernetes 1.36 control plane with one kwok Node (the tests' harness), or the current
 *    cluster with --use-current-cluster;
 * 2. a private Redis;
 * 3. the CRDs, `cadent controller` and `cadent worker` with the example TypeScript task module;
 * 4. every manifest in examples/, in the namespace `default`;
 * then prints how to watch, and stops everything it started on Ctrl-C.
 *
 * Run through hack/sandbox.sh, which installs and builds what is missing first.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startControlPlane, type ControlPlane } from "../tests/support/control-plane.ts";
import { REPO_ROOT, toolPaths } from "../tests/support/environment.ts";
import { createFakeNode } from "../tests/support/kube.ts";
import { GiveUp, waitFor } from "../tests/support/ports.ts";
import { spawnTracked, type TrackedProcess } from "../tests/support/processes.ts";
import { startRedis } from "../tests/support/redis.ts";

const { values: flags } = parseArgs({
  options: {
    "use-current-cluster": { type: "boolean", default: false },
    "redis-url": { type: "string" },
    "no-examples": { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (flags.help) {
  process.stdout.write(
    [
      "usage: hack/sandbox.sh [--use-current-cluster] [--redis-url URL] [--no-examples]",
      "",
      "  --use-current-cluster  use $KUBECONFIG (or ~/.kube/config) instead of starting a control plane",
      "  --redis-url URL        use this Redis instead of starting one",
      "  --no-examples          do not apply examples/",
      "",
    ].join("\n"),
  );
  process.exit(0);
}

const workDir = join(REPO_ROOT, ".sandbox");
const logDir = join(workDir, "logs");
rmSync(workDir, { recursive: true, force: true });
mkdirSync(logDir, { recursive: true });
const { kubeBin } = toolPaths();
const kubectl = join(kubeBin, "kubectl");
const stoppers: (() => Promise<void>)[] = [];
const say = (line: string): boolean => process.stdout.write(`${line}\n`);

let stopping = false;
async function stopAll(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    say("\nstopping the sandbox...");
    for (const stop of stoppers.reverse()) await stop().catch(() => undefined);
  }
  process.exit(code);
}
process.on("SIGINT", () => void stopAll(0));
process.on("SIGTERM", () => void stopAll(0));

try {
  // 1. Kubernetes.
  let kubeconfig: string;
  if (flags["use-current-cluster"]) {
    kubeconfig = process.env["KUBECONFIG"] ?? join(process.env["HOME"] ?? "", ".kube", "config");
    say(`using the current cluster (${kubeconfig})`);
  } else {
    say("starting a Kubernetes control plane with one kwok Node...");
    const cp: ControlPlane = await startControlPlane({ binDir: kubeBin, workDir });
    stoppers.push(() => cp.stop());
    await createFakeNode(cp.kubeconfigPath);
    kubeconfig = cp.kubeconfigPath;
  }
  const env = { ...process.env, KUBECONFIG: kubeconfig };
  const kube = (...args: string[]): string => execFileSync(kubectl, args, { env, encoding: "utf8" });

  // 2. Redis.
  let redisUrl = flags["redis-url"];
  if (!redisUrl) {
    const redis = await startRedis({ workDir });
    stoppers.push(() => redis.stop());
    redisUrl = redis.url;
  }

  // 3. CRDs, controller, worker.
  kube("apply", "--server-side", "--field-manager=cadent-sandbox", "-f", join(REPO_ROOT, "crds"));
  kube(
    "wait",
    "--for=condition=Established",
    "crd/tasks.cadent.dev",
    "crd/periodictasks.cadent.dev",
    "--timeout=60s",
  );
  const cli = join(REPO_ROOT, "src", "cli", "main.ts");
  const controller: TrackedProcess = spawnTracked({
    name: "controller",
    command: process.execPath,
    args: [
      cli,
      "controller",
      "--kubeconfig",
      kubeconfig,
      "--redis-url",
      redisUrl,
      "--metrics-addr",
      "127.0.0.1:0",
      "--health-addr",
      "127.0.0.1:0",
      "--leader-election-namespace",
      "default",
    ],
    logDir,
  });
  stoppers.push(() => controller.stop());
  const worker: TrackedProcess = spawnTracked({
    name: "worker",
    command: process.execPath,
    args: [
      cli,
      "worker",
      "--tasks",
      join(REPO_ROOT, "examples", "ts-worker", "tasks.ts"),
      "--queues",
      "celery",
      "--redis-url",
      redisUrl,
      "--concurrency",
      "8",
    ],
    logDir,
    // The example tasks talk to Redis themselves (del_redis_data deletes keys).
    env: { ...process.env, REDIS_URL: redisUrl },
  });
  stoppers.push(() => worker.stop());
  await waitFor("the controller to lead", async () => {
    if (controller.child.exitCode !== null)
      throw new GiveUp(`the controller exited:\n${controller.logTail()}`);
    if (worker.child.exitCode !== null) throw new GiveUp(`the worker exited:\n${worker.logTail()}`);
    return controller.logTail(200).includes("caches synced; reconciling");
  });

  // 4. The examples.
  if (!flags["no-examples"]) kube("apply", "-n", "default", "-f", join(REPO_ROOT, "examples"));

  say(
    [
      "",
      "cadent is running: a Kubernetes 1.36 control plane, Redis, `cadent controller` and `cadent worker`",
      "(examples/ts-worker/tasks.ts), with examples/ applied in the namespace default.",
      "",
      "In another terminal:",
      "",
      `  export KUBECONFIG=${kubeconfig}`,
      `  export PATH=${kubeBin}:$PATH      # kubectl, helm`,
      "  kubectl get periodictasks,tasks -w",
      "",
      "  kubectl annotate pt/del-redis-data cadent.dev/run-now=$(date +%s) --overwrite   # run it now",
      `  REDIS_URL=${redisUrl}`,
      "",
      `Logs: ${logDir} (controller.log, worker.log). Press Ctrl-C to stop everything.`,
      "",
    ].join("\n"),
  );
  // The children are unref'd (they never keep a test run alive); here they should.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  stoppers.push(async () => clearInterval(keepAlive));
  const exited = await Promise.race([
    controller.exited.then(() => "controller"),
    worker.exited.then(() => "worker"),
  ]);
  say(`the ${exited} exited; see ${logDir}`);
  await stopAll(1);
} catch (err) {
  process.stderr.write(`sandbox failed: ${err instanceof Error ? err.message : String(err)}\n`);
  await stopAll(1);
}
