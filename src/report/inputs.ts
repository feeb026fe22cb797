import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { readUnigramFile, type UnigramFile } from "../analyze/results.js";
import {
  type BestRatioFile,
  type FitsFile,
  readBestRatioFile,
  readFitsFile,
  readSpeedupsFile,
  type SpeedupsFile,
} from "../fit/results.js";
import { type RunResultRow, type RunResults, readRunResults, resultsPath } from "../sweep/results.js";
import { MetricRecordSchema } from "../train/external.js";
import { SynthmixError } from "../util/errors.js";
import type { GeneratorSample } from "./samples.js";

/** One run's loss curve from its metrics.jsonl: training loss and the mean test loss per evaluation. */
export interface RunCurve {
  runId: string;
  mixture: string;
  N: number;
  D: number;
  points: { tokens: number; loss: number; kind: "train" | "test" }[];
}

/** Everything the report reads: each file is optional; a missing one skips the charts that need it. */
export interface ReportInputs {
  curves?: RunCurve[];
  workspace: string;
  runs?: RunResultRow[];
  fits?: FitsFile;
  speedups?: SpeedupsFile;
  bestRatio?: BestRatioFile;
  unigram?: UnigramFile;
  /** A few generated documents next to their sources (read by writeReport from the synthetic folders). */
  samples?: GeneratorSample[];
  /** Result files that were absent, by name (e.g. "fits.json"), with the command that writes them. */
  missing: { file: string; writtenBy: string }[];
}

const WRITERS: Record<string, string> = {
  "runs.json": "synthmix sweep run",
  "fits.json": "synthmix fit",
  "speedups.json": "synthmix fit",
  "best-ratio.json": "synthmix fit",
  "unigram.json": "synthmix analyze unigram",
};

/** Read `<ws>/results/*.json`. A file that exists but is not valid JSON of the expected shape is an error. */
export function readInputs(workspace: string): ReportInputs {
  const dir = join(workspace, "results");
  if (!existsSync(dir)) {
    throw new SynthmixError("REPORT_NO_RESULTS", `${dir} does not exist: nothing to report`, {
      hint: "run the sweep and fits first (`synthmix study run study.yaml` does every stage)",
    });
  }
  const missing: ReportInputs["missing"] = [];
  // Every artifact is read through its writing stage's schema (one reader per file).
  const artifact = <T>(file: string, read: () => T | undefined): T | undefined => {
    const v = read();
    if (v === undefined) missing.push({ file, writtenBy: WRITERS[file] ?? "?" });
    return v;
  };
  const runsFile = artifact<RunResults>("runs.json", () =>
    existsSync(resultsPath(workspace)) ? readRunResults(workspace) : undefined,
  );
  return {
    workspace,
    runs: runsFile?.rows.filter((r) => Number.isFinite(r.loss) && r.loss > 0),
    fits: artifact<FitsFile>("fits.json", () => readFitsFile(dir, false)),
    speedups: artifact<SpeedupsFile>("speedups.json", () => readSpeedupsFile(dir, false)),
    bestRatio: artifact<BestRatioFile>("best-ratio.json", () => readBestRatioFile(dir, false)),
    unigram: artifact<UnigramFile>("unigram.json", () => readUnigramFile(workspace, false)),
    curves: runsFile ? readCurves(workspace, runsFile.rows) : undefined,
    missing,
  };
}

/**
 * Loss curves of the runs in runs.json from `<ws>/runs/<id>/metrics.jsonl` (the trainer's contract,
 * MetricRecordSchema). Lines that do not parse are skipped (a curve is a picture, the numbers come from
 * runs.json); training loss is thinned to at most 200 points per run.
 */
export function readCurves(workspace: string, rows: RunResultRow[]): RunCurve[] {
  const out: RunCurve[] = [];
  for (const r of rows) {
    if (r.domain !== "all") continue;
    const path = join(workspace, "runs", r.runId, "metrics.jsonl");
    if (!existsSync(path)) continue;
    const train: RunCurve["points"] = [];
    const evals = new Map<number, { tokens: number; sum: number; n: number }>();
    for (const line of readFileSync(path, "utf8").split("\n")) {
      if (!line.trim()) continue;
      let v: unknown;
      try {
        v = JSON.parse(line);
      } catch {
        continue;
      }
      const m = MetricRecordSchema.safeParse(v);
      if (!m.success) continue;
      if (m.data.type === "train") train.push({ tokens: m.data.tokens, loss: m.data.loss, kind: "train" });
      else if (m.data.type === "eval") {
        const e = evals.get(m.data.step) ?? { tokens: m.data.tokens, sum: 0, n: 0 };
        e.sum += m.data.loss;
        e.n++;
        evals.set(m.data.step, e);
      }
    }
    const every = Math.max(1, Math.ceil(train.length / 200));
    const points = [
      ...train.filter((_, i) => i % every === 0 || i === train.length - 1),
      ...[...evals.values()].map((e) => ({ tokens: e.tokens, loss: e.sum / e.n, kind: "test" as const })),
    ].filter((p) => p.tokens > 0 && Number.isFinite(p.loss));
    out.push({ runId: r.runId, mixture: r.mixture, N: r.nonEmbeddingParams, D: r.tokens, points });
  }
  return out;
}
