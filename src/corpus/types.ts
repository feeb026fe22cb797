import { z } from "zod";

/**
 * The document record shared by every stage (see docs/design.md). Field names follow Hugging Face datasets
 * conventions so files load with `datasets.load_dataset("json")`.
 *
 * `meta` is open: an import copies every field of the source record into it, so the keys below are what
 * synthmix itself writes, and a key that came from a user's file may hold any JSON value. Readers of a
 * key check its type where they use it (the schema checks only that `meta` is an object).
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

const isObject = (v: unknown): boolean => v !== null && typeof v === "object" && !Array.isArray(v);

/**
 * The one schema of a `Doc` line on disk (corpus splits, synthetic part files, mixture sources). A record
 * without `source` is natural text, as the importer assumes; unknown top-level keys are kept out.
 */
export const DocSchema = z.object({
  id: z.string(),
  text: z.string(),
  source: z.string().default("natural"),
  // z.custom: `meta` is the source's open fields (see DocMeta); only its being an object is the contract.
  meta: z.custom<DocMeta>(isObject, { message: "expected an object" }).optional(),
}) satisfies z.ZodType<Doc, unknown>;

/**
 * The part of a Doc that text-only consumers need (the tokenizer's inputs, a mixture source): any JSONL
 * file whose lines are objects with a string `text` is accepted, as it always was.
 */
export const DocTextSchema = DocSchema.pick({ text: true });
