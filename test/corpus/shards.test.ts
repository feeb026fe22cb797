import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { cpSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { importCorpus, readDocuments } from "../../src/corpus/index.js";
import { readDecompressed } from "../../src/corpus/readers/compressed.js";
import type { BadRecordError } from "../../src/util/errors.js";
import { collect, tmp } from "./helpers.js";

// Written by the zstd 1.5.4 CLI (see fixtures/zstd/README.md): one single-frame and one two-frame shard.
const shards = join(dirname(fileURLToPath(import.meta.url)), "fixtures", "zstd", "shards");
const expectedSha = readFileSync(join(shards, "..", "expected.sha256"), "utf8").trim();

test("zstd shards (the Pile/DCLM layout) stream and import every record", async () => {
  const h = createHash("sha256");
  for (const f of ["shard-000.jsonl.zst", "shard-001.jsonl.zst"]) {
    for await (const c of readDecompressed(join(shards, f))) h.update(c);
  }
  assert.equal(h.digest("hex").slice(0, 16), expectedSha, "decompressed bytes equal the zstd CLI's input");
  const docs = await collect(readDocuments(shards));
  assert.equal(docs.length, 100);
  assert.equal(docs[0].id, "s0-0");
  assert.equal(docs[99].id, "s1-49");
  assert.match(docs[5].text, /naïve café 東京$/);
  const ws = tmp();
  const stats = await importCorpus({ from: shards, workspace: ws, name: "pile" });
  assert.equal(stats.read, 100);
  assert.ok(stats.train.docs > 0);
});

test("a truncated zstd shard is an error naming the file, never a short import", async () => {
  const dir = tmp();
  const whole = readFileSync(join(shards, "shard-000.jsonl.zst"));
  const cut = join(dir, "cut.jsonl.zst");
  writeFileSync(cut, whole.subarray(0, whole.length - 20));
  await assert.rejects(
    collect(readDocuments(cut, { skipBadRecords: true })),
    /cut\.jsonl\.zst:\d+: cannot read/,
  );
});

test("a mixed folder names every file it does not read", async () => {
  const dir = tmp();
  cpSync(shards, dir, { recursive: true });
  writeFileSync(join(dir, "notes.csv"), "a,b\n1,2\n");
  writeFileSync(join(dir, "blob.bin"), Buffer.from([1, 2, 3]));
  const skipped: string[] = [];
  const docs = await collect(readDocuments(dir, { onSkippedFile: (f) => skipped.push(f) }));
  assert.equal(docs.length, 100);
  assert.deepEqual(
    skipped.map((f) => f.split("/").pop()),
    ["blob.bin", "notes.csv"],
  );
  const stats = await importCorpus({ from: dir, workspace: tmp(), name: "mixed" });
  assert.deepEqual(
    stats.skippedFiles?.map((f) =>
      f
        .replace(/ \(.*$/, "")
        .split("/")
        .pop(),
    ),
    ["blob.bin", "notes.csv"],
  );
});

test("an import that yields 0 documents is an error", async () => {
  const dir = tmp();
  writeFileSync(join(dir, "data.csv"), "text\nhello\n");
  await assert.rejects(importCorpus({ from: dir, workspace: tmp(), name: "empty" }), (e: Error) => {
    assert.match(e.message, /yielded 0 documents: no documents were read; 1 files skipped: .*data\.csv/);
    return true;
  });
  const j = join(dir, "short.jsonl");
  writeFileSync(j, '{"text":"a"}\n{"text":"b"}\n');
  await assert.rejects(
    importCorpus({ from: j, workspace: tmp(), name: "short", minChars: 10 }),
    /all 2 documents read were dropped/,
  );
});

test("re-importing a folder that gained or lost files imports again", async () => {
  const dir = tmp();
  const ws = tmp();
  writeFileSync(join(dir, "a.txt"), "First document of the folder.");
  writeFileSync(join(dir, "b.txt"), "Second document of the folder.");
  const first = await importCorpus({ from: dir, workspace: ws, name: "f" });
  assert.equal(first.read, 2);
  assert.equal((await importCorpus({ from: dir, workspace: ws, name: "f" })).reused, true);
  writeFileSync(join(dir, "c.txt"), "A third document appears.");
  const grown = await importCorpus({ from: dir, workspace: ws, name: "f" });
  assert.ok(!grown.reused);
  assert.equal(grown.read, 3);
  rmSync(join(dir, "a.txt"));
  const shrunk = await importCorpus({ from: dir, workspace: ws, name: "f" });
  assert.ok(!shrunk.reused);
  assert.equal(shrunk.read, 2);
});

test("invalid UTF-8 in JSONL is refused like the .txt reader, or counted with skipBadRecords", async () => {
  const dir = tmp();
  const p = join(dir, "bad.jsonl");
  writeFileSync(
    p,
    Buffer.concat([
      Buffer.from('{"text":"good one"}\n{"text":"caf'),
      Buffer.from([0xe9]),
      Buffer.from('"}\n{"text":"good two"}\n'),
    ]),
  );
  await assert.rejects(collect(readDocuments(p)), /bad\.jsonl:2: invalid UTF-8/);
  const errors: BadRecordError[] = [];
  const docs = await collect(readDocuments(p, { skipBadRecords: true, onBadRecord: (e) => errors.push(e) }));
  assert.deepEqual(
    docs.map((d) => d.text),
    ["good one", "good two"],
  );
  assert.equal(errors.length, 1);
  assert.ok(!docs.some((d) => d.text.includes("\ufffd")));
});
