import type { Command } from "commander";

/** `synthmix corpus ...` commands: thin wrappers over src/corpus/. */
export function register(_program: Command): void {}
