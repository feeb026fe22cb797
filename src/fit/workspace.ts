import { join } from "node:path";
import type { RunResultRow } from "../sweep/results.js";
import { SynthmixError } from "../util/errors.js";
import type { Progress } from "../util/progress.js";
import { deriveSeed } from "../util/rng.js";
import { type FitOptions, type FitOutcome, fitScalingLaw, type Point, resolveForm } from "./fit.js";
import type { Form } from "./forms.js";
import {
  groupMixtures,
  isNatural,
  type MixtureGroup,
  readRunRows,
  rowsForDomain,
  splitBy,
} from "./groups.js";
import { type FitStageInput, type FitStageOptions, FitStageSchema } from "./options.js";
import { FitPool, fitScalingLawParallel } from "./pool.js";
import { bestRatioEntry, bestRatioTrends, type RatioCell, seedNoise, seedNoiseWithDf } from "./ratio.js";
import type {
  BestRatioEntry,
  BestRatioFile,
  Estimate,
  FitFailure,
  FitSettings,
  FitsFile,
  GeneratorRow,
  MixtureFit,
  SpeedupEntry,
  SpeedupsFile,
} from "./results.js";
import { writeBestRatioFile, writeFitsFile, writeSpeedupsFile } from "./results.js";
import {
  type LawParams,
  type ObservedCell,
  type ObservedCells,
  type SpeedupInput,
  speedupEntry,
  targetRange,
} from "./speedup.js";

/** Options of `fitRows`/`fitWorkspace`: the stage schema (defaults in src/fit/options.ts), a Form object, progress. */
export type FitRowsOptions = Omit<FitStageInput, "form" | "workers"> & {
  form?: Form | string;
  progress?: Progress;
};

export interface FitRowsResult {
  fits: FitsFile;
  speedups: SpeedupsFile;
  bestRatio: BestRatioFile;
}

interface DoneFit {
  group: MixtureGroup;
  rows: RunResultRow[];
  fixedN: number | null;
  fixedD: number | null;
  outcome: FitOutcome;
}

const CREATED_BY = "synthmix fit";

/** Largest epochs per repeated source over the rows (rows carry `epochs` from the mixture manifests). */
export function repetitionOf(rows: RunResultRow[]): MixtureFit["repetition"] {
  const repeated: Record<string, number> = {};
  let maxEpochs: number | null = null;
  for (const r of rows) {
    if (!r.epochs) continue;
    for (const [src, ep] of Object.entries(r.epochs)) {
      maxEpochs = Math.max(maxEpochs ?? 0, ep);
      if (ep > 1) repeated[src] = Math.max(repeated[src] ?? 0, ep);
    }
  }
  return { maxEpochs, repeated };
}

function span(vals: number[]): [number, number] | null {
  const v = vals.filter(Number.isFinite);
  return v.length ? [Math.min(...v), Math.max(...v)] : null;
}

function toMixtureFit(d: DoneFit): MixtureFit {
  const { group, outcome } = d;
  const repetition = repetitionOf(d.rows);
  const warnings = [...outcome.warnings];
  const rep = Object.entries(repetition.repeated);
  if (rep.length) {
    warnings.push({
      code: "REPEATED_DATA",
      message: `runs repeat data: ${rep.map(([s, e]) => `${s} up to ${Number(e.toPrecision(3))} epochs`).join(", ")}; repeated tokens are worth less than fresh ones (Muennighoff et al. 2023), so D overstates the data`,
    });
  }
  const uses = resolveForm(outcome.form).uses;
  return {
    key: group.key,
    mixture: group.mixture,
    synthetic: group.synthetic,
    ratio: group.ratio,
    generator: group.generator,
    form: outcome.form,
    fixedN: d.fixedN,
    fixedD: d.fixedD,
    points: outcome.data.n,
    effectivePoints: outcome.effectivePoints,
    dof: outcome.dof,
    range: {
      N: uses.N ? span(Array.from(outcome.data.N)) : null,
      D: uses.D ? span(Array.from(outcome.data.D)) : null,
    },
    params: outcome.params,
    raw: outcome.raw,
    quality: outcome.quality,
    bootstrapFailures: outcome.bootFailures,
    bootstrapFailureShare: outcome.bootRequested > 0 ? outcome.bootFailures / outcome.bootRequested : 0,
    replicates: outcome.boot,
    repetition,
    warnings,
  };
}

interface PlannedFit {
  group: MixtureGroup;
  fixedN: number | null;
  fixedD: number | null;
  rows: RunResultRow[];
}

interface FitContext {
  form: Form;
  settings: FitSettings;
  rows: RunResultRow[];
  plan: PlannedFit[];
  opts: FitStageOptions & { progress?: Progress };
  allRows: RunResultRow[];
}

/**
 * The fits of one mixture: the data form per N and the model form per D (the other coordinate must take
 * 3+ values at that size), all points together when no size has a ladder of its own, others pooled.
 */
function planGroup(g: MixtureGroup, form: Form): PlannedFit[] {
  const fixedCol = form.uses.D && !form.uses.N ? "N" : form.uses.N && !form.uses.D ? "D" : null;
  const pooled: PlannedFit = { group: g, fixedN: null, fixedD: null, rows: g.rows };
  if (!fixedCol) return [pooled];
  const parts = splitBy(g.rows, (r) => (fixedCol === "N" ? r.nonEmbeddingParams : r.tokens));
  const varying = (rs: RunResultRow[]) =>
    new Set(rs.map((r) => (fixedCol === "N" ? r.tokens : r.nonEmbeddingParams))).size;
  const usable = parts.filter(([, rs]) => varying(rs) >= 3 && rs.length >= form.params.length);
  // No size has a ladder of its own (e.g. a compute-optimal sweep): fit all points together.
  if (usable.length === 0) return [pooled];
  return parts.map(([v, rs]) => ({
    group: g,
    fixedN: fixedCol === "N" && Number.isFinite(v) ? v : null,
    fixedD: fixedCol === "D" && Number.isFinite(v) ? v : null,
    rows: rs,
  }));
}

/** Settings, the rows of the domain, and which fits to make (see fitRows). */
function prepare(allRows: RunResultRow[], input: FitRowsOptions): FitContext {
  const { form: formIn, progress, ...rest } = input;
  const parsed = FitStageSchema.parse({ ...rest, form: typeof formIn === "string" ? formIn : undefined });
  const opts = { ...parsed, progress };
  const form = resolveForm(formIn ?? parsed.form);
  const domain = opts.domain;
  const settings: FitSettings = {
    form: form.name,
    domain,
    huberDelta: opts.huberDelta,
    gridStarts: form.initGrid().length,
    bootstrap: opts.bootstrap,
    seed: opts.seed,
  };
  const rows = rowsForDomain(allRows, domain);
  if (rows.length === 0) throw new SynthmixError("NO_RUN_RESULTS", "no finished runs to fit");
  const plan = groupMixtures(rows).flatMap((g) => planGroup(g, form));
  opts.progress?.setTotal(plan.length);
  return { form, settings, rows, plan, opts, allRows };
}

function fitArgs(ctx: FitContext, p: PlannedFit): [Point[], FitOptions] {
  const label = `mixture ${p.group.key}${p.fixedN !== null ? ` at N=${p.fixedN}` : ""}${p.fixedD !== null ? ` at D=${p.fixedD}` : ""}`;
  return [
    p.rows.map((r) => ({ runId: r.runId, N: r.nonEmbeddingParams, D: r.tokens, loss: r.loss })),
    {
      huberDelta: ctx.settings.huberDelta,
      bootstrap: ctx.settings.bootstrap,
      seed: deriveSeed(ctx.settings.seed, p.group.key, p.fixedN ?? "", p.fixedD ?? ""),
      quality: ctx.opts.quality,
      label,
    },
  ];
}

function failure(p: PlannedFit, e: unknown): FitFailure {
  if (!(e instanceof SynthmixError)) throw e;
  const { group: g } = p;
  return {
    key: g.key,
    mixture: g.mixture,
    synthetic: g.synthetic,
    ratio: g.ratio,
    generator: g.generator,
    fixedN: p.fixedN,
    fixedD: p.fixedD,
    points: p.rows.length,
    error: e.message,
  };
}

/**
 * Fit every data mixture in sweep rows: per mixture, the data form per model size N (pooled over N when
 * no size has enough points), the model form per token budget D (likewise), the joint or a custom form
 * over all of a mixture's points. Then speed-ups over the natural-only mixture and best ratios per (N, D).
 */
export function fitRows(allRows: RunResultRow[], opts: FitRowsOptions = {}): FitRowsResult {
  const ctx = prepare(allRows, opts);
  const done: DoneFit[] = [];
  const failures: FitFailure[] = [];
  for (const p of ctx.plan) {
    try {
      const [points, fo] = fitArgs(ctx, p);
      done.push({ ...p, outcome: fitScalingLaw(points, ctx.form, fo) });
    } catch (e) {
      failures.push(failure(p, e));
    }
    opts.progress?.tick(1, { fits: done.length });
  }
  return finish(ctx, done, failures);
}

/** `fitRows` with each fit's grid screening and bootstrap spread over `workers` threads (default 2). */
export async function fitRowsParallel(
  allRows: RunResultRow[],
  opts: FitRowsOptions & { workers?: number } = {},
): Promise<FitRowsResult> {
  const ctx = prepare(allRows, opts);
  const workers = FitStageSchema.shape.workers.parse(opts.workers);
  if (workers <= 1) return fitRows(allRows, opts);
  const pool = new FitPool(workers);
  const done: DoneFit[] = [];
  const failures: FitFailure[] = [];
  try {
    for (const p of ctx.plan) {
      try {
        const [points, fo] = fitArgs(ctx, p);
        done.push({ ...p, outcome: await fitScalingLawParallel(points, ctx.form, pool, fo) });
      } catch (e) {
        failures.push(failure(p, e));
      }
      opts.progress?.tick(1, { fits: done.length });
    }
  } finally {
    await pool.close();
  }
  return finish(ctx, done, failures);
}

function finish(ctx: FitContext, done: DoneFit[], failures: FitFailure[]): FitRowsResult {
  const { form, rows, settings } = ctx;
  const mixtureFits = done.map(toMixtureFit);
  const speedups = computeSpeedups(form, rows, done, mixtureFits, settings, ctx.opts.curvePoints);
  // Noise of the ratio bootstrap: seed-to-seed spread when the grid has seed replicates, else the fits'.
  const seeds = seedNoise(rows);
  const noise = seeds
    ? { sigmaLog: seeds, from: "seeds" as const }
    : { sigmaLog: pooledSigma(done), from: "fit-residuals" as const };
  const domainRows = settings.domain === "all" ? ctx.allRows.filter((r) => r.domain !== "all") : [];
  const entries: BestRatioEntry[] = ratioCells(rows, domainRows).map((c) =>
    bestRatioEntry(
      c,
      noise,
      settings.bootstrap,
      deriveSeed(settings.seed, "ratio", c.synthetic, c.generator, c.N, c.D),
    ),
  );
  const now = new Date().toISOString();
  const bestRatio: BestRatioFile = {
    version: 2,
    createdBy: CREATED_BY,
    createdAt: now,
    settings,
    entries,
    trends: bestRatioTrends(entries),
  };
  const fits: FitsFile = {
    version: 2,
    createdBy: CREATED_BY,
    createdAt: now,
    settings,
    fits: mixtureFits,
    failures,
    generators: generatorRows(done, speedups.entries, entries),
  };
  return { fits, speedups, bestRatio };
}

function bootNatural(o: FitOutcome, form: Form): LawParams[] {
  return o.boot.map((t) => form.natural(t));
}

function computeSpeedups(
  form: Form,
  rows: RunResultRow[],
  done: DoneFit[],
  fits: MixtureFit[],
  settings: FitSettings,
  curvePoints: number,
): SpeedupsFile {
  const base: SpeedupsFile = {
    version: 2,
    createdBy: CREATED_BY,
    createdAt: new Date().toISOString(),
    settings,
    entries: [],
  };
  if (!form.uses.D || !["data", "joint"].includes(form.name)) {
    return { ...base, note: `speed-ups need the data or joint form (fitted: ${form.name})` };
  }
  const natFits = done.filter((d) => d.group.key === "none:0:");
  const fitOf = (d: DoneFit) => fits[done.indexOf(d)];
  if (natFits.length === 0)
    return { ...base, note: "no natural-only mixture was fitted, so there is no baseline" };
  const naturalRows = rows.filter(isNatural);
  const largestAt = (N: number | null) => {
    const rs = N === null ? naturalRows : naturalRows.filter((r) => r.nonEmbeddingParams === N);
    if (rs.length === 0) return null;
    const maxD = Math.max(...rs.map((r) => r.tokens));
    const atMax = rs.filter((r) => r.tokens === maxD);
    const maxN = Math.max(...atMax.map((r) => r.nonEmbeddingParams));
    const pick = atMax.filter((r) => r.nonEmbeddingParams === maxN);
    return { D: maxD, loss: pick.reduce((s, r) => s + r.loss, 0) / pick.length, runs: pick.length };
  };
  const pooled = seedNoiseWithDf(rows) ?? pooledSigmaWithDf(done);
  const noiseAt = new Map<number, { sigmaLog: number; df: number } | null>();
  const observedAt = (mixRows: RunResultRow[], N: number | null): ObservedCells | undefined => {
    const nat = largestAt(N);
    if (N === null || !nat) return undefined;
    // Seed noise at this N when it has replicates: it varies with model size (a saturated small model
    // repeats to ~0.2%, a model in a learning transition to ~2%), so the pooled value misjudges both.
    if (!noiseAt.has(N)) noiseAt.set(N, seedNoiseWithDf(rows.filter((r) => r.nonEmbeddingParams === N)));
    const noise = noiseAt.get(N) ?? pooled;
    // `tests` is set below, once the family of bounds (every entry of this file) is known.
    return {
      natural: nat,
      mixture: cellsAt(mixRows, N),
      sigmaLog: noise?.sigmaLog ?? null,
      df: noise?.df ?? null,
      tests: 2,
    };
  };
  const targetsFor = (N: number | null) => {
    const rs = N === null ? naturalRows : naturalRows.filter((r) => r.nonEmbeddingParams === N);
    const ls = rs.map((r) => r.loss);
    return ls.length ? targetRange(Math.min(...ls), Math.max(...ls), curvePoints) : [];
  };
  const inputs: SpeedupInput[] = [];
  for (const mix of done) {
    if (mix.group.key === "none:0:") continue;
    if (form.name === "joint") {
      const nat = natFits[0];
      const Ns = [...new Set(mix.group.rows.map((r) => r.nonEmbeddingParams))].sort((a, b) => a - b);
      for (const N of Ns) {
        inputs.push({
          mix: mix.group,
          baseline: nat.group.key,
          N,
          method: "joint-at-N",
          natural: nat.outcome.natural,
          mixture: mix.outcome.natural,
          naturalBoot: bootNatural(nat.outcome, form),
          mixtureBoot: bootNatural(mix.outcome, form),
          targets: targetsFor(N),
          largestNatural: largestAt(N),
          observed: observedAt(mix.group.rows, N),
          naturalFit: fitOf(nat),
          mixtureFit: fitOf(mix),
        });
      }
    } else {
      const nat = natFits.find((n) => n.fixedN === mix.fixedN);
      if (!nat) continue;
      inputs.push({
        mix: mix.group,
        baseline: nat.group.key,
        N: mix.fixedN,
        method: mix.fixedN === null ? "data-fit-pooled" : "data-fit-per-N",
        natural: nat.outcome.natural,
        mixture: mix.outcome.natural,
        naturalBoot: bootNatural(nat.outcome, form),
        mixtureBoot: bootNatural(mix.outcome, form),
        targets: targetsFor(mix.fixedN),
        largestNatural: largestAt(mix.fixedN),
        observed: observedAt(mix.group.rows, mix.fixedN),
        naturalFit: fitOf(nat),
        mixtureFit: fitOf(mix),
      });
    }
  }
  // Every entry tests two one-sided bounds; the family's error rate is held at 5% over all of them.
  const tests = 2 * inputs.filter((i) => i.observed).length;
  for (const i of inputs) if (i.observed) i.observed.tests = tests;
  const entries: SpeedupEntry[] = inputs.map((i) => speedupEntry(i));
  return { ...base, entries };
}

/** Mean loss per budget D of the rows at model size N. */
function cellsAt(rows: RunResultRow[], N: number): ObservedCell[] {
  const byD = new Map<number, number[]>();
  for (const r of rows)
    if (r.nonEmbeddingParams === N) byD.set(r.tokens, [...(byD.get(r.tokens) ?? []), r.loss]);
  return [...byD].map(([D, ls]) => ({ D, loss: ls.reduce((a, b) => a + b, 0) / ls.length, runs: ls.length }));
}

/** Run-to-run noise from the fits: pooled log-residuals with their degrees of freedom, sqrt(SSR / sum(n - p)). */
function pooledSigma(done: DoneFit[]): number {
  return pooledSigmaWithDf(done)?.sigmaLog ?? 0;
}

/** pooledSigma with its degrees of freedom; null when no fit has residual degrees of freedom. */
function pooledSigmaWithDf(done: DoneFit[]): { sigmaLog: number; df: number } | null {
  let ss = 0;
  let df = 0;
  for (const d of done) {
    const rs = d.outcome.quality.residuals;
    if (rs.length <= d.outcome.theta.length) continue;
    for (const r of rs) ss += r.logResidual ** 2;
    df += rs.length - d.outcome.theta.length;
  }
  return df > 0 ? { sigmaLog: Math.sqrt(ss / df), df } : null;
}

/**
 * Cells (synthetic, generator, N, D) with their mean loss per ratio; natural runs count as ratio 0 in every
 * cell. With `domainRows` (per-domain rows, for domain "all"), each cell also gets its per-domain means
 * when every domain has the same ratios as the cell.
 */
export function ratioCells(rows: RunResultRow[], domainRows: RunResultRow[] = []): RatioCell[] {
  const cells = meanCells(rows);
  const domains = [...new Set(domainRows.map((r) => r.domain))].sort();
  if (domains.length < 2) return cells;
  const per = new Map(domains.map((d) => [d, meanCells(domainRows.filter((r) => r.domain === d))]));
  for (const c of cells) {
    const byDomain: NonNullable<RatioCell["byDomain"]> = [];
    for (const d of domains) {
      const dc = per
        .get(d)!
        .find(
          (x) => x.synthetic === c.synthetic && x.generator === c.generator && x.N === c.N && x.D === c.D,
        );
      if (!dc || dc.points.map((p) => p.ratio).join() !== c.points.map((p) => p.ratio).join()) break;
      byDomain.push({ domain: d, points: dc.points });
    }
    if (byDomain.length === domains.length) c.byDomain = byDomain;
  }
  return cells;
}

function meanCells(rows: RunResultRow[]): RatioCell[] {
  const nat = rows.filter(isNatural);
  const syn = rows.filter((r) => !isNatural(r));
  const cells = new Map<string, { cell: RatioCell; acc: Map<number, number[]> }>();
  for (const r of syn) {
    const k = `${r.synthetic}\u0000${r.generator}\u0000${r.nonEmbeddingParams}\u0000${r.tokens}`;
    let c = cells.get(k);
    if (!c) {
      c = {
        cell: {
          synthetic: r.synthetic,
          generator: r.generator,
          N: r.nonEmbeddingParams,
          D: r.tokens,
          points: [],
        },
        acc: new Map(),
      };
      for (const n of nat) {
        if (n.nonEmbeddingParams === r.nonEmbeddingParams && n.tokens === r.tokens) {
          c.acc.set(0, [...(c.acc.get(0) ?? []), n.loss]);
        }
      }
      cells.set(k, c);
    }
    c.acc.set(r.ratio, [...(c.acc.get(r.ratio) ?? []), r.loss]);
  }
  const out: RatioCell[] = [];
  for (const { cell, acc } of cells.values()) {
    cell.points = [...acc.entries()]
      .map(([ratio, ls]) => ({ ratio, loss: ls.reduce((s, x) => s + x, 0) / ls.length, runs: ls.length }))
      .sort((a, b) => a.ratio - b.ratio);
    if (cell.points.length >= 3) out.push(cell);
  }
  return out.sort(
    (a, b) => (a.synthetic + a.generator).localeCompare(b.synthetic + b.generator) || a.N - b.N || a.D - b.D,
  );
}

function meanEstimate(es: Estimate[]): Estimate | null {
  if (es.length === 0) return null;
  const m = (xs: (number | null)[]) =>
    xs.some((x) => x === null) ? null : (xs as number[]).reduce((s, x) => s + x, 0) / xs.length;
  return {
    value: es.reduce((s, e) => s + e.value, 0) / es.length,
    se: m(es.map((e) => e.se)),
    lo: m(es.map((e) => e.lo)),
    hi: m(es.map((e) => e.hi)),
  };
}

function generatorRows(done: DoneFit[], speedups: SpeedupEntry[], ratios: BestRatioEntry[]): GeneratorRow[] {
  const out: GeneratorRow[] = [];
  const keys = [...new Set(done.filter((d) => d.group.key !== "none:0:").map((d) => d.group.key))];
  for (const key of keys) {
    const fs = done.filter((d) => d.group.key === key);
    const g = fs[0].group;
    // Per-N fits: report the largest N (the most relevant for extrapolation).
    const top = fs.reduce((b, d) => ((d.fixedN ?? 0) > (b.fixedN ?? 0) ? d : b), fs[0]);
    const sp = speedups.filter((s) => s.key === key && s.atLargestNatural);
    const topSp = sp.reduce<SpeedupEntry | null>((b, s) => (!b || (s.N ?? 0) > (b.N ?? 0) ? s : b), null);
    const rs = ratios.filter(
      (r) => r.synthetic === g.synthetic && r.generator === g.generator && r.resolved && r.quadratic,
    );
    out.push({
      generator: g.generator,
      synthetic: g.synthetic,
      ratio: g.ratio,
      key,
      E: top.outcome.params.E ?? null,
      speedupAtLargestNatural:
        topSp?.atLargestNatural && topSp.supported && !topSp.atLargestNatural.extrapolated
          ? topSp.atLargestNatural.speedup
          : null,
      bestRatio: meanEstimate(rs.map((r) => r.quadratic!.bestRatio)),
    });
  }
  return out.sort(
    (a, b) =>
      a.synthetic.localeCompare(b.synthetic) || a.ratio - b.ratio || a.generator.localeCompare(b.generator),
  );
}

/** `synthmix fit --results ws/`: read runs.json, fit, write results/{fits,speedups,best-ratio}.json. */
export function fitWorkspace(ws: string, opts: FitRowsOptions = {}): FitRowsResult {
  const res = fitRows(readRunRows(ws), opts);
  writeFitResults(join(ws, "results"), res);
  return res;
}

export function writeFitResults(dir: string, res: FitRowsResult): void {
  writeFitsFile(dir, res.fits);
  writeSpeedupsFile(dir, res.speedups);
  writeBestRatioFile(dir, res.bestRatio);
}
