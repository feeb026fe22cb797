import { loadNativeKernels, nativeAddon, nativeLoadError } from "../../train/kernels/native.js";
import type { Kernels } from "../../train/kernels/types.js";
import { SynthmixError } from "../../util/errors.js";
import type { Gpt2Weights } from "./gguf-model.js";

/** The decode kernels of native/decode.cc (exported by the same addon as the training kernels). */
export interface DecodeAddon {
  kvAttentionForward(
    out: Float32Array,
    qkv: Float32Array,
    kc: Uint16Array,
    vc: Uint16Array,
    slots: Int32Array,
    pos: Int32Array,
    R: number,
    C: number,
    NH: number,
    T: number,
    S: number,
    threads: number,
    firstPrefill: number,
  ): void;
  geluF16Forward(out: Float32Array, inp: Float32Array, N: number): void;
}

/** The native kernels plus the decode kernels, or a reason why they are unavailable. */
export function decodeKernels(): { kernels: Kernels; decode: DecodeAddon } | { error: string } {
  const kernels = loadNativeKernels();
  const addon = nativeAddon() as unknown as Partial<DecodeAddon> | null;
  if (!kernels || !addon) return { error: nativeLoadError() ?? "native kernels not loaded" };
  if (typeof addon.kvAttentionForward !== "function" || typeof addon.geluF16Forward !== "function") {
    return { error: "the native addon has no decode kernels (rebuild it: npx node-gyp rebuild)" };
  }
  return { kernels, decode: addon as DecodeAddon };
}

export interface DecoderOptions {
  /** Sequences with a KV cache slot. */
  slots: number;
  /** Most rows (tokens) in one forward call. */
  maxRows: number;
  threads: number;
  /**
   * GELU as llama.cpp's CPU backend computes it (an f16 lookup table: input and output rounded to half
   * precision), so logits match the llama engine; false = the exact tanh formula in float32.
   */
  llamaGelu?: boolean;
}

/**
 * GPT-2 forward over a ragged batch of rows (token, sequence slot, position) with a per-slot KV cache,
 * like llama_decode over a llama_batch: prefill chunks and single decode steps of many sequences go
 * through the same GEMMs. Logits are computed only for the rows that ask for them. Each row's result is
 * bitwise independent of the other rows (row-wise kernels, GEMM with a fixed k order per element,
 * attention per row), so outputs never depend on how requests happened to be batched.
 */
export class BatchedGpt2 {
  readonly V: number;
  readonly T: number;
  readonly C: number;
  private readonly k: Kernels;
  private readonly d: DecodeAddon;
  /** f16 KV cache per layer (slot, position, channel), as llama.cpp's default cache type. */
  private readonly kc: Uint16Array[];
  private readonly vc: Uint16Array[];
  private readonly x: Float32Array; // residual stream (R, C)
  private readonly ln: Float32Array; // (R, C)
  private readonly mean: Float32Array;
  private readonly rstd: Float32Array;
  private readonly qkv: Float32Array; // (R, 3C)
  private readonly atty: Float32Array; // (R, C)
  private readonly tmp: Float32Array; // (R, C)
  private readonly fch: Float32Array; // (R, F)
  private readonly fchGelu: Float32Array; // (R, F)
  private readonly sel: Float32Array; // (R, C) rows that need logits
  private readonly logits: Float32Array; // (R, V)

  constructor(
    readonly w: Gpt2Weights,
    readonly opts: DecoderOptions,
  ) {
    const dk = decodeKernels();
    if ("error" in dk) {
      throw new SynthmixError("NATIVE_UNAVAILABLE", `native decoding is unavailable: ${dk.error}`, {
        hint: "run `npm ci` (it builds build/Release/synthmix_kernels.node), or use engine=llama",
      });
    }
    if (Math.abs(w.layerNormEps - 1e-5) > 1e-9) {
      throw new SynthmixError(
        "NATIVE_GGUF",
        `layer norm epsilon ${w.layerNormEps} is not 1e-5 (the native layernorm kernel's)`,
        { hint: "use engine=llama for this model" },
      );
    }
    this.k = dk.kernels;
    this.d = dk.decode;
    this.V = w.vocabSize;
    this.T = w.contextLength;
    this.C = w.dModel;
    const { slots, maxRows: R } = opts;
    const C = this.C;
    const cache = slots * this.T * C;
    this.kc = w.layers.map(() => new Uint16Array(cache));
    this.vc = w.layers.map(() => new Uint16Array(cache));
    this.x = new Float32Array(R * C);
    this.ln = new Float32Array(R * C);
    this.mean = new Float32Array(R);
    this.rstd = new Float32Array(R);
    this.qkv = new Float32Array(R * 3 * C);
    this.atty = new Float32Array(R * C);
    this.tmp = new Float32Array(R * C);
    this.fch = new Float32Array(R * w.dFf);
    this.fchGelu = new Float32Array(R * w.dFf);
    this.sel = new Float32Array(R * C);
    this.logits = new Float32Array(R * this.V);
  }

  /**
   * Copies the cached keys/values of positions [0, n) from one slot to another (a shared prompt prefix).
   * A position's keys/values depend only on the tokens up to it and are computed row-independently, so
   * the copy is bit-identical to recomputing them.
   */
  copyPrefix(from: number, to: number, n: number): void {
    if (from === to || n <= 0) return;
    const { nHead: NH, dModel: C } = this.w;
    const hs = C / NH;
    const T = this.T;
    for (let l = 0; l < this.kc.length; l++) {
      for (let h = 0; h < NH; h++) {
        const src = (from * NH + h) * T * hs;
        const dst = (to * NH + h) * T * hs;
        this.kc[l].copyWithin(dst, src, src + n * hs);
        this.vc[l].copyWithin(dst, src, src + n * hs);
      }
    }
  }

  /**
   * Runs rows [0, R): tokens[r] at position pos[r] of the sequence in slot slots[r]. Rows of one sequence
   * must be consecutive positions in order, and its earlier positions must already be cached. Rows from
   * `firstPrefill` on are prompt tokens (attention through GEMMs per prompt chunk), rows before it are
   * generated tokens (one query each): a position always takes the same path, so results stay
   * independent of batching. Returns the logits (nOut, V) of the rows listed in `out` (valid until the
   * next call).
   */
  forward(
    tokens: Int32Array,
    slots: Int32Array,
    pos: Int32Array,
    R: number,
    out: Int32Array,
    nOut: number,
    firstPrefill = R,
  ): Float32Array {
    // The GEMMs and row kernels run on the kernels' global thread count: use the decoder's own (else a
    // 1-thread decoder still wakes a second pool thread for every GEMM), then restore it for the trainer.
    const addon = nativeAddon();
    const before = addon?.getThreads() ?? this.opts.threads;
    addon?.setThreads(this.opts.threads);
    try {
      return this.forwardRows(tokens, slots, pos, R, out, nOut, firstPrefill);
    } finally {
      addon?.setThreads(before);
    }
  }

  private forwardRows(
    tokens: Int32Array,
    slots: Int32Array,
    pos: Int32Array,
    R: number,
    out: Int32Array,
    nOut: number,
    firstPrefill: number,
  ): Float32Array {
    const { w, k, d, C, V, T } = this;
    if (R > this.opts.maxRows) throw new Error(`batch of ${R} rows exceeds maxRows ${this.opts.maxRows}`);
    const F = w.dFf;
    const x = this.x;
    for (let r = 0; r < R; r++) {
      const tok = tokens[r];
      const p = pos[r];
      if (tok < 0 || tok >= V) throw new Error(`token ${tok} outside the vocabulary (${V})`);
      if (p < 0 || p >= T) throw new Error(`position ${p} outside the context (${T})`);
      const e = tok * C;
      const q = p * C;
      const o = r * C;
      for (let c = 0; c < C; c++) x[o + c] = w.wte[e + c] + w.wpe[q + c];
    }
    for (let l = 0; l < w.nLayer; l++) {
      const lw = w.layers[l];
      k.layernormForward(this.ln, this.mean, this.rstd, x, lw.ln1W, lw.ln1B, R, C);
      k.matmulForward(this.qkv, this.ln, lw.qkvW, lw.qkvB, R, C, 3 * C);
      d.kvAttentionForward(
        this.atty,
        this.qkv,
        this.kc[l],
        this.vc[l],
        slots,
        pos,
        R,
        C,
        w.nHead,
        T,
        this.opts.slots,
        this.opts.threads,
        firstPrefill,
      );
      k.matmulForward(this.tmp, this.atty, lw.projW, lw.projB, R, C, C);
      k.residualForward(x, x, this.tmp, R * C);
      k.layernormForward(this.ln, this.mean, this.rstd, x, lw.ln2W, lw.ln2B, R, C);
      k.matmulForward(this.fch, this.ln, lw.fcW, lw.fcB, R, C, F);
      if (this.opts.llamaGelu ?? true) d.geluF16Forward(this.fchGelu, this.fch, R * F);
      else k.geluForward(this.fchGelu, this.fch, R * F);
      k.matmulForward(this.tmp, this.fchGelu, lw.fcProjW, lw.fcProjB, R, F, C);
      k.residualForward(x, x, this.tmp, R * C);
    }
    for (let i = 0; i < nOut; i++) {
      const r = out[i];
      this.sel.set(x.subarray(r * C, (r + 1) * C), i * C);
    }
    if (nOut === 0) return this.logits.subarray(0, 0);
    k.layernormForward(this.ln, this.mean, this.rstd, this.sel, w.lnfW, w.lnfB, nOut, C);
    k.matmulForward(this.logits, this.ln, w.output, null, nOut, C, V);
    return this.logits.subarray(0, nOut * V);
  }
}
