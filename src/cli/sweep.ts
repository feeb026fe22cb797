import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { generatorName, parseGeneratorSpec } from "../generate/spec.js";
import { countLabel } from "../mix/count.js";
import { loadMixTokenizer } from "../mix/tokenizer.js";
import { loadStudy, studyGenerators, studySweepSpec } from "../study/run.js";
import { planSweep } from "../sweep/plan.js";
import { listStatuses } from "../sweep/registry.js";
import { resultRows, rowsToCsv } from "../sweep/results.js";
import { runSweep } from "../sweep/scheduler.js";
import { type LoadedSpec, loadSweepSpec, wsPath } from "../sweep/spec.js";
import { formatStatusTable, sweepStatus } from "../sweep/status.js";
import { SynthmixError } from "../util/errors.js";
import { type Command, INTERRUPTED_EXIT_CODE, positiveInt, withInterrupt } from "./options.js";

/**
 * A grid file, or a study config: then the sweep is exactly the one `synthmix study run` would run
 * (generators, natural corpus and test corpora filled in from the study).
 */
function loadSpec(path: string): LoadedSpec {
  let top: unknown;
  try {
    top = parse(readFileSync(path, "utf8"));
  } catch {
    top = undefined; // loadSweepSpec reports read and syntax errors with file and line
  }
  if (top && typeof top === "object" && "sweep" in top && !("grid" in top) && !("runs" in top)) {
    const study = loadStudy(path);
    const names = studyGenerators(study).map((g) => generatorName(parseGeneratorSpec(g)));
    return { spec: studySweepSpec(study, names), workspace: study.workspace, file: path };
  }
  return loadSweepSpec(path);
}

/** `synthmix sweep ...` commands: thin wrappers over src/sweep/. */
export function register(program: Command): void {
  const sweep = program.command("sweep").description("Run the training grid, show its status and results");
  sweep
    .command("run <spec>")
    .description(
      "Build mixtures and train every run of a grid (grid.yaml, or study.yaml with a sweep: section); resumable",
    )
    .option("--cores <n>", "cores to fill (overrides scheduler.cores)", positiveInt("cores"))
    .option("--dry-run", "print the planned runs and exit")
    .action(async (specPath: string, o) => {
      const { spec, workspace } = loadSpec(specPath);
      if (o.cores !== undefined) spec.scheduler.cores = o.cores;
      if (o.dryRun) {
        const tok = await loadMixTokenizer(wsPath(workspace, spec.tokenizer));
        for (const r of planSweep(spec, workspace, tok.vocabSize)) {
          console.log(
            `${r.id}\t${r.modelName}\tN=${r.nonEmbeddingParams}\tD=${countLabel(r.tokens)}\t${r.mixture.id}\tthreads=${r.threads}\t${r.backend}`,
          );
        }
        return;
      }
      const message = "sweep: stopping (runs resume from their checkpoints on the next `sweep run`)";
      await withInterrupt(
        async (signal) => {
          const summary = await runSweep({ spec, workspace, signal });
          for (const f of summary.failed) console.error(`failed ${f.id}: ${f.error}`);
          if (summary.failed.length > 0) {
            throw new SynthmixError(
              "SWEEP_FAILED",
              `${summary.failed.length} of ${summary.planned} runs failed`,
              {
                hint: "see the errors above and runs/<id>/train.log; `sweep run` again retries them",
              },
            );
          }
          if (summary.interrupted) process.exitCode = INTERRUPTED_EXIT_CODE;
        },
        { message },
      );
    });
  sweep
    .command("status <workspace>")
    .description("Table of the grid with each run's state and progress")
    .option("--json", "print JSON instead of a table")
    .action(async (workspace: string, o) => {
      const rows = await sweepStatus(workspace);
      console.log(o.json ? JSON.stringify(rows, null, 2) : formatStatusTable(rows));
    });
  sweep
    .command("results <workspace>")
    .description('One row per finished run and test domain (plus domain "all")')
    .option("--format <fmt>", "csv or json", "csv")
    .action((workspace: string, o) => {
      const rows = resultRows(listStatuses(workspace));
      if (o.format === "json") console.log(JSON.stringify({ rows }, null, 2));
      else if (o.format === "csv") console.log(rowsToCsv(rows).trimEnd());
      else throw new SynthmixError("CLI", `--format ${o.format}: expected csv or json`);
    });
}
