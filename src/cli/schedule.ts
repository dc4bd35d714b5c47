import { InvalidArgumentError, type Command } from "commander";
import { ScheduleError, compileSchedule } from "../schedule/index.ts";
import { ExitCode } from "./program.ts";

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;
const MAX_COUNT = 1000;

function parseTime(value: string): Date {
  const t = RFC3339.test(value) ? Date.parse(value) : Number.NaN;
  if (!Number.isFinite(t)) {
    throw new InvalidArgumentError(`'${value}' is not an RFC 3339 time such as 2026-12-01T06:00:00Z`);
  }
  return new Date(t);
}

function parseCount(value: string): number {
  const n = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!(n >= 1 && n <= MAX_COUNT))
    throw new InvalidArgumentError(`must be a whole number from 1 to ${MAX_COUNT}`);
  return n;
}

/** 2026-12-01T06:00:00Z: RFC 3339 in UTC, whole seconds (fire times are whole seconds). */
export function formatFireTime(t: Date): string {
  return t.toISOString().replace(/\.\d{3}Z$/, "Z");
}

interface NextOptions {
  tz: string;
  from?: Date;
  count: number;
  key?: string;
  created?: Date;
}

/** `cadent schedule next`: fire times from the engine the controller uses (src/schedule). */
export function registerScheduleCommands(program: Command): Command {
  const schedule = program
    .command("schedule")
    .description("work with PeriodicTask schedules, using the controller's own schedule engine");
  schedule
    .command("next")
    .description("print the next fire times of a schedule, one RFC 3339 UTC time per line")
    .argument("<expression>", 'a cron expression (5 or 6 fields), a macro such as @daily, or "@every 1h30m"')
    .option("--tz <zone>", "IANA time zone the schedule is read in (spec.timeZone)", "UTC")
    .option("--from <time>", "list fire times after this RFC 3339 time (default: now)", parseTime)
    .option("--count <n>", `how many fire times to print (1-${MAX_COUNT})`, parseCount, 5)
    .option("--key <namespace/name>", "the PeriodicTask's namespace/name, which H is hashed from")
    .option(
      "--created <time>",
      "the object's creation time, which @every counts from (default: --from)",
      parseTime,
    )
    .addHelpText(
      "after",
      `
Times are printed in UTC ("Z"), to the second. Daylight saving follows docs/schedules.md.
Examples:
  cadent schedule next "0 6 1 * *" --tz Asia/Shanghai --from 2026-11-15T00:00:00Z --count 3
  cadent schedule next "H/15 * * * *" --key default/del-redis-data
`,
    )
    .action((expression: string, options: NextOptions, command: Command) => {
      const from = options.from ?? new Date();
      let compiled;
      try {
        compiled = compileSchedule({
          expression,
          timeZone: options.tz,
          hashKey: options.key ?? "",
          createdAt: options.created ?? from,
        });
      } catch (err) {
        if (err instanceof ScheduleError) {
          command.error(`error: ${err.message}`, { exitCode: ExitCode.usage, code: `cadent.${err.reason}` });
        }
        throw err;
      }
      const written = expression.trim().split(/\s+/).join(" ");
      if (options.key === undefined && !written.startsWith("@") && compiled.resolved !== written) {
        process.stderr.write(
          `note: H was hashed from an empty key ('${compiled.resolved}'); pass --key NAMESPACE/NAME for a PeriodicTask's times\n`,
        );
      }
      const lines: string[] = [];
      let t: Date | null = from;
      while (lines.length < options.count) {
        t = compiled.next(t);
        if (t === null) break;
        lines.push(formatFireTime(t));
      }
      if (lines.length > 0) process.stdout.write(`${lines.join("\n")}\n`);
    });
  return schedule;
}
