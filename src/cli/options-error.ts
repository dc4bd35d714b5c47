/** Invalid options of a verb; `problems` has one line per bad setting (flag, variable, value). */
export class OptionsError extends Error {
  override name = "OptionsError";
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super(
      problems.length === 1
        ? `invalid option: ${problems[0]}`
        : `invalid options:\n  ${problems.join("\n  ")}`,
    );
    this.problems = problems;
  }
}
