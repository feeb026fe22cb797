import { closeSync, openSync, statSync } from "node:fs";
import { SynthmixError } from "../util/errors.js";
import { readExactly } from "../util/readexact.js";
import { Rng } from "../util/rng.js";
import type { TokenDtype } from "../util/tokenfile.js";
import type { UnigramCounts } from "./unigram.js";

const CHUNK_TOKENS = 1 << 20; // 2-4 MB read at a time, whatever the file size

/** Tokens in a raw token file, from its size (the file is not read). */
export function tokenFileLength(path: string, dtype: TokenDtype): number {
  const width = dtype === "uint16" ? 2 : 4;
  const bytes = statSync(path).size;
  if (bytes % width !== 0) {
    throw new SynthmixError(
      "BAD_TOKEN_FILE",
      `${path}: size ${bytes} bytes is not a multiple of ${width} (${dtype}); the file is truncated or the dtype is wrong`,
    );
  }
  return bytes / width;
}

/**
 * Unigram counts of a token file read in fixed chunks (memory: the chunk and the count tables, never
 * the file), and, when `sample` is given, the counts of `sample.m` of its tokens drawn without
 * replacement in the same pass: sequential sampling (Vitter's algorithm A, "Efficient algorithm for
 * sequential random sampling", ACM TOMS 1987: one uniform draw per token taken gives the gap to the
 * next one), which gives every m-subset the same chance, like a Fisher-Yates draw, with O(1) state
 * instead of an index array over the whole file, and m draws instead of n.
 */
export function countTokenFile(
  path: string,
  dtype: TokenDtype,
  vocabSize: number,
  sample?: { m: number; seed: number },
): { full: UnigramCounts; sample?: UnigramCounts } {
  const n = tokenFileLength(path, dtype);
  const full = new Float64Array(vocabSize);
  const sampler = sample ? new SequentialSample(Math.min(sample.m, n), n, vocabSize, sample.seed) : undefined;
  const width = dtype === "uint16" ? 2 : 4;
  const buf = dtype === "uint16" ? new Uint16Array(CHUNK_TOKENS) : new Uint32Array(CHUNK_TOKENS);
  const bytes = new Uint8Array(buf.buffer);
  const fd = openSync(path, "r");
  try {
    for (let start = 0; start < n; start += CHUNK_TOKENS) {
      const len = Math.min(CHUNK_TOKENS, n - start);
      readExactly(fd, bytes.subarray(0, len * width), start * width, path, "BAD_TOKEN_FILE");
      for (let i = 0; i < len; i++) {
        const id = buf[i];
        if (id >= vocabSize) throw badId(path, start + i, id, vocabSize);
        full[id]++;
      }
      sampler?.take(buf, start, len);
    }
  } finally {
    closeSync(fd);
  }
  return {
    full: withTypes(full, vocabSize, n),
    ...(sampler ? { sample: withTypes(sampler.counts, vocabSize, sampler.m) } : {}),
  };
}

/** Counts of m of n positions, taken in order as the chunks stream past (algorithm A's gaps). */
class SequentialSample {
  readonly counts: Float64Array;
  private readonly rng: Rng;
  private need: number;
  /** Next position to take (-1: none); when every token is taken (m = n) no draws are made. */
  private pick: number;

  constructor(
    readonly m: number,
    private readonly n: number,
    vocabSize: number,
    seed: number,
  ) {
    this.counts = new Float64Array(vocabSize);
    this.rng = new Rng(seed);
    this.need = m;
    this.pick = m === 0 ? -1 : m === n ? 0 : gapA(m, n, this.rng);
  }

  /** The chunk holds positions [start, start + len) (ids already checked). */
  take(ids: Uint16Array | Uint32Array, start: number, len: number): void {
    const end = start + len;
    while (this.pick >= 0 && this.pick < end) {
      this.counts[ids[this.pick - start]]++;
      this.need--;
      const left = this.n - this.pick - 1;
      const gap = this.m === this.n ? 0 : this.need > 0 ? gapA(this.need, left, this.rng) : 0;
      this.pick = this.need === 0 ? -1 : this.pick + 1 + gap;
    }
  }
}

/**
 * Algorithm A's skip: how many of the next `left` positions to pass over before taking one, when
 * `need` of them are still to be taken. P(skip > s) = prod_{j=0..s} (left - need - j) / (left - j).
 */
function gapA(need: number, left: number, rng: Rng): number {
  const v = rng.next();
  let top = left - need;
  let rest = left;
  let quot = top / rest;
  let skip = 0;
  while (quot > v) {
    skip++;
    top--;
    rest--;
    quot = (quot * top) / rest;
  }
  return skip;
}

function withTypes(counts: Float64Array, vocabSize: number, total: number): UnigramCounts {
  let types = 0;
  for (let v = 0; v < vocabSize; v++) if (counts[v] > 0) types++;
  return { vocabSize, counts, total, types };
}

function badId(path: string, i: number, id: number, vocabSize: number): SynthmixError {
  return new SynthmixError(
    "BAD_TOKEN_ID",
    `${path}: token ${i} has id ${id}, outside the vocabulary of ${vocabSize}`,
    { hint: "the token file was probably made with another tokenizer; rebuild it (synthmix mix)" },
  );
}
