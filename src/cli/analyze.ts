import { join } from "node:path";
import { analyzeWorkspace, formatUnigramSummary } from "../analyze/index.js";
import { type Command, nonNegativeInt, positive } from "./options.js";

/** `synthmix analyze ...` commands: thin wrappers over src/analyze/. */
export function register(program: Command): void {
  const analyze = program.command("analyze").description("Analyze training data against the test sets");
  analyze
    .command("unigram <workspace>")
    .description("Token unigram KL/JS, coverage and blind spots of every source/mixture vs every test domain")
    .option("--k <k>", "add-k smoothing over the full vocabulary", positive("k"), 0.5)
    .option("--top <n>", "blind spots kept per comparison", nonNegativeInt("top"), 50)
    .option("--json", "print results/unigram.json instead of a table")
    .action(async (ws, o) => {
      const res = await analyzeWorkspace(ws, { k: o.k, topK: o.top });
      if (o.json) process.stdout.write(`${JSON.stringify(res, null, 2)}\n`);
      else
        process.stdout.write(
          `${formatUnigramSummary(res)}\n\nwrote ${join(ws, "results", "unigram.json")}\n`,
        );
    });
}
