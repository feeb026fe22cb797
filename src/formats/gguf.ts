import type { HfTokenizerJson } from "../tokenizer/hf.js";
import { writeFileAtomic } from "../util/atomic.js";
import { SynthmixError } from "../util/errors.js";

/**
 * A GGUF v3 writer (the llama.cpp / ggml model file format), so models trained by synthmix run in
 * llama.cpp, Ollama and LM Studio. Hand-written: the format is small (header, typed key/value
 * metadata, tensor infos, aligned tensor data) and no maintained JS writer exists.
 *
 * Layout: "GGUF" u32 version u64 n_tensors u64 n_kv | kv* | tensor_info* | pad to alignment | data.
 * Tensor dims are written in ggml order (fastest-varying first), i.e. reversed from a row-major shape.
 */

export enum GgufType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

export type GgufScalar = {
  type: Exclude<GgufType, GgufType.ARRAY>;
  value: number | bigint | boolean | string;
};
export type GgufArray = {
  type: GgufType.ARRAY;
  itemType: Exclude<GgufType, GgufType.ARRAY>;
  value: (number | bigint | boolean | string)[];
};
export type GgufValue = GgufScalar | GgufArray;

/** Convenience constructors for typed metadata values. */
export const gv = {
  u32: (v: number): GgufScalar => ({ type: GgufType.UINT32, value: v }),
  i32: (v: number): GgufScalar => ({ type: GgufType.INT32, value: v }),
  f32: (v: number): GgufScalar => ({ type: GgufType.FLOAT32, value: v }),
  bool: (v: boolean): GgufScalar => ({ type: GgufType.BOOL, value: v }),
  str: (v: string): GgufScalar => ({ type: GgufType.STRING, value: v }),
  strs: (v: string[]): GgufArray => ({ type: GgufType.ARRAY, itemType: GgufType.STRING, value: v }),
  i32s: (v: number[]): GgufArray => ({ type: GgufType.ARRAY, itemType: GgufType.INT32, value: v }),
  f32s: (v: number[]): GgufArray => ({ type: GgufType.ARRAY, itemType: GgufType.FLOAT32, value: v }),
};

/** ggml tensor types we write: f32 and f16 (enough for small CPU-trained models). */
export enum GgmlType {
  F32 = 0,
  F16 = 1,
}

export interface GgufTensor {
  name: string;
  /** Row-major shape as in numpy/PyTorch (outermost first); written reversed as ggml `ne`. */
  shape: number[];
  data: Float32Array;
  type?: GgmlType;
}

export interface GgufFile {
  metadata: Record<string, GgufValue>;
  tensors: GgufTensor[];
  alignment?: number;
}

class ByteSink {
  chunks: Buffer[] = [];
  length = 0;
  push(b: Buffer): void {
    this.chunks.push(b);
    this.length += b.length;
  }
  u32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    this.push(b);
  }
  u64(v: number | bigint): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  str(s: string): void {
    const bytes = Buffer.from(s, "utf8");
    this.u64(bytes.length);
    this.push(bytes);
  }
  scalar(type: GgufType, v: number | bigint | boolean | string): void {
    const b8 = (n: number) => Buffer.alloc(n);
    let b: Buffer;
    switch (type) {
      case GgufType.UINT8:
        b = b8(1);
        b.writeUInt8(Number(v));
        break;
      case GgufType.INT8:
        b = b8(1);
        b.writeInt8(Number(v));
        break;
      case GgufType.UINT16:
        b = b8(2);
        b.writeUInt16LE(Number(v));
        break;
      case GgufType.INT16:
        b = b8(2);
        b.writeInt16LE(Number(v));
        break;
      case GgufType.UINT32:
        b = b8(4);
        b.writeUInt32LE(Number(v));
        break;
      case GgufType.INT32:
        b = b8(4);
        b.writeInt32LE(Number(v));
        break;
      case GgufType.FLOAT32:
        b = b8(4);
        b.writeFloatLE(Number(v));
        break;
      case GgufType.BOOL:
        b = b8(1);
        b.writeUInt8(v ? 1 : 0);
        break;
      case GgufType.UINT64:
        b = b8(8);
        b.writeBigUInt64LE(BigInt(v));
        break;
      case GgufType.INT64:
        b = b8(8);
        b.writeBigInt64LE(BigInt(v));
        break;
      case GgufType.FLOAT64:
        b = b8(8);
        b.writeDoubleLE(Number(v));
        break;
      case GgufType.STRING:
        this.str(String(v));
        return;
      default:
        throw new SynthmixError("GGUF_TYPE", `unsupported GGUF value type ${type}`);
    }
    this.push(b);
  }
}

function tensorBytes(t: GgufTensor): Buffer {
  const n = t.shape.reduce((a, b) => a * b, 1);
  if (n !== t.data.length) {
    throw new SynthmixError(
      "GGUF_SHAPE",
      `tensor ${t.name}: shape [${t.shape.join(", ")}] has ${n} elements but data has ${t.data.length}`,
    );
  }
  if ((t.type ?? GgmlType.F32) === GgmlType.F32) {
    return Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  }
  const out = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) out.writeUInt16LE(f32ToF16(t.data[i]), i * 2);
  return out;
}

/** IEEE 754 half precision with round-to-nearest-even (for GgmlType.F16 tensors). */
export function f32ToF16(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (and saturates to inf).
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return sign | h;
}

/** Serialise a GGUF file into buffers (header + metadata + infos, then aligned tensor data). */
export function encodeGguf(file: GgufFile): Buffer[] {
  const alignment = file.alignment ?? 32;
  const meta = { ...file.metadata };
  if (alignment !== 32) meta["general.alignment"] = gv.u32(alignment);
  const head = new ByteSink();
  head.push(Buffer.from("GGUF", "ascii"));
  head.u32(3);
  head.u64(file.tensors.length);
  head.u64(Object.keys(meta).length);
  for (const [key, val] of Object.entries(meta)) {
    head.str(key);
    head.u32(val.type);
    if (val.type === GgufType.ARRAY) {
      head.u32(val.itemType);
      head.u64(val.value.length);
      for (const item of val.value) head.scalar(val.itemType, item);
    } else {
      head.scalar(val.type, val.value);
    }
  }
  const datas = file.tensors.map(tensorBytes);
  const seen = new Set<string>();
  let offset = 0;
  file.tensors.forEach((t, i) => {
    if (seen.has(t.name)) throw new SynthmixError("GGUF_DUP", `duplicate tensor name ${t.name}`);
    seen.add(t.name);
    head.str(t.name);
    head.u32(t.shape.length);
    for (const d of [...t.shape].reverse()) head.u64(d);
    head.u32(t.type ?? GgmlType.F32);
    head.u64(offset);
    offset += datas[i].length;
    offset += (alignment - (offset % alignment)) % alignment;
  });
  const out = [...head.chunks];
  const pad = (len: number) => Buffer.alloc((alignment - (len % alignment)) % alignment);
  out.push(pad(head.length));
  for (const d of datas) {
    out.push(d);
    out.push(pad(d.length));
  }
  return out;
}

/** Write a GGUF file atomically (tmp + fsync + rename) so a kill never leaves a loadable torn model. */
export function writeGguf(path: string, file: GgufFile): void {
  writeFileAtomic(path, encodeGguf(file));
}

// ---------------------------------------------------------------------------------------------
// GPT-2 export: HF GPT-2 tensor names and tokenizer.json -> llama.cpp's "gpt2" architecture.

export interface Gpt2GgufConfig {
  nLayer: number;
  dModel: number;
  nHead: number;
  contextLength: number;
  vocabSize: number;
  layerNormEps?: number;
  /** MLP hidden size; GPT-2 uses 4 * dModel. */
  dFf?: number;
}

/** The tokenizer.json type is the tokenizer stage's (one type of the file everywhere). */
export type { HfTokenizerJson };

export interface Gpt2GgufOptions {
  config: Gpt2GgufConfig;
  /** HF GPT-2 names (wte.weight, h.0.attn.c_attn.weight, ...), Conv1D weights in HF (in, out) layout. */
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
  tokenizerJson: HfTokenizerJson;
  name?: string;
  /** Write weights as f16 (half the file size); norms and biases stay f32 as llama.cpp expects. */
  f16?: boolean;
  /** Token string used for BOS/EOS when the tokenizer has no `<|endoftext|>`. */
  eosToken?: string;
}

const TOKEN_NORMAL = 1;
const TOKEN_CONTROL = 3;
const TOKEN_UNUSED = 5;

/** Transpose a row-major (rows, cols) matrix: HF Conv1D (in, out) -> Linear (out, in) as ggml wants. */
function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = data[base + c];
  }
  return out;
}

/**
 * Write a GPT-2 model as a GGUF that llama.cpp (and so node-llama-cpp, Ollama, LM Studio) loads as
 * architecture "gpt2", with its byte-level BPE vocabulary (tokenizer.ggml.model "gpt2", pre "gpt-2").
 * The output head is tied to the token embedding (llama.cpp falls back to token_embd when `output`
 * is absent), as in GPT-2.
 */
export function writeGpt2Gguf(path: string, opts: Gpt2GgufOptions): void {
  const { config, tensors, tokenizerJson } = opts;
  const d = config.dModel;
  const dFf = config.dFf ?? 4 * d;
  const get = (name: string, shape: number[]) => {
    const t = tensors.get(name);
    if (!t) {
      throw new SynthmixError("GGUF_MISSING_TENSOR", `GPT-2 export: tensor "${name}" is missing`, {
        hint: "tensors must use Hugging Face GPT-2 names (wte.weight, h.0.attn.c_attn.weight, ...)",
      });
    }
    const n = shape.reduce((a, b) => a * b, 1);
    const same = t.shape.length === shape.length && t.shape.every((v, i) => v === shape[i]);
    if (!same || t.data.length !== n) {
      throw new SynthmixError(
        "GGUF_SHAPE",
        `GPT-2 export: tensor "${name}" has shape [${t.shape.join(", ")}], expected [${shape.join(", ")}]`,
      );
    }
    return t.data;
  };
  const wt = opts.f16 ? GgmlType.F16 : GgmlType.F32;
  const out: GgufTensor[] = [];
  const vec = (ggufName: string, hfName: string, n: number) =>
    out.push({ name: ggufName, shape: [n], data: get(hfName, [n]) });
  const conv1d = (ggufName: string, hfName: string, nIn: number, nOut: number) =>
    out.push({
      name: ggufName,
      shape: [nOut, nIn],
      data: transpose(get(hfName, [nIn, nOut]), nIn, nOut),
      type: wt,
    });

  out.push({
    name: "token_embd.weight",
    shape: [config.vocabSize, d],
    data: get("wte.weight", [config.vocabSize, d]),
    type: wt,
  });
  out.push({
    name: "position_embd.weight",
    shape: [config.contextLength, d],
    data: get("wpe.weight", [config.contextLength, d]),
    type: wt,
  });
  for (let l = 0; l < config.nLayer; l++) {
    const h = `h.${l}`;
    const b = `blk.${l}`;
    vec(`${b}.attn_norm.weight`, `${h}.ln_1.weight`, d);
    vec(`${b}.attn_norm.bias`, `${h}.ln_1.bias`, d);
    conv1d(`${b}.attn_qkv.weight`, `${h}.attn.c_attn.weight`, d, 3 * d);
    vec(`${b}.attn_qkv.bias`, `${h}.attn.c_attn.bias`, 3 * d);
    conv1d(`${b}.attn_output.weight`, `${h}.attn.c_proj.weight`, d, d);
    vec(`${b}.attn_output.bias`, `${h}.attn.c_proj.bias`, d);
    vec(`${b}.ffn_norm.weight`, `${h}.ln_2.weight`, d);
    vec(`${b}.ffn_norm.bias`, `${h}.ln_2.bias`, d);
    conv1d(`${b}.ffn_up.weight`, `${h}.mlp.c_fc.weight`, d, dFf);
    vec(`${b}.ffn_up.bias`, `${h}.mlp.c_fc.bias`, dFf);
    conv1d(`${b}.ffn_down.weight`, `${h}.mlp.c_proj.weight`, dFf, d);
    vec(`${b}.ffn_down.bias`, `${h}.mlp.c_proj.bias`, d);
  }
  vec("output_norm.weight", "ln_f.weight", d);
  vec("output_norm.bias", "ln_f.bias", d);

  const { tokens, types, merges, eosId } = gpt2Vocab(tokenizerJson, config.vocabSize, opts.eosToken);
  const metadata: Record<string, GgufValue> = {
    "general.architecture": gv.str("gpt2"),
    "general.name": gv.str(opts.name ?? "synthmix-gpt2"),
    "general.file_type": gv.u32(opts.f16 ? 1 : 0),
    "gpt2.context_length": gv.u32(config.contextLength),
    "gpt2.embedding_length": gv.u32(d),
    "gpt2.feed_forward_length": gv.u32(dFf),
    "gpt2.block_count": gv.u32(config.nLayer),
    "gpt2.attention.head_count": gv.u32(config.nHead),
    "gpt2.attention.layer_norm_epsilon": gv.f32(config.layerNormEps ?? 1e-5),
    "tokenizer.ggml.model": gv.str("gpt2"),
    "tokenizer.ggml.pre": gv.str("gpt-2"),
    "tokenizer.ggml.tokens": gv.strs(tokens),
    "tokenizer.ggml.token_type": gv.i32s(types),
    "tokenizer.ggml.merges": gv.strs(merges),
    "tokenizer.ggml.bos_token_id": gv.u32(eosId),
    "tokenizer.ggml.eos_token_id": gv.u32(eosId),
    "tokenizer.ggml.add_bos_token": gv.bool(false),
  };
  writeGguf(path, { metadata, tensors: out });
}

function gpt2Vocab(
  tj: HfTokenizerJson,
  vocabSize: number,
  eosToken = "<|endoftext|>",
): { tokens: string[]; types: number[]; merges: string[]; eosId: number } {
  if (!tj?.model?.vocab) {
    throw new SynthmixError("GGUF_TOKENIZER", "GPT-2 export: tokenizer.json has no model.vocab", {
      hint: "pass a Hugging Face byte-level BPE tokenizer.json",
    });
  }
  const tokens: (string | undefined)[] = new Array(vocabSize);
  const types = new Array<number>(vocabSize).fill(TOKEN_NORMAL);
  for (const [tok, id] of Object.entries(tj.model.vocab)) {
    if (id >= vocabSize) {
      throw new SynthmixError(
        "GGUF_TOKENIZER",
        `token id ${id} (${JSON.stringify(tok)}) >= vocabSize ${vocabSize}`,
      );
    }
    tokens[id] = tok;
  }
  const special = new Set<number>();
  for (const a of tj.added_tokens ?? []) {
    if (a.id >= vocabSize) continue;
    tokens[a.id] = a.content;
    if (a.special !== false) special.add(a.id);
  }
  for (let i = 0; i < vocabSize; i++) {
    if (tokens[i] === undefined) {
      // Embedding rows beyond the tokenizer (vocab padded to a multiple for speed) are never produced.
      tokens[i] = `[PAD${i}]`;
      types[i] = TOKEN_UNUSED;
    } else if (special.has(i)) {
      types[i] = TOKEN_CONTROL;
    }
  }
  const merges = (tj.model.merges ?? []).map((m) => (Array.isArray(m) ? `${m[0]} ${m[1]}` : m));
  let eosId = (tokens as string[]).indexOf(eosToken);
  if (eosId < 0) eosId = special.size > 0 ? Math.max(...special) : vocabSize - 1;
  types[eosId] = TOKEN_CONTROL;
  return { tokens: tokens as string[], types, merges, eosId };
}
