/**
 * The pre-token cache of the encoder: most pre-tokens of real text repeat, so their ids are looked up by
 * the characters of text[i, j) directly. Unlike a Map<string, ...>, a lookup allocates no substring:
 * pieces and ids live in flat typed arrays and slots of an open-addressing table.
 */
import { grown } from "../util/typed.js";

const SLOT = 5; // hash, char offset, char length, id offset, id length
export const MAX_CACHED_PIECE = 64;

export class PieceCache {
  private slots: Int32Array;
  private readonly mask: number;
  private chars: Uint16Array = new Uint16Array(1 << 16);
  private charTop = 0;
  private ids: Int32Array = new Int32Array(1 << 15);
  private idTop = 0;
  private count = 0;

  constructor(bits = 18) {
    this.slots = new Int32Array((1 << bits) * SLOT).fill(-1);
    this.mask = (1 << bits) - 1;
  }

  clear(): void {
    if (this.count === 0) return;
    this.slots.fill(-1);
    this.charTop = 0;
    this.idTop = 0;
    this.count = 0;
  }

  /** Append the cached ids of text[i, j) (hash h) to out; false if not cached. */
  lookupInto(text: string, i: number, j: number, h: number, out: number[]): boolean {
    const slots = this.slots;
    const chars = this.chars;
    const n = j - i;
    let s = ((h ^ (h >>> 15)) & this.mask) * SLOT;
    for (;;) {
      const off = slots[s + 1];
      if (off === -1) return false;
      if (slots[s] === h && slots[s + 2] === n) {
        let k = 0;
        while (k < n && chars[off + k] === text.charCodeAt(i + k)) k++;
        if (k === n) {
          const ids = this.ids;
          const a = slots[s + 3];
          const e = a + slots[s + 4];
          for (let q = a; q < e; q++) out.push(ids[q]);
          return true;
        }
      }
      s += SLOT;
      if (s === slots.length) s = 0;
    }
  }

  insert(text: string, i: number, j: number, h: number, pieceIds: number[]): void {
    if (this.count * 2 >= this.mask) this.clear();
    const n = j - i;
    if (this.charTop + n > this.chars.length) this.chars = grown(this.chars, this.charTop + n);
    if (this.idTop + pieceIds.length > this.ids.length)
      this.ids = grown(this.ids, this.idTop + pieceIds.length);
    const slots = this.slots;
    let s = ((h ^ (h >>> 15)) & this.mask) * SLOT;
    while (slots[s + 1] !== -1) {
      s += SLOT;
      if (s === slots.length) s = 0;
    }
    slots[s] = h;
    slots[s + 1] = this.charTop;
    slots[s + 2] = n;
    slots[s + 3] = this.idTop;
    slots[s + 4] = pieceIds.length;
    for (let k = 0; k < n; k++) this.chars[this.charTop + k] = text.charCodeAt(i + k);
    this.charTop += n;
    for (let k = 0; k < pieceIds.length; k++) this.ids[this.idTop + k] = pieceIds[k];
    this.idTop += pieceIds.length;
    this.count++;
  }
}
