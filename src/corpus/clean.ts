import { createHash } from "node:crypto";
import { LshIndex, lshParams, MinHasher } from "./minhash.js";
import type { Doc } from "./types.js";

/**
 * Cleaning as a pipeline of small composable steps (datatrove style): each step maps a document stream
 * to a document stream and counts what it drops, by reason, into a shared DropCounts.
 */
export type DocStep = (docs: AsyncIterable<Doc>) => AsyncIterable<Doc>;

export class DropCounts {
  readonly counts: Record<string, number> = {};
  add(reason: string, n = 1): void {
    this.counts[reason] = (this.counts[reason] ?? 0) + n;
  }
  get total(): number {
    return Object.values(this.counts).reduce((s, x) => s + x, 0);
  }
}

export function compose(...steps: DocStep[]): DocStep {
  return (docs) => steps.reduce((acc, step) => step(acc), docs);
}

export function mapStep(fn: (doc: Doc) => Doc): DocStep {
  return async function* (docs) {
    for await (const d of docs) yield fn(d);
  };
}

/** Keep documents for which `reject` returns undefined; otherwise count the returned reason. */
export function filterStep(drops: DropCounts, reject: (doc: Doc) => string | undefined): DocStep {
  return async function* (docs) {
    for await (const d of docs) {
      const reason = reject(d);
      if (reason === undefined) yield d;
      else drops.add(reason);
    }
  };
}

export function normalizeUnicode(form: "NFC" | "NFKC" = "NFC"): DocStep {
  return mapStep((d) => ({ ...d, text: d.text.normalize(form) }));
}

/**
 * Unify line ends, drop zero-width spaces and BOMs, turn other horizontal whitespace (tabs, no-break spaces) into single
 * spaces, trim lines, keep paragraph breaks (at most one blank line), and drop documents left empty.
 */
export function cleanWhitespaceText(text: string): string {
  return text
    .replace(/\r\n?/g, "\n")
    .replace(/[\u200b\ufeff]/g, "")
    .replace(/[^\S\n]+/g, " ")
    .replace(/ *\n */g, "\n")
    .replace(/\n{3,}/g, "\n\n")
    .trim();
}

export function cleanWhitespace(drops: DropCounts): DocStep {
  return async function* (docs) {
    for await (const d of docs) {
      const text = cleanWhitespaceText(d.text);
      if (text === "") drops.add("empty");
      else yield { ...d, text };
    }
  };
}

/** Whitespace-separated tokens, counted without allocating. */
export function countWords(text: string): number {
  let n = 0;
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const space = c === 32 || c === 10 || c === 9 || c === 13 || c === 12 || c === 11 || c === 0xa0;
    if (!space && !inWord) n++;
    inWord = !space;
  }
  return n;
}

export interface LengthLimits {
  minChars?: number;
  maxChars?: number;
  minWords?: number;
  maxWords?: number;
}

export function lengthFilter(limits: LengthLimits, drops: DropCounts): DocStep {
  const needWords = limits.minWords !== undefined || limits.maxWords !== undefined;
  return filterStep(drops, (d) => {
    const chars = d.text.length;
    if (limits.minChars !== undefined && chars < limits.minChars) return "too_short";
    if (limits.maxChars !== undefined && chars > limits.maxChars) return "too_long";
    if (!needWords) return undefined;
    const words = countWords(d.text);
    if (limits.minWords !== undefined && words < limits.minWords) return "too_short";
    if (limits.maxWords !== undefined && words > limits.maxWords) return "too_long";
    return undefined;
  });
}

/** Key for exact dedup: case and whitespace differences do not make a document new. */
export function dedupKey(text: string): string {
  return createHash("sha1").update(text.toLowerCase().replace(/\s+/g, " ").trim()).digest("base64");
}

/** Keep the first of documents whose normalized text is identical (16 bytes of memory per document). */
export function exactDedup(drops: DropCounts): DocStep {
  const seen = new Set<string>();
  return filterStep(drops, (d) => {
    const k = dedupKey(d.text).slice(0, 22);
    if (seen.has(k)) return "duplicate";
    seen.add(k);
    return undefined;
  });
}

export interface NearDedupOptions {
  /** Estimated Jaccard similarity of word n-gram sets at or above which a document is dropped. */
  threshold: number;
  numPerm?: number;
  ngram?: number;
  /** LSH bands; default chosen from the threshold (rows = numPerm / bands). */
  bands?: number;
  seed?: number;
}

/**
 * Drop documents whose MinHash-estimated Jaccard similarity to an earlier kept document reaches the
 * threshold (keep-first, streaming). Memory: numPerm * 4 bytes per kept document.
 */
export function nearDedup(opts: NearDedupOptions, drops: DropCounts): DocStep {
  const numPerm = opts.numPerm ?? 128;
  const hasher = new MinHasher({ numPerm, ngram: opts.ngram ?? 5, seed: opts.seed ?? 1 });
  const { bands, rows } = opts.bands
    ? { bands: opts.bands, rows: Math.floor(numPerm / opts.bands) }
    : lshParams(opts.threshold, numPerm);
  const index = new LshIndex(numPerm, bands, rows, opts.threshold);
  return filterStep(drops, (d) =>
    index.addIfNew(hasher.signature(d.text)) >= 0 ? "near_duplicate" : undefined,
  );
}

export interface CleanOptions extends LengthLimits {
  /** Unicode normalization form; default NFC. */
  normalize?: "NFC" | "NFKC" | "none";
  /** Whitespace cleanup; default true. */
  whitespace?: boolean;
  /** Exact dedup; default true. */
  dedup?: boolean;
  /** Near-dedup threshold (or options); default off. */
  nearDedup?: number | NearDedupOptions;
  /** Seed for near-dedup permutations; default 1. */
  seed?: number;
}

/** The standard cleaning pipeline: normalize, whitespace, length, exact dedup, near dedup. */
export function cleanPipeline(opts: CleanOptions = {}): { run: DocStep; drops: DropCounts } {
  const drops = new DropCounts();
  const steps: DocStep[] = [];
  const form = opts.normalize ?? "NFC";
  if (form !== "none") steps.push(normalizeUnicode(form));
  if (opts.whitespace !== false) steps.push(cleanWhitespace(drops));
  if (
    opts.minChars !== undefined ||
    opts.maxChars !== undefined ||
    opts.minWords !== undefined ||
    opts.maxWords !== undefined
  ) {
    steps.push(lengthFilter(opts, drops));
  }
  if (opts.dedup !== false) steps.push(exactDedup(drops));
  if (opts.nearDedup !== undefined) {
    const nd = typeof opts.nearDedup === "number" ? { threshold: opts.nearDedup } : opts.nearDedup;
    steps.push(nearDedup({ seed: opts.seed, ...nd }, drops));
  }
  return { run: compose(...steps), drops };
}
