import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { writeFileAtomic } from "../util/atomic.js";
import { SynthmixError } from "../util/errors.js";
import { stableHash } from "../util/hash.js";
import { fillPlaceholders, shellQuote } from "../util/placeholders.js";
import { fmtNum } from "../util/progress.js";
import { defaultTrainCommand } from "./executors.js";
import { logTail } from "./external.js";
import type { SweepExecution } from "./local.js";
import type { PlannedRun } from "./plan.js";
import {
  type FinalMetric,
  listStatuses,
  type RunStatus,
  readProgress,
  runDir,
  runsDir,
  writeStatus,
} from "./registry.js";
import { arrayJobOf, isTerminal, realSlurmCli, type SlurmCli } from "./slurm-cli.js";
import type { SlurmConfig, SlurmResources, SweepSpec } from "./spec.js";

/** A run's resource class: the first `slurm.classes` entry matching its model, else the defaults. */
export interface ResolvedClass {
  name: string;
  resources: SlurmResources;
}

export function slurmConfig(spec: SweepSpec): SlurmConfig {
  const cfg = spec.scheduler.slurm;
  if (!cfg) {
    throw new SynthmixError("SWEEP_CONFIG", "scheduler.executor is slurm but scheduler.slurm is missing", {
      hint: "add `slurm: {partition: ..., time: ...}` under scheduler (docs/sweep.md)",
    });
  }
  return cfg;
}

const RESOURCE_KEYS = [
  "partition",
  "account",
  "qos",
  "time",
  "cpusPerTask",
  "mem",
  "gres",
  "constraint",
  "extraArgs",
  "flopsPerSec",
] as const;

function pickResources(src: SlurmResources): SlurmResources {
  const out: Record<string, unknown> = {};
  for (const k of RESOURCE_KEYS) if (src[k] !== undefined) out[k] = src[k];
  return out as SlurmResources;
}

export function classFor(
  run: Pick<PlannedRun, "modelName" | "nonEmbeddingParams">,
  cfg: SlurmConfig,
): ResolvedClass {
  const base = pickResources(cfg);
  for (const c of cfg.classes) {
    const byName = c.models === undefined || c.models.includes(run.modelName);
    const lo = c.minParams === undefined || run.nonEmbeddingParams >= c.minParams;
    const hi = c.maxParams === undefined || run.nonEmbeddingParams < c.maxParams;
    if (byName && lo && hi) return { name: c.name, resources: { ...base, ...pickResources(c) } };
  }
  return { name: "default", resources: base };
}

/** The `#SBATCH` option lines of a class (everything but the array range and the job name). */
export function sbatchOptions(r: SlurmResources): string[] {
  const o: string[] = [];
  if (r.partition) o.push(`--partition=${r.partition}`);
  if (r.account) o.push(`--account=${r.account}`);
  if (r.qos) o.push(`--qos=${r.qos}`);
  if (r.time) o.push(`--time=${r.time}`);
  o.push("--ntasks=1", `--cpus-per-task=${r.cpusPerTask ?? 1}`);
  if (r.mem) o.push(`--mem=${r.mem}`);
  if (r.gres) o.push(`--gres=${r.gres}`);
  if (r.constraint) o.push(`--constraint=${r.constraint}`);
  for (const a of r.extraArgs ?? []) o.push(a);
  return o;
}

/** GPUs per job from a gres string ("gpu:8", "gpu:a100:4", "gpu" = 1); 0 without GPUs. */
export function gpusOf(gres: string | undefined): number {
  if (!gres) return 0;
  let n = 0;
  for (const part of gres.split(",")) {
    const f = part.split(":");
    if (f[0] !== "gpu") continue;
    const last = Number(f.at(-1));
    n += f.length > 1 && Number.isInteger(last) ? last : 1;
  }
  return n;
}

/** Workspace-specific job name: two workspaces (or two users' sweeps) never see each other's jobs. */
export function jobNameFor(workspace: string, cfg: SlurmConfig): string {
  return `${cfg.jobName}-${stableHash(workspace, 8)}`;
}

/** The shell command one array task runs for a run (internal trainer, or external under srun). */
export function taskCommand(spec: SweepSpec, run: PlannedRun, workspace: string, cfg: SlurmConfig): string {
  const dir = runDir(workspace, run.id);
  const values = { config: join(dir, "config.json"), runDir: dir, id: run.id, threads: run.threads };
  const ext = spec.scheduler.external;
  if (run.backend === "external" && ext) {
    const cmd = fillPlaceholders(ext.command, values, shellQuote);
    return cfg.srun ? `srun --ntasks=1 --export=ALL bash -c ${shellQuote(cmd)}` : cmd;
  }
  const argv = (spec.scheduler.command ?? defaultTrainCommand()).map((a) => fillPlaceholders(a, values));
  return argv.map(shellQuote).join(" ");
}

/**
 * One job array: task i trains runs[i] in its folder, all output appended to `runs/<id>/train.log`.
 * The trainer runs as a child so that a SIGTERM (scancel, preemption, time limit) reaches it and it
 * stops after a checkpoint; the task then records its exit code in `runs/<id>/.slurm-exit`.
 * `after`: array jobs this one starts after (`--dependency=afterany`), how `maxConcurrent` holds for
 * the whole sweep and not per array (see submitArrays).
 */
export function sbatchScript(opts: {
  spec: SweepSpec;
  workspace: string;
  cls: ResolvedClass;
  runs: PlannedRun[];
  after?: string[];
}): string {
  const { spec, workspace, cls, runs } = opts;
  const cfg = slurmConfig(spec);
  const throttle = cfg.maxConcurrent ? `%${cfg.maxConcurrent}` : "";
  const after = opts.after?.length ? [`#SBATCH --dependency=afterany:${opts.after.join(":")}`] : [];
  const head = [
    "#!/bin/bash",
    `#SBATCH --job-name=${jobNameFor(workspace, cfg)}`,
    `#SBATCH --array=0-${runs.length - 1}${throttle}`,
    ...after,
    `#SBATCH --output=${join(runsDir(workspace), ".slurm", "%A_%a.out")}`,
    ...sbatchOptions(cls.resources).map((o) => `#SBATCH ${o}`),
    `# synthmix sweep, resource class "${cls.name}": task i trains run i below in its folder.`,
    "set -u",
    'case "$SLURM_ARRAY_TASK_ID" in',
    ...runs.map(
      (r, i) => `  ${i}) id=${shellQuote(r.id)}; cmd=${shellQuote(taskCommand(spec, r, workspace, cfg))} ;;`,
    ),
    '  *) echo "synthmix: no run for array task $SLURM_ARRAY_TASK_ID" >&2; exit 2 ;;',
    "esac",
    `dir=${shellQuote(runsDir(workspace))}/"$id"`,
    'cd "$dir" || exit 2',
    'exec >>"$dir/train.log" 2>&1',
    'task="$SLURM_ARRAY_JOB_ID"_"$SLURM_ARRAY_TASK_ID"',
    'echo "=== $(date -u +%Y-%m-%dT%H:%M:%SZ) slurm job $task on $(hostname): $cmd"',
    "export SYNTHMIX_PROGRESS=plain",
    ...cfg.setup,
    'bash -c "$cmd" &',
    "child=$!",
    "trap 'kill -TERM \"$child\" 2>/dev/null' TERM INT USR1",
    'wait "$child"; code=$?',
    // wait returns early when a trapped signal arrives: wait again for the trainer's own exit code.
    'while kill -0 "$child" 2>/dev/null; do wait "$child"; code=$?; done',
    'printf \'{"job":"%s","code":%d}\\n\' "$task" "$code" > .slurm-exit.tmp && mv .slurm-exit.tmp .slurm-exit',
    'exit "$code"',
  ];
  return `${head.join("\n")}\n`;
}

/** The sweep's execution as the local executor gets it, plus submission options; onDone gets the run's final metric. */
export type SlurmSweepContext = Omit<SweepExecution, "onDone"> & {
  submitOnly?: boolean;
  cli?: SlurmCli;
  onDone: (run: PlannedRun, final: FinalMetric) => void;
};

export interface SlurmSweepResult {
  submitted: number;
  reattached: number;
  /** Jobs left queued or running when this invocation returned (submit-only, or interrupted). */
  left: number;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((res) => {
    if (signal?.aborted) return res();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      res();
    }
    signal?.addEventListener("abort", done, { once: true });
  });

/** `<run>/.slurm-exit`, written by the job script when the trainer exits (a message detail only). */
const SlurmExitSchema = z.object({ job: z.string(), code: z.number() });

/** Why a task ended without a final record: Slurm state, exit code (from .slurm-exit) and log tail. */
function failureText(workspace: string, id: string, jobId: string, state: string | undefined): string {
  const dir = runDir(workspace, id);
  let code = "";
  try {
    const ex = SlurmExitSchema.safeParse(JSON.parse(readFileSync(join(dir, ".slurm-exit"), "utf8")));
    if (ex.success && ex.data.job === jobId) code = `, exit code ${ex.data.code}`;
  } catch {
    // No exit file: the task was killed before the trainer ended (or never started).
  }
  const tail = logTail(join(dir, "train.log"));
  return `slurm job ${jobId} ended ${state ?? "(no longer listed by squeue)"}${code} without a "final" record${tail ? `:\n  ${tail}` : ""}`;
}

/**
 * Train runs as Slurm job arrays: re-attach to jobs of earlier invocations that are still queued or
 * running, submit the rest as one array per resource class, then poll squeue until every task ended,
 * resubmitting failed, cancelled, preempted or timed-out tasks up to `scheduler.retries` times (they
 * resume from their checkpoints). Aborting (Ctrl-C) detaches: the jobs keep running and the next
 * `sweep run` re-attaches to them; `sweep cancel` cancels them.
 */
export async function runSlurmSweep(ctx: SlurmSweepContext): Promise<SlurmSweepResult> {
  return new SlurmSweep(ctx).run();
}

class SlurmSweep {
  private readonly cfg: SlurmConfig;
  private readonly cli: SlurmCli;
  private readonly result: SlurmSweepResult = { submitted: 0, reattached: 0, left: 0 };
  private readonly attemptsHere = new Map<string, number>();
  private readonly active = new Map<string, PlannedRun>();
  private readonly byId: Map<string, PlannedRun>;

  constructor(private readonly ctx: SlurmSweepContext) {
    this.cfg = slurmConfig(ctx.spec);
    this.cli = ctx.cli ?? realSlurmCli();
    this.byId = new Map(ctx.todo.map((r) => [r.id, r]));
  }

  private status(id: string): RunStatus {
    return this.ctx.statuses.get(id)!;
  }

  private jobOf(id: string): string {
    return this.status(id).slurm!.jobId;
  }

  async run(): Promise<SlurmSweepResult> {
    const { ctx } = this;
    // 1. Re-attach: tasks of an earlier (killed or detached) invocation that are still queued or running.
    const earlier = ctx.todo.filter((r) => this.status(r.id).slurm && this.status(r.id).status === "running");
    const fresh = ctx.todo.filter((r) => !earlier.includes(r) && !ctx.mixtureErrors.has(r.mixture.id));
    this.failBrokenMixtures(earlier);
    if (earlier.length > 0) await this.reattach(earlier, fresh);
    // 2. Submit what is left, 3. poll until every task ended.
    if (!ctx.signal?.aborted && fresh.length > 0) this.submit(fresh);
    while (this.active.size > 0 && !ctx.submitOnly && !ctx.signal?.aborted) {
      await sleep(this.cfg.pollSec * 1000, ctx.signal);
      if (ctx.signal?.aborted) break;
      await this.poll();
    }
    this.result.left = this.active.size;
    if (this.active.size > 0) {
      ctx.log(
        `${this.active.size} slurm job${this.active.size > 1 ? "s" : ""} left queued or running: \`sweep status\` shows them, \`sweep collect\` gathers finished ones, \`sweep run\` re-attaches, \`sweep cancel\` cancels`,
      );
    }
    return this.result;
  }

  /** Runs whose mixture could not be built fail at once (unless a task of theirs is still out there). */
  private failBrokenMixtures(earlier: PlannedRun[]): void {
    for (const r of this.ctx.todo) {
      const err = this.ctx.mixtureErrors.get(r.mixture.id);
      if (!err || earlier.includes(r)) continue;
      const st = this.status(r.id);
      st.status = "failed";
      st.error = `mixture ${r.mixture.id}: ${err}`;
      writeStatus(this.ctx.workspace, st);
      this.ctx.onFailed(r, st.error);
    }
  }

  private async reattach(earlier: PlannedRun[], fresh: PlannedRun[]): Promise<void> {
    const states = this.cli.queue([...new Set(earlier.map((r) => arrayJobOf(this.jobOf(r.id))))]);
    if (!states) {
      throw new SynthmixError("SLURM", "squeue did not answer: cannot tell which earlier jobs still run", {
        hint: "rerun when the Slurm controller is reachable (no job was submitted twice)",
      });
    }
    for (const r of earlier) {
      const state = states.get(this.jobOf(r.id));
      this.attemptsHere.set(r.id, 1);
      if (state && !isTerminal(state)) {
        this.active.set(r.id, r);
        this.result.reattached++;
        this.ctx.log(`re-attached ${r.id} to slurm job ${this.jobOf(r.id)} (${state})`);
      } else {
        await this.settle(r, state, fresh);
      }
    }
  }

  /** One squeue round: record state changes, settle the tasks that ended, resubmit the retries. */
  private async poll(): Promise<void> {
    const ids = [...this.active.keys()];
    const states = this.cli.queue([...new Set(ids.map((id) => arrayJobOf(this.jobOf(id))))]);
    if (!states) {
      this.ctx.log("squeue did not answer; polling again");
      return;
    }
    const retry: PlannedRun[] = [];
    for (const id of ids) {
      const st = this.status(id);
      const state = states.get(st.slurm!.jobId);
      if (state && !isTerminal(state)) {
        if (state !== st.slurm!.state) {
          st.slurm!.state = state;
          writeStatus(this.ctx.workspace, st);
        }
        continue;
      }
      await this.settle(this.byId.get(id)!, state, retry);
    }
    if (retry.length > 0) this.submit(retry);
  }

  /** A task that ended: done when its run folder holds the final record, else retried or failed. */
  private async settle(run: PlannedRun, state: string | undefined, retryable: PlannedRun[]): Promise<void> {
    const { workspace, log } = this.ctx;
    const st = this.status(run.id);
    const jobId = st.slurm!.jobId;
    this.active.delete(run.id);
    if (state) st.slurm!.state = state;
    const { final } = await readProgress(runDir(workspace, run.id));
    if (final) {
      this.ctx.onDone(run, final);
      return;
    }
    const error = failureText(workspace, run.id, jobId, state);
    const retry = (this.attemptsHere.get(run.id) ?? 1) <= this.ctx.spec.scheduler.retries;
    st.error = error;
    st.status = retry ? "pending" : "failed";
    writeStatus(workspace, st);
    log(`${retry ? "retry" : "FAILED"} ${run.id}: ${error.split("\n")[0]}`);
    if (retry) retryable.push(run);
    else this.ctx.onFailed(run, error);
  }

  /**
   * maxConcurrent caps the whole sweep: `%n` throttles one array only, so with a cap every new array
   * starts after the sweep's live arrays (afterany), one array at a time, each throttled to n. Without
   * a cap the arrays run side by side.
   */
  private liveArrays(): string[] {
    if (!this.cfg.maxConcurrent) return [];
    return [...new Set([...this.active.keys()].map((id) => arrayJobOf(this.jobOf(id))))];
  }

  /** Submit runs as one job array per resource class. */
  private submit(runs: PlannedRun[]): void {
    const groups = new Map<string, { cls: ResolvedClass; runs: PlannedRun[] }>();
    for (const r of runs) {
      const cls = classFor(r, this.cfg);
      const g = groups.get(cls.name) ?? { cls, runs: [] };
      g.runs.push(r);
      groups.set(cls.name, g);
    }
    let after = this.liveArrays();
    for (const { cls, runs: group } of groups.values()) {
      const arrayId = this.submitArray(cls, group, after);
      if (this.cfg.maxConcurrent) after = [arrayId];
    }
  }

  private submitArray(cls: ResolvedClass, group: PlannedRun[], after: string[]): string {
    const { spec, workspace } = this.ctx;
    const dir = join(runsDir(workspace), ".slurm");
    mkdirSync(dir, { recursive: true });
    const ids = group.map((r) => r.id);
    const path = join(dir, `${cls.name}-${Date.now()}-${stableHash(ids, 6)}.sbatch`);
    writeFileAtomic(path, sbatchScript({ spec, workspace, cls, runs: group, after }));
    const arrayId = this.cli.submit(path);
    const now = new Date().toISOString();
    group.forEach((r, i) => {
      const st = this.status(r.id);
      const jobId = `${arrayId}_${i}`;
      st.status = "running";
      st.attempts++;
      st.startedAt = now;
      st.error = undefined;
      st.pid = undefined;
      st.slurm = {
        jobId,
        state: "PENDING",
        class: cls.name,
        submittedAt: now,
        history: [...(st.slurm?.history ?? []), jobId],
      };
      writeStatus(workspace, st);
      this.attemptsHere.set(r.id, (this.attemptsHere.get(r.id) ?? 0) + 1);
      this.active.set(r.id, r);
    });
    this.result.submitted += group.length;
    this.ctx.log(`submitted job array ${arrayId} (${group.length} runs, class ${cls.name}): ${path}`);
    return arrayId;
  }
}

/** Runs of a workspace whose status says a Slurm task is training them. */
export function slurmRunning(workspace: string): RunStatus[] {
  return listStatuses(workspace).filter((s) => s.status === "running" && s.slurm !== undefined);
}

/** Live Slurm states of the workspace's running runs (read-only: for `sweep status`). */
export function liveSlurmStates(
  statuses: RunStatus[],
  cli: SlurmCli = realSlurmCli(),
): Map<string, string> | undefined {
  const jobs = statuses.filter((s) => s.status === "running" && s.slurm).map((s) => s.slurm!.jobId);
  if (jobs.length === 0) return new Map();
  try {
    return cli.queue([...new Set(jobs.map(arrayJobOf))]);
  } catch {
    return undefined;
  }
}

/**
 * `sweep collect`: settle every Slurm task of the workspace that has ended (done when its run folder
 * holds the final record, else failed with the reason; the next `sweep run` retries failed runs).
 * Nothing is submitted. Tasks still queued or running are left alone and counted.
 */
export async function collectSlurm(
  workspace: string,
  cli: SlurmCli = realSlurmCli(),
): Promise<{ done: string[]; failed: { id: string; error: string }[]; running: string[] }> {
  const out = {
    done: [] as string[],
    failed: [] as { id: string; error: string }[],
    running: [] as string[],
  };
  const running = slurmRunning(workspace);
  const states = cli.queue([...new Set(running.map((s) => arrayJobOf(s.slurm!.jobId)))]);
  if (!states)
    throw new SynthmixError("SLURM", "squeue did not answer", { hint: "retry when the controller is up" });
  for (const st of running) {
    const state = states.get(st.slurm!.jobId);
    if (state && !isTerminal(state)) {
      if (st.slurm!.state !== state) writeStatus(workspace, { ...st, slurm: { ...st.slurm!, state } });
      out.running.push(st.id);
      continue;
    }
    if (state) st.slurm!.state = state;
    const { final } = await readProgress(runDir(workspace, st.id));
    if (final) {
      markDone(st, final);
      out.done.push(st.id);
    } else {
      st.status = "failed";
      st.error = failureText(workspace, st.id, st.slurm!.jobId, state);
      out.failed.push({ id: st.id, error: st.error });
    }
    writeStatus(workspace, st);
  }
  return out;
}

/** Record a final metric in a status (shared by the local and Slurm paths). */
export function markDone(st: RunStatus, final: FinalMetric, wallSec?: number): void {
  st.status = "done";
  st.finishedAt = new Date().toISOString();
  st.flops = final.flops;
  st.pid = undefined;
  st.error = undefined;
  st.final = {
    loss: final.loss,
    losses: final.losses,
    step: final.step,
    tokens: final.tokens,
    tokensPerSec: final.tokensPerSec,
    wallSec: final.elapsedSec ?? wallSec ?? 0,
    flops: final.flops,
  };
}

/** `sweep cancel`: scancel every queued or running task of the workspace; the runs go back to pending. */
export function cancelSlurm(workspace: string, cli: SlurmCli = realSlurmCli()): string[] {
  const running = slurmRunning(workspace);
  cli.cancel(running.map((s) => s.slurm!.jobId));
  for (const st of running) {
    st.status = "pending";
    st.slurm!.state = "CANCELLED";
    st.error = `slurm job ${st.slurm!.jobId} cancelled by \`sweep cancel\`; \`sweep run\` resumes it from its checkpoint`;
    writeStatus(workspace, st);
  }
  return running.map((s) => s.slurm!.jobId);
}

/** Per resource class: jobs, FLOPs, job-hours at the class's throughput, GPU/CPU-hours, sbatch lines. */
export interface ClassPlan {
  name: string;
  jobs: number;
  flops: number;
  /** Hours of one job each, summed (undefined without `flopsPerSec`). */
  jobHours?: number;
  gpuHours?: number;
  cpuHours?: number;
  sbatch: string[];
}

export function planSlurm(spec: SweepSpec, runs: PlannedRun[]): ClassPlan[] {
  const cfg = slurmConfig(spec);
  const plans = new Map<string, ClassPlan & { res: SlurmResources }>();
  for (const r of runs) {
    const cls = classFor(r, cfg);
    const p = plans.get(cls.name) ?? {
      name: cls.name,
      jobs: 0,
      flops: 0,
      sbatch: sbatchOptions(cls.resources),
      res: cls.resources,
    };
    p.jobs++;
    p.flops += r.flops;
    plans.set(cls.name, p);
  }
  return [...plans.values()].map(({ res, ...p }) => {
    if (!res.flopsPerSec) return p;
    const jobHours = p.flops / res.flopsPerSec / 3600;
    return {
      ...p,
      jobHours,
      gpuHours: jobHours * gpusOf(res.gres),
      cpuHours: jobHours * (res.cpusPerTask ?? 1),
    };
  });
}

export function formatSlurmPlan(plans: ClassPlan[], maxConcurrent?: number): string {
  const lines: string[] = [];
  for (const p of plans) {
    const hours =
      p.jobHours === undefined
        ? "hours: set flopsPerSec for this class to estimate"
        : `${fmtNum(p.jobHours)} job-hours, ${fmtNum(p.gpuHours ?? 0)} GPU-hours, ${fmtNum(p.cpuHours ?? 0)} CPU-hours`;
    lines.push(
      `class ${p.name}: ${p.jobs} job${p.jobs === 1 ? "" : "s"}, ${p.flops.toExponential(3)} FLOPs, ${hours}`,
    );
    lines.push(`  #SBATCH --array=0-${p.jobs - 1}${maxConcurrent ? `%${maxConcurrent}` : ""}`);
    for (const o of p.sbatch) lines.push(`  #SBATCH ${o}`);
  }
  if (maxConcurrent && plans.length > 1) {
    lines.push(
      `arrays run one after another (--dependency=afterany), so at most ${maxConcurrent} task${maxConcurrent === 1 ? "" : "s"} of the sweep run at once`,
    );
  }
  return lines.join("\n");
}
