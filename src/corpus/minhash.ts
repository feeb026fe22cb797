import { Rng } from "../util/rng.js";

/**
 * MinHash signatures over word n-gram shingles and an LSH index for near-duplicate detection.
 * Hand-written (no dependency) because it is core to the corpus stage and small, and because the JS
 * MinHash packages hash with 64-bit BigInt or strings, which is an order of magnitude slower than the
 * 32-bit Math.imul hashing into typed arrays used here.
 */
export interface MinHashOptions {
  /** Number of hash permutations (signature length); default 128. */
  numPerm?: number;
  /** Words per shingle; default 5 (as datatrove). Documents shorter than this give one shingle. */
  ngram?: number;
  /** Seed of the permutations; signatures are comparable only under the same seed. */
  seed?: number;
}

/** murmur3's 32-bit finalizer: a fast bijective mix of all input bits. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const WORD = /[\p{L}\p{N}]+/gu;

/** 32-bit hashes of the lower-cased word n-grams of `text` (FNV-1a per word, then a mixed fold). */
export function shingleHashes(text: string, ngram = 5): Uint32Array {
  const words: number[] = [];
  for (const m of text.toLowerCase().matchAll(WORD)) {
    const w = m[0];
    let h = 0x811c9dc5;
    for (let i = 0; i < w.length; i++) h = Math.imul(h ^ w.charCodeAt(i), 0x01000193);
    words.push(h >>> 0);
  }
  const n = Math.max(1, Math.min(ngram, words.length));
  const count = words.length === 0 ? 0 : words.length - n + 1;
  const out = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    let h = 0x9747b28c ^ n;
    for (let j = 0; j < n; j++) h = fmix32(Math.imul(h ^ words[i + j], 0x27d4eb2d) + j);
    out[i] = h;
  }
  return out;
}

export class MinHasher {
  readonly numPerm: number;
  readonly ngram: number;
  private readonly a: Uint32Array;
  private readonly b: Uint32Array;

  constructor(opts: MinHashOptions = {}) {
    this.numPerm = opts.numPerm ?? 128;
    this.ngram = opts.ngram ?? 5;
    const rng = new Rng(opts.seed ?? 1);
    this.a = new Uint32Array(this.numPerm);
    this.b = new Uint32Array(this.numPerm);
    for (let i = 0; i < this.numPerm; i++) {
      this.a[i] = rng.nextU32() | 1; // odd multiplier: x -> a*x + b is a bijection mod 2^32
      this.b[i] = rng.nextU32();
    }
  }

  /** Permutation i is fmix32(a_i * x + b_i): a pseudo-random bijection of 32-bit shingle hashes. */
  signature(text: string): Uint32Array {
    return this.signatureOf(shingleHashes(text, this.ngram));
  }

  signatureOf(shingles: Uint32Array): Uint32Array {
    const k = this.numPerm;
    const sig = new Uint32Array(k).fill(0xffffffff);
    const { a, b } = this;
    for (let s = 0; s < shingles.length; s++) {
      const x = shingles[s];
      for (let i = 0; i < k; i++) {
        let h = (Math.imul(x, a[i]) + b[i]) | 0;
        h ^= h >>> 16;
        h = Math.imul(h, 0x85ebca6b);
        h ^= h >>> 13;
        h = Math.imul(h, 0xc2b2ae35);
        h = (h ^ (h >>> 16)) >>> 0;
        if (h < sig[i]) sig[i] = h;
      }
    }
    return sig;
  }
}

/** The fraction of equal signature positions: an unbiased estimate of the shingle-set Jaccard. */
export function estimateJaccard(a: Uint32Array, b: Uint32Array): number {
  let eq = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) eq++;
  return eq / a.length;
}

/**
 * Bands and rows for an LSH threshold: minimise the weighted area of false positives below and false
 * negatives above the threshold of the collision curve 1 - (1 - s^r)^b (as datasketch does). Misses
 * weigh more because candidates are verified against their signatures anyway.
 */
export function lshParams(
  threshold: number,
  numPerm: number,
  fnWeight = 0.7,
): { bands: number; rows: number } {
  const steps = 200;
  const area = (lo: number, hi: number, f: (s: number) => number) => {
    let sum = 0;
    const dx = (hi - lo) / steps;
    for (let i = 0; i < steps; i++) sum += f(lo + (i + 0.5) * dx) * dx;
    return sum;
  };
  let best = { bands: 1, rows: numPerm, err: Number.POSITIVE_INFINITY };
  for (let b = 1; b <= numPerm; b++) {
    for (let r = 1; r * b <= numPerm; r++) {
      const p = (s: number) => 1 - (1 - s ** r) ** b;
      const fp = area(0, threshold, p);
      const fn = area(threshold, 1, (s) => 1 - p(s));
      const err = (1 - fnWeight) * fp + fnWeight * fn;
      if (err < best.err) best = { bands: b, rows: r, err };
    }
  }
  return { bands: best.bands, rows: best.rows };
}

/**
 * An LSH index over signatures kept in one growing typed array (numPerm * 4 bytes per document). A
 * document is a near-duplicate if it shares a band with a stored one whose estimated Jaccard reaches the
 * threshold; `addIfNew` then returns that document's index instead of storing the new one.
 */
export class LshIndex {
  private readonly buckets: Map<number, number | number[]>[];
  private sigs: Uint32Array;
  private count = 0;

  constructor(
    readonly numPerm: number,
    readonly bands: number,
    readonly rows: number,
    readonly threshold: number,
  ) {
    if (bands * rows > numPerm)
      throw new Error(`LSH: bands*rows (${bands}*${rows}) exceeds numPerm ${numPerm}`);
    this.buckets = Array.from({ length: bands }, () => new Map());
    this.sigs = new Uint32Array(numPerm * 1024);
  }

  get size(): number {
    return this.count;
  }

  private bandKey(sig: Uint32Array, band: number): number {
    let h1 = 0x12345678 ^ band;
    let h2 = 0x9e3779b9 ^ band;
    for (let i = band * this.rows, end = i + this.rows; i < end; i++) {
      h1 = fmix32(Math.imul(h1 ^ sig[i], 0x01000193));
      h2 = fmix32(Math.imul(h2 + sig[i], 0x5bd1e995));
    }
    // 52 bits of key: exact in a double, so false bucket collisions are ~2^-52.
    return h1 * 1048576 + (h2 & 0xfffff);
  }

  signatureAt(idx: number): Uint32Array {
    return this.sigs.subarray(idx * this.numPerm, (idx + 1) * this.numPerm);
  }

  /** Index of a stored near-duplicate of `sig`, or -1 after storing `sig` as a new document. */
  addIfNew(sig: Uint32Array): number {
    const keys: number[] = [];
    const seen = new Set<number>();
    for (let band = 0; band < this.bands; band++) {
      const key = this.bandKey(sig, band);
      keys.push(key);
      const hit = this.buckets[band].get(key);
      if (hit === undefined) continue;
      for (const idx of typeof hit === "number" ? [hit] : hit) {
        if (seen.has(idx)) continue;
        seen.add(idx);
        if (estimateJaccard(sig, this.signatureAt(idx)) >= this.threshold) return idx;
      }
    }
    const idx = this.count++;
    if (this.count * this.numPerm > this.sigs.length) {
      const grown = new Uint32Array(this.sigs.length * 2);
      grown.set(this.sigs);
      this.sigs = grown;
    }
    this.sigs.set(sig, idx * this.numPerm);
    for (let band = 0; band < this.bands; band++) {
      const m = this.buckets[band];
      const prev = m.get(keys[band]);
      if (prev === undefined) m.set(keys[band], idx);
      else if (typeof prev === "number") m.set(keys[band], [prev, idx]);
      else prev.push(idx);
    }
    return -1;
  }
}
