import type { Command } from "commander";

/** `synthmix tokenizer ...` commands: thin wrappers over src/tokenizer/. */
export function register(_program: Command): void {}
