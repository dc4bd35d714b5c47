/**
 * vitest global setup of the `chaos` project. Unlike the integration suite it starts no shared
 * servers: every chaos file starts a world of its own (./world.ts), because its scenarios restart,
 * stop and starve those servers. This only finds the tools and makes the run's scratch directory.
 */
import type { TestProject } from "vitest/node";
import { toolPaths } from "../../support/environment.ts";
import { createRunDir } from "../../support/global-setup.ts";

export default function setup(project: TestProject): void {
  const workDir = createRunDir("-chaos");
  const { kubeBin, venv } = toolPaths();
  project.provide("kubeconfigPath", "");
  project.provide("externalCluster", false);
  project.provide("jobsRun", true);
  project.provide("redisUrl", "");
  project.provide("venv", venv);
  project.provide("kubeBin", kubeBin);
  project.provide("workDir", workDir);
  process.stderr.write(
    `[cadent chaos] ${process.env.CADENT_CHAOS === "full" ? "full" : "short"} run; logs and chaos-report.jsonl in ${workDir}\n`,
  );
}
