import type { Command } from "commander";

/** `synthmix study ...` commands: thin wrappers over src/study/. */
export function register(_program: Command): void {}
