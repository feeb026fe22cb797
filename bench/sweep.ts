/**
 * Grid efficiency of a whole sweep: `npx tsx bench/sweep.ts` (options below).
 *
 * Trains the full demo's main grid (src/study/demo.ts FULL_MODELS: L1 d16 / L1 d32 / L1 d64 / L2 d96, nHead 2,
 * ~3k to 0.22M non-embedding parameters, each with its own peak LR, x token budgets 150k / 300k / 600k /
 * 1.2M, batch 8 x context 64, vocabulary 512, 3 test domains evaluated on 16384 tokens each every 600
 * steps and at the end of every run). One difference: the demo trains WSD ladders (a shared trunk per
 * model), here every run is a standalone cosine run, so that the FLOPs of each run are the FLOPs
 * executed (a branch's status counts its whole budget, most of which its trunk trained once); `--l3`
 * adds the L3 d128 model of the earlier demo grid. through the real sweep
 * (`runSweep`, default executor) and prints the achieved training GFLOP/s over the sweep's wall time,
 * divided by the 2-thread SGEMM GFLOP/s of our kernels measured in the same process just before and
 * after the grid (best of both). The mixtures and test sets are built first and not timed (that is the
 * mix stage's work, reported separately).
 *
 * Two FLOP counts are reported: "training" = Σ 6·N·D + attention (train/ladder `trainingFlops`, what
 * status.json records and what the issue's 22–27% baseline used) and "executed" = Σ D x
 * `executedFlopsPerToken` (adds the tied vocabulary projection, which dominates the smallest models;
 * neither count includes the evaluations). Then the runs' time split, from each run's metrics.jsonl and
 * status.json: training steps, evaluations (during training and final) and time outside the trainer's
 * clock (worker start, data and model set-up, final checkpoint).
 *
 * The wall-clock ratio is the goal, but on a machine shared with other work it also counts the cores
 * the others took (and the 2-thread SGEMM sample moves with the load). So the bench also prints a
 * CPU-time ratio: training FLOPs over the CPU seconds of the training workers (reaped children, from
 * /proc/self/stat) plus this process, divided by the 1-thread SGEMM timed by CPU time; it measures the
 * sweep's own overheads, and it equals the wall ratio when both cores are the sweep's alone.
 *
 * Peer (`--torch`, default on): bench/peers/sweep_torch.py trains the same runs (same shapes, budgets,
 * schedule, eval windows) in ONE PyTorch process looping over the runs (no per-run start-up at all),
 * torch threads 1, OPENBLAS_NUM_THREADS=2, OPENBLAS_CORETYPE from bench/peers/env.ts, and its ratio is computed
 * against the same SGEMM rate. `--torch-scale s` trains torch on budgets x s (default 0.25, to keep the
 * bench short on a shared machine; the ratio is per FLOP, and torch's per-run costs are then relatively
 * larger, so the torch ratio is a slight underestimate, said in the output).
 *
 * Options: --budgets 150k,300k,600k,1.2M  --vocab 512  --batch 8  --eval-every 600 (0: final evaluation
 *          only)  --eval-tokens 16384  --l3
 *          --executor pool|child (child: one process per run, the old default)
 *          --compare (run the grid with both executors, side by side)  --no-torch  --keep (keep the ws)
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { buildMixture } from "../src/mix/build.js";
import { countLabel, parseCount } from "../src/mix/count.js";
import { buildTestSets } from "../src/mix/testsets.js";
import type { MixTokenizer } from "../src/mix/tokenizer.js";
import { childProcessExecutor } from "../src/sweep/executors.js";
import { planSweep } from "../src/sweep/plan.js";
import { listStatuses, type RunStatus, runDir } from "../src/sweep/registry.js";
import { runSweep } from "../src/sweep/scheduler.js";
import { resolveSpec, type SweepSpecInput } from "../src/sweep/spec.js";
import { executedFlopsPerToken } from "../src/train/ladder.js";
import { Rng } from "../src/util/rng.js";
import { cpuMs } from "./clock.js";
import { openblasEnv, openblasNote, peerFailure } from "./peers/env.js";
import { sgemmRate } from "./sgemm.js";
import { wordTokenizer } from "./word-tokenizer.js";

const args = process.argv.slice(2);
const arg = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const flag = (name: string) => args.includes(`--${name}`);

const VOCAB = Number(arg("vocab", "512"));
const budgets = arg("budgets", "150k,300k,600k,1.2M")
  .split(",")
  .map((b) => parseCount(b, "--budgets"));
// The full demo's models with their peak LRs (src/study/demo.ts FULL_MODELS).
const models = [
  { name: "l1d16", nLayer: 1, dModel: 16, nHead: 2, lr: 0.01 },
  { name: "l1d32", nLayer: 1, dModel: 32, nHead: 2, lr: 0.01 },
  { name: "l1d64", nLayer: 1, dModel: 64, nHead: 2, lr: 0.005 },
  { name: "l2d96", nLayer: 2, dModel: 96, nHead: 2, lr: 0.0033 },
  ...(flag("l3") ? [{ name: "l3d128", nLayer: 3, dModel: 128, nHead: 2, lr: 0.003 }] : []),
];
const BATCH = Number(arg("batch", "8"));
const train = {
  batchSize: BATCH,
  optimizer: { lr: 3e-3, warmupSteps: 10 },
  evalTokens: Number(arg("eval-tokens", "16384")),
  evalEvery: Number(arg("eval-every", "600")),
};

/** Zipf-distributed random words, deterministic. */
function docs(n: number, seed: number): string[] {
  const rng = new Rng(seed);
  const words = Array.from({ length: 5000 }, (_, i) => `w${i}`);
  return Array.from({ length: n }, () => {
    const len = 200 + rng.int(300);
    const out: string[] = [];
    for (let i = 0; i < len; i++) out.push(words[Math.floor(5000 * rng.next() ** 3)]);
    return out.join(" ");
  });
}

function writeJsonl(path: string, texts: string[], tag: string) {
  mkdirSync(join(path, ".."), { recursive: true });
  writeFileSync(path, `${texts.map((text, i) => JSON.stringify({ id: `${tag}${i}`, text })).join("\n")}\n`);
}

function makeWorkspace(): string {
  const ws = mkdtempSync(join(tmpdir(), "synthmix-bench-sweep-"));
  // ~1.8M words of training text: enough for the largest budget without repeating documents.
  writeJsonl(join(ws, "corpus/bench/train.jsonl"), docs(5000, 1), "n");
  for (const [i, d] of ["news", "fiction", "science"].entries())
    writeJsonl(join(ws, `corpus/bench/test/${d}.jsonl`), docs(120, 10 + i), d);
  return ws;
}

function specFor(): SweepSpecInput {
  return {
    contextLength: 64,
    allowRepeat: true,
    grid: { models, tokens: budgets, mixtures: ["natural"], seeds: [1] },
    train,
  };
}

interface GridResult {
  wallSec: number;
  /** CPU seconds of the training processes (reaped children of this process), and of this process. */
  workerCpuSec: number;
  mainCpuSec: number;
  trainingFlops: number;
  executedFlops: number;
  runs: number;
  perRun: { id: string; tokens: number; wallSec: number; tokPerSec: number }[];
  time: TimeSplit;
}

/** Where the runs' time went (seconds summed over runs; runs overlap, so the sum exceeds the wall time). */
interface TimeSplit {
  /** From the scheduler's start of a run to its end (startedAt..finishedAt in status.json). */
  run: number;
  /** Training steps: the run's trainer clock minus the evaluations. */
  train: number;
  /** Evaluations during training (every evalEvery steps) and the final one. */
  evalMid: number;
  evalFinal: number;
  /** Outside the trainer's clock: worker start, data and model set-up, final checkpoint, bookkeeping. */
  outside: number;
}

/**
 * The time split of one run from its metrics.jsonl: the trainer clock (`elapsedSec`) of consecutive
 * train records; a step followed by an evaluation takes that evaluation's time on top of a typical
 * (median) step, and the final evaluation is the final record's clock minus the last step's.
 */
function splitRun(ws: string, s: RunStatus): TimeSplit {
  const recs = readFileSync(join(runDir(ws, s.id), "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { type: string; step: number; elapsedSec: number });
  const train = recs.filter((r) => r.type === "train");
  const final = recs.find((r) => r.type === "final");
  const evalSteps = new Set(recs.filter((r) => r.type === "eval").map((r) => r.step));
  const dts = train.slice(1).map((r, i) => r.elapsedSec - train[i].elapsedSec);
  const median = [...dts].sort((a, b) => a - b)[Math.floor(dts.length / 2)] ?? 0;
  let evalMid = 0;
  for (let i = 1; i < train.length; i++)
    if (evalSteps.has(train[i - 1].step)) evalMid += Math.max(0, dts[i - 1] - median);
  const clock = final?.elapsedSec ?? train.at(-1)?.elapsedSec ?? 0;
  const evalFinal = final ? final.elapsedSec - (train.at(-1)?.elapsedSec ?? 0) : 0;
  const run =
    s.startedAt && s.finishedAt ? (Date.parse(s.finishedAt) - Date.parse(s.startedAt)) / 1000 : clock;
  return { run, train: clock - evalMid - evalFinal, evalMid, evalFinal, outside: Math.max(0, run - clock) };
}

function timeSplit(ws: string, st: RunStatus[]): TimeSplit {
  const sum: TimeSplit = { run: 0, train: 0, evalMid: 0, evalFinal: 0, outside: 0 };
  for (const s of st) {
    const t = splitRun(ws, s);
    for (const k of Object.keys(sum) as (keyof TimeSplit)[]) sum[k] += t[k];
  }
  return sum;
}

/** CPU seconds of this process's children that have exited and been reaped (/proc/self/stat cutime + cstime). */
function childrenCpuSec(): number {
  const stat = readFileSync("/proc/self/stat", "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[13]) + Number(f[14])) / 100; // fields 16 and 17, in clock ticks (CLK_TCK 100 on Linux)
}

/** Waits until this process has no child processes left (the pool's workers exit when it closes). */
async function childrenGone(timeoutMs = 10_000): Promise<void> {
  const t0 = performance.now();
  const kids = () =>
    readdirSync("/proc/self/task")
      .map((t) => readFileSync(`/proc/self/task/${t}/children`, "utf8").trim())
      .join("");
  while (kids() !== "" && performance.now() - t0 < timeoutMs) await new Promise((r) => setTimeout(r, 50));
}

async function runGrid(ws: string, executor: "pool" | "child", tok: MixTokenizer): Promise<GridResult> {
  const { spec } = resolveSpec(specFor(), ws);
  rmSync(join(ws, "runs"), { recursive: true, force: true });
  await childrenGone();
  const cpu0 = childrenCpuSec();
  const main0 = cpuMs();
  const t0 = performance.now();
  const summary = await runSweep({
    spec,
    workspace: ws,
    tokenizer: tok,
    progress: "silent",
    ...(executor === "child" && { executor: childProcessExecutor() }),
  });
  const wallSec = (performance.now() - t0) / 1000;
  const mainCpuSec = (cpuMs() - main0) / 1000;
  await childrenGone();
  const workerCpuSec = childrenCpuSec() - cpu0;
  if (summary.failed.length > 0) throw new Error(`runs failed: ${JSON.stringify(summary.failed)}`);
  const st = listStatuses(ws);
  let trainingFlops = 0;
  let executedFlops = 0;
  for (const s of st) {
    trainingFlops += s.flops;
    executedFlops += executedFlopsPerToken(s.config.model) * s.tokens;
  }
  return {
    wallSec,
    workerCpuSec,
    mainCpuSec,
    trainingFlops,
    executedFlops,
    runs: st.length,
    perRun: st.map((s) => ({
      id: s.id,
      tokens: s.tokens,
      wallSec: s.final?.wallSec ?? Number.NaN,
      tokPerSec: s.final?.tokensPerSec ?? Number.NaN,
    })),
    time: timeSplit(ws, st),
  };
}

function torchGrid(
  ws: string,
  scale: number,
): { wallSec: number; trainingFlops: number; executedFlops: number } | null {
  const { spec } = resolveSpec(specFor(), ws);
  const runs = planSweep(spec, ws, VOCAB);
  const jobs = runs.map((r) => ({
    id: r.id,
    model: r.model,
    tokens: Math.round(r.tokens * scale),
    batch: r.config.batchSize,
    optimizer: r.config.optimizer,
    seed: r.seed,
    train: join(r.config.data.train, "tokens.bin"),
  }));
  const path = join(ws, "torch-jobs.json");
  writeFileSync(
    path,
    JSON.stringify({
      jobs,
      test: join(ws, "tokens/test"),
      evalTokens: train.evalTokens,
      // the peer runs budgets x scale, so its evaluations are spaced the same in steps
      evalEvery: train.evalEvery,
    }),
  );
  console.log(`torch peer: ${openblasNote()}`);
  const r = spawnSync(
    "/usr/bin/python3",
    [new URL("./peers/sweep_torch.py", import.meta.url).pathname, path],
    {
      env: openblasEnv(2),
      encoding: "utf8",
      maxBuffer: 1 << 26,
    },
  );
  if (r.status !== 0) {
    console.error(`torch peer failed: ${peerFailure(r)}`);
    process.exitCode = 1; // the comparison this bench exists for is missing
    return null;
  }
  const j = JSON.parse(r.stdout.trim().split("\n").at(-1) as string);
  let trainingFlops = 0;
  let executedFlops = 0;
  for (const [i, run] of runs.entries()) {
    trainingFlops += (run.flops / run.tokens) * jobs[i].tokens;
    executedFlops += executedFlopsPerToken(run.model) * jobs[i].tokens;
  }
  return { wallSec: j.wall_sec, trainingFlops, executedFlops };
}

async function main() {
  const ws = makeWorkspace();
  const tok = wordTokenizer(VOCAB);
  try {
    const t0 = performance.now();
    const { spec } = resolveSpec(specFor(), ws);
    await buildTestSets({ workspace: ws, tokenizer: tok });
    for (const r of planSweep(spec, ws, VOCAB)) {
      const m = r.mixture;
      await buildMixture({
        workspace: ws,
        id: m.id,
        tokenizer: tok,
        sources: m.sources,
        totalTokens: m.tokens,
        seed: m.seed,
        allowRepeat: true,
      });
    }
    const setupSec = (performance.now() - t0) / 1000;
    console.log(
      `grid: ${models.map((m) => m.name).join(", ")} x budgets ${budgets.map(countLabel).join(", ")}; batch ${BATCH} x context 64, V ${VOCAB}, 3 test domains x ${train.evalTokens} eval tokens every ${train.evalEvery || "(final only)"} steps and at the end; mixtures and test sets built in ${setupSec.toFixed(1)} s (not timed)`,
    );
    console.log(
      `load average at start: ${loadavg()
        .map((x) => x.toFixed(1))
        .join(" ")}`,
    );
    const sgemm1 = sgemmRate(1);
    let sgemm2 = sgemmRate(2);
    let sgemm1Cpu = sgemmRate(1, { clock: cpuMs });
    const executors: ("pool" | "child")[] = flag("compare")
      ? ["pool", "child"]
      : [arg("executor", "pool") === "child" ? "child" : "pool"];
    const results = new Map<string, GridResult>();
    for (const e of executors) results.set(e, await runGrid(ws, e, tok));
    const torch = flag("no-torch") ? null : torchGrid(ws, Number(arg("torch-scale", "0.25")));
    sgemm2 = Math.max(sgemm2, sgemmRate(2));
    sgemm1Cpu = Math.max(sgemm1Cpu, sgemmRate(1, { clock: cpuMs }));
    console.log(
      `SGEMM (ours, 2048x256x1024, best of 12 before and after): 2 threads ${sgemm2.toFixed(1)} GFLOP/s, 1 thread ${sgemm1.toFixed(1)} GFLOP/s`,
    );
    console.log(
      "| trainer | runs | wall s | training GFLOP/s | / 2-thread SGEMM | executed GFLOP/s (+ vocab head) | / SGEMM |",
    );
    console.log("|---|---|---|---|---|---|---|");
    const row = (
      name: string,
      r: { wallSec: number; trainingFlops: number; executedFlops: number },
      n: number,
    ) => {
      const tg = r.trainingFlops / r.wallSec / 1e9;
      const eg = r.executedFlops / r.wallSec / 1e9;
      console.log(
        `| ${name} | ${n} | ${r.wallSec.toFixed(1)} | ${tg.toFixed(1)} | **${(tg / sgemm2).toFixed(3)}** | ${eg.toFixed(1)} | ${(eg / sgemm2).toFixed(3)} |`,
      );
    };
    for (const [e, r] of results) row(`synthmix sweep (${e} executor)`, r, r.runs);
    if (torch)
      row(
        `PyTorch loop (one process, budgets x ${arg("torch-scale", "0.25")})`,
        torch,
        results.values().next().value!.runs,
      );
    // The wall-clock ratio above is the goal; on a machine shared with other work it also counts the
    // cores the others took. This one divides by the CPU time the sweep's processes actually got, so it
    // measures our own overheads (the ceiling: 1-thread SGEMM by CPU time; every run here has 1 thread).
    for (const [e, r] of results) {
      const cpu = r.workerCpuSec + r.mainCpuSec;
      const perCpu = r.trainingFlops / cpu / 1e9;
      console.log(
        `CPU time (${e}): workers ${r.workerCpuSec.toFixed(1)} s + sweep process ${r.mainCpuSec.toFixed(1)} s = ${(cpu / r.wallSec).toFixed(2)} cores busy on average; training GFLOP per CPU-second ${perCpu.toFixed(1)} / 1-thread SGEMM by CPU time ${sgemm1Cpu.toFixed(1)} = **${(perCpu / sgemm1Cpu).toFixed(3)}**`,
      );
    }
    for (const [e, r] of results) {
      const t = r.time;
      const pct = (x: number) => `${((100 * x) / t.run).toFixed(1)}%`;
      console.log(
        `time in runs (${e}, summed over runs, ${t.run.toFixed(1)} s): training steps ${pct(t.train)}, evaluation ${pct(t.evalMid + t.evalFinal)} (${pct(t.evalMid)} during training + ${pct(t.evalFinal)} final; ${((100 * (t.evalMid + t.evalFinal)) / t.train).toFixed(1)}% of the training steps' time), outside the trainer clock (worker start, set-up, checkpoint) ${pct(t.outside)}`,
      );
      console.log(
        `per run (${e}): ${r.perRun.map((p) => `${p.id.split("-")[0]}/${countLabel(p.tokens)} ${Math.round(p.tokPerSec)} tok/s`).join(", ")}`,
      );
    }
    console.log(
      `load average at end: ${loadavg()
        .map((x) => x.toFixed(1))
        .join(" ")}`,
    );
  } finally {
    if (!flag("keep")) rmSync(ws, { recursive: true, force: true });
    else console.log(`workspace kept: ${ws}`);
  }
}

await main();
