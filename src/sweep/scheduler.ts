import { buildMixture } from "../mix/build.js";
import { buildTestSets } from "../mix/testsets.js";
import { loadMixTokenizer, type MixTokenizer } from "../mix/tokenizer.js";
import { formatError } from "../util/errors.js";
import { fmtNum, Progress } from "../util/progress.js";
import { modelKey, threadsByMeasurement } from "./calibrate.js";
import type { RunExecutor } from "./executors.js";
import { runLocally, type SweepExecution, stopOrphan } from "./local.js";
import type { PlannedRun } from "./plan.js";
import { planSweep } from "./plan.js";
import { acquireSweepLock, type RunStatus, readStatus, registerRun, writeStatus } from "./registry.js";
import { writeResults } from "./results.js";
import { classFor, markDone, runSlurmSweep, type SlurmSweepResult, slurmConfig } from "./slurm.js";
import type { SlurmCli } from "./slurm-cli.js";
import { type SweepSpec, wsPath } from "./spec.js";

export interface RunSweepOptions {
  spec: SweepSpec;
  /** Absolute workspace path. */
  workspace: string;
  /** The study tokenizer (default: loaded from spec.tokenizer). */
  tokenizer?: MixTokenizer;
  /** Train every run with this executor (default: child processes, or the external backend per spec). */
  executor?: RunExecutor;
  /** Stops launching runs and interrupts running ones (they resume from their checkpoint next time). */
  signal?: AbortSignal;
  progress?: "bar" | "plain" | "silent";
  /** Slurm executor: submit the job arrays and return without waiting (`sweep status` / `collect`). */
  submitOnly?: boolean;
  /** Slurm executor: the cluster commands (default: sbatch/squeue/scancel on PATH). */
  slurmCli?: SlurmCli;
}

export interface SweepSummary {
  planned: number;
  /** Runs already done before this invocation (never redone). */
  alreadyDone: number;
  /** Runs that finished in this invocation. */
  finished: number;
  failed: { id: string; error: string }[];
  interrupted: boolean;
  /** Slurm executor: tasks submitted, re-attached, and left queued/running when this call returned. */
  slurm?: SlurmSweepResult;
}

/**
 * Run a sweep to completion. The steps: plan the grid, register the runs, tokenize the test sets and
 * build every mixture, then hand the runs still to train to an executor: the local one (this machine's
 * cores, src/sweep/local.ts) or Slurm (job arrays, src/sweep/slurm.ts). Done runs are never redone; an
 * interrupted or killed run resumes from its checkpoint; a failed run is retried `scheduler.retries`
 * times and then reported, while the other runs go on.
 */
export async function runSweep(opts: RunSweepOptions): Promise<SweepSummary> {
  const { spec, workspace } = opts;
  const progress = new Progress("sweep", { unit: "runs", mode: opts.progress });
  const log = (l: string) => progress.log(l);
  const tokenizer = opts.tokenizer ?? (await loadMixTokenizer(wsPath(workspace, spec.tokenizer)));
  const runs = planSweep(spec, workspace, tokenizer.vocabSize);
  const slurm = spec.scheduler.executor === "slurm";
  const release = acquireSweepLock(workspace);
  if (slurm) applySlurmThreads(spec, runs);
  else if (spec.scheduler.threadsBy === "measure") applyMeasuredThreads(spec, workspace, runs, log);
  const summary: SweepSummary = {
    planned: runs.length,
    alreadyDone: 0,
    finished: 0,
    failed: [],
    interrupted: false,
  };
  try {
    const statuses = new Map<string, RunStatus>();
    for (const run of runs) statuses.set(run.id, registerRun(workspace, run));
    const todo = runs.filter((r) => statuses.get(r.id)!.status !== "done");
    summary.alreadyDone = runs.length - todo.length;
    progress.setTotal(runs.length);
    progress.update(summary.alreadyDone);
    if (todo.length === 0) {
      writeResults(workspace);
      return summary;
    }
    const mixtureErrors = await prepareData(spec, workspace, tokenizer, todo, log);
    const ex: SweepExecution = {
      spec,
      workspace,
      todo,
      statuses,
      mixtureErrors,
      signal: opts.signal,
      log,
      onDone: () => {
        summary.finished++;
        progress.tick(1);
      },
      onFailed: (run, error) => {
        summary.failed.push({ id: run.id, error });
        progress.tick(1);
      },
    };
    if (slurm) summary.slurm = await runOnSlurm(ex, opts);
    else await runLocally(ex, opts.executor);
    summary.interrupted = Boolean(opts.signal?.aborted);
    writeResults(workspace);
    const tail = slurm ? `, ${summary.slurm!.left} on slurm` : summary.interrupted ? ", interrupted" : "";
    progress.finish(
      `sweep: ${summary.alreadyDone + summary.finished}/${runs.length} done, ${summary.failed.length} failed${tail}`,
    );
    return summary;
  } finally {
    release();
  }
}

/** The data step: test sets, then every mixture the runs to train need (errors kept per mixture). */
async function prepareData(
  spec: SweepSpec,
  workspace: string,
  tokenizer: MixTokenizer,
  todo: PlannedRun[],
  log: (l: string) => void,
): Promise<Map<string, string>> {
  await buildTestSets({ workspace, tokenizer, corpora: spec.testCorpora, log });
  const mixtureErrors = new Map<string, string>();
  const built = new Set<string>();
  for (const { mixture: m } of todo) {
    if (built.has(m.id) || mixtureErrors.has(m.id)) continue;
    try {
      await buildMixture({
        workspace,
        id: m.id,
        tokenizer,
        sources: m.sources,
        totalTokens: m.tokens,
        seed: m.seed,
        family: m.family,
        allowRepeat: spec.allowRepeat,
        log,
      });
      built.add(m.id);
    } catch (e) {
      mixtureErrors.set(m.id, formatError(e));
    }
  }
  return mixtureErrors;
}

/** The Slurm executor: job arrays per resource class (src/sweep/slurm.ts). */
async function runOnSlurm(ex: SweepExecution, opts: RunSweepOptions): Promise<SlurmSweepResult> {
  const { workspace, statuses } = ex;
  // A local child left by a killed local sweep must not train alongside the Slurm task.
  for (const s of statuses.values()) if (s.status === "running" && !s.slurm) await stopOrphan(workspace, s);
  return runSlurmSweep({
    ...ex,
    submitOnly: opts.submitOnly,
    cli: opts.slurmCli,
    onDone: (run, final) => {
      const st = statuses.get(run.id)!;
      markDone(st, final);
      writeStatus(workspace, st);
      writeResults(workspace);
      ex.onDone(run);
      ex.log(`done  ${run.id}  loss ${fmtNum(final.loss)}  (slurm job ${st.slurm?.jobId})`);
    },
  });
}

/** On Slurm a run gets its class's cpusPerTask as threads (written into config.json before submission). */
function applySlurmThreads(spec: SweepSpec, runs: PlannedRun[]) {
  const cfg = slurmConfig(spec);
  for (const r of runs) {
    const threads = classFor(r, cfg).resources.cpusPerTask ?? 1;
    r.threads = threads;
    r.config = { ...r.config, threads };
  }
}

function applyMeasuredThreads(
  spec: SweepSpec,
  workspace: string,
  runs: PlannedRun[],
  log: (l: string) => void,
) {
  const todo = runs.filter((r) => readStatus(workspace, r.id)?.status !== "done" && r.backend === "internal");
  const { cores, minSpeedup } = spec.scheduler;
  const batch = (r: PlannedRun) => r.config.batchSize;
  for (const r of todo) {
    const threads = threadsByMeasurement(workspace, [r.model], batch(r), cores, minSpeedup, log).get(
      modelKey(r.model, batch(r), cores),
    )!;
    r.threads = threads;
    r.config = { ...r.config, threads };
  }
}
