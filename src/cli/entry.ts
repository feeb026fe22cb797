import { formatError } from "../util/errors.js";
import { Command, INTERRUPTED_EXIT_CODE } from "./options.js";

/** A stage's CLI module: registers its commands on the program. */
interface StageCli {
  register(program: Command): void;
}

/**
 * Which module registers each top-level command. The binary loads only the module of the command it
 * runs: every stage module pulls in its library (the report stage alone brings Vega and resvg), and
 * loading them all cost ~60 MB of resident memory before any work (measured on `mix build`, whose
 * peak the data path bounds; BENCHMARKS.md). Help, a bare `synthmix` and unknown commands load all.
 */
export const STAGE_OF: Record<string, () => Promise<StageCli>> = {
  corpus: () => import("./corpus.js"),
  tokenizer: () => import("./tokenizer.js"),
  generate: () => import("./generate.js"),
  serve: () => import("./generate.js"),
  mix: () => import("./mix.js"),
  train: () => import("./train.js"),
  sample: () => import("./train.js"),
  "export-gguf": () => import("./train.js"),
  sweep: () => import("./sweep.js"),
  fit: () => import("./fit.js"),
  analyze: () => import("./analyze.js"),
  report: () => import("./report.js"),
  study: () => import("./study.js"),
  demo: () => import("./study.js"),
  schema: () => import("./schema.js"),
};

/** The program without commands: name, description, version. */
export function baseProgram(): Command {
  const program = new Command();
  program
    .name("synthmix")
    .description("Study and produce synthetic pre-training data mixtures for language models.")
    .version("0.1.0")
    // A command's options end at its subcommand's name, and every command inherits this: otherwise
    // `generate status <dir> --json` or `fit export --out x` hand --json/--out to the parent command.
    .enablePositionalOptions()
    .showHelpAfterError();
  return program;
}

/** Parse and run; print actionable errors without stacks. */
export async function runProgram(program: Command, argv: string[]): Promise<void> {
  try {
    await program.parseAsync(argv);
  } catch (err) {
    console.error(`synthmix: ${formatError(err)}`);
    // An interrupted command (withInterrupt) keeps its 130; any other failure is 1.
    if (process.exitCode !== INTERRUPTED_EXIT_CODE) process.exitCode = 1;
  }
}

/** Entry point of the `synthmix` binary: loads only the stage of the command given. */
export async function mainLazy(argv: string[]): Promise<void> {
  const load = STAGE_OF[argv[2] ?? ""];
  let program: Command;
  if (load) {
    program = baseProgram();
    (await load()).register(program);
  } else {
    program = (await import("./main.js")).buildProgram();
  }
  await runProgram(program, argv);
}
