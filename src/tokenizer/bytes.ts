/**
 * GPT-2's byte-to-unicode map: every byte 0..255 gets a printable character, so byte-level tokens can be
 * stored as JSON strings ("Ġthe" is the bytes " the"). HF tokenizer.json and llama.cpp's "gpt2"
 * tokenizer both use exactly this map.
 */
function buildByteOrder(): number[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const printable = new Set(bs);
  for (let b = 0; b < 256; b++) if (!printable.has(b)) bs.push(b);
  return bs;
}

/** BYTE_ORDER[k] is the byte of GPT-2 token id k (k < 256): the order of the printable-first list. */
export const BYTE_ORDER: readonly number[] = buildByteOrder();

/** BYTE_TO_CHAR[b] is the printable stand-in for byte b. */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const out = new Array<string>(256);
  let n = 0;
  for (const b of BYTE_ORDER) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    out[b] = String.fromCharCode(printable ? b : 256 + n++);
  }
  return out;
})();

const CHAR_TO_BYTE = new Int16Array(512).fill(-1);
for (let b = 0; b < 256; b++) CHAR_TO_BYTE[BYTE_TO_CHAR[b].charCodeAt(0)] = b;

export function bytesToTokenString(bytes: ArrayLike<number>): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += BYTE_TO_CHAR[bytes[i]];
  return s;
}

/** The bytes of a byte-level token string, or null if it has a character outside the byte map. */
export function tokenStringToBytes(s: string): Uint8Array | null {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const b = c < 512 ? CHAR_TO_BYTE[c] : -1;
    if (b < 0) return null;
    out[i] = b;
  }
  return out;
}

const encoder = new TextEncoder();
export function utf8(s: string): Uint8Array {
  return encoder.encode(s);
}
