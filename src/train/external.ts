import { type StdioOptions, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { writeJsonAtomic } from "../util/atomic.js";
import { BadRecordError, SynthmixError } from "../util/errors.js";
import { fillPlaceholders, shellQuote } from "../util/placeholders.js";
import {
  type MetricRecord,
  MetricRecordSchema,
  parseMetricRecord,
  type RunConfig,
  RunConfigSchema,
} from "./schema.js";

/**
 * External trainer contract (docs/train.md): synthmix writes `<run>/config.json` (RunConfig, data
 * paths made absolute), runs the command template with `{config}` and `{run_dir}` (or `{runDir}`) replaced by
 * the shell-quoted absolute paths (`{id}`, `{threads}` too; unknown placeholders are refused), and expects `<run>/metrics.jsonl` in the MetricRecord schema ending with
 * one `final` record (and, optionally, `<run>/model.safetensors`). Exit code 0 = success.
 */
/** The metrics.jsonl schema lives in schema.ts with the other contracts; re-exported for existing imports. */
export { MetricRecordSchema };

/** Parses and validates a metrics.jsonl; errors name the file and line. */
export function readMetrics(path: string): MetricRecord[] {
  const lines = readFileSync(path, "utf8").split("\n");
  const out: MetricRecord[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      throw new BadRecordError(path, i + 1, `not JSON (${(err as Error).message})`);
    }
    out.push(parseMetricRecord(path, i + 1, value));
  });
  return out;
}

export async function runExternal(
  runDir: string,
  config: RunConfig,
  commandTemplate: string,
  /** `stdio`: "inherit", "ignore", or a file descriptor both stdout and stderr are written to (a log). */
  opts: { signal?: AbortSignal; stdio?: "inherit" | "ignore" | number; id?: string } = {},
): Promise<Extract<MetricRecord, { type: "final" }>> {
  const dir = resolve(runDir);
  mkdirSync(dir, { recursive: true });
  const metricsPath = join(dir, "metrics.jsonl");
  const finalOf = (records: MetricRecord[]) =>
    records.filter((r): r is Extract<MetricRecord, { type: "final" }> => r.type === "final").at(-1);
  if (existsSync(metricsPath)) {
    const done = finalOf(readMetrics(metricsPath));
    if (done) return done;
  }
  const cfg = RunConfigSchema.parse(config);
  // The contract (docs/train.md) covers the cosine schedule; an external trainer would silently
  // ignore a WSD schedule or trunk and train something else than the config says.
  if (cfg.optimizer.schedule !== undefined && cfg.optimizer.schedule !== "cosine") {
    throw new SynthmixError(
      "BAD_CONFIG",
      `${dir}: optimizer.schedule "${cfg.optimizer.schedule}" is not part of the external trainer contract`,
      { hint: "train WSD runs with synthmix's own trainer (drop them from scheduler.external.models)" },
    );
  }
  const absolute: RunConfig = {
    ...cfg,
    data: {
      train: resolve(dir, cfg.data.train),
      ...(cfg.data.test ? { test: resolve(dir, cfg.data.test) } : {}),
    },
  };
  const configPath = join(dir, "config.json");
  writeJsonAtomic(configPath, absolute);
  const command = fillPlaceholders(
    commandTemplate,
    { config: configPath, runDir: dir, id: opts.id ?? cfg.id, threads: cfg.threads },
    shellQuote,
  );
  const stdio: StdioOptions =
    typeof opts.stdio === "number" ? ["ignore", opts.stdio, opts.stdio] : (opts.stdio ?? "inherit");
  const code = await new Promise<number>((res, rej) => {
    const child = spawn(command, { shell: true, stdio, signal: opts.signal });
    child.on("error", rej);
    child.on("exit", (c, sig) => res(c ?? (sig ? 128 : 1)));
  });
  if (code !== 0) {
    throw new SynthmixError(
      "EXTERNAL_TRAINER_FAILED",
      `external trainer exited with code ${code}: ${command}`,
      {
        hint: `check its output; ${metricsPath} is kept for inspection`,
      },
    );
  }
  if (!existsSync(metricsPath)) {
    throw new SynthmixError(
      "EXTERNAL_TRAINER_FAILED",
      `external trainer did not write ${metricsPath}: ${command}`,
    );
  }
  const final = finalOf(readMetrics(metricsPath));
  if (!final) {
    throw new SynthmixError("EXTERNAL_TRAINER_FAILED", `${metricsPath} has no "final" record`, {
      hint: 'the trainer must end metrics.jsonl with {"type":"final",...} (docs/train.md)',
    });
  }
  return final;
}
