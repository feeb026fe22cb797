import { join } from "node:path";
import type { Command } from "commander";
import { analyzeWorkspace, formatUnigramSummary } from "../analyze/index.js";
import { SynthmixError } from "../util/errors.js";

interface AnalyzeCliOptions {
  k: string;
  top: string;
  seed: string;
  runs: string | false;
  evalTokens: string;
  json?: boolean;
}

function int(name: string, v: string, min: number): number {
  const x = Number(v);
  if (!Number.isInteger(x) || x < min)
    throw new SynthmixError("BAD_OPTION", `--${name} must be an integer >= ${min}, got "${v}"`);
  return x;
}

/** `synthmix analyze ...` commands: thin wrappers over src/analyze/. */
export function register(program: Command): void {
  const analyze = program.command("analyze").description("Analyze training data against the test sets");
  analyze
    .command("unigram <workspace>")
    .description(
      "Token unigram KL/JS, coverage and blind spots of every source/mixture vs every test domain, at an equal token count, with a noise floor and the blind-spot split of trained runs' per-token losses",
    )
    .option("--k <k>", "add-k smoothing over the full vocabulary", "0.5")
    .option("--top <n>", "blind spots kept per comparison", "50")
    .option("--seed <n>", "seed of the equal-size subsampling and the noise-floor split", "0")
    .option(
      "--runs <ids>",
      'comma-separated run ids whose per-token losses to split by blind spots; "largest" = the largest run per mixture',
      "largest",
    )
    .option("--no-runs", "skip the per-token loss split")
    .option("--eval-tokens <n>", "test tokens per domain scored for the loss split", "32768")
    .option("--json", "print results/unigram.json instead of a table")
    .action(async (ws: string, o: AnalyzeCliOptions) => {
      const k = Number(o.k);
      if (!(k > 0)) throw new SynthmixError("BAD_OPTION", `--k must be a positive number, got "${o.k}"`);
      const runs =
        o.runs === false ? undefined : o.runs === "largest" ? "largest" : o.runs.split(",").filter(Boolean);
      const res = await analyzeWorkspace(ws, {
        k,
        topK: int("top", o.top, 0),
        seed: int("seed", o.seed, 0),
        runs,
        evalTokens: int("eval-tokens", o.evalTokens, 1),
      });
      if (o.json) process.stdout.write(`${JSON.stringify(res, null, 2)}\n`);
      else
        process.stdout.write(
          `${formatUnigramSummary(res)}\n\nwrote ${join(ws, "results", "unigram.json")}\n`,
        );
    });
}
