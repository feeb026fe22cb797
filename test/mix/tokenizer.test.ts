// The mix stage's tokenizer streams ids as views into each batch's transferred buffer (no per-token copy
// on the main thread): the views must stay valid and equal to sequential encoding after later batches
// arrive (a worker that reused its buffer for the next batch would overwrite documents already yielded).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { loadMixTokenizer } from "../../src/mix/tokenizer.js";
import { Tokenizer } from "../../src/tokenizer/index.js";
import { makeDocs } from "./helpers.js";

test("mix tokenizer on 2 threads: every document's ids equal sequential encoding, kept across batches", async () => {
  const dir = mkdtempSync(join(tmpdir(), "synthmix-mixtok-"));
  try {
    const path = join(dir, "tokenizer.json");
    const tok = Tokenizer.gpt2();
    tok.save(path);
    // ~40 chars per word x 40 words x 1500 docs: many 64K-character batches per worker.
    const texts = makeDocs("D", 1500, 9).map((d) => `${d.text} ${d.text.toUpperCase()} ünïcødé 😀`);
    const mixTok = await loadMixTokenizer(path, 2);
    async function* stream() {
      yield* texts;
    }
    const got: ArrayLike<number>[] = [];
    for await (const ids of mixTok.encodeAll(stream())) got.push(ids);
    assert.equal(got.length, texts.length);
    for (let d = 0; d < texts.length; d++) {
      assert.deepEqual(Array.from(got[d]), tok.encode(texts[d]), `document ${d}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
