import { z } from "zod";
import type { ImportOptions } from "./import.js";

/**
 * The corpus section of a config file (e.g. study.yaml `corpus:`), validated with zod so errors name the
 * key path. Field names match ImportOptions; `toImportOptions` adds the workspace.
 */
export const corpusConfigSchema = z
  .object({
    from: z.union([
      z.string().min(1),
      z.object({
        kind: z.enum(["brown", "jsonl", "parquet", "text", "warc", "dir"]).optional(),
        path: z.string().min(1),
      }),
    ]),
    name: z
      .string()
      .regex(/^[A-Za-z0-9._-]+$/, "letters, digits, '.', '_' or '-' only")
      .optional(),
    textField: z.string().optional(),
    idField: z.string().optional(),
    skipBadRecords: z.boolean().optional(),
    testFraction: z.number().min(0).max(1).optional(),
    testBy: z.enum(["group", "domain", "none"]).optional(),
    minTestDocs: z.number().int().min(0).optional(),
    seed: z.number().int().optional(),
    normalize: z.enum(["NFC", "NFKC", "none"]).optional(),
    whitespace: z.boolean().optional(),
    dedup: z.boolean().optional(),
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

export type CorpusConfig = z.infer<typeof corpusConfigSchema>;

export function toImportOptions(cfg: CorpusConfig, workspace: string): ImportOptions {
  return { ...cfg, workspace };
}
