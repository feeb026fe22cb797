/**
 * `<workspace>/results/runs.json` = `{ "rows": RunResultRow[] }`: one row per finished run and test
 * domain (plus domain "all" = mean over domains). Written by the sweep, read by fit/analyze/report;
 * `synthmix sweep results --format csv|json` prints the same rows.
 */
export interface RunResultRow {
  runId: string;
  /** Named ladder size (e.g. "s3"), or "custom". */
  modelName: string;
  /** N: parameters excluding embeddings (DESIGN.md units). */
  nonEmbeddingParams: number;
  totalParams: number;
  /** D: training tokens. */
  tokens: number;
  /** Mixture id, e.g. "natural", "hq-33", "qa-100". */
  mixture: string;
  /** Synthetic style mixed in ("hq", "qa", "txbk", custom) or "none" for natural-only. */
  synthetic: string;
  /** Synthetic share of training tokens, 0..1. */
  ratio: number;
  /** Generator name for synthetic data ("" for natural-only). */
  generator: string;
  seed: number;
  /** Test domain (e.g. "news") or "all" (mean over domains). */
  domain: string;
  /** Final test loss, nats per token. */
  loss: number;
  flops: number;
  tokensPerSec: number;
  wallSec: number;
}

export interface RunResults {
  rows: RunResultRow[];
}
