import { createHash } from "node:crypto";
import { createReadStream, existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { readDocTexts } from "../corpus/docs.js";
import { prepareSyntheticSource } from "../generate/journal.js";
import { writeFileAtomic, writeJsonAtomic } from "../util/atomic.js";
import { SynthmixError } from "../util/errors.js";
import { dtypeForVocab, type TokenDtype } from "../util/tokenfile.js";
import { readSourceCacheIndex, type SourceCacheIndex } from "./manifest.js";
import { TokenWriter } from "./tokenio.js";
import type { MixTokenizer } from "./tokenizer.js";

/**
 * The document files of a source: a single `.jsonl[.gz]` file, or every `.jsonl[.gz]` file in a folder
 * (e.g. `synthetic/hq-demo/part-*.jsonl`), in name order so the document order is stable.
 */
export function sourceFiles(path: string): string[] {
  if (!existsSync(path)) {
    throw new SynthmixError("MIX_SOURCE", `source ${path} does not exist`, {
      hint: "pass a JSONL file or a folder of part-*.jsonl files (paths relative to the current folder)",
    });
  }
  if (!statSync(path).isDirectory()) return [path];
  // A generation folder: refuse while generate writes it, else repair torn tails a killed run left.
  prepareSyntheticSource(path);
  const files = readdirSync(path)
    .filter((n) => /\.jsonl(\.gz)?$/.test(n))
    .sort()
    .map((n) => join(path, n));
  if (files.length === 0) {
    throw new SynthmixError("MIX_SOURCE", `source folder ${path} holds no .jsonl files`, {
      hint: "generate documents into it first (synthmix generate) or point at another folder",
    });
  }
  return files;
}

// Per-process memos: a sweep builds many mixtures of the same sources in one process, and rehashing
// and re-reading each source's index per mixture cost more than building the mixture itself. Only
// lengths are kept (4 + 8 bytes per document), never the ids.
const hashMemo = new Map<string, string>();
const loadedMemo = new Map<string, TokenizedSource>();
const LOADED_MEMO_MAX = 8;

/** sha256 over the names and bytes of a source's files: the key of its token cache. */
export async function hashSourceFiles(files: string[]): Promise<string> {
  const stamp = files
    .map((f) => {
      const st = statSync(f);
      return `${resolve(f)}:${st.size}:${st.mtimeMs}`;
    })
    .join("|");
  const memo = hashMemo.get(stamp);
  if (memo) return memo;
  const h = createHash("sha256");
  for (const f of files) {
    h.update(`${f.split("/").pop()}\u0000`);
    for await (const chunk of createReadStream(f)) h.update(chunk as Buffer); // no encoding: Buffers
    h.update("\u0000");
  }
  const digest = h.digest("hex");
  hashMemo.set(stamp, digest);
  return digest;
}

/**
 * The texts of a source's documents in file order, one at a time (the file is never held whole); empty
 * texts are dropped and counted in `counter.skippedEmpty`.
 */
export async function* streamSourceTexts(
  files: string[],
  counter: { skippedEmpty: number; documents: number } = { skippedEmpty: 0, documents: 0 },
): AsyncGenerator<string> {
  for (const f of files) {
    for await (const { text } of readDocTexts(f)) {
      if (text.trim() === "") counter.skippedEmpty++;
      else {
        counter.documents++;
        yield text;
      }
    }
  }
}

/** The texts of a source's documents in memory (small inputs only; the mix stage streams). */
export async function readSourceTexts(files: string[]): Promise<{ texts: string[]; skippedEmpty: number }> {
  const counter = { skippedEmpty: 0, documents: 0 };
  const texts: string[] = [];
  for await (const t of streamSourceTexts(files, counter)) texts.push(t);
  return { texts, skippedEmpty: counter.skippedEmpty };
}

/**
 * A source's documents, tokenized, as a cache file on disk: `binPath` holds all ids back to back
 * (no eot), `lengths` each document's length. The ids are read per document (TokenReader), never whole.
 */
export interface TokenizedSource {
  name: string;
  binPath: string;
  dtype: TokenDtype;
  /** Total tokens in binPath. */
  totalTokens: number;
  lengths: Uint32Array;
  /** offsets[i] = start of document i in binPath, in tokens (length documents + 1). */
  offsets: Float64Array;
  contentSha256: string;
  files: string[];
}

/** A Uint32Array that grows by doubling (document lengths while streaming). */
class GrowableU32 {
  private buf = new Uint32Array(1024);
  length = 0;
  push(v: number): void {
    if (this.length === this.buf.length) {
      const next = new Uint32Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.length++] = v;
  }
  toArray(): Uint32Array {
    return this.buf.slice(0, this.length);
  }
}

/**
 * Tokenize a source once per (content, tokenizer) and cache it under `<ws>/tokens/sources/`, as
 * `<name>-<key>.bin` (ids), `.lens.bin` (uint32 document lengths) and `.json` (written last: the
 * completeness marker). Every mixture of that source reuses the cache instead of re-tokenizing.
 * Streaming: documents are read, tokenized and appended to the cache file in batches, so memory stays
 * bounded (4 bytes per document for the lengths, plus fixed buffers) whatever the source size.
 */
export async function loadTokenizedSource(
  workspace: string,
  name: string,
  path: string,
  tokenizer: MixTokenizer,
): Promise<TokenizedSource> {
  const files = sourceFiles(path);
  const contentSha256 = await hashSourceFiles(files);
  const key = createHash("sha256").update(`${contentSha256}:${tokenizer.sha256}`).digest("hex").slice(0, 16);
  const base = join(workspace, "tokens", "sources", `${safeName(name)}-${key}`);
  const dtype = dtypeForVocab(tokenizer.vocabSize);
  const memo = loadedMemo.get(base);
  if (memo && existsSync(`${base}.json`)) return { ...memo, name, files };
  const remember = (src: TokenizedSource) => {
    if (loadedMemo.size >= LOADED_MEMO_MAX) loadedMemo.delete(loadedMemo.keys().next().value!);
    loadedMemo.set(base, src);
    return src;
  };
  const binPath = `${base}.bin`;
  if (existsSync(`${base}.json`)) {
    const idx = readSourceCacheIndex(`${base}.json`);
    const lensBuf = readFileSync(`${base}.lens.bin`);
    const lengths = new Uint32Array(lensBuf.byteLength / 4);
    new Uint8Array(lengths.buffer).set(lensBuf);
    const width = idx.dtype === "uint16" ? 2 : 4;
    if (
      existsSync(binPath) &&
      statSync(binPath).size === idx.tokens * width &&
      lengths.length === idx.documents
    ) {
      const offsets = prefixSums(lengths);
      return remember({
        name,
        binPath,
        dtype: idx.dtype,
        totalTokens: idx.tokens,
        lengths,
        offsets,
        contentSha256,
        files,
      });
    }
  }
  const counter = { skippedEmpty: 0, documents: 0 };
  const lens = new GrowableU32();
  const writer = new TokenWriter(binPath, dtype);
  try {
    for await (const ids of tokenizer.encodeAll(streamSourceTexts(files, counter))) {
      lens.push(ids.length);
      writer.push(ids);
    }
  } catch (e) {
    writer.abort();
    throw e;
  }
  if (lens.length !== counter.documents) {
    writer.abort();
    throw new SynthmixError(
      "TOKENIZER",
      `tokenizer returned ${lens.length} documents for ${counter.documents} in ${path}`,
    );
  }
  writer.commit();
  const lengths = lens.toArray();
  writeFileAtomic(`${base}.lens.bin`, new Uint8Array(lengths.buffer, 0, lengths.byteLength));
  const idx: SourceCacheIndex = {
    version: 1,
    source: name,
    files: files.map((f) => relative(workspace, f)),
    contentSha256,
    tokenizerSha256: tokenizer.sha256,
    dtype,
    documents: lengths.length,
    tokens: writer.count,
    skippedEmpty: counter.skippedEmpty,
  };
  writeJsonAtomic(`${base}.json`, idx);
  const offsets = prefixSums(lengths);
  return remember({
    name,
    binPath,
    dtype,
    totalTokens: writer.count,
    lengths,
    offsets,
    contentSha256,
    files,
  });
}

function prefixSums(lengths: Uint32Array): Float64Array {
  const out = new Float64Array(lengths.length + 1);
  for (let i = 0; i < lengths.length; i++) out[i + 1] = out[i] + lengths[i];
  return out;
}

export function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, "_");
}
