/**
 * Warmup-stable-decay (WSD) D ladders with a shared trunk (Hägele et al. 2024, "Scaling Laws and
 * Compute-Optimal Training Beyond Fixed Training Durations").
 *
 * A WSD run of S steps warms up, holds the peak LR, and cools down over its last
 * c = max(1, round(decayFraction x S)) steps (1-sqrt shape, to minLrRatio x lr; optim.ts `lrAt`). Until
 * its cooldown starts (step S - c) it is identical, bit for bit, to a constant-LR run with the same
 * seed: the LR does not depend on S there, and the batches of step i come from (seed, i) alone. So one
 * long constant-LR "trunk" serves every budget D of a ladder: the trunk saves a snapshot at each
 * budget's cooldown start, and the run of budget D (a "branch", its own run folder and registry entry)
 * starts from that snapshot and trains only its cooldown. A ladder of budgets D1 < ... < Dn then costs
 * (1 - f) x Dn + f x ΣD tokens instead of ΣD.
 *
 * Layout: `<trunk>/` is a run folder of its own (config.json, checkpoint/, metrics.jsonl) whose config
 * is the branch config with schedule "constant" and no final evaluation; `<trunk>/snapshots/step-<n>/`
 * holds model, optimizer, state.json and the trunk's metrics.jsonl up to step n. Whoever needs the
 * trunk further holds `<trunk>/.lock` (pid inside; a dead holder's lock is broken) while advancing it,
 * saving a snapshot at every branch point on the way, so branches of one ladder running side by side
 * never train the trunk twice, and a branch waits only until its own snapshot exists. Everything is
 * resumable: the trunk checkpoints like any run, snapshots and branch seeding are atomic renames.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { writeDirAtomicSync, writeFileAtomic } from "../util/atomic.js";
import { SynthmixError } from "../util/errors.js";
import { tryLock as tryFileLock } from "../util/lock.js";
import type { CheckpointState } from "./checkpoint.js";
import type { RunConfig } from "./schema.js";

/** Steps of a run, and the step at which a WSD run's cooldown starts. */
export function stepsOf(cfg: RunConfig, tokens = cfg.tokens): number {
  return Math.ceil(tokens / (cfg.batchSize * cfg.gradAccum * cfg.model.contextLength));
}

export function cooldownSteps(totalSteps: number, decayFraction: number): number {
  return Math.max(1, Math.round(decayFraction * totalSteps));
}

/** The trunk step where a WSD run of `tokens` branches off (its cooldown start). */
export function branchStep(cfg: RunConfig, tokens = cfg.tokens): number {
  const S = stepsOf(cfg, tokens);
  return S - cooldownSteps(S, cfg.optimizer.decayFraction ?? 0.2);
}

/**
 * Can this run start from the trunk? Its branch point must lie after the warmup (before it, the LR of
 * a short run depends on its length) and every trunk step must be a full step (not the partial last).
 */
export function canBranch(cfg: RunConfig): boolean {
  const s = branchStep(cfg);
  return s > 0 && s >= cfg.optimizer.warmupSteps && s < stepsOf(cfg);
}

/** The trunk's own config: the branch config at constant LR, trained up to `untilStep`. */
export function trunkConfig(cfg: RunConfig, untilStep: number): RunConfig {
  const { wsd: _w, ...rest } = cfg;
  const tokensPerStep = cfg.batchSize * cfg.gradAccum * cfg.model.contextLength;
  return {
    ...rest,
    id: `${cfg.id.replace(/-d[^-]+-s/, "-s")}-trunk`,
    tokens: untilStep * tokensPerStep,
    optimizer: { ...cfg.optimizer, schedule: "constant" },
  };
}

/** Snapshot steps of the trunk: the branch points of every budget of the ladder. */
export function snapshotSteps(cfg: RunConfig): number[] {
  const budgets = cfg.wsd?.ladder ?? [cfg.tokens];
  const steps = budgets
    .map((D) => ({ ...cfg, tokens: D }))
    .filter((c) => canBranch(c))
    .map((c) => branchStep(c));
  return [...new Set(steps)].sort((a, b) => a - b);
}

/** The files of a checkpoint folder (checkpoint.ts), copied into snapshots and branches. */
const CHECKPOINT_FILES = ["model.safetensors", "optimizer.safetensors", "state.json"];

export function snapshotDir(trunkDir: string, step: number): string {
  return join(trunkDir, "snapshots", `step-${step}`);
}

/** Copies the trunk's current checkpoint (just saved at `state.step`) into snapshots/step-<n>/. */
export function saveSnapshot(trunkDir: string, state: CheckpointState): void {
  const dst = snapshotDir(trunkDir, state.step);
  if (existsSync(join(dst, "state.json"))) return;
  mkdirSync(dirname(dst), { recursive: true });
  const metrics = readFileSync(join(trunkDir, "metrics.jsonl")).subarray(0, state.metricsOffset);
  writeDirAtomicSync(dst, (tmp) => {
    for (const f of CHECKPOINT_FILES) copyFileSync(join(trunkDir, "checkpoint", f), join(tmp, f));
    writeFileSync(join(tmp, "metrics.jsonl"), metrics);
  });
}

/**
 * Makes `snap` the branch's starting checkpoint: metrics.jsonl first (the trunk's records up to the
 * branch point, as a standalone WSD run would have written them), then checkpoint/ by one rename (the
 * commit point: a kill before it leaves no checkpoint, and seeding simply happens again).
 */
export function seedBranch(runDir: string, snap: string): void {
  writeFileAtomic(join(runDir, "metrics.jsonl"), readFileSync(join(snap, "metrics.jsonl")));
  writeDirAtomicSync(join(runDir, "checkpoint"), (tmp) => {
    for (const f of CHECKPOINT_FILES) copyFileSync(join(snap, f), join(tmp, f));
  });
}

/**
 * The trunk's exclusive lock (src/util/lock.ts: exclusive create recording host + pid, heartbeat, a
 * dead holder's lock broken on its own host at once and from other hosts of a shared filesystem once
 * its heartbeat is stale). Returns the release function, or null while someone live holds it.
 */
export function tryLock(path: string): (() => void) | null {
  return tryFileLock(path)?.release ?? null;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function abortedError(runDir: string): SynthmixError {
  return new SynthmixError("ABORTED", `training of ${runDir} stopped while waiting for its WSD trunk`, {
    hint: "rerun the same command to resume",
  });
}
