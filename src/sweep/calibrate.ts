import { existsSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { getKernels } from "../train/kernels/index.js";
import { GPT } from "../train/model.js";
import { AdamW, clipGradNorm } from "../train/optim.js";
import { type ModelConfig, ModelConfigSchema } from "../train/schema.js";
import { writeJsonAtomic } from "../util/atomic.js";
import { stableHash } from "../util/hash.js";
import { readJsonFile } from "../util/json.js";
import { Rng } from "../util/rng.js";

const ThreadMeasurementSchema = z.object({
  model: ModelConfigSchema,
  batchSize: z.number(),
  /** Training tokens/s at 1 thread and at `cores` threads. */
  tokPerSec1: z.number(),
  tokPerSecAll: z.number(),
  cores: z.number(),
  speedup: z.number(),
  threads: z.number(),
});
export type ThreadMeasurement = z.infer<typeof ThreadMeasurementSchema>;
/** `<ws>/runs/.threads.json`: measurements by model key, reused across sweeps. */
const ThreadCacheSchema = z.record(z.string(), ThreadMeasurementSchema);

/**
 * Tokens/s of the training step (forward, backward, clip, AdamW) of `cfg` on random tokens with the
 * native kernels at `threads` threads: best of `steps` timed steps after one warm-up step.
 */
export function measureTrainThroughput(
  cfg: ModelConfig,
  batchSize: number,
  threads: number,
  steps = 3,
): number {
  const k = getKernels();
  k.setThreads?.(threads);
  const T = cfg.contextLength;
  const model = new GPT(cfg, k, batchSize, T);
  model.init(0);
  const opt = new AdamW(model, k, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 });
  const rng = new Rng(1);
  const x = Int32Array.from({ length: batchSize * T }, () => rng.int(cfg.vocabSize));
  const y = Int32Array.from({ length: batchSize * T }, () => rng.int(cfg.vocabSize));
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i <= steps; i++) {
    const t0 = performance.now();
    model.zeroGrad();
    model.forward(x, y);
    model.backward();
    clipGradNorm(model.grads, 1, k);
    opt.step(1e-3);
    if (i > 0) best = Math.min(best, performance.now() - t0);
  }
  return (batchSize * T) / (best / 1000);
}

/**
 * Threads per model by measured throughput: a model gets every core when `cores` threads train it at
 * least `minSpeedup` times faster than one thread (then one all-core run loses little throughput against
 * one-thread runs side by side, and finishes `speedup` times sooner); else one thread per run. Results
 * are kept in `<ws>/runs/.threads.json`, so reruns and resumes reuse the same decisions.
 */
export function threadsByMeasurement(
  workspace: string,
  models: ModelConfig[],
  batchSize: number,
  cores: number,
  minSpeedup: number,
  log?: (line: string) => void,
): Map<string, number> {
  const path = join(workspace, "runs", ".threads.json");
  const cache: Record<string, ThreadMeasurement> = existsSync(path)
    ? readJsonFile(path, ThreadCacheSchema, {
        code: "BAD_THREAD_CACHE",
        what: "the thread measurements",
        hint: "delete it: the sweep measures again",
      })
    : {};
  const out = new Map<string, number>();
  let changed = false;
  for (const model of models) {
    const key = modelKey(model, batchSize, cores);
    if (out.has(key)) continue;
    let m = cache[key];
    if (!m) {
      const r1 = measureTrainThroughput(model, batchSize, 1);
      const rAll = cores > 1 ? measureTrainThroughput(model, batchSize, cores) : r1;
      const speedup = rAll / r1;
      m = {
        model,
        batchSize,
        tokPerSec1: r1,
        tokPerSecAll: rAll,
        cores,
        speedup,
        threads: speedup >= minSpeedup ? cores : 1,
      };
      cache[key] = m;
      changed = true;
      log?.(
        `threads: L${model.nLayer} d${model.dModel}: ${r1.toFixed(0)} tok/s on 1 thread, ${rAll.toFixed(0)} on ${cores} (x${speedup.toFixed(2)}) -> ${m.threads}`,
      );
    }
    out.set(key, m.threads);
  }
  if (changed) writeJsonAtomic(path, cache);
  return out;
}

export function modelKey(model: ModelConfig, batchSize: number, cores: number): string {
  return stableHash({ model, batchSize, cores });
}
