import type { FloatArray, Kernels } from "./kernels/types.js";
import type { GPT } from "./model.js";
import type { OptimizerConfig } from "./schema.js";

/**
 * AdamW with decoupled weight decay (Loshchilov & Hutter): decay on matrices and embeddings only, never
 * on biases or LayerNorm parameters. State (m, v) is one flat buffer each, parallel to the parameters,
 * so checkpointing is a plain copy; the update runs once per tensor through `kernels.adamwUpdate`.
 */
export class AdamW {
  readonly m: Float32Array | Float64Array;
  readonly v: Float32Array | Float64Array;
  /** Number of updates done so far (the bias-correction step is t + 1). */
  t = 0;
  /** Runs of consecutive tensors with the same decay flag: one kernel call each instead of one per tensor. */
  private readonly groups: { offset: number; size: number; decay: boolean }[] = [];

  constructor(
    private readonly model: GPT,
    private readonly k: Kernels,
    private readonly hp: Pick<OptimizerConfig, "beta1" | "beta2" | "eps" | "weightDecay">,
  ) {
    const n = model.numParams;
    this.m = model.dtype === "float64" ? new Float64Array(n) : new Float32Array(n);
    this.v = model.dtype === "float64" ? new Float64Array(n) : new Float32Array(n);
    for (const s of model.specs) {
      const last = this.groups[this.groups.length - 1];
      if (last && last.decay === s.decay && last.offset + last.size === s.offset) last.size += s.size;
      else this.groups.push({ offset: s.offset, size: s.size, decay: s.decay });
    }
  }

  step(lr: number): void {
    this.t += 1;
    const { params, grads } = this.model;
    for (const s of this.groups) {
      const end = s.offset + s.size;
      this.k.adamwUpdate(
        params.subarray(s.offset, end),
        grads.subarray(s.offset, end),
        this.m.subarray(s.offset, end),
        this.v.subarray(s.offset, end),
        s.size,
        lr,
        this.hp.beta1,
        this.hp.beta2,
        this.hp.eps,
        s.decay ? this.hp.weightDecay : 0,
        this.t,
      );
    }
  }
}

/**
 * Global-norm gradient clipping: returns the norm before clipping and scales the gradients by
 * maxNorm / norm when it is larger. The sum of squares accumulates in float64 in a fixed order (the
 * native version: fixed chunks, summed in chunk order), so the result is deterministic.
 */
export function clipGradNorm(grads: FloatArray, maxNorm: number, k?: Kernels): number {
  // The native kernels do it in parallel (a JS loop over every gradient was ~5% of a small model's step).
  if (k?.clipGradNorm && grads instanceof Float32Array) return k.clipGradNorm(grads, grads.length, maxNorm);
  let ss = 0;
  for (let i = 0; i < grads.length; i++) ss += grads[i] * grads[i];
  const norm = Math.sqrt(ss);
  if (Number.isFinite(norm) && norm > maxNorm) {
    const scale = maxNorm / norm;
    for (let i = 0; i < grads.length; i++) grads[i] *= scale;
  }
  return norm;
}

/**
 * Learning rate at optimizer step `step` (0-based) of `totalSteps`: linear warmup from lr/warmup to lr
 * over `warmupSteps` steps, then by `schedule`:
 *   cosine (default)  cosine decay to minLrRatio*lr at the last step;
 *   wsd               lr until the cooldown, the last c = max(1, round(decayFraction*totalSteps)) steps,
 *                     then lr_t = minLr + (lr - minLr)(1 - sqrt(k/c)), k = 1..c (Hägele et al. 2024's
 *                     1-sqrt cooldown; it reaches minLr at the last step, like the cosine);
 *   constant          lr (warmup over warmupSteps whatever totalSteps is: a WSD trunk's LR must not
 *                     depend on how far it is trained).
 */
export function lrAt(
  step: number,
  totalSteps: number,
  o: Pick<OptimizerConfig, "lr" | "warmupSteps" | "minLrRatio" | "schedule" | "decayFraction">,
): number {
  if (o.schedule === "constant") return step < o.warmupSteps ? (o.lr * (step + 1)) / o.warmupSteps : o.lr;
  const warmup = Math.min(o.warmupSteps, totalSteps);
  if (step < warmup) return (o.lr * (step + 1)) / warmup;
  const minLr = o.lr * o.minLrRatio;
  if (o.schedule === "wsd") {
    const c = Math.max(1, Math.round((o.decayFraction ?? 0.2) * totalSteps));
    const k = step - (totalSteps - c) + 1;
    return k <= 0 ? o.lr : minLr + (o.lr - minLr) * (1 - Math.sqrt(Math.min(1, k / c)));
  }
  const decaySteps = totalSteps - warmup - 1;
  if (decaySteps <= 0) return o.lr;
  const progress = Math.min(1, (step - warmup) / decaySteps);
  return minLr + 0.5 * (1 + Math.cos(Math.PI * progress)) * (o.lr - minLr);
}
