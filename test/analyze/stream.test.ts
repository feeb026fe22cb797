import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { countTokenFile } from "../../src/analyze/stream.js";
import { countTokens } from "../../src/analyze/unigram.js";
import { Rng } from "../../src/util/rng.js";

const file = (ids: ArrayLike<number>, dtype: "uint16" | "uint32") => {
  const path = join(mkdtempSync(join(tmpdir(), "synthmix-stream-")), "t.bin");
  const typed = dtype === "uint16" ? Uint16Array.from(ids) : Uint32Array.from(ids);
  writeFileSync(path, new Uint8Array(typed.buffer));
  return path;
};

test("countTokenFile: streamed counts equal the in-memory counts, across chunk boundaries, both dtypes", () => {
  const rng = new Rng(1);
  // 2.5M tokens: three 1M-token chunks, the last partial.
  const ids = new Uint32Array(2_500_000);
  for (let i = 0; i < ids.length; i++) ids[i] = Math.floor(rng.next() ** 2 * 70_000);
  for (const dtype of ["uint32", "uint16"] as const) {
    const v = dtype === "uint16" ? 65_536 : 70_000;
    const src = dtype === "uint16" ? ids.map((x) => x % 65_536) : ids;
    const ref = countTokens(src, v);
    const got = countTokenFile(file(src, dtype), dtype, v).full;
    assert.equal(got.total, ref.total);
    assert.equal(got.types, ref.types);
    assert.deepEqual(got.counts, ref.counts);
  }
});

test("countTokenFile: the sample has exactly m tokens, drawn without replacement, uniformly over positions", () => {
  // First 60% of the file is id 0, the rest id 1: a uniform sample of m positions is hypergeometric,
  // mean 0.6 m; without replacement it never takes more of an id than the file holds.
  const n = 1_500_000;
  const ids = new Uint16Array(n);
  ids.fill(1, Math.floor(0.6 * n));
  const path = file(ids, "uint16");
  for (const [m, seed] of [
    [10_000, 1],
    [750_000, 2],
    [1_499_999, 3],
  ]) {
    const { full, sample } = countTokenFile(path, "uint16", 4, { m, seed });
    assert.equal(sample!.total, m);
    assert.equal(sample!.counts[0] + sample!.counts[1], m, "exactly m drawn");
    assert.ok(sample!.counts[0] <= full.counts[0] && sample!.counts[1] <= full.counts[1]);
    // Hypergeometric sd = sqrt(m p (1-p) (n-m)/(n-1)); 6 sd is far outside any seed's luck.
    const sd = Math.sqrt((m * 0.6 * 0.4 * (n - m)) / (n - 1));
    assert.ok(Math.abs(sample!.counts[0] - 0.6 * m) <= 6 * sd + 1, `${sample!.counts[0]} vs ${0.6 * m}`);
  }
  // m >= n takes the whole file; the same seed draws the same sample.
  const all = countTokenFile(path, "uint16", 4, { m: 2 * n, seed: 9 });
  assert.deepEqual(all.sample!.counts, all.full.counts);
  const a = countTokenFile(path, "uint16", 4, { m: 1000, seed: 5 }).sample!;
  const b = countTokenFile(path, "uint16", 4, { m: 1000, seed: 5 }).sample!;
  assert.deepEqual(a.counts, b.counts);
});

test("countTokenFile: an id outside the vocabulary names the file and position; a torn file is refused", () => {
  const path = file([1, 2, 9, 3], "uint16");
  assert.throws(
    () => countTokenFile(path, "uint16", 5),
    /t\.bin: token 2 has id 9, outside the vocabulary of 5/,
  );
  const torn = join(mkdtempSync(join(tmpdir(), "synthmix-stream-")), "torn.bin");
  writeFileSync(torn, Buffer.from([1, 0, 2]));
  assert.throws(() => countTokenFile(torn, "uint16", 5), /size 3 bytes is not a multiple of 2/);
});

test("analyzeWorkspace streams: peak memory grows by far less than a 40M-token source file", () => {
  const ws = mkdtempSync(join(tmpdir(), "synthmix-analyze-rss-"));
  const n = 40_000_000; // an 80 MB token file; held whole (as before) it would add >= 80 MB
  const r = spawnSync(
    process.execPath,
    ["--import", "tsx", "test/analyze/fixtures/analyze-rss.ts", ws, String(n)],
    {
      encoding: "utf8",
    },
  );
  assert.equal(r.status, 0, r.stderr);
  const m = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as {
    before: number;
    after: number;
    equal: number;
  };
  assert.equal(m.equal, 100_000);
  assert.ok(m.after - m.before < 40, `peak RSS grew ${(m.after - m.before).toFixed(0)} MB while analyzing`);
});
