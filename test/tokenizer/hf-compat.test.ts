import assert from "node:assert/strict";
import { test } from "node:test";
import { brownDocuments } from "../../bench/tokenizer/brown.js";
import { Tokenizer } from "../../src/tokenizer/index.js";
import { optionalTool } from "../helpers/optional.js";
import { lcg, randomText } from "./helpers.js";

interface HfLike {
  encode(text: string, opts: { add_special_tokens: boolean }): { ids: number[] };
  decode(
    ids: number[],
    opts: { skip_special_tokens: boolean; clean_up_tokenization_spaces: boolean },
  ): string;
}
type HfCtor = new (json: object, config: object) => HfLike;

// Hugging Face's own JS implementation of tokenizer.json (a dev dependency) as an independent reader.
async function loadHf(): Promise<HfCtor | undefined> {
  try {
    const spec = "@huggingface/tokenizers";
    return ((await import(spec)) as { Tokenizer: HfCtor }).Tokenizer;
  } catch {
    return undefined;
  }
}

const Hf = await loadHf();
const hfTool = optionalTool(
  "@huggingface/tokenizers",
  () => Hf !== undefined,
  "`npm ci` (it is a dev dependency)",
);

test("our tokenizer.json loads in Hugging Face tokenizers.js and encodes/decodes identically", {
  skip: hfTool.skip,
}, async () => {
  hfTool.require();
  if (!Hf) return;
  const trained = await Tokenizer.train(brownDocuments(4), { vocabSize: 700 });
  const rnd = lcg(11);
  const samples = [
    "Hello world, it's 2024!",
    "  spaces\n\n\tend  ",
    "中文 😀 e\u0301 ünïcode",
    "a<|endoftext|>b",
    // tokenizers.js uses JavaScript's \s for U+0085/U+FEFF (Rust tokenizers/Oniguruma and tiktoken use
    // Unicode White_Space, as we do), so those two characters are left out of the comparison.
    ...Array.from({ length: 200 }, () => randomText(rnd).replace(/[\ud800-\udfff\u0085\ufeff]/g, "?")),
  ];
  for (const tok of [trained, Tokenizer.gpt2()]) {
    const hf: HfLike = new Hf(JSON.parse(tok.toJSONString()), {});
    for (const s of samples) {
      const ids = tok.encodeWithSpecial(s);
      assert.deepEqual(hf.encode(s, { add_special_tokens: false }).ids, ids, JSON.stringify(s));
      if (ids.length > 0) {
        const text = hf.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
        assert.equal(text, tok.decode(ids));
      }
    }
  }
});
