import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { UnigramFile } from "../../src/analyze/results.js";
import {
  compareUnigrams,
  countTokens,
  jsDivergence,
  klDivergence,
  smoothedProbs,
  splitLossByBlindSpots,
} from "../../src/analyze/unigram.js";
import { analyzeWorkspace } from "../../src/analyze/workspace.js";
import { Rng } from "../../src/util/rng.js";
import { encodeTokens } from "../../src/util/tokenfile.js";
import { runCliCaptured } from "../helpers/capture.js";

const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

test("KL and JS match closed forms on hand-made distributions", () => {
  const p = [0.5, 0.5, 0];
  const q = [0.25, 0.25, 0.5];
  close(klDivergence(p, q), Math.log(2));
  assert.equal(klDivergence(q, p), Number.POSITIVE_INFINITY);
  const m = [0.375, 0.375, 0.25];
  const js =
    0.5 * (2 * 0.5 * Math.log(0.5 / m[0])) +
    0.5 * (2 * 0.25 * Math.log(0.25 / m[0]) + 0.5 * Math.log(0.5 / m[2]));
  close(jsDivergence(p, q), js);
  close(jsDivergence([1, 0], [0, 1]), Math.log(2)); // disjoint supports: the maximum
  close(jsDivergence(q, q), 0);
});

test("add-k smoothing is over the full vocabulary", () => {
  const c = countTokens(new Uint16Array([0, 0, 1, 1]), 3);
  const p = smoothedProbs(c, 0.5);
  close(p[0], 2.5 / 5.5);
  close(p[2], 0.5 / 5.5);
  close(p[0] + p[1] + p[2], 1);
  assert.throws(() => countTokens([0, 5], 3), /outside the vocabulary/);
});

test("comparison: KL from smoothed counts, coverage and blind spots ranked by KL contribution", () => {
  const test_ = countTokens([0, 0, 1, 3, 3, 3], 4);
  const src = countTokens([0, 2, 2, 2, 1], 4);
  const k = 0.5;
  const r = compareUnigrams(test_, src, {
    k,
    topK: 10,
    tokenString: (id) => `t${id}`,
    sourceName: "s",
    testName: "news",
  });
  const p = [2.5, 1.5, 0.5, 3.5].map((c) => c / (6 + 2));
  const q = [1.5, 1.5, 3.5, 0.5].map((c) => c / (5 + 2));
  close(
    r.klTestSource,
    p.reduce((s, pi, i) => s + pi * Math.log(pi / q[i]), 0),
  );
  close(
    r.klSourceTest,
    q.reduce((s, qi, i) => s + qi * Math.log(qi / p[i]), 0),
  );
  close(r.tokenCoverage, 3 / 6); // tokens 0,0,1 are in the source, 3,3,3 are not
  close(r.typeCoverage, 2 / 3);
  assert.equal(r.blindSpots[0].id, 3);
  assert.equal(r.blindSpots[0].token, "t3");
  close(r.blindSpots[0].contribution, p[3] * Math.log(p[3] / q[3]));
  assert.ok(r.blindSpots.every((b) => b.contribution > 0));
  assert.ok(!r.blindSpots.some((b) => b.id === 1), "token 1 is not under-represented");
  close(r.blindSpotTokenShare, (3 + 2) / 6);
  const same = compareUnigrams(test_, test_);
  close(same.klTestSource, 0);
  assert.equal(same.blindSpots.length, 0);
});

test("per-token loss splits into blind-spot tokens vs the rest", () => {
  const s = splitLossByBlindSpots([1, 2, 3, 4], [7, 8, 7, 9], [7]);
  assert.deepEqual(s.blindSpot, { tokens: 2, meanLoss: 2 });
  assert.deepEqual(s.rest, { tokens: 2, meanLoss: 3 });
  assert.throws(() => splitLossByBlindSpots([1], [1, 2], []), /pair up/);
});

function fixtureWorkspace(): string {
  const ws = mkdtempSync(join(tmpdir(), "synthmix-analyze-"));
  const vocab = 6;
  mkdirSync(join(ws, "tokens", "test"), { recursive: true });
  writeFileSync(join(ws, "tokens", "test", "news.bin"), encodeTokens([0, 1, 2, 5, 5], "uint16"));
  writeFileSync(
    join(ws, "tokens", "test", "manifest.json"),
    JSON.stringify({
      dtype: "uint16",
      vocabSize: vocab,
      eotId: 0,
      tokenizerSha256: "abc",
      domains: [{ name: "news", file: "news.bin", tokens: 5, documents: 1 }],
    }),
  );
  for (const [id, ids] of [
    ["natural", [0, 1, 2, 3]],
    ["hq-50", [0, 1, 2, 5, 4]],
  ] as const) {
    mkdirSync(join(ws, "mixtures", id), { recursive: true });
    writeFileSync(join(ws, "mixtures", id, "tokens.bin"), encodeTokens(ids, "uint16"));
    writeFileSync(
      join(ws, "mixtures", id, "manifest.json"),
      JSON.stringify({
        id,
        file: "tokens.bin",
        dtype: "uint16",
        vocabSize: vocab,
        eotId: 0,
        totalTokens: ids.length,
        seed: 1,
        tokenizerSha256: "abc",
        sources: [{ name: id, targetShare: 1, tokens: ids.length, documents: 1, epochs: 1 }],
        createdBy: "test",
      }),
    );
  }
  mkdirSync(join(ws, "tokens", "sources"), { recursive: true });
  writeFileSync(join(ws, "tokens", "sources", "hq-0123.bin"), encodeTokens([5, 5, 4], "uint16"));
  writeFileSync(
    join(ws, "tokens", "sources", "hq-0123.json"),
    JSON.stringify({
      version: 1,
      source: "hq",
      files: ["synthetic/hq-gen"],
      contentSha256: "c",
      tokenizerSha256: "abc",
      dtype: "uint16",
      documents: 1,
      tokens: 3,
      skippedEmpty: 0,
    }),
  );
  return ws;
}

test("analyzeWorkspace compares every source and mixture with every test domain and writes unigram.json", async () => {
  const ws = fixtureWorkspace();
  const res = await analyzeWorkspace(ws, {
    tokenString: (id) => `<${id}>`,
    losses: [
      { runId: "r1", source: "natural", test: "news", losses: [1, 1, 1, 5, 5], targets: [0, 1, 2, 5, 5] },
    ],
  });
  assert.deepEqual(
    res.sources.map((s) => `${s.kind}:${s.id}`),
    ["source:hq", "mixture:hq-50", "mixture:natural"],
  );
  assert.equal(res.comparisons.length, 3);
  const nat = res.comparisons.find((c) => c.source === "natural")!;
  const hq = res.comparisons.find((c) => c.source === "hq-50")!;
  assert.equal(nat.blindSpots[0].token, "<5>"); // id 5 is in news but never in natural
  // Every source is compared on the smallest source's 3 tokens; the full-size KL is kept beside.
  assert.equal(res.equalTokens, 3);
  assert.ok(nat.tokenCoverage <= 3 / 5 && hq.tokenCoverage <= 1);
  assert.ok(hq.klTestSourceFullSize! < nat.klTestSourceFullSize!);
  assert.equal(res.noiseFloors.length, 1);
  assert.deepEqual(res.lossSplits?.[0].blindSpot, { tokens: 2, meanLoss: 5 });
  const written = JSON.parse(readFileSync(join(ws, "results", "unigram.json"), "utf8")) as UnigramFile;
  assert.equal(written.smoothingK, 0.5);
  assert.equal(written.comparisons.length, 3);
});

test("CLI: synthmix analyze unigram ws/ prints a table and writes results/unigram.json", async () => {
  const ws = fixtureWorkspace();
  const printed = (await runCliCaptured("analyze", "unigram", ws, "--k", "1", "--top", "3")).stdout;
  assert.match(printed, /KL\(test\|\|src\)/);
  const written = JSON.parse(readFileSync(join(ws, "results", "unigram.json"), "utf8")) as UnigramFile;
  assert.equal(written.smoothingK, 1);
  assert.ok(written.comparisons.every((c) => c.blindSpots.length <= 3));
});

test("equal-size comparison: the same text repeated 1x or 10x scores the same KL; the noise floor is positive", async () => {
  const ws = mkdtempSync(join(tmpdir(), "synthmix-uni-eq-"));
  const vocab = 1024;
  const rng = new Rng(5);
  const draw = (n: number) => Array.from({ length: n }, () => Math.floor(rng.next() ** 3 * vocab));
  const text = draw(2000);
  const test = draw(4000);
  mkdirSync(join(ws, "tokens", "test"), { recursive: true });
  writeFileSync(join(ws, "tokens", "test", "news.bin"), encodeTokens(test, "uint16"));
  writeFileSync(
    join(ws, "tokens", "test", "manifest.json"),
    JSON.stringify({
      dtype: "uint16",
      vocabSize: vocab,
      eotId: 0,
      tokenizerSha256: "abc",
      domains: [{ name: "news", file: "news.bin", tokens: test.length, documents: 1 }],
    }),
  );
  for (const [id, ids] of [
    ["once", text],
    ["tenfold", Array.from({ length: 10 }, () => text).flat()],
  ] as const) {
    mkdirSync(join(ws, "mixtures", id), { recursive: true });
    writeFileSync(join(ws, "mixtures", id, "tokens.bin"), encodeTokens(ids, "uint16"));
    writeFileSync(
      join(ws, "mixtures", id, "manifest.json"),
      JSON.stringify({
        id,
        file: "tokens.bin",
        dtype: "uint16",
        vocabSize: vocab,
        eotId: 0,
        totalTokens: ids.length,
        seed: 1,
        tokenizerSha256: "abc",
        sources: [{ name: id, targetShare: 1, tokens: ids.length, documents: 1, epochs: 1 }],
        createdBy: "test",
      }),
    );
  }
  const res = await analyzeWorkspace(ws, { seed: 3 });
  const once = res.comparisons.find((c) => c.source === "once")!;
  const ten = res.comparisons.find((c) => c.source === "tenfold")!;
  assert.equal(res.equalTokens, 2000);
  // Full size: the 10x copy has 10x the counts, so smoothing weighs less and KL differs...
  assert.ok(
    Math.abs(once.klTestSourceFullSize! - ten.klTestSourceFullSize!) > 0.05,
    `${once.klTestSourceFullSize} vs ${ten.klTestSourceFullSize}`,
  );
  // ...at equal size both are a sample of the same distribution: the difference is within the noise floor.
  const floor = res.noiseFloors[0].kl;
  assert.ok(floor > 0, String(floor));
  assert.ok(
    Math.abs(once.klTestSource - ten.klTestSource) < floor,
    `${once.klTestSource} vs ${ten.klTestSource}, floor ${floor}`,
  );
});
