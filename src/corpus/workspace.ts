import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { SynthmixError } from "../util/errors.js";
import { checkId } from "../util/ids.js";
import { readJsonlDocs } from "./readers/jsonl.js";
import type { Doc } from "./types.js";

export interface TextStats {
  docs: number;
  chars: number;
  words: number;
}

export interface SplitStats extends TextStats {
  byDomain: Record<string, TextStats>;
}

/** `<ws>/corpus/<name>/stats.json`; its presence marks a complete corpus. */
export interface CorpusStats {
  version: 1;
  name: string;
  /** Hash of `config`: a rerun with the same hash and complete output is a no-op. */
  configHash: string;
  config: Record<string, unknown>;
  seed: number;
  /** Documents read from the source (after skipping bad records, before cleaning). */
  read: number;
  badRecords: number;
  /** The first few bad-record messages (file:line: reason). */
  badRecordSamples: string[];
  /** Files of a folder that were not read, with the reason (absent in imports made before it existed). */
  skippedFiles?: string[];
  dropped: Record<string, number>;
  train: SplitStats;
  /** Held-out sets by name (group, domain or "all"); the file is test/<name>.jsonl. */
  test: Record<string, SplitStats>;
  createdAt: string;
  elapsedSec: number;
  /** Set (not stored) when importCorpus found this corpus already complete and did nothing. */
  reused?: boolean;
}

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
  return JSON.parse(readFileSync(p, "utf8")) as CorpusStats;
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
  if (split === "train") return readJsonlDocs(join(corpusDir(ws, name), "train.jsonl"));
  const domains = listTestDomains(ws, name);
  if (!domains.includes(split.test)) {
    throw new SynthmixError("NO_TEST_SET", `corpus "${name}" has no test set "${split.test}"`, {
      hint: `available: ${domains.join(", ") || "none"}`,
    });
  }
  return readJsonlDocs(join(corpusDir(ws, name), "test", `${split.test}.jsonl`));
}
