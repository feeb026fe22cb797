import assert from "node:assert/strict";
import { test } from "node:test";
import {
  cleanPipeline,
  cleanWhitespaceText,
  countWords,
  type Doc,
  estimateJaccard,
  LshIndex,
  lshParams,
  MinHasher,
} from "../../src/corpus/index.js";
import { Rng } from "../../src/util/rng.js";
import { collect, fromArray } from "./helpers.js";

const doc = (id: string, text: string): Doc => ({ id, text, source: "natural" });

test("normalization (NFC default, NFKC option), whitespace cleanup and empties", async () => {
  const decomposed = "cafe\u0301  \t ﬁne\r\n\r\n\r\n\r\nnext\u00a0line \u200b";
  const nfc = cleanPipeline();
  const [a] = await collect(nfc.run(fromArray([doc("a", decomposed), doc("b", " \n\t ")])));
  assert.equal(a.text, "café ﬁne\n\nnext line");
  assert.deepEqual(nfc.drops.counts, { empty: 1 });
  const nfkc = cleanPipeline({ normalize: "NFKC" });
  const [b] = await collect(nfkc.run(fromArray([doc("a", decomposed)])));
  assert.equal(b.text, "café fine\n\nnext line");
  assert.equal(cleanWhitespaceText("a  b\n \n \n c"), "a b\n\nc");
  assert.equal(countWords("  one two\nthree\t four  "), 4);
});

test("length filters (chars and words) and exact dedup count drops by reason", async () => {
  const docs = [
    doc("1", "short"),
    doc("2", "a reasonably long document here"),
    doc("3", "A  reasonably long\ndocument HERE"), // same after case/whitespace normalization
    doc("4", "x ".repeat(100)),
    doc("5", "another long enough document"),
  ];
  const p = cleanPipeline({ minChars: 10, maxWords: 50 });
  const kept = await collect(p.run(fromArray(docs)));
  assert.deepEqual(
    kept.map((d) => d.id),
    ["2", "5"],
  );
  assert.deepEqual(p.drops.counts, { too_short: 1, duplicate: 1, too_long: 1 });
  const noDedup = cleanPipeline({ dedup: false, minWords: 2 });
  assert.equal((await collect(noDedup.run(fromArray(docs)))).length, 4);
  assert.deepEqual(noDedup.drops.counts, { too_short: 1 });
});

/** Independent reference: exact Jaccard of word 5-gram sets, built with strings and Sets. */
function exactJaccard(a: string, b: string, n = 5): number {
  const grams = (t: string) => {
    const w = t.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
    const s = new Set<string>();
    for (let i = 0; i + n <= w.length; i++) s.add(w.slice(i, i + n).join(" "));
    return s;
  };
  const A = grams(a);
  const B = grams(b);
  let inter = 0;
  for (const g of A) if (B.has(g)) inter++;
  return inter / (A.size + B.size - inter);
}

function randomText(rng: Rng, words: number): string[] {
  return Array.from({ length: words }, () => `w${rng.int(5000)}`);
}

/** Replace `k` evenly spread words of a base text: Jaccard falls roughly linearly in k. */
function variant(base: string[], k: number, rng: Rng): string {
  const out = base.slice();
  for (let i = 0; i < k; i++) out[Math.floor(((i + 0.5) * out.length) / k)] = `v${rng.int(1e9)}`;
  return out.join(" ");
}

test("MinHash estimates track exact Jaccard on constructed pairs", () => {
  const rng = new Rng(7);
  const hasher = new MinHasher({ numPerm: 256, seed: 3 });
  let maxErr = 0;
  const seenJ: number[] = [];
  for (const k of [0, 2, 5, 10, 20, 40, 80, 200]) {
    const base = randomText(rng, 400);
    const a = base.join(" ");
    const b = variant(base, k, rng);
    const exact = exactJaccard(a, b);
    const est = estimateJaccard(hasher.signature(a), hasher.signature(b));
    seenJ.push(exact);
    maxErr = Math.max(maxErr, Math.abs(est - exact));
  }
  // Standard error with 256 permutations is at most 0.5/sqrt(256) = 0.031; allow ~3 sigma.
  assert.ok(maxErr < 0.1, `max |estimate - exact| = ${maxErr}`);
  assert.ok(Math.max(...seenJ) === 1 && Math.min(...seenJ) < 0.1, `range of Jaccard covered: ${seenJ}`);
});

test("lshParams picks a collision curve whose steep part sits at the threshold", () => {
  for (const t of [0.5, 0.7, 0.8, 0.9]) {
    const { bands, rows } = lshParams(t, 128);
    assert.ok(bands * rows <= 128);
    const p = (s: number) => 1 - (1 - s ** rows) ** bands;
    assert.ok(p(Math.min(1, t + 0.1)) > 0.85, `t=${t}: high similarity collides`);
    assert.ok(p(t) > 0.4 && p(t) < 0.8, `t=${t}: the curve is steep around the threshold`);
    assert.ok(p(t - 0.3) < 0.05, `t=${t}: low similarity rarely collides`);
  }
  assert.throws(() => new LshIndex(16, 5, 4, 0.8), /exceeds numPerm/);
});

test("near-dedup drops pairs above the threshold and keeps pairs well below it", async () => {
  const rng = new Rng(11);
  const docs: Doc[] = [];
  const expectDrop = new Set<string>();
  const pairs: [string, number][] = [];
  for (let i = 0; i < 30; i++) {
    const base = randomText(rng, 300);
    const k = [1, 3, 60, 150][i % 4];
    const b = variant(base, k, rng);
    const exact = exactJaccard(base.join(" "), b);
    docs.push(doc(`p${i}a`, base.join(" ")), doc(`p${i}b`, b));
    pairs.push([`p${i}b`, exact]);
    if (exact >= 0.9) expectDrop.add(`p${i}b`);
    else assert.ok(exact < 0.5, `constructed pair ${i} has J=${exact}`);
  }
  const p = cleanPipeline({ nearDedup: { threshold: 0.8, numPerm: 128, seed: 5 } });
  const kept = new Set((await collect(p.run(fromArray(docs)))).map((d) => d.id));
  for (const [id, exact] of pairs)
    assert.equal(!kept.has(id), expectDrop.has(id), `${id} (J=${exact.toFixed(2)})`);
  for (let i = 0; i < 30; i++) assert.ok(kept.has(`p${i}a`), "the first of a pair is always kept");
  assert.equal(p.drops.counts.near_duplicate, expectDrop.size);
  assert.ok(expectDrop.size >= 10);
});
