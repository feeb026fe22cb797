/**
 * The document record shared by every stage (see docs/design.md). Field names follow Hugging Face datasets
 * conventions so files load with `datasets.load_dataset("json")`.
 */
export interface DocMeta {
  /** Domain or genre, e.g. "news"; test sets are split per domain. */
  domain?: string;
  /** For synthetic documents: the natural document (or chunk) it was generated from. */
  parent?: string;
  generator?: { backend: string; model: string; params?: Record<string, unknown> };
  prompt?: { style: string; version: string; sha256: string };
  usage?: { prompt_tokens: number; completion_tokens: number };
  [key: string]: unknown;
}

export interface Doc {
  id: string;
  text: string;
  /** "natural", "hq", "qa", "txbk" or a custom style name. */
  source: string;
  meta?: DocMeta;
}
