import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
  truncateSync,
  writeSync,
} from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { writeJsonAtomic } from "../util/atomic.js";
import { SynthmixError } from "../util/errors.js";
import { stableHash } from "../util/hash.js";
import { Progress } from "../util/progress.js";
import { deriveSeed } from "../util/rng.js";
import {
  type CheckpointState,
  findCheckpoint,
  loadCheckpoint,
  loadCheckpointState,
  saveCheckpoint,
} from "./checkpoint.js";
import {
  BatchSampler,
  evalWindows,
  loadTestData,
  loadTrainData,
  type TestDomain,
  type TokenArray,
} from "./data.js";
import { getKernels } from "./kernels/index.js";
import type { Kernels } from "./kernels/types.js";
import { countParams, trainingFlops } from "./ladder.js";
import { GPT } from "./model.js";
import { AdamW, clipGradNorm, lrAt } from "./optim.js";
import { type MetricRecord, type RunConfig, RunConfigSchema } from "./schema.js";
import {
  abortedError,
  branchStep,
  canBranch,
  saveSnapshot,
  seedBranch,
  sleep,
  snapshotDir,
  snapshotSteps,
  trunkConfig,
  tryLock,
} from "./wsd.js";

/**
 * Default checkpoint cadence without `checkpointEvery`, in seconds of training: a checkpoint costs
 * 8-25 ms of CPU on the demo's models plus an fsync stall of 15-270 ms on this shared disk, so 10 s
 * costs ~0.3-3% and a kill -9 loses at most 10 s of a run (docs/train.md, Checkpoint cadence).
 */
export const CHECKPOINT_SEC = 10;

/** The longest the training loop runs without returning to the event loop (abort latency). */
const YIELD_MS = 20;

export type FinalRecord = Extract<MetricRecord, { type: "final" }>;

export interface TrainOptions {
  /** Stops the run between two steps; a checkpoint is saved first, so a rerun resumes there. */
  signal?: AbortSignal;
  /** Show a progress bar / log lines on stderr (default false). */
  progress?: boolean;
  onMetric?: (m: MetricRecord) => void;
  /** Kernels to use (default: getKernels(), the native addon when built). */
  kernels?: Kernels;
}

/** Paths in a RunConfig are absolute or relative to the run folder (where config.json lives). */
export function resolveDataPath(runDir: string, p: string): string {
  return isAbsolute(p) ? p : resolve(runDir, p);
}

/**
 * Identity of a run for resume: every field that changes the loss curve (not `threads`, nor the
 * checkpoint cadence), data paths resolved. A WSD trunk (`trunk` true) is extended by whichever branch
 * needs it further, so its length and id are not part of it (its loss curve up to any step does not
 * depend on them).
 */
function runIdentity(runDir: string, c: RunConfig, trunk = false): string {
  // `wsd` (trunk folder, ladder) does not change the loss curve: a branch equals a standalone WSD run.
  const { threads: _t, wsd: _w, checkpointEvery: _ce, checkpointSec: _cs, data, ...rest } = c;
  const test = data.test === undefined ? undefined : resolveDataPath(runDir, data.test);
  const ident: Record<string, unknown> = {
    ...rest,
    data: { train: resolveDataPath(runDir, data.train), test },
  };
  if (trunk) {
    delete ident.tokens;
    delete ident.id;
  }
  return stableHash(ident);
}

function readConfigIfValid(path: string): RunConfig | null {
  try {
    return RunConfigSchema.parse(JSON.parse(readFileSync(path, "utf8")));
  } catch {
    return null;
  }
}

/** Mean loss (nats/token) of `model` on the fixed evaluation windows of each domain. */
export function evaluate(model: GPT, domains: TestDomain[], evalTokens: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const d of domains) out[d.name] = evalLoss(model, d.tokens, evalTokens).loss;
  return out;
}

export function evalLoss(
  model: GPT,
  tokens: TokenArray,
  evalTokens: number,
): { loss: number; count: number } {
  const { x, y, rows, count } = evalWindows(tokens, model.T, evalTokens);
  if (count === 0) return { loss: Number.NaN, count: 0 };
  let sum = 0;
  for (let r = 0; r < rows; r += model.B) {
    const n = Math.min(model.B, rows - r);
    const xs = x.subarray(r * model.T, (r + n) * model.T);
    const ys = y.subarray(r * model.T, (r + n) * model.T);
    model.forward(xs, ys, { B: n, needGrad: false });
    sum += model.lossSum();
  }
  return { loss: sum / count, count };
}

const totalStepsOf = (cfg: RunConfig) =>
  Math.ceil(cfg.tokens / (cfg.batchSize * cfg.gradAccum * cfg.model.contextLength));

function checkSchedule(runDir: string, cfg: RunConfig): void {
  if (cfg.wsd && cfg.optimizer.schedule !== "wsd") {
    throw new SynthmixError(
      "BAD_CONFIG",
      `${runDir}: config.wsd is set but optimizer.schedule is not "wsd"`,
      {
        hint: 'set optimizer.schedule: "wsd", or drop config.wsd',
      },
    );
  }
}

/**
 * The trunk snapshot a WSD branch starts from, training the trunk as far as needed (under the trunk's
 * lock, snapshotting every branch point of the ladder on the way). Returns null when the trunk has
 * already passed this branch point without a snapshot (a budget added to the ladder later): the branch
 * then trains standalone, with the same result, only without the saving.
 */
async function trunkSnapshot(runDir: string, cfg: RunConfig, opts: TrainOptions): Promise<string | null> {
  const wsd = cfg.wsd!;
  const trunkDir = resolveDataPath(runDir, wsd.trunk);
  const step = branchStep(cfg);
  const snap = snapshotDir(trunkDir, step);
  mkdirSync(trunkDir, { recursive: true });
  for (;;) {
    if (existsSync(join(snap, "state.json"))) return snap;
    if (opts.signal?.aborted) throw abortedError(runDir);
    const release = tryLock(join(trunkDir, ".lock"));
    if (release === null) {
      await sleep(100);
      continue;
    }
    try {
      if (existsSync(join(snap, "state.json"))) return snap;
      const ck = findCheckpoint(trunkDir);
      if (ck !== null && loadCheckpointState(ck).step > step) return null;
      // Data paths of the trunk config are relative to the trunk folder.
      const tc = trunkConfig(cfg, step);
      const abs = (p: string) => resolveDataPath(runDir, p);
      tc.data = { train: abs(cfg.data.train), ...(cfg.data.test ? { test: abs(cfg.data.test) } : {}) };
      await trainImpl(trunkDir, tc, { ...opts, onMetric: undefined }, { snapshots: snapshotSteps(cfg) });
    } finally {
      release();
    }
  }
}

/**
 * An append-only metrics.jsonl whose byte length is recorded in each checkpoint. Lines are buffered and
 * written at most every FLUSH_SEC (and at every sync/close): one write(2) per step was ~3% of a small
 * model's step (bench/trainer-loop.ts). A kill loses only lines after the last checkpoint, which a resume
 * truncates away and writes again anyway; readers of a live run (sweep status) lag by at most FLUSH_SEC.
 */
class MetricsFile {
  private static readonly FLUSH_SEC = 1;
  private fd: number;
  private pending: string[] = [];
  private lastFlush = performance.now();
  constructor(
    readonly path: string,
    offset: number,
  ) {
    if (existsSync(path)) truncateSync(path, offset);
    this.fd = openSync(path, "a");
  }
  append(m: MetricRecord): void {
    this.pending.push(`${JSON.stringify(m)}\n`);
    if (performance.now() - this.lastFlush >= MetricsFile.FLUSH_SEC * 1000) this.flush();
  }
  private flush(): void {
    this.lastFlush = performance.now();
    if (this.pending.length === 0) return;
    writeSync(this.fd, this.pending.join(""));
    this.pending = [];
  }
  /** Write, fsync and return the length in bytes (the offset a resume truncates to). */
  sync(): number {
    this.flush();
    fsyncSync(this.fd);
    return statSync(this.path).size;
  }
  close(): void {
    if (this.fd >= 0) {
      this.flush();
      fsyncSync(this.fd);
      closeSync(this.fd);
      this.fd = -1;
    }
  }
}

/**
 * Trains one run in `runDir`: writes config.json, metrics.jsonl, model.safetensors and checkpoint/,
 * resumes from the last checkpoint (bit for bit: same loss curve as an uninterrupted run), and returns
 * the final record at once if the run is already complete.
 *
 * Budget: exactly `config.tokens` target tokens. Each optimizer step takes batchSize*gradAccum windows
 * of T tokens; steps = ceil(tokens / tokensPerStep) and the last step trains on only the remaining
 * tokens (whole windows, then a partial window whose extra targets are ignored).
 */
export async function trainRun(
  runDir: string,
  config: RunConfig,
  opts: TrainOptions = {},
): Promise<FinalRecord> {
  const final = await trainImpl(runDir, config, opts, null);
  if (final === null) throw new Error("internal: a run ended without a final record");
  return final;
}

/**
 * Before training: refuses a checkpoint of another config, returns a finished run's final record (or a
 * trunk already trained this far), writes config.json, and seeds a WSD branch from its trunk snapshot.
 */
async function prepareRun(
  runDir: string,
  cfg: RunConfig,
  opts: TrainOptions,
  trunk: { snapshots: number[] } | null,
): Promise<{ done: FinalRecord | null } | { ckptDir: string | null }> {
  checkSchedule(runDir, cfg);
  mkdirSync(runDir, { recursive: true });
  const configPath = join(runDir, "config.json");
  let ckptDir = findCheckpoint(runDir);
  const previous = existsSync(configPath) ? readConfigIfValid(configPath) : null;
  const sameConfig =
    previous !== null &&
    runIdentity(runDir, previous, trunk !== null) === runIdentity(runDir, cfg, trunk !== null);
  if (ckptDir !== null && previous !== null) {
    if (!sameConfig) {
      throw new SynthmixError(
        "CONFIG_MISMATCH",
        `${runDir} holds a checkpoint of a different config (${configPath})`,
        {
          hint: "use a new --out folder, or delete the old run folder to start over",
        },
      );
    }
  }
  if (ckptDir !== null) {
    const st = loadCheckpointState(ckptDir);
    if (st.final) return { done: st.final };
    // A trunk already trained this far (it never holds a final record); a kill may have come between
    // its last checkpoint and the snapshot there.
    if (trunk !== null && st.step >= totalStepsOf(cfg)) {
      if (st.step === totalStepsOf(cfg)) saveSnapshot(runDir, st);
      return { done: null };
    }
  }
  // Leave an equivalent config.json alone (a sweep may have written it, with relative paths).
  if (!sameConfig || previous?.threads !== cfg.threads || (trunk && previous?.tokens !== cfg.tokens))
    writeJsonAtomic(configPath, cfg);
  // A WSD branch starts from the trunk's snapshot at its cooldown start (null: train it standalone).
  if (ckptDir === null && trunk === null && cfg.wsd && canBranch(cfg)) {
    const snap = await trunkSnapshot(runDir, cfg, opts);
    if (snap !== null) {
      seedBranch(runDir, snap);
      ckptDir = findCheckpoint(runDir);
    }
  }

  return { ckptDir };
}

/**
 * Zeroes the gradients and accumulates those of one optimizer step (its micro-batches drawn from the
 * step's own stream); returns the step's mean loss.
 */
function accumulateGradients(
  model: GPT,
  sampler: BatchSampler,
  step: number,
  stepTokens: number,
  gradAccum: number,
  x: Int32Array,
  y: Int32Array,
): number {
  const { B, T } = model;
  model.zeroGrad();
  let lossSum = 0;
  for (let micro = 0; micro < gradAccum; micro++) {
    const microTokens = Math.min(B * T, stepTokens - micro * B * T);
    if (microTokens <= 0) break;
    const rows = Math.ceil(microTokens / T);
    sampler.fill(step, micro * B, x, y, rows, microTokens);
    model.forward(x, y, { B: rows, lossScale: 1 / stepTokens });
    lossSum += model.lossSum();
    model.backward();
  }
  return lossSum / stepTokens;
}

/** The guard rail: a NaN/Inf loss or gradient norm stops the run (the last good checkpoint is kept). */
function checkFinite(
  runDir: string,
  loss: number,
  gradNorm: number,
  step: number,
  totalSteps: number,
  lastLoss: number | null,
): void {
  if (Number.isFinite(loss) && Number.isFinite(gradNorm)) return;
  throw new SynthmixError(
    "NON_FINITE_LOSS",
    `${runDir}: ${Number.isFinite(loss) ? "gradient norm" : "loss"} is ${Number.isFinite(loss) ? gradNorm : loss} at step ${step + 1}/${totalSteps} (${lastLoss === null ? "no step trained before it" : `last good loss ${lastLoss} at step ${step}`}); training stopped`,
    {
      hint: "the last good checkpoint is kept in checkpoint/; lower optimizer.lr or raise warmupSteps and start a new run",
    },
  );
}

function finalRecord(
  cfg: RunConfig,
  state: CheckpointState,
  losses: Record<string, number>,
  elapsedSec: number,
): FinalRecord {
  const values = Object.values(losses);
  const params = countParams(cfg.model);
  return {
    type: "final",
    step: state.step,
    tokens: state.tokens,
    loss: values.reduce((a, b) => a + b, 0) / values.length,
    losses,
    nonEmbeddingParams: params.nonEmbedding,
    totalParams: params.total,
    flops: trainingFlops(cfg.model, state.tokens),
    tokensPerSec: state.tokens / Math.max(1e-9, elapsedSec),
    elapsedSec,
  };
}

/**
 * The training loop. `trunk` (a WSD trunk, train/wsd.ts): train to config.tokens at constant LR,
 * checkpoint and snapshot at each of `trunk.snapshots`, and stop without a final evaluation (null).
 */
async function trainImpl(
  runDir: string,
  config: RunConfig,
  opts: TrainOptions,
  trunk: { snapshots: number[] } | null,
): Promise<FinalRecord | null> {
  const cfg = RunConfigSchema.parse(config);
  const prep = await prepareRun(runDir, cfg, opts, trunk);
  if ("done" in prep) return prep.done;
  const ckptDir = prep.ckptDir;

  const T = cfg.model.contextLength;
  const B = cfg.batchSize;
  const k = opts.kernels ?? getKernels();
  k.setThreads?.(cfg.threads);
  const train = loadTrainData(resolveDataPath(runDir, cfg.data.train), cfg.model.vocabSize, T);
  const test = cfg.data.test
    ? loadTestData(resolveDataPath(runDir, cfg.data.test), cfg.model.vocabSize)
    : // Without a test set the final loss is measured on the first evalTokens of the training data.
      [{ name: "train", tokens: train.tokens }];

  const model = new GPT(cfg.model, k, B, T);
  const opt = new AdamW(model, k, cfg.optimizer);
  const tokensPerStep = B * cfg.gradAccum * T;
  const totalSteps = Math.ceil(cfg.tokens / tokensPerStep);
  let state: CheckpointState;
  if (ckptDir !== null) {
    state = loadCheckpoint(ckptDir, model, opt);
  } else {
    model.init(deriveSeed(cfg.seed, "model-init"));
    state = {
      step: 0,
      tokens: 0,
      metricsOffset: 0,
      elapsedSec: 0,
      lastLoss: null,
      rng: { seed: cfg.seed, stream: "batch", nextStep: 0 },
    };
  }
  const metrics = new MetricsFile(join(runDir, "metrics.jsonl"), state.metricsOffset);
  const emit = (m: MetricRecord) => {
    metrics.append(m);
    opts.onMetric?.(m);
  };
  const sampler = new BatchSampler(train.tokens, T, cfg.seed, B * cfg.gradAccum, cfg.sampling);
  const x = new Int32Array(B * T);
  const y = new Int32Array(B * T);
  const sessionStart = performance.now();
  const sessionTokens0 = state.tokens;
  // Wall time of earlier sessions, fixed at resume: state.elapsedSec is rewritten at each checkpoint.
  const elapsedBefore = state.elapsedSec;
  const elapsed = () => elapsedBefore + (performance.now() - sessionStart) / 1000;
  // The bar counts this session's tokens, so rate and ETA stay right after a resume.
  const label = state.step > 0 ? `train ${cfg.id} (resumed at step ${state.step})` : `train ${cfg.id}`;
  const progress = new Progress(label, {
    total: cfg.tokens - state.tokens,
    unit: "tok",
    mode: opts.progress ? undefined : "silent",
  });

  const runEval = (step: number): Record<string, number> => {
    const losses: Record<string, number> = {};
    for (const d of test) {
      const { loss, count } = evalLoss(model, d.tokens, cfg.evalTokens);
      if (count === 0) continue; // a domain with < 2 tokens has nothing to predict
      losses[d.name] = loss;
      emit({ type: "eval", step, tokens: state.tokens, domain: d.name, loss, evalTokens: count });
    }
    return losses;
  };
  let lastCheckpointSec = elapsedBefore;
  const checkpoint = () => {
    state.metricsOffset = metrics.sync();
    state.elapsedSec = elapsed();
    state.rng.nextStep = state.step;
    saveCheckpoint(runDir, model, opt, state);
    lastCheckpointSec = elapsed();
  };
  // Given checkpointEvery: every that many steps; else every checkpointSec of the trainer clock.
  const checkpointDue = (step: number) =>
    cfg.checkpointEvery !== undefined
      ? cfg.checkpointEvery > 0 && step % cfg.checkpointEvery === 0
      : elapsed() - lastCheckpointSec >= (cfg.checkpointSec ?? CHECKPOINT_SEC);
  let lastYield = performance.now();

  try {
    while (state.step < totalSteps) {
      if (opts.signal?.aborted) {
        checkpoint();
        throw new SynthmixError(
          "ABORTED",
          `training of ${runDir} stopped at step ${state.step}/${totalSteps}`,
          {
            hint: "rerun the same command to resume from this step",
          },
        );
      }
      const step = state.step;
      const lr = lrAt(step, totalSteps, cfg.optimizer);
      const stepTokens = Math.min(tokensPerStep, cfg.tokens - step * tokensPerStep);
      const loss = accumulateGradients(model, sampler, step, stepTokens, cfg.gradAccum, x, y);
      const gradNorm = clipGradNorm(model.grads, cfg.optimizer.gradClip, k);
      checkFinite(runDir, loss, gradNorm, step, totalSteps, state.lastLoss);
      opt.step(lr);
      state.step = step + 1;
      state.tokens += stepTokens;
      state.lastLoss = loss;
      const el = elapsed();
      emit({
        type: "train",
        step: state.step,
        tokens: state.tokens,
        loss,
        lr,
        gradNorm,
        tokensPerSec:
          (state.tokens - sessionTokens0) / Math.max(1e-9, (performance.now() - sessionStart) / 1000),
        elapsedSec: el,
      });
      progress.update(state.tokens - sessionTokens0, { loss, step: state.step });
      const last = state.step === totalSteps;
      // A trunk's last step is not a run's last step: evaluate there as a standalone run would.
      if ((trunk !== null || !last) && cfg.evalEvery > 0 && state.step % cfg.evalEvery === 0)
        runEval(state.step);
      if (!last && checkpointDue(state.step)) checkpoint();
      if (trunk?.snapshots.includes(state.step)) {
        checkpoint();
        saveSnapshot(runDir, state);
      }
      // Let timers, IPC messages and abort signals run between steps: every YIELD_MS, not every step (a
      // turn of the event loop per step was ~3% of a small model's step, bench/trainer-loop.ts).
      if (performance.now() - lastYield >= YIELD_MS) {
        await new Promise<void>((r) => setImmediate(r));
        lastYield = performance.now();
      }
    }

    if (trunk !== null) {
      // The trunk stops here (a longer branch extends it later): a checkpoint, no final evaluation.
      checkpoint();
      saveSnapshot(runDir, state);
      return null;
    }
    const final = finalRecord(cfg, state, runEval(state.step), elapsed());
    emit(final);
    state.final = final;
    checkpoint();
    progress.finish(
      `${cfg.id}: final loss ${final.loss.toFixed(4)} (${Object.keys(final.losses).join(", ")})`,
    );
    return final;
  } finally {
    metrics.close();
    progress.finish();
  }
}
