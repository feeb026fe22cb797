import type { Command } from "commander";

/** `synthmix mix ...` commands: thin wrappers over src/mix/. */
export function register(_program: Command): void {}
