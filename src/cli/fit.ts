import type { Command } from "commander";

/** `synthmix fit ...` commands: thin wrappers over src/fit/. */
export function register(_program: Command): void {}
