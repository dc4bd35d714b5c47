/**
 * What every fuzz test shares, unit and integration alike: the seed, how many cases to run, and
 * the one-line summary each property prints, so a run says how much it tried and how to replay it.
 *
 * - `CADENT_FUZZ_SEED=<integer>` replays a run (the seed is printed on every summary line and in
 *   every failure report). `CADENT_FUZZ_SEED=random` draws a new seed per run — what hack/chaos.sh
 *   does, since fuzzing that always tries the same cases stops finding anything. Unset (CI, the
 *   README's test command), the seed is fixed: a CI run must not fail on a case no change made,
 *   and what a random run finds becomes a regression test (tests/unit/fuzz/regressions.test.ts).
 * - `CADENT_FUZZ_RUNS=<n>` runs at least n cases of every property, for a long run. The defaults
 *   are sized for CI on a busy 2-core machine; the variable never lowers them.
 */
import fc from "fast-check";

function integerFromEnv(name: string): number | undefined {
  const text = process.env[name]?.trim();
  if (text === undefined || text === "") return undefined;
  const value = Number(text);
  if (!Number.isSafeInteger(value)) {
    throw new Error(
      `${name}=${JSON.stringify(text)} is not an integer; unset it or write one, e.g. ${name}=42`,
    );
  }
  return value;
}

/** The seed of CI's fuzz runs: any fixed value; changing it is changing the tests. */
const CI_SEED = 20261125;

/** The seed of this process's fuzz runs. */
export const FUZZ_SEED: number =
  process.env["CADENT_FUZZ_SEED"]?.trim() === "random"
    ? (Math.random() * 2 ** 31) | 0
    : (integerFromEnv("CADENT_FUZZ_SEED") ?? CI_SEED);

/** How many cases a property with this default runs. */
export function fuzzRuns(defaultRuns: number): number {
  const requested = integerFromEnv("CADENT_FUZZ_RUNS");
  if (requested !== undefined && requested < 1) throw new Error("CADENT_FUZZ_RUNS must be at least 1");
  return Math.max(defaultRuns, requested ?? 0);
}

/** `fuzz: <name> <cases> cases (seed <seed>, ...)`, the line every fuzz test prints. */
export function reportCases(
  name: string,
  cases: number,
  details: Record<string, number | string> = {},
): void {
  const extra = Object.entries(details).map(([key, value]) => `, ${key} ${value}`);
  console.log(`fuzz: ${name} ${cases} cases (seed ${FUZZ_SEED}${extra.join("")})`);
}

/**
 * fast-check's `assert` with the run's seed and case count, printing the summary line. A failure
 * throws fast-check's report: the shrunk counterexample, the seed and the path to replay it.
 */
export async function fuzz<Ts>(
  name: string,
  property: fc.IProperty<Ts> | fc.IAsyncProperty<Ts>,
  defaultRuns: number,
): Promise<void> {
  const numRuns = fuzzRuns(defaultRuns);
  const details = await fc.check(property, { seed: FUZZ_SEED, numRuns });
  reportCases(name, details.numRuns, details.numSkips > 0 ? { skipped: details.numSkips } : {});
  if (details.failed) {
    const cause = details.errorInstance;
    const why = cause instanceof Error ? cause.message : String(cause);
    throw new Error(`${fc.defaultReportMessage(details)}\n\n${why}`, { cause });
  }
}

/** The same cases for an integration test, which sends them somewhere instead of shrinking them. */
export function sampleCases<T>(arbitrary: fc.Arbitrary<T>, defaultRuns: number): T[] {
  return fc.sample(arbitrary, { seed: FUZZ_SEED, numRuns: fuzzRuns(defaultRuns) });
}
