/**
 * Where the shared test servers come from. Defaults build nothing and start everything locally;
 * environment variables let a developer point the integration tests elsewhere:
 *
 * - CADENT_TEST_KUBECONFIG: use this existing cluster (kind, k3d, a dev cluster) instead of
 *   starting a control plane. Tests that need kwok's fake Node are skipped there.
 * - CADENT_TEST_REDIS_URL: use this Redis instead of starting one.
 * - CADENT_KUBE_BIN / CADENT_VENV: the control-plane binaries and the Celery virtualenv; when
 *   unset they are asked of hack/setup.sh, which builds or creates them when missing.
 */
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));

export interface ToolPaths {
  kubeBin: string;
  venv: string;
}

export function toolPaths(): ToolPaths {
  let kubeBin = process.env.CADENT_KUBE_BIN ?? "";
  let venv = process.env.CADENT_VENV ?? "";
  if (!kubeBin || !venv) {
    const out = execFileSync("bash", [`${REPO_ROOT}hack/setup.sh`, "--print-env"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
    });
    for (const line of out.split("\n")) {
      const [key, ...rest] = line.split("=");
      const value = rest.join("=");
      if (key === "CADENT_KUBE_BIN" && !kubeBin) kubeBin = value;
      if (key === "CADENT_VENV" && !venv) venv = value;
    }
  }
  if (!kubeBin || !venv) throw new Error("hack/setup.sh did not report CADENT_KUBE_BIN and CADENT_VENV");
  return { kubeBin, venv };
}
