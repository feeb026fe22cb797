import { existsSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { writeJsonAtomic } from "../util/atomic.js";
import { jsonFileReader, readJsonFile } from "../util/json.js";

/**
 * The mix stage's artifacts, each with one schema and one read/write pair (the stages after it,
 * e.g. the trainer and the study, read them through these):
 * - `mixtures/<id>/manifest.json`: what a token shard holds and how it was made;
 * - `tokens/test/manifest.json`: the held-out test sets, tokenized once and shared by every run;
 * - `tokens/sources/<name>-<key>.json`: the index of a tokenized source (the token cache).
 * Objects are loose: a field added by a newer writer survives a read/modify/write by an older one.
 */
const Dtype = z.enum(["uint16", "uint32"]);
const Count = z.number().int().min(0);

export const MixtureSourceStatsSchema = z.looseObject({
  /** Source name: "natural", "hq", "qa", "txbk" or custom, optionally with a generator suffix. */
  name: z.string().min(1),
  /** Target share of tokens (0..1). */
  targetShare: z.number().min(0).max(1),
  /** Tokens realised in the shard (end-of-text separators counted with the document they follow). */
  tokens: Count,
  documents: Count,
  /** How many passes over the source were needed (1 = no repetition). */
  epochs: Count,
  /** Path of the source documents, relative to the workspace. */
  path: z.string().optional(),
  /** Non-empty documents the source holds. */
  availableDocuments: Count.optional(),
  /** sha256 over the source's file names and bytes. */
  contentSha256: z.string().optional(),
});
export type MixtureSourceStats = z.infer<typeof MixtureSourceStatsSchema>;

export const MixtureManifestSchema = z.looseObject({
  id: z.string().min(1),
  file: z.literal("tokens.bin"),
  dtype: Dtype,
  vocabSize: z.number().int().positive(),
  eotId: Count,
  totalTokens: z.number().int().positive(),
  seed: z.number().int(),
  tokenizerSha256: z.string(),
  sources: z.array(MixtureSourceStatsSchema).min(1),
  createdBy: z.string(),
  /** Hash of everything that determines the bytes of tokens.bin; a rerun with the same hash skips. */
  configHash: z.string().optional(),
  allowRepeat: z.boolean().optional(),
  /** Mixtures with the same orderKey (sources, shares, seed) are nested: the smaller is a prefix. */
  orderKey: z.string().optional(),
  /**
   * The mixture family: mixtures that differ only in their total (D) share it, e.g. "hq-33-demo-s1" for
   * hq-33-demo-s1-d8k. Read it here instead of parsing ids.
   */
  family: z.string().min(1).optional(),
  /** True for the shard the study trains its small generator model on (not a sweep mixture). */
  generatorTraining: z.boolean().optional(),
});
export type MixtureManifest = z.infer<typeof MixtureManifestSchema>;

export const TestSetManifestSchema = z.looseObject({
  dtype: Dtype,
  vocabSize: z.number().int().positive(),
  eotId: Count,
  tokenizerSha256: z.string(),
  domains: z.array(
    z.looseObject({ name: z.string().min(1), file: z.string().min(1), tokens: Count, documents: Count }),
  ),
  /** Hash of the tokenizer and test files; a rerun with the same hash skips. */
  configHash: z.string().optional(),
  /** Test files per domain, relative to the workspace. */
  sources: z.record(z.string(), z.string()).optional(),
});
export type TestSetManifest = z.infer<typeof TestSetManifestSchema>;

function readManifest<T>(path: string, schema: z.ZodType<T>, what: string): T {
  return readJsonFile(path, schema, {
    code: "BAD_MANIFEST",
    what: `a ${what}`,
    hint: "rebuild it (synthmix mix build / sweep run rewrite it)",
  });
}

/** `<dir>/manifest.json` of a mixture folder, validated. */
export function readMixtureManifest(dir: string): MixtureManifest {
  return readManifest(join(dir, "manifest.json"), MixtureManifestSchema, "mixture manifest");
}

/** `read(dir)` if the folder holds a readable, valid manifest (for skip checks), else undefined. */
function tryRead<T>(dir: string, read: (dir: string) => T): T | undefined {
  if (!existsSync(join(dir, "manifest.json"))) return undefined;
  try {
    return read(dir);
  } catch {
    return undefined;
  }
}

/** The manifest if the folder holds a readable, valid one (for skip checks), else undefined. */
export function tryReadMixtureManifest(dir: string): MixtureManifest | undefined {
  return tryRead(dir, readMixtureManifest);
}

export function writeMixtureManifest(dir: string, manifest: MixtureManifest): void {
  writeJsonAtomic(join(dir, "manifest.json"), MixtureManifestSchema.parse(manifest));
}

/** `tokens/test/manifest.json` (or any test-set folder), validated. */
export function readTestSetManifest(dir: string): TestSetManifest {
  return readManifest(join(dir, "manifest.json"), TestSetManifestSchema, "test-set manifest");
}

export function tryReadTestSetManifest(dir: string): TestSetManifest | undefined {
  return tryRead(dir, readTestSetManifest);
}

export function writeTestSetManifest(dir: string, manifest: TestSetManifest): void {
  writeJsonAtomic(join(dir, "manifest.json"), TestSetManifestSchema.parse(manifest));
}

/**
 * `<ws>/tokens/sources/<name>-<key>.json`: the index of a tokenized source's cache, written last (its
 * presence marks the `.bin` and `.lens.bin` next to it complete). Exported for the stages after mix that
 * read the caches (analyze), so none re-declares it.
 */
export const SourceCacheIndexSchema = z.object({
  version: z.literal(1),
  source: z.string(),
  files: z.array(z.string()),
  contentSha256: z.string(),
  tokenizerSha256: z.string(),
  dtype: Dtype,
  documents: Count,
  tokens: Count,
  skippedEmpty: Count,
});
export type SourceCacheIndex = z.infer<typeof SourceCacheIndexSchema>;

/** Read and validate a source cache index (mix's one reader of it). */
export const readSourceCacheIndex: (path: string) => SourceCacheIndex = jsonFileReader(
  SourceCacheIndexSchema,
  {
    code: "BAD_SOURCE_CACHE",
    what: "a token cache index",
    hint: "the token cache is damaged: delete it (tokens/sources/ is a cache; the next mix build rebuilds it)",
  },
);
