import type { Command } from "commander";

/** `synthmix generate ...` commands: thin wrappers over src/generate/. */
export function register(_program: Command): void {}
