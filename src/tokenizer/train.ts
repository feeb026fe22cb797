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
  const numMerges = checkedMergeCount(opts.vocabSize, specials.length);
  const progress = opts.onProgress;
  const words = wordsOf(await countPreTokens(texts, progress));
  const stats = new PairStats(256 + numMerges);
  stats.countAll(words);
  const tokens: Uint8Array[] = BYTE_ORDER.map((b) => Uint8Array.of(b));
  const merges = mergeLoop(words, stats, tokens, { numMerges, minFreq, progress });
  const nm = merges.length / 2;
  progress?.({ phase: "merge", done: nm, total: numMerges });
  const mergeIds = new Int32Array(nm);
  for (let r = 0; r < nm; r++) mergeIds[r] = 256 + r;
  const added = specials.map((content, k) => ({ id: tokens.length + k, content, special: true }));
  for (const t of added) tokens.push(utf8(t.content));
  return { tokens, merges: Int32Array.from(merges), mergeIds, added };
}

/** Merges that fit the vocabulary after the 256 bytes and the special tokens; throws if none can. */
function checkedMergeCount(vocabSize: number, specials: number): number {
  const numMerges = vocabSize - 256 - specials;
  if (!Number.isInteger(vocabSize) || numMerges < 0) {
    throw new SynthmixError(
      "BAD_VOCAB_SIZE",
      `vocabulary size ${vocabSize} is too small: it must hold the 256 byte tokens and ${specials} special token(s)`,
      { hint: `use a vocabulary size of at least ${256 + specials}` },
    );
  }
  return numMerges;
}

/** 1. How often each GPT-2 pre-token occurs in the texts. */
async function countPreTokens(
  texts: Iterable<string> | AsyncIterable<string>,
  progress: TrainOptions["onProgress"],
): Promise<Map<string, number>> {
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
  return counts;
}

/** The unique pre-tokens as symbol arrays (byte token ids, GPT-2 order) in one flat buffer. */
interface Words {
  n: number;
  sym: Int32Array;
  start: Int32Array;
  len: Int32Array;
  count: Float64Array;
}

/** 2. Words from the counts (the Map is emptied: its strings are not needed any more). */
function wordsOf(counts: Map<string, number>): Words {
  const byteToId = new Int32Array(256);
  BYTE_ORDER.forEach((b, id) => {
    byteToId[b] = id;
  });
  const n = counts.size;
  const start = new Int32Array(n);
  const len = new Int32Array(n);
  const count = new Float64Array(n);
  const encoded: Uint8Array[] = [];
  let total = 0;
  for (const piece of counts.keys()) {
    const u = utf8(piece);
    encoded.push(u);
    total += u.length;
  }
  const sym = new Int32Array(total);
  let w = 0;
  let off = 0;
  for (const c of counts.values()) {
    const u = encoded[w];
    start[w] = off;
    len[w] = u.length;
    count[w] = c;
    for (let k = 0; k < u.length; k++) sym[off + k] = byteToId[u[k]];
    off += u.length;
    w++;
  }
  counts.clear();
  return { n, sym, start, len, count };
}

/** 3. Pair statistics: every adjacent pair's id, total count and the words it occurs in. */
class PairStats {
  private readonly index = new Map<number, number>();
  readonly a: number[] = [];
  readonly b: number[] = [];
  readonly count: number[] = [];
  words: number[][] = [];

  constructor(private readonly maxId: number) {}

  /** The id of pair (a, b), created with count 0 on first sight. */
  of(a: number, b: number): number {
    const key = a * this.maxId + b;
    let p = this.index.get(key);
    if (p === undefined) {
      p = this.a.length;
      this.index.set(key, p);
      this.a.push(a);
      this.b.push(b);
      this.count.push(0);
      this.words.push([]);
    }
    return p;
  }

  /** Record that pair p occurs in word w (once per word: words are visited in order). */
  addWord(p: number, w: number): void {
    const list = this.words[p];
    if (list[list.length - 1] !== w) list.push(w);
  }

  countAll(words: Words): void {
    const { sym, start, len, count } = words;
    for (let w = 0; w < words.n; w++) {
      const e = start[w] + len[w] - 1;
      for (let k = start[w]; k < e; k++) {
        const p = this.of(sym[k], sym[k + 1]);
        this.count[p] += count[w];
        this.addWord(p, w);
      }
    }
  }
}

interface MergeLimits {
  numMerges: number;
  minFreq: number;
  progress: TrainOptions["onProgress"];
}

/** 4. Merge the most frequent pair until the vocabulary is full or no pair is frequent enough. */
function mergeLoop(words: Words, stats: PairStats, tokens: Uint8Array[], lim: MergeLimits): number[] {
  const heap = new PairHeap(stats.a, stats.b);
  for (let p = 0; p < stats.a.length; p++) heap.push(p, stats.count[p]);
  const merges: number[] = [];
  const touched = new Set<number>();
  while (merges.length / 2 < lim.numMerges && heap.size > 0) {
    const [p, snap] = heap.pop();
    const cur = stats.count[p];
    if (snap !== cur) {
      // A stale heap entry: the pair's count changed since it was pushed.
      if (cur > 0) heap.push(p, cur);
      continue;
    }
    if (cur < lim.minFreq) break;
    const a = stats.a[p];
    const b = stats.b[p];
    merges.push(a, b);
    tokens.push(concat(tokens[a], tokens[b]));
    touched.clear();
    for (const w of stats.words[p]) mergeInWord(words, w, a, b, tokens.length - 1, stats, touched);
    stats.words[p] = [];
    for (const q of touched) if (stats.count[q] > 0) heap.push(q, stats.count[q]);
    if (lim.progress && (merges.length / 2) % 100 === 0) {
      lim.progress({ phase: "merge", done: merges.length / 2, total: lim.numMerges });
    }
  }
  return merges;
}

function concat(x: Uint8Array, y: Uint8Array): Uint8Array {
  const out = new Uint8Array(x.length + y.length);
  out.set(x);
  out.set(y, x.length);
  return out;
}

function hasPair(sym: Int32Array, s: number, e: number, a: number, b: number): boolean {
  for (let k = s; k < e - 1; k++) if (sym[k] === a && sym[k + 1] === b) return true;
  return false;
}

/**
 * Replace every (a, b) in word w by c and update the pair counts: only pairs touching a or b change
 * (before), or touching a, b or c (after). Pairs with c are new: recorded for the word and in `touched`.
 */
function mergeInWord(
  words: Words,
  w: number,
  a: number,
  b: number,
  c: number,
  stats: PairStats,
  touched: Set<number>,
): void {
  const { sym } = words;
  const s = words.start[w];
  const e = s + words.len[w];
  if (!hasPair(sym, s, e, a, b)) return; // stale entry: the pair left this word in an earlier merge
  const cnt = words.count[w];
  for (let k = s; k < e - 1; k++) {
    const x = sym[k];
    const y = sym[k + 1];
    if (x === a || x === b || y === a || y === b) stats.count[stats.of(x, y)] -= cnt;
  }
  let o = s;
  for (let k = s; k < e; ) {
    if (k < e - 1 && sym[k] === a && sym[k + 1] === b) {
      sym[o++] = c;
      k += 2;
    } else sym[o++] = sym[k++];
  }
  words.len[w] = o - s;
  for (let k = s; k < o - 1; k++) {
    const x = sym[k];
    const y = sym[k + 1];
    if (x === c || y === c) {
      const q = stats.of(x, y);
      stats.count[q] += cnt;
      stats.addWord(q, w);
      touched.add(q);
    } else if (x === a || x === b || y === a || y === b) stats.count[stats.of(x, y)] += cnt;
  }
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
