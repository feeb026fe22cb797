import type { Command } from "commander";

/** `synthmix report ...` commands: thin wrappers over src/report/. */
export function register(_program: Command): void {}
