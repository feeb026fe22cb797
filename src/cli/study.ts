import { resolve } from "node:path";
import { stringify } from "yaml";
import { StudyConfigSchema } from "../study/config.js";
import { demoConfig, QUICK_NOTE } from "../study/demo.js";
import { formatPlan, planStudy } from "../study/plan.js";
import { type LoadedStudy, loadStudy, runStudy, type StudyRunResult } from "../study/run.js";
import { formatStudyStatus, studyStatus } from "../study/status.js";
import { writeFileAtomic } from "../util/atomic.js";
import { fmtDuration } from "../util/progress.js";
import { type Command, withInterrupt } from "./options.js";

/** `synthmix study run|plan` and `synthmix demo`: thin wrappers over src/study/. */
export function register(program: Command): void {
  const study = program.command("study").description("Run a whole study from one config file");
  study
    .command("run <config>")
    .description(
      "corpus -> tokenizer -> generation -> mixtures -> sweep -> fits -> analysis -> report (resumable)",
    )
    .option("--workspace <dir>", "workspace folder (default: the config's `workspace`, else its folder)")
    .option(
      "--until <stage>",
      "stop after this stage (corpus, tokenizer, generatorModel, generate, sweep, fit, analyze)",
    )
    .option("--json", "print the result as one JSON document on stdout (progress stays on stderr)")
    .action(async (config: string, o: { workspace?: string; until?: string; json?: boolean }) => {
      const loaded = loadStudy(config, o.workspace);
      const r = await runWithSignals(loaded, o.until);
      if (o.json) printJson(r);
      else printResult(r);
      // The report covers only the runs that finished: say so with the exit code too.
      if (r.failedRuns.length) process.exitCode = 1;
    });
  study
    .command("plan <config>")
    .description(
      "print what a study will run (documents, requests, runs, tokens, FLOPs, time) before spending it",
    )
    .option("--workspace <dir>", "workspace folder")
    .option("--json", "print the plan as one JSON document")
    .action(async (config: string, o: { workspace?: string; json?: boolean }) => {
      const plan = await planStudy(loadStudy(config, o.workspace));
      if (o.json) printJson(plan);
      else console.log(formatPlan(plan));
    });
  study
    .command("status <config>")
    .description("which stages are complete for this config, the sweep's runs by state, the report")
    .option("--workspace <dir>", "workspace folder")
    .option("--json", "print the status as one JSON document")
    .action((config: string, o: { workspace?: string; json?: boolean }) => {
      const st = studyStatus(loadStudy(config, o.workspace));
      if (o.json) printJson(st);
      else console.log(formatStudyStatus(st));
    });

  program
    .command("demo")
    .description("Run the built-in demo study offline on the Brown corpus and print the report path")
    .option("--workspace <dir>", "workspace folder", "synthmix-demo")
    .option("--quick", "a smaller grid that finishes in a few minutes")
    .option("--plan", "only print the plan")
    .action(async (o: { workspace: string; quick?: boolean; plan?: boolean }) => {
      const workspace = resolve(o.workspace);
      const input = demoConfig(Boolean(o.quick));
      writeFileAtomic(resolve(workspace, "study.yaml"), stringify(input));
      const loaded: LoadedStudy = {
        config: StudyConfigSchema.parse(input),
        workspace,
        baseDir: workspace,
        file: resolve(workspace, "study.yaml"),
      };
      if (o.plan) {
        console.log(formatPlan(await planStudy(loaded)));
        return;
      }
      console.error(`synthmix demo: workspace ${workspace} (rerun to resume; delete it to start over)`);
      if (o.quick) console.error(QUICK_NOTE);
      const r = await runWithSignals(loaded);
      printResult(r);
      if (r.failedRuns.length) process.exitCode = 1;
      // Last, so it is what the reader sees: the quick grid's numbers are not findings.
      if (o.quick) console.log(`\n${QUICK_NOTE}`);
    });
}

/** Ctrl-C stops cleanly between steps (runs checkpoint); a second Ctrl-C exits at once. */
async function runWithSignals(loaded: LoadedStudy, until?: string): Promise<StudyRunResult> {
  return withInterrupt((signal) => runStudy(loaded, { signal, until: until as never }), {
    message: "interrupting: finishing the current step so the rerun can resume (Ctrl-C again to exit now)",
  });
}

/**
 * `--json`: the command's result as exactly one JSON document on stdout, nothing else there (progress
 * and logs go to stderr); exit codes as without it. (A local helper until src/cli/options.ts has a
 * shared one.)
 */
function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function printResult(r: StudyRunResult): void {
  console.log(`\nstudy finished in ${fmtDuration(r.elapsedSec)} — workspace ${r.workspace}`);
  if (r.failedRuns.length) {
    console.log(`${r.failedRuns.length} run(s) failed; see \`synthmix sweep status ${r.workspace}\``);
  }
  if (r.findings.length) {
    console.log("\nFindings:");
    for (const f of r.findings) console.log(`  - ${f}`);
  }
  if (r.reportHtml) console.log(`\nReport: ${r.reportHtml}`);
}
