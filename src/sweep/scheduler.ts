import { readFileSync } from "node:fs";
import { join } from "node:path";
import { buildMixture } from "../mix/build.js";
import { buildTestSets } from "../mix/testsets.js";
import { loadMixTokenizer, type MixTokenizer } from "../mix/tokenizer.js";
import { formatError, SynthmixError } from "../util/errors.js";
import { fmtDuration, fmtNum, Progress } from "../util/progress.js";
import { modelKey, threadsByMeasurement } from "./calibrate.js";
import { childProcessExecutor, externalExecutor, type RunExecutor } from "./executors.js";
import type { PlannedRun } from "./plan.js";
import { planSweep } from "./plan.js";
import { POOL_WORKER_MARKER, type PooledExecutor, pooledExecutor } from "./pool.js";
import {
  acquireSweepLock,
  type FinalMetric,
  processAlive,
  type RunStatus,
  readStatus,
  registerRun,
  runDir,
  writeStatus,
} from "./registry.js";
import { writeResults } from "./results.js";
import {
  classFor,
  markDone,
  runSlurmSweep,
  type SlurmSweepResult,
  slurmConfig,
  slurmRunning,
} from "./slurm.js";
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
 * Run a sweep to completion: tokenize the test sets, build every mixture, register the runs, then train
 * them across the cores. Scheduling rule: a run whose model has at least `scheduler.allCoresFromParams`
 * non-embedding parameters gets every core (threads = cores) and runs alone; smaller ones get one thread
 * each and run side by side, one per core. Large runs go first so the small ones fill in at the end.
 * Done runs are never redone; an interrupted or killed run resumes from its checkpoint; a failed run is
 * retried `scheduler.retries` times and then reported, while the other runs go on.
 */
export async function runSweep(opts: RunSweepOptions): Promise<SweepSummary> {
  const { spec, workspace } = opts;
  const progress = new Progress("sweep", { unit: "runs", mode: opts.progress });
  const log = (l: string) => progress.log(l);
  const tokenizer = opts.tokenizer ?? (await loadMixTokenizer(wsPath(workspace, spec.tokenizer)));
  const runs = planSweep(spec, workspace, tokenizer.vocabSize);
  const slurm = spec.scheduler.executor === "slurm";
  const release = acquireSweepLock(workspace);
  let closeExecutor: (() => void) | undefined;
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
    await buildTestSets({ workspace, tokenizer, corpora: spec.testCorpora, log });
    const mixtureErrors = new Map<string, string>();
    for (const run of todo) {
      const m = run.mixture;
      if (mixtureErrors.has(m.id)) continue;
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
      } catch (e) {
        mixtureErrors.set(m.id, formatError(e));
      }
    }
    if (slurm) {
      // A local child left by a killed local sweep must not train alongside the Slurm task.
      for (const s of statuses.values())
        if (s.status === "running" && !s.slurm) await stopOrphan(workspace, s);
      summary.slurm = await runSlurmSweep({
        spec,
        workspace,
        todo,
        statuses,
        mixtureErrors,
        signal: opts.signal,
        submitOnly: opts.submitOnly,
        cli: opts.slurmCli,
        log,
        onDone: (run, final) => {
          const st = statuses.get(run.id)!;
          markDone(st, final);
          writeStatus(workspace, st);
          writeResults(workspace);
          summary.finished++;
          progress.tick(1);
          log(`done  ${run.id}  loss ${fmtNum(final.loss)}  (slurm job ${st.slurm?.jobId})`);
        },
        onFailed: (run, error) => {
          summary.failed.push({ id: run.id, error });
          progress.tick(1);
        },
      });
      summary.interrupted = Boolean(opts.signal?.aborted);
      writeResults(workspace);
      progress.finish(
        `sweep: ${summary.alreadyDone + summary.finished}/${runs.length} done, ${summary.failed.length} failed, ${summary.slurm.left} on slurm`,
      );
      return summary;
    }
    const onSlurm = slurmRunning(workspace);
    if (onSlurm.length > 0) {
      throw new SynthmixError(
        "SWEEP_CONFIG",
        `${onSlurm.length} run(s) are still on Slurm (e.g. ${onSlurm[0].id}, job ${onSlurm[0].slurm!.jobId}); training them here too would train twice`,
        { hint: "`synthmix sweep cancel` them first, or keep scheduler.executor: slurm" },
      );
    }
    for (const s of statuses.values()) if (s.status === "running") await stopOrphan(workspace, s);

    const sched = spec.scheduler;
    const external = sched.external ? externalExecutor(sched.external.command) : undefined;
    // Default: reused worker processes (src/sweep/pool.ts); a custom command gets a process per run.
    const child = sched.command ? childProcessExecutor(sched.command) : pooledExecutor();
    closeExecutor = "close" in child ? (child as PooledExecutor).close : undefined;
    const executorFor = (run: PlannedRun): RunExecutor =>
      opts.executor ?? (run.backend === "external" && external ? external : child);

    // Large (all-core) runs first; within each kind the longest runs first (the LPT rule), so the
    // cores are not left with one long run at the end. Results do not depend on the order.
    const queue = [...todo].sort((a, b) => b.threads - a.threads || b.flops - a.flops);
    const attemptsHere = new Map<string, number>();
    const active = new Map<string, Promise<void>>();
    const controllers = new Map<string, AbortController>();
    let free = sched.cores;
    const onAbort = () => {
      for (const c of controllers.values()) c.abort();
    };
    opts.signal?.addEventListener("abort", onAbort, { once: true });

    const launch = (run: PlannedRun) => {
      const st = statuses.get(run.id)!;
      const threads = Math.min(run.threads, sched.cores);
      free -= threads;
      attemptsHere.set(run.id, (attemptsHere.get(run.id) ?? 0) + 1);
      const ctrl = new AbortController();
      controllers.set(run.id, ctrl);
      Object.assign(st, {
        status: "running",
        attempts: st.attempts + 1,
        startedAt: new Date().toISOString(),
      });
      st.error = undefined;
      writeStatus(workspace, st);
      log(
        `start ${run.id} (attempt ${st.attempts}, ${threads} thread${threads > 1 ? "s" : ""}, ${run.backend})`,
      );
      const t0 = Date.now();
      const p = (async () => {
        // Yield first: the bookkeeping below must not run before `active.set` (a run that fails at once).
        await Promise.resolve();
        let final: FinalMetric | undefined;
        let error: unknown;
        try {
          const mixErr = mixtureErrors.get(run.mixture.id);
          if (mixErr) throw new SynthmixError("MIX_FAILED", `mixture ${run.mixture.id}: ${mixErr}`);
          final = await executorFor(run)({
            id: run.id,
            runDir: runDir(workspace, run.id),
            configPath: join(runDir(workspace, run.id), "config.json"),
            config: run.config,
            signal: ctrl.signal,
            onStart: (pid) => {
              st.pid = pid;
              writeStatus(workspace, st);
            },
          });
        } catch (e) {
          error = e;
        }
        free += threads;
        controllers.delete(run.id);
        active.delete(run.id);
        st.pid = undefined;
        if (final) {
          st.status = "done";
          st.finishedAt = new Date().toISOString();
          st.flops = final.flops;
          st.final = {
            loss: final.loss,
            losses: final.losses,
            step: final.step,
            tokens: final.tokens,
            tokensPerSec: final.tokensPerSec,
            wallSec: final.elapsedSec ?? (Date.now() - t0) / 1000,
            flops: final.flops,
          };
          writeStatus(workspace, st);
          writeResults(workspace);
          summary.finished++;
          progress.tick(1);
          log(
            `done  ${run.id}  loss ${fmtNum(final.loss)}  ${fmtNum(final.tokensPerSec)} tok/s  ${fmtDuration((Date.now() - t0) / 1000)}`,
          );
        } else if (ctrl.signal.aborted) {
          st.status = "pending";
          st.error = "interrupted; resumes from its checkpoint on the next `sweep run`";
          writeStatus(workspace, st);
        } else {
          st.error = formatError(error);
          const retry =
            !mixtureErrors.has(run.mixture.id) && (attemptsHere.get(run.id) ?? 0) <= sched.retries;
          st.status = retry ? "pending" : "failed";
          writeStatus(workspace, st);
          log(`${retry ? "retry" : "FAILED"} ${run.id}: ${st.error.split("\n")[0]}`);
          if (retry) queue.unshift(run);
          else {
            summary.failed.push({ id: run.id, error: st.error });
            progress.tick(1);
          }
        }
      })();
      active.set(run.id, p);
    };

    while ((queue.length > 0 && !opts.signal?.aborted) || active.size > 0) {
      if (!opts.signal?.aborted) {
        const i = queue.findIndex((r) => Math.min(r.threads, sched.cores) <= free);
        if (i >= 0) {
          launch(queue.splice(i, 1)[0]);
          continue;
        }
      }
      await Promise.race(active.values());
    }
    opts.signal?.removeEventListener("abort", onAbort);
    summary.interrupted = Boolean(opts.signal?.aborted);
    writeResults(workspace);
    progress.finish(
      `sweep: ${summary.alreadyDone + summary.finished}/${runs.length} done, ${summary.failed.length} failed${summary.interrupted ? ", interrupted" : ""}`,
    );
    return summary;
  } finally {
    closeExecutor?.();
    release();
  }
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

/**
 * A status left "running" by a killed sweep may still have its training child alive (a SIGKILL of the
 * sweep does not reach it): stop it, so the resumed run does not train twice into the same folder.
 * The pid is only trusted when its command line still names this run's folder.
 */
async function stopOrphan(workspace: string, st: RunStatus): Promise<void> {
  const pid = st.pid;
  if (!pid || !processAlive(pid)) return;
  let cmdline = "";
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
  } catch {
    return;
  }
  // A pooled worker (src/sweep/pool.ts) names no run on its command line, only the worker marker.
  if (!cmdline.includes(st.id) && !cmdline.includes(POOL_WORKER_MARKER)) return;
  process.kill(pid, "SIGTERM");
  for (let i = 0; i < 100 && processAlive(pid); i++) await new Promise((r) => setTimeout(r, 100));
  if (processAlive(pid)) process.kill(pid, "SIGKILL");
  const again = readStatus(workspace, st.id);
  if (again) writeStatus(workspace, { ...again, pid: undefined });
}
