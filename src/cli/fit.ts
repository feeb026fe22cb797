import { join, resolve } from "node:path";
import { formatFitSummary, formatWarnings } from "../fit/format.js";
import {
  FIT_DEFAULTS,
  FitStageSchema,
  fitRows,
  fitRowsParallel,
  predictRows,
  readPointRows,
  readRunRows,
  resolveForm,
  writeFitResults,
} from "../fit/index.js";
import type { FitFailure } from "../fit/results.js";
import { SynthmixError } from "../util/errors.js";
import { Progress } from "../util/progress.js";
import type { Command } from "./options.js";

interface FitCliOptions {
  results?: string;
  points?: string;
  predict?: string;
  form: string;
  bootstrap: string;
  seed: string;
  domain: string;
  delta: string;
  out?: string;
  json?: boolean;
  quality: boolean;
  nCol?: string;
  dCol?: string;
  lossCol: string;
  groupCol: string;
  workers: string;
}

/** Parse the numeric flags through the stage schema, so the CLI and the library share every check. */
function stageOptions(o: FitCliOptions) {
  const r = FitStageSchema.safeParse({
    form: o.form,
    domain: o.domain,
    bootstrap: Number(o.bootstrap),
    seed: Number(o.seed),
    huberDelta: Number(o.delta),
    quality: o.quality,
    workers: Number(o.workers),
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

/** `synthmix fit ...` commands: thin wrappers over src/fit/. */
export function register(program: Command): void {
  const d = FIT_DEFAULTS;
  program
    .command("fit")
    .description("Fit scaling laws (Huber in log space, grid + L-BFGS, bootstrap CIs); write results/*.json")
    .option("--results <ws>", "workspace whose results/runs.json to fit")
    .option("--points <file>", "CSV (with header) or JSONL points instead of a workspace")
    .option("--predict <file>", "CSV/JSONL of N, D (and group) to predict with 95% prediction intervals")
    .option("--form <form>", "data | model | joint (or a registered custom form)", d.form)
    .option("--bootstrap <n>", "bootstrap refits for intervals (0: none)", String(d.bootstrap))
    .option("--seed <n>", "bootstrap seed", String(d.seed))
    .option("--domain <name>", 'test domain to fit ("all" = mean over domains)', d.domain)
    .option("--delta <x>", "Huber delta on log-residuals", String(d.huberDelta))
    .option(
      "--out <dir>",
      "where to write fits.json etc. (default: <ws>/results, or ./results with --points)",
    )
    .option("--json", "print the fits as JSON instead of tables")
    .option("--no-quality", "skip leave-one-out and hold-out refits")
    .option(
      "--workers <n>",
      "worker threads for grid screening + bootstrap (pays off from ~100 points)",
      String(d.workers),
    )
    .option("--n-col <name>", "points: model-size column (default N, else nonEmbeddingParams)")
    .option("--d-col <name>", "points: token column (default D, else tokens)")
    .option("--loss-col <name>", "points: loss column", "loss")
    .option("--group-col <name>", 'points: mixture column ("natural" = baseline)', "group")
    .action(async (o: FitCliOptions) => {
      if (!o.results === !o.points) {
        throw new SynthmixError("BAD_OPTION", "give exactly one of --results <workspace> or --points <file>");
      }
      const opts = stageOptions(o);
      const uses = resolveForm(opts.form).uses;
      const cols = { n: o.nCol, d: o.dCol, loss: o.lossCol, group: o.groupCol };
      const rows = o.results ? readRunRows(o.results) : readPointRows(o.points!, { ...cols, need: uses });
      const progress = new Progress("fit", { unit: "fits", mode: o.json ? "silent" : undefined });
      const { workers, ...fitOpts } = opts;
      const res =
        workers > 1
          ? await fitRowsParallel(rows, { ...fitOpts, workers, progress })
          : fitRows(rows, { ...fitOpts, progress });
      progress.finish();
      const predictions = o.predict
        ? predictRows(res.fits, readPointRows(o.predict, { ...cols, need: { ...uses, loss: false } }))
        : undefined;
      const out = resolve(o.out ?? (o.results ? join(o.results, "results") : "results"));
      writeFitResults(out, res);
      // A group that could not be fitted is lost work: say which, and exit non-zero (the rest is written).
      if (res.fits.failures.length > 0) {
        for (const f of res.fits.failures)
          process.stderr.write(`synthmix: fit failed for ${failureLabel(f)}\n`);
        process.exitCode = 1;
      }
      if (o.json) {
        process.stdout.write(`${JSON.stringify(predictions ? { ...res, predictions } : res, null, 2)}\n`);
        return;
      }
      process.stdout.write(`${formatFitSummary(res)}\n`);
      const warn = formatWarnings(res);
      if (warn) process.stdout.write(`\n${warn}\n`);
      if (predictions) {
        process.stdout.write("\npredictions (95% prediction intervals):\n");
        for (const p of predictions)
          process.stdout.write(
            `  ${p.key}  N=${p.N ?? "-"}  D=${p.D ?? "-"}  loss ${p.loss.toPrecision(5)} [${p.lo?.toPrecision(4) ?? "-"}, ${p.hi?.toPrecision(4) ?? "-"}]${p.extrapolated ? "  (extrapolated)" : ""}${p.warnings.length ? `  (law: ${p.warnings.join(", ")})` : ""}\n`,
          );
      }
      process.stdout.write(`\nwrote ${out}/{fits,speedups,best-ratio}.json\n`);
    });
}
