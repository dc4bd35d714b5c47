import { readFileSync } from "node:fs";
import { CommanderError, type Command } from "commander";
import { Document } from "yaml";
import { DumpError, convertDump } from "../migrate/django-celery-beat.ts";
import { ExitCode } from "./program.ts";

interface DjangoCeleryBeatOptions {
  namespace?: string;
}

/** `cadent import ...`: turn another scheduler's entries into PeriodicTask manifests. */
export function registerImportCommands(program: Command): Command {
  const command = program
    .command("import")
    .description("turn another scheduler's entries into PeriodicTask manifests (see docs/migration.md)");
  command
    .command("django-celery-beat")
    .description(
      "convert a `manage.py dumpdata django_celery_beat` JSON dump into PeriodicTask manifests (YAML on stdout)",
    )
    .argument("<file>", 'the JSON dump, or "-" for standard input')
    .option("-n, --namespace <namespace>", "set metadata.namespace on every manifest")
    .addHelpText(
      "after",
      `
Entries that cannot be converted (solar schedules, sub-second intervals, ...) and conversions
that change meaning are reported on stderr; docs/migration.md has the whole mapping.
Exit codes: 0 every entry converted, 1 some entries could not be (the others are still
printed), 2 the file is missing or is not a django-celery-beat dump.
Example:
  python manage.py dumpdata django_celery_beat > beat.json
  cadent import django-celery-beat beat.json -n jobs | kubectl apply -f -
`,
    )
    .action((file: string, options: DjangoCeleryBeatOptions, sub: Command) => {
      const unreadable = (message: string): never =>
        sub.error(`error: ${file}: ${message}`, { exitCode: ExitCode.usage, code: "cadent.unreadableInput" });
      let dump: unknown;
      try {
        dump = JSON.parse(readFileSync(file === "-" ? 0 : file, "utf8"));
      } catch (err) {
        return unreadable(err instanceof Error ? err.message : String(err));
      }
      let result;
      try {
        result = convertDump(dump, { namespace: options.namespace, now: new Date() });
      } catch (err) {
        if (err instanceof DumpError) return unreadable(err.message);
        throw err;
      }
      const documents = result.converted.map(({ source, manifest }) => {
        const doc = new Document(manifest);
        if (doc.contents !== null) {
          doc.contents.commentBefore = ` django-celery-beat: ${JSON.stringify(source.name)} (pk ${source.pk})`;
        }
        return doc.toString({ lineWidth: 0 });
      });
      if (documents.length > 0) process.stdout.write(documents.join("---\n"));

      for (const { source, manifest, notes } of result.converted) {
        for (const note of notes) {
          process.stderr.write(
            `note: ${JSON.stringify(source.name)} -> ${manifest.metadata.name}: ${note}\n`,
          );
        }
      }
      for (const { source, reason } of result.skipped) {
        process.stderr.write(`skipped: ${JSON.stringify(source.name)} (pk ${source.pk}): ${reason}\n`);
      }
      if (result.skipped.length > 0) {
        const total = result.skipped.length + result.converted.length;
        // Not sub.error(): that adds the "run with --help" hint, and the command line was fine.
        const message = `error: ${result.skipped.length} of ${total} entries could not be converted (listed above)`;
        process.stderr.write(`${message}\n`);
        throw new CommanderError(ExitCode.failure, "cadent.importIncomplete", message);
      }
    });
  return command;
}
