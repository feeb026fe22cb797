import { closeSync, fstatSync, openSync } from "node:fs";
import { AtomicFile } from "../util/atomic.js";
import { SynthmixError } from "../util/errors.js";
import { readExactly } from "../util/readexact.js";
import type { TokenDtype } from "../util/tokenfile.js";

/**
 * llm.c's token shard (`.bin`), as written by `write_datafile` in karpathy/llm.c dev/data/data_common.py
 * and read by `dataloader_load_shard_` (llmc/dataloader.h) and `_load_data_shard` (train_gpt2.py,
 * train_llama3.py):
 *
 *   header: 256 little-endian int32 = 1024 bytes
 *     [0] magic    20240520 (gpt-2)  | 20240801 (llama-3)
 *     [1] version  1        (gpt-2)  | 7        (llama-3)
 *     [2] number of tokens that follow (int32, so < 2^31)
 *     [3..255] 0
 *   tokens: uint16 (gpt-2) | uint32 (llama-3), little endian, exactly [2] of them
 *
 * The C loader accepts only gpt-2/version 1, requires at least one token and a file size of exactly
 * 1024 + 2 * ntok bytes; train_llama3.py reads the llama-3 layout. Both are checked by `readLlmcShard`.
 */
export type LlmcLayout = "gpt-2" | "llama-3";

export const LLMC_HEADER_INTS = 256;
export const LLMC_HEADER_BYTES = LLMC_HEADER_INTS * 4;
/** header[2] is an int32 and data_common.py asserts `len(toks) < 2**31`. */
export const LLMC_MAX_TOKENS = 2 ** 31 - 1;

export const LLMC_LAYOUTS: Record<LlmcLayout, { magic: number; version: number; dtype: TokenDtype }> = {
  "gpt-2": { magic: 20240520, version: 1, dtype: "uint16" },
  "llama-3": { magic: 20240801, version: 7, dtype: "uint32" },
};

/** The layout llm.c uses for ids of this width: gpt-2 for uint16, llama-3 for uint32. */
export function llmcLayoutFor(dtype: TokenDtype): LlmcLayout {
  return dtype === "uint16" ? "gpt-2" : "llama-3";
}

function tooMany(tokens: number, where: string): SynthmixError {
  return new SynthmixError(
    "LLMC_TOO_LARGE",
    `${where}: ${tokens} tokens do not fit one llm.c shard (its header counts tokens in an int32, at most ${LLMC_MAX_TOKENS})`,
    { hint: "split the export into shards (--shard-tokens, e.g. 1e8 as llm.c's fineweb.py does)" },
  );
}

/** The 1024-byte header of a shard holding `tokens` ids in `layout`. */
export function llmcHeader(layout: LlmcLayout, tokens: number, where = "llm.c shard"): Uint8Array {
  if (!Number.isInteger(tokens) || tokens < 0) {
    throw new SynthmixError("LLMC_HEADER", `${where}: token count ${tokens} is not a count`);
  }
  if (tokens > LLMC_MAX_TOKENS) throw tooMany(tokens, where);
  const header = new Int32Array(LLMC_HEADER_INTS);
  const { magic, version } = LLMC_LAYOUTS[layout];
  const view = new DataView(header.buffer);
  // Explicitly little endian (numpy's int32 on every platform llm.c runs on), whatever this host is.
  view.setInt32(0, magic, true);
  view.setInt32(4, version, true);
  view.setInt32(8, tokens, true);
  return new Uint8Array(header.buffer);
}

export interface LlmcHeader {
  layout: LlmcLayout;
  magic: number;
  version: number;
  tokens: number;
  dtype: TokenDtype;
}

/** Parse and check a shard header (magic and version as llm.c's loaders check them). */
export function parseLlmcHeader(bytes: Uint8Array, where = "llm.c shard"): LlmcHeader {
  if (bytes.length < LLMC_HEADER_BYTES) {
    throw new SynthmixError(
      "LLMC_HEADER",
      `${where}: ${bytes.length} bytes, shorter than llm.c's ${LLMC_HEADER_BYTES}-byte header`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, LLMC_HEADER_BYTES);
  const magic = view.getInt32(0, true);
  const version = view.getInt32(4, true);
  const tokens = view.getInt32(8, true);
  const layout = (Object.keys(LLMC_LAYOUTS) as LlmcLayout[]).find((k) => LLMC_LAYOUTS[k].magic === magic);
  if (!layout) {
    throw new SynthmixError("LLMC_HEADER", `${where}: bad magic ${magic} (not an llm.c token shard)`, {
      hint: `llm.c token shards start with ${LLMC_LAYOUTS["gpt-2"].magic} (gpt-2) or ${LLMC_LAYOUTS["llama-3"].magic} (llama-3)`,
    });
  }
  if (version !== LLMC_LAYOUTS[layout].version) {
    throw new SynthmixError(
      "LLMC_HEADER",
      `${where}: version ${version}, expected ${LLMC_LAYOUTS[layout].version} for the ${layout} layout`,
    );
  }
  if (tokens <= 0) throw new SynthmixError("LLMC_HEADER", `${where}: header counts ${tokens} tokens`);
  return { layout, magic, version, tokens, dtype: LLMC_LAYOUTS[layout].dtype };
}

/** Read a whole shard, checking what llm.c checks: header, and a file size of exactly header + tokens. */
export function readLlmcShard(path: string): LlmcHeader & { ids: Uint16Array | Uint32Array } {
  const fd = openSync(path, "r");
  try {
    const head = new Uint8Array(Math.min(LLMC_HEADER_BYTES, fstatSync(fd).size));
    readExactly(fd, head, 0, path, "LLMC_TRUNCATED");
    const h = parseLlmcHeader(head, path);
    const width = h.dtype === "uint16" ? 2 : 4;
    const size = fstatSync(fd).size;
    const expected = LLMC_HEADER_BYTES + h.tokens * width;
    if (size !== expected) {
      throw new SynthmixError(
        "LLMC_SIZE",
        `${path}: ${size} bytes, but the header's ${h.tokens} ${h.dtype} tokens make ${expected}`,
        { hint: "the shard is truncated or was not written by an llm.c-compatible writer" },
      );
    }
    const ids = h.dtype === "uint16" ? new Uint16Array(h.tokens) : new Uint32Array(h.tokens);
    readExactly(fd, new Uint8Array(ids.buffer), LLMC_HEADER_BYTES, path, "LLMC_TRUNCATED");
    return { ...h, ids };
  } finally {
    closeSync(fd);
  }
}

/**
 * Streams one shard: the header (the token count is known up front, as llm.c's header needs it first),
 * then the ids in chunks, written atomically. `commit()` checks that exactly `tokens` ids were written.
 */
export class LlmcShardWriter {
  private readonly file: AtomicFile;
  private readonly max: number;
  private written = 0;

  constructor(
    readonly path: string,
    readonly layout: LlmcLayout,
    readonly tokens: number,
  ) {
    const header = llmcHeader(layout, tokens, path);
    if (tokens === 0) {
      throw new SynthmixError("LLMC_EMPTY", `${path}: an llm.c shard must hold at least one token`);
    }
    this.max = layout === "gpt-2" ? 0xffff : 0xffffffff;
    this.file = new AtomicFile(path);
    this.file.write(header);
  }

  /** Append ids (already in the layout's width, or any array whose values fit it). */
  write(ids: Uint16Array | Uint32Array): void {
    if (this.written + ids.length > this.tokens) {
      this.abort();
      throw new SynthmixError("LLMC_COUNT", `${this.path}: more than the ${this.tokens} tokens announced`);
    }
    const out =
      this.layout === "gpt-2" ? toWidth(ids, Uint16Array, this.max) : toWidth(ids, Uint32Array, this.max);
    if (!out) {
      this.abort();
      throw new SynthmixError(
        "LLMC_ID_RANGE",
        `${this.path}: a token id above ${this.max} does not fit the ${this.layout} layout (uint16)`,
        { hint: "export with the llama-3 layout (uint32 ids)" },
      );
    }
    this.file.write(new Uint8Array(out.buffer, out.byteOffset, out.byteLength));
    this.written += ids.length;
  }

  commit(): void {
    if (this.written !== this.tokens) {
      this.abort();
      throw new SynthmixError(
        "LLMC_COUNT",
        `${this.path}: ${this.written} tokens written, the header announces ${this.tokens}`,
      );
    }
    this.file.commit();
  }

  abort(): void {
    this.file.abort();
  }
}

/** `ids` as the target array type (no copy when it already is), or undefined if an id exceeds `max`. */
function toWidth<T extends Uint16Array | Uint32Array>(
  ids: Uint16Array | Uint32Array,
  Kind: { new (n: number): T },
  max: number,
): T | undefined {
  if (ids instanceof Kind) return ids as T;
  const out = new Kind(ids.length);
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] > max) return undefined;
    out[i] = ids[i];
  }
  return out;
}

/** Write `ids` as one llm.c shard (atomically). */
export function writeLlmcShard(path: string, layout: LlmcLayout, ids: Uint16Array | Uint32Array): void {
  const w = new LlmcShardWriter(path, layout, ids.length);
  w.write(ids);
  w.commit();
}

export interface RawToLlmcOptions {
  /** Raw little-endian token file (src/util/tokenfile.ts: a mixture's tokens.bin, a test set). */
  input: string;
  dtype: TokenDtype;
  /** Output path; with `shardTokens`, `<out without .bin>_000000.bin`, `_000001.bin`, ... */
  out: string;
  /** Default: llm.c's layout for the input's width (gpt-2 for uint16, llama-3 for uint32). */
  layout?: LlmcLayout;
  /** Tokens per shard (the last one holds the rest); default one shard. */
  shardTokens?: number;
}

export interface LlmcShardInfo {
  path: string;
  tokens: number;
}

const COPY_CHUNK = 1 << 20; // tokens per read: a few MB whatever the input size

/** The shard paths llm.c's glob patterns expect: `<stem>_000000.bin`, ... */
export function llmcShardPath(out: string, index: number): string {
  const stem = out.endsWith(".bin") ? out.slice(0, -4) : out;
  return `${stem}_${String(index).padStart(6, "0")}.bin`;
}

/** Plan the shards: sizes in order, each at most LLMC_MAX_TOKENS. */
function shardSizes(total: number, shardTokens: number | undefined, where: string): number[] {
  if (shardTokens === undefined) {
    if (total > LLMC_MAX_TOKENS) throw tooMany(total, where);
    return [total];
  }
  if (!Number.isInteger(shardTokens) || shardTokens < 1 || shardTokens > LLMC_MAX_TOKENS) {
    throw new SynthmixError(
      "BAD_OPTION",
      `shard size ${shardTokens}: expected a whole number of tokens in [1, ${LLMC_MAX_TOKENS}]`,
    );
  }
  const sizes: number[] = [];
  for (let left = total; left > 0; left -= shardTokens) sizes.push(Math.min(shardTokens, left));
  return sizes;
}

/**
 * Copy a raw token file into llm.c shards, streaming (a few MB in memory whatever the size). Every shard
 * is written atomically; on an error the shards already written stay complete and valid.
 */
export function rawTokensToLlmc(opts: RawToLlmcOptions): LlmcShardInfo[] {
  const width = opts.dtype === "uint16" ? 2 : 4;
  const layout = opts.layout ?? llmcLayoutFor(opts.dtype);
  const fd = openSync(opts.input, "r");
  try {
    const size = fstatSync(fd).size;
    if (size % width !== 0 || size === 0) {
      throw new SynthmixError(
        "BAD_TOKEN_FILE",
        `${opts.input}: ${size} bytes is ${size === 0 ? "empty" : `not a whole number of ${opts.dtype} tokens`}`,
      );
    }
    const sizes = shardSizes(size / width, opts.shardTokens, opts.input);
    const shards: LlmcShardInfo[] = [];
    let position = 0;
    for (const [k, n] of sizes.entries()) {
      const path = opts.shardTokens === undefined ? opts.out : llmcShardPath(opts.out, k);
      copyShard(fd, position, n, opts.dtype, new LlmcShardWriter(path, layout, n), opts.input);
      position += n * width;
      shards.push({ path, tokens: n });
    }
    return shards;
  } finally {
    closeSync(fd);
  }
}

function copyShard(
  fd: number,
  position: number,
  n: number,
  dtype: TokenDtype,
  w: LlmcShardWriter,
  where: string,
): void {
  const width = dtype === "uint16" ? 2 : 4;
  try {
    for (let done = 0; done < n; ) {
      const m = Math.min(COPY_CHUNK, n - done);
      const ids = dtype === "uint16" ? new Uint16Array(m) : new Uint32Array(m);
      readExactly(fd, new Uint8Array(ids.buffer), position + done * width, where, "LLMC_TRUNCATED");
      w.write(ids);
      done += m;
    }
    w.commit();
  } catch (e) {
    w.abort();
    throw e;
  }
}
