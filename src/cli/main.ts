import * as analyze from "./analyze.js";
import * as corpus from "./corpus.js";
import { baseProgram, runProgram } from "./entry.js";
import * as fit from "./fit.js";
import * as generate from "./generate.js";
import * as mix from "./mix.js";
import type { Command } from "./options.js";
import * as report from "./report.js";
import * as schema from "./schema.js";
import * as study from "./study.js";
import * as sweep from "./sweep.js";
import * as tokenizer from "./tokenizer.js";
import * as train from "./train.js";

/** The program with every stage's commands (help, tests; the binary loads one stage: src/cli/entry.ts). */
export function buildProgram(): Command {
  const program = baseProgram();
  for (const stage of [corpus, tokenizer, generate, mix, train, sweep, fit, analyze, report, study, schema]) {
    stage.register(program);
  }
  return program;
}

/** Run with every stage loaded (the binary uses mainLazy in src/cli/entry.ts). */
export async function main(argv: string[]): Promise<void> {
  await runProgram(buildProgram(), argv);
}
