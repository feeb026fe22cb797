import { existsSync, readdirSync } from "node:fs";
import { join, relative } from "node:path";
import {
  type MixtureManifest,
  readMixtureManifest,
  readSourceCacheIndex,
  readTestSetManifest,
  type TestSetManifest,
} from "../mix/manifest.js";
import { readStatus } from "../sweep/registry.js";
import { type RunResultRow, readRunResults } from "../sweep/results.js";
import { SynthmixError } from "../util/errors.js";
import { deriveSeed, Rng } from "../util/rng.js";
import { readTokens, type TokenDtype } from "../util/tokenfile.js";
import { perTokenLosses } from "./losses.js";
import {
  type LossSplit,
  type NoiseFloor,
  type UnigramFile,
  type UnigramSource,
  type UnigramTestSet,
  writeUnigramFile,
} from "./results.js";
import { countTokenFile, tokenFileLength } from "./stream.js";
import {
  type CompareOptions,
  compareUnigrams,
  countTokens,
  klDivergence,
  smoothedProbs,
  splitLossByBlindSpots,
  type UnigramCounts,
} from "./unigram.js";

export interface AnalyzeOptions {
  /** Add-k smoothing over the full vocabulary (default 0.5). */
  k?: number;
  /** Blind spots kept per comparison (default 50). */
  topK?: number;
  /** Seed of the equal-size subsampling and the noise-floor split (default 0). */
  seed?: number;
  /** Display strings for token ids; default: the workspace tokenizer when it loads, else none. */
  tokenString?: (id: number) => string;
  /** Per-token losses of trained models, split into blind-spot vs other tokens (by test domain). */
  losses?: {
    runId: string;
    source: string;
    test: string;
    losses: ArrayLike<number>;
    targets: ArrayLike<number>;
  }[];
  /**
   * Compute per-token losses of these sweep runs (ids under <ws>/runs/) on every test domain and split
   * them by the blind spots of the run's own mixture; "largest" = the largest (N, D) run per mixture.
   */
  runs?: string[] | "largest";
  /** Evaluation tokens per domain for `runs` (default 32768, the trainer's default). */
  evalTokens?: number;
  /** Write `<ws>/results/unigram.json` (default true). */
  write?: boolean;
}

/** The workspace tokenizer's `tokenString`, or undefined when there is none or it does not load. */
async function loadTokenString(ws: string): Promise<((id: number) => string) | undefined> {
  const path = join(ws, "tokenizer", "tokenizer.json");
  if (!existsSync(path)) return undefined;
  try {
    // Imported lazily: token strings are a display nicety and must not make analysis depend on them.
    const mod = await import("../tokenizer/index.js");
    const tok = mod.Tokenizer.fromFile(path);
    return (id: number) => tok.tokenString(id);
  } catch {
    return undefined;
  }
}

type Ids = Uint16Array | Uint32Array;
/** A training source found on disk: its token file is streamed when counted, never held. */
interface LoadedSource {
  meta: UnigramSource;
  bin: string;
  dtype: TokenDtype;
  /** Mixture ids of the family this source stands for (to find a run's own comparison). */
  mixtureIds: string[];
}

/**
 * `m` tokens drawn without replacement (seeded partial Fisher-Yates over positions). Unigram counts only
 * need the multiset, so position order does not matter.
 */
export function subsampleTokens(ids: Ids, mIn: number, seed: number, shuffle = false): Ids {
  const n = ids.length;
  if (mIn >= n && !shuffle) return ids;
  const m = Math.min(mIn, n);
  const rng = new Rng(seed);
  const pos = new Uint32Array(n);
  for (let i = 0; i < n; i++) pos[i] = i;
  const out = new Uint32Array(m);
  for (let i = 0; i < m; i++) {
    const j = i + rng.int(n - i);
    const t = pos[i];
    pos[i] = pos[j];
    pos[j] = t;
    out[i] = ids[pos[i]];
  }
  return out;
}

function loadTests(ws: string): { tm: TestSetManifest; tests: { meta: UnigramTestSet; ids: Ids }[] } {
  const testDir = join(ws, "tokens", "test");
  const testManifestPath = join(testDir, "manifest.json");
  if (!existsSync(testManifestPath)) {
    throw new SynthmixError("NO_TEST_TOKENS", `${testManifestPath} does not exist`, {
      hint: "build the tokenized test sets first (synthmix mix)",
    });
  }
  const tm = readTestSetManifest(testDir);
  const tests = tm.domains.map((d) => {
    const path = join(testDir, d.file);
    const ids = readTokens(path, tm.dtype);
    const c = countTokens(ids, tm.vocabSize, path);
    return { meta: { domain: d.name, path: relative(ws, path), tokens: c.total, types: c.types }, ids };
  });
  return { tm, tests };
}

function loadSourceCaches(ws: string, tm: TestSetManifest): LoadedSource[] {
  const out: LoadedSource[] = [];
  const srcDir = join(ws, "tokens", "sources");
  if (!existsSync(srcDir)) return out;
  for (const name of readdirSync(srcDir).sort()) {
    if (!name.endsWith(".json")) continue;
    const idx = readSourceCacheIndex(join(srcDir, name));
    // Caches made with another tokenizer are stale leftovers: their ids mean other tokens.
    if (idx.tokenizerSha256 && tm.tokenizerSha256 && idx.tokenizerSha256 !== tm.tokenizerSha256) continue;
    const bin = join(srcDir, name.replace(/\.json$/, ".bin"));
    if (!existsSync(bin)) continue;
    const id = out.some((s) => s.meta.id === idx.source) ? name.replace(/\.json$/, "") : idx.source;
    const tokens = tokenFileLength(bin, idx.dtype);
    out.push({
      meta: { id, kind: "source", path: relative(ws, bin), tokens, types: 0 },
      bin,
      dtype: idx.dtype,
      mixtureIds: [],
    });
  }
  return out;
}

/**
 * Mixture shards. Mixtures of the same sources and shares at different totals D are nested samples of
 * one distribution: only the largest of each family is analyzed, labelled without its size suffix. A
 * shard whose manifest marks it `generatorTraining` (the study's generator data) is not a training
 * source of the sweep.
 */
function loadMixtures(ws: string, vocab: number): LoadedSource[] {
  const mixDir = join(ws, "mixtures");
  if (!existsSync(mixDir)) return [];
  const families = new Map<string, { id: string; m: MixtureManifest; ids: string[] }>();
  for (const id of readdirSync(mixDir).sort()) {
    const mpath = join(mixDir, id, "manifest.json");
    if (!existsSync(mpath)) continue;
    const m = readMixtureManifest(join(mixDir, id));
    if (m.generatorTraining) continue;
    if (m.vocabSize !== vocab) {
      throw new SynthmixError(
        "VOCAB_MISMATCH",
        `${mpath}: vocabulary ${m.vocabSize} differs from the test sets' ${vocab}`,
        { hint: "rebuild the mixtures and test sets with the same tokenizer (synthmix mix --force)" },
      );
    }
    const key =
      (m.sources ?? [])
        .map((x) => `${x.name}=${x.targetShare}@${x.path ?? ""}`)
        .sort()
        .join(",") || id;
    const prev = families.get(key);
    if (!prev) families.set(key, { id, m, ids: [id] });
    else {
      prev.ids.push(id);
      if (m.totalTokens > prev.m.totalTokens) Object.assign(prev, { id, m });
    }
  }
  return [...families.values()]
    .sort((a, b) => a.id.localeCompare(b.id))
    .map(({ id, m, ids: members }) => {
      const bin = join(mixDir, id, m.file ?? "tokens.bin");
      return {
        meta: {
          id: (m.id ?? id).replace(/-d[0-9.]+[kMG]?$/, ""),
          kind: "mixture" as const,
          path: relative(ws, bin),
          tokens: tokenFileLength(bin, m.dtype),
          types: 0,
        },
        bin,
        dtype: m.dtype,
        mixtureIds: members,
      };
    });
}

/**
 * KL between two random halves of a test set, the second subsampled to the comparison size: what a
 * source drawn from the test distribution itself would score. Differences below it are sampling noise.
 */
function noiseFloor(
  test: { meta: UnigramTestSet; ids: Ids },
  m: number,
  vocab: number,
  k: number,
  seed: number,
): NoiseFloor {
  const n = test.ids.length;
  const perm = subsampleTokens(test.ids, n, seed, true);
  const half = Math.floor(n / 2);
  const a = perm.subarray(0, half);
  const b = subsampleTokens(perm.subarray(half), Math.min(m, n - half), deriveSeed(seed, 1));
  const p = smoothedProbs(countTokens(a, vocab), k);
  const q = smoothedProbs(countTokens(b, vocab), k);
  return { test: test.meta.domain, tokens: Math.min(m, n - half), kl: klDivergence(p, q) };
}

/**
 * Unigram analysis of a workspace: every test domain (`tokens/test/`) against every training source —
 * the per-source token caches the mix stage writes (`tokens/sources/*.json` + `.bin`) and every mixture
 * shard (`mixtures/<id>/tokens.bin`) — at an equal token count (each subsampled to the smallest, seeded),
 * with a noise floor per test set and, for trained runs, the blind-spot split of their per-token losses.
 * Sources and mixtures are streamed from their token files (src/analyze/stream.ts), so memory does not
 * grow with their size; only the held-out test sets, small by design, are read whole.
 * Writes `<ws>/results/unigram.json`.
 */
export async function analyzeWorkspace(ws: string, opts: AnalyzeOptions = {}): Promise<UnigramFile> {
  const k = opts.k ?? 0.5;
  const topK = opts.topK ?? 50;
  const seed = opts.seed ?? 0;
  const { tm, tests } = loadTests(ws);
  const vocab = tm.vocabSize;
  const sources = [...loadSourceCaches(ws, tm), ...loadMixtures(ws, vocab)];
  if (sources.length === 0) {
    throw new SynthmixError("NO_SOURCES", `no mixtures or source token files under ${ws}`, {
      hint: "build mixtures first (synthmix mix)",
    });
  }
  // KL of a smoothed sample grows as the sample shrinks: compare every source on the same token count.
  const equal = Math.min(...sources.map((s) => s.meta.tokens));
  const tokenString = opts.tokenString ?? (await loadTokenString(ws));
  const testCounts = tests.map((t) => countTokens(t.ids, vocab));
  const comparisons: Comparison[] = [];
  for (const s of sources) {
    // One streamed pass per source: its whole counts and the counts of an equal-size sample.
    const counts = countTokenFile(s.bin, s.dtype, vocab, {
      m: equal,
      seed: deriveSeed(seed, "source", s.meta.id),
    });
    s.meta.types = counts.full.types;
    for (const [i, t] of tests.entries()) {
      const names = { k, topK, tokenString, sourceName: s.meta.id, testName: t.meta.domain };
      comparisons.push(compareAtBothSizes(testCounts[i], counts.full, counts.sample!, names));
    }
  }
  const noiseFloors = tests.map((t) =>
    noiseFloor(t, equal, vocab, k, deriveSeed(seed, "floor", t.meta.domain)),
  );
  const lossSplits = splitsFor(ws, opts, sources, tests, comparisons);
  const file: UnigramFile = {
    version: 2,
    createdBy: "synthmix analyze unigram",
    createdAt: new Date().toISOString(),
    vocabSize: vocab,
    smoothingK: k,
    topK,
    tokenizerSha256: tm.tokenizerSha256 ?? null,
    equalTokens: equal,
    seed,
    sources: sources.map((s) => s.meta),
    tests: tests.map((t) => t.meta),
    comparisons,
    noiseFloors,
    ...(lossSplits.length > 0 ? { lossSplits } : {}),
  };
  if (opts.write ?? true) writeUnigramFile(ws, file);
  return file;
}

type Comparison = UnigramFile["comparisons"][number];

/**
 * Divergences at the common size (comparable across sources); coverage and blind spots over the whole
 * source (what training saw: a subsample would invent blind spots by leaving tokens out).
 */
function compareAtBothSizes(
  test: UnigramCounts,
  full: UnigramCounts,
  sample: UnigramCounts,
  names: CompareOptions & { topK: number },
): Comparison {
  const eq = compareUnigrams(test, sample, { ...names, topK: 0 });
  const whole = compareUnigrams(test, full, names);
  return {
    ...whole,
    klTestSource: eq.klTestSource,
    klSourceTest: eq.klSourceTest,
    js: eq.js,
    klTestSourceFullSize: whole.klTestSource,
  };
}

function splitsFor(
  ws: string,
  opts: AnalyzeOptions,
  sources: LoadedSource[],
  tests: { meta: UnigramTestSet; ids: Ids }[],
  comparisons: Comparison[],
): LossSplit[] {
  const out: LossSplit[] = [];
  const find = (source: string, test: string) => {
    const cmp = comparisons.find((c) => c.source === source && c.test === test);
    if (!cmp) {
      throw new SynthmixError(
        "UNKNOWN_COMPARISON",
        `no unigram comparison of test "${test}" against source "${source}"`,
      );
    }
    return cmp;
  };
  for (const l of opts.losses ?? []) {
    out.push(splitLossByBlindSpots(l.losses, l.targets, find(l.source, l.test).blindSpots, l));
  }
  if (!opts.runs) return out;
  const ids = opts.runs === "largest" ? largestRuns(ws) : opts.runs;
  return [...out, ...runSplits(ws, ids, opts.evalTokens ?? 32768, sources, tests, find)];
}

/** The largest (N, then D) finished run of each mixture in results/runs.json. */
export function largestRuns(ws: string): string[] {
  const path = join(ws, "results", "runs.json");
  if (!existsSync(path)) return [];
  const rows = readRunResults(ws).rows;
  const best = new Map<string, RunResultRow>();
  for (const r of rows) {
    if (r.domain !== "all") continue;
    const key = `${r.mixture}\u0000${r.generator}`;
    const b = best.get(key);
    const bigger =
      !b ||
      r.nonEmbeddingParams > b.nonEmbeddingParams ||
      (r.nonEmbeddingParams === b.nonEmbeddingParams && r.tokens > b.tokens);
    if (bigger) best.set(key, r);
  }
  // Only runs with a saved model can be scored token by token.
  return [...best.values()]
    .map((r) => r.runId)
    .filter((id) => existsSync(join(ws, "runs", id, "model.safetensors")))
    .sort();
}

function runSplits(
  ws: string,
  runIds: string[],
  evalTokens: number,
  sources: LoadedSource[],
  tests: { meta: UnigramTestSet; ids: Ids }[],
  find: (source: string, test: string) => Comparison,
): LossSplit[] {
  const out: LossSplit[] = [];
  for (const id of runIds) {
    const dir = join(ws, "runs", id);
    const statusPath = join(dir, "status.json");
    if (!existsSync(statusPath)) {
      throw new SynthmixError("UNKNOWN_RUN", `run ${id}: ${statusPath} does not exist`, {
        hint: "name a run under <ws>/runs/ (synthmix sweep status lists them)",
      });
    }
    const mixId = readStatus(ws, id)?.mixture.id ?? "";
    const src = sources.find((s) => s.mixtureIds.includes(mixId));
    if (!src) {
      throw new SynthmixError(
        "UNKNOWN_COMPARISON",
        `run ${id}: its mixture ${mixId || "(none)"} is not among the analyzed sources`,
      );
    }
    for (const t of tests) {
      const { losses, targets } = perTokenLosses(dir, t.ids, evalTokens);
      out.push(
        splitLossByBlindSpots(losses, targets, find(src.meta.id, t.meta.domain).blindSpots, {
          runId: id,
          source: src.meta.id,
          test: t.meta.domain,
        }),
      );
    }
  }
  return out;
}
