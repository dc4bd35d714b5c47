import { systemClock } from "./clock.ts";
import type { Clock } from "./clock.ts";
import { silentLogger } from "./logger.ts";
import type { Logger } from "./logger.ts";

/**
 * Graceful shutdown: on SIGTERM/SIGINT, close the registered components in order, within a
 * deadline, then exit.
 *
 * Guarantees:
 * - Steps run one after another in the order they were added (add them in the order they must
 *   close: stop leading and drain the queues, then flush Events, then close connections).
 * - Every step runs even if an earlier one threw or rejected (BullMQ's close()), and every step
 *   runs at most once: `shutdown()` is idempotent and returns the same report promise.
 * - The whole shutdown is bounded by `deadlineMs` (default 25 s, inside Kubernetes' default 30 s
 *   grace period). A step still running at the deadline is reported `timedOut` and no longer
 *   waited for; the steps after it are still started, without waiting, so their synchronous
 *   cleanup happens.
 * - `signal` aborts as soon as shutdown begins, for loops that should stop taking work.
 * - With signal handlers installed, a second SIGTERM/SIGINT during shutdown exits at once.
 */

export type StepOutcome =
  | { name: string; outcome: "ok" }
  | { name: string; outcome: "failed"; error: string }
  | { name: string; outcome: "timedOut" };

export interface ShutdownReport {
  reason: string;
  /** Every step finished without error within the deadline. */
  ok: boolean;
  steps: StepOutcome[];
}

/** What the coordinator listens to for signals; `process` satisfies it. */
export interface SignalSource {
  on(signal: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
  off(signal: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
}

export interface ShutdownOptions {
  /** Default 25 s. */
  deadlineMs?: number;
  clock?: Clock;
  logger?: Logger;
}

interface Step {
  name: string;
  close: () => void | Promise<void>;
}

export class ShutdownCoordinator {
  readonly #steps: Step[] = [];
  readonly #deadlineMs: number;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #begun = new AbortController();
  #report: Promise<ShutdownReport> | undefined;

  constructor(options: ShutdownOptions = {}) {
    this.#deadlineMs = options.deadlineMs ?? 25_000;
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? silentLogger;
  }

  /** Aborts when shutdown begins. */
  get signal(): AbortSignal {
    return this.#begun.signal;
  }

  /** Adds a step; steps close in the order added. */
  add(name: string, close: () => void | Promise<void>): this {
    if (this.#report) {
      throw new Error(`cannot add shutdown step "${name}": shutdown has already begun`);
    }
    this.#steps.push({ name, close });
    return this;
  }

  /** Runs every step once; later calls return the same report. */
  shutdown(reason: string): Promise<ShutdownReport> {
    this.#report ??= this.#run(reason);
    return this.#report;
  }

  /**
   * Calls `shutdown` on SIGTERM/SIGINT and then `exit` (0 if every step succeeded, 1 otherwise);
   * a second signal exits with 1 at once. Returns a function that removes the handlers.
   */
  installSignalHandlers(
    options: {
      source?: SignalSource;
      exit?: (code: number) => void;
      signals?: readonly NodeJS.Signals[];
    } = {},
  ): () => void {
    const source = options.source ?? process;
    const exit = options.exit ?? ((code: number) => process.exit(code));
    const signals = options.signals ?? ["SIGTERM", "SIGINT"];
    const onSignal = (signal: NodeJS.Signals): void => {
      if (this.#report) {
        this.#logger.warn({ signal }, "second signal during shutdown; exiting now");
        exit(1);
        return;
      }
      this.#logger.info({ signal }, "shutting down");
      void this.shutdown(signal).then((report) => exit(report.ok ? 0 : 1));
    };
    for (const signal of signals) {
      source.on(signal, onSignal);
    }
    return () => {
      for (const signal of signals) {
        source.off(signal, onSignal);
      }
    };
  }

  async #run(reason: string): Promise<ShutdownReport> {
    this.#begun.abort(new Error(`shutting down: ${reason}`));
    const deadline = this.#clock.monotonic() + this.#deadlineMs;
    const steps: StepOutcome[] = [];
    for (const step of this.#steps) {
      const remaining = deadline - this.#clock.monotonic();
      const outcome = await this.#runStep(step, remaining);
      if (outcome.outcome === "failed") {
        this.#logger.error({ step: step.name, reason, error: outcome.error }, "shutdown step failed");
      } else if (outcome.outcome === "timedOut") {
        this.#logger.error(
          { step: step.name, reason, deadlineMs: this.#deadlineMs },
          "shutdown step did not finish by the deadline",
        );
      }
      steps.push(outcome);
    }
    const report = { reason, ok: steps.every((s) => s.outcome === "ok"), steps };
    this.#logger.info({ reason, ok: report.ok }, "shutdown complete");
    return report;
  }

  async #runStep(step: Step, remainingMs: number): Promise<StepOutcome> {
    let finished: Promise<StepOutcome>;
    try {
      finished = Promise.resolve(step.close()).then(
        (): StepOutcome => ({ name: step.name, outcome: "ok" }),
        (err: unknown): StepOutcome => ({ name: step.name, outcome: "failed", error: errorText(err) }),
      );
    } catch (err) {
      return { name: step.name, outcome: "failed", error: errorText(err) };
    }
    if (remainingMs <= 0) {
      return { name: step.name, outcome: "timedOut" };
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<StepOutcome>((resolve) => {
      timer = setTimeout(() => resolve({ name: step.name, outcome: "timedOut" }), remainingMs);
    });
    try {
      return await Promise.race([finished, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
