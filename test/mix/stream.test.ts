// The mix data path streams: peak memory of a build does not grow with the source. Measured in fresh
// processes (getrusage maxrss) on generated sources of ~3M and ~24M tokens. The in-memory builder this
// replaced held ~11.5 bytes per source token here (158 MB at 3M, 261 MB at 12M tokens), so its growth
// over these sizes would be ~240 MB; a streaming build stays within a few tens of MB.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

function build(chars: number): { sourceTokens: number; maxRssMB: number } {
  const ws = mkdtempSync(join(tmpdir(), "synthmix-rss-"));
  try {
    const run = (mix: number) => {
      const r = spawnSync(
        process.execPath,
        ["--import", "tsx", "test/mix/fixtures/build-rss.ts", ws, String(chars), String(mix), "byte"],
        { encoding: "utf8" },
      );
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout.trim().split("\n").at(-1)!);
    };
    run(1000); // generate the source in its own process, so generation is not in the measured peak
    rmSync(join(ws, "tokens"), { recursive: true, force: true });
    return run(2_000_000);
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
}

test("mix build from a 24M-token source: bounded peak RSS, flat in the source size", () => {
  const small = build(3_000_000);
  const large = build(24_000_000);
  assert.ok(large.sourceTokens > 20_000_000, `source of ${large.sourceTokens} tokens`);
  console.log(
    `# peak RSS: ${small.maxRssMB.toFixed(0)} MB at ${small.sourceTokens} tokens, ${large.maxRssMB.toFixed(0)} MB at ${large.sourceTokens}`,
  );
  assert.ok(large.maxRssMB < 220, `peak RSS ${large.maxRssMB} MB`);
  assert.ok(
    large.maxRssMB - small.maxRssMB < 60,
    `RSS grew ${large.maxRssMB - small.maxRssMB} MB from ${small.sourceTokens} to ${large.sourceTokens} tokens`,
  );
});
