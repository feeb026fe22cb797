import type { HfTokenizerJson } from "../../src/generate/gguf.js";
import { writeGpt2Gguf } from "../../src/generate/gguf.js";
import { Rng } from "../../src/util/rng.js";

/** GPT-2's byte -> printable unicode map (the byte-level BPE alphabet). */
export function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let i = 33; i <= 126; i++) bs.push(i);
  for (let i = 161; i <= 172; i++) bs.push(i);
  for (let i = 174; i <= 255; i++) bs.push(i);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n);
      n++;
    }
  }
  const out = new Array<string>(256);
  bs.forEach((b, i) => {
    out[b] = String.fromCodePoint(cs[i]);
  });
  return out;
}

/** A byte-level BPE tokenizer.json: 256 byte tokens, a few merges, and <|endoftext|>. */
export function tinyTokenizerJson(): HfTokenizerJson {
  const b2u = bytesToUnicode();
  const vocab: Record<string, number> = {};
  b2u.forEach((u, i) => {
    vocab[u] = i;
  });
  const sp = b2u[32];
  const merges: [string, string][] = [
    ["t", "h"],
    ["th", "e"],
    [sp, "the"],
    ["a", "n"],
    [sp, "a"],
    ["e", "r"],
  ];
  let id = 256;
  for (const [a, b] of merges) vocab[a + b] = id++;
  const eos = id;
  return {
    version: "1.0",
    model: { type: "BPE", vocab, merges: merges.map(([a, b]) => `${a} ${b}`) },
    added_tokens: [{ id: eos, content: "<|endoftext|>", special: true }],
  };
}

/** A random 2-layer GPT-2 (d 64) written with HF names; returns the vocab size. */
export interface TinyGpt2 {
  vocabSize: number;
  dModel: number;
  nLayer: number;
  nHead: number;
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
}

export function writeTinyGpt2(path: string, seed = 1, ctx = 1024): TinyGpt2 {
  const tok = tinyTokenizerJson();
  const vocabSize = 256 + 6 + 1;
  const d = 64;
  const nLayer = 2;
  const rng = new Rng(seed);
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  const rand = (shape: number[], scale = 0.02) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = rng.normal() * scale;
    tensors.set(name, { shape, data });
  };
  let name = "";
  const set = (nm: string, shape: number[], fill?: number) => {
    name = nm;
    // Norm gains around 1 and small random biases: a layout bug in any tensor changes the logits.
    if (fill === undefined) rand(shape, nm.startsWith("wte") ? 0.5 : 0.1);
    else rand(shape, 0.05);
    if (fill !== undefined) {
      const t = tensors.get(nm);
      if (t) for (let i = 0; i < t.data.length; i++) t.data[i] += fill;
    }
  };
  set("wte.weight", [vocabSize, d]);
  set("wpe.weight", [ctx, d]);
  for (let l = 0; l < nLayer; l++) {
    const h = `h.${l}`;
    set(`${h}.ln_1.weight`, [d], 1);
    set(`${h}.ln_1.bias`, [d], 0);
    set(`${h}.attn.c_attn.weight`, [d, 3 * d]);
    set(`${h}.attn.c_attn.bias`, [3 * d], 0);
    set(`${h}.attn.c_proj.weight`, [d, d]);
    set(`${h}.attn.c_proj.bias`, [d], 0);
    set(`${h}.ln_2.weight`, [d], 1);
    set(`${h}.ln_2.bias`, [d], 0);
    set(`${h}.mlp.c_fc.weight`, [d, 4 * d]);
    set(`${h}.mlp.c_fc.bias`, [4 * d], 0);
    set(`${h}.mlp.c_proj.weight`, [4 * d, d]);
    set(`${h}.mlp.c_proj.bias`, [d], 0);
  }
  set("ln_f.weight", [d], 1);
  set("ln_f.bias", [d], 0);
  writeGpt2Gguf(path, {
    config: { nLayer, dModel: d, nHead: 4, contextLength: ctx, vocabSize },
    tensors,
    tokenizerJson: tok,
    name: "tiny-random-gpt2",
  });
  return { vocabSize, dModel: d, nLayer, nHead: 4, tensors };
}
