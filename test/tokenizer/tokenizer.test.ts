import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { encode as gptTokenizerEncode } from "gpt-tokenizer/encoding/r50k_base";
import { get_encoding } from "tiktoken";
import { brownDocuments } from "../../bench/tokenizer/brown.js";
import { Tokenizer } from "../../src/tokenizer/index.js";
import { lcg, randomText, wellFormed } from "./helpers.js";

let gpt2: Tokenizer;
let small: Tokenizer;
let dir: string;
let brown: string[];

interface HfFile {
  added_tokens: { id: number; content: string; special: boolean }[];
  pre_tokenizer: { type: string };
  decoder: { type: string };
  model: { type: string; vocab: Record<string, number>; merges: string[] };
}

before(async () => {
  gpt2 = Tokenizer.gpt2();
  brown = brownDocuments(12);
  small = await Tokenizer.train(brown, { vocabSize: 1000 });
  dir = mkdtempSync(join(tmpdir(), "synthmix-tok-test-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe("round trips", () => {
  test("decode(encode(x)) is exact on random Unicode (emoji, CJK, combining marks, BOM, NUL)", () => {
    const rnd = lcg(2);
    for (const tok of [gpt2, small]) {
      for (let t = 0; t < 1500; t++) {
        const s = randomText(rnd);
        const ids = tok.encode(s);
        assert.equal(tok.decode(ids), wellFormed(s), JSON.stringify(s));
        assert.deepEqual(tok.decodeBytes(ids), new Uint8Array(Buffer.from(s, "utf8")));
      }
    }
  });

  test("lone surrogates become U+FFFD, like any UTF-8 encoder", () => {
    assert.equal(gpt2.decode(gpt2.encode("a\ud800b")), "a\ufffdb");
  });

  test("encodeBytes/decodeBytes is exact on arbitrary (invalid UTF-8) bytes", () => {
    const rnd = lcg(3);
    for (const tok of [gpt2, small]) {
      for (let t = 0; t < 1000; t++) {
        const n = Math.floor(rnd() * 40);
        const b = new Uint8Array(n);
        for (let k = 0; k < n; k++) b[k] = rnd() < 0.5 ? Math.floor(rnd() * 256) : 97 + Math.floor(rnd() * 4);
        assert.deepEqual(tok.decodeBytes(tok.encodeBytes(b)), b);
      }
    }
    // Valid UTF-8 encodes exactly like the text.
    assert.deepEqual(gpt2.encodeBytes(Buffer.from("héllo wörld")), gpt2.encode("héllo wörld"));
  });

  test("decodeBytes of any split of the ids concatenates to the whole; decode is lossy only at cut characters", () => {
    const ids = gpt2.encode("日本語 😀 text");
    const whole = gpt2.decodeBytes(ids);
    for (let k = 0; k <= ids.length; k++) {
      const parts = Buffer.concat([gpt2.decodeBytes(ids.slice(0, k)), gpt2.decodeBytes(ids.slice(k))]);
      assert.deepEqual(new Uint8Array(parts), whole);
    }
    const cut = gpt2.encode("😀");
    assert.ok(cut.length > 1);
    assert.equal(gpt2.decode(cut.slice(0, 1)).includes("\ufffd"), true);
  });

  test("long pieces (heap merge path) give the same ids as the short path", () => {
    for (const s of ["a".repeat(500), " ".repeat(300), "ab".repeat(400), "x1".repeat(150)]) {
      const ids = gpt2.encode(s);
      assert.equal(gpt2.decode(ids), s);
      assert.deepEqual(ids, gptTokenizerEncode(s));
    }
  });
});

describe("GPT-2 vocabulary", () => {
  test("ids identical to tiktoken and gpt-tokenizer on varied text", () => {
    const tk = get_encoding("gpt2");
    try {
      const rnd = lcg(4);
      const samples = [
        ...brown.slice(0, 3).map((d) => d.slice(0, 20000)),
        "Hello world! It's 2024; we've got 3.14159 reasons.\n\n\tIndented   spaces   and trailing  ",
        "def f(x):\n    return x ** 2  # comment\n",
        "<|endoftext|> is plain text for encode()",
        "Ünïcödé, 中文字符, русский текст, ελληνικά, 🚀🔥👍🏽, e\u0301",
        ...Array.from({ length: 300 }, () => randomText(rnd).replace(/[\ud800-\udfff]/g, "?")),
      ];
      for (const s of samples) {
        const ours = gpt2.encode(s);
        assert.deepEqual(ours, Array.from(tk.encode_ordinary(s)), JSON.stringify(s.slice(0, 80)));
        // gpt-tokenizer runs the pattern with JavaScript's \s, which (unlike Unicode White_Space, used by
        // GPT-2's Python regex, tiktoken and llama.cpp) excludes U+0085 and includes U+FEFF.
        if (!/[\u0085\ufeff]/.test(s)) {
          const ref = gptTokenizerEncode(s, { disallowedSpecial: new Set() });
          assert.deepEqual(ours, ref, JSON.stringify(s.slice(0, 80)));
        }
      }
    } finally {
      tk.free();
    }
  });

  test("vocabulary shape matches GPT-2's published tokenizer.json", () => {
    assert.equal(gpt2.vocabSize, 50257);
    assert.equal(gpt2.eotId, 50256);
    const json = gpt2.toJSON() as { model: { vocab: Record<string, number>; merges: string[] } };
    // First lines of GPT-2's merges.txt and well-known vocab entries.
    assert.deepEqual(json.model.merges.slice(0, 7), ["Ġ t", "Ġ a", "h e", "i n", "r e", "o n", "Ġt he"]);
    assert.equal(json.model.merges.length, 50000);
    assert.equal(json.model.vocab.Ġthe, 262);
    assert.equal(json.model.vocab["!"], 0);
    assert.equal(json.model.vocab["<|endoftext|>"], 50256);
    assert.equal(gpt2.tokenString(262), " the");
  });

  test("special tokens: encode treats them as text, encodeWithSpecial parses them", () => {
    assert.deepEqual(gpt2.encodeWithSpecial("a<|endoftext|>b"), [64, 50256, 65]);
    assert.ok(!gpt2.encode("a<|endoftext|>b").includes(50256));
    assert.equal(gpt2.decode([64, 50256, 65]), "a<|endoftext|>b");
  });

  test("tokenString escapes bytes of a cut character", () => {
    const id = gpt2.encode("😀")[0];
    assert.match(gpt2.tokenString(id), /^\\x[0-9a-f]{2}/);
  });
});

describe("Hugging Face tokenizer.json", () => {
  test("write -> read round trip keeps vocabulary, merges, hash and ids", () => {
    const path = join(dir, "small.json");
    small.save(path);
    const back = Tokenizer.fromFile(path);
    assert.equal(back.sha256, small.sha256);
    assert.equal(readFileSync(path, "utf8"), back.toJSONString());
    assert.equal(back.vocabSize, small.vocabSize);
    assert.equal(back.eotId, small.eotId);
    // GPT-2 through JSON (in memory): same canonical file, same ids.
    const g = Tokenizer.fromJSON(JSON.parse(gpt2.toJSONString()));
    assert.equal(g.sha256, gpt2.sha256);
    for (const s of ["The jury said Friday, it's fine.", "中文 😀"]) {
      assert.deepEqual(back.encode(s), small.encode(s));
      assert.deepEqual(g.encode(s), gpt2.encode(s));
    }
  });

  test("the file has the layout HF tokenizers and llama.cpp's gpt2 loader expect", () => {
    const j = small.toJSON() as HfFile;
    assert.equal(j.model.type, "BPE");
    assert.equal(j.pre_tokenizer.type, "ByteLevel");
    assert.equal(j.decoder.type, "ByteLevel");
    assert.deepEqual(
      j.added_tokens.map((t) => [t.content, t.id, t.special]),
      [["<|endoftext|>", 999, true]],
    );
    assert.equal(Object.keys(j.model.vocab).length, 1000);
    for (const m of j.model.merges as string[]) {
      const [a, b] = m.split(" ");
      assert.ok(a in j.model.vocab && b in j.model.vocab && a + b in j.model.vocab, m);
    }
  });

  test("tokens named like Object properties (__proto__, constructor) survive the JSON round trip", async () => {
    const docs = Array<string>(20).fill("constructor.toString.__proto__.hasOwnProperty");
    const tok = await Tokenizer.train(docs, { vocabSize: 400 });
    for (const w of ["constructor", "toString", "hasOwnProperty", "proto"])
      assert.equal(tok.encode(w).length, 1, w);
    const back = Tokenizer.fromJSON(JSON.parse(tok.toJSONString()));
    assert.equal(back.sha256, tok.sha256);
    assert.deepEqual(back.encode(docs[0]), tok.encode(docs[0]));
  });

  test("reads merges in the newer [left, right] array form too, and rejects non-BPE models", () => {
    const j = small.toJSON() as HfFile;
    const arr = { ...j, model: { ...j.model, merges: j.model.merges.map((m: string) => m.split(" ")) } };
    assert.equal(Tokenizer.fromJSON(arr).sha256, small.sha256);
    assert.throws(() => Tokenizer.fromJSON({ model: { type: "WordPiece", vocab: {} } }), /only "BPE"/);
    assert.throws(
      () => Tokenizer.fromJSON({ model: { type: "BPE", vocab: { a: 0 }, merges: [] } }),
      /no token for byte/,
    );
  });
});

describe("training", () => {
  test("same input gives the same tokenizer.json bytes, whatever the document order", async () => {
    const a = await Tokenizer.train(brown, { vocabSize: 1000 });
    const b = await Tokenizer.train([...brown].reverse(), { vocabSize: 1000 });
    assert.equal(a.toJSONString(), small.toJSONString());
    assert.equal(b.toJSONString(), small.toJSONString());
  });

  test("merges are learned in frequency order, ties by smaller ids, stopping at minFrequency", async () => {
    const text = `${"xy ".repeat(5)}${"pq ".repeat(3)}mn mn`;
    // Pairs: "Ġ x"/"x y" 5 (ids: x y < Ġ), then "Ġxy" 5... computed by hand below.
    const tok = await Tokenizer.train([text], { vocabSize: 300 });
    const merges = (tok.toJSON() as { model: { merges: string[] } }).model.merges;
    // Pre-tokens: "xy" x1, " xy" x4, " pq" x3, " mn" x2, " " x1.
    // Counts: x y 5; Ġ x 4; Ġ p 3; p q 3; Ġ m 2; m n 2. Ties go to the smaller (left, right) ids, and
    // letters have smaller GPT-2 ids than Ġ (id 220).
    assert.deepEqual(merges, ["x y", "Ġ xy", "p q", "Ġ pq", "m n", "Ġ mn"]);
    assert.equal(tok.vocabSize, 256 + 6 + 1);
    assert.equal(tok.eotId, 262);
  });

  test("matches a naive trainer that recounts every pair at every step (independent implementation)", async () => {
    const docs = brown.slice(0, 3);
    const tok = await Tokenizer.train(docs, { vocabSize: 400, specialTokens: [] });
    const got = (tok.toJSON() as { model: { merges: string[] } }).model.merges;
    assert.deepEqual(got, naiveMerges(docs, 400 - 256, tok));
  });

  test("rejects a vocabulary smaller than the byte alphabet", async () => {
    await assert.rejects(Tokenizer.train(["abc"], { vocabSize: 100 }), /too small/);
  });
});

/** Textbook BPE: recount all pairs each step, take the most frequent (ties: smaller ids), merge everywhere. */
function naiveMerges(docs: string[], n: number, tok: Tokenizer): string[] {
  const json = tok.toJSON() as { model: { vocab: Record<string, number> } };
  const strOf = new Map(Object.entries(json.model.vocab).map(([s, id]) => [id, s]));
  const words = naiveWords(docs);
  const out: string[] = [];
  for (let step = 0, next = 256; step < n; step++, next++) {
    const [best, bestC] = naiveBestPair(words);
    if (bestC < 2) break;
    const a = Math.floor(best / 65536);
    const b = best % 65536;
    out.push(`${strOf.get(a)} ${strOf.get(b)}`);
    for (const w of words) w.ids = naiveMerge(w.ids, a, b, next);
  }
  return out;
}

/** Unique GPT-2 pre-tokens (by the reference regex) as byte-token ids, with their counts. */
function naiveWords(docs: string[]): { ids: number[]; c: number }[] {
  const counts = new Map<string, number>();
  const re = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
  for (const d of docs) for (const p of d.match(re) ?? []) counts.set(p, (counts.get(p) ?? 0) + 1);
  return [...counts].map(([p, c]) => ({
    ids: Array.from(Buffer.from(p, "utf8"), (b) => gpt2.encodeBytes(Uint8Array.of(b))[0]),
    c,
  }));
}

/** The most frequent pair (key a * 65536 + b) and its count; ties go to the smaller key. */
function naiveBestPair(words: { ids: number[]; c: number }[]): [number, number] {
  const pc = new Map<number, number>();
  for (const w of words)
    for (let k = 0; k + 1 < w.ids.length; k++) {
      const key = w.ids[k] * 65536 + w.ids[k + 1];
      pc.set(key, (pc.get(key) ?? 0) + w.c);
    }
  let best = -1;
  let bestC = 0;
  for (const [key, c] of pc) if (c > bestC || (c === bestC && key < best)) [best, bestC] = [key, c];
  return [best, bestC];
}

function naiveMerge(ids: number[], a: number, b: number, c: number): number[] {
  const r: number[] = [];
  for (let k = 0; k < ids.length; k++) {
    if (k + 1 < ids.length && ids[k] === a && ids[k + 1] === b) {
      r.push(c);
      k++;
    } else r.push(ids[k]);
  }
  return r;
}
