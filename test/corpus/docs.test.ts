import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { parseDocLine, readDocLines } from "../../src/corpus/docs.js";
import { readWritten } from "../../src/generate/journal.js";
import { loadSources } from "../../src/generate/plan.js";
import { readSourceTexts } from "../../src/mix/sources.js";
import { readTexts } from "../../src/tokenizer/input.js";

/** The one Doc reader (src/corpus/docs.ts) and every consumer of Doc lines naming file:line on a bad one. */

const tmp = () => mkdtempSync(join(tmpdir(), "synthmix-docs-"));
const line = (v: unknown) => `${JSON.stringify(v)}\n`;

test("Doc reader: records validated by the corpus schema, source defaults to natural, bad lines name file:line", async () => {
  const dir = tmp();
  const f = join(dir, "a.jsonl");
  writeFileSync(
    f,
    `${line({ id: "a", text: "x", meta: { domain: "news" } })}\n${line({ id: "b", text: 7 })}`,
  );
  const got: unknown[] = [];
  await assert.rejects(
    (async () => {
      for await (const d of readDocLines(f)) got.push(d);
    })(),
    (e: Error & { code?: string }) =>
      e.code === "BAD_RECORD" && /a\.jsonl:3: not a document record: text: /.test(e.message),
  );
  assert.deepEqual(got, [
    { doc: { id: "a", text: "x", source: "natural", meta: { domain: "news" } }, line: 1 },
  ]);
  const skipped: string[] = [];
  const ok = [];
  for await (const d of readDocLines(f, { onBad: (e) => skipped.push(e.message) })) ok.push(d.doc.id);
  assert.deepEqual(ok, ["a"]);
  assert.equal(skipped.length, 1);
  assert.throws(
    () => parseDocLine('{"id": "a", "text": "t", "meta": [1]}', "p.jsonl", 9),
    /p\.jsonl:9: not a document record: meta: expected an object/,
  );
  assert.throws(() => parseDocLine("{nope", "p.jsonl", 2), /p\.jsonl:2: malformed JSON/);
});

test("mix source and tokenizer input: a record without a string text names file:line (text-only files still read)", async () => {
  const dir = tmp();
  const f = join(dir, "src.jsonl");
  writeFileSync(
    f,
    `${line({ text: "only text is needed" })}${line({ id: "x", text: ["not", "a", "string"] })}`,
  );
  await assert.rejects(readSourceTexts([f]), /src\.jsonl:2: not a document record: text: /);
  const texts: string[] = [];
  await assert.rejects(
    (async () => {
      for await (const t of readTexts([f])) texts.push(t);
    })(),
    /src\.jsonl:2: not a document record: text: [\s\S]*/,
  );
  assert.deepEqual(texts, ["only text is needed"]);
  const stats = { documents: 0, chars: 0, skipped: 0 };
  for await (const _ of readTexts([f], stats, { skipBadRecords: true })) {
    // counted in stats
  }
  assert.deepEqual(stats, { documents: 1, chars: 19, skipped: 1 });
});

function corpus(train: string, test: string): string {
  const ws = tmp();
  const dir = join(ws, "corpus", "c");
  mkdirSync(join(dir, "test"), { recursive: true });
  writeFileSync(join(dir, "train.jsonl"), train);
  writeFileSync(join(dir, "test", "all.jsonl"), test);
  return ws;
}

test("generate sources: a corrupt held-out record is an error naming file:line, not a silently dropped id", async () => {
  // Before: a test-set line whose id was not a string was skipped, so that held-out document (if it
  // were also in train.jsonl) could have been rephrased into the synthetic data.
  const ws = corpus(
    line({ id: "t1", text: "train doc" }),
    `${line({ id: "h1", text: "held" })}${line({ id: 5, text: "h" })}`,
  );
  await assert.rejects(loadSources(ws, "c", false), /test\/all\.jsonl:2: not a document record: id: /);
  const ok = corpus(
    `${line({ id: "t1", text: "train doc" })}${line({ id: "h1", text: "held" })}`,
    line({ id: "h1", text: "held" }),
  );
  const { docs } = await loadSources(ok, "c", false);
  assert.deepEqual(
    docs.map((d) => [d.id, d.source]),
    [["t1", "natural"]],
  );
  const bad = corpus(`${line({ id: "t1", text: "a" })}${line({ id: "t2" })}`, "");
  await assert.rejects(loadSources(bad, "c", false), /train\.jsonl:2: not a document record: text: /);
  assert.equal((await loadSources(bad, "c", true)).bad, 1);
});

test("generate resume: a corrupt synthetic document (not the torn tail) names file:line", async () => {
  const dir = tmp();
  const part = join(dir, "part-000.jsonl");
  const doc = (id: string, parent: string) => line({ id, text: "t", source: "hq", meta: { parent } });
  // A torn last line (a killed writer) is dropped; the parents of the complete ones are counted.
  writeFileSync(part, `${doc("a#hq", "a")}${doc("b#hq", "b")}{"id": "c#h`);
  assert.deepEqual([...(await readWritten(dir))].sort(), [
    ["a", 1],
    ["b", 1],
  ]);
  // Before: a record with a bad `text` was counted as written as long as it had a parent.
  writeFileSync(
    part,
    `${doc("a#hq", "a")}${line({ id: "b#hq", text: null, meta: { parent: "b" } })}${doc("c#hq", "c")}`,
  );
  await assert.rejects(readWritten(dir), /part-000\.jsonl:2: not a document record: text: /);
});
