import { countLabel } from "../mix/count.js";
import { fmtNum } from "../util/progress.js";
import { listStatuses, type RunStatus, readProgress, runDir } from "./registry.js";
import { liveSlurmStates } from "./slurm.js";

export interface StatusRow {
  id: string;
  status: RunStatus["status"];
  model: string;
  tokens: number;
  mixture: string;
  generator: string;
  seed: number;
  /** Trained tokens so far / budget, 0..1 (from metrics.jsonl). */
  progress: number;
  loss?: number;
  attempts: number;
  error?: string;
  /** Slurm executor: the run's current (or last) array task id and its state. */
  job?: string;
  jobState?: string;
}

/**
 * The registry with each run's progress read from its metrics.jsonl. With `live`, the Slurm state of
 * running runs is asked from squeue (nothing is written; `sweep collect` records ended tasks).
 */
export async function sweepStatus(workspace: string, opts: { live?: boolean } = {}): Promise<StatusRow[]> {
  const rows: StatusRow[] = [];
  const statuses = listStatuses(workspace);
  const live =
    opts.live && statuses.some((s) => s.slurm && s.status === "running")
      ? liveSlurmStates(statuses)
      : undefined;
  for (const s of statuses) {
    const p = s.status === "done" ? undefined : await readProgress(runDir(workspace, s.id));
    rows.push({
      id: s.id,
      status: s.status,
      model: s.modelName,
      tokens: s.tokens,
      mixture: s.mixture.label,
      generator: s.mixture.generator,
      seed: s.seed,
      progress: s.status === "done" ? 1 : Math.min(1, (p?.tokens ?? 0) / s.tokens),
      loss: s.final?.loss ?? p?.loss,
      attempts: s.attempts,
      error: s.status === "done" ? undefined : s.error,
      job: s.slurm?.jobId,
      jobState: s.slurm
        ? s.status === "running"
          ? (live?.get(s.slurm.jobId) ?? s.slurm.state)
          : s.slurm.state
        : undefined,
    });
  }
  return rows;
}

/** A plain-text table of the grid plus a one-line count per state. */
export function formatStatusTable(rows: StatusRow[]): string {
  const slurm = rows.some((r) => r.job !== undefined);
  const head = [
    "run",
    "model",
    "D",
    "mixture",
    "gen",
    "seed",
    "status",
    "progress",
    "loss",
    "tries",
    ...(slurm ? ["job", "job state"] : []),
    "error",
  ];
  const body = rows.map((r) => [
    r.id,
    r.model,
    countLabel(r.tokens),
    r.mixture,
    r.generator || "-",
    String(r.seed),
    r.status,
    `${(100 * r.progress).toFixed(0)}%`,
    r.loss === undefined ? "-" : fmtNum(r.loss),
    String(r.attempts),
    ...(slurm ? [r.job ?? "-", r.jobState ?? "-"] : []),
    r.error ? r.error.split("\n")[0].slice(0, 60) : "",
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]))
      .join("  ")
      .trimEnd();
  const counts: Record<string, number> = { done: 0, running: 0, pending: 0, failed: 0 };
  for (const r of rows) counts[r.status]++;
  const total = `${rows.length} runs: ${counts.done} done, ${counts.running} running, ${counts.pending} pending, ${counts.failed} failed`;
  return [line(head), ...body.map(line), total].join("\n");
}
