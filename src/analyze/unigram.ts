import { SynthmixError } from "../util/errors.js";
import type { BlindSpot, LossSplit, UnigramComparison } from "./results.js";

/** Raw token counts over a vocabulary. */
export interface UnigramCounts {
  vocabSize: number;
  counts: Float64Array;
  total: number;
  /** Distinct ids with a non-zero count. */
  types: number;
}

/** Count token ids (Uint16Array / Uint32Array / number[]); ids outside [0, vocabSize) are an error. */
export function countTokens(ids: ArrayLike<number>, vocabSize: number, label = "tokens"): UnigramCounts {
  const counts = new Float64Array(vocabSize);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (!(id >= 0 && id < vocabSize) || !Number.isInteger(id)) {
      throw new SynthmixError(
        "BAD_TOKEN_ID",
        `${label}: token ${i} has id ${id}, outside the vocabulary of ${vocabSize}`,
        {
          hint: "the token file was probably made with another tokenizer; rebuild it (synthmix mix)",
        },
      );
    }
    counts[id]++;
  }
  let types = 0;
  for (let v = 0; v < vocabSize; v++) if (counts[v] > 0) types++;
  return { vocabSize, counts, total: ids.length, types };
}

/**
 * Add-k smoothed probabilities over the full vocabulary: p(v) = (c(v) + k) / (total + k V). With k > 0
 * every id has mass, so KL(test || source) stays finite where the source never saw a test token.
 */
export function smoothedProbs(c: UnigramCounts, k = 0.5): Float64Array {
  if (!(k >= 0)) throw new SynthmixError("BAD_OPTION", `smoothing k must be >= 0, got ${k}`);
  const denom = c.total + k * c.vocabSize;
  if (denom <= 0)
    throw new SynthmixError("EMPTY_TOKENS", "cannot build a distribution from zero tokens with k = 0");
  const p = new Float64Array(c.vocabSize);
  for (let v = 0; v < c.vocabSize; v++) p[v] = (c.counts[v] + k) / denom;
  return p;
}

/** KL(p || q) in nats; terms with p = 0 contribute 0, and p > 0 with q = 0 gives Infinity. */
export function klDivergence(p: ArrayLike<number>, q: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < p.length; i++) {
    if (p[i] > 0) s += q[i] > 0 ? p[i] * Math.log(p[i] / q[i]) : Number.POSITIVE_INFINITY;
  }
  return s;
}

/** Jensen-Shannon divergence in nats: (KL(p||m) + KL(q||m)) / 2 with m = (p + q) / 2; in [0, ln 2]. */
export function jsDivergence(p: ArrayLike<number>, q: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < p.length; i++) {
    const m = 0.5 * (p[i] + q[i]);
    if (p[i] > 0) s += 0.5 * p[i] * Math.log(p[i] / m);
    if (q[i] > 0) s += 0.5 * q[i] * Math.log(q[i] / m);
  }
  return s;
}

/** Share of test tokens whose type occurs in the source, and share of test types that occur there. */
export function coverage(
  test: UnigramCounts,
  source: UnigramCounts,
): { tokenCoverage: number; typeCoverage: number } {
  let tok = 0;
  let typ = 0;
  for (let v = 0; v < test.vocabSize; v++) {
    if (test.counts[v] > 0 && source.counts[v] > 0) {
      tok += test.counts[v];
      typ++;
    }
  }
  return {
    tokenCoverage: test.total > 0 ? tok / test.total : Number.NaN,
    typeCoverage: test.types > 0 ? typ / test.types : Number.NaN,
  };
}

export interface CompareOptions {
  /** Add-k smoothing (default 0.5). */
  k?: number;
  /** Blind spots to keep (default 50). */
  topK?: number;
  tokenString?: (id: number) => string;
  sourceName?: string;
  testName?: string;
}

/**
 * Compare a test set with a training source: KL both ways, JS, coverage, and the blind spots (test tokens
 * ranked by their term p log(p/q) of KL(test || source); only positive terms, i.e. under-represented).
 */
export function compareUnigrams(
  test: UnigramCounts,
  source: UnigramCounts,
  opts: CompareOptions = {},
): UnigramComparison {
  if (test.vocabSize !== source.vocabSize) {
    throw new SynthmixError(
      "VOCAB_MISMATCH",
      `vocabulary sizes differ (test ${test.vocabSize}, source ${source.vocabSize}): the token files come from different tokenizers`,
    );
  }
  const k = opts.k ?? 0.5;
  const topK = opts.topK ?? 50;
  const p = smoothedProbs(test, k);
  const q = smoothedProbs(source, k);
  const contrib: { id: number; c: number }[] = [];
  for (let v = 0; v < p.length; v++) {
    if (test.counts[v] === 0) continue;
    const c = p[v] * Math.log(p[v] / q[v]);
    if (c > 0) contrib.push({ id: v, c });
  }
  contrib.sort((a, b) => b.c - a.c || a.id - b.id);
  const blindSpots: BlindSpot[] = contrib.slice(0, topK).map(({ id, c }) => ({
    id,
    token: opts.tokenString ? safeTokenString(opts.tokenString, id) : null,
    testCount: test.counts[id],
    sourceCount: source.counts[id],
    pTest: p[id],
    pSource: q[id],
    contribution: c,
  }));
  const blindTokens = blindSpots.reduce((s, b) => s + b.testCount, 0);
  return {
    source: opts.sourceName ?? "source",
    test: opts.testName ?? "test",
    klTestSource: klDivergence(p, q),
    klSourceTest: klDivergence(q, p),
    js: jsDivergence(p, q),
    ...coverage(test, source),
    blindSpots,
    blindSpotTokenShare: test.total > 0 ? blindTokens / test.total : 0,
  };
}

function safeTokenString(fn: (id: number) => string, id: number): string | null {
  try {
    return fn(id);
  } catch {
    return null;
  }
}

/**
 * Per-token loss of a trained model split into blind-spot targets vs the rest: `losses[i]` is the loss
 * (nats) of predicting `targets[i]`. Shows whether the model pays for what its data under-represents.
 */
export function splitLossByBlindSpots(
  losses: ArrayLike<number>,
  targets: ArrayLike<number>,
  blindSpots: Iterable<number> | BlindSpot[],
  meta: { runId?: string; source?: string; test?: string } = {},
): LossSplit {
  if (losses.length !== targets.length) {
    throw new SynthmixError(
      "BAD_LOSSES",
      `${losses.length} losses for ${targets.length} target ids; they must pair up`,
    );
  }
  const set = new Set<number>();
  for (const b of blindSpots as Iterable<number | BlindSpot>) set.add(typeof b === "number" ? b : b.id);
  let nb = 0;
  let sb = 0;
  let nr = 0;
  let sr = 0;
  for (let i = 0; i < losses.length; i++) {
    if (set.has(targets[i])) {
      nb++;
      sb += losses[i];
    } else {
      nr++;
      sr += losses[i];
    }
  }
  return {
    runId: meta.runId ?? "",
    source: meta.source ?? "",
    test: meta.test ?? "",
    blindSpot: { tokens: nb, meanLoss: nb > 0 ? sb / nb : Number.NaN },
    rest: { tokens: nr, meanLoss: nr > 0 ? sr / nr : Number.NaN },
  };
}
