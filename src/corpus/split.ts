import { deriveSeed } from "../util/rng.js";
import type { Doc } from "./types.js";

/** How held-out test sets are formed: one per genre group, one per domain, or a single "all" set. */
export type TestBy = "group" | "domain" | "none";

/** The test set a document belongs to if held out; documents without the field fall back to "all". */
export function testSetKey(doc: Doc, testBy: TestBy): string {
  if (testBy === "none") return "all";
  const meta = doc.meta ?? {};
  const v = testBy === "group" ? (meta.group ?? meta.domain) : meta.domain;
  return typeof v === "string" && v !== "" ? safeName(v) : "all";
}

/** A name usable as a file name (test/<name>.jsonl) on every OS. */
export function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^\.+/, "_") || "_";
}

/**
 * A document's split score in [0, 1): a hash of the seed and its id, so a document's side of the split
 * never depends on the order or the company it is read in.
 */
export function splitScore(seed: number, id: string): number {
  return deriveSeed(seed, "split", id) / 4294967296;
}

/**
 * Per test set, the score cutoff (a document is held out iff score <= cutoff): the documents with score
 * below `testFraction`, raised to the `minTestDocs` lowest scores when too few, but never more than half
 * of a set's documents (so small domains still train). -1 means no test documents.
 */
export function planCutoffs(
  scores: Map<string, number[]>,
  testFraction: number,
  minTestDocs: number,
): Map<string, number> {
  const out = new Map<string, number>();
  for (const [key, list] of scores) {
    const sorted = Float64Array.from(list).sort();
    let k = 0;
    while (k < sorted.length && sorted[k] < testFraction) k++;
    if (k < minTestDocs) k = Math.max(k, Math.min(minTestDocs, Math.floor(sorted.length / 2)));
    out.set(key, k > 0 ? sorted[k - 1] : -1);
  }
  return out;
}
