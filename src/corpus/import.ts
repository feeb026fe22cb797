import { createReadStream, existsSync, mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fsyncDir, replaceDir, writeJsonAtomic } from "../util/atomic.js";
import { type BadRecordError, SynthmixError } from "../util/errors.js";
import { stableHash } from "../util/hash.js";
import { processAlive as alive } from "../util/process.js";
import { Progress } from "../util/progress.js";
import { type CleanOptions, cleanPipeline, countWords } from "./clean.js";
import { CORPUS_DEFAULTS as D } from "./config.js";
import {
  folderFingerprint,
  type ReadOptions,
  readDocuments,
  resolveSource,
  type SourceSpec,
} from "./read.js";
import { planCutoffs, splitScore, type TestBy, testSetKey } from "./split.js";
import type { Doc } from "./types.js";
import { type CorpusStats, corpusDir, readStatsFile, type SplitStats } from "./workspace.js";
import { LineWriter } from "./writer.js";

export interface ImportOptions extends CleanOptions, Omit<ReadOptions, "onBadRecord"> {
  from: string | SourceSpec;
  workspace: string;
  /** Corpus name; default "brown" for Brown, else the source's base name without extensions. */
  name?: string;
  /** Fraction of documents held out per test set; default 0.1. */
  testFraction?: number;
  /** One test set per "group", per "domain", or one "all" set ("none"); default "group" (config.ts). */
  testBy?: TestBy;
  /** Minimum documents per test set (never more than half a set); default 1. */
  minTestDocs?: number;
  /** Seed of the split (and near-dedup); default 1. */
  seed?: number;
  /** Stop after this many documents read (for quick looks at huge sources). */
  maxDocs?: number;
  /** Re-import even if a complete corpus with the same config exists. */
  force?: boolean;
  /** Show progress on stderr (or use this reporter); default silent. */
  progress?: boolean | Progress;
}

export function defaultCorpusName(from: string | SourceSpec): string {
  const p = typeof from === "string" ? from : from.path;
  if (p === "brown") return "brown";
  const base =
    p
      .replace(/[\\/]+$/, "")
      .split(/[\\/]/)
      .pop() ?? "corpus";
  const stem = base
    .replace(/\.(gz|zstd?|jsonl?|ndjson|parquet|warc|wet|arc|txt|md)$/gi, "")
    .replace(/\.(jsonl?|warc|wet)$/i, "");
  // Made to follow the id rule (util/ids.ts): "My Corpus (2024)" -> "My_Corpus_2024".
  const id = stem
    .replace(/[^A-Za-z0-9._-]+/g, "_")
    .replace(/^[^A-Za-z0-9]+/, "")
    .replace(/_+$/, "")
    .slice(0, 128);
  return id || "corpus";
}

/** The options that determine the output; their hash decides whether a rerun can reuse it. */
function importConfig(opts: ImportOptions) {
  const src = resolveSource(opts.from);
  let fingerprint: Record<string, unknown> | undefined;
  if (src.kind !== "brown" && statSync(src.path).isDirectory()) {
    fingerprint = { folder: folderFingerprint(src.path) };
  } else if (src.kind !== "brown") {
    const st = statSync(src.path);
    fingerprint = { size: st.size, mtimeMs: Math.round(st.mtimeMs) };
  }
  return {
    from: { kind: src.kind, path: src.kind === "brown" ? "brown" : resolve(src.path), ...fingerprint },
    textField: opts.textField ?? D.textField,
    idField: opts.idField ?? D.idField,
    source: opts.source ?? "natural",
    skipBadRecords: opts.skipBadRecords ?? D.skipBadRecords,
    normalize: opts.normalize ?? D.normalize,
    whitespace: opts.whitespace ?? D.whitespace,
    dedup: opts.dedup ?? D.dedup,
    nearDedup: opts.nearDedup,
    minChars: opts.minChars,
    maxChars: opts.maxChars,
    minWords: opts.minWords,
    maxWords: opts.maxWords,
    testFraction: opts.testFraction ?? D.testFraction,
    testBy: opts.testBy ?? D.testBy,
    minTestDocs: opts.minTestDocs ?? D.minTestDocs,
    seed: opts.seed ?? D.seed,
    maxDocs: opts.maxDocs,
  };
}

function emptySplit(): SplitStats {
  return { docs: 0, chars: 0, words: 0, byDomain: {} };
}

function addDoc(s: SplitStats, doc: Doc): void {
  const chars = doc.text.length;
  const words = countWords(doc.text);
  const domain = typeof doc.meta?.domain === "string" ? doc.meta.domain : "unknown";
  s.docs++;
  s.chars += chars;
  s.words += words;
  const d = (s.byDomain[domain] ??= { docs: 0, chars: 0, words: 0 });
  d.docs++;
  d.chars += chars;
  d.words += words;
}

/**
 * Import a corpus into `<ws>/corpus/<name>/`: read (streaming), clean, split by document into train and
 * held-out test sets, and write train.jsonl, test/<set>.jsonl and stats.json. Everything is written into a
 * temporary folder that replaces the corpus folder only when complete, so a killed import leaves either
 * the previous state or a complete corpus. A rerun with the same options is a no-op.
 */
export async function importCorpus(opts: ImportOptions): Promise<CorpusStats> {
  const start = Date.now();
  const name = opts.name ?? defaultCorpusName(opts.from);
  const config = importConfig(opts);
  const configHash = stableHash(config);
  const dir = corpusDir(opts.workspace, name);
  const prev = opts.force ? undefined : completeImport(join(dir, "stats.json"), configHash);
  if (prev) return prev;

  const progress =
    opts.progress instanceof Progress
      ? opts.progress
      : new Progress(`corpus ${name}`, { unit: "docs", mode: opts.progress ? undefined : "silent" });
  if (config.from.kind === "brown") progress.setTotal(opts.maxDocs ?? 500);
  const tmp = freshTmpDir(dir, name);
  try {
    const seed = config.seed ?? 1;
    const testBy = config.testBy;
    // Pass 1: read and clean into one staging file, collecting split scores per test set.
    const staged = await stage(opts, { name, seed, testBy, progress, tmp });
    // Pass 2: route each kept document to train or its test set.
    const cutoffs = planCutoffs(staged.scores, config.testFraction as number, config.minTestDocs as number);
    const split = await route(tmp, seed, testBy, cutoffs);
    const stats: CorpusStats = {
      version: 1,
      name,
      configHash,
      config,
      seed,
      read: staged.read,
      badRecords: staged.badRecords,
      badRecordSamples: staged.badRecordSamples,
      skippedFiles: staged.skippedFiles,
      dropped: { ...staged.dropped },
      train: split.train,
      test: Object.fromEntries(Object.entries(split.test).sort(([a], [b]) => a.localeCompare(b))),
      createdAt: new Date().toISOString(),
      elapsedSec: (Date.now() - start) / 1000,
    };
    writeJsonAtomic(join(tmp, "stats.json"), stats);
    fsyncDir(join(tmp, "test"));

    // Swap in the complete folder. Between the two renames no corpus exists, which readers treat as
    // absent (never as a torn one); a rerun then imports again.
    replaceDir(tmp, dir);
    progress.finish();
    return stats;
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    progress.finish();
    throw e;
  }
}

/** The stats of a complete import with the same config hash (marked `reused`), if there is one. */
function completeImport(statsPath: string, configHash: string): CorpusStats | undefined {
  if (!existsSync(statsPath)) return undefined;
  const prev = readStatsFile(statsPath);
  return prev.configHash === configHash ? { ...prev, reused: true } : undefined;
}

/** An empty `.<name>.tmp-<pid>/` (with test/) next to the corpus folder; stale ones of dead imports removed. */
function freshTmpDir(dir: string, name: string): string {
  const parent = dirname(dir);
  mkdirSync(parent, { recursive: true });
  removeStale(parent, name);
  const tmp = join(parent, `.${name}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(join(tmp, "test"), { recursive: true });
  return tmp;
}

interface StageContext {
  name: string;
  seed: number;
  testBy: TestBy;
  progress: Progress;
  tmp: string;
}

interface Staged {
  read: number;
  badRecords: number;
  badRecordSamples: string[];
  skippedFiles: string[];
  dropped: Record<string, number>;
  /** Split scores of the kept documents, per test set. */
  scores: Map<string, number[]>;
}

/** Pass 1: read and clean every document into `<tmp>/all.jsonl.staging`; 0 kept documents is an error. */
async function stage(opts: ImportOptions, ctx: StageContext): Promise<Staged> {
  const { name, seed, testBy, progress } = ctx;
  const st: Staged = {
    read: 0,
    badRecords: 0,
    badRecordSamples: [],
    skippedFiles: [],
    dropped: {},
    scores: new Map(),
  };
  const reader = readDocuments(opts.from, {
    textField: opts.textField,
    idField: opts.idField,
    source: opts.source,
    skipBadRecords: opts.skipBadRecords,
    onBadRecord: (err: BadRecordError) => {
      st.badRecords++;
      if (st.badRecordSamples.length < 5) st.badRecordSamples.push(err.message);
    },
    onSkippedFile: (file, reason) => {
      st.skippedFiles.push(`${file} (${reason})`);
      progress.log(`corpus ${name}: skipped ${file}: ${reason}`);
    },
  });
  async function* counted(): AsyncGenerator<Doc> {
    for await (const d of reader) {
      st.read++;
      progress.update(st.read, st.badRecords ? { bad: st.badRecords } : undefined);
      yield d;
      if (opts.maxDocs !== undefined && st.read >= opts.maxDocs) return;
    }
  }
  const { run, drops } = cleanPipeline({ ...opts, seed });
  const staging = new LineWriter(join(ctx.tmp, "all.jsonl.staging"));
  for await (const doc of run(counted())) {
    staging.writeLine(JSON.stringify(doc));
    const key = testSetKey(doc, testBy);
    let list = st.scores.get(key);
    if (!list) st.scores.set(key, (list = []));
    list.push(splitScore(seed, doc.id));
  }
  staging.close();
  st.dropped = drops.counts;
  if (st.read === 0 || st.scores.size === 0)
    throw emptyImport(opts.from, st.read, drops.counts, st.skippedFiles, st.badRecords);
  return st;
}

/** Pass 2: each staged document to train.jsonl or test/<set>.jsonl by its split score. */
async function route(
  tmp: string,
  seed: number,
  testBy: TestBy,
  cutoffs: Map<string, number>,
): Promise<{ train: SplitStats; test: Record<string, SplitStats> }> {
  const train = new LineWriter(join(tmp, "train.jsonl"));
  const trainStats = emptySplit();
  const testWriters = new Map<string, LineWriter>();
  const testStats: Record<string, SplitStats> = {};
  const rl = createInterface({
    input: createReadStream(join(tmp, "all.jsonl.staging")),
    crlfDelay: Infinity,
  });
  for await (const line of rl) {
    if (line === "") continue;
    // Cast: this staging file was written by stage() above from validated Docs, moments ago, in this call.
    const doc = JSON.parse(line) as Doc;
    const key = testSetKey(doc, testBy);
    if (splitScore(seed, doc.id) <= (cutoffs.get(key) ?? -1)) {
      let w = testWriters.get(key);
      if (!w) testWriters.set(key, (w = new LineWriter(join(tmp, "test", `${key}.jsonl`))));
      w.writeLine(line);
      addDoc((testStats[key] ??= emptySplit()), doc);
    } else {
      train.writeLine(line);
      addDoc(trainStats, doc);
    }
  }
  train.close();
  for (const w of testWriters.values()) w.close();
  rmSync(join(tmp, "all.jsonl.staging"));
  return { train: trainStats, test: testStats };
}

/** An import that produced no document lost all its input: an error, never an empty corpus with exit 0. */
function emptyImport(
  from: string | SourceSpec,
  read: number,
  dropped: Record<string, number>,
  skipped: string[],
  bad: number,
): SynthmixError {
  const src = typeof from === "string" ? from : from.path;
  const why: string[] = [];
  if (read > 0)
    why.push(
      `all ${read} documents read were dropped (${Object.entries(dropped)
        .map(([r, c]) => `${r} ${c}`)
        .join(", ")})`,
    );
  else why.push("no documents were read");
  if (bad > 0) why.push(`${bad} bad records skipped`);
  if (skipped.length > 0)
    why.push(
      `${skipped.length} files skipped: ${skipped.slice(0, 5).join(", ")}${skipped.length > 5 ? ", ..." : ""}`,
    );
  return new SynthmixError("EMPTY_IMPORT", `${src}: the import yielded 0 documents: ${why.join("; ")}`, {
    hint:
      read > 0
        ? "loosen the filters (--min-words, --min-chars, --max-*)"
        : "check the format (.jsonl[.gz|.zst], .parquet, .warc[.gz], .wet[.gz], .txt, .md; or --kind) and --text-field",
  });
}

/** Remove the temp/old folders of killed imports of `name` (their pid no longer runs). */
function removeStale(parent: string, name: string): void {
  const prefix = `.${name}.`;
  for (const entry of readdirSync(parent)) {
    if (!entry.startsWith(prefix)) continue;
    const m = /^(tmp|old)-(\d+)$/.exec(entry.slice(prefix.length));
    if (m && (Number(m[2]) === process.pid || !alive(Number(m[2])))) {
      rmSync(join(parent, entry), { recursive: true, force: true });
    }
  }
}

/** A short human summary of an import (the CLI prints it). */
export function formatCorpusSummary(s: CorpusStats): string {
  const n = (x: number) => x.toLocaleString("en-US");
  const lines = [
    `corpus "${s.name}"${s.reused ? " (already complete, nothing to do)" : ""}: read ${n(s.read)} documents`,
    `  train: ${n(s.train.docs)} docs, ${n(s.train.words)} words, ${n(s.train.chars)} chars`,
  ];
  for (const [k, t] of Object.entries(s.test)) {
    lines.push(`  test/${k}: ${n(t.docs)} docs, ${n(t.words)} words`);
  }
  const dropped = Object.entries(s.dropped);
  lines.push(
    `  dropped: ${dropped.length ? dropped.map(([r, c]) => `${r} ${n(c)}`).join(", ") : "none"}`,
    `  bad records skipped: ${n(s.badRecords)}`,
  );
  for (const m of s.badRecordSamples) lines.push(`    ${m}`);
  if (s.skippedFiles?.length) {
    lines.push(`  files not read: ${n(s.skippedFiles.length)}`);
    for (const f of s.skippedFiles) lines.push(`    ${f}`);
  }
  return lines.join("\n");
}
