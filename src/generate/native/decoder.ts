import { nativeAddon, nativeLoadError } from "../../train/kernels/native.js";
import { SynthmixError } from "../../util/errors.js";
import type { Gpt2Weights } from "./gguf-model.js";
import type { SamplerParams } from "./sampler.js";

/** A call's rows: (tokens, slots, pos) [0, R), prompt rows from firstPrefill, the out rows. */
type EngineRowArgs = [
  tokens: Int32Array,
  slots: Int32Array,
  pos: Int32Array,
  R: number,
  firstPrefill: number,
  outRows: Int32Array,
  nOut: number,
];
/** A step's arguments: the rows, then where each out row's token goes. */
type EngineStepArgs = [...EngineRowArgs, next: Int32Array];

/** One BatchedGpt2.decodeAsync call (see there). */
export interface DecodeCall {
  tokens: Int32Array;
  slots: Int32Array;
  pos: Int32Array;
  R: number;
  out: Int32Array;
  nOut: number;
  firstPrefill: number;
  steps: number;
  budget: Int32Array;
  eos: number;
  drawn: Int32Array;
  counts: Int32Array;
}

/** native/decode_engine.cc: the forward over a ragged batch of rows plus per-slot sampling, in C++. */
export interface DecodeEngine {
  step(...args: EngineStepArgs): void;
  /** As step, on a libuv worker thread; the engine is busy (other calls throw) until it resolves. */
  stepAsync(...args: EngineStepArgs): Promise<void>;
  /** As stepAsync, then up to steps - 1 decode-only steps (see BatchedGpt2.decodeAsync). */
  decodeAsync(
    ...args: [
      ...EngineRowArgs,
      steps: number,
      budget: Int32Array,
      eos: number,
      drawn: Int32Array,
      counts: Int32Array,
    ]
  ): Promise<void>;
  forward(
    tokens: Int32Array,
    slots: Int32Array,
    pos: Int32Array,
    R: number,
    firstPrefill: number,
    outRows: Int32Array,
    nOut: number,
    logits: Float32Array,
  ): void;
  setSampler(slot: number, temperature: number, topP: number, topK: number, seed: number): void;
  sample(slot: number, logits: Float32Array): number;
  sharePrefix(to: number, from: number, n: number): void;
  profile(): Record<string, number>;
}

type DecodeEngineClass = new (
  config: {
    nLayer: number;
    C: number;
    NH: number;
    F: number;
    T: number;
    V: number;
    slots: number;
    maxRows: number;
    threads: number;
    llamaGelu: boolean;
  },
  weights: Float32Array[],
) => DecodeEngine;

/** The native decode engine's constructor, or a reason why it is unavailable. */
export function decodeKernels(): { Engine: DecodeEngineClass } | { error: string } {
  const addon = nativeAddon() as unknown as { DecodeEngine?: DecodeEngineClass } | null;
  if (!addon) return { error: nativeLoadError() ?? "native kernels not loaded" };
  if (typeof addon.DecodeEngine !== "function") {
    return { error: "the native addon has no decode engine (rebuild it: npx node-gyp rebuild)" };
  }
  return { Engine: addon.DecodeEngine };
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
 * through the same GEMMs (native/decode_engine.cc; weights packed once). Logits are computed only for the
 * rows that ask for them, and `step` samples them in native code with each slot's own seeded sampler
 * (the llama.cpp chain of sampler.ts, transcribed). Each row's result is bitwise independent of the other
 * rows (row-wise kernels, GEMM with a fixed k order per element, attention per row), so outputs never
 * depend on how requests happened to be batched.
 */
export class BatchedGpt2 {
  readonly V: number;
  readonly T: number;
  readonly C: number;
  private readonly engine: DecodeEngine;
  private readonly logits: Float32Array;

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
    this.V = w.vocabSize;
    this.T = w.contextLength;
    this.C = w.dModel;
    const weights = [w.wte, w.wpe, w.output, w.lnfW, w.lnfB];
    for (const l of w.layers) {
      weights.push(l.ln1W, l.ln1B, l.qkvW, l.qkvB, l.projW, l.projB);
      weights.push(l.ln2W, l.ln2B, l.fcW, l.fcB, l.fcProjW, l.fcProjB);
    }
    this.engine = new dk.Engine(
      {
        nLayer: w.nLayer,
        C: w.dModel,
        NH: w.nHead,
        F: w.dFf,
        T: w.contextLength,
        V: w.vocabSize,
        slots: opts.slots,
        maxRows: opts.maxRows,
        threads: opts.threads,
        llamaGelu: opts.llamaGelu ?? true,
      },
      weights,
    );
    this.logits = new Float32Array(opts.maxRows * this.V);
  }

  /**
   * From now on, positions [0, n) of slot `to` are read from slot `from`'s cache (a prompt prefix both
   * sequences share; n = 0 ends the sharing). `from` must hold those keys/values itself and keep them
   * while `to` reads them (src/generate/native/slots.ts keeps this invariant). A position's keys/values
   * depend only on the tokens up to it and are computed row-independently, so this is bit-identical to
   * recomputing them.
   */
  sharePrefix(to: number, from: number, n: number): void {
    this.engine.sharePrefix(to, from, n);
  }

  /**
   * CPU seconds of the engine's calling thread per phase (embed, layernorm, gemm, attention, gelu,
   * residual, head, sample) since it was made, plus the rows and steps run.
   */
  profile(): Record<string, number> {
    return this.engine.profile();
  }

  /** A fresh sampler (its own RNG stream from the seed) for the request that takes `slot`. */
  setSampler(slot: number, p: SamplerParams): void {
    this.engine.setSampler(slot, p.temperature, p.topP, p.topK, p.seed);
  }

  /** One draw of the slot's sampler from given logits (length V); for tests of the native sampler. */
  sample(slot: number, logits: Float32Array): number {
    return this.engine.sample(slot, logits);
  }

  /**
   * Runs rows [0, R): tokens[r] at position pos[r] of the sequence in slot slots[r]. Rows of one sequence
   * must be consecutive positions in order, and its earlier positions must already be cached. Rows from
   * `firstPrefill` on are prompt tokens (attention through GEMMs per prompt chunk), rows before it are
   * generated tokens (one query each): a position always takes the same path, so results stay
   * independent of batching. Writes into next[i] the token that the sampler of row out[i]'s slot draws
   * from that row's logits.
   */
  step(
    tokens: Int32Array,
    slots: Int32Array,
    pos: Int32Array,
    R: number,
    out: Int32Array,
    nOut: number,
    next: Int32Array,
    firstPrefill = R,
  ): void {
    this.engine.step(tokens, slots, pos, R, firstPrefill, out, nOut, next);
  }

  /**
   * As `step`, off the JS thread (several engines then decode on several cores); leave the arrays
   * untouched and make no other call on this decoder until the promise settles.
   */
  stepAsync(
    tokens: Int32Array,
    slots: Int32Array,
    pos: Int32Array,
    R: number,
    out: Int32Array,
    nOut: number,
    next: Int32Array,
    firstPrefill = R,
  ): Promise<void> {
    return this.engine.stepAsync(tokens, slots, pos, R, firstPrefill, out, nOut, next);
  }

  /**
   * As `stepAsync` (rows, out rows and firstPrefill as there), then up to `steps` - 1 more steps of
   * decode rows only, each continuing the out rows that drew neither `eos` nor their last budgeted token
   * (budget[i] >= 1 tokens for out row i, this step's included) and are still inside the context: out
   * row i's tokens land in drawn[i * steps ...], counts[i] of them. The tokens are those that many single
   * steps would draw (no row's arithmetic or sampler depends on the batch); one JS round trip instead of
   * `steps`.
   */
  decodeAsync(c: DecodeCall): Promise<void> {
    return this.engine.decodeAsync(
      c.tokens,
      c.slots,
      c.pos,
      c.R,
      c.firstPrefill,
      c.out,
      c.nOut,
      c.steps,
      c.budget,
      c.eos,
      c.drawn,
      c.counts,
    );
  }

  /** As `step`, but returns the logits (nOut, V) of the rows listed in `out` (valid until the next call). */
  forward(
    tokens: Int32Array,
    slots: Int32Array,
    pos: Int32Array,
    R: number,
    out: Int32Array,
    nOut: number,
    firstPrefill = R,
  ): Float32Array {
    const logits = this.logits.subarray(0, nOut * this.V);
    this.engine.forward(tokens, slots, pos, R, firstPrefill, out, nOut, logits);
    return logits;
  }
}
