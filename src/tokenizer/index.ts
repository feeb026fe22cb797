import { readFileSync } from "node:fs";
import { writeFileAtomic } from "../util/atomic.js";
import { SynthmixError } from "../util/errors.js";
import { sha256 } from "../util/hash.js";
import { BpeModel } from "./bpe.js";
import { Encoder } from "./encoder.js";
import { gpt2Data } from "./gpt2.js";
import { type AddedToken, fromHfJson, type TokenizerData, toHfJson } from "./hf.js";
import { GPT2_PIPELINE, type PipelineSpec } from "./pipeline.js";
import { type TrainOptions, trainBpe } from "./train.js";

export { type EncodeToFileOptions, type EncodeToFileResult, encodeToFile } from "./encode-file.js";
export type { AddedToken } from "./hf.js";
export { type EncodeDocumentsOptions, encodeDocuments } from "./parallel.js";
export { GPT2_SPLIT_REGEX, pretokenize } from "./pretokenize.js";
export type { TrainOptions, TrainProgress } from "./train.js";

export const EOT = "<|endoftext|>";
/** End-of-text tokens of other vocabularies, tried in order when there is no "<|endoftext|>" (Llama-3's first). */
const EOT_ALIASES = [EOT, "<|end_of_text|>", "</s>", "<eos>"];

export interface TokenizerTransfer {
  bytes: Uint8Array;
  ends: Uint32Array;
  merges: Int32Array;
  mergeIds: Int32Array;
  added: AddedToken[];
  pipeline: PipelineSpec;
}

/**
 * A byte-level BPE tokenizer (GPT-2 style): train one, load/save Hugging Face tokenizer.json, or load
 * GPT-2's own vocabulary offline. Every byte sequence is encodable, so decodeBytes(encode) is exact.
 */
export class Tokenizer {
  readonly vocabSize: number;
  readonly eotId: number;
  /** The content of the end-of-text token ("<|endoftext|>", or Llama-3's "<|end_of_text|>"), if any. */
  readonly eotContent: string | undefined;
  private readonly model: BpeModel;
  private readonly encoder: Encoder;
  private readonly added: AddedToken[];
  private hash?: string;
  private canonical?: string;

  private constructor(
    private readonly data: TokenizerData,
    source = "tokenizer.json",
  ) {
    this.model = new BpeModel(data);
    this.encoder = new Encoder(this.model, data.pipeline ?? GPT2_PIPELINE, data.added, source);
    this.added = data.added;
    this.vocabSize = data.tokens.length;
    const specialIds = new Map<string, number>();
    for (const t of data.added) if (t.special) specialIds.set(t.content, t.id);
    this.eotContent = EOT_ALIASES.find((c) => specialIds.has(c));
    this.eotId = this.eotContent === undefined ? -1 : specialIds.get(this.eotContent)!;
  }

  static train(texts: Iterable<string> | AsyncIterable<string>, opts: TrainOptions): Promise<Tokenizer> {
    return trainBpe(texts, opts).then((d) => new Tokenizer(d));
  }

  static fromFile(path: string): Tokenizer {
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(path, "utf8"));
    } catch (e) {
      throw new SynthmixError("TOKENIZER_READ", `${path}: cannot read tokenizer: ${(e as Error).message}`, {
        cause: e,
        hint: "pass a Hugging Face tokenizer.json, e.g. one written by `synthmix tokenizer train`",
      });
    }
    return new Tokenizer(fromHfJson(json, path), path);
  }

  static fromJSON(json: object): Tokenizer {
    return new Tokenizer(fromHfJson(json));
  }

  /** GPT-2's vocabulary (r50k_base), read offline from the installed gpt-tokenizer (or tiktoken) package. */
  static gpt2(): Tokenizer {
    return new Tokenizer(gpt2Data());
  }

  /** A compact form for postMessage/workerData (typed arrays; no JSON to parse on the other side). */
  toTransferable(): TokenizerTransfer {
    const tokens = this.data.tokens;
    const ends = new Uint32Array(tokens.length);
    let n = 0;
    for (let id = 0; id < tokens.length; id++) ends[id] = n += tokens[id].length;
    const bytes = new Uint8Array(n);
    for (let id = 0; id < tokens.length; id++) bytes.set(tokens[id], ends[id] - tokens[id].length);
    return {
      bytes,
      ends,
      merges: this.data.merges,
      mergeIds: this.data.mergeIds,
      added: this.added,
      pipeline: this.data.pipeline ?? GPT2_PIPELINE,
    };
  }

  static fromTransferable(t: TokenizerTransfer): Tokenizer {
    const tokens: Uint8Array[] = [];
    let start = 0;
    for (let id = 0; id < t.ends.length; id++) {
      tokens.push(t.bytes.subarray(start, t.ends[id]));
      start = t.ends[id];
    }
    return new Tokenizer({
      tokens,
      merges: t.merges,
      mergeIds: t.mergeIds,
      added: t.added,
      pipeline: t.pipeline,
    });
  }

  toJSON(): object {
    return toHfJson(this.data);
  }

  /** The canonical tokenizer.json text (what save writes and sha256 hashes). */
  toJSONString(): string {
    this.canonical ??= `${JSON.stringify(this.toJSON(), null, 2)}\n`;
    return this.canonical;
  }

  /** sha256 of the canonical tokenizer.json text: equal vocabularies hash equal whatever file they came from. */
  get sha256(): string {
    this.hash ??= sha256(this.toJSONString());
    return this.hash;
  }

  save(path: string): void {
    writeFileAtomic(path, this.toJSONString());
  }

  /**
   * Ids of ordinary text: special-token strings in it are encoded as plain text (non-special added
   * tokens still match, as in HF tokenizers with split_special_tokens).
   */
  encode(text: string): number[] {
    const out: number[] = [];
    this.encoder.encodeInto(text, out, false);
    return out;
  }

  /** Append ids of ordinary text to `out` (no intermediate array). */
  encodeInto(text: string, out: number[]): void {
    this.encoder.encodeInto(text, out, false);
  }

  /**
   * Ids of arbitrary bytes (not necessarily UTF-8): valid UTF-8 runs are encoded as text, every other byte
   * as its byte token, so decodeBytes(encodeBytes(b)) is exactly b.
   */
  encodeBytes(bytes: Uint8Array): number[] {
    const out: number[] = [];
    let start = 0;
    let i = 0;
    while (i < bytes.length) {
      const n = utf8SeqLen(bytes, i);
      if (n > 0) {
        i += n;
        continue;
      }
      if (i > start) this.encoder.encodeInto(utf8Decoder.decode(bytes.subarray(start, i)), out, false);
      out.push(this.model.byteToId[bytes[i]]);
      start = ++i;
    }
    if (i > start) this.encoder.encodeInto(utf8Decoder.decode(bytes.subarray(start, i)), out, false);
    return out;
  }

  /** Ids of text in which special tokens such as "<|endoftext|>" are recognised (HF `encode`). */
  encodeWithSpecial(text: string): number[] {
    const out: number[] = [];
    this.encoder.encodeInto(text, out, true);
    return out;
  }

  decodeBytes(ids: ArrayLike<number>): Uint8Array {
    const tokens = this.data.tokens;
    let n = 0;
    for (let k = 0; k < ids.length; k++) n += this.tokenBytes(ids[k]).length;
    const out = new Uint8Array(n);
    let o = 0;
    for (let k = 0; k < ids.length; k++) {
      const t = tokens[ids[k]];
      out.set(t, o);
      o += t.length;
    }
    return out;
  }

  /** Text of ids; lossy (U+FFFD) only where the ids cut a UTF-8 character. */
  decode(ids: ArrayLike<number>): string {
    return utf8Decoder.decode(this.decodeBytes(ids));
  }

  tokenBytes(id: number): Uint8Array {
    const t = this.data.tokens[id];
    if (t === undefined || !Number.isInteger(id)) {
      throw new SynthmixError(
        "BAD_TOKEN_ID",
        `token id ${id} is outside the vocabulary (size ${this.vocabSize})`,
        {
          hint: "the ids were probably made with a different tokenizer; check the tokenizer hash in the manifest",
        },
      );
    }
    return t;
  }

  /** Printable form for tables: the UTF-8 text ("Ġthe" -> " the"), with \xNN for bytes of a cut character. */
  tokenString(id: number): string {
    const b = this.tokenBytes(id);
    try {
      return strictDecoder.decode(b);
    } catch {
      let s = "";
      for (const x of b)
        s += x >= 32 && x < 127 ? String.fromCharCode(x) : `\\x${x.toString(16).padStart(2, "0")}`;
      return s;
    }
  }

  /** Special / added tokens (e.g. "<|endoftext|>"). */
  get specialTokens(): readonly AddedToken[] {
    return this.added;
  }

  /** Number of merges (vocabulary size minus bytes, special tokens and holes). */
  get numMerges(): number {
    return this.data.mergeIds.length;
  }
}

// ignoreBOM: keep a leading U+FEFF in the text (the default would silently drop it).
const utf8Decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** Length of the valid UTF-8 sequence at b[i] (no overlongs, surrogates or > U+10FFFF), or 0. */
function utf8SeqLen(b: Uint8Array, i: number): number {
  const c = b[i];
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) return isCont(b, i + 1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) return threeByteOk(b, i) ? 3 : 0;
  if (c >= 0xf0 && c <= 0xf4) return fourByteOk(b, i) ? 4 : 0;
  return 0;
}

function isCont(b: Uint8Array, k: number): boolean {
  return k < b.length && (b[k] & 0xc0) === 0x80;
}

function threeByteOk(b: Uint8Array, i: number): boolean {
  if (!isCont(b, i + 1) || !isCont(b, i + 2)) return false;
  const c = b[i];
  const d = b[i + 1];
  if (c === 0xe0 && d < 0xa0) return false; // overlong
  return !(c === 0xed && d >= 0xa0); // surrogate
}

function fourByteOk(b: Uint8Array, i: number): boolean {
  if (!isCont(b, i + 1) || !isCont(b, i + 2) || !isCont(b, i + 3)) return false;
  const c = b[i];
  const d = b[i + 1];
  if (c === 0xf0 && d < 0x90) return false; // overlong
  return !(c === 0xf4 && d >= 0x90); // > U+10FFFF
}
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
