import { formatError } from "../util/errors.js";
import * as analyze from "./analyze.js";
import * as corpus from "./corpus.js";
import * as fit from "./fit.js";
import * as generate from "./generate.js";
import * as mix from "./mix.js";
import { Command, INTERRUPTED_EXIT_CODE } from "./options.js";
import * as report from "./report.js";
import * as schema from "./schema.js";
import * as study from "./study.js";
import * as sweep from "./sweep.js";
import * as tokenizer from "./tokenizer.js";
import * as train from "./train.js";

export function buildProgram(): Command {
  const program = new Command();
  program
    .name("synthmix")
    .description("Study and produce synthetic pre-training data mixtures for language models.")
    .version("0.1.0")
    // A command's options end at its subcommand's name, and every command inherits this: otherwise
    // `generate status <dir> --json` or `fit export --out x` hand --json/--out to the parent command.
    .enablePositionalOptions()
    .showHelpAfterError();
  for (const stage of [corpus, tokenizer, generate, mix, train, sweep, fit, analyze, report, study, schema]) {
    stage.register(program);
  }
  return program;
}

/** Entry point of the `synthmix` binary: parse, run, print actionable errors without stacks. */
export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    console.error(`synthmix: ${formatError(err)}`);
    // An interrupted command (withInterrupt) keeps its 130; any other failure is 1.
    if (process.exitCode !== INTERRUPTED_EXIT_CODE) process.exitCode = 1;
  }
}
