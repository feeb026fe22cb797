import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { buildMixture, setHeldSourceBytes, sharesFromRatios } from "../../src/mix/build.js";
import { countLabel, parseCount } from "../../src/mix/count.js";
import type { MixtureManifest, TestSetManifest } from "../../src/mix/manifest.js";
import { planMixture, targetTokens } from "../../src/mix/plan.js";
import { buildTestSets } from "../../src/mix/testsets.js";
import { SynthmixError } from "../../src/util/errors.js";
import { readTokens } from "../../src/util/tokenfile.js";
import { byteTokenizer, makeWorkspace } from "./helpers.js";

/** Split a byte-token stream at eot (256) back into document texts. */
function decodeDocs(ids: ArrayLike<number>): string[] {
  const docs: string[] = [];
  let cur: number[] = [];
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] === 256) {
      docs.push(Buffer.from(cur).toString("utf8"));
      cur = [];
    } else cur.push(ids[i]);
  }
  assert.equal(cur.length, 0, "the stream must end with eot");
  return docs;
}

function sources(ws: string, hq: number) {
  return [
    { name: "natural", path: join(ws, "corpus/brown/train.jsonl"), share: 1 - hq },
    { name: "hq", path: join(ws, "synthetic/hq-demo"), share: hq },
  ];
}

test("targetTokens splits a total exactly by largest remainder", () => {
  assert.deepEqual(targetTokens([0.67, 0.33], 1000), [670, 330]);
  assert.deepEqual(targetTokens([1 / 3, 1 / 3, 1 / 3], 10), [4, 3, 3]);
  for (const total of [1, 7, 999, 12345]) {
    const t = targetTokens([0.5, 0.25, 0.125, 0.125], total);
    assert.equal(
      t.reduce((a, b) => a + b, 0),
      total,
    );
  }
});

test("mixture realises target token shares within 0.5%, eot after every document, counts match the file", async () => {
  const ws = makeWorkspace();
  const tok = byteTokenizer();
  for (const hq of [0.33, 0.67, 0.1]) {
    const total = 30000;
    const { manifest, dir } = await buildMixture({
      workspace: ws,
      id: `hq-${hq}`,
      tokenizer: tok,
      sources: sources(ws, hq),
      totalTokens: total,
      seed: 7,
    });
    const ids = readTokens(join(dir, "tokens.bin"), manifest.dtype);
    assert.equal(ids.length, total);
    assert.equal(manifest.totalTokens, total);
    const docs = decodeDocs(ids);
    // Attribute each token (incl. its eot) to the source named by the document's tag.
    const bySource: Record<string, number> = { natural: 0, hq: 0 };
    const docsBySource: Record<string, number> = { natural: 0, hq: 0 };
    for (const d of docs) {
      const s = d.startsWith("N") ? "natural" : d.startsWith("H") ? "hq" : "?";
      bySource[s] += Buffer.byteLength(d) + 1;
      docsBySource[s]++;
    }
    for (const s of manifest.sources) {
      assert.equal(bySource[s.name], s.tokens, `${s.name} token count in manifest matches the file`);
      assert.equal(docsBySource[s.name], s.documents);
      assert.ok(Math.abs(s.tokens / total - s.targetShare) < 0.005, `${s.name} share ${s.tokens / total}`);
      assert.equal(s.epochs, 1);
    }
    // Documents are shuffled: both sources appear in the first and in the last tenth of the file.
    const tenth = Math.floor(docs.length / 10);
    for (const part of [docs.slice(0, tenth), docs.slice(-tenth)]) {
      assert.ok(part.some((d) => d.startsWith("N")) && part.some((d) => d.startsWith("H")));
    }
    // No document appears twice without repetition.
    const tags = docs.map((d) => d.split("|")[0]);
    assert.equal(new Set(tags).size, tags.length);
  }
});

test("same config gives the same bytes; another seed gives another order", async () => {
  const build = async (seed: number) => {
    const ws = makeWorkspace();
    const { dir } = await buildMixture({
      workspace: ws,
      id: "m",
      tokenizer: byteTokenizer(),
      sources: sources(ws, 0.33),
      totalTokens: 20000,
      seed,
    });
    return readFileSync(join(dir, "tokens.bin"));
  };
  const a = await build(5);
  const b = await build(5);
  assert.ok(a.equals(b));
  assert.ok(!a.equals(await build(6)));
  // The streaming path (each document read from the cache file) writes the same bytes as the in-memory one.
  setHeldSourceBytes(0);
  try {
    assert.ok(a.equals(await build(5)));
  } finally {
    setHeldSourceBytes(64 << 20);
  }
});

test("mixtures at different totals are nested: each source's documents are a prefix, the file nearly so", async () => {
  const ws = makeWorkspace();
  const tok = byteTokenizer();
  const read = async (total: number) => {
    const { manifest, dir } = await buildMixture({
      workspace: ws,
      id: `d${total}`,
      tokenizer: tok,
      sources: sources(ws, 0.33),
      totalTokens: total,
      seed: 3,
    });
    assert.equal(manifest.orderKey !== undefined, true);
    return { manifest, docs: decodeDocs(readTokens(join(dir, "tokens.bin"), manifest.dtype)) };
  };
  const small = await read(10000);
  const large = await read(40000);
  assert.equal(small.manifest.orderKey, large.manifest.orderKey);
  for (const tag of ["N", "H"]) {
    const s = small.docs.filter((d) => d.startsWith(tag));
    const l = large.docs.filter((d) => d.startsWith(tag));
    // All but the last (truncated) document of the smaller mixture are the larger's first documents.
    assert.deepEqual(s.slice(0, -1), l.slice(0, s.length - 1));
    assert.ok(
      l[s.length - 1].startsWith(s[s.length - 1]),
      "the truncated document is a prefix of the full one",
    );
  }
  let common = 0;
  while (common < small.docs.length && small.docs[common] === large.docs[common]) common++;
  const commonTokens = small.docs.slice(0, common).reduce((a, d) => a + Buffer.byteLength(d) + 1, 0);
  assert.ok(commonTokens > 0.9 * 10000, `common prefix ${commonTokens} tokens`);
  // The token cache was filled once: the second mixture re-tokenized nothing.
  assert.equal(tok.encoded, 300 + 200);
});

test("a source that runs out fails with a clear message, or repeats epochs when allowed", async () => {
  const ws = makeWorkspace(300, 20);
  const tok = byteTokenizer();
  await assert.rejects(
    buildMixture({ workspace: ws, id: "x", tokenizer: tok, sources: sources(ws, 0.5), totalTokens: 20000 }),
    (e: unknown) =>
      e instanceof SynthmixError && /source "hq".*allow repeated epochs/s.test(`${e.message} ${e.hint}`),
  );
  const { manifest } = await buildMixture({
    workspace: ws,
    id: "x",
    tokenizer: tok,
    sources: sources(ws, 0.5),
    totalTokens: 20000,
    allowRepeat: true,
  });
  const hq = manifest.sources.find((s) => s.name === "hq")!;
  assert.ok(hq.epochs >= 3, `epochs ${hq.epochs}`);
  assert.ok(hq.documents > 20);
  assert.equal(hq.tokens, 10000);
});

test("rerun skips a complete mixture; a changed config rebuilds", async () => {
  const ws = makeWorkspace();
  const opts = {
    workspace: ws,
    id: "m",
    tokenizer: byteTokenizer(),
    sources: sources(ws, 0.33),
    totalTokens: 5000,
  };
  assert.equal((await buildMixture(opts)).skipped, false);
  assert.equal((await buildMixture(opts)).skipped, true);
  const again = await buildMixture({ ...opts, totalTokens: 6000 });
  assert.equal(again.skipped, false);
  const m = JSON.parse(readFileSync(join(again.dir, "manifest.json"), "utf8")) as MixtureManifest;
  assert.equal(m.totalTokens, 6000);
});

test("ratio options: unlisted sources take the rest; bad shares are refused", () => {
  assert.deepEqual(sharesFromRatios(["natural", "hq"], { hq: 0.33 }), { natural: 0.67, hq: 0.33 });
  assert.throws(() => sharesFromRatios(["natural", "hq"], { qa: 0.3 }), /names no source/);
  assert.throws(() => sharesFromRatios(["natural", "hq"], { hq: 0.7, natural: 0.7 }), /sum/);
  assert.equal(parseCount("2e6"), 2000000);
  assert.equal(parseCount("500k"), 500000);
  assert.equal(parseCount("1.5M"), 1500000);
  assert.throws(() => parseCount("abc"));
  assert.equal(countLabel(2000000), "2M");
  assert.equal(countLabel(1500), "1.5k");
});

test("planMixture handles a single source and exact fits", () => {
  const plan = planMixture([{ name: "a", share: 1, lengths: [4, 4, 4] }], 15, 1, false);
  assert.equal(plan.stats[0].tokens, 15);
  assert.equal(
    plan.units.reduce((a, u) => a + u.take, 0),
    15,
  );
  assert.equal(plan.units.length, 3);
});

test("test sets are tokenized once per domain with eot after each document", async () => {
  const ws = makeWorkspace();
  const tok = byteTokenizer();
  const { manifest, dir, skipped } = await buildTestSets({ workspace: ws, tokenizer: tok });
  assert.equal(skipped, false);
  assert.deepEqual(
    manifest.domains.map((d) => d.name),
    ["fiction", "news"],
  );
  const news = manifest.domains.find((d) => d.name === "news")!;
  const docs = decodeDocs(readTokens(join(dir, news.file), manifest.dtype));
  assert.equal(docs.length, 20);
  assert.equal(news.documents, 20);
  const expected = readFileSync(join(ws, "corpus/brown/test/news.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l).text);
  assert.deepEqual(docs, expected);
  const before = tok.encoded;
  assert.equal((await buildTestSets({ workspace: ws, tokenizer: tok })).skipped, true);
  assert.equal(tok.encoded, before);
  const m = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as TestSetManifest;
  assert.equal(m.domains.length, 2);
});
