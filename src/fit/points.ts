import { readFileSync } from "node:fs";
import { parse } from "csv-parse/sync";
import type { RunResultRow } from "../sweep/results.js";
import { BadRecordError, SynthmixError } from "../util/errors.js";

export interface PointColumns {
  /**
   * Column names. Defaults: N (else nonEmbeddingParams, the `sweep results --format csv` name), D (else
   * tokens), loss, group.
   */
  n?: string;
  d?: string;
  loss?: string;
  group?: string;
  /** Covariates the form needs: a missing needed column is an error naming the columns present. */
  need?: { N: boolean; D: boolean; loss?: boolean };
}

/** Records of a CSV (header line; RFC 4180 via csv-parse, so quoted commas and newlines work) or JSONL. */
export function readRecords(path: string): { rec: Record<string, unknown>; line: number }[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new SynthmixError("NO_POINTS_FILE", `cannot read ${path}: ${(e as Error).message}`);
  }
  const lines = text.split(/\r?\n/);
  const first = lines.find((l) => l.trim() !== "")?.trim() ?? "";
  if (first.startsWith("{")) {
    const out: { rec: Record<string, unknown>; line: number }[] = [];
    lines.forEach((l, i) => {
      if (l.trim() === "") return;
      let v: unknown;
      try {
        v = JSON.parse(l);
      } catch (e) {
        throw new BadRecordError(path, i + 1, `malformed JSON (${(e as Error).message})`);
      }
      if (v === null || typeof v !== "object" || Array.isArray(v))
        throw new BadRecordError(path, i + 1, "expected a JSON object per line");
      out.push({ rec: { ...v }, line: i + 1 });
    });
    return out;
  }
  try {
    const rows: { record: Record<string, string>; info: { lines: number } }[] = parse(text, {
      columns: true,
      skip_empty_lines: true,
      trim: true,
      bom: true,
      info: true,
    });
    return rows.map((r) => ({ rec: r.record, line: r.info.lines }));
  } catch (e) {
    const err = e as Error & { lines?: number };
    throw new BadRecordError(path, err.lines ?? 0, `malformed CSV (${err.message})`);
  }
}

/**
 * Read points (CSV with a header, or JSONL) as sweep rows so the workspace fitter applies unchanged.
 * Files exported by `synthmix sweep results` (with synthetic/ratio/generator columns) keep their mixtures;
 * otherwise each value of the group column is one mixture, and a group named "natural" or "none" is the
 * natural-only baseline for speed-ups.
 */
export function readPointRows(path: string, cols: PointColumns = {}): RunResultRow[] {
  const records = readRecords(path);
  if (records.length === 0) throw new SynthmixError("NO_POINTS", `${path}: no points`);
  const have = Object.keys(records[0].rec);
  const pick = (given: string | undefined, names: string[]) =>
    given ?? names.find((n) => have.includes(n)) ?? names[0];
  const nCol = pick(cols.n, ["N", "nonEmbeddingParams"]);
  const dCol = pick(cols.d, ["D", "tokens"]);
  const lossCol = cols.loss ?? "loss";
  const groupCol = cols.group ?? "group";
  const need = cols.need ?? { N: false, D: false };
  for (const [col, flag, needed] of [
    [nCol, "--n-col", need.N],
    [dCol, "--d-col", need.D],
    [lossCol, "--loss-col", need.loss ?? true],
  ] as const) {
    if (needed && !have.includes(col)) {
      throw new SynthmixError("MISSING_COLUMN", `${path}: no column "${col}" (columns: ${have.join(", ")})`, {
        hint: `name the column with ${flag} <name>`,
      });
    }
  }
  const num = (rec: Record<string, unknown>, col: string, line: number, required: boolean): number => {
    const v = rec[col];
    if (v === undefined || v === "") {
      if (!required) return Number.NaN;
      throw new BadRecordError(path, line, `missing column "${col}"`, {
        hint: `name the columns with --n-col/--d-col/--loss-col (have: ${Object.keys(rec).join(", ")})`,
      });
    }
    const x = typeof v === "number" ? v : Number(v);
    if (!Number.isFinite(x))
      throw new BadRecordError(path, line, `column "${col}" is not a number: ${String(v)}`);
    return x;
  };
  return records.map(({ rec, line }, i) => {
    const loss = num(rec, lossCol, line, need.loss ?? true);
    const N = num(rec, nCol, line, need.N);
    const D = num(rec, dCol, line, need.D);
    return {
      runId: String(rec.runId ?? `${path}:${line}`),
      modelName: String(rec.modelName ?? "custom"),
      nonEmbeddingParams: N,
      totalParams: Number(rec.totalParams ?? N),
      tokens: D,
      ...mixtureOf(rec, groupCol),
      seed: Number(rec.seed ?? i),
      domain: String(rec.domain ?? "all"),
      loss,
      flops: Number(rec.flops ?? 0),
      tokensPerSec: Number(rec.tokensPerSec ?? 0),
      wallSec: Number(rec.wallSec ?? 0),
    };
  });
}

/**
 * The mixture of a point: its synthetic/ratio/generator columns when present (a `sweep results` export),
 * else the group column, where "natural" or "none" is the natural-only baseline.
 */
function mixtureOf(
  rec: Record<string, unknown>,
  groupCol: string,
): Pick<RunResultRow, "mixture" | "synthetic" | "ratio" | "generator"> {
  const group = String(rec[groupCol] ?? rec.mixture ?? "all");
  const mixture = String(rec.mixture ?? group);
  if (rec.synthetic !== undefined && rec.ratio !== undefined)
    return {
      mixture,
      synthetic: String(rec.synthetic),
      ratio: Number(rec.ratio),
      generator: String(rec.generator ?? ""),
    };
  const natural = group === "natural" || group === "none";
  return { mixture, synthetic: natural ? "none" : group, ratio: natural ? 0 : 1, generator: "" };
}
