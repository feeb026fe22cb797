/**
 * KV-cache slots of the native engine and the prompt prefixes they share (prefix caching, as llama.cpp's
 * llama_kv_cache_seq_cp or vLLM's shared blocks). Prompts of one style start with the same template
 * (~60% of an HQ prompt with the demo's tokenizer), so a new sequence reads those positions from the slot
 * that computed them instead of recomputing or copying them: in a decode step all sequences then stream
 * one copy of the shared prefix (cache-resident) instead of one each, which halves the attention's memory
 * traffic. Keys/values of a position depend only on the tokens up to it, so sharing is bit-identical to
 * recomputing.
 *
 * Invariants: a slot that lends its prefix (a root) holds its own keys/values from position 0 (`own`,
 * possibly still being prefilled, see `take`) and shares nothing itself; while sequences read [0, n) from it, those positions are never rewritten —
 * the root is not reused, except by a request whose prompt agrees with the cached one on at least the
 * longest prefix that is being read (it then writes only after it).
 */
export interface Admission {
  slot: number;
  /** Prompt tokens already cached for the request (in its own slot or shared): its prefill starts here. */
  fed: number;
  /** Positions [0, share.n) are read from slot share.from (null: none). */
  share: { from: number; n: number } | null;
}

/** Shortest shared prefix worth reading from another slot (below it the bookkeeping costs more). */
const MIN_SHARE = 8;

export class SlotTable {
  private readonly active: boolean[];
  /** Prompt tokens whose keys/values this slot holds itself from position 0 (empty when it shares). */
  private readonly own: number[][];
  private readonly shareFrom: number[];
  private readonly shareLen: number[];
  /** Active sequences reading a prefix from this slot. */
  private readonly refs: number[];

  constructor(readonly size: number) {
    this.active = new Array(size).fill(false);
    this.own = Array.from({ length: size }, () => []);
    this.shareFrom = new Array(size).fill(-1);
    this.shareLen = new Array(size).fill(0);
    this.refs = new Array(size).fill(0);
  }

  /** Active slots plus inactive ones pinned by readers. */
  get busy(): number {
    let n = 0;
    for (let s = 0; s < this.size; s++) if (this.active[s] || this.refs[s] > 0) n++;
    return n;
  }

  /**
   * A slot for a request with this prompt, or null when none is available. The last prompt token is
   * never taken from the cache (it is run for its logits).
   */
  admit(prompt: number[]): Admission | null {
    const limit = prompt.length - 1;
    let best = 0;
    let src = -1;
    for (let s = 0; s < this.size; s++) {
      const n = commonPrefix(this.own[s], prompt, limit);
      if (n > best) {
        best = n;
        src = s;
      }
    }
    // The best source itself, when idle and its readers' prefixes stay intact: no sharing needed.
    if (src >= 0 && !this.active[src] && best >= this.longestRead(src))
      return this.take(src, prompt, best, null);
    let free = -1;
    for (let s = 0; s < this.size && free < 0; s++) if (!this.active[s] && this.refs[s] === 0) free = s;
    if (free < 0) return null;
    if (src >= 0 && best >= MIN_SHARE) return this.take(free, prompt, best, { from: src, n: best });
    return this.take(free, prompt, 0, null);
  }

  /** Active sequences reading a prefix from `slot`. */
  readers(slot: number): number {
    return this.refs[slot];
  }

  /**
   * The request in `slot` ended with its first `computed` prompt tokens in the cache (all of them unless
   * it was aborted during its prefill); they stay cached for later requests.
   */
  release(slot: number, computed: number): void {
    this.active[slot] = false;
    const from = this.shareFrom[slot];
    if (from >= 0) this.refs[from]--;
    else if (this.own[slot].length > computed) this.own[slot] = this.own[slot].slice(0, computed);
  }

  private take(slot: number, prompt: number[], fed: number, share: Admission["share"]): Admission {
    this.active[slot] = true;
    this.shareFrom[slot] = share ? share.from : -1;
    this.shareLen[slot] = share ? share.n : 0;
    if (share) {
      this.refs[share.from]++;
      this.own[slot] = [];
    } else {
      // The whole prompt, before its prefill has run: a request admitted later may share it at once,
      // since the engine's steps take prefill rows in admission order (its rows come after these, in
      // the same forward call or a later one) and a call writes all its rows' keys/values before any
      // attention reads them.
      this.own[slot] = prompt;
    }
    return { slot, fed, share };
  }

  /** The longest prefix active sequences read from `slot` (0 if none). */
  private longestRead(slot: number): number {
    if (this.refs[slot] === 0) return 0;
    let n = 0;
    for (let s = 0; s < this.size; s++) {
      if (this.active[s] && this.shareFrom[s] === slot) n = Math.max(n, this.shareLen[s]);
    }
    return n;
  }
}

function commonPrefix(a: number[], b: number[], limit: number): number {
  const n = Math.min(a.length, limit);
  let k = 0;
  while (k < n && a[k] === b[k]) k++;
  return k;
}
