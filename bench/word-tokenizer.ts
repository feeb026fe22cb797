import type { MixTokenizer } from "../src/mix/tokenizer.js";

/**
 * A word-level stand-in for the study tokenizer with a given vocabulary size (FNV-1a hash of each
 * lower-cased word): training throughput and schedule comparisons do not depend on which ids the text
 * maps to, and this keeps the benches free of a BPE training step. The last id is end-of-text.
 */
export function wordTokenizer(vocab: number): MixTokenizer {
  const id = (w: string) => {
    let h = 2166136261;
    for (let i = 0; i < w.length; i++) h = Math.imul(h ^ w.charCodeAt(i), 16777619) >>> 0;
    return h % (vocab - 1);
  };
  return {
    vocabSize: vocab,
    eotId: vocab - 1,
    sha256: `bench-word-tokenizer-${vocab}`,
    // The mix stage streams documents (an async iterable); `for await` takes plain arrays too.
    async *encodeAll(texts: AsyncIterable<string> | Iterable<string>) {
      for await (const t of texts) yield t.toLowerCase().split(/\s+/).filter(Boolean).map(id);
    },
  };
}
