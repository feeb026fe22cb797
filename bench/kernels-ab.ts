/**
 * Paired A/B of two builds of the native kernel addon on the demo models' training step:
 * `npx tsx bench/kernels-ab.ts --base /path/to/other/build/Release/synthmix_kernels.node
 *  [--steps 80] [--only l2d96,l1d64] [--vocab 512] [--batch 8]` (the demo grid's models), or with
 * `--train-models` the small and ref shapes of bench/train.ts (their own vocabulary, context and batch);
 * `--threads 2` runs both addons on 2 threads and times by the wall clock (CPU time would count the
 * pool's spinning), so it needs a quiet machine.
 *
 * Why: on the shared 2-core machine the load moves by 2x within minutes, so two benchmark runs one after
 * the other (even on CPU time) differ by +-10%, more than most kernel changes gain. Here both addons are
 * loaded into one process (each .node file is its own shared object) and drive the same model code
 * (src/train/model.ts) on the same batch, one step of A then one step of B, so a load change hits both
 * alike. Prints per model the mean CPU time per training step (forward + backward + clip + AdamW) and per
 * evaluation forward, and the speed-up of this checkout's addon over the base one. Build the base with
 * e.g. `git worktree add /tmp/base main && cd /tmp/base && npm ci` (or copy build/ and run node-gyp build).
 * The two runs also train the same parameters, so it reports the largest parameter difference after the
 * steps (the builds' rounding may differ, a large difference means a bug).
 */
import { createRequire } from "node:module";
import { nativeAddon } from "../src/train/kernels/native.js";
import type { Kernels } from "../src/train/kernels/types.js";
import { GPT } from "../src/train/model.js";
import { AdamW, clipGradNorm } from "../src/train/optim.js";
import type { ModelConfig } from "../src/train/schema.js";
import { Rng } from "../src/util/rng.js";
import { benchClock } from "./clock.js";
import { BENCH_MODELS, TRAIN_BENCH_MODELS } from "./models.js";

const args = process.argv.slice(2);
const arg = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const basePath = arg("base", "");
if (basePath === "") {
  console.error("usage: npx tsx bench/kernels-ab.ts --base <other synthmix_kernels.node> [--steps N]");
  process.exit(2);
}
const steps = Number(arg("steps", "80"));
const V = Number(arg("vocab", "512"));
const B = Number(arg("batch", "8"));
const only = arg("only", "");
const picked = (name: string) => only === "" || only.split(",").includes(name);
const models: { name: string; cfg: ModelConfig; B: number }[] = args.includes("--train-models")
  ? TRAIN_BENCH_MODELS.filter((m) => picked(m.name))
  : BENCH_MODELS.filter((m) => picked(m.name)).map((m) => ({
      name: m.name,
      cfg: { vocabSize: V, contextLength: 64, ...m },
      B,
    }));

const loaded = nativeAddon();
if (!loaded) throw new Error("native addon not built (npm ci)");
type Addon = NonNullable<ReturnType<typeof nativeAddon>>;
const ours: Addon = loaded;
const base = createRequire(import.meta.url)(basePath) as Addon;

/** The addon's functions as `Kernels` (the same mapping as src/train/kernels/native.ts). */
const threads = Number(arg("threads", "1"));
function kernelsOf(addon: Addon, name: string): Kernels {
  addon.setThreads(threads);
  return { ...(addon as unknown as Kernels), name };
}

const cpuMs = benchClock(threads);

interface Side {
  model: GPT;
  step: () => void;
  evalForward: () => void;
  stepMs: number;
  evalMs: number;
}

function side(cfg: ModelConfig, B: number, k: Kernels): Side {
  const model = new GPT(cfg, k, B, cfg.contextLength);
  model.init(0);
  const opt = new AdamW(model, k, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 });
  const rng = new Rng(1);
  const n = B * cfg.contextLength;
  const x = Int32Array.from({ length: n }, () => rng.int(cfg.vocabSize));
  const y = Int32Array.from({ length: n }, () => rng.int(cfg.vocabSize));
  const s: Side = {
    model,
    step: () => {
      model.zeroGrad();
      model.forward(x, y);
      model.backward();
      clipGradNorm(model.grads, 1, k);
      opt.step(1e-3);
    },
    evalForward: () => model.forward(x, y, { needGrad: false }),
    stepMs: 0,
    evalMs: 0,
  };
  for (let i = 0; i < 3; i++) s.step();
  return s;
}

console.log(
  `A/B, ${threads} thread(s), ${threads === 1 ? "CPU time" : "wall clock"}, ${steps} alternating steps each; base = ${basePath}`,
);
for (const { name, cfg, B: batch } of models) {
  const a = side(cfg, batch, kernelsOf(base, "base"));
  const b = side(cfg, batch, kernelsOf(ours, "ours"));
  for (let i = 0; i < steps; i++) {
    for (const s of [a, b]) {
      let t0 = cpuMs();
      s.step();
      s.stepMs += cpuMs() - t0;
      t0 = cpuMs();
      s.evalForward();
      s.evalMs += cpuMs() - t0;
    }
  }
  let maxDiff = 0;
  for (let i = 0; i < a.model.params.length; i++)
    maxDiff = Math.max(maxDiff, Math.abs(a.model.params[i] - b.model.params[i]));
  console.log(
    `${name}: base ${(a.stepMs / steps).toFixed(3)} ms/step, ours ${(b.stepMs / steps).toFixed(3)} ms/step: **${(a.stepMs / b.stepMs).toFixed(3)}x**; eval forward ${(a.evalMs / steps).toFixed(3)} vs ${(b.evalMs / steps).toFixed(3)} ms (${(a.evalMs / b.evalMs).toFixed(3)}x); max |param difference| ${maxDiff.toExponential(1)}`,
  );
}
