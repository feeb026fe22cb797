import { join } from "node:path";
import type { Command } from "commander";
import { analyzeWorkspace, formatUnigramSummary } from "../analyze/index.js";
import { SynthmixError } from "../util/errors.js";

/** `synthmix analyze ...` commands: thin wrappers over src/analyze/. */
export function register(program: Command): void {
  const analyze = program.command("analyze").description("Analyze training data against the test sets");
  analyze
    .command("unigram <workspace>")
    .description("Token unigram KL/JS, coverage and blind spots of every source/mixture vs every test domain")
    .option("--k <k>", "add-k smoothing over the full vocabulary", "0.5")
    .option("--top <n>", "blind spots kept per comparison", "50")
    .option("--json", "print results/unigram.json instead of a table")
    .action(async (ws: string, o: { k: string; top: string; json?: boolean }) => {
      const k = Number(o.k);
      const top = Number(o.top);
      if (!(k > 0)) throw new SynthmixError("BAD_OPTION", `--k must be a positive number, got "${o.k}"`);
      if (!Number.isInteger(top) || top < 0)
        throw new SynthmixError("BAD_OPTION", `--top must be a non-negative integer, got "${o.top}"`);
      const res = await analyzeWorkspace(ws, { k, topK: top });
      if (o.json) process.stdout.write(`${JSON.stringify(res, null, 2)}\n`);
      else
        process.stdout.write(
          `${formatUnigramSummary(res)}\n\nwrote ${join(ws, "results", "unigram.json")}\n`,
        );
    });
}
