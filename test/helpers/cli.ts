import { buildProgram } from "../../src/cli/main.js";

/** Run `synthmix <args>` in-process (commander errors throw instead of exiting) and return what it logged. */
export async function runCli(...args: string[]): Promise<string> {
  const out: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  try {
    await buildProgram()
      .exitOverride()
      .parseAsync(["node", "synthmix", ...args]);
  } finally {
    console.log = log;
  }
  return out.join("\n");
}
