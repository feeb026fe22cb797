/**
 * `<ws>/results/unigram.json`, written by `synthmix analyze unigram` (src/analyze/) and read by the report.
 * Token unigram distributions are add-k smoothed over the full vocabulary (k = `smoothingK`); all
 * divergences are in nats. These types are a cross-stage contract: fields may be added, not changed.
 */

/** A training-side token distribution: a mixture shard or a single source's token file. */
export interface UnigramSource {
  /** Mixture id or source name. */
  id: string;
  kind: "mixture" | "source";
  /** Path relative to the workspace. */
  path: string;
  tokens: number;
  /** Distinct token ids occurring at least once. */
  types: number;
}

export interface UnigramTestSet {
  domain: string;
  path: string;
  tokens: number;
  types: number;
}

/** A test token that a source under-represents, ranked by its share of KL(test || source). */
export interface BlindSpot {
  id: number;
  /** Display string from the tokenizer (`tokenString(id)`), or null when no tokenizer was available. */
  token: string | null;
  testCount: number;
  sourceCount: number;
  /** Smoothed probabilities. */
  pTest: number;
  pSource: number;
  /** pTest * log(pTest / pSource): this token's term of KL(test || source). */
  contribution: number;
}

/** Divergence and coverage of one test set against one source. */
export interface UnigramComparison {
  source: string;
  test: string;
  /** KL(test || source) = sum p_test log(p_test / p_source). */
  klTestSource: number;
  /** KL(source || test). */
  klSourceTest: number;
  /** Jensen-Shannon divergence (nats, in [0, ln 2]). */
  js: number;
  /** Share of test tokens (occurrences) whose type occurs in the source. */
  tokenCoverage: number;
  /** Share of test types (distinct ids) that occur in the source. */
  typeCoverage: number;
  /** Top blind spots (positive contributions only), largest contribution first. */
  blindSpots: BlindSpot[];
  /** Share of test tokens that are one of `blindSpots`. */
  blindSpotTokenShare: number;
}

/** Per-token loss of a trained model on a test set, split into blind-spot tokens vs the rest. */
export interface LossSplit {
  runId: string;
  source: string;
  test: string;
  blindSpot: { tokens: number; meanLoss: number };
  rest: { tokens: number; meanLoss: number };
}

/** `<ws>/results/unigram.json`. */
export interface UnigramFile {
  version: 1;
  createdBy: string;
  createdAt: string;
  vocabSize: number;
  /** Add-k smoothing constant, applied to every vocabulary id. */
  smoothingK: number;
  /** Blind spots kept per comparison. */
  topK: number;
  tokenizerSha256: string | null;
  sources: UnigramSource[];
  tests: UnigramTestSet[];
  comparisons: UnigramComparison[];
  /** Present when per-token losses were supplied (by the report or the study). */
  lossSplits?: LossSplit[];
}
