import type { TinyGpt2 } from "./tiny-gpt2.js";

/**
 * A direct GPT-2 forward pass on Hugging Face tensors (Conv1D weights in (in, out) layout), written
 * from the GPT-2 paper/HF modeling code and independent of the GGUF writer: the reference that
 * llama.cpp's logits on the exported file are checked against.
 */
export function gpt2NextTokenLogits(m: TinyGpt2, tokens: number[]): Float64Array {
  const d = m.dModel;
  const T = tokens.length;
  const hd = d / m.nHead;
  const W = (n: string) => {
    const t = m.tensors.get(n);
    if (!t) throw new Error(n);
    return t.data;
  };
  const ln = (x: Float64Array, g: Float32Array, b: Float32Array) => {
    let mu = 0;
    for (let i = 0; i < d; i++) mu += x[i];
    mu /= d;
    let v = 0;
    for (let i = 0; i < d; i++) v += (x[i] - mu) ** 2;
    const r = 1 / Math.sqrt(v / d + 1e-5);
    const o = new Float64Array(d);
    for (let i = 0; i < d; i++) o[i] = (x[i] - mu) * r * g[i] + b[i];
    return o;
  };
  const conv1d = (x: Float64Array, w: Float32Array, b: Float32Array, nOut: number) => {
    const o = new Float64Array(nOut);
    for (let j = 0; j < nOut; j++) o[j] = b[j];
    for (let i = 0; i < x.length; i++) for (let j = 0; j < nOut; j++) o[j] += x[i] * w[i * nOut + j];
    return o;
  };
  const gelu = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
  const wte = W("wte.weight");
  const wpe = W("wpe.weight");
  let xs = tokens.map((tok, p) => {
    const x = new Float64Array(d);
    for (let i = 0; i < d; i++) x[i] = wte[tok * d + i] + wpe[p * d + i];
    return x;
  });
  for (let l = 0; l < m.nLayer; l++) {
    const h = `h.${l}`;
    const qkv = xs.map((x) =>
      conv1d(
        ln(x, W(`${h}.ln_1.weight`), W(`${h}.ln_1.bias`)),
        W(`${h}.attn.c_attn.weight`),
        W(`${h}.attn.c_attn.bias`),
        3 * d,
      ),
    );
    xs = xs.map((x, t) => {
      const att = new Float64Array(d);
      for (let hh = 0; hh < m.nHead; hh++) {
        const scores: number[] = [];
        for (let s = 0; s <= t; s++) {
          let dot = 0;
          for (let i = 0; i < hd; i++) dot += qkv[t][hh * hd + i] * qkv[s][d + hh * hd + i];
          scores.push(dot / Math.sqrt(hd));
        }
        const mx = Math.max(...scores);
        const e = scores.map((v) => Math.exp(v - mx));
        const z = e.reduce((a, b) => a + b, 0);
        for (let s = 0; s <= t; s++)
          for (let i = 0; i < hd; i++) att[hh * hd + i] += (e[s] / z) * qkv[s][2 * d + hh * hd + i];
      }
      const proj = conv1d(att, W(`${h}.attn.c_proj.weight`), W(`${h}.attn.c_proj.bias`), d);
      const y = x.map((v, i) => v + proj[i]);
      const f = conv1d(
        ln(y, W(`${h}.ln_2.weight`), W(`${h}.ln_2.bias`)),
        W(`${h}.mlp.c_fc.weight`),
        W(`${h}.mlp.c_fc.bias`),
        4 * d,
      ).map(gelu);
      const o = conv1d(f, W(`${h}.mlp.c_proj.weight`), W(`${h}.mlp.c_proj.bias`), d);
      return y.map((v, i) => v + o[i]);
    });
  }
  const last = ln(xs[T - 1], W("ln_f.weight"), W("ln_f.bias"));
  const logits = new Float64Array(m.vocabSize);
  for (let v = 0; v < m.vocabSize; v++) {
    let s = 0;
    for (let i = 0; i < d; i++) s += last[i] * wte[v * d + i];
    logits[v] = s;
  }
  return logits;
}
