/**
 * The Dockerfile's runtime layout, built without Docker (no engine runs here): production
 * dependencies from the lock file, dist/ compiled by the build's tsc, crds/ and package.json in a
 * temporary /app; then the CLI is run from it the way the image's ENTRYPOINT runs it.
 */
import { execFile } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");
/** The project-local Node 24 stands in for the image's; it is itself a devDependency. */
const NODE = resolve(ROOT, "node_modules/.bin/node");
const TSC = resolve(ROOT, "node_modules/typescript/bin/tsc");
const run = promisify(execFile);

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** The image's `node /app/dist/cli/main.js ...`, with only PATH from this environment. */
function cadent(app: string, ...args: string[]): Promise<Result> {
  return new Promise((done) => {
    execFile(
      NODE,
      [join(app, "dist/cli/main.js"), ...args],
      { cwd: app, env: { PATH: process.env.PATH ?? "", NODE_ENV: "production", HOME: "/tmp" } },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === "number" ? err.code : -1;
        done({ code, stdout, stderr });
      },
    );
  });
}

/** Every path under `dir` with its size and mtime: a write anywhere changes it. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) walk(path);
      else {
        const s = statSync(path);
        out.push(`${relative(dir, path)} ${s.size} ${s.mtimeMs}`);
      }
    }
  };
  walk(dir);
  return out.sort();
}

const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
  version: string;
  dependencies: Record<string, string>;
};
const lock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8")) as {
  packages: Record<string, { dev?: boolean }>;
};

describe("the production layout of the Dockerfile's runtime stage", () => {
  let scratch: string;
  let app: string;

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), "cadent-image-"));
    app = join(scratch, "app");
    for (const file of ["package.json", "package-lock.json", ".npmrc"]) {
      cpSync(join(ROOT, file), join(app, file));
    }
    cpSync(join(ROOT, "crds"), join(app, "crds"), { recursive: true });
    // As the Dockerfile's deps stage: one npm ci, production dependencies only, no install scripts.
    await run("npm", ["ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund"], {
      cwd: app,
      env: { ...process.env, npm_config_cache: join(scratch, "npm-cache") },
    });
    // As the build stage: the repository's own build config, into the layout (the repository's
    // dist/ may be stale, and other work may be using it).
    await run(NODE, [TSC, "-p", join(ROOT, "tsconfig.build.json"), "--outDir", join(app, "dist")], {
      cwd: ROOT,
    });
  }, 300_000);

  afterAll(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it("holds the production dependencies and none of the devDependencies", () => {
    for (const name of Object.keys(pkg.dependencies)) {
      expect(existsSync(join(app, "node_modules", name, "package.json")), name).toBe(true);
    }
    // The tools by name, then every package the lock file marks dev-only (@types/node is not: a
    // production dependency needs it).
    for (const name of ["vitest", "typescript", "eslint", "prettier", "fast-check", "node"]) {
      expect(existsSync(join(app, "node_modules", name)), name).toBe(false);
    }
    const devOnly = Object.entries(lock.packages)
      .filter(([path, entry]) => path !== "" && entry.dev === true)
      .map(([path]) => path);
    expect(devOnly.length).toBeGreaterThan(0);
    expect(devOnly.filter((path) => existsSync(join(app, path)))).toEqual([]);
  });

  it("prints the package version with cadent --version, and writes nothing into /app", async () => {
    const before = snapshot(app);
    expect(await cadent(app, "--version")).toEqual({ code: 0, stdout: `${pkg.version}\n`, stderr: "" });
    expect(snapshot(app)).toEqual(before);
  });

  it("prints the controller's usage with cadent controller --help, loading only production modules", async () => {
    const before = snapshot(app);
    const result = await cadent(app, "controller", "--help");
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Usage: cadent controller \[options\]/m);
    expect(result.stderr).toBe("");
    expect(snapshot(app)).toEqual(before);
  });

  it("runs a verb end to end: schedule next from the compiled engine", async () => {
    const result = await cadent(
      app,
      "schedule",
      "next",
      "0 6 1 * *",
      "--tz",
      "Asia/Shanghai",
      "--from",
      "2026-11-15T00:00:00Z",
      "--count",
      "1",
    );
    expect(result).toEqual({ code: 0, stdout: "2026-11-30T22:00:00Z\n", stderr: "" });
  });

  it("matches the Dockerfile: same install command, user, entrypoint and copied paths", () => {
    const dockerfile = readFileSync(join(ROOT, "Dockerfile"), "utf8");
    expect(dockerfile).toContain("npm ci --omit=dev --ignore-scripts");
    expect(dockerfile).toMatch(/^FROM \$\{NODE_IMAGE\} AS runtime$/m);
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:24-/m);
    expect(dockerfile).toMatch(/^USER 65532:65532$/m);
    expect(dockerfile).toContain('ENTRYPOINT ["node", "/app/dist/cli/main.js"]');
    const runtime = dockerfile.slice(dockerfile.indexOf("AS runtime"));
    const copied = [...runtime.matchAll(/^COPY (?:--from=\w+ )?(\S+) /gm)].map((m) => m[1]);
    expect(copied.sort()).toEqual(["/app/dist", "/app/node_modules", "crds", "package.json"]);
  });
});
