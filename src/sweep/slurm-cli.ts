import { spawnSync } from "node:child_process";
import { SynthmixError } from "../util/errors.js";

/**
 * What the Slurm executor needs from a cluster. The real one shells out to sbatch/squeue/scancel; a
 * test may pass another. No accounting daemon is assumed (sacct needs slurmdbd or a jobcomp store):
 * states come from `squeue --states=all`, which lists finished jobs for MinJobAge seconds, and a task
 * that has left squeue is judged by its run folder (metrics.jsonl final record, exit-status file).
 */
export interface SlurmCli {
  /** Submit a batch script; returns the (array) job id. */
  submit(scriptPath: string): string;
  /**
   * States of every task of these array jobs, keyed "<job>_<task>" (a non-array job by its id).
   * Undefined when squeue could not be asked (controller unreachable): nothing is concluded then.
   */
  queue(arrayJobIds: string[]): Map<string, string> | undefined;
  cancel(jobIds: string[]): void;
}

function run(cmd: string, args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 60_000 });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    throw new SynthmixError(
      "SLURM",
      code === "ENOENT" ? `${cmd} not found` : `${cmd} failed: ${r.error.message}`,
      {
        hint:
          code === "ENOENT"
            ? "run on a Slurm login node (sbatch, squeue, scancel on PATH), or set scheduler.executor: local"
            : undefined,
      },
    );
  }
  return { code: r.status ?? 1, out: r.stdout, err: r.stderr };
}

/** True when sbatch and squeue are on PATH and the controller answers. */
export function slurmAvailable(): { ok: boolean; why?: string } {
  try {
    const r = run("sinfo", ["-h", "-o", "%T"]);
    if (r.code !== 0) return { ok: false, why: `sinfo failed: ${r.err.trim() || `exit ${r.code}`}` };
    if (r.out.trim() === "") return { ok: false, why: "sinfo lists no nodes" };
    return { ok: true };
  } catch (e) {
    return { ok: false, why: (e as Error).message };
  }
}

export function realSlurmCli(): SlurmCli {
  return {
    submit(scriptPath) {
      const r = run("sbatch", ["--parsable", scriptPath]);
      const id = r.out.trim().split(";")[0];
      if (r.code !== 0 || !/^\d+$/.test(id)) {
        throw new SynthmixError("SLURM_SUBMIT", `sbatch ${scriptPath} failed: ${(r.err || r.out).trim()}`, {
          hint: "check the partition/account/qos/gres in scheduler.slurm (the script is kept for sbatch by hand)",
        });
      }
      return id;
    },
    queue(arrayJobIds) {
      const states = new Map<string, string>();
      if (arrayJobIds.length === 0) return states;
      // One squeue per job: squeue refuses the whole list when one id has been purged.
      for (const job of arrayJobIds) {
        const r = run("squeue", ["-h", "-r", "--states=all", "-j", job, "-o", "%i %T"]);
        if (r.code !== 0) {
          if (/invalid job id/i.test(r.err)) continue; // finished and purged: judged by the run folder
          return undefined;
        }
        for (const line of r.out.split("\n")) {
          const [id, state] = line.trim().split(/\s+/);
          if (id && state) states.set(id, state);
        }
      }
      return states;
    },
    cancel(jobIds) {
      if (jobIds.length === 0) return;
      const r = run("scancel", jobIds);
      if (r.code !== 0 && !/invalid job id|already completing|completed/i.test(r.err)) {
        throw new SynthmixError("SLURM_CANCEL", `scancel ${jobIds.join(" ")} failed: ${r.err.trim()}`);
      }
    },
  };
}

/** States after which a task no longer runs (anything else: pending, running, completing, requeued). */
const TERMINAL = new Set([
  "COMPLETED",
  "FAILED",
  "CANCELLED",
  "TIMEOUT",
  "PREEMPTED",
  "NODE_FAIL",
  "OUT_OF_MEMORY",
  "BOOT_FAIL",
  "DEADLINE",
  "SPECIAL_EXIT",
  "REVOKED",
]);

/** squeue prints "CANCELLED" or "CANCELLED+" (cancelled by its owner, in some versions). */
export function isTerminal(state: string): boolean {
  return TERMINAL.has(state.replace(/\+$/, "").split(" ")[0]);
}

/** The array job id of a task id ("123_4" -> "123"). */
export function arrayJobOf(taskId: string): string {
  return taskId.split("_")[0];
}
