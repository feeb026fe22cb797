import { readFileSync } from "node:fs";
import { SynthmixError } from "./errors.js";

/**
 * Token files (`tokens.bin`, test sets) are raw little-endian ids: uint16 when the vocabulary has fewer
 * than 65536 entries, else uint32 (docs/design.md). The dtype is recorded in the manifest next to the file.
 */
export type TokenDtype = "uint16" | "uint32";

export function dtypeForVocab(vocabSize: number): TokenDtype {
  return vocabSize < 65536 ? "uint16" : "uint32";
}

export function encodeTokens(ids: ArrayLike<number>, dtype: TokenDtype): Uint8Array {
  const arr = dtype === "uint16" ? new Uint16Array(ids.length) : new Uint32Array(ids.length);
  for (let i = 0; i < ids.length; i++) arr[i] = ids[i];
  return new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength);
}

export function readTokens(path: string, dtype: TokenDtype): Uint16Array | Uint32Array {
  const buf = readFileSync(path);
  const width = dtype === "uint16" ? 2 : 4;
  if (buf.byteLength % width !== 0) {
    throw new SynthmixError(
      "BAD_TOKEN_FILE",
      `${path}: size ${buf.byteLength} bytes is not a multiple of ${width} (${dtype}); the file is truncated or the dtype is wrong`,
    );
  }
  // Copy into an aligned buffer: Buffer slices from the pool may not be 2/4-byte aligned.
  const copy = new Uint8Array(buf.byteLength);
  copy.set(buf);
  return dtype === "uint16" ? new Uint16Array(copy.buffer) : new Uint32Array(copy.buffer);
}
