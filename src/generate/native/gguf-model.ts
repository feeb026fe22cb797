import { closeSync, openSync } from "node:fs";
import { SynthmixError } from "../../util/errors.js";
import { readExactly } from "../../util/readexact.js";

/**
 * Loads a GPT-2 GGUF (architecture "gpt2", as synthmix's writeGpt2Gguf exports it) into float32 arrays for
 * the native batched decoder. The header (metadata, tensor infos) is parsed by node-llama-cpp's
 * readGgufFileInfo, a maintained parser; only the tensor bytes are read here. Weights stay in the file's
 * row-major (out, in) layout, which is the layout of src/train/model.ts.
 */

export interface Gpt2Layer {
  ln1W: Float32Array;
  ln1B: Float32Array;
  qkvW: Float32Array; // (3C, C)
  qkvB: Float32Array;
  projW: Float32Array; // (C, C)
  projB: Float32Array;
  ln2W: Float32Array;
  ln2B: Float32Array;
  fcW: Float32Array; // (F, C)
  fcB: Float32Array;
  fcProjW: Float32Array; // (C, F)
  fcProjB: Float32Array;
}

export interface Gpt2Weights {
  nLayer: number;
  dModel: number;
  nHead: number;
  dFf: number;
  contextLength: number;
  vocabSize: number;
  layerNormEps: number;
  wte: Float32Array; // (V, C); also the (tied) output head unless `output` is present
  wpe: Float32Array; // (T, C)
  output: Float32Array; // (V, C)
  layers: Gpt2Layer[];
  lnfW: Float32Array;
  lnfB: Float32Array;
}

export interface GgufVocab {
  tokens: string[];
  /** llama.cpp token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte. */
  types: number[];
  merges: string[];
  eosId: number;
  bosId: number;
  addBos: boolean;
  chatTemplate?: string;
}

export interface Gpt2Gguf {
  weights: Gpt2Weights;
  vocab: GgufVocab;
  name?: string;
}

const GGML_F32 = 0;
const GGML_F16 = 1;

function bad(path: string, what: string, hint?: string): SynthmixError {
  return new SynthmixError("NATIVE_GGUF", `${path}: ${what}`, {
    hint:
      hint ?? "the native engine runs GPT-2 GGUFs exported by synthmix; use engine=llama for other models",
  });
}

/** IEEE half -> float (GGUF f16 tensors). */
function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

type TensorInfo = {
  name: string;
  dimensions: readonly (number | bigint)[];
  ggmlType: number;
  fileOffset: number | bigint;
};

function readTensor(path: string, fd: number, t: TensorInfo, shape: number[]): Float32Array {
  // ggml dims are fastest-varying first, i.e. the reverse of the row-major shape.
  const dims = [...t.dimensions].map(Number).reverse();
  if (dims.length !== shape.length || dims.some((d, i) => d !== shape[i])) {
    throw bad(path, `tensor ${t.name} has shape [${dims.join(", ")}], expected [${shape.join(", ")}]`);
  }
  const n = shape.reduce((a, b) => a * b, 1);
  const bytesPer = t.ggmlType === GGML_F32 ? 4 : t.ggmlType === GGML_F16 ? 2 : 0;
  if (bytesPer === 0) {
    throw bad(path, `tensor ${t.name} has ggml type ${t.ggmlType}; the native engine reads f32 and f16 only`);
  }
  const buf = Buffer.alloc(n * bytesPer);
  readExactly(fd, buf, Number(t.fileOffset), `${path} (tensor ${t.name})`, "NATIVE_GGUF");
  const out = new Float32Array(n);
  if (bytesPer === 4) for (let i = 0; i < n; i++) out[i] = buf.readFloatLE(i * 4);
  else for (let i = 0; i < n; i++) out[i] = f16ToF32(buf.readUInt16LE(i * 2));
  return out;
}

function num(meta: Record<string, unknown>, key: string, path: string, dflt?: number): number {
  const v = meta[key];
  if (v === undefined && dflt !== undefined) return dflt;
  if (typeof v !== "number" && typeof v !== "bigint") throw bad(path, `metadata ${key} is missing`);
  return Number(v);
}

/** Flattens node-llama-cpp's nested metadata ({gpt2: {context_length}}) back into GGUF keys. */
function flatten(obj: unknown, prefix = "", out: Record<string, unknown> = {}): Record<string, unknown> {
  if (obj && typeof obj === "object" && !Array.isArray(obj)) {
    for (const [k, v] of Object.entries(obj)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else out[prefix] = obj;
  return out;
}

function readVocab(meta: Record<string, unknown>, path: string, V: number): GgufVocab {
  const tokens = meta["tokenizer.ggml.tokens"] as string[] | undefined;
  const types = meta["tokenizer.ggml.token_type"] as number[] | undefined;
  if (meta["tokenizer.ggml.model"] !== "gpt2" || !tokens || !types) {
    throw bad(path, `tokenizer ${String(meta["tokenizer.ggml.model"])} is not a GPT-2 byte-level BPE`);
  }
  const pre = meta["tokenizer.ggml.pre"];
  if (pre !== undefined && pre !== "gpt-2" && pre !== "default") {
    throw bad(
      path,
      `pre-tokenizer "${String(pre)}" is not GPT-2's (the native tokenizer implements "gpt-2")`,
    );
  }
  if (tokens.length !== V) throw bad(path, `${tokens.length} tokens but the embedding has ${V} rows`);
  const eosId = num(meta, "tokenizer.ggml.eos_token_id", path);
  return {
    tokens,
    types,
    merges: (meta["tokenizer.ggml.merges"] as string[] | undefined) ?? [],
    eosId,
    bosId: num(meta, "tokenizer.ggml.bos_token_id", path, eosId),
    addBos: meta["tokenizer.ggml.add_bos_token"] === true,
    chatTemplate: meta["tokenizer.chat_template"] as string | undefined,
  };
}

export async function loadGpt2Gguf(path: string): Promise<Gpt2Gguf> {
  const { readGgufFileInfo } = await import("node-llama-cpp");
  let info: Awaited<ReturnType<typeof readGgufFileInfo>>;
  try {
    info = await readGgufFileInfo(path, { readTensorInfo: true, logWarnings: false });
  } catch (e) {
    throw new SynthmixError("NATIVE_GGUF", `${path}: cannot read GGUF: ${(e as Error).message}`, {
      hint: "pass a .gguf file written by synthmix (generator model export)",
      cause: e,
    });
  }
  const meta = flatten(info.metadata);
  if (meta["general.architecture"] !== "gpt2") {
    throw bad(path, `architecture is "${String(meta["general.architecture"])}", not "gpt2"`);
  }
  const byName = new Map((info.tensorInfo ?? []).map((t) => [t.name, t as unknown as TensorInfo]));
  const C = num(meta, "gpt2.embedding_length", path);
  const L = num(meta, "gpt2.block_count", path);
  const NH = num(meta, "gpt2.attention.head_count", path);
  const T = num(meta, "gpt2.context_length", path);
  const F = num(meta, "gpt2.feed_forward_length", path, 4 * C);
  const eps = num(meta, "gpt2.attention.layer_norm_epsilon", path, 1e-5);
  const emb = byName.get("token_embd.weight");
  if (!emb) throw bad(path, "tensor token_embd.weight is missing");
  const V = Number(emb.dimensions[1]);
  if (C % NH !== 0) throw bad(path, `embedding ${C} is not divisible by ${NH} heads`);
  const fd = openSync(path, "r");
  try {
    const get = (name: string, shape: number[]) => {
      const t = byName.get(name);
      if (!t) throw bad(path, `tensor ${name} is missing`);
      return readTensor(path, fd, t, shape);
    };
    const layers: Gpt2Layer[] = [];
    for (let l = 0; l < L; l++) {
      const b = `blk.${l}`;
      layers.push({
        ln1W: get(`${b}.attn_norm.weight`, [C]),
        ln1B: get(`${b}.attn_norm.bias`, [C]),
        qkvW: get(`${b}.attn_qkv.weight`, [3 * C, C]),
        qkvB: get(`${b}.attn_qkv.bias`, [3 * C]),
        projW: get(`${b}.attn_output.weight`, [C, C]),
        projB: get(`${b}.attn_output.bias`, [C]),
        ln2W: get(`${b}.ffn_norm.weight`, [C]),
        ln2B: get(`${b}.ffn_norm.bias`, [C]),
        fcW: get(`${b}.ffn_up.weight`, [F, C]),
        fcB: get(`${b}.ffn_up.bias`, [F]),
        fcProjW: get(`${b}.ffn_down.weight`, [C, F]),
        fcProjB: get(`${b}.ffn_down.bias`, [C]),
      });
    }
    const wte = get("token_embd.weight", [V, C]);
    const weights: Gpt2Weights = {
      nLayer: L,
      dModel: C,
      nHead: NH,
      dFf: F,
      contextLength: T,
      vocabSize: V,
      layerNormEps: eps,
      wte,
      wpe: get("position_embd.weight", [T, C]),
      // llama.cpp uses `output` when present and falls back to the tied token embedding.
      output: byName.has("output.weight") ? get("output.weight", [V, C]) : wte,
      layers,
      lnfW: get("output_norm.weight", [C]),
      lnfB: get("output_norm.bias", [C]),
    };
    return { weights, vocab: readVocab(meta, path, V), name: meta["general.name"] as string | undefined };
  } finally {
    closeSync(fd);
  }
}
