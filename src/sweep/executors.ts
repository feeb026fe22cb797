import { spawn } from "node:child_process";
import { closeSync, openSync, readFileSync, writeSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { RunConfig } from "../train/schema.js";
import { SynthmixError } from "../util/errors.js";
import { fillPlaceholders } from "../util/placeholders.js";
import { type FinalMetric, readProgress } from "./registry.js";

/** One training attempt handed to an executor. */
export interface RunJob {
  id: string;
  runDir: string;
  configPath: string;
  config: RunConfig;
  signal: AbortSignal;
  /** Called with the child's pid once it started (recorded in status.json). */
  onStart?: (pid: number | undefined) => void;
}

/** Trains one run to completion (resuming from its checkpoint) and returns its final record. */
export type RunExecutor = (job: RunJob) => Promise<FinalMetric>;

/**
 * The argv that runs `synthmix train --config {config}` in a fresh process with this same synthmix:
 * the compiled bin when running from dist/, else the TypeScript sources through tsx's loader.
 */
export function defaultTrainCommand(): string[] {
  const here = fileURLToPath(import.meta.url);
  const root = resolve(dirname(here), "..", "..");
  if (here.endsWith(".ts")) {
    // An absolute loader URL: `--import tsx` would be resolved from the cwd, which may be anywhere.
    const tsx = import.meta.resolve("tsx");
    return [
      process.execPath,
      "--import",
      tsx,
      join(root, "src", "cli", "run.ts"),
      "train",
      "--config",
      "{config}",
    ];
  }
  return [process.execPath, join(root, "bin", "synthmix.js"), "train", "--config", "{config}"];
}

/**
 * Run each attempt as a child process (argv template; {config} {runDir}/{run_dir} {id} {threads}
 * substituted, unknown placeholders refused),
 * output appended to `<run>/train.log`. Success = exit code 0 and a `final` record in metrics.jsonl;
 * otherwise the error carries the last lines of the log. Aborting sends SIGTERM (then SIGKILL after 10 s).
 */
export function childProcessExecutor(argvTemplate: string[] = defaultTrainCommand()): RunExecutor {
  return async (job) => {
    const argv = argvTemplate.map((a) =>
      fillPlaceholders(a, {
        config: job.configPath,
        runDir: job.runDir,
        id: job.id,
        threads: job.config.threads,
      }),
    );
    const logPath = join(job.runDir, "train.log");
    const fd = openSync(logPath, "a");
    writeSync(fd, `\n=== ${new Date().toISOString()} ${argv.join(" ")}\n`);
    const logStart = readFileSync(logPath).byteLength;
    let code: number | null;
    let signalName: NodeJS.Signals | null;
    try {
      const child = spawn(argv[0], argv.slice(1), {
        stdio: ["ignore", fd, fd],
        env: { ...process.env, SYNTHMIX_PROGRESS: "plain" },
      });
      job.onStart?.(child.pid);
      let killTimer: NodeJS.Timeout | undefined;
      const onAbort = () => {
        child.kill("SIGTERM");
        killTimer = setTimeout(() => child.kill("SIGKILL"), 10_000);
        killTimer.unref();
      };
      job.signal.addEventListener("abort", onAbort, { once: true });
      [code, signalName] = await new Promise<[number | null, NodeJS.Signals | null]>((res, rej) => {
        child.on("error", rej);
        child.on("exit", (c, s) => res([c, s]));
      });
      job.signal.removeEventListener("abort", onAbort);
      if (killTimer) clearTimeout(killTimer);
    } finally {
      closeSync(fd);
    }
    const { final } = await readProgress(job.runDir);
    if (code === 0 && final) return final;
    const tail = readFileSync(logPath)
      .subarray(logStart)
      .toString("utf8")
      .split("\n")
      .filter((l) => l.trim() !== "")
      .slice(-6)
      .join("\n  ");
    const how = signalName ? `was killed by ${signalName}` : `exited with code ${code}`;
    throw new SynthmixError(
      "RUN_FAILED",
      code === 0
        ? `training exited without a "final" record in metrics.jsonl`
        : `training ${how}${tail ? `:\n  ${tail}` : ""}`,
      { hint: `full output in ${logPath}` },
    );
  };
}

export { externalExecutor } from "./external.js";

/**
 * Train in this process (no parallelism across runs: training is synchronous CPU work). Useful for a
 * single run, a debugger, or when spawning processes is not possible.
 */
export function inProcessExecutor(): RunExecutor {
  return async (job) => {
    const { trainRun } = await import("../train/index.js");
    return trainRun(job.runDir, job.config, { signal: job.signal });
  };
}
