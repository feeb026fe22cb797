import { join } from "node:path";
import { analyzeWorkspace, formatUnigramSummary } from "../analyze/index.js";
import { type Command, nonNegativeInt, positive, positiveInt } from "./options.js";

/** `synthmix analyze ...` commands: thin wrappers over src/analyze/. */
export function register(program: Command): void {
  const analyze = program.command("analyze").description("Analyze training data against the test sets");
  analyze
    .command("unigram <workspace>")
    .description(
      "Token unigram KL/JS, coverage and blind spots of every source/mixture vs every test domain, at an equal token count, with a noise floor and the blind-spot split of trained runs' per-token losses",
    )
    .option("--k <k>", "add-k smoothing over the full vocabulary", positive("k"), 0.5)
    .option("--top <n>", "blind spots kept per comparison", nonNegativeInt("top"), 50)
    .option(
      "--seed <n>",
      "seed of the equal-size subsampling and the noise-floor split",
      nonNegativeInt("seed"),
      0,
    )
    .option(
      "--runs <ids>",
      'comma-separated run ids whose per-token losses to split by blind spots; "largest" = the largest run per mixture',
      "largest",
    )
    .option("--no-runs", "skip the per-token loss split")
    .option(
      "--eval-tokens <n>",
      "test tokens per domain scored for the loss split",
      positiveInt("eval-tokens"),
      32768,
    )
    .option("--json", "print results/unigram.json instead of a table")
    .action(async (ws, o) => {
      const runs =
        o.runs === false ? undefined : o.runs === "largest" ? "largest" : o.runs.split(",").filter(Boolean);
      const res = await analyzeWorkspace(ws, {
        k: o.k,
        topK: o.top,
        seed: o.seed,
        runs,
        evalTokens: o.evalTokens,
      });
      if (o.json) process.stdout.write(`${JSON.stringify(res, null, 2)}\n`);
      else
        process.stdout.write(
          `${formatUnigramSummary(res)}\n\nwrote ${join(ws, "results", "unigram.json")}\n`,
        );
    });
}
