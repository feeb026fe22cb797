import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { SynthmixError } from "../util/errors.js";
import { checkId } from "../util/ids.js";
import { jsonFileReader } from "../util/json.js";
import { readDocLines } from "./docs.js";
import type { Doc } from "./types.js";

const TextStatsSchema = z.object({ docs: z.number(), chars: z.number(), words: z.number() });
export type TextStats = z.infer<typeof TextStatsSchema>;

const SplitStatsSchema = TextStatsSchema.extend({ byDomain: z.record(z.string(), TextStatsSchema) });
export type SplitStats = z.infer<typeof SplitStatsSchema>;

/** `<ws>/corpus/<name>/stats.json`; its presence marks a complete corpus. */
export const CorpusStatsSchema = z.object({
  version: z.literal(1),
  name: z.string(),
  /** Hash of `config`: a rerun with the same hash and complete output is a no-op. */
  configHash: z.string(),
  config: z.record(z.string(), z.unknown()),
  seed: z.number(),
  /** Documents read from the source (after skipping bad records, before cleaning). */
  read: z.number(),
  badRecords: z.number(),
  /** The first few bad-record messages (file:line: reason). */
  badRecordSamples: z.array(z.string()),
  /** Files of a folder that were not read, with the reason (absent in imports made before it existed). */
  skippedFiles: z.array(z.string()).optional(),
  dropped: z.record(z.string(), z.number()),
  train: SplitStatsSchema,
  /** Held-out sets by name (group, domain or "all"); the file is test/<name>.jsonl. */
  test: z.record(z.string(), SplitStatsSchema),
  createdAt: z.string(),
  elapsedSec: z.number(),
  /** Set (not stored) when importCorpus found this corpus already complete and did nothing. */
  reused: z.boolean().optional(),
});
export type CorpusStats = z.infer<typeof CorpusStatsSchema>;

/** Read and validate a corpus's stats.json (the corpus stage's one reader of it). */
export const readStatsFile: (path: string) => CorpusStats = jsonFileReader(CorpusStatsSchema, {
  code: "BAD_CORPUS_STATS",
  what: "corpus stats (stats.json)",
  hint: "the corpus folder is damaged or from another version: import it again (synthmix corpus import)",
});

export function corpusDir(ws: string, name: string): string {
  return join(ws, "corpus", checkId(name, "corpus name"));
}

export function readCorpusStats(ws: string, name: string): CorpusStats {
  const p = join(corpusDir(ws, name), "stats.json");
  if (!existsSync(p)) {
    const have = listCorpora(ws);
    throw new SynthmixError("NO_CORPUS", `${p}: no complete corpus "${name}" in ${ws}`, {
      hint: have.length
        ? `available: ${have.join(", ")}`
        : "import one with `synthmix corpus import --from <source> --out <workspace>`",
    });
  }
  return readStatsFile(p);
}

/** Names of the complete corpora in a workspace. */
export function listCorpora(ws: string): string[] {
  const root = join(ws, "corpus");
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((n) => !n.startsWith(".") && existsSync(join(root, n, "stats.json")))
    .sort();
}

/** Names of the held-out test sets of a corpus (file names under test/ without .jsonl). */
export function listTestDomains(ws: string, name: string): string[] {
  readCorpusStats(ws, name);
  const dir = join(corpusDir(ws, name), "test");
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith(".jsonl"))
    .map((f) => f.slice(0, -".jsonl".length))
    .sort();
}

/** Stream the train split or one held-out test set of an imported corpus. */
export function readCorpusSplit(
  ws: string,
  name: string,
  split: "train" | { test: string },
): AsyncIterable<Doc> {
  readCorpusStats(ws, name);
  if (split === "train") return docsOf(join(corpusDir(ws, name), "train.jsonl"));
  const domains = listTestDomains(ws, name);
  if (!domains.includes(split.test)) {
    throw new SynthmixError("NO_TEST_SET", `corpus "${name}" has no test set "${split.test}"`, {
      hint: `available: ${domains.join(", ") || "none"}`,
    });
  }
  return docsOf(join(corpusDir(ws, name), "test", `${split.test}.jsonl`));
}

async function* docsOf(path: string): AsyncGenerator<Doc> {
  for await (const { doc } of readDocLines(path)) yield doc;
}
