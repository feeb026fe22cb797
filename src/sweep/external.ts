import { closeSync, openSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { runExternal } from "../train/external.js";
import { SynthmixError } from "../util/errors.js";
import type { RunExecutor } from "./executors.js";

/** The last non-empty lines of a log written after byte `from` (for error messages). */
export function logTail(path: string, from = 0, lines = 6): string {
  try {
    return readFileSync(path)
      .subarray(from)
      .toString("utf8")
      .split("\n")
      .filter((l) => l.trim() !== "")
      .slice(-lines)
      .join("\n  ");
  } catch {
    return "";
  }
}

/**
 * Hand runs to an external trainer (train/external.ts contract: it writes metrics.jsonl). Its stdout and
 * stderr are appended to `<run>/train.log`, and a failure quotes the log's last lines.
 */
export function externalExecutor(commandTemplate: string): RunExecutor {
  return async (job) => {
    const logPath = join(job.runDir, "train.log");
    const fd = openSync(logPath, "a");
    writeSync(fd, `\n=== ${new Date().toISOString()} external: ${commandTemplate}\n`);
    let from = 0;
    try {
      from = readFileSync(logPath).byteLength;
      return await runExternal(job.runDir, job.config, commandTemplate, {
        signal: job.signal,
        stdio: fd,
        id: job.id,
      });
    } catch (e) {
      if (!(e instanceof SynthmixError) || job.signal.aborted) throw e;
      const tail = logTail(logPath, from);
      throw new SynthmixError(e.code, `${e.message}${tail ? `:\n  ${tail}` : ""}`, {
        hint: `full output in ${logPath}`,
      });
    } finally {
      closeSync(fd);
    }
  };
}
