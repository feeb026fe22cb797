import { z } from "zod";
import { IdSchema } from "../util/ids.js";
import type { ImportOptions } from "./import.js";

/**
 * The corpus import options, validated with zod so errors name the key path, holding every default once:
 * the CLI (`synthmix corpus import`), importCorpus and a config file's `corpus:` section (the study config
 * can embed this schema) all read their defaults from here. Field names match ImportOptions;
 * `toImportOptions` adds the workspace.
 *
 * testBy defaults to "group" everywhere (the CLI used "none", the study "group"): a mixture study reads
 * the loss per domain, and "group" falls back to the single "all" set for documents without a group or
 * domain, so it is never coarser than "none".
 */
export const corpusConfigSchema = z
  .object({
    from: z
      .union([
        z.string().min(1),
        z.object({
          kind: z.enum(["brown", "jsonl", "parquet", "text", "warc", "dir"]).optional(),
          path: z.string().min(1),
        }),
      ])
      .default("brown"),
    textField: z.string().default("text"),
    idField: z.string().default("id"),
    name: IdSchema.optional(),
    source: z.string().optional(),
    skipBadRecords: z.boolean().default(false),
    testFraction: z.number().min(0).max(1).default(0.1),
    testBy: z.enum(["group", "domain", "none"]).default("group"),
    minTestDocs: z.number().int().min(0).default(1),
    seed: z.number().int().default(1),
    normalize: z.enum(["NFC", "NFKC", "none"]).default("NFC"),
    whitespace: z.boolean().default(true),
    dedup: z.boolean().default(true),
    nearDedup: z
      .union([
        z.number().min(0).max(1),
        z.object({
          threshold: z.number().min(0).max(1),
          numPerm: z.number().int().min(1).optional(),
          ngram: z.number().int().min(1).optional(),
          bands: z.number().int().min(1).optional(),
          seed: z.number().int().optional(),
        }),
      ])
      .optional(),
    minChars: z.number().int().min(0).optional(),
    maxChars: z.number().int().min(0).optional(),
    minWords: z.number().int().min(0).optional(),
    maxWords: z.number().int().min(0).optional(),
    maxDocs: z.number().int().min(1).optional(),
  })
  .strict();

export type CorpusConfig = z.input<typeof corpusConfigSchema>;

/** Every default of the corpus import, from the schema (the one place they are written). */
export const CORPUS_DEFAULTS = corpusConfigSchema.parse({});

export function toImportOptions(cfg: CorpusConfig, workspace: string): ImportOptions {
  return { ...corpusConfigSchema.parse(cfg), workspace };
}
