import { readFileSync } from "node:fs";
import { join } from "node:path";
import { formatError, SynthmixError } from "../util/errors.js";
import { fmtDuration, fmtNum } from "../util/progress.js";
import { childProcessExecutor, externalExecutor, type RunExecutor } from "./executors.js";
import type { PlannedRun } from "./plan.js";
import { POOL_WORKER_MARKER, type PooledExecutor, pooledExecutor } from "./pool.js";
import {
  type FinalMetric,
  processAlive,
  type RunStatus,
  readStatus,
  runDir,
  writeStatus,
} from "./registry.js";
import { writeResults } from "./results.js";
import { markDone, slurmRunning } from "./slurm.js";
import type { SweepSpec } from "./spec.js";

/** What an executor of the sweep gets: the runs to train and the sweep's bookkeeping. */
export interface SweepExecution {
  spec: SweepSpec;
  workspace: string;
  /** Runs still to train (registered, not done). */
  todo: PlannedRun[];
  statuses: Map<string, RunStatus>;
  /** Runs whose mixture could not be built: they fail without training. */
  mixtureErrors: Map<string, string>;
  signal?: AbortSignal;
  log: (line: string) => void;
  /** A run finished (its status is already written). */
  onDone: (run: PlannedRun) => void;
  /** A run failed for good (retries used up). */
  onFailed: (run: PlannedRun, error: string) => void;
}

/**
 * The local executor: trains runs on this machine's cores. A run whose model has at least
 * `scheduler.allCoresFromParams` non-embedding parameters gets every core and runs alone; smaller ones
 * get one thread each, side by side. Large runs first, then the longest (the LPT rule), so the cores
 * are not left with one long run at the end; results do not depend on the order. A failed run is
 * retried `scheduler.retries` times; an interrupted one goes back to pending (it resumes from its
 * checkpoint next time).
 */
export async function runLocally(ex: SweepExecution, executor?: RunExecutor): Promise<void> {
  await refuseRunsOnSlurm(ex.workspace);
  for (const s of ex.statuses.values()) if (s.status === "running") await stopOrphan(ex.workspace, s);
  const { execFor, close } = localExecutors(ex.spec, executor);
  try {
    await new LocalQueue(ex, execFor).run();
  } finally {
    close?.();
  }
}

async function refuseRunsOnSlurm(workspace: string): Promise<void> {
  const onSlurm = slurmRunning(workspace);
  if (onSlurm.length > 0) {
    throw new SynthmixError(
      "SWEEP_CONFIG",
      `${onSlurm.length} run(s) are still on Slurm (e.g. ${onSlurm[0].id}, job ${onSlurm[0].slurm!.jobId}); training them here too would train twice`,
      { hint: "`synthmix sweep cancel` them first, or keep scheduler.executor: slurm" },
    );
  }
}

/** The executor per run: the caller's, else the external backend or the internal trainer. */
function localExecutors(
  spec: SweepSpec,
  given?: RunExecutor,
): { execFor: (run: PlannedRun) => RunExecutor; close?: () => void } {
  const sched = spec.scheduler;
  const external = sched.external ? externalExecutor(sched.external.command) : undefined;
  // Default: reused worker processes (src/sweep/pool.ts); a custom command gets a process per run.
  const child = sched.command ? childProcessExecutor(sched.command) : pooledExecutor();
  const close = "close" in child ? (child as PooledExecutor).close : undefined;
  const execFor = (run: PlannedRun): RunExecutor =>
    given ?? (run.backend === "external" && external ? external : child);
  return { execFor, close };
}

class LocalQueue {
  private readonly queue: PlannedRun[];
  private readonly attemptsHere = new Map<string, number>();
  private readonly active = new Map<string, Promise<void>>();
  private readonly controllers = new Map<string, AbortController>();
  private free: number;
  private readonly cores: number;

  constructor(
    private readonly ex: SweepExecution,
    private readonly execFor: (run: PlannedRun) => RunExecutor,
  ) {
    this.cores = ex.spec.scheduler.cores;
    this.free = this.cores;
    this.queue = [...ex.todo].sort((a, b) => b.threads - a.threads || b.flops - a.flops);
  }

  async run(): Promise<void> {
    const { signal } = this.ex;
    const onAbort = () => {
      for (const c of this.controllers.values()) c.abort();
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      while ((this.queue.length > 0 && !signal?.aborted) || this.active.size > 0) {
        const i = signal?.aborted ? -1 : this.queue.findIndex((r) => this.threadsOf(r) <= this.free);
        if (i >= 0) this.launch(this.queue.splice(i, 1)[0]);
        else await Promise.race(this.active.values());
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  private threadsOf(run: PlannedRun): number {
    return Math.min(run.threads, this.cores);
  }

  private launch(run: PlannedRun): void {
    const { workspace, log } = this.ex;
    const st = this.ex.statuses.get(run.id)!;
    const threads = this.threadsOf(run);
    this.free -= threads;
    this.attemptsHere.set(run.id, (this.attemptsHere.get(run.id) ?? 0) + 1);
    const ctrl = new AbortController();
    this.controllers.set(run.id, ctrl);
    Object.assign(st, { status: "running", attempts: st.attempts + 1, startedAt: new Date().toISOString() });
    st.error = undefined;
    writeStatus(workspace, st);
    log(
      `start ${run.id} (attempt ${st.attempts}, ${threads} thread${threads > 1 ? "s" : ""}, ${run.backend})`,
    );
    const p = (async () => {
      // Yield first: the bookkeeping below must not run before `active.set` (a run that fails at once).
      await Promise.resolve();
      const t0 = Date.now();
      const outcome = await this.train(run, st, ctrl.signal);
      this.free += threads;
      this.controllers.delete(run.id);
      this.active.delete(run.id);
      st.pid = undefined;
      if (outcome.final) this.finished(run, st, outcome.final, (Date.now() - t0) / 1000);
      else if (ctrl.signal.aborted) this.interrupted(st);
      else this.failed(run, st, outcome.error);
    })();
    this.active.set(run.id, p);
  }

  private async train(
    run: PlannedRun,
    st: RunStatus,
    signal: AbortSignal,
  ): Promise<{ final?: FinalMetric; error?: unknown }> {
    const { workspace } = this.ex;
    try {
      const mixErr = this.ex.mixtureErrors.get(run.mixture.id);
      if (mixErr) throw new SynthmixError("MIX_FAILED", `mixture ${run.mixture.id}: ${mixErr}`);
      const final = await this.execFor(run)({
        id: run.id,
        runDir: runDir(workspace, run.id),
        configPath: join(runDir(workspace, run.id), "config.json"),
        config: run.config,
        signal,
        onStart: (pid) => {
          st.pid = pid;
          writeStatus(workspace, st);
        },
      });
      return { final };
    } catch (error) {
      return { error };
    }
  }

  private finished(run: PlannedRun, st: RunStatus, final: FinalMetric, wallSec: number): void {
    markDone(st, final, wallSec);
    writeStatus(this.ex.workspace, st);
    writeResults(this.ex.workspace);
    this.ex.onDone(run);
    this.ex.log(
      `done  ${run.id}  loss ${fmtNum(final.loss)}  ${fmtNum(final.tokensPerSec)} tok/s  ${fmtDuration(wallSec)}`,
    );
  }

  private interrupted(st: RunStatus): void {
    st.status = "pending";
    st.error = "interrupted; resumes from its checkpoint on the next `sweep run`";
    writeStatus(this.ex.workspace, st);
  }

  private failed(run: PlannedRun, st: RunStatus, error: unknown): void {
    st.error = formatError(error);
    const retry =
      !this.ex.mixtureErrors.has(run.mixture.id) &&
      (this.attemptsHere.get(run.id) ?? 0) <= this.ex.spec.scheduler.retries;
    st.status = retry ? "pending" : "failed";
    writeStatus(this.ex.workspace, st);
    this.ex.log(`${retry ? "retry" : "FAILED"} ${run.id}: ${st.error.split("\n")[0]}`);
    if (retry) this.queue.unshift(run);
    else this.ex.onFailed(run, st.error);
  }
}

/**
 * A status left "running" by a killed sweep may still have its training child alive (a SIGKILL of the
 * sweep does not reach it): stop it, so the resumed run does not train twice into the same folder.
 * The pid is only trusted when its command line still names this run's folder.
 */
export async function stopOrphan(workspace: string, st: RunStatus): Promise<void> {
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
