import { SynthmixError } from "../util/errors.js";
import { MAX_CACHED_PIECE, PieceCache } from "./cache.js";
import { pieceEnd } from "./pretokenize.js";

/**
 * The byte-level BPE model: token bytes, the 256 byte tokens, and the ranked merges. Hand-written rather
 * than wrapping a library because encoding speed is the point of this stage (see bench/tokenizer.ts):
 * pre-tokens are cached, merges live in an open-addressing table of packed int pairs, and the merge loop
 * runs on small Int32Arrays.
 */
export interface BpeModelData {
  /** Bytes of each token id (special tokens: the UTF-8 of their content). */
  tokens: Uint8Array[];
  /** Merges in priority order: merges[2r], merges[2r+1] are the ids merged by the rank-r merge. */
  merges: Int32Array;
  /** Id produced by the rank-r merge. */
  mergeIds: Int32Array;
}

const NO_RANK = 0x7fffffff;
// Pieces longer than this use the O(n log n) heap merge instead of the O(n^2) scan.
const LONG_PIECE = 96;

export class BpeModel {
  readonly tokens: Uint8Array[];
  readonly merges: Int32Array;
  readonly mergeIds: Int32Array;
  readonly byteToId = new Int32Array(256);
  /** Slots of 4 ints: left id, right id, rank, merged id; left = -1 marks an empty slot. */
  private table: Int32Array;
  private mask: number;
  private count = 0;
  private cache = new PieceCache();
  private ids = new Int32Array(256);
  private ranks = new Int32Array(256);
  private readonly utf8Buf = new Uint8Array(1024);
  private whole?: Map<string, number>;

  constructor(data: BpeModelData) {
    this.tokens = data.tokens;
    this.merges = data.merges;
    this.mergeIds = data.mergeIds;
    this.byteToId.fill(-1);
    for (let id = 0; id < data.tokens.length; id++) {
      const t = data.tokens[id];
      if (t.length === 1 && this.byteToId[t[0]] < 0) this.byteToId[t[0]] = id;
    }
    for (let b = 0; b < 256; b++) {
      if (this.byteToId[b] < 0) {
        throw new SynthmixError(
          "TOKENIZER_FORMAT",
          `the vocabulary has no token for byte 0x${b.toString(16).padStart(2, "0")}: not a byte-level BPE`,
          {
            hint: "use a byte-level BPE tokenizer.json (GPT-2 style), or train one with `synthmix tokenizer train`",
          },
        );
      }
    }
    const n = data.mergeIds.length;
    let cap = 16;
    while (cap < n * 2) cap *= 2;
    this.table = new Int32Array(cap * 4).fill(-1);
    this.mask = cap - 1;
    for (let r = 0; r < n; r++) {
      const a = data.merges[2 * r];
      const b = data.merges[2 * r + 1];
      // A duplicated pair keeps its first (highest priority) rank, as HF does.
      if (this.findSlot(a, b) < 0) {
        this.insert(a, b, r, data.mergeIds[r]);
        this.count++;
      }
    }
  }

  /** Add a merge of lower priority than all present (used to recover merges from tiktoken ranks). */
  addMerge(a: number, b: number, rank: number, id: number): void {
    if (this.findSlot(a, b) >= 0) return;
    this.count++;
    if (this.count * 2 > this.mask + 1) {
      const old = this.table;
      this.table = new Int32Array(old.length * 2).fill(-1);
      this.mask = old.length / 2 - 1;
      for (let s = 0; s < old.length; s += 4)
        if (old[s] !== -1) this.insert(old[s], old[s + 1], old[s + 2], old[s + 3]);
    }
    this.insert(a, b, rank, id);
    this.cache.clear();
  }

  private insert(a: number, b: number, rank: number, id: number): void {
    const t = this.table;
    let h = hashPair(a, b) & this.mask;
    while (t[h * 4] !== -1) h = (h + 1) & this.mask;
    t[h * 4] = a;
    t[h * 4 + 1] = b;
    t[h * 4 + 2] = rank;
    t[h * 4 + 3] = id;
  }

  /** Index (times 4) of the slot of merge (a, b), or -1. */
  findSlot(a: number, b: number): number {
    const t = this.table;
    let h = hashPair(a, b) & this.mask;
    for (;;) {
      const s = h * 4;
      const x = t[s];
      if (x === a && t[s + 1] === b) return s;
      if (x === -1) return -1;
      h = (h + 1) & this.mask;
    }
  }

  private rankOf(a: number, b: number): number {
    const s = this.findSlot(a, b);
    return s < 0 ? NO_RANK : this.table[s + 2];
  }

  /** Append the token ids of ordinary text (no special tokens) to `out`. */
  encodeInto(text: string, out: number[]): void {
    const len = text.length;
    const cache = this.cache;
    let i = 0;
    while (i < len) {
      const j = pieceEnd(text, i);
      if (j - i > MAX_CACHED_PIECE) {
        const ids = this.encodePiece(text.slice(i, j));
        for (let k = 0; k < ids.length; k++) out.push(ids[k]);
      } else {
        let h = 0x811c9dc5 ^ (j - i);
        for (let k = i; k < j; k++) h = Math.imul(h ^ text.charCodeAt(k), 0x01000193);
        if (!cache.lookupInto(text, i, j, h, out)) {
          const ids = this.encodePiece(text.slice(i, j));
          cache.insert(text, i, j, h, ids);
          for (let k = 0; k < ids.length; k++) out.push(ids[k]);
        }
      }
      i = j;
    }
  }

  /** Append the ids of the single pre-token text[i, j) to `out` (through the cache). */
  encodeRange(text: string, i: number, j: number, out: number[]): void {
    if (j - i > MAX_CACHED_PIECE) {
      const ids = this.encodePiece(text.slice(i, j));
      for (let k = 0; k < ids.length; k++) out.push(ids[k]);
      return;
    }
    let h = 0x811c9dc5 ^ (j - i);
    for (let k = i; k < j; k++) h = Math.imul(h ^ text.charCodeAt(k), 0x01000193);
    if (!this.cache.lookupInto(text, i, j, h, out)) {
      const ids = this.encodePiece(text.slice(i, j));
      this.cache.insert(text, i, j, h, ids);
      for (let k = 0; k < ids.length; k++) out.push(ids[k]);
    }
  }

  /**
   * HF `ignore_merges` (Llama-3): a pre-token that is itself in the vocabulary becomes that token without
   * running the merges. `exclude` are the added-token ids, which are not part of the BPE model's vocab.
   */
  setIgnoreMerges(exclude: Set<number>): void {
    const whole = new Map<string, number>();
    const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
    for (let id = 0; id < this.tokens.length; id++) {
      const t = this.tokens[id];
      if (t.length === 0 || exclude.has(id)) continue;
      try {
        const s = strict.decode(t);
        if (!whole.has(s)) whole.set(s, id);
      } catch {
        // A token cutting a UTF-8 character can never equal a whole pre-token.
      }
    }
    this.whole = whole;
    this.cache.clear();
  }

  /** BPE of one pre-token. */
  encodePiece(piece: string): number[] {
    if (this.whole) {
      const id = this.whole.get(piece);
      if (id !== undefined) return [id];
    }
    const n = this.loadBytes(piece);
    return n > LONG_PIECE ? this.mergeLong(n) : this.mergeShort(n);
  }

  /** Token ids of raw bytes, with no pre-tokenization (used to recover merges from ranks). */
  encodeBytesRaw(bytes: Uint8Array): number[] {
    this.ensure(bytes.length);
    for (let k = 0; k < bytes.length; k++) this.ids[k] = this.byteToId[bytes[k]];
    return bytes.length > LONG_PIECE ? this.mergeLong(bytes.length) : this.mergeShort(bytes.length);
  }

  /** Write the byte ids of `piece` (UTF-8) into this.ids; returns the count. */
  private loadBytes(piece: string): number {
    const m = piece.length;
    this.ensure(m * 3);
    const ids = this.ids;
    const b2i = this.byteToId;
    let ascii = true;
    for (let k = 0; k < m; k++) {
      const c = piece.charCodeAt(k);
      if (c >= 128) {
        ascii = false;
        break;
      }
      ids[k] = b2i[c];
    }
    if (ascii) return m;
    let buf = this.utf8Buf;
    if (buf.length < m * 3) buf = new Uint8Array(m * 3);
    // encodeInto replaces lone surrogates with U+FFFD, like every UTF-8 encoder.
    const { written } = textEncoder.encodeInto(piece, buf);
    for (let k = 0; k < written; k++) ids[k] = b2i[buf[k]];
    return written;
  }

  private ensure(n: number): void {
    if (this.ids.length < n) {
      let cap = this.ids.length;
      while (cap < n) cap *= 2;
      this.ids = new Int32Array(cap);
      this.ranks = new Int32Array(cap);
    }
  }

  /** Lowest rank first, leftmost among equal ranks: the same order as HF tokenizers and tiktoken. */
  private mergeShort(n: number): number[] {
    const ids = this.ids;
    const ranks = this.ranks;
    const t = this.table;
    for (let k = 0; k < n - 1; k++) ranks[k] = this.rankOf(ids[k], ids[k + 1]);
    while (n > 1) {
      let min = NO_RANK;
      let at = -1;
      for (let k = 0; k < n - 1; k++) {
        if (ranks[k] < min) {
          min = ranks[k];
          at = k;
        }
      }
      if (at < 0) break;
      ids[at] = t[this.findSlot(ids[at], ids[at + 1]) + 3];
      for (let k = at + 1; k < n - 1; k++) {
        ids[k] = ids[k + 1];
        ranks[k] = ranks[k + 1];
      }
      n--;
      if (at < n - 1) ranks[at] = this.rankOf(ids[at], ids[at + 1]);
      if (at > 0) ranks[at - 1] = this.rankOf(ids[at - 1], ids[at]);
    }
    const out = new Array<number>(n);
    for (let k = 0; k < n; k++) out[k] = ids[k];
    return out;
  }

  /** Same result as mergeShort in O(n log n): a linked list plus a min-heap of (rank, position). */
  private mergeLong(n: number): number[] {
    const ids = this.ids.slice(0, n);
    const next = new Int32Array(n);
    const prev = new Int32Array(n);
    for (let k = 0; k < n; k++) {
      next[k] = k + 1 < n ? k + 1 : -1;
      prev[k] = k - 1;
    }
    const alive = new Uint8Array(n).fill(1);
    const heap = new MinHeap();
    const push = (k: number) => {
      const nk = next[k];
      if (nk < 0) return;
      const r = this.rankOf(ids[k], ids[nk]);
      if (r !== NO_RANK) heap.push(r * 4294967296 + k);
    };
    for (let k = 0; k < n - 1; k++) push(k);
    while (heap.size > 0) {
      const key = heap.pop();
      const k = key % 4294967296;
      const r = (key - k) / 4294967296;
      if (!alive[k]) continue;
      const nk = next[k];
      if (nk < 0) continue;
      const s = this.findSlot(ids[k], ids[nk]);
      if (s < 0 || this.table[s + 2] !== r) continue; // stale entry
      ids[k] = this.table[s + 3];
      alive[nk] = 0;
      const nn = next[nk];
      next[k] = nn;
      if (nn >= 0) prev[nn] = k;
      push(k);
      if (prev[k] >= 0) push(prev[k]);
    }
    const out: number[] = [];
    for (let k = 0; k >= 0; k = next[k]) out.push(ids[k]);
    return out;
  }
}

const textEncoder = new TextEncoder();

function hashPair(a: number, b: number): number {
  let x = (Math.imul(a, 0x9e3779b1) + b) | 0;
  x = Math.imul(x ^ (x >>> 15), 0x85ebca77);
  return x ^ (x >>> 13);
}

/** Binary min-heap of non-negative doubles (packed rank * 2^32 + position). */
class MinHeap {
  private a: number[] = [];
  get size(): number {
    return this.a.length;
  }
  push(x: number): void {
    const a = this.a;
    let i = a.length;
    a.push(x);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p] <= x) break;
      a[i] = a[p];
      i = p;
    }
    a[i] = x;
  }
  pop(): number {
    const a = this.a;
    const top = a[0];
    const last = a.pop()!;
    if (a.length > 0) {
      let i = 0;
      const n = a.length;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && a[r] < a[l] ? r : l;
        if (a[c] >= last) break;
        a[i] = a[c];
        i = c;
      }
      a[i] = last;
    }
    return top;
  }
}
