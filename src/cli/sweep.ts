import { existsSync, readFileSync, statSync } from "node:fs";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { parse } from "yaml";
import { generatorName, parseGeneratorSpec } from "../generate/spec.js";
import { countLabel } from "../mix/count.js";
import { loadMixTokenizer } from "../mix/tokenizer.js";
import { loadStudy, studyGenerators, studySweepSpec } from "../study/run.js";
import { planSweep } from "../sweep/plan.js";
import { acquireSweepLock, processAlive } from "../sweep/registry.js";
import { rowsToCsv, workspaceResultRows, writeResults } from "../sweep/results.js";
import { runSweep } from "../sweep/scheduler.js";
import { cancelSlurm, collectSlurm, formatSlurmPlan, planSlurm } from "../sweep/slurm.js";
import { type LoadedSpec, loadSweepSpec, wsPath } from "../sweep/spec.js";
import { formatStatusTable, sweepStatus } from "../sweep/status.js";
import { SynthmixError } from "../util/errors.js";
import { liveHolder, readLockHolder } from "../util/lock.js";
import { type Command, INTERRUPTED_EXIT_CODE, oneOf, positiveInt, withInterrupt } from "./options.js";

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

/** A workspace that does not exist, or holds no sweep, is an error (not an empty table, exit 0). */
function requireWorkspace(workspace: string): void {
  if (!existsSync(workspace) || !statSync(workspace).isDirectory()) {
    throw new SynthmixError("NO_WORKSPACE", `workspace ${workspace} does not exist`, {
      hint: "pass the workspace folder of a sweep (the one holding runs/)",
    });
  }
  if (!existsSync(join(workspace, "runs"))) {
    throw new SynthmixError("NO_WORKSPACE", `${workspace} holds no sweep (no runs/ folder)`, {
      hint: "run `synthmix sweep run <grid.yaml>` first, or pass the workspace it wrote",
    });
  }
}

/** `sweep cancel` first stops a live `sweep run` (SIGTERM: it detaches), so it cannot resubmit. */
async function stopSweepProcess(workspace: string): Promise<void> {
  const lock = join(workspace, "runs", ".sweep.lock");
  const holder = readLockHolder(lock);
  if (!holder) return;
  if (holder.host !== hostname()) {
    // A sweep on another host of the shared filesystem: it cannot be signalled from here.
    const live = liveHolder(lock, holder);
    if (!live) return;
    throw new SynthmixError("SWEEP_LOCKED", `sweep run (${live}) is running on another host`, {
      hint: `stop it there (kill ${holder.pid} on ${holder.host}), then rerun sweep cancel`,
    });
  }
  const pid = holder.pid;
  if (!pid || pid === process.pid || !processAlive(pid)) return;
  process.kill(pid, "SIGTERM");
  for (let i = 0; i < 300 && processAlive(pid); i++) await new Promise((r) => setTimeout(r, 100));
  if (processAlive(pid)) {
    throw new SynthmixError("SWEEP_LOCKED", `sweep run (pid ${pid}) did not stop within 30 s`, {
      hint: `stop it (kill ${pid}) and rerun sweep cancel`,
    });
  }
}

/**
 * `--json`: the command's result as exactly one JSON document on stdout, nothing else there (progress
 * and logs go to stderr); exit codes as without it. (A local helper until src/cli/options.ts has a
 * shared one.)
 */
function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** `sweep run --dry-run`: the planned runs and, on Slurm, jobs and hours per resource class. */
async function dryRun(spec: LoadedSpec["spec"], workspace: string, json: boolean): Promise<void> {
  const tok = await loadMixTokenizer(wsPath(workspace, spec.tokenizer));
  const runs = planSweep(spec, workspace, tok.vocabSize);
  const slurm = spec.scheduler.executor === "slurm" ? planSlurm(spec, runs) : undefined;
  const maxConcurrent = spec.scheduler.slurm?.maxConcurrent;
  if (json) {
    const rows = runs.map((r) => ({
      id: r.id,
      model: r.modelName,
      nonEmbeddingParams: r.nonEmbeddingParams,
      tokens: r.tokens,
      mixture: r.mixture.id,
      threads: r.threads,
      backend: r.backend,
      flops: r.flops,
    }));
    printJson({ runs: rows, ...(slurm && { slurm: { classes: slurm, maxConcurrent } }) });
    return;
  }
  for (const r of runs) {
    console.log(
      `${r.id}\t${r.modelName}\tN=${r.nonEmbeddingParams}\tD=${countLabel(r.tokens)}\t${r.mixture.id}\tthreads=${r.threads}\t${r.backend}`,
    );
  }
  if (slurm) console.log(formatSlurmPlan(slurm, maxConcurrent));
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
    .option("--dry-run", "print the planned runs (and, on Slurm, jobs and hours per resource class) and exit")
    .option(
      "--executor <name>",
      "local or slurm (overrides scheduler.executor)",
      oneOf("executor", ["local", "slurm"] as const),
    )
    .option("--submit-only", "slurm: submit the job arrays and return; then `sweep status` / `sweep collect`")
    .option("--json", "print the result (or with --dry-run the plan) as one JSON document on stdout")
    .action(async (specPath: string, o) => {
      const { spec, workspace } = loadSpec(specPath);
      if (o.cores !== undefined) spec.scheduler.cores = o.cores;
      if (o.executor) spec.scheduler.executor = o.executor;
      if (o.submitOnly && spec.scheduler.executor !== "slurm") {
        throw new SynthmixError("CLI", "--submit-only needs the slurm executor", {
          hint: "set scheduler.executor: slurm (and scheduler.slurm) or pass --executor slurm",
        });
      }
      if (o.dryRun) {
        await dryRun(spec, workspace, Boolean(o.json));
        return;
      }
      const message = "sweep: stopping (runs resume from their checkpoints on the next `sweep run`)";
      await withInterrupt(
        async (signal) => {
          const summary = await runSweep({ spec, workspace, signal, submitOnly: o.submitOnly });
          if (o.json) printJson(summary);
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
      requireWorkspace(workspace);
      const rows = await sweepStatus(workspace, { live: true });
      console.log(o.json ? JSON.stringify(rows, null, 2) : formatStatusTable(rows));
    });
  sweep
    .command("collect <workspace>")
    .description(
      "Slurm: record the runs whose jobs have ended (done or failed) and rewrite results/runs.json",
    )
    .action(async (workspace: string) => {
      requireWorkspace(workspace);
      const release = acquireSweepLock(resolve(workspace));
      try {
        const r = await collectSlurm(resolve(workspace));
        writeResults(resolve(workspace));
        for (const f of r.failed) console.error(`failed ${f.id}: ${f.error}`);
        console.log(
          `collected: ${r.done.length} done, ${r.failed.length} failed, ${r.running.length} still on slurm`,
        );
        if (r.failed.length > 0) {
          throw new SynthmixError(
            "SWEEP_FAILED",
            `${r.failed.length} slurm task(s) ended without a final record`,
            {
              hint: "see runs/<id>/train.log; `sweep run` resubmits them (they resume from their checkpoints)",
            },
          );
        }
      } finally {
        release();
      }
    });
  sweep
    .command("cancel <workspace>")
    .description("Stop a running `sweep run` and cancel its queued or running Slurm jobs (runs resume later)")
    .action(async (workspace: string) => {
      requireWorkspace(workspace);
      const ws = resolve(workspace);
      await stopSweepProcess(ws);
      const release = acquireSweepLock(ws);
      try {
        const jobs = cancelSlurm(ws);
        console.log(
          jobs.length === 0
            ? "no slurm jobs to cancel"
            : `cancelled ${jobs.length} slurm job(s): ${jobs.join(" ")}`,
        );
      } finally {
        release();
      }
    });
  sweep
    .command("results <workspace>")
    .description('One row per finished run and test domain (plus domain "all")')
    .option("--format <fmt>", "csv or json", "csv")
    .action((workspace: string, o) => {
      requireWorkspace(workspace);
      const rows = workspaceResultRows(workspace);
      if (o.format === "json") console.log(JSON.stringify({ rows }, null, 2));
      else if (o.format === "csv") console.log(rowsToCsv(rows).trimEnd());
      else throw new SynthmixError("CLI", `--format ${o.format}: expected csv or json`);
    });
}
