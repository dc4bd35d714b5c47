import { Option } from "commander";
import type { Command } from "commander";
import { CONTROLLER_FLAGS, ControllerOptionsError, parseControllerOptions } from "../controller/options.ts";
import type { ControllerFlagName, ControllerFlags, FlagSpec } from "../controller/options.ts";
import { ExitCode } from "./program.ts";

/** `cadent controller`: runs the PeriodicTask, Task and Job reconcilers until SIGTERM. */
export function registerControllerCommand(program: Command): Command {
  const command = program
    .command("controller")
    .description(
      "run the controller: reconcile PeriodicTasks, Tasks and their Jobs, publish Redis-executor Tasks, " +
        "and serve metrics and health probes (one replica leads; the others stand by)",
    );
  for (const name of Object.keys(CONTROLLER_FLAGS) as ControllerFlagName[]) {
    const spec = CONTROLLER_FLAGS[name];
    command.addOption(new Option(spec.value ? `${spec.flag} ${spec.value}` : spec.flag, helpText(spec)));
    if (name === "leaderElect") {
      command.addOption(
        new Option(
          "--no-leader-elect",
          "run without leader election, for a single replica (env: CADENT_LEADER_ELECT=false)",
        ),
      );
    }
  }
  command.addHelpText(
    "after",
    `
Every option can also be set by the environment variable named in its description; a flag wins
over its variable. Durations are written like 15s, 1m30s or 500ms; addresses as host:port, where
":8080" listens on every interface.`,
  );
  command.action(async () => {
    let options;
    try {
      options = parseControllerOptions(command.opts<ControllerFlags>(), process.env);
    } catch (err) {
      if (err instanceof ControllerOptionsError) {
        command.error(err.message, { exitCode: ExitCode.usage, code: "cadent.invalidOption" });
      }
      throw err;
    }
    const { runController } = await import("../controller/manager.ts");
    await runController(options);
  });
  return command;
}

function helpText(spec: FlagSpec): string {
  const shownDefault =
    spec.defaultText ??
    (typeof spec.defaultValue === "string" ? `"${spec.defaultValue}"` : spec.defaultValue);
  return shownDefault === undefined
    ? `${spec.description} (env: ${spec.env})`
    : `${spec.description} (env: ${spec.env}; default: ${String(shownDefault)})`;
}
