/**
 * What the trainer's loop costs on top of a bare training step, paired in one process:
 * `npx tsx bench/trainer-loop.ts [--steps 1500] [--rounds 3] [--only l1d16] [--checkpoint-every n]`.
 *
 * For each model of the demo's grid (bench/models.ts, V512, batch 8 x context 64, 1 thread) it
 * alternates, `--rounds` times, (a) the bare step of bench/kernels-profile.ts on the same sampled data
 * and LR schedule as a run (sampler.fill, lrAt, zeroGrad, forward, backward, clipGradNorm, AdamW) and
 * (b) `trainRun` of the same `--steps` steps (metrics lines, progress, event-loop yields, checkpoints
 * at the trainer's default cadence or every `--checkpoint-every` steps, a 64-token final evaluation),
 * both timed by this process's CPU time (robust to other load on the machine), and prints the best
 * round of each and the trainer's overhead = trainRun / bare - 1. The data is a random token file
 * (the step's cost does not depend on which ids it holds).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BatchSampler, loadTrainData } from "../src/train/data.js";
import { getKernels } from "../src/train/kernels/index.js";
import { GPT } from "../src/train/model.js";
import { AdamW, clipGradNorm, lrAt } from "../src/train/optim.js";
import { type RunConfig, RunConfigSchema } from "../src/train/schema.js";
import { trainRun } from "../src/train/trainer.js";
import { deriveSeed, Rng } from "../src/util/rng.js";
import { cpuMs } from "./clock.js";
import { BENCH_MODELS } from "./models.js";

const args = process.argv.slice(2);
const arg = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const STEPS = Number(arg("steps", "1500"));
const ROUNDS = Number(arg("rounds", "3"));
const ckEvery = arg("checkpoint-every", "");
const V = 512;
const B = 8;
const T = 64;

const ws = mkdtempSync(join(tmpdir(), "synthmix-bench-loop-"));
const dataDir = join(ws, "data");
mkdirSync(dataDir);
const rng = new Rng(7);
writeFileSync(
  join(dataDir, "tokens.bin"),
  Uint16Array.from({ length: STEPS * B * T + T + 1 }, () => rng.int(V)),
);
writeFileSync(join(dataDir, "manifest.json"), JSON.stringify({ file: "tokens.bin", dtype: "uint16" }));

function bare(cfg: RunConfig): number {
  const k = getKernels();
  k.setThreads?.(1);
  const model = new GPT(cfg.model, k, B, T);
  model.init(deriveSeed(cfg.seed, "model-init"));
  const opt = new AdamW(model, k, cfg.optimizer);
  const sampler = new BatchSampler(loadTrainData(dataDir, V, T).tokens, T, cfg.seed, B, cfg.sampling);
  const x = new Int32Array(B * T);
  const y = new Int32Array(B * T);
  const t0 = cpuMs();
  for (let s = 0; s < STEPS; s++) {
    const lr = lrAt(s, STEPS, cfg.optimizer);
    sampler.fill(s, 0, x, y, B, B * T);
    model.zeroGrad();
    model.forward(x, y, { B, lossScale: 1 / (B * T) });
    model.backward();
    clipGradNorm(model.grads, cfg.optimizer.gradClip, k);
    opt.step(lr);
  }
  return (cpuMs() - t0) / STEPS;
}

async function trainer(cfg: RunConfig, round: number): Promise<number> {
  const dir = join(ws, `run-${cfg.modelName}-${round}`);
  const t0 = cpuMs();
  await trainRun(dir, cfg);
  const ms = (cpuMs() - t0) / STEPS;
  rmSync(dir, { recursive: true, force: true });
  return ms;
}

const models = BENCH_MODELS.filter((m) => arg("only", m.name) === m.name && m.name !== "l3d128");
console.log(
  `${STEPS} steps per measurement, best of ${ROUNDS} alternating rounds, CPU time, 1 thread, V${V} B${B} T${T}; checkpoints ${ckEvery ? `every ${ckEvery} steps` : "at the trainer's default cadence"}`,
);
console.log("| model | bare step ms | trainRun ms/step | trainer overhead |");
console.log("|---|---|---|---|");
try {
  for (const m of models) {
    const cfg = RunConfigSchema.parse({
      id: m.name,
      modelName: m.name,
      model: { nLayer: m.nLayer, dModel: m.dModel, nHead: m.nHead, contextLength: T, vocabSize: V },
      data: { train: dataDir },
      tokens: STEPS * B * T,
      batchSize: B,
      optimizer: { lr: 3e-3, warmupSteps: 10 },
      seed: 1,
      evalTokens: 64,
      threads: 1,
      ...(ckEvery && { checkpointEvery: Number(ckEvery) }),
    });
    let a = Number.POSITIVE_INFINITY;
    let b = Number.POSITIVE_INFINITY;
    for (let r = 0; r < ROUNDS; r++) {
      a = Math.min(a, bare(cfg));
      b = Math.min(b, await trainer(cfg, r));
    }
    console.log(`| ${m.name} | ${a.toFixed(3)} | ${b.toFixed(3)} | ${(100 * (b / a - 1)).toFixed(1)}% |`);
  }
} finally {
  rmSync(ws, { recursive: true, force: true });
}
