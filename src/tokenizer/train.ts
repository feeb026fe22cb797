import { SynthmixError } from "../util/errors.js";
import { BYTE_ORDER, utf8 } from "./bytes.js";
import type { TokenizerData } from "./hf.js";
import { pieceEnd } from "./pretokenize.js";

export interface TrainOptions {
  /** Total ids including the 256 byte tokens and the special tokens. */
  vocabSize: number;
  /** Stop merging when the most frequent pair occurs fewer times than this (default 2). */
  minFrequency?: number;
  /** Default ["<|endoftext|>"]; they get the last ids. */
  specialTokens?: string[];
  onProgress?: (p: TrainProgress) => void;
}

export interface TrainProgress {
  phase: "count" | "merge";
  /** Documents read (count) or merges learned (merge). */
  done: number;
  total?: number;
  bytes?: number;
}

/**
 * Byte-level BPE training. Pre-tokens are counted once; then each merge rewrites only the words that
 * contain the chosen pair (a pair -> words index) and updates pair counts incrementally, and the next
 * pair comes from a lazy max-heap. Ties are broken by the smaller (left id, right id), so the result
 * depends only on the multiset of pre-tokens, never on Map or input order.
 */
export async function trainBpe(
  texts: Iterable<string> | AsyncIterable<string>,
  opts: TrainOptions,
): Promise<TokenizerData> {
  const specials = opts.specialTokens ?? ["<|endoftext|>"];
  const minFreq = Math.max(1, opts.minFrequency ?? 2);
  const numMerges = opts.vocabSize - 256 - specials.length;
  if (!Number.isInteger(opts.vocabSize) || numMerges < 0) {
    throw new SynthmixError(
      "BAD_VOCAB_SIZE",
      `vocabulary size ${opts.vocabSize} is too small: it must hold the 256 byte tokens and ${specials.length} special token(s)`,
      { hint: `use a vocabulary size of at least ${256 + specials.length}` },
    );
  }
  const progress = opts.onProgress;

  // 1. Count pre-tokens.
  const counts = new Map<string, number>();
  let docs = 0;
  let bytes = 0;
  for await (const text of texts) {
    if (typeof text !== "string") {
      throw new SynthmixError("BAD_DOCUMENT", `training document ${docs} is a ${typeof text}, not a string`);
    }
    for (let i = 0; i < text.length; ) {
      const j = pieceEnd(text, i);
      const piece = text.slice(i, j);
      counts.set(piece, (counts.get(piece) ?? 0) + 1);
      i = j;
    }
    docs++;
    bytes += text.length;
    if (progress && docs % 256 === 0) progress({ phase: "count", done: docs, bytes });
  }
  progress?.({ phase: "count", done: docs, bytes });

  // 2. Words as symbol arrays (byte token ids, GPT-2 order) in one flat buffer.
  const byteToId = new Int32Array(256);
  BYTE_ORDER.forEach((b, id) => {
    byteToId[b] = id;
  });
  const nWords = counts.size;
  const wordStart = new Int32Array(nWords);
  const wordLen = new Int32Array(nWords);
  const wordCount = new Float64Array(nWords);
  const encoded: Uint8Array[] = [];
  let total = 0;
  for (const piece of counts.keys()) {
    const u = utf8(piece);
    encoded.push(u);
    total += u.length;
  }
  const sym = new Int32Array(total);
  {
    let w = 0;
    let off = 0;
    for (const c of counts.values()) {
      const u = encoded[w];
      wordStart[w] = off;
      wordLen[w] = u.length;
      wordCount[w] = c;
      for (let k = 0; k < u.length; k++) sym[off + k] = byteToId[u[k]];
      off += u.length;
      w++;
    }
  }
  encoded.length = 0;
  counts.clear();

  // 3. Pair statistics.
  const maxId = 256 + numMerges;
  const pairIndex = new Map<number, number>();
  const pA: number[] = [];
  const pB: number[] = [];
  const pCount: number[] = [];
  const pWords: number[][] = [];
  const pairOf = (a: number, b: number): number => {
    const key = a * maxId + b;
    let p = pairIndex.get(key);
    if (p === undefined) {
      p = pA.length;
      pairIndex.set(key, p);
      pA.push(a);
      pB.push(b);
      pCount.push(0);
      pWords.push([]);
    }
    return p;
  };
  for (let w = 0; w < nWords; w++) {
    const s = wordStart[w];
    const e = s + wordLen[w] - 1;
    for (let k = s; k < e; k++) {
      const p = pairOf(sym[k], sym[k + 1]);
      pCount[p] += wordCount[w];
      const list = pWords[p];
      if (list[list.length - 1] !== w) list.push(w);
    }
  }

  const heap = new PairHeap(pA, pB);
  for (let p = 0; p < pA.length; p++) heap.push(p, pCount[p]);

  // 4. Merge.
  const tokens: Uint8Array[] = BYTE_ORDER.map((b) => Uint8Array.of(b));
  const merges: number[] = [];
  const touched = new Set<number>();
  while (merges.length / 2 < numMerges && heap.size > 0) {
    const [p, snap] = heap.pop();
    const cur = pCount[p];
    if (snap !== cur) {
      if (cur > 0) heap.push(p, cur);
      continue;
    }
    if (cur < minFreq) break;
    const a = pA[p];
    const b = pB[p];
    const c = tokens.length;
    merges.push(a, b);
    const ta = tokens[a];
    const tb = tokens[b];
    const tc = new Uint8Array(ta.length + tb.length);
    tc.set(ta);
    tc.set(tb, ta.length);
    tokens.push(tc);
    touched.clear();
    for (const w of pWords[p]) {
      const s = wordStart[w];
      const n = wordLen[w];
      const e = s + n;
      let has = false;
      for (let k = s; k < e - 1; k++) {
        if (sym[k] === a && sym[k + 1] === b) {
          has = true;
          break;
        }
      }
      if (!has) continue; // stale entry: the pair left this word in an earlier merge
      const cnt = wordCount[w];
      // Only pairs touching a or b change (before), or touching a, b or c (after).
      for (let k = s; k < e - 1; k++) {
        const x = sym[k];
        const y = sym[k + 1];
        if (x === a || x === b || y === a || y === b) pCount[pairOf(x, y)] -= cnt;
      }
      let o = s;
      for (let k = s; k < e; ) {
        if (k < e - 1 && sym[k] === a && sym[k + 1] === b) {
          sym[o++] = c;
          k += 2;
        } else sym[o++] = sym[k++];
      }
      wordLen[w] = o - s;
      for (let k = s; k < o - 1; k++) {
        const x = sym[k];
        const y = sym[k + 1];
        if (x === c || y === c) {
          const q = pairOf(x, y);
          pCount[q] += cnt;
          const list = pWords[q];
          if (list[list.length - 1] !== w) list.push(w);
          touched.add(q);
        } else if (x === a || x === b || y === a || y === b) pCount[pairOf(x, y)] += cnt;
      }
    }
    pWords[p] = [];
    for (const q of touched) if (pCount[q] > 0) heap.push(q, pCount[q]);
    if (progress && (merges.length / 2) % 100 === 0) {
      progress({ phase: "merge", done: merges.length / 2, total: numMerges });
    }
  }
  const nm = merges.length / 2;
  progress?.({ phase: "merge", done: nm, total: numMerges });
  const mergeIds = new Int32Array(nm);
  for (let r = 0; r < nm; r++) mergeIds[r] = 256 + r;
  const added = specials.map((content, k) => ({ id: tokens.length + k, content, special: true }));
  for (const t of added) tokens.push(utf8(t.content));
  return { tokens, merges: Int32Array.from(merges), mergeIds, added };
}

/** Max-heap of (count, pair): higher count first, then smaller left id, then smaller right id. */
class PairHeap {
  private p: number[] = [];
  private c: number[] = [];
  constructor(
    private readonly pA: number[],
    private readonly pB: number[],
  ) {}
  get size(): number {
    return this.p.length;
  }
  private before(p1: number, c1: number, p2: number, c2: number): boolean {
    if (c1 !== c2) return c1 > c2;
    if (this.pA[p1] !== this.pA[p2]) return this.pA[p1] < this.pA[p2];
    return this.pB[p1] < this.pB[p2];
  }
  push(pair: number, count: number): void {
    const P = this.p;
    const C = this.c;
    let i = P.length;
    P.push(pair);
    C.push(count);
    while (i > 0) {
      const up = (i - 1) >> 1;
      if (!this.before(pair, count, P[up], C[up])) break;
      P[i] = P[up];
      C[i] = C[up];
      i = up;
    }
    P[i] = pair;
    C[i] = count;
  }
  pop(): [number, number] {
    const P = this.p;
    const C = this.c;
    const top: [number, number] = [P[0], C[0]];
    const lp = P.pop()!;
    const lc = C.pop()!;
    const n = P.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const m = r < n && this.before(P[r], C[r], P[l], C[l]) ? r : l;
        if (!this.before(P[m], C[m], lp, lc)) break;
        P[i] = P[m];
        C[i] = C[m];
        i = m;
      }
      P[i] = lp;
      C[i] = lc;
    }
    return top;
  }
}
