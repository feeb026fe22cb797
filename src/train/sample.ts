import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { SynthmixError } from "../util/errors.js";
import { Rng } from "../util/rng.js";
import { loadModelWeights, readModelConfig } from "./checkpoint.js";
import { getKernels } from "./kernels/index.js";
import type { Kernels } from "./kernels/types.js";
import { GPT } from "./model.js";
import { type RunConfig, RunConfigSchema } from "./schema.js";

/** Loads `<run>/model.safetensors` into a model with room for `batch` sequences of full context. */
export function loadModel(
  runDir: string,
  opts: { batch?: number; kernels?: Kernels } = {},
): { model: GPT; config: RunConfig | null } {
  const path = join(runDir, "model.safetensors");
  if (!existsSync(path)) {
    throw new SynthmixError("MISSING_MODEL", `${path} not found`, {
      hint: "train the run first (synthmix train)",
    });
  }
  const cfgPath = join(runDir, "config.json");
  const config = existsSync(cfgPath)
    ? RunConfigSchema.parse(JSON.parse(readFileSync(cfgPath, "utf8")))
    : null;
  const modelCfg = config?.model ?? readModelConfig(path);
  const model = new GPT(modelCfg, opts.kernels ?? getKernels(), opts.batch ?? 1);
  loadModelWeights(path, model);
  return { model, config };
}

export interface SampleOptions {
  maxTokens: number;
  /** 0 = greedy (argmax). Default 1. */
  temperature?: number;
  /** Keep only the k most likely tokens (0 = all). Default 0. */
  topK?: number;
  seed?: number;
  /** Stop after generating this id (e.g. end-of-text). */
  stopAt?: number;
}

/** Index of the largest logit (the first of equal ones). */
function argmax(logits: ArrayLike<number>, V: number): number {
  let next = 0;
  for (let i = 1; i < V; i++) if (logits[i] > logits[next]) next = i;
  return next;
}

/**
 * Draws one id from softmax(logits / temperature) restricted to the topK largest logits (0 = all),
 * with one uniform draw of `rng`; `probs` is scratch of length V.
 */
function sampleLogits(
  logits: ArrayLike<number>,
  V: number,
  temperature: number,
  topK: number,
  rng: Rng,
  probs: Float64Array,
): number {
  let cutoff = Number.NEGATIVE_INFINITY;
  if (topK > 0 && topK < V) cutoff = Array.from(logits).sort((a, b) => b - a)[topK - 1];
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < V; i++) if (logits[i] >= cutoff && logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < V; i++) {
    probs[i] = logits[i] >= cutoff ? Math.exp((logits[i] - max) / temperature) : 0;
    sum += probs[i];
  }
  let r = rng.next() * sum;
  for (let i = 0; i < V; i++) {
    r -= probs[i];
    if (r < 0) return i;
  }
  return V - 1;
}

/** Continues `prompt` (token ids) with up to maxTokens sampled ids; returns only the new ids. */
export function sampleModel(model: GPT, prompt: number[], o: SampleOptions): number[] {
  const T = model.T;
  const V = model.cfg.vocabSize;
  const rng = new Rng(o.seed ?? 0);
  const temperature = o.temperature ?? 1;
  const topK = o.topK ?? 0;
  const seq = prompt.length > 0 ? [...prompt] : [0];
  const out: number[] = [];
  const x = new Int32Array(model.B * T);
  const probs = new Float64Array(V);
  for (let n = 0; n < o.maxTokens; n++) {
    // Causal attention: positions after the context do not influence it, so padding with 0 is safe.
    const ctx = seq.slice(-T);
    x.fill(0);
    x.set(ctx);
    model.forward(x, null, { B: 1 });
    const logits = model.logitsOf(0).subarray((ctx.length - 1) * V, ctx.length * V);
    const next =
      temperature <= 0 ? argmax(logits, V) : sampleLogits(logits, V, temperature, topK, rng, probs);
    seq.push(next);
    out.push(next);
    if (o.stopAt !== undefined && next === o.stopAt) break;
  }
  return out;
}

/** `sample(runDir, promptIds, opts)`: load the run's final weights and sample a continuation. */
export function sample(runDir: string, prompt: number[], o: SampleOptions): number[] {
  return sampleModel(loadModel(runDir).model, prompt, o);
}
