import type { TokenDtype } from "../util/tokenfile.js";

/** `mixtures/<id>/manifest.json`: what a token shard holds and how it was made. */
export interface MixtureSourceStats {
  /** Source name: "natural", "hq", "qa", "txbk" or custom, optionally with a generator suffix. */
  name: string;
  /** Target share of tokens (0..1). */
  targetShare: number;
  /** Tokens realised in the shard (end-of-text separators counted with the document they follow). */
  tokens: number;
  documents: number;
  /** How many passes over the source were needed (1 = no repetition). */
  epochs: number;
  /** Path of the source documents, relative to the workspace. */
  path?: string;
  /** Non-empty documents the source holds. */
  availableDocuments?: number;
  /** sha256 over the source's file names and bytes. */
  contentSha256?: string;
}

export interface MixtureManifest {
  id: string;
  file: "tokens.bin";
  dtype: TokenDtype;
  vocabSize: number;
  eotId: number;
  totalTokens: number;
  seed: number;
  tokenizerSha256: string;
  sources: MixtureSourceStats[];
  createdBy: string;
  /** Hash of everything that determines the bytes of tokens.bin; a rerun with the same hash skips. */
  configHash?: string;
  allowRepeat?: boolean;
  /** Mixtures with the same orderKey (sources, shares, seed) are nested: the smaller is a prefix. */
  orderKey?: string;
}

/**
 * `tokens/test/manifest.json`: held-out test sets, tokenized once and shared by every run. Each domain
 * is one raw token file `tokens/test/<domain>.bin`.
 */
export interface TestSetManifest {
  dtype: TokenDtype;
  vocabSize: number;
  eotId: number;
  tokenizerSha256: string;
  domains: { name: string; file: string; tokens: number; documents: number }[];
  /** Hash of the tokenizer and test files; a rerun with the same hash skips. */
  configHash?: string;
  /** Test files per domain, relative to the workspace. */
  sources?: Record<string, string>;
}
