import { join } from "node:path";
import { z } from "zod";
import { tryReadMixtureManifest } from "../mix/manifest.js";
import { writeJsonAtomic } from "../util/atomic.js";
import { readJsonFile } from "../util/json.js";
import { listStatuses, type RunStatus } from "./registry.js";

/**
 * `<workspace>/results/runs.json` = `{ "rows": RunResultRow[] }`: one row per finished run and test
 * domain (plus domain "all" = mean over domains). Written by the sweep, read by fit/analyze/report;
 * `synthmix sweep results --format csv|json` prints the same rows.
 */
export interface RunResultRow {
  runId: string;
  /** Named ladder size (e.g. "s3"), or "custom". */
  modelName: string;
  /** N: parameters excluding embeddings (docs/design.md, units). */
  nonEmbeddingParams: number;
  totalParams: number;
  /** D: training tokens. */
  tokens: number;
  /** Mixture id, e.g. "natural", "hq-33", "qa-100". */
  mixture: string;
  /** Synthetic style mixed in ("hq", "qa", "txbk", custom) or "none" for natural-only. */
  synthetic: string;
  /** Synthetic share of training tokens, 0..1. */
  ratio: number;
  /** Generator name for synthetic data ("" for natural-only). */
  generator: string;
  seed: number;
  /** Test domain (e.g. "news") or "all" (mean over domains). */
  domain: string;
  /** Final test loss, nats per token. */
  loss: number;
  flops: number;
  tokensPerSec: number;
  wallSec: number;
  /** Passes over each source of the mixture (from mixtures/<id>/manifest.json; 1 = no repetition). */
  epochs?: Record<string, number>;
}

export interface RunResults {
  rows: RunResultRow[];
}

/** One row per test domain of every done run, plus domain "all" (the trainer's mean over domains). */
export function resultRows(
  statuses: RunStatus[],
  epochsOf: (mixtureId: string) => Record<string, number> | undefined = () => undefined,
): RunResultRow[] {
  const rows: RunResultRow[] = [];
  for (const s of statuses) {
    if (s.status !== "done" || !s.final) continue;
    const base = {
      runId: s.id,
      modelName: s.modelName,
      nonEmbeddingParams: s.nonEmbeddingParams,
      totalParams: s.totalParams,
      tokens: s.tokens,
      mixture: s.mixture.label,
      synthetic: s.mixture.synthetic,
      ratio: s.mixture.ratio,
      generator: s.mixture.generator,
      seed: s.seed,
      flops: s.final.flops,
      tokensPerSec: s.final.tokensPerSec,
      wallSec: s.final.wallSec,
      ...(epochsOf(s.mixture.id) ? { epochs: epochsOf(s.mixture.id) } : {}),
    };
    for (const domain of Object.keys(s.final.losses).sort()) {
      rows.push({ ...base, domain, loss: s.final.losses[domain] });
    }
    rows.push({ ...base, domain: "all", loss: s.final.loss });
  }
  return rows;
}

export function resultsPath(workspace: string): string {
  return join(workspace, "results", "runs.json");
}

/** The rows of a workspace (registry + per-source epochs from the mixture manifests). */
export function workspaceResultRows(workspace: string): RunResultRow[] {
  return resultRows(listStatuses(workspace), (id) => mixtureEpochs(workspace, id));
}

/** Rewrite `<ws>/results/runs.json` from the registry. */
export function writeResults(workspace: string): RunResults {
  const results = { rows: workspaceResultRows(workspace) };
  writeJsonAtomic(resultsPath(workspace), results);
  return results;
}

/** Epochs per source from a mixture manifest (undefined when the manifest is absent or has none). */
export function mixtureEpochs(workspace: string, mixtureId: string): Record<string, number> | undefined {
  // A broken manifest is the mix stage's error to report; runs.json stays writable without epochs.
  const m = tryReadMixtureManifest(join(workspace, "mixtures", mixtureId));
  if (!m) return undefined;
  const out: Record<string, number> = {};
  for (const s of m.sources) out[s.name] = s.epochs;
  return Object.keys(out).length ? out : undefined;
}

export const RESULT_COLUMNS: (keyof RunResultRow)[] = [
  "runId",
  "modelName",
  "nonEmbeddingParams",
  "totalParams",
  "tokens",
  "mixture",
  "synthetic",
  "ratio",
  "generator",
  "seed",
  "domain",
  "loss",
  "flops",
  "tokensPerSec",
  "wallSec",
];

/** RFC 4180 CSV with a header row. */
export function rowsToCsv(rows: RunResultRow[]): string {
  const cell = (v: unknown) => {
    const s = String(v);
    return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
  };
  const lines = [RESULT_COLUMNS.join(",")];
  for (const r of rows) lines.push(RESULT_COLUMNS.map((c) => cell(r[c])).join(","));
  return `${lines.join("\n")}\n`;
}

/**
 * The schema of a `results/runs.json` row (loose: fields a newer writer adds are kept). `readRunResults`
 * is the one reader of the file for the stages after the sweep.
 */
export const RunResultRowSchema = z.looseObject({
  runId: z.string().min(1),
  modelName: z.string(),
  nonEmbeddingParams: z.number().positive(),
  totalParams: z.number().positive(),
  tokens: z.number().positive(),
  mixture: z.string(),
  synthetic: z.string(),
  ratio: z.number().min(0).max(1),
  generator: z.string(),
  seed: z.number().int(),
  domain: z.string().min(1),
  loss: z.number().finite(),
  flops: z.number().min(0),
  tokensPerSec: z.number().min(0),
  wallSec: z.number().min(0),
});
export const RunResultsSchema = z.looseObject({ rows: z.array(RunResultRowSchema) });

/** Read and validate `<ws>/results/runs.json`; errors name the file and the row. */
export function readRunResults(workspace: string): RunResults {
  return readJsonFile(resultsPath(workspace), RunResultsSchema, {
    code: "BAD_RESULTS",
    what: "the sweep results",
    hint: "`synthmix sweep collect` or `sweep run` rewrites it from runs/*/status.json",
    unreadableCode: "NO_RESULTS",
    unreadableHint: "run `synthmix sweep run` first (it writes results/runs.json)",
  });
}
