import type { Command } from "commander";

/** `synthmix train ...` commands: thin wrappers over src/train/. */
export function register(_program: Command): void {}
