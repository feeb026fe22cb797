/**
 * Peak memory of `synthmix analyze unigram` against source size:
 *   `npx tsx bench/analyze.ts [--sizes 20M,100M,500M]`
 * Per size, a workspace is generated (in this process, streamed): a 200k-token test set, a 1M-token
 * source cache and one of the given size (seeded Zipf-like GPT-2-range ids, uint16), so the big source
 * is both counted whole and sampled down to the 1M-token common size. The analysis runs through the
 * shipped binary (bin/synthmix.js) in a fresh process; peak RSS is /usr/bin/time's maxrss. Peer:
 * bench/peers/unigram_numpy.py counting the big file alone with np.bincount, read whole and over
 * 1M-token slices of an np.memmap.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseCount } from "../src/mix/count.js";
import { VOCAB, writeTokenWorkspace } from "../test/analyze/fixtures/token-workspace.js";

const args = process.argv.slice(2);
const i = args.indexOf("--sizes");
const sizes = (i >= 0 ? args[i + 1] : "20M,100M").split(",").map((c) => parseCount(c));

function makeWorkspace(n: number): { ws: string; big: string } {
  const ws = mkdtempSync(join(tmpdir(), "synthmix-bench-analyze-"));
  const big = writeTokenWorkspace(ws, {
    testTokens: 200_000,
    smallTokens: 1_000_000,
    bigTokens: n,
    eotId: 50256,
    tokenizerSha256: "bench",
  });
  return { ws, big };
}

const timed = (cmd: string, argv: string[]) => {
  const t0 = performance.now();
  const r = spawnSync("/usr/bin/time", ["-f", "%M", cmd, ...argv], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(r.stderr);
  return { mb: Number(r.stderr.trim().split("\n").at(-1)) / 1024, s: (performance.now() - t0) / 1000 };
};

console.log("analyze unigram peak RSS vs source size (GPT-2 vocabulary, uint16 ids, 1M-token common size)");
console.log(
  "| source tokens | token file | synthmix analyze peak RSS | s | numpy bincount (whole) peak RSS | s | numpy bincount (memmap slices) peak RSS | s | ours / memmap slices |",
);
console.log("|---|---|---|---|---|---|---|---|---|");
for (const n of sizes) {
  const { ws, big } = makeWorkspace(n);
  try {
    const ours = timed(process.execPath, ["bin/synthmix.js", "analyze", "unigram", ws, "--no-runs"]);
    const whole = timed("/usr/bin/python3", ["bench/peers/unigram_numpy.py", big, String(VOCAB), "whole"]);
    const sliced = timed("/usr/bin/python3", ["bench/peers/unigram_numpy.py", big, String(VOCAB), "chunked"]);
    console.log(
      `| ${(n / 1e6).toFixed(0)}M | ${((2 * n) / 1e6).toFixed(0)} MB | ${ours.mb.toFixed(0)} MB | ${ours.s.toFixed(1)} | ${whole.mb.toFixed(0)} MB | ${whole.s.toFixed(1)} | ${sliced.mb.toFixed(0)} MB | ${sliced.s.toFixed(1)} | ${(ours.mb / sliced.mb).toFixed(2)}x |`,
    );
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
}
