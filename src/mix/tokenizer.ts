import { SynthmixError } from "../util/errors.js";

/** What the mix stage needs from the study tokenizer (src/tokenizer): identity, ids, and batch encoding. */
export interface MixTokenizer {
  vocabSize: number;
  eotId: number;
  /** sha256 of the tokenizer file: token caches and manifests are keyed by it. */
  sha256: string;
  /** Encode documents in order (no end-of-text appended); may use several threads. */
  encodeAll(texts: string[]): AsyncIterable<number[]>;
}

interface TokenizerModule {
  Tokenizer: {
    fromFile(path: string): unknown;
  };
  encodeDocuments(
    tokenizerPath: string,
    texts: string[],
    opts: { threads?: number; appendEot?: boolean },
  ): AsyncIterable<number[]>;
}

interface TokenizerLike {
  vocabSize: number;
  eotId: number;
  sha256: string;
}

/**
 * Load the study tokenizer file as a MixTokenizer. The tokenizer stage is imported lazily so the mix
 * stage (and its tests, which pass their own MixTokenizer) does not pay for it when unused.
 */
export async function loadMixTokenizer(path: string, threads = 2): Promise<MixTokenizer> {
  let mod: TokenizerModule;
  try {
    // A variable specifier: the tokenizer stage is written in parallel and may not exist yet at typecheck.
    const spec = "../tokenizer/index.js";
    mod = (await import(spec)) as TokenizerModule;
  } catch (e) {
    throw new SynthmixError("TOKENIZER", `cannot load the tokenizer module: ${(e as Error).message}`, {
      cause: e,
    });
  }
  const tok = (await mod.Tokenizer.fromFile(path)) as TokenizerLike;
  return {
    vocabSize: tok.vocabSize,
    eotId: tok.eotId,
    sha256: tok.sha256,
    encodeAll: (texts) => mod.encodeDocuments(path, texts, { threads, appendEot: false }),
  };
}
