/**
 * Where a training step of the demo's small models spends its time, kernel by kernel:
 * `npx tsx bench/kernels-profile.ts [--steps N] [--threads 1|2] [--vocab 512] [--batch 8] [--only l1d64]
 *  [--eval-tokens 16384] [--eval-every 600] [--no-sgemm] [--train-models]` (defaults: the full demo's grid, src/study/demo.ts,
 * plus the L3 d128 model of its earlier grid; `--vocab 2048 --batch 16 --eval-tokens 32768 --eval-every 250`
 * is that earlier grid; `--train-models` profiles bench/train.ts's small and ref models instead, each with its own
 * vocabulary, context and batch, e.g. `--train-models --threads 2 --only small`).
 *
 * Wraps every kernel of the native `Kernels` with a timer and runs forward + backward + clip + AdamW on
 * the grid's shapes (batch x context 64). Prints per model the share of each kernel and the
 * total step time, and the step's executed GFLOP/s over the 1-thread SGEMM rate measured in the same run.
 * With 1 thread (the default, what a sweep gives small models) everything is timed by the process's CPU
 * time, so the numbers hold up on a loaded machine; with 2 threads by the wall clock.
 */
import { getKernels } from "../src/train/kernels/index.js";
import type { Kernels } from "../src/train/kernels/types.js";
import { executedFlopsPerToken } from "../src/train/ladder.js";
import { GPT } from "../src/train/model.js";
import { AdamW, clipGradNorm } from "../src/train/optim.js";
import type { ModelConfig } from "../src/train/schema.js";
import { Rng } from "../src/util/rng.js";
import { benchClock } from "./clock.js";
import { BENCH_MODELS, TRAIN_BENCH_MODELS } from "./models.js";
import { sgemmRate } from "./sgemm.js";

const args = process.argv.slice(2);
const arg = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const steps = Number(arg("steps", "30"));
const threads = Number(arg("threads", "1"));
const V = Number(arg("vocab", "512"));
const B = Number(arg("batch", "8"));
// The demo's evaluation schedule: 3 domains x evalTokens every evalEvery steps.
const evalTokens = Number(arg("eval-tokens", "16384"));
const evalEvery = Number(arg("eval-every", "600"));
const models: { name: string; cfg: ModelConfig; B: number }[] = (
  args.includes("--train-models")
    ? TRAIN_BENCH_MODELS
    : BENCH_MODELS.map((m) => ({ name: m.name, cfg: { vocabSize: V, contextLength: 64, ...m }, B }))
).filter((m) => arg("only", m.name) === m.name);

const clock = benchClock(threads);

// --no-sgemm: skip it (e.g. under valgrind, where only the instruction counts of the steps matter)
const sgemm = args.includes("--no-sgemm") ? Number.NaN : sgemmRate(threads, { reps: 8, clock });
console.log(
  `SGEMM ${threads} thread(s): ${sgemm.toFixed(1)} GFLOP/s (${threads === 1 ? "CPU time" : "wall clock"})`,
);

const base = getKernels("native");
base.setThreads?.(threads);
const times = new Map<string, number>();
// biome-ignore lint/suspicious/noExplicitAny: generic timing wrapper over every kernel function
const timed: any = { ...base };
for (const [key, fn] of Object.entries(base)) {
  if (typeof fn !== "function" || key === "setThreads") continue;
  timed[key] = (...a: unknown[]) => {
    const t0 = clock();
    // biome-ignore lint/suspicious/noExplicitAny: forwarding the kernel's own arguments
    const r = (fn as any)(...a);
    const name =
      key === "matmulForward"
        ? `${key}[${a[5]}->${a[6]}]`
        : key === "matmulBackward"
          ? `${key}[${a[7]}->${a[8]}]`
          : key;
    times.set(name, (times.get(name) ?? 0) + clock() - t0);
    return r;
  };
}

interface Run {
  model: GPT;
  step: () => void;
  x: Int32Array;
  y: Int32Array;
}

function setup(cfg: ModelConfig, B: number, k: Kernels): Run {
  const T = cfg.contextLength;
  const V = cfg.vocabSize;
  const model = new GPT(cfg, k, B, T);
  model.init(0);
  const opt = new AdamW(model, k, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 });
  const rng = new Rng(1);
  const x = Int32Array.from({ length: B * T }, () => rng.int(V));
  const y = Int32Array.from({ length: B * T }, () => rng.int(V));
  const step = () => {
    model.zeroGrad();
    model.forward(x, y);
    model.backward();
    clipGradNorm(model.grads, 1, k);
    opt.step(1e-3);
  };
  for (let i = 0; i < 3; i++) step();
  return { model, step, x, y };
}

/** Clock time (ms) of `n` calls of f. */
function timeOf(n: number, f: () => void): number {
  const t0 = clock();
  for (let i = 0; i < n; i++) f();
  return clock() - t0;
}

for (const { name, cfg, B } of models) {
  // The step and eval times come from the plain kernels; the per-kernel timers (a clock read around
  // every call) cost tens of microseconds per step, a large share of the smallest models' steps, so the
  // breakdown runs separately and its shares are of its own (timed) total.
  const plain = setup(cfg, B, base);
  const total = timeOf(steps, plain.step);
  const evalMs = timeOf(steps, () => plain.model.forward(plain.x, plain.y, { needGrad: false })) / steps;
  const tokens = steps * B * cfg.contextLength;
  const gflops = (executedFlopsPerToken(cfg) * tokens) / (total / 1000) / 1e9;
  console.log(
    `${name} (V${cfg.vocabSize}, B${B} T${cfg.contextLength}, ${threads} thread): ${(total / steps).toFixed(2)} ms/step, ${Math.round(tokens / (total / 1000))} tok/s, ${gflops.toFixed(1)} GFLOP/s = ${(gflops / sgemm).toFixed(2)} of SGEMM`,
  );
  // Evaluation = forward without gradients on fixed windows, 3 domains x evalTokens every evalEvery steps.
  const evalShare = (evalMs * ((3 * evalTokens) / (B * cfg.contextLength))) / ((evalEvery * total) / steps);
  console.log(
    `  eval forward ${evalMs.toFixed(2)} ms per batch = ${((evalMs * steps) / total).toFixed(2)} of a training step; the schedule (3 x ${evalTokens} tokens every ${evalEvery} steps) costs ${(100 * evalShare).toFixed(1)}% of training`,
  );
  const run = setup(cfg, B, timed as Kernels);
  times.clear();
  const timedTotal = timeOf(steps, run.step);
  let kern = 0;
  for (const v of times.values()) kern += v;
  console.log(`  with per-kernel timers: kernels ${((100 * kern) / timedTotal).toFixed(0)}% of the step`);
  for (const [k, v] of [...times.entries()].sort((a, b) => b[1] - a[1]))
    console.log(
      `  ${k.padEnd(34)} ${((100 * v) / timedTotal).toFixed(1).padStart(5)}%  ${(v / steps).toFixed(3)} ms`,
    );
}
