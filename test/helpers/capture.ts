import { buildProgram } from "../../src/cli/main.js";

export interface Captured<T> {
  value: T;
  /** Everything written to stdout (console.log and process.stdout.write) while `fn` ran. */
  stdout: string;
  /** Everything written to stderr (console.error, progress, process.stderr.write). */
  stderr: string;
}

type Write = typeof process.stdout.write;

/**
 * Run `fn` with stdout and stderr captured (not printed). Only string writes are captured: the test
 * runner's own protocol reaches process.stdout as Buffers from the same process and must pass through.
 */
export async function capture<T>(fn: () => T | Promise<T>): Promise<Captured<T>> {
  const out: string[] = [];
  const err: string[] = [];
  const wrap = (stream: NodeJS.WriteStream, orig: Write, sink: string[]): Write =>
    ((chunk: unknown, ...rest: unknown[]) => {
      if (typeof chunk !== "string")
        return (orig as (...a: unknown[]) => boolean).call(stream, chunk, ...rest);
      sink.push(chunk);
      const cb = rest.find((r) => typeof r === "function") as (() => void) | undefined;
      cb?.();
      return true;
    }) as Write;
  const stdoutWrite = process.stdout.write;
  const stderrWrite = process.stderr.write;
  process.stdout.write = wrap(process.stdout, stdoutWrite, out);
  process.stderr.write = wrap(process.stderr, stderrWrite, err);
  try {
    const value = await fn();
    return { value, stdout: out.join(""), stderr: err.join("") };
  } finally {
    process.stdout.write = stdoutWrite;
    process.stderr.write = stderrWrite;
  }
}

/** Run `synthmix <args>` in-process (commander errors throw) with stdout and stderr captured. */
export async function runCliCaptured(...args: string[]): Promise<Captured<void>> {
  return capture(async () => {
    await buildProgram()
      .exitOverride()
      .parseAsync(["node", "synthmix", ...args]);
  });
}

/**
 * Run `synthmix <args> --json` and parse stdout, which must be exactly one JSON document (the --json
 * convention of src/cli/options.ts printResult): a stray log line on stdout fails JSON.parse here.
 */
export async function runCliJson<T = Record<string, unknown>>(
  ...args: string[]
): Promise<{ json: T; stderr: string }> {
  const r = await runCliCaptured(...args, "--json");
  return { json: JSON.parse(r.stdout) as T, stderr: r.stderr };
}
