import { randomBytes } from "node:crypto";
import { ApiException, CustomObjectsApi, PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { CommanderError, InvalidArgumentError, type Command } from "commander";
import { ANNOTATIONS, GROUP, PERIODIC_TASK_PLURAL, VERSION } from "../api/constants.ts";
import { manualRunName } from "../controllers/runs.ts";
import { loadKubeConfig } from "../kube/client.ts";
import { ExitCode } from "./program.ts";

/** What `kubectl` accepts for a PeriodicTask, plus the fully qualified plural. */
const RESOURCE_PREFIXES = ["pt", "ptask", "periodictask", "periodictasks", "periodictasks.cadent.dev"];
/** A DNS-1123 subdomain, the rule for a custom object's name. */
const OBJECT_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** `pt/NAME` (or `ptask/`, `periodictask/`, `periodictasks/`) -> NAME; anything else is a usage error. */
export function parsePeriodicTaskRef(ref: string): string {
  const slash = ref.indexOf("/");
  const prefix = slash < 0 ? "" : ref.slice(0, slash).toLowerCase();
  const name = ref.slice(slash + 1);
  if (slash < 0 || !RESOURCE_PREFIXES.includes(prefix)) {
    throw new InvalidArgumentError(`'${ref}' is not a PeriodicTask: write pt/NAME (or periodictask/NAME)`);
  }
  if (!OBJECT_NAME.test(name)) {
    throw new InvalidArgumentError(
      `'${name}' is not a valid object name (lowercase letters, digits, '-' and '.', at most 253 characters)`,
    );
  }
  return name;
}

function parseToken(token: string): string {
  if (token.trim() === "") throw new InvalidArgumentError("the token must not be empty");
  return token;
}

/** A token that is new on every call and says when it was made: `2026-12-01T06:00:00.000Z-3f9a1c`. */
export function newRunNowToken(now: Date = new Date()): string {
  return `${now.toISOString()}-${randomBytes(3).toString("hex")}`;
}

interface RunNowOptions {
  namespace?: string;
  token?: string;
  kubeconfig?: string;
}

/** `cadent run-now pt/NAME`: the same as annotating cadent.dev/run-now with a new token (product.md §1.3). */
export function registerRunNowCommand(program: Command): Command {
  return program
    .command("run-now")
    .description(
      `ask for one extra run of a PeriodicTask now, by setting its ${ANNOTATIONS.runNow} annotation to a new token`,
    )
    .argument(
      "<periodictask>",
      "pt/NAME (also ptask/, periodictask/ or periodictasks/)",
      parsePeriodicTaskRef,
    )
    .option(
      "-n, --namespace <namespace>",
      "namespace of the PeriodicTask (default: the kubeconfig context's)",
    )
    .option(
      "--token <token>",
      "the run-now token; the same token never makes a second run (default: the time now and a random suffix)",
      parseToken,
    )
    .option(
      "--kubeconfig <path>",
      "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then the in-cluster service account)",
    )
    .addHelpText(
      "after",
      `
Prints the token and the name of the Task the controller makes for it (<name>-m<9 hex digits>).
The same as: kubectl annotate pt/NAME ${ANNOTATIONS.runNow}=<new token> --overwrite
Exit codes: 0 annotated, 1 not found or the API server refused, 2 invalid arguments.
Example:
  cadent run-now pt/del-redis-data -n default
`,
    )
    .action(async (name: string, options: RunNowOptions) => {
      // Not command.error(): that adds the "run with --help" hint, and the command line was fine.
      const fail = (message: string): never => {
        process.stderr.write(`error: ${message}\n`);
        throw new CommanderError(ExitCode.failure, "cadent.runNowFailed", `error: ${message}`);
      };
      let kubeConfig;
      try {
        kubeConfig = loadKubeConfig(options.kubeconfig);
      } catch (err) {
        return fail(err instanceof Error ? err.message : String(err));
      }
      const namespace =
        options.namespace ??
        kubeConfig.getContextObject(kubeConfig.getCurrentContext())?.namespace ??
        "default";
      const token = options.token ?? newRunNowToken();
      const api = kubeConfig.makeApiClient(CustomObjectsApi);
      let patched: unknown;
      try {
        patched = await api.patchNamespacedCustomObject(
          {
            group: GROUP,
            version: VERSION,
            plural: PERIODIC_TASK_PLURAL,
            namespace,
            name,
            body: { metadata: { annotations: { [ANNOTATIONS.runNow]: token } } },
            fieldManager: "cadent-run-now",
          },
          // client-node defaults to JSON patch; a merge patch sets one annotation and keeps the rest.
          setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
        );
      } catch (err) {
        if (err instanceof ApiException && err.code === 404) {
          return fail(
            `PeriodicTask "${name}" not found in namespace "${namespace}" (are the cadent CRDs installed? try: kubectl get pt -n ${namespace})`,
          );
        }
        const detail =
          err instanceof ApiException ? `HTTP ${err.code}: ${apiMessage(err.body)}` : String(err);
        return fail(`could not annotate PeriodicTask ${namespace}/${name}: ${detail}`);
      }
      if (lastRunNowToken(patched) === token) {
        process.stderr.write(
          `note: token '${token}' already made run ${manualRunName(name, token)}; no new run will be made (pass a new --token, or omit it)\n`,
        );
      }
      process.stdout.write(`token: ${token}\nrun: ${manualRunName(name, token)}\n`);
    });
}

function lastRunNowToken(obj: unknown): unknown {
  if (typeof obj !== "object" || obj === null || !("status" in obj)) return undefined;
  const status = obj.status;
  return typeof status === "object" && status !== null && "lastRunNowToken" in status
    ? status.lastRunNowToken
    : undefined;
}

/** The `message` of a Kubernetes Status body, or the body itself. */
function apiMessage(body: unknown): string {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === "object" && parsed !== null && "message" in parsed) return String(parsed.message);
  } catch {
    // Not JSON: show it as it came.
  }
  return text;
}
