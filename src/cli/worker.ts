import { Option } from "commander";
import type { Command } from "commander";
import { WORKER_FLAGS, WorkerOptionsError, parseWorkerOptions } from "../worker/options.ts";
import type { WorkerFlagName, WorkerFlagSpec, WorkerFlags } from "../worker/options.ts";
import { ExitCode } from "./program.ts";

/** `cadent worker`: runs TypeScript task handlers for messages on Celery queues until SIGTERM. */
export function registerWorkerCommand(program: Command): Command {
  const command = program
    .command("worker")
    .description(
      "run task handlers for messages on Redis queues, as a Celery worker does (same queues, message " +
        "format, acknowledgements and results), until SIGTERM",
    );
  for (const name of Object.keys(WORKER_FLAGS) as WorkerFlagName[]) {
    const spec = WORKER_FLAGS[name];
    const option = new Option(`${spec.flag} ${spec.value}`, helpText(spec));
    if (name === "tasks")
      option.argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]);
    command.addOption(option);
  }
  command.addHelpText(
    "after",
    `
Every option can also be set by the environment variable named in its description; a flag wins
over its variable. Example:

  cadent worker --tasks ./dist/tasks.js --queues celery,reports --concurrency 16`,
  );
  command.action(async () => {
    let options;
    try {
      options = parseWorkerOptions(command.opts<WorkerFlags>(), process.env);
    } catch (err) {
      if (err instanceof WorkerOptionsError) {
        command.error(err.message, { exitCode: ExitCode.usage, code: "cadent.invalidOption" });
      }
      throw err;
    }
    const { runWorker } = await import("../worker/run.ts");
    const { WorkerSetupError } = await import("../worker/load.ts");
    let code: number;
    try {
      code = await runWorker(options);
    } catch (err) {
      if (err instanceof WorkerSetupError) {
        command.error(`cadent worker: ${err.message}`, {
          exitCode: err.usage ? ExitCode.usage : ExitCode.failure,
          code: "cadent.workerSetup",
        });
      }
      throw err;
    }
    // runCli reports success once the action returns, so a failed shutdown exits here.
    if (code !== ExitCode.ok) process.exit(code);
    // A handler abandoned at shutdown may still hold timers or sockets; do not wait for them.
    setTimeout(() => process.exit(ExitCode.ok), 1_000).unref();
  });
  return command;
}

function helpText(spec: WorkerFlagSpec): string {
  const shownDefault =
    spec.defaultText ?? (spec.defaultValue === undefined ? undefined : `"${spec.defaultValue}"`);
  return shownDefault === undefined
    ? `${spec.description} (env: ${spec.env})`
    : `${spec.description} (env: ${spec.env}; default: ${shownDefault})`;
}
