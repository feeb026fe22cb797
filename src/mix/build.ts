import { existsSync, readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { writeJsonAtomic } from "../util/atomic.js";
import { SynthmixError } from "../util/errors.js";
import { stableHash } from "../util/hash.js";
import { dtypeForVocab, type TokenDtype } from "../util/tokenfile.js";
import type { MixtureManifest } from "./manifest.js";
import { type PlannedUnit, planMixture } from "./plan.js";
import { loadTokenizedSource, type TokenizedSource } from "./sources.js";
import { TokenReader, TokenWriter } from "./tokenio.js";
import { loadMixTokenizer, type MixTokenizer } from "./tokenizer.js";

/** One source of a mixture: a name, its documents (JSONL file or folder of part-*.jsonl) and token share. */
export interface MixSourceSpec {
  name: string;
  path: string;
  share: number;
}

export interface BuildMixtureOptions {
  workspace: string;
  /** Mixture id: the output folder is `<workspace>/mixtures/<id>/`. */
  id: string;
  /** Tokenizer file path, or an already loaded MixTokenizer. */
  tokenizer: string | MixTokenizer;
  sources: MixSourceSpec[];
  totalTokens: number;
  seed?: number;
  /** Repeat a source's documents (new permutation per epoch) when it runs out, instead of failing. */
  allowRepeat?: boolean;
  /** Tokenizer threads when a source is tokenized for the first time. */
  threads?: number;
  /** Rebuild even when a complete mixture with the same config exists. */
  force?: boolean;
  log?: (line: string) => void;
}

export interface BuildMixtureResult {
  manifest: MixtureManifest;
  dir: string;
  /** True when a complete mixture with the same config hash was already there. */
  skipped: boolean;
}

export const MIX_VERSION = 1;

/**
 * Build `<ws>/mixtures/<id>/tokens.bin` + `manifest.json` (see planMixture for sampling and nesting).
 * tokens.bin is written first and manifest.json last, both atomically, so a manifest whose configHash
 * matches means a complete mixture: reruns skip it.
 */
export async function buildMixture(opts: BuildMixtureOptions): Promise<BuildMixtureResult> {
  const sources = normaliseShares(opts.sources);
  const seed = opts.seed ?? 1234;
  const allowRepeat = opts.allowRepeat ?? false;
  if (!Number.isInteger(opts.totalTokens) || opts.totalTokens <= 0) {
    throw new SynthmixError("MIX_CONFIG", `mixture ${opts.id}: total tokens must be a positive integer`);
  }
  if (!/^[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(opts.id)) {
    throw new SynthmixError("MIX_CONFIG", `mixture id "${opts.id}" is not a plain folder name`, {
      hint: "use letters, digits and . _ + - (e.g. hq-33)",
    });
  }
  const dir = join(opts.workspace, "mixtures", opts.id);
  const tokenizer =
    typeof opts.tokenizer === "string"
      ? await loadMixTokenizer(opts.tokenizer, opts.threads)
      : opts.tokenizer;
  const loaded: TokenizedSource[] = [];
  for (const s of sources) loaded.push(await loadTokenizedSource(opts.workspace, s.name, s.path, tokenizer));
  const configHash = stableHash({
    version: MIX_VERSION,
    sources: sources.map((s, i) => ({ name: s.name, share: s.share, content: loaded[i].contentSha256 })),
    totalTokens: opts.totalTokens,
    seed,
    allowRepeat,
    tokenizer: tokenizer.sha256,
  });
  const manifestPath = join(dir, "manifest.json");
  if (!opts.force && existsSync(manifestPath) && existsSync(join(dir, "tokens.bin"))) {
    const old = JSON.parse(readFileSync(manifestPath, "utf8")) as MixtureManifest;
    if (old.configHash === configHash) return { manifest: old, dir, skipped: true };
  }

  const plan = planMixture(
    sources.map((s, i) => ({ name: s.name, share: s.share, lengths: loaded[i].lengths })),
    opts.totalTokens,
    seed,
    allowRepeat,
  );
  const dtype = dtypeForVocab(tokenizer.vocabSize);
  const pos = writeMixtureTokens(join(dir, "tokens.bin"), dtype, plan.units, loaded, tokenizer.eotId);
  if (pos !== opts.totalTokens) {
    throw new SynthmixError(
      "MIX_INTERNAL",
      `mixture ${opts.id}: wrote ${pos} tokens, planned ${opts.totalTokens}`,
    );
  }
  const manifest: MixtureManifest = {
    id: opts.id,
    file: "tokens.bin",
    dtype,
    vocabSize: tokenizer.vocabSize,
    eotId: tokenizer.eotId,
    totalTokens: opts.totalTokens,
    seed,
    tokenizerSha256: tokenizer.sha256,
    sources: sources.map((s, i) => ({
      name: s.name,
      targetShare: s.share,
      tokens: plan.stats[i].tokens,
      documents: plan.stats[i].documents,
      epochs: plan.stats[i].epochs,
      path: relative(resolve(opts.workspace), resolve(s.path)),
      availableDocuments: loaded[i].lengths.length,
      contentSha256: loaded[i].contentSha256,
    })),
    createdBy: "synthmix mix",
    configHash,
    allowRepeat,
    orderKey: stableHash({ version: MIX_VERSION, sources: sources.map((s) => [s.name, s.share]), seed }),
  };
  writeJsonAtomic(manifestPath, manifest);
  opts.log?.(
    `mixture ${opts.id}: ${opts.totalTokens} tokens, ${manifest.sources
      .map(
        (s) =>
          `${s.name} ${((100 * s.tokens) / opts.totalTokens).toFixed(2)}% (${s.documents} docs, ${s.epochs} epoch${s.epochs === 1 ? "" : "s"})`,
      )
      .join(", ")}`,
  );
  return { manifest, dir, skipped: false };
}

/**
 * Stream the planned documents from the source caches into `path` (atomic): each document is read
 * with one pread and appended through a fixed buffer, so memory does not grow with the source or the
 * mixture. Returns the tokens written.
 */
function writeMixtureTokens(
  path: string,
  dtype: TokenDtype,
  units: PlannedUnit[],
  loaded: TokenizedSource[],
  eotId: number,
): number {
  const readers = loaded.map((src) => new TokenReader(src.binPath, src.dtype));
  const out = new TokenWriter(path, dtype);
  try {
    for (const u of units) {
      const src = loaded[u.source];
      // A truncated document keeps its first take-1 tokens and still ends with eot, so boundaries stay clear.
      const n = Math.min(u.take - 1, src.lengths[u.doc]);
      if (n > 0) out.push(readers[u.source].read(src.offsets[u.doc], n));
      out.pushOne(eotId);
    }
    out.commit();
    return out.count;
  } catch (e) {
    out.abort();
    throw e;
  } finally {
    for (const r of readers) r.close();
  }
}

/** Validate shares: positive, summing to 1; zero-share sources are dropped. */
export function normaliseShares(sources: MixSourceSpec[]): MixSourceSpec[] {
  const names = new Set<string>();
  for (const s of sources) {
    if (names.has(s.name)) throw new SynthmixError("MIX_CONFIG", `source "${s.name}" is listed twice`);
    names.add(s.name);
    if (!(s.share >= 0 && s.share <= 1)) {
      throw new SynthmixError("MIX_CONFIG", `source "${s.name}": share ${s.share} is not in [0, 1]`);
    }
  }
  const kept = sources.filter((s) => s.share > 0);
  const sum = kept.reduce((a, s) => a + s.share, 0);
  if (kept.length === 0 || Math.abs(sum - 1) > 1e-6) {
    throw new SynthmixError("MIX_CONFIG", `source shares sum to ${sum}, not 1`, {
      hint: "give shares that sum to 1, or leave one source without a ratio to take the rest",
    });
  }
  return kept;
}

/**
 * Shares from `--ratio name=x` options: sources without a ratio split what is left equally
 * (typically just `natural`, which takes 1 - sum of synthetic ratios).
 */
export function sharesFromRatios(names: string[], ratios: Record<string, number>): Record<string, number> {
  for (const k of Object.keys(ratios)) {
    if (!names.includes(k)) {
      throw new SynthmixError("MIX_CONFIG", `--ratio ${k}=... names no source`, {
        hint: `sources are: ${names.join(", ")}`,
      });
    }
  }
  const given = Object.values(ratios).reduce((a, b) => a + b, 0);
  const rest = names.filter((n) => !(n in ratios));
  if (given > 1 + 1e-9) throw new SynthmixError("MIX_CONFIG", `ratios sum to ${given} > 1`);
  if (rest.length === 0 && Math.abs(given - 1) > 1e-6) {
    throw new SynthmixError(
      "MIX_CONFIG",
      `ratios sum to ${given}, not 1, and no source is left to take the rest`,
    );
  }
  const out: Record<string, number> = {};
  // Rounded so 1 - 0.33 reads 0.67 in manifests and ids, not 0.6699999999999999.
  for (const n of names) out[n] = n in ratios ? ratios[n] : +((1 - given) / rest.length).toFixed(12);
  return out;
}
