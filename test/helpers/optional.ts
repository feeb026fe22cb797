/**
 * Tests that need an outside tool (scipy, PyTorch, Chromium, the native addon, a dev dependency).
 *
 * These are the reference tests: the checks of our numerical code against independent implementations.
 * Locally a missing tool skips the test with the reason printed by the reporter (and once on stderr), so
 * `npm test` passes on a fresh machine after `npm ci`. Under CI=true a missing tool FAILS the test
 * instead: CI installs every tool (.ci/run), and a reference test that silently skips there checks nothing.
 *
 * Usage (two lines per test):
 *   const scipy = optionalTool("python3-scipy", () => probe..., "apt-get install -y python3-scipy");
 *   test("...", { skip: scipy.skip }, () => { scipy.require(); ... });
 */
import { spawnSync } from "node:child_process";

export interface OptionalTool {
  /** Whether the tool was found. */
  readonly available: boolean;
  /** The value for node:test's `skip` option: the reason locally when missing, else false (never under CI). */
  readonly skip: string | false;
  /** First line of the test body: under CI=true fails with the reason when the tool is missing. */
  require(): void;
}

/** True when running in CI (the convention GitHub Actions, GitLab and most runners follow). */
export function inCi(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env.CI?.toLowerCase();
  return v !== undefined && v !== "" && v !== "0" && v !== "false";
}

const announced = new Set<string>();

/**
 * `probe` returns true when the tool is usable, or false / a string saying why not. `hint` says how to
 * install it. A probe that throws counts as missing, with the error as the reason.
 */
export function optionalTool(
  name: string,
  probe: () => boolean | string,
  hint: string,
  env: NodeJS.ProcessEnv = process.env,
): OptionalTool {
  let why: string | undefined;
  try {
    const r = probe();
    if (r !== true) why = typeof r === "string" ? r : "not found";
  } catch (e) {
    why = e instanceof Error ? e.message : String(e);
  }
  const available = why === undefined;
  const reason = available ? "" : `${name} is not available (${why}); install: ${hint}`;
  const ci = inCi(env);
  if (!available && !ci && !announced.has(name)) {
    announced.add(name);
    process.stderr.write(`synthmix test: skipping the tests that need ${reason}\n`);
  }
  return {
    available,
    skip: available || ci ? false : reason,
    require() {
      if (!available) throw new Error(`${reason} (under CI=true a reference test fails instead of skipping)`);
    },
  };
}

/** Probe for a Python module through /usr/bin/python3 (the Debian interpreter the reference scripts use). */
export function pythonModules(...modules: string[]): () => boolean | string {
  return () => {
    const r = spawnSync("/usr/bin/python3", ["-c", `import ${modules.join(", ")}`], { encoding: "utf8" });
    if (r.error) return r.error.message;
    return r.status === 0 || (r.stderr.trim().split("\n").at(-1) ?? `exit ${r.status}`);
  };
}
