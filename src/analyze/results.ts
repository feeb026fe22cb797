/**
 * `<ws>/results/unigram.json`, written by `synthmix analyze unigram` (src/analyze/) and read by the report,
 * as a zod schema with one read/write pair. Token unigram distributions are add-k smoothed over the full
 * vocabulary (k = `smoothingK`); all divergences are in nats. Version 2: comparisons at an equal token
 * count per source (`equalTokens`), a noise floor per test set, the full-size KL kept beside.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { writeJsonAtomic } from "../util/atomic.js";
import { SynthmixError } from "../util/errors.js";
import { readJsonFile } from "../util/json.js";

/** JSON has no NaN: JSON.stringify writes null, so numbers that can be NaN read back null -> NaN. */
const num = z.union([z.number(), z.null()]).transform((v) => (v === null ? Number.NaN : v));

/** A training-side token distribution: a mixture shard or a single source's token file. */
export const UnigramSourceSchema = z.object({
  /** Mixture id or source name. */
  id: z.string(),
  kind: z.enum(["mixture", "source"]),
  /** Path relative to the workspace. */
  path: z.string(),
  /** Tokens in the file (the comparison uses `equalTokens` of them). */
  tokens: z.number(),
  /** Distinct token ids occurring at least once. */
  types: z.number(),
});
export type UnigramSource = z.infer<typeof UnigramSourceSchema>;

export const UnigramTestSetSchema = z.object({
  domain: z.string(),
  path: z.string(),
  tokens: z.number(),
  types: z.number(),
});
export type UnigramTestSet = z.infer<typeof UnigramTestSetSchema>;

/** A test token that a source under-represents, ranked by its share of KL(test || source). */
export const BlindSpotSchema = z.object({
  id: z.number(),
  /** Display string from the tokenizer (`tokenString(id)`), or null when no tokenizer was available. */
  token: z.string().nullable(),
  testCount: z.number(),
  sourceCount: z.number(),
  /** Smoothed probabilities. */
  pTest: z.number(),
  pSource: z.number(),
  /** pTest * log(pTest / pSource): this token's term of KL(test || source). */
  contribution: z.number(),
});
export type BlindSpot = z.infer<typeof BlindSpotSchema>;

/** Divergence and coverage of one test set against one source. */
export const UnigramComparisonSchema = z.object({
  source: z.string(),
  test: z.string(),
  /** KL(test || source) = sum p_test log(p_test / p_source). */
  klTestSource: num,
  /** KL(source || test). */
  klSourceTest: num,
  /** Jensen-Shannon divergence (nats, in [0, ln 2]). */
  js: num,
  /** Share of test tokens (occurrences) whose type occurs in the source. */
  tokenCoverage: num,
  /** Share of test types (distinct ids) that occur in the source. */
  typeCoverage: num,
  /** Top blind spots (positive contributions only), largest contribution first. */
  blindSpots: z.array(BlindSpotSchema),
  /** Share of test tokens that are one of `blindSpots`. */
  blindSpotTokenShare: z.number(),
  /** KL(test || source) over the whole source file (depends on its size; for reference only). */
  klTestSourceFullSize: num.optional(),
});
export type UnigramComparison = z.infer<typeof UnigramComparisonSchema>;

/** Per-token loss of a trained model on a test set, split into blind-spot tokens vs the rest. */
export const LossSplitSchema = z.object({
  runId: z.string(),
  source: z.string(),
  test: z.string(),
  blindSpot: z.object({ tokens: z.number(), meanLoss: num }),
  rest: z.object({ tokens: z.number(), meanLoss: num }),
});
export type LossSplit = z.infer<typeof LossSplitSchema>;

/** KL between two random halves of a test set at the comparison size: differences below it are noise. */
export const NoiseFloorSchema = z.object({ test: z.string(), tokens: z.number(), kl: z.number() });
export type NoiseFloor = z.infer<typeof NoiseFloorSchema>;

/** `<ws>/results/unigram.json`. */
export const UnigramFileSchema = z.object({
  version: z.literal(2),
  createdBy: z.string(),
  createdAt: z.string(),
  vocabSize: z.number(),
  /** Add-k smoothing constant, applied to every vocabulary id. */
  smoothingK: z.number(),
  /** Blind spots kept per comparison. */
  topK: z.number(),
  tokenizerSha256: z.string().nullable(),
  /** Every source is compared on this many tokens (seeded subsample to the smallest source). */
  equalTokens: z.number(),
  /** Seed of the subsampling. */
  seed: z.number(),
  sources: z.array(UnigramSourceSchema),
  tests: z.array(UnigramTestSetSchema),
  comparisons: z.array(UnigramComparisonSchema),
  noiseFloors: z.array(NoiseFloorSchema),
  /** Present when per-token losses were supplied (by `synthmix analyze unigram --run`, or the study). */
  lossSplits: z.array(LossSplitSchema).optional(),
});
export type UnigramFile = z.infer<typeof UnigramFileSchema>;

export function writeUnigramFile(ws: string, f: UnigramFile): void {
  writeJsonAtomic(join(ws, "results", "unigram.json"), f);
}

/** Read `<ws>/results/unigram.json`; undefined when absent and not `required`. */
export function readUnigramFile(ws: string, required = true): UnigramFile | undefined {
  const path = join(ws, "results", "unigram.json");
  if (!existsSync(path)) {
    if (!required) return undefined;
    throw new SynthmixError("NO_UNIGRAM", `${path} does not exist`, { hint: "run synthmix analyze unigram" });
  }
  return readJsonFile(path, UnigramFileSchema, {
    code: "BAD_UNIGRAM",
    what: "the unigram analysis",
    hint: "rerun synthmix analyze unigram with this version of synthmix",
  });
}
