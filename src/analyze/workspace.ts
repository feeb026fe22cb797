import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import type { MixtureManifest, TestSetManifest } from "../mix/manifest.js";
import { writeJsonAtomic } from "../util/atomic.js";
import { SynthmixError } from "../util/errors.js";
import { readTokens, type TokenDtype } from "../util/tokenfile.js";
import type { LossSplit, UnigramFile, UnigramSource, UnigramTestSet } from "./results.js";
import { compareUnigrams, countTokens, splitLossByBlindSpots, type UnigramCounts } from "./unigram.js";

export interface AnalyzeOptions {
  /** Add-k smoothing over the full vocabulary (default 0.5). */
  k?: number;
  /** Blind spots kept per comparison (default 50). */
  topK?: number;
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
  /** Write `<ws>/results/unigram.json` (default true). */
  write?: boolean;
}

function readJson<T>(path: string): T {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as T;
  } catch (e) {
    throw new SynthmixError("BAD_MANIFEST", `${path}: cannot read JSON (${(e as Error).message})`);
  }
}

/** The workspace tokenizer's `tokenString`, or undefined when there is none or it does not load. */
async function loadTokenString(ws: string): Promise<((id: number) => string) | undefined> {
  const path = join(ws, "tokenizer", "tokenizer.json");
  if (!existsSync(path)) return undefined;
  try {
    // Imported lazily: token strings are a display nicety and must not make analysis depend on them.
    const mod = (await import("../tokenizer/index.js")) as {
      Tokenizer?: { fromFile(p: string): { tokenString(id: number): string } };
    };
    const tok = mod.Tokenizer?.fromFile(path);
    return tok ? (id: number) => tok.tokenString(id) : undefined;
  } catch {
    return undefined;
  }
}

interface SourceCache {
  source: string;
  dtype: TokenDtype;
  tokens: number;
  tokenizerSha256: string;
}

/**
 * Unigram analysis of a workspace: every test domain (`tokens/test/`) against every training source —
 * the per-source token caches the mix stage writes (`tokens/sources/*.json` + `.bin`) and every mixture
 * shard (`mixtures/<id>/tokens.bin`). Writes `<ws>/results/unigram.json`.
 */
export async function analyzeWorkspace(ws: string, opts: AnalyzeOptions = {}): Promise<UnigramFile> {
  const k = opts.k ?? 0.5;
  const topK = opts.topK ?? 50;
  const testDir = join(ws, "tokens", "test");
  const testManifestPath = join(testDir, "manifest.json");
  if (!existsSync(testManifestPath)) {
    throw new SynthmixError("NO_TEST_TOKENS", `${testManifestPath} does not exist`, {
      hint: "build the tokenized test sets first (synthmix mix)",
    });
  }
  const tm = readJson<TestSetManifest>(testManifestPath);
  const vocab = tm.vocabSize;
  const tests: { meta: UnigramTestSet; counts: UnigramCounts }[] = tm.domains.map((d) => {
    const path = join(testDir, d.file);
    const counts = countTokens(readTokens(path, tm.dtype), vocab, path);
    return {
      meta: { domain: d.name, path: relative(ws, path), tokens: counts.total, types: counts.types },
      counts,
    };
  });

  const sources: { meta: UnigramSource; counts: UnigramCounts }[] = [];
  const srcDir = join(ws, "tokens", "sources");
  if (existsSync(srcDir)) {
    for (const name of readdirSync(srcDir).sort()) {
      if (!name.endsWith(".json")) continue;
      const idx = readJson<SourceCache>(join(srcDir, name));
      // Caches made with another tokenizer are stale leftovers: their ids mean other tokens.
      if (idx.tokenizerSha256 && tm.tokenizerSha256 && idx.tokenizerSha256 !== tm.tokenizerSha256) continue;
      const bin = join(srcDir, name.replace(/\.json$/, ".bin"));
      if (!existsSync(bin)) continue;
      const counts = countTokens(readTokens(bin, idx.dtype), vocab, bin);
      const id = sources.some((s) => s.meta.id === idx.source) ? name.replace(/\.json$/, "") : idx.source;
      sources.push({
        meta: { id, kind: "source", path: relative(ws, bin), tokens: counts.total, types: counts.types },
        counts,
      });
    }
  }
  const mixDir = join(ws, "mixtures");
  if (existsSync(mixDir)) {
    // Mixtures of the same sources and shares at different totals D are nested samples of one
    // distribution: analyze only the largest of each family, labelled without its size suffix. The
    // study's own generator-training shard is not a training source of the sweep.
    const largest = new Map<string, { id: string; m: MixtureManifest }>();
    for (const id of readdirSync(mixDir).sort()) {
      const mpath = join(mixDir, id, "manifest.json");
      if (!existsSync(mpath) || id.startsWith("generator-")) continue;
      const m = readJson<MixtureManifest>(mpath);
      if (m.vocabSize !== vocab) {
        throw new SynthmixError(
          "VOCAB_MISMATCH",
          `${mpath}: vocabulary ${m.vocabSize} differs from the test sets' ${vocab}`,
          { hint: "rebuild the mixtures and test sets with the same tokenizer (synthmix mix --force)" },
        );
      }
      const family = (m.sources ?? [])
        .map((x) => `${x.name}=${x.targetShare}@${x.path ?? ""}`)
        .sort()
        .join(",");
      const prev = largest.get(family || id);
      if (!prev || m.totalTokens > prev.m.totalTokens) largest.set(family || id, { id, m });
    }
    for (const { id, m } of [...largest.values()].sort((a, b) => a.id.localeCompare(b.id))) {
      const bin = join(mixDir, id, m.file ?? "tokens.bin");
      const counts = countTokens(readTokens(bin, m.dtype), vocab, bin);
      sources.push({
        meta: {
          id: (m.id ?? id).replace(/-d[0-9.]+[kMG]?$/, ""),
          kind: "mixture",
          path: relative(ws, bin),
          tokens: counts.total,
          types: counts.types,
        },
        counts,
      });
    }
  }
  if (sources.length === 0) {
    throw new SynthmixError("NO_SOURCES", `no mixtures or source token files under ${ws}`, {
      hint: "build mixtures first (synthmix mix)",
    });
  }

  const tokenString = opts.tokenString ?? (await loadTokenString(ws));
  const comparisons = [];
  for (const s of sources) {
    for (const t of tests) {
      comparisons.push(
        compareUnigrams(t.counts, s.counts, {
          k,
          topK,
          tokenString,
          sourceName: s.meta.id,
          testName: t.meta.domain,
        }),
      );
    }
  }
  const lossSplits: LossSplit[] = [];
  for (const l of opts.losses ?? []) {
    const cmp = comparisons.find((c) => c.source === l.source && c.test === l.test);
    if (!cmp) {
      throw new SynthmixError(
        "UNKNOWN_COMPARISON",
        `no unigram comparison of test "${l.test}" against source "${l.source}"`,
      );
    }
    lossSplits.push(splitLossByBlindSpots(l.losses, l.targets, cmp.blindSpots, l));
  }
  const file: UnigramFile = {
    version: 1,
    createdBy: "synthmix analyze unigram",
    createdAt: new Date().toISOString(),
    vocabSize: vocab,
    smoothingK: k,
    topK,
    tokenizerSha256: tm.tokenizerSha256 ?? null,
    sources: sources.map((s) => s.meta),
    tests: tests.map((t) => t.meta),
    comparisons,
    ...(lossSplits.length > 0 ? { lossSplits } : {}),
  };
  if (opts.write ?? true) writeJsonAtomic(join(ws, "results", "unigram.json"), file);
  return file;
}
