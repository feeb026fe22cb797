import { SynthmixError } from "../util/errors.js";
import type { ModelConfig } from "./schema.js";

/**
 * The model-size ladder used by sweeps: `s1`..`s8`, one width step per rung.
 *
 * Rule (rung k = 1..8):
 *   d_model = 64*k,  n_layer = k,  n_head = max(2, k)  (head dim 32 for k = 1, 64 for k >= 2)
 * so depth and width grow together (aspect ratio d_model / n_layer = 64, inside the flat optimum of
 * Kaplan et al. 2020) and the non-embedding parameter count grows as
 *   N = n_layer * (12 d^2 + 13 d) + 2 d  ~=  49152 k^3
 * giving s1 ~ 50k, s2 ~ 0.4M, s3 ~ 1.3M, s4 ~ 3.2M, s5 ~ 6.2M, s6 ~ 10.6M, s7 ~ 16.9M, s8 ~ 25M.
 */
export const LADDER = ["s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8"] as const;
export type LadderName = (typeof LADDER)[number];

export function modelConfigFor(name: string, vocabSize: number, contextLength: number): ModelConfig {
  const m = /^s([1-8])$/.exec(name);
  if (!m) {
    throw new SynthmixError("BAD_MODEL_NAME", `unknown model size "${name}"`, {
      hint: `use one of ${LADDER.join(", ")} (d_model = 64*k, n_layer = k)`,
    });
  }
  const k = Number(m[1]);
  return { nLayer: k, dModel: 64 * k, nHead: Math.max(2, k), contextLength, vocabSize };
}

/**
 * Parameter counts. `nonEmbedding` excludes the token and position embeddings (Kaplan et al.); the
 * output projection is tied to the token embedding, so it is not counted twice in `total`.
 */
export function countParams(cfg: ModelConfig): { nonEmbedding: number; total: number } {
  const C = cfg.dModel;
  const perLayer = 2 * C + (3 * C * C + 3 * C) + (C * C + C) + 2 * C + (4 * C * C + 4 * C) + (4 * C * C + C);
  const nonEmbedding = cfg.nLayer * perLayer + 2 * C;
  return { nonEmbedding, total: nonEmbedding + cfg.vocabSize * C + cfg.contextLength * C };
}

/**
 * Training FLOPs for D tokens (Kaplan et al. 2020, Table 1, forward x3 for forward+backward):
 *   flops = 6 * N * D  +  6 * n_layer * n_ctx * d_model * D
 * with N the non-embedding parameters; the second term is the attention score/value products
 * (QK^T and AV over the full context, not halved for causality). Embedding lookups and the tied
 * output projection are excluded, as in the paper, so that C ~ 6ND holds across the ladder.
 */
export function trainingFlops(cfg: ModelConfig, tokens: number): number {
  const N = countParams(cfg).nonEmbedding;
  return 6 * N * tokens + 6 * cfg.nLayer * cfg.contextLength * cfg.dModel * tokens;
}

/**
 * FLOPs actually executed per trained token, including the vocabulary projection (2*V*C forward) that
 * dominates small models; used for "achieved GFLOP/s" in benchmarks:
 *   6 * (N + V*d_model) + 6 * n_layer * n_ctx * d_model
 */
export function executedFlopsPerToken(cfg: ModelConfig): number {
  return trainingFlops(cfg, 1) + 6 * cfg.vocabSize * cfg.dModel;
}
