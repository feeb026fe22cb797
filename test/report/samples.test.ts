import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { readGeneratorSamples, samplesTable } from "../../src/report/samples.js";

function workspace(): string {
  const ws = mkdtempSync(join(tmpdir(), "synthmix-samples-"));
  const corpus = join(ws, "corpus", "brown");
  mkdirSync(corpus, { recursive: true });
  const split = { docs: 2, chars: 0, words: 0, byDomain: {} };
  const stats = {
    version: 1,
    name: "brown",
    configHash: "h",
    config: {},
    seed: 1,
    read: 2,
    badRecords: 0,
    badRecordSamples: [],
    dropped: {},
    train: split,
    test: {},
    createdAt: "2026-01-01T00:00:00Z",
    elapsedSec: 0,
  };
  writeFileSync(join(corpus, "stats.json"), `${JSON.stringify(stats)}\n`);
  const docs = [
    { id: "a1", text: "The jury said the election was conducted well." },
    { id: "b2", text: "A second natural document." },
  ];
  writeFileSync(join(corpus, "train.jsonl"), `${docs.map((d) => JSON.stringify(d)).join("\n")}\n`);
  const hq = join(ws, "synthetic", "hq-gen");
  mkdirSync(hq, { recursive: true });
  const out = [
    { id: "b2#hq@gen", text: "Rewritten second document.", meta: { parent: "b2" } },
    { id: "a1#hq@gen", text: "Rewritten jury text.", meta: { parent: "a1" } },
    { id: "zz#hq@gen", text: "A third one.", meta: { parent: "zz" } },
  ];
  // A torn last line (a killed writer) is skipped, not fatal.
  writeFileSync(join(hq, "part-000.jsonl"), `${out.map((d) => JSON.stringify(d)).join("\n")}\n{"id":"to`);
  const txbk = join(ws, "synthetic", "txbk-gen");
  mkdirSync(txbk, { recursive: true });
  writeFileSync(
    join(txbk, "part-000.jsonl"),
    `${JSON.stringify({ id: "t0", text: "A textbook section." })}\n`,
  );
  return ws;
}

test("generator samples: the first documents of each synthetic folder next to their source texts", async () => {
  const ws = workspace();
  const samples = await readGeneratorSamples(ws, 2);
  assert.deepEqual(
    samples.map((s) => [s.folder, s.id, s.sourceText ?? null]),
    [
      ["hq-gen", "b2#hq@gen", "A second natural document."],
      ["hq-gen", "a1#hq@gen", "The jury said the election was conducted well."],
      ["txbk-gen", "t0", null],
    ],
  );
  const table = samplesTable(samples);
  assert.ok(!("skipped" in table));
  assert.equal(table.rows.length, 3);
  assert.equal(table.rows[2][1], "(no source document)");
  // A parent the corpora do not hold is said, not shown as an empty source.
  const three = await readGeneratorSamples(ws, 3);
  assert.match(
    String(samplesTable(three) && (samplesTable(three) as { rows: string[][] }).rows[2][1]),
    /zz not in/,
  );
});

test("generator samples: a workspace without synthetic data skips the table with the reason", async () => {
  const ws = mkdtempSync(join(tmpdir(), "synthmix-samples-"));
  assert.deepEqual(await readGeneratorSamples(ws), []);
  assert.deepEqual(samplesTable([]), { skipped: "no synthetic documents in the workspace" });
});

test("generator samples: a corrupt document line names file:line instead of being skipped", async () => {
  const ws = workspace();
  const part = join(ws, "synthetic", "hq-gen", "part-000.jsonl");
  writeFileSync(part, `${JSON.stringify({ id: "x", text: "fine" })}\n{"id": 3, "text": "a"}\n`);
  await assert.rejects(readGeneratorSamples(ws, 2), /part-000\.jsonl:2: not a document record: id: /);
  // A corrupt stats.json of a corpus is named too (it used to be read back unchecked).
  writeFileSync(part, `${JSON.stringify({ id: "x", text: "fine", meta: { parent: "a1" } })}\n`);
  writeFileSync(join(ws, "corpus", "brown", "stats.json"), "{}\n");
  await assert.rejects(
    readGeneratorSamples(ws, 2),
    /brown\/stats\.json: not corpus stats \(stats\.json\): version/,
  );
});
