import { readFileSync } from "node:fs";
import type { RunResultRow } from "../sweep/results.js";
import { BadRecordError, SynthmixError } from "../util/errors.js";

export interface PointColumns {
  /** Column names (defaults: N, D, loss, group). */
  n?: string;
  d?: string;
  loss?: string;
  group?: string;
}

/** Split one CSV line (RFC 4180 quoting: "a,b" and "" escapes). */
export function splitCsvLine(line: string): string[] {
  const out: string[] = [];
  let cur = "";
  let q = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (q) {
      if (ch === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') q = false;
      else cur += ch;
    } else if (ch === '"') q = true;
    else if (ch === ",") {
      out.push(cur);
      cur = "";
    } else cur += ch;
  }
  out.push(cur);
  return out.map((s) => s.trim());
}

/** Records of a CSV (header line) or JSONL file, each with its 1-based line number. */
export function readRecords(path: string): { rec: Record<string, unknown>; line: number }[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new SynthmixError("NO_POINTS_FILE", `cannot read ${path}: ${(e as Error).message}`);
  }
  const lines = text.split(/\r?\n/);
  const out: { rec: Record<string, unknown>; line: number }[] = [];
  const first = lines.find((l) => l.trim() !== "")?.trim() ?? "";
  if (first.startsWith("{")) {
    lines.forEach((l, i) => {
      if (l.trim() === "") return;
      try {
        out.push({ rec: JSON.parse(l) as Record<string, unknown>, line: i + 1 });
      } catch (e) {
        throw new BadRecordError(path, i + 1, `malformed JSON (${(e as Error).message})`);
      }
    });
    return out;
  }
  const headerIdx = lines.findIndex((l) => l.trim() !== "");
  if (headerIdx < 0) return out;
  const header = splitCsvLine(lines[headerIdx]);
  for (let i = headerIdx + 1; i < lines.length; i++) {
    if (lines[i].trim() === "") continue;
    const cells = splitCsvLine(lines[i]);
    if (cells.length !== header.length) {
      throw new BadRecordError(path, i + 1, `${cells.length} fields, the header has ${header.length}`);
    }
    const rec: Record<string, unknown> = {};
    header.forEach((h, j) => {
      rec[h] = cells[j];
    });
    out.push({ rec, line: i + 1 });
  }
  return out;
}

/**
 * Read points (CSV with a header, or JSONL) as sweep rows so the workspace fitter applies unchanged.
 * Files exported by `synthmix sweep results` (with synthetic/ratio/generator columns) keep their mixtures;
 * otherwise each value of the group column is one mixture, and a group named "natural" or "none" is the
 * natural-only baseline for speed-ups.
 */
export function readPointRows(path: string, cols: PointColumns = {}): RunResultRow[] {
  const nCol = cols.n ?? "N";
  const dCol = cols.d ?? "D";
  const lossCol = cols.loss ?? "loss";
  const groupCol = cols.group ?? "group";
  const records = readRecords(path);
  if (records.length === 0) throw new SynthmixError("NO_POINTS", `${path}: no points`);
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
    const loss = num(rec, lossCol, line, true);
    const N = num(rec, nCol, line, false);
    const D = num(rec, dCol, line, false);
    const hasMix = rec.synthetic !== undefined && rec.ratio !== undefined;
    const group = String(rec[groupCol] ?? rec.mixture ?? "all");
    const natural = group === "natural" || group === "none";
    return {
      runId: String(rec.runId ?? `${path}:${line}`),
      modelName: String(rec.modelName ?? "custom"),
      nonEmbeddingParams: N,
      totalParams: Number(rec.totalParams ?? N),
      tokens: D,
      mixture: String(rec.mixture ?? group),
      synthetic: hasMix ? String(rec.synthetic) : natural ? "none" : group,
      ratio: hasMix ? Number(rec.ratio) : natural ? 0 : 1,
      generator: hasMix ? String(rec.generator ?? "") : "",
      seed: Number(rec.seed ?? i),
      domain: String(rec.domain ?? "all"),
      loss,
      flops: Number(rec.flops ?? 0),
      tokensPerSec: Number(rec.tokensPerSec ?? 0),
      wallSec: Number(rec.wallSec ?? 0),
    };
  });
}
