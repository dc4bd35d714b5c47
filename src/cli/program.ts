import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { registerControllerCommand } from "./controller.ts";
import { registerImportCommands } from "./import.ts";
import { registerRunNowCommand } from "./run-now.ts";
import { registerScheduleCommands } from "./schedule.ts";
import { registerWorkerCommand } from "./worker.ts";

/** Exit codes shared by every verb. */
export const ExitCode = {
  ok: 0,
  /** A failure while doing the work (API server unreachable, ...). */
  failure: 1,
  /** The command line or its input is invalid. */
  usage: 2,
} as const;

/** The package version, read from package.json (two levels above both src/cli and dist/cli). */
export function packageVersion(): string {
  const url = new URL("../../package.json", import.meta.url);
  const pkg: unknown = JSON.parse(readFileSync(url, "utf8"));
  if (typeof pkg === "object" && pkg !== null && "version" in pkg && typeof pkg.version === "string") {
    return pkg.version;
  }
  return "unknown";
}

/** Builds the command tree. Verbs register themselves here as they are implemented. */
export function buildProgram(): Command {
  const program = new Command("cadent")
    .description("Celery-style scheduled and asynchronous tasks as Kubernetes custom resources")
    .version(packageVersion(), "-V, --version", "print the version")
    .helpOption("-h, --help", "show help")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride()
    .configureOutput({
      writeOut: (s) => process.stdout.write(s),
      writeErr: (s) => process.stderr.write(s),
    });
  registerControllerCommand(program);
  registerScheduleCommands(program);
  registerWorkerCommand(program);
  registerRunNowCommand(program);
  registerImportCommands(program);
  return program;
}

/** Runs the CLI and returns the process exit code instead of exiting, so it can be tested. */
export async function runCli(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync([...argv]);
    return ExitCode.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end through exitOverride with exit code 0. commander's own parse
      // errors exit 1, which here means a usage error; a verb's `command.error(..., { code:
      // "cadent.*" })` carries the exit code it chose (1 for a failure while doing the work).
      if (err.exitCode === 0) return ExitCode.ok;
      return err.code.startsWith("cadent.") ? err.exitCode : ExitCode.usage;
    }
    throw err;
  }
}
