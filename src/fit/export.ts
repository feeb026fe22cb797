/**
 * Flat tables of the fit results, for spreadsheets, pandas, R or DuckDB: `results/fits.json`,
 * `speedups.json` and `best-ratio.json` (read through their schemas in ./results.ts) become
 *
 *   fits          one row per fitted group x parameter (value, se, lo, hi, identified, reason, warnings),
 *                 plus one row per group that could not be fitted (status "failed", error)
 *   speedups      one row per speed-up point (curve points and the one at the largest natural run),
 *                 with its interval, extrapolated and supported; an entry without a reachable point
 *                 keeps one row (point "none") so its warnings are not lost
 *   best-ratio    one row per (synthetic, generator, N, D) cell: the quadratic and the mixing-law
 *                 estimates side by side, agreement, noise, resolved and reason
 *
 * written as CSV (csv-stringify, the writer of the csv-parse family the points reader uses) or Parquet
 * (hyparquet-writer, pure JS, so no native build; hyparquet reads it back). Every column is nullable:
 * an empty CSV field / a Parquet null means "not available" (e.g. no interval without a bootstrap),
 * while an empty string is written `""` (csv-parse tells them apart by `quoting`). NaN is written as
 * NaN, booleans as true/false. Warning codes are joined with ";" (codes contain no ";"); no warnings
 * is null.
 */
import { join, resolve } from "node:path";
import { stringify } from "csv-stringify/sync";
import { parquetWriteBuffer } from "hyparquet-writer";
import { writeFileAtomic } from "../util/atomic.js";
import type {
  BestRatioEntry,
  BestRatioFile,
  Estimate,
  FitsFile,
  FitWarning,
  MixtureKey,
  SpeedupEntry,
  SpeedupsFile,
} from "./results.js";
import { readBestRatioFile, readFitsFile, readSpeedupsFile } from "./results.js";

export type CellType = "string" | "double" | "int" | "boolean";
export type Cell = string | number | boolean | null;
export type FlatRow = Record<string, Cell>;

export interface FlatTable {
  /** File stem: fits, speedups, best-ratio. */
  name: string;
  columns: { name: string; type: CellType }[];
  rows: FlatRow[];
}

export type ExportFormat = "csv" | "parquet";
export const EXPORT_FORMATS: readonly ExportFormat[] = ["csv", "parquet"];

/** A column: its name, type and how to read it from a source record. */
interface Column<R> {
  name: string;
  type: CellType;
  get: (r: R) => Cell | undefined;
}

function table<R>(name: string, columns: Column<R>[], records: R[]): FlatTable {
  return {
    name,
    columns: columns.map(({ name, type }) => ({ name, type })),
    rows: records.map((r) => Object.fromEntries(columns.map((c) => [c.name, c.get(r) ?? null]))),
  };
}

/** Warning codes joined with ";"; null (an empty CSV field) when there are none. */
const codes = (w: FitWarning[]) => w.map((x) => x.code).join(";") || null;

/** Columns for an estimate under a prefix: `<p>`, `<p>Se`, `<p>Lo`, `<p>Hi`, `<p>Identified`. */
function estimateColumns<R>(prefix: string, get: (r: R) => Estimate | null | undefined): Column<R>[] {
  return [
    { name: prefix, type: "double", get: (r) => get(r)?.value },
    { name: `${prefix}Se`, type: "double", get: (r) => get(r)?.se },
    { name: `${prefix}Lo`, type: "double", get: (r) => get(r)?.lo },
    { name: `${prefix}Hi`, type: "double", get: (r) => get(r)?.hi },
    { name: `${prefix}Identified`, type: "boolean", get: (r) => get(r)?.identified },
  ];
}

function mixtureColumns<R extends { mix: MixtureKey }>(): Column<R>[] {
  return [
    { name: "key", type: "string", get: (r) => r.mix.key },
    { name: "mixture", type: "string", get: (r) => r.mix.mixture },
    { name: "synthetic", type: "string", get: (r) => r.mix.synthetic },
    { name: "ratio", type: "double", get: (r) => r.mix.ratio },
    { name: "generator", type: "string", get: (r) => r.mix.generator },
  ];
}

// ---------------------------------------------------------------------------------------------
// fits: one row per group x parameter

type MixtureFit = FitsFile["fits"][number];
type FitFailure = FitsFile["failures"][number];
type ParamEstimate = MixtureFit["params"][string];

interface FitRecord {
  domain: string;
  mix: MixtureKey;
  fit?: MixtureFit;
  failure?: FitFailure;
  param?: string;
  est?: ParamEstimate;
}

function fitRecords(f: FitsFile): FitRecord[] {
  const domain = f.settings.domain;
  const out: FitRecord[] = [];
  for (const fit of f.fits) {
    for (const [param, est] of Object.entries(fit.params)) out.push({ domain, mix: fit, fit, param, est });
  }
  for (const failure of f.failures) out.push({ domain, mix: failure, failure });
  return out;
}

const FIT_COLUMNS: Column<FitRecord>[] = [
  { name: "domain", type: "string", get: (r) => r.domain },
  ...mixtureColumns<FitRecord>(),
  { name: "form", type: "string", get: (r) => r.fit?.form },
  { name: "fixedN", type: "double", get: (r) => (r.fit ?? r.failure)?.fixedN },
  { name: "fixedD", type: "double", get: (r) => (r.fit ?? r.failure)?.fixedD },
  { name: "status", type: "string", get: (r) => (r.fit ? "fitted" : "failed") },
  { name: "error", type: "string", get: (r) => r.failure?.error },
  { name: "points", type: "int", get: (r) => (r.fit ?? r.failure)?.points },
  { name: "effectivePoints", type: "int", get: (r) => r.fit?.effectivePoints },
  { name: "dof", type: "int", get: (r) => r.fit?.dof },
  { name: "param", type: "string", get: (r) => r.param },
  { name: "value", type: "double", get: (r) => r.est?.value },
  { name: "se", type: "double", get: (r) => r.est?.se },
  { name: "lo", type: "double", get: (r) => r.est?.lo },
  { name: "hi", type: "double", get: (r) => r.est?.hi },
  { name: "identified", type: "boolean", get: (r) => r.est?.identified },
  { name: "reason", type: "string", get: (r) => r.est?.reason },
  { name: "bootstrapLo", type: "double", get: (r) => r.est?.bootstrap?.lo },
  { name: "bootstrapHi", type: "double", get: (r) => r.est?.bootstrap?.hi },
  { name: "profileLo", type: "double", get: (r) => r.est?.profile?.lo },
  { name: "profileHi", type: "double", get: (r) => r.est?.profile?.hi },
  { name: "r2", type: "double", get: (r) => r.fit?.quality.r2 },
  { name: "sigmaLog", type: "double", get: (r) => r.fit?.quality.sigmaLog },
  { name: "looRmseLog", type: "double", get: (r) => r.fit?.quality.looRmseLog },
  { name: "holdoutRelError", type: "double", get: (r) => r.fit?.quality.holdout?.relError },
  { name: "bootstrapFailureShare", type: "double", get: (r) => r.fit?.bootstrapFailureShare },
  { name: "warnings", type: "string", get: (r) => (r.fit ? codes(r.fit.warnings) : undefined) },
];

export const fitsTable = (f: FitsFile): FlatTable => table("fits", FIT_COLUMNS, fitRecords(f));

// ---------------------------------------------------------------------------------------------
// speedups: one row per speed-up point

type SpeedupPoint = SpeedupEntry["curve"][number] & { dNaturalObserved?: number };

interface SpeedupRecord {
  domain: string;
  mix: SpeedupEntry;
  at: "curve" | "largest-natural" | "none";
  p?: SpeedupPoint;
}

function speedupRecords(f: SpeedupsFile): SpeedupRecord[] {
  const domain = f.settings.domain;
  const out: SpeedupRecord[] = [];
  for (const e of f.entries) {
    for (const p of e.curve) out.push({ domain, mix: e, at: "curve", p });
    if (e.atLargestNatural) out.push({ domain, mix: e, at: "largest-natural", p: e.atLargestNatural });
    if (e.curve.length === 0 && !e.atLargestNatural) out.push({ domain, mix: e, at: "none" });
  }
  return out;
}

const SPEEDUP_COLUMNS: Column<SpeedupRecord>[] = [
  { name: "domain", type: "string", get: (r) => r.domain },
  ...mixtureColumns<SpeedupRecord>(),
  { name: "N", type: "double", get: (r) => r.mix.N },
  { name: "method", type: "string", get: (r) => r.mix.method },
  { name: "baseline", type: "string", get: (r) => r.mix.baseline },
  { name: "point", type: "string", get: (r) => r.at },
  { name: "targetLoss", type: "double", get: (r) => r.p?.targetLoss },
  ...estimateColumns<SpeedupRecord>("speedup", (r) => r.p?.speedup),
  { name: "reason", type: "string", get: (r) => r.p?.speedup.reason },
  { name: "dNatural", type: "double", get: (r) => r.p?.dNatural },
  { name: "dMix", type: "double", get: (r) => r.p?.dMix },
  { name: "dNaturalObserved", type: "double", get: (r) => r.p?.dNaturalObserved },
  { name: "extrapolated", type: "boolean", get: (r) => r.p?.extrapolated },
  { name: "supported", type: "boolean", get: (r) => r.mix.supported },
  { name: "warnings", type: "string", get: (r) => codes(r.mix.warnings) },
];

export const speedupsTable = (f: SpeedupsFile): FlatTable =>
  table("speedups", SPEEDUP_COLUMNS, speedupRecords(f));

// ---------------------------------------------------------------------------------------------
// best-ratio: one row per cell

interface RatioRecord {
  domain: string;
  e: BestRatioEntry;
}

const RATIO_COLUMNS: Column<RatioRecord>[] = [
  { name: "domain", type: "string", get: (r) => r.domain },
  { name: "synthetic", type: "string", get: (r) => r.e.synthetic },
  { name: "generator", type: "string", get: (r) => r.e.generator },
  { name: "N", type: "double", get: (r) => r.e.N },
  { name: "D", type: "double", get: (r) => r.e.D },
  { name: "ratios", type: "int", get: (r) => r.e.points.length },
  { name: "runs", type: "int", get: (r) => r.e.points.reduce((s, p) => s + p.runs, 0) },
  { name: "observedBest", type: "double", get: (r) => r.e.observedBest },
  ...estimateColumns<RatioRecord>("quadraticBestRatio", (r) => r.e.quadratic?.bestRatio),
  ...estimateColumns<RatioRecord>("quadraticBestLoss", (r) => r.e.quadratic?.bestLoss),
  { name: "quadraticLackOfFitOk", type: "boolean", get: (r) => r.e.quadratic?.lackOfFit?.ok },
  ...estimateColumns<RatioRecord>("mixingLawBestRatio", (r) => r.e.mixingLaw?.bestRatio),
  ...estimateColumns<RatioRecord>("mixingLawBestLoss", (r) => r.e.mixingLaw?.bestLoss),
  { name: "mixingLawDomains", type: "int", get: (r) => r.e.mixingLaw?.domains?.length },
  { name: "agreement", type: "boolean", get: (r) => r.e.agreement },
  { name: "noiseSigmaLog", type: "double", get: (r) => r.e.noise.sigmaLog },
  { name: "noiseFrom", type: "string", get: (r) => r.e.noise.from },
  { name: "resolved", type: "boolean", get: (r) => r.e.resolved },
  { name: "reason", type: "string", get: (r) => r.e.reason },
];

export const bestRatioTable = (f: BestRatioFile): FlatTable =>
  table(
    "best-ratio",
    RATIO_COLUMNS,
    f.entries.map((e) => ({ domain: f.settings.domain, e })),
  );

// ---------------------------------------------------------------------------------------------
// reading and writing

/** The three tables of a results folder (`<ws>/results`); a missing or malformed file is a SynthmixError. */
export function fitResultTables(resultsDir: string): FlatTable[] {
  return [
    fitsTable(readFitsFile(resultsDir)),
    speedupsTable(readSpeedupsFile(resultsDir)),
    bestRatioTable(readBestRatioFile(resultsDir)),
  ];
}

/** CSV with a header line; null is an empty field, booleans are true/false, numbers in full precision. */
export function tableToCsv(t: FlatTable): string {
  return stringify(t.rows, {
    header: true,
    columns: t.columns.map((c) => c.name),
    cast: {
      boolean: (v) => (v ? "true" : "false"),
      // An empty string (the natural mixture's generator) is written "" so it reads back apart from null.
      string: (v) => (v === "" ? { value: "", quoted_empty: true } : v),
    },
  });
}

const PARQUET_TYPE = { string: "STRING", double: "DOUBLE", int: "INT32", boolean: "BOOLEAN" } as const;

export function tableToParquet(t: FlatTable): Uint8Array {
  const buf = parquetWriteBuffer({
    columnData: t.columns.map((c) => ({
      name: c.name,
      type: PARQUET_TYPE[c.type],
      data: t.rows.map((r) => r[c.name]),
      nullable: true,
    })),
    createdBy: "synthmix fit export",
  });
  return new Uint8Array(buf);
}

export interface ExportOptions {
  format: ExportFormat;
  /** Folder to write to (created if missing). */
  out: string;
}

/** Write `<out>/{fits,speedups,best-ratio}.{csv,parquet}` from a results folder; returns the paths written. */
export function exportFitResults(resultsDir: string, opts: ExportOptions): string[] {
  // Read all three before writing anything, so a missing file leaves no partial export.
  const tables = fitResultTables(resultsDir);
  return tables.map((t) => {
    const path = resolve(join(opts.out, `${t.name}.${opts.format}`));
    writeFileAtomic(path, opts.format === "csv" ? tableToCsv(t) : tableToParquet(t));
    return path;
  });
}
