import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { brownDocuments } from "../../bench/tokenizer/brown.js";
import { encodeToFile, Tokenizer } from "../../src/tokenizer/index.js";
import { readTokens } from "../../src/util/tokenfile.js";

const dir = mkdtempSync(join(tmpdir(), "synthmix-encode-file-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("encodeToFile writes the ids of sequential encode (+ eot), with counts; a failed input leaves no file", async () => {
  const docs = brownDocuments(3).slice(0, 40);
  const tok = await Tokenizer.train(docs, { vocabSize: 600 });
  const tokPath = join(dir, "tokenizer.json");
  tok.save(tokPath);
  const out = join(dir, "out", "x.bin");
  let last = 0;
  const r = await encodeToFile(tokPath, docs, out, {
    threads: 1,
    appendEot: true,
    onProgress: (p) => (last = p.documents),
  });
  const expected = docs.flatMap((d) => [...tok.encode(d), tok.eotId]);
  assert.deepEqual([...readTokens(out, r.dtype)], expected);
  assert.equal(r.dtype, "uint16");
  assert.equal(r.documents, docs.length);
  assert.equal(last, docs.length);
  assert.equal(r.tokens, expected.length);
  assert.equal(
    r.bytes,
    docs.reduce((n, d) => n + Buffer.byteLength(d, "utf8"), 0),
  );
  assert.equal(r.tokenizerSha256, tok.sha256);

  async function* broken() {
    yield docs[0];
    throw new Error("bad record at in.jsonl:2");
  }
  const other = join(dir, "out", "y.bin");
  await assert.rejects(encodeToFile(tokPath, broken(), other, { threads: 1 }), /in\.jsonl:2/);
  assert.deepEqual(readdirSync(join(dir, "out")), ["x.bin"], "no partial or temporary file");
});
