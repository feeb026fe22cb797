import type { Command } from "commander";

/** `synthmix analyze ...` commands: thin wrappers over src/analyze/. */
export function register(_program: Command): void {}
