/**
 * `synthmix fit` as a library call: read the points (a workspace's results/runs.json or a CSV/JSONL
 * file), fit, optionally predict, write results/{fits,speedups,best-ratio}.json. The CLI only parses
 * flags and prints.
 */
import { join, resolve } from "node:path";
import { SynthmixError } from "../util/errors.js";
import type { Progress } from "../util/progress.js";
import { resolveForm } from "./fit.js";
import { readRunRows } from "./groups.js";
import type { FitStageOptions } from "./options.js";
import { type PointColumns, readPointRows } from "./points.js";
import { predictRows } from "./predict.js";
import { type FitRowsResult, fitRows, fitRowsParallel, writeFitResults } from "./workspace.js";

export interface RunFitInput {
  /** Workspace whose results/runs.json to fit (exactly one of `workspace` and `points`). */
  workspace?: string;
  /** CSV (header line) or JSONL of points instead of a workspace. */
  points?: string;
  /** Column names of `points` and `predict` files. */
  columns?: Omit<PointColumns, "need">;
  /** CSV/JSONL of N, D (and group columns) to predict with 95% prediction intervals. */
  predict?: string;
  /** Where to write the results (default: <workspace>/results, or ./results with `points`). */
  out?: string;
  options: FitStageOptions;
  progress?: Progress;
}

export type FitPredictions = ReturnType<typeof predictRows>;

export interface RunFitResult extends FitRowsResult {
  predictions?: FitPredictions;
  /** The folder the three files were written to. */
  out: string;
}

export async function runFit(input: RunFitInput): Promise<RunFitResult> {
  if (!input.workspace === !input.points) {
    throw new SynthmixError("BAD_OPTION", "give exactly one of --results <workspace> or --points <file>");
  }
  const uses = resolveForm(input.options.form).uses;
  const cols = input.columns ?? {};
  const rows = input.workspace
    ? readRunRows(input.workspace)
    : readPointRows(input.points as string, { ...cols, need: uses });
  const { workers, ...fitOpts } = input.options;
  const res =
    workers > 1
      ? await fitRowsParallel(rows, { ...fitOpts, workers, progress: input.progress })
      : fitRows(rows, { ...fitOpts, progress: input.progress });
  const predictions = input.predict
    ? predictRows(res.fits, readPointRows(input.predict, { ...cols, need: { ...uses, loss: false } }))
    : undefined;
  const out = resolve(input.out ?? (input.workspace ? join(input.workspace, "results") : "results"));
  writeFitResults(out, res);
  return { ...res, ...(predictions ? { predictions } : {}), out };
}
