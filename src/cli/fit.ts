import { resolve } from "node:path";
import {
  EXPORT_FORMATS,
  exportFitResults,
  FIT_DEFAULTS,
  FitStageSchema,
  formatFitSummary,
  formatPredictions,
  formatWarnings,
  type RunFitResult,
  runFit,
} from "../fit/index.js";
import type { FitFailure } from "../fit/results.js";
import { SynthmixError } from "../util/errors.js";
import { Progress } from "../util/progress.js";
import { type Command, nonNegativeInt, oneOf, positive, positiveInt } from "./options.js";

interface FitFlags {
  form: string;
  bootstrap: number;
  seed: number;
  domain: string;
  delta: number;
  quality: boolean;
  workers: number;
}

/**
 * The flags (already numbers, through the shared parsers) checked by the stage schema, so the CLI and
 * the library share every check.
 */
function stageOptions(o: FitFlags) {
  const r = FitStageSchema.safeParse({
    form: o.form,
    domain: o.domain,
    bootstrap: o.bootstrap,
    seed: o.seed,
    huberDelta: o.delta,
    quality: o.quality,
    workers: o.workers,
  });
  if (!r.success) {
    const i = r.error.issues[0];
    throw new SynthmixError("BAD_OPTION", `--${String(i.path[0])}: ${i.message}`);
  }
  return r.data;
}

function failureLabel(f: FitFailure): string {
  const { error, ...where } = f;
  return `${JSON.stringify(where)}: ${error}`;
}

/** The tables, warnings and predictions of a fit, as `synthmix fit` prints them without --json. */
function formatFitRun(r: RunFitResult): string {
  const parts = [formatFitSummary(r)];
  const warn = formatWarnings(r);
  if (warn) parts.push(warn);
  if (r.predictions) parts.push(formatPredictions(r.predictions));
  parts.push(`wrote ${r.out}/{fits,speedups,best-ratio}.json`);
  return `${parts.join("\n\n")}\n`;
}

/** `synthmix fit ...` commands: thin wrappers over src/fit/. */
export function register(program: Command): void {
  const d = FIT_DEFAULTS;
  const fit = program
    .command("fit")
    .description("Fit scaling laws (Huber in log space, grid + L-BFGS, bootstrap CIs); write results/*.json")
    .option("--results <ws>", "workspace whose results/runs.json to fit")
    .option("--points <file>", "CSV (with header) or JSONL points instead of a workspace")
    .option("--predict <file>", "CSV/JSONL of N, D (and group) to predict with 95% prediction intervals")
    .option("--form <form>", "data | model | joint (or a registered custom form)", d.form)
    .option(
      "--bootstrap <n>",
      "bootstrap refits for intervals (0: none)",
      nonNegativeInt("bootstrap"),
      d.bootstrap,
    )
    .option("--seed <n>", "bootstrap seed", nonNegativeInt("seed"), d.seed)
    .option("--domain <name>", 'test domain to fit ("all" = mean over domains)', d.domain)
    .option("--delta <x>", "Huber delta on log-residuals", positive("delta"), d.huberDelta)
    .option(
      "--out <dir>",
      "where to write fits.json etc. (default: <ws>/results, or ./results with --points)",
    )
    .option("--json", "print the fits as JSON instead of tables")
    .option("--no-quality", "skip leave-one-out and hold-out refits")
    .option(
      "--workers <n>",
      "worker threads for grid screening + bootstrap (pays off from ~100 points)",
      positiveInt("workers"),
      d.workers,
    )
    .option("--n-col <name>", "points: model-size column (default N, else nonEmbeddingParams)")
    .option("--d-col <name>", "points: token column (default D, else tokens)")
    .option("--loss-col <name>", "points: loss column", "loss")
    .option("--group-col <name>", 'points: mixture column ("natural" = baseline)', "group")
    .action(async (o) => {
      const progress = new Progress("fit", { unit: "fits", mode: o.json ? "silent" : undefined });
      const r = await runFit({
        workspace: o.results,
        points: o.points,
        predict: o.predict,
        columns: { n: o.nCol, d: o.dCol, loss: o.lossCol, group: o.groupCol },
        out: o.out,
        options: stageOptions(o),
        progress,
      });
      progress.finish();
      // A group that could not be fitted is lost work: say which, and exit non-zero (the rest is written).
      for (const f of r.fits.failures) process.stderr.write(`synthmix: fit failed for ${failureLabel(f)}\n`);
      if (r.fits.failures.length > 0) process.exitCode = 1;
      const { out: _out, ...doc } = r;
      process.stdout.write(o.json ? `${JSON.stringify(doc, null, 2)}\n` : formatFitRun(r));
    });

  fit
    .command("export")
    .description("Write the fits, speed-ups and best ratios (results/*.json) as flat CSV or Parquet tables")
    .option("--workspace <ws>", "workspace whose results/ to export")
    .option("--from <dir>", "a results folder instead (e.g. the --out of fit --points)")
    .option("--format <format>", "csv | parquet", oneOf("format", EXPORT_FORMATS), "csv" as const)
    .option(
      "--out <dir>",
      "folder for fits.<ext>, speedups.<ext>, best-ratio.<ext> (default: the results folder)",
    )
    .option("--json", "print the written paths as JSON")
    .action((o) => {
      if (!o.workspace === !o.from)
        throw new SynthmixError("BAD_OPTION", "give exactly one of --workspace <ws> or --from <results dir>");
      const dir = resolve(o.from ?? `${o.workspace}/results`);
      const files = exportFitResults(dir, { format: o.format, out: resolve(o.out ?? dir) });
      if (o.json) process.stdout.write(`${JSON.stringify({ format: o.format, files }, null, 2)}\n`);
      else for (const f of files) process.stdout.write(`wrote ${f}\n`);
    });
}
