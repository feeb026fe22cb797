import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { type FinalMetric, parseMetricRecord, RunConfigSchema } from "../train/schema.js";
import { writeFileAtomic, writeJsonAtomic } from "../util/atomic.js";
import { SynthmixError } from "../util/errors.js";
import { readJsonFile } from "../util/json.js";
import { readJsonlTolerantLines } from "../util/jsonl.js";
import { liveHolder, readLockHolder, tryLock } from "../util/lock.js";
import { processAlive } from "../util/process.js";
import type { PlannedRun } from "./plan.js";

export const RunStateSchema = z.enum(["pending", "running", "done", "failed"]);
export type RunState = z.infer<typeof RunStateSchema>;
export type { FinalMetric };

/** The Slurm job of a run (executor "slurm"): current task id, its last seen state, and history. */
const SlurmJobRecordSchema = z.object({
  /** The array task training the run now (or last): "<array job id>_<task index>". */
  jobId: z.string(),
  /** Last state seen in squeue (PENDING, RUNNING, COMPLETED, CANCELLED, TIMEOUT, ...). */
  state: z.string(),
  /** Resource class the job was submitted with. */
  class: z.string(),
  submittedAt: z.string(),
  /** Every task id submitted for this run, oldest first (retries append). */
  history: z.array(z.string()),
});
export type SlurmJobRecord = z.infer<typeof SlurmJobRecordSchema>;

/** `<ws>/runs/<id>/status.json`: one run's registry entry, rewritten atomically on every change. */
export const RunStatusSchema = z.object({
  id: z.string(),
  status: RunStateSchema,
  modelName: z.string(),
  nonEmbeddingParams: z.number(),
  totalParams: z.number(),
  tokens: z.number(),
  seed: z.number(),
  mixture: z.object({
    id: z.string(),
    label: z.string(),
    synthetic: z.string(),
    ratio: z.number(),
    generator: z.string(),
  }),
  threads: z.number(),
  backend: z.enum(["internal", "external"]),
  /** Planned training FLOPs (6ND + attention); the final record's value once done. */
  flops: z.number(),
  /** Training attempts started, over all sweep invocations. */
  attempts: z.number(),
  error: z.string().optional(),
  final: z
    .object({
      loss: z.number(),
      losses: z.record(z.string(), z.number()),
      step: z.number(),
      tokens: z.number(),
      tokensPerSec: z.number(),
      wallSec: z.number(),
      flops: z.number(),
    })
    .optional(),
  slurm: SlurmJobRecordSchema.optional(),
  /** Process id of the child training this run while status is "running". */
  pid: z.number().optional(),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional(),
  updatedAt: z.string(),
  config: RunConfigSchema,
});
export type RunStatus = z.infer<typeof RunStatusSchema>;

export function runsDir(workspace: string): string {
  return join(workspace, "runs");
}

export function runDir(workspace: string, id: string): string {
  return join(workspace, "runs", id);
}

export function readStatus(workspace: string, id: string): RunStatus | undefined {
  const p = join(runDir(workspace, id), "status.json");
  if (!existsSync(p)) return undefined;
  return readJsonFile(p, RunStatusSchema, {
    code: "BAD_RUN_STATUS",
    what: "a run status (status.json)",
    hint: `the run's registry entry is damaged: delete ${p} and rerun the sweep: the run is registered again and trained (resuming from its checkpoint, if any)`,
  });
}

export function writeStatus(workspace: string, status: RunStatus): void {
  status.updatedAt = new Date().toISOString();
  writeJsonAtomic(join(runDir(workspace, status.id), "status.json"), status);
}

/** Every registered run (any folder under runs/ with a status.json), sorted by id. */
export function listStatuses(workspace: string): RunStatus[] {
  const dir = runsDir(workspace);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .sort()
    .map((id) => readStatus(workspace, id))
    .filter((s): s is RunStatus => s !== undefined);
}

/**
 * Register a planned run: write `config.json` (the trainer contract) and a pending `status.json`.
 * An existing entry keeps its state and attempts (that is what makes reruns resume).
 */
export function registerRun(workspace: string, run: PlannedRun): RunStatus {
  const dir = runDir(workspace, run.id);
  const old = readStatus(workspace, run.id);
  const configPath = join(dir, "config.json");
  const configText = `${JSON.stringify(run.config, null, 2)}\n`;
  if (!existsSync(configPath) || readFileSync(configPath, "utf8") !== configText) {
    writeFileAtomic(configPath, configText);
  }
  const status: RunStatus = {
    id: run.id,
    status: old?.status ?? "pending",
    modelName: run.modelName,
    nonEmbeddingParams: run.nonEmbeddingParams,
    totalParams: run.totalParams,
    tokens: run.tokens,
    seed: run.seed,
    mixture: {
      id: run.mixture.id,
      label: run.mixture.label,
      synthetic: run.mixture.synthetic,
      ratio: run.mixture.ratio,
      generator: run.mixture.generator,
    },
    threads: run.threads,
    backend: run.backend,
    flops: old?.final?.flops ?? run.flops,
    attempts: old?.attempts ?? 0,
    error: old?.error,
    final: old?.final,
    slurm: old?.slurm,
    pid: old?.pid,
    startedAt: old?.startedAt,
    finishedAt: old?.finishedAt,
    updatedAt: "",
    config: run.config,
  };
  writeStatus(workspace, status);
  return status;
}

/** Progress of a run from its metrics.jsonl: last trained token count and last train loss. */
export async function readProgress(
  dir: string,
): Promise<{ tokens: number; loss?: number; final?: FinalMetric }> {
  const path = join(dir, "metrics.jsonl");
  let tokens = 0;
  let loss: number | undefined;
  let final: FinalMetric | undefined;
  for (const { value, line } of await readJsonlTolerantLines(path)) {
    const r = parseMetricRecord(path, line, value);
    if (r.type === "train") {
      tokens = r.tokens;
      loss = r.loss;
    } else if (r.type === "final") final = r;
  }
  return { tokens: final ? final.tokens : tokens, loss, final };
}

/**
 * One sweep per workspace at a time: `runs/.sweep.lock` (src/util/lock.ts: exclusive create, holder's
 * host + pid + heartbeat) so that a second `sweep run` on another host of a shared filesystem is
 * refused too. A lock left by a killed sweep is taken over: at once on the same host (its pid is gone),
 * after the heartbeat went stale on another.
 */
export function acquireSweepLock(workspace: string): () => void {
  const path = join(runsDir(workspace), ".sweep.lock");
  mkdirSync(runsDir(workspace), { recursive: true });
  // Two attempts: the first may only break a stale lock (and then leaves the create to the next).
  const held = tryLock(path) ?? tryLock(path);
  if (held) return held.release;
  const holder = readLockHolder(path);
  const who = holder ? liveHolder(path, holder) : undefined;
  throw new SynthmixError(
    "SWEEP_LOCKED",
    `another sweep (${who ?? "just started"}) is running in ${workspace}`,
    {
      hint:
        holder && holder.host === hostname()
          ? `wait for it, or stop it (kill ${holder.pid}) and rerun; a rerun resumes where it stopped`
          : `wait for it, or stop it on its host; a lock whose heartbeat stops is taken over after 10 minutes (${path})`,
    },
  );
}

export { processAlive };
