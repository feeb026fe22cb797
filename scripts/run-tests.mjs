#!/usr/bin/env node
// Runs every test/**/*.test.ts with node's built-in test runner through tsx.
// Node 20's --test does not expand globs itself, so we collect the files here.
// Usage: node scripts/run-tests.mjs [substring-filter ...]
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

function collect(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...collect(path));
    else if (name.endsWith(".test.ts")) out.push(path);
  }
  return out;
}

const filters = process.argv.slice(2);
const files = collect("test").filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));
if (files.length === 0) {
  console.error("no test files matched");
  process.exit(1);
}
// A hung test fails with its name after TEST_TIMEOUT_MS instead of using up CI's whole budget (the
// full suite takes ~5 minutes on 2 cores; its slowest test ~45 s); the whole run is bounded too, for a
// file whose handles keep it alive after its tests ended.
const TEST_TIMEOUT_MS = 10 * 60_000;
const RUN_TIMEOUT_MS = 45 * 60_000;
const result = spawnSync(
  process.execPath,
  [
    "--import",
    "tsx",
    "--test",
    "--test-concurrency=2",
    `--test-timeout=${TEST_TIMEOUT_MS}`,
    "--test-reporter=spec",
    ...files,
  ],
  {
    stdio: "inherit",
    env: { ...process.env, SYNTHMIX_TEST: "1" },
    timeout: RUN_TIMEOUT_MS,
    killSignal: "SIGKILL",
  },
);
if (result.error || result.signal) {
  console.error(
    `run-tests: the test run did not finish (${result.error?.message ?? result.signal}); the run is bounded to ${RUN_TIMEOUT_MS / 60_000} min`,
  );
  process.exit(1);
}
process.exit(result.status ?? 1);
