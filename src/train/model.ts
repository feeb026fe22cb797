/**
 * GPT-2 decoder, llm.c style: one flat parameter buffer with named views, one flat gradient buffer,
 * activations preallocated for a maximum (B, T), and forward/backward written out layer by layer
 * through the `Kernels` interface (reference TypeScript or the native addon).
 *
 *   tokens (B,T) -> wte[tok] + wpe[t]                                   x (B,T,C)
 *   per layer:  x = x + attn(ln_1(x));  x = x + mlp(ln_2(x))            (pre-LN)
 *     attn:  qkv = ln_1 @ c_attn^T + b (B,T,3C) -> causal softmax(q k^T / sqrt(hs)) v (B,T,C)
 *            -> c_proj (B,T,C)
 *     mlp:   c_fc (B,T,4C) -> GELU(tanh) -> c_proj (B,T,C)
 *   ln_f(x) @ wte^T (tied) -> logits (B,T,V) -> cross-entropy
 *
 * Linear weights are stored (out, in) like torch.nn.Linear; tensor names are the Hugging Face GPT-2
 * names so the checkpoint writer only has to transpose the Conv1D weights (see checkpoint.ts).
 * The model is generic over float32 (training) and float64 (finite-difference gradient checks).
 */
import { deriveSeed, Rng } from "../util/rng.js";
import type { FloatArray, Kernels } from "./kernels/types.js";
import type { ModelConfig } from "./schema.js";

export type Dtype = "float32" | "float64";

export interface TensorSpec {
  /** Hugging Face GPT-2 name, e.g. "h.0.attn.c_attn.weight". */
  name: string;
  /** Our shape; linear weights are (out, in). */
  shape: number[];
  offset: number;
  size: number;
  /** True for linear weights that HF stores transposed (Conv1D, (in, out)). */
  conv1d: boolean;
  /** AdamW weight decay applies (matrices and embeddings, not biases or LayerNorm parameters). */
  decay: boolean;
  init: "normal" | "residual" | "zeros" | "ones";
}

export interface LayerViews {
  ln1W: FloatArray;
  ln1B: FloatArray;
  qkvW: FloatArray; // (3C, C)
  qkvB: FloatArray; // (3C)
  projW: FloatArray; // (C, C)
  projB: FloatArray; // (C)
  ln2W: FloatArray;
  ln2B: FloatArray;
  fcW: FloatArray; // (4C, C)
  fcB: FloatArray; // (4C)
  fcProjW: FloatArray; // (C, 4C)
  fcProjB: FloatArray; // (C)
}

export interface ParamViews {
  wte: FloatArray; // (V, C)
  wpe: FloatArray; // (T, C)
  layers: LayerViews[];
  lnfW: FloatArray;
  lnfB: FloatArray;
}

/** The parameter table: names, shapes and offsets into the flat buffer, in storage order. */
export function paramTable(cfg: ModelConfig): TensorSpec[] {
  const { vocabSize: V, contextLength: T, dModel: C, nLayer: L } = cfg;
  const specs: TensorSpec[] = [];
  let offset = 0;
  const add = (name: string, shape: number[], init: TensorSpec["init"], conv1d = false) => {
    const size = shape.reduce((a, b) => a * b, 1);
    specs.push({ name, shape, offset, size, conv1d, decay: shape.length >= 2, init });
    offset += size;
  };
  add("wte.weight", [V, C], "normal");
  add("wpe.weight", [T, C], "normal");
  for (let l = 0; l < L; l++) {
    const h = `h.${l}`;
    add(`${h}.ln_1.weight`, [C], "ones");
    add(`${h}.ln_1.bias`, [C], "zeros");
    add(`${h}.attn.c_attn.weight`, [3 * C, C], "normal", true);
    add(`${h}.attn.c_attn.bias`, [3 * C], "zeros");
    add(`${h}.attn.c_proj.weight`, [C, C], "residual", true);
    add(`${h}.attn.c_proj.bias`, [C], "zeros");
    add(`${h}.ln_2.weight`, [C], "ones");
    add(`${h}.ln_2.bias`, [C], "zeros");
    add(`${h}.mlp.c_fc.weight`, [4 * C, C], "normal", true);
    add(`${h}.mlp.c_fc.bias`, [4 * C], "zeros");
    add(`${h}.mlp.c_proj.weight`, [C, 4 * C], "residual", true);
    add(`${h}.mlp.c_proj.bias`, [C], "zeros");
  }
  add("ln_f.weight", [C], "ones");
  add("ln_f.bias", [C], "zeros");
  return specs;
}

function makeViews(buf: FloatArray, cfg: ModelConfig, specs: TensorSpec[]): ParamViews {
  const by = new Map(specs.map((s) => [s.name, buf.subarray(s.offset, s.offset + s.size)]));
  const get = (name: string) => by.get(name) as FloatArray;
  const layers: LayerViews[] = [];
  for (let l = 0; l < cfg.nLayer; l++) {
    const h = `h.${l}`;
    layers.push({
      ln1W: get(`${h}.ln_1.weight`),
      ln1B: get(`${h}.ln_1.bias`),
      qkvW: get(`${h}.attn.c_attn.weight`),
      qkvB: get(`${h}.attn.c_attn.bias`),
      projW: get(`${h}.attn.c_proj.weight`),
      projB: get(`${h}.attn.c_proj.bias`),
      ln2W: get(`${h}.ln_2.weight`),
      ln2B: get(`${h}.ln_2.bias`),
      fcW: get(`${h}.mlp.c_fc.weight`),
      fcB: get(`${h}.mlp.c_fc.bias`),
      fcProjW: get(`${h}.mlp.c_proj.weight`),
      fcProjB: get(`${h}.mlp.c_proj.bias`),
    });
  }
  return {
    wte: get("wte.weight"),
    wpe: get("wpe.weight"),
    layers,
    lnfW: get("ln_f.weight"),
    lnfB: get("ln_f.bias"),
  };
}

/** Saved forward activations of one block (all for the current micro-batch). */
interface LayerActs {
  ln1: FloatArray; // (B,T,C)
  ln1Mean: FloatArray; // (B,T)
  ln1Rstd: FloatArray; // (B,T)
  qkv: FloatArray; // (B,T,3C)
  atty: FloatArray; // (B,T,C) attention output before c_proj
  att: FloatArray; // (B,NH,T,T) softmax probabilities
  residual2: FloatArray; // (B,T,C) x + attn
  ln2: FloatArray; // (B,T,C)
  ln2Mean: FloatArray;
  ln2Rstd: FloatArray;
  fch: FloatArray; // (B,T,4C) pre-GELU
  fchGelu: FloatArray; // (B,T,4C)
  residual3: FloatArray; // (B,T,C) block output
}

export interface ForwardOptions {
  /** Rows actually used (<= the allocated B); default: all. */
  B?: number;
  /** Compute dlogits for a following backward(); default true when targets are given. */
  needGrad?: boolean;
  /**
   * Gradient scale of each valid target's loss: default 1/(valid targets in this call), i.e. the
   * gradient of the mean loss. Gradient accumulation passes 1/(valid targets in the whole step).
   */
  lossScale?: number;
}

export class GPT {
  readonly specs: TensorSpec[];
  readonly numParams: number;
  readonly params: FloatArray;
  readonly grads: FloatArray;
  readonly p: ParamViews;
  readonly g: ParamViews;
  private readonly acts: {
    encoded: FloatArray; // (B,T,C)
    layers: LayerActs[];
    lnf: FloatArray; // (B,T,C)
    lnfMean: FloatArray;
    lnfRstd: FloatArray;
    logits: FloatArray; // (B,T,V), allocated on the first forward without targets (sampling)
    losses: FloatArray; // (B,T)
    // Written by the fused output head in a training forward, consumed by backward().
    dlnf: FloatArray; // (B,T,C)
    dwteHead: FloatArray; // (V,C) the head's part of the tied embedding's gradient
    // Backward scratch, shared by all layers (lifetimes do not overlap within one block).
    dres: FloatArray; // (B,T,C) gradient flowing along the residual stream
    dC: FloatArray; // (B,T,C) dln2, then datty, then dln1
    d4a: FloatArray; // (B,T,4C) dfchGelu, then (in place) dfch, then dqkv (3C)
    dAtt: FloatArray; // (B,NH,T,T) attention backward scratch
  };
  private tokens: Int32Array = new Int32Array(0);
  private readonly alloc = (n: number): FloatArray =>
    this.dtype === "float64" ? new Float64Array(n) : new Float32Array(n);
  private lastB = 0;
  private hasDlogits = false;

  constructor(
    readonly cfg: ModelConfig,
    readonly k: Kernels,
    readonly B: number,
    readonly T: number = cfg.contextLength,
    readonly dtype: Dtype = "float32",
  ) {
    if (cfg.dModel % cfg.nHead !== 0)
      throw new Error(`dModel ${cfg.dModel} is not divisible by nHead ${cfg.nHead}`);
    if (T > cfg.contextLength) throw new Error(`T ${T} exceeds the context length ${cfg.contextLength}`);
    const alloc = this.alloc;
    this.specs = paramTable(cfg);
    const last = this.specs[this.specs.length - 1];
    this.numParams = last.offset + last.size;
    this.params = alloc(this.numParams);
    this.grads = alloc(this.numParams);
    this.p = makeViews(this.params, cfg, this.specs);
    this.g = makeViews(this.grads, cfg, this.specs);
    const { dModel: C, vocabSize: V, nHead: NH } = cfg;
    const BT = B * T;
    this.acts = {
      encoded: alloc(BT * C),
      layers: Array.from({ length: cfg.nLayer }, () => ({
        ln1: alloc(BT * C),
        ln1Mean: alloc(BT),
        ln1Rstd: alloc(BT),
        qkv: alloc(BT * 3 * C),
        atty: alloc(BT * C),
        att: alloc(B * NH * T * T),
        residual2: alloc(BT * C),
        ln2: alloc(BT * C),
        ln2Mean: alloc(BT),
        ln2Rstd: alloc(BT),
        fch: alloc(BT * 4 * C),
        fchGelu: alloc(BT * 4 * C),
        residual3: alloc(BT * C),
      })),
      lnf: alloc(BT * C),
      lnfMean: alloc(BT),
      lnfRstd: alloc(BT),
      logits: alloc(0),
      losses: alloc(BT),
      dlnf: alloc(BT * C),
      dwteHead: alloc(V * C),
      dres: alloc(BT * C),
      dC: alloc(BT * C),
      d4a: alloc(BT * 4 * C),
      dAtt: alloc(B * NH * T * T),
    };
  }

  /**
   * GPT-2 initialisation: weights N(0, 0.02), residual projections (attn.c_proj, mlp.c_proj) scaled by
   * 1/sqrt(2 n_layer), biases 0, LayerNorm gains 1. Each tensor draws from its own stream derived from
   * (seed, name), so the init of one tensor does not depend on the sizes of the others.
   */
  init(seed: number): void {
    const residualStd = 0.02 / Math.sqrt(2 * this.cfg.nLayer);
    for (const s of this.specs) {
      const view = this.params.subarray(s.offset, s.offset + s.size);
      if (s.init === "zeros") view.fill(0);
      else if (s.init === "ones") view.fill(1);
      else {
        const std = s.init === "residual" ? residualStd : 0.02;
        const rng = new Rng(deriveSeed(seed, "init", s.name));
        for (let i = 0; i < view.length; i++) view[i] = rng.normal() * std;
      }
    }
  }

  zeroGrad(): void {
    this.grads.fill(0);
  }

  /**
   * Forward pass over `B` sequences of length T. `targets` (same layout as tokens, -1 = ignore) gives
   * the mean loss over valid targets (nats/token); without targets only logits are computed (NaN).
   */
  forward(tokens: Int32Array, targets: Int32Array | null, opts: ForwardOptions = {}): number {
    const k = this.k;
    const { dModel: C, vocabSize: V, nHead: NH } = this.cfg;
    const B = opts.B ?? this.B;
    const T = this.T;
    if (B > this.B) throw new Error(`batch ${B} exceeds the allocated ${this.B}`);
    const BT = B * T;
    for (let i = 0; i < BT; i++) {
      if (tokens[i] < 0 || tokens[i] >= V)
        throw new Error(`token id ${tokens[i]} at ${i} is outside the vocabulary (${V})`);
    }
    this.tokens = tokens;
    this.lastB = B;
    const a = this.acts;
    const p = this.p;

    k.encoderForward(a.encoded, tokens, p.wte, p.wpe, B, T, C);
    let residual = a.encoded;
    for (let l = 0; l < this.cfg.nLayer; l++) {
      const w = p.layers[l];
      const la = a.layers[l];
      k.layernormForward(la.ln1, la.ln1Mean, la.ln1Rstd, residual, w.ln1W, w.ln1B, BT, C);
      k.matmulForward(la.qkv, la.ln1, w.qkvW, w.qkvB, BT, C, 3 * C);
      k.attentionForward(la.atty, la.att, la.qkv, B, T, C, NH);
      // c_proj output goes through the residual2 buffer and is added in place (out may alias b).
      k.matmulForward(la.residual2, la.atty, w.projW, w.projB, BT, C, C);
      k.residualForward(la.residual2, residual, la.residual2, BT * C);
      k.layernormForward(la.ln2, la.ln2Mean, la.ln2Rstd, la.residual2, w.ln2W, w.ln2B, BT, C);
      k.matmulForward(la.fch, la.ln2, w.fcW, w.fcB, BT, C, 4 * C);
      k.geluForward(la.fchGelu, la.fch, BT * 4 * C);
      k.matmulForward(la.residual3, la.fchGelu, w.fcProjW, w.fcProjB, BT, 4 * C, C);
      k.residualForward(la.residual3, la.residual2, la.residual3, BT * C);
      residual = la.residual3;
    }
    k.layernormForward(a.lnf, a.lnfMean, a.lnfRstd, residual, p.lnfW, p.lnfB, BT, C);

    this.hasDlogits = false;
    if (targets === null) {
      // Sampling: the caller reads the logits (logitsOf).
      if (a.logits.length === 0) a.logits = this.alloc(this.B * T * V);
      k.matmulForward(a.logits, a.lnf, p.wte, null, BT, C, V);
      return Number.NaN;
    }
    let valid = 0;
    for (let i = 0; i < BT; i++) if (targets[i] >= 0) valid++;
    if (valid === 0) return Number.NaN;
    const needGrad = opts.needGrad ?? true;
    const scale = opts.lossScale ?? 1 / valid;
    // The vocabulary projection (BT x V x C) dominates small models; fused with the loss (and, when
    // training, with its backward) it never writes the (BT,V) logits to memory.
    const dlnf = needGrad ? a.dlnf : null;
    const dwte = needGrad ? a.dwteHead : null;
    k.logitsCrossEntropy(a.losses, dlnf, dwte, a.lnf, p.wte, targets, BT, C, V, scale);
    this.hasDlogits = needGrad;
    let sum = 0;
    for (let i = 0; i < BT; i++) sum += a.losses[i];
    return sum / valid;
  }

  /** Sum of per-token losses of the last forward (for exact means over several calls). */
  lossSum(): number {
    let sum = 0;
    const n = this.lastB * this.T;
    for (let i = 0; i < n; i++) sum += this.acts.losses[i];
    return sum;
  }

  /** Logits (T, V) of sequence b from the last forward, which must have been without targets. */
  logitsOf(b: number): FloatArray {
    const n = this.T * this.cfg.vocabSize;
    return this.acts.logits.subarray(b * n, (b + 1) * n);
  }

  /** Backward of the last forward (which must have had targets and needGrad); ACCUMULATES into grads. */
  backward(): void {
    if (!this.hasDlogits) throw new Error("backward() needs a preceding forward() with targets and needGrad");
    const k = this.k;
    const { dModel: C, vocabSize: V, nHead: NH } = this.cfg;
    const B = this.lastB;
    const T = this.T;
    const BT = B * T;
    const a = this.acts;
    const p = this.p;
    const g = this.g;
    const dres = a.dres.subarray(0, BT * C);
    const dC = a.dC.subarray(0, BT * C);
    const d4a = a.d4a.subarray(0, BT * 4 * C);
    const L = this.cfg.nLayer;
    const lastResidual = L > 0 ? a.layers[L - 1].residual3 : a.encoded;

    // logits = lnf @ wte^T: the forward's fused head left dlnf and its part of dwte (the tied
    // embedding accumulates both uses). `true` = overwrite the input gradient (no zeroing pass).
    k.residualForward(g.wte, g.wte, a.dwteHead, V * C);
    const dlnf = a.dlnf.subarray(0, BT * C);
    k.layernormBackward(dres, g.lnfW, g.lnfB, dlnf, lastResidual, p.lnfW, a.lnfMean, a.lnfRstd, BT, C, true);

    for (let l = L - 1; l >= 0; l--) {
      const w = p.layers[l];
      const gw = g.layers[l];
      const la = a.layers[l];
      const residual = l === 0 ? a.encoded : a.layers[l - 1].residual3;
      // residual3 = residual2 + c_proj(gelu(c_fc(ln_2(residual2)))): dres is d(residual3) here.
      k.matmulBackward(d4a, gw.fcProjW, gw.fcProjB, dres, la.fchGelu, w.fcProjW, BT, 4 * C, C, true);
      // In place: a separate d(fch) buffer cost a read-for-ownership of 4 floats per channel per token
      // (the backward's largest elementwise pass is memory-bound: 1.5x slower out of place at 2M floats).
      k.geluBackward(d4a, la.fch, d4a, BT * 4 * C, true);
      k.matmulBackward(dC, gw.fcW, gw.fcB, d4a, la.ln2, w.fcW, BT, C, 4 * C, true);
      // Identity path already in dres; the LN path accumulates into it -> dres = d(residual2).
      k.layernormBackward(dres, gw.ln2W, gw.ln2B, dC, la.residual2, w.ln2W, la.ln2Mean, la.ln2Rstd, BT, C);
      // residual2 = residual + c_proj(attn(c_attn(ln_1(residual)))).
      k.matmulBackward(dC, gw.projW, gw.projB, dres, la.atty, w.projW, BT, C, C, true);
      const dqkv = d4a.subarray(0, BT * 3 * C);
      k.attentionBackward(dqkv, a.dAtt, dC, la.qkv, la.att, B, T, C, NH, true);
      k.matmulBackward(dC, gw.qkvW, gw.qkvB, dqkv, la.ln1, w.qkvW, BT, C, 3 * C, true);
      k.layernormBackward(dres, gw.ln1W, gw.ln1B, dC, residual, w.ln1W, la.ln1Mean, la.ln1Rstd, BT, C);
    }
    k.encoderBackward(g.wte, g.wpe, dres, this.tokens, B, T, C);
    this.hasDlogits = false;
  }
}
