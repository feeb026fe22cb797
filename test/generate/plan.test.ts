import assert from "node:assert/strict";
import { test } from "node:test";
import { KeywordExtractor } from "../../src/generate/keywords.js";
import { planDocs } from "../../src/generate/plan.js";
import { resolveTemplate } from "../../src/generate/prompts/index.js";
import { deriveSeed } from "../../src/util/rng.js";

const words = (n: number, salt: string) =>
  Array.from(
    { length: n },
    (_, i) => `${salt}${["river", "engine", "market", "poem", "law"][i % 5]}${i % 37}`,
  ).join(" ");
const docs = [
  { id: "long", source: "s", text: words(600, "a") },
  { id: "short", source: "s", text: words(40, "b") },
];
const count = (t: string) => t.split(/\s+/).filter(Boolean).length;
const opts = { seed: 7, corpusName: "c", chunkTokens: 120, keywords: 4, count };

test("a keyword style (TXBK) writes one section per chunk of its source, each from its own keyword sample", () => {
  const { planned } = planDocs(docs, resolveTemplate("txbk"), opts);
  const long = planned.find((p) => p.doc.id === "long")!;
  const short = planned.find((p) => p.doc.id === "short")!;
  // 600 words / 120 per chunk = 5 sections; a document shorter than a chunk still gets one.
  assert.equal(long.units.length, 5);
  assert.equal(short.units.length, 1);
  assert.equal(short.units[0].parent, "short");
  assert.deepEqual(
    long.units.map((u) => u.parent),
    ["long#topic0", "long#topic1", "long#topic2", "long#topic3", "long#topic4"],
  );
  const samples = new Set(long.units.map((u) => JSON.stringify(u.keywords)));
  assert.ok(samples.size >= 4, "the sections are about different keyword samples");
  // Unit 0 keeps the seed of the one-section-per-document plan (its request key is unchanged).
  const kw = new KeywordExtractor();
  for (const d of docs) kw.add(d.text);
  assert.deepEqual(long.units[0].keywords, kw.sample(docs[0].text, 4, deriveSeed(7, "txbk", "long")));
  // Every section's draw is sample()'s (the plan ranks the document's terms once, not per section).
  for (let k = 1; k < 5; k++)
    assert.deepEqual(long.units[k].keywords, kw.sample(docs[0].text, 4, deriveSeed(7, "txbk", "long", k)));
  // Same inputs, same plan.
  assert.deepEqual(planDocs(docs, resolveTemplate("txbk"), opts).planned, planned);
});

test("a chunk style (HQ) splits the same source into the same number of units", () => {
  const { planned } = planDocs(docs, resolveTemplate("hq"), opts);
  assert.equal(planned.find((p) => p.doc.id === "long")!.units.length, 5);
});
