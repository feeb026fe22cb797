import { join, resolve } from "node:path";
import { formatFitSummary } from "../fit/format.js";
import { fitRows, fitRowsParallel, readRunRows, writeFitResults } from "../fit/index.js";
import { readPointRows } from "../fit/points.js";
import { SynthmixError } from "../util/errors.js";
import { Progress } from "../util/progress.js";
import { type Command, parseNumber } from "./options.js";

interface FitCliOptions {
  results?: string;
  points?: string;
  form: string;
  bootstrap: string;
  seed: string;
  domain: string;
  delta: string;
  out?: string;
  json?: boolean;
  quality: boolean;
  nCol: string;
  dCol: string;
  lossCol: string;
  groupCol: string;
  workers: string;
}

const num = (name: string, v: string, integer = false) =>
  parseNumber(name, v, integer ? { integer: true, min: 0 } : {});

/** `synthmix fit ...` commands: thin wrappers over src/fit/. */
export function register(program: Command): void {
  program
    .command("fit")
    .description("Fit scaling laws (Huber in log space, grid + L-BFGS, bootstrap CIs); write results/*.json")
    .option("--results <ws>", "workspace whose results/runs.json to fit")
    .option("--points <file>", "CSV (with header) or JSONL points instead of a workspace")
    .option("--form <form>", "data | model | joint (or a registered custom form)", "joint")
    .option("--bootstrap <n>", "bootstrap refits for intervals (0: none)", "1000")
    .option("--seed <n>", "bootstrap seed", "0")
    .option("--domain <name>", 'test domain to fit ("all" = mean over domains)', "all")
    .option("--delta <x>", "Huber delta on log-residuals", "1e-3")
    .option(
      "--out <dir>",
      "where to write fits.json etc. (default: <ws>/results, or ./results with --points)",
    )
    .option("--json", "print the fits as JSON instead of tables")
    .option("--no-quality", "skip leave-one-out and hold-out refits")
    .option("--workers <n>", "worker threads for grid screening + bootstrap (pays off from ~100 points)", "1")
    .option("--n-col <name>", "points: model-size column", "N")
    .option("--d-col <name>", "points: token column", "D")
    .option("--loss-col <name>", "points: loss column", "loss")
    .option("--group-col <name>", 'points: mixture column ("natural" = baseline)', "group")
    .action(async (o: FitCliOptions) => {
      if (!o.results === !o.points) {
        throw new SynthmixError("BAD_OPTION", "give exactly one of --results <workspace> or --points <file>");
      }
      const rows = o.results
        ? readRunRows(o.results)
        : readPointRows(o.points!, { n: o.nCol, d: o.dCol, loss: o.lossCol, group: o.groupCol });
      const progress = new Progress("fit", { unit: "fits", mode: o.json ? "silent" : undefined });
      const workers = num("workers", o.workers, true);
      const fitOpts = {
        form: o.form,
        bootstrap: num("bootstrap", o.bootstrap, true),
        seed: num("seed", o.seed, true),
        domain: o.domain,
        huberDelta: num("delta", o.delta),
        quality: o.quality,
        progress,
      };
      const res = workers > 1 ? await fitRowsParallel(rows, { ...fitOpts, workers }) : fitRows(rows, fitOpts);
      progress.finish();
      const out = resolve(o.out ?? (o.results ? join(o.results, "results") : "results"));
      writeFitResults(out, res);
      if (o.json) process.stdout.write(`${JSON.stringify(res, null, 2)}\n`);
      else process.stdout.write(`${formatFitSummary(res)}\n\nwrote ${out}/{fits,speedups,best-ratio}.json\n`);
    });
}
