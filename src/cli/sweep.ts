import type { Command } from "commander";

/** `synthmix sweep ...` commands: thin wrappers over src/sweep/. */
export function register(_program: Command): void {}
