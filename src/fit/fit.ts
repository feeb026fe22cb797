import { SynthmixError } from "../util/errors.js";
import { deriveSeed, Rng } from "../util/rng.js";
import { type FitData, type Form, getForm, huberObjective } from "./forms.js";
import { E_LOG_FLOOR, effectivePoints, identify, MIN_DOF, profileE, risingAxes } from "./identify.js";
import { type LbfgsOptions, lbfgs } from "./lbfgs.js";
import { FIT_DEFAULTS } from "./options.js";
import type { Estimate, FitQuality, FitWarning, ParamEstimate, Residual } from "./results.js";
import { estimate, mean } from "./stats.js";

/** One observation: a finished run's test loss at model size N and token budget D. */
export interface Point {
  runId?: string;
  N?: number;
  D?: number;
  loss: number;
}

export interface FitOptions {
  /** Huber delta on log-residuals (default 1e-3, as Chinchilla). */
  huberDelta?: number;
  /** Bootstrap refits over points (default FIT_DEFAULTS.bootstrap = 1000, as everywhere). */
  bootstrap?: number;
  seed?: number;
  /** Override the form's start grid. */
  grid?: number[][];
  /** Compute LOO and hold-out checks (default true). */
  quality?: boolean;
  /** Tolerances of the final polish (default: gradient inf-norm < 1e-10 or relative decrease < 1e-14). */
  tight?: LbfgsOptions;
  /** Called after each bootstrap refit, for progress. */
  onBootstrap?: (done: number, total: number) => void;
  /** Where the points came from, for error messages. */
  label?: string;
}

export interface FitOutcome {
  form: string;
  /** Raw log-space parameters of the best optimum. */
  theta: number[];
  raw: Record<string, number>;
  natural: Record<string, number>;
  objective: number;
  converged: boolean;
  starts: number;
  /** Distinct local optima found from the grid, best first (bootstrap refits start from these). */
  optima: number[][];
  /** Raw parameters of each successful bootstrap refit. */
  boot: number[][];
  bootFailures: number;
  /** Replicates requested (0 when the bootstrap was off or the fit is underdetermined). */
  bootRequested: number;
  /** Distinct design points and effectivePoints - parameters. */
  effectivePoints: number;
  dof: number;
  params: Record<string, ParamEstimate>;
  quality: FitQuality;
  warnings: FitWarning[];
  data: FitData;
}

/**
 * Loose tolerances for screening the grid: every start runs to these, then the best few distinct optima
 * are polished to the tight ones. Polishing only the leaders gives the same optimum as polishing all
 * (checked against scipy in bench/ and test/fit) at a fraction of the cost. The screening ftol is
 * absolute for objectives below 1 (scipy's rule), which is loose on purpose.
 */
const SCREEN: LbfgsOptions = { gtol: 1e-4, ftol: 1e-6, maxIter: 60 };
const TIGHT: LbfgsOptions = { gtol: 1e-10, ftol: 1e-14, maxIter: 2000 };
const POLISH = 10;

export function resolveForm(form: Form | string): Form {
  if (typeof form !== "string") return form;
  const f = getForm(form);
  if (!f) {
    throw new SynthmixError("UNKNOWN_FORM", `unknown scaling-law form "${form}"`, {
      hint: "use data, model, joint, or register your own with defineForm()",
    });
  }
  return f;
}

/** Validate points for a form and build the column data; throws SynthmixError on degenerate input. */
export function makeData(points: Point[], form: Form, label = "points"): FitData {
  const n = points.length;
  const ids = points.map((p, i) => p.runId ?? `#${i + 1}`);
  for (let i = 0; i < n; i++) {
    const p = points[i];
    const check = (name: string, v: number | undefined, need: boolean) => {
      if (!need) return;
      if (v === undefined || !Number.isFinite(v) || v <= 0) {
        throw new SynthmixError(
          "BAD_FIT_INPUT",
          `${label}: point ${ids[i]} has ${name} = ${v}; the ${form.name} form needs a finite positive ${name}`,
          { hint: "drop runs that failed or diverged (NaN / non-positive loss) before fitting" },
        );
      }
    };
    check("loss", p.loss, true);
    check("N", p.N, form.uses.N);
    check("D", p.D, form.uses.D);
  }
  const p = form.params.length;
  if (n < p) {
    throw new SynthmixError(
      "TOO_FEW_POINTS",
      `${label}: ${n} point(s) for the ${form.name} form, which has ${p} parameters; need at least ${p}`,
      { hint: "add runs (more token budgets / model sizes) or fit a smaller form" },
    );
  }
  const distinct = (vals: (number | undefined)[]) => new Set(vals).size;
  const nN = distinct(points.map((q) => q.N));
  const nD = distinct(points.map((q) => q.D));
  const need = form.uses.N && form.uses.D ? 2 : 3;
  if ((form.uses.N && nN < need) || (form.uses.D && nD < need)) {
    throw new SynthmixError(
      "TOO_FEW_POINTS",
      `${label}: the ${form.name} form needs at least ${need} distinct values of ${form.uses.N && form.uses.D ? "N and of D" : form.uses.N ? "N" : "D"} (have ${form.uses.N ? `${nN} N` : ""}${form.uses.N && form.uses.D ? ", " : ""}${form.uses.D ? `${nD} D` : ""})`,
      { hint: "a power law with an offset is not identifiable from fewer distinct sizes" },
    );
  }
  const loss = Float64Array.from(points, (q) => q.loss);
  if (loss.every((v) => v === loss[0]) && n > 1) {
    throw new SynthmixError("DEGENERATE_FIT_INPUT", `${label}: all ${n} losses are equal (${loss[0]})`, {
      hint: "a scaling law cannot be fitted to a constant; check that runs trained on different N/D",
    });
  }
  const N = Float64Array.from(points, (q) => q.N ?? 1);
  const D = Float64Array.from(points, (q) => q.D ?? 1);
  return {
    n,
    N,
    D,
    logN: N.map(Math.log),
    logD: D.map(Math.log),
    loss,
    logLoss: loss.map(Math.log),
    ids,
  };
}

export function subset(data: FitData, idx: ArrayLike<number>): FitData {
  const pick = (a: Float64Array) => Float64Array.from(idx as ArrayLike<number>, (i) => a[i]);
  return {
    n: idx.length,
    N: pick(data.N),
    D: pick(data.D),
    logN: pick(data.logN),
    logD: pick(data.logD),
    loss: pick(data.loss),
    logLoss: pick(data.logLoss),
    ids: Array.from(idx as ArrayLike<number>, (i) => data.ids[i]),
  };
}

export interface Optimum {
  theta: number[];
  f: number;
  converged: boolean;
}

function runFrom(
  form: Form,
  data: FitData,
  delta: number,
  start: ArrayLike<number>,
  tol: LbfgsOptions,
): Optimum {
  const r = lbfgs((x, g) => huberObjective(form, x, data, delta, g), start, tol);
  return { theta: Array.from(r.x), f: r.f, converged: r.converged };
}

function distinctOptima(opts: Optimum[], k: number): Optimum[] {
  const sorted = opts.filter((o) => Number.isFinite(o.f)).sort((a, b) => a.f - b.f);
  const out: Optimum[] = [];
  for (const o of sorted) {
    if (out.length >= k) break;
    if (out.some((q) => q.theta.every((v, j) => Math.abs(v - o.theta[j]) < 1e-3))) continue;
    out.push(o);
  }
  return out;
}

/**
 * The grid fit: screen every start, polish the best distinct optima tightly, keep the best.
 * Returns the best optimum and the distinct optima (best first).
 */
export function gridFit(
  form: Form,
  data: FitData,
  delta: number,
  grid: number[][],
  tight: LbfgsOptions = TIGHT,
): { best: Optimum; optima: Optimum[] } {
  return polish(form, data, delta, screen(form, data, delta, grid), tight);
}

/** Phase 1: every start to the loose screening tolerance. */
export function screen(form: Form, data: FitData, delta: number, grid: number[][]): Optimum[] {
  return grid.map((s) => runFrom(form, data, delta, s, SCREEN));
}

/** Phase 2: polish the best distinct screened optima to the tight tolerance; best first. */
export function polish(
  form: Form,
  data: FitData,
  delta: number,
  screened: Optimum[],
  tight: LbfgsOptions = TIGHT,
): { best: Optimum; optima: Optimum[] } {
  const leaders = distinctOptima(screened, POLISH).map((o) => runFrom(form, data, delta, o.theta, tight));
  const optima = distinctOptima(leaders, POLISH);
  if (optima.length === 0) {
    throw new SynthmixError("FIT_FAILED", `the ${form.name} fit diverged from every start`, {
      hint: "check the points for outliers or extreme scales",
    });
  }
  return { best: optima[0], optima };
}

/**
 * Refit from a few known-good starts (bootstrap, LOO, hold-out): the grid is not repeated each time. The
 * first (best) start runs to the tight tolerance; the others are screened and polished only if they
 * beat it, which halves the cost of a refit without changing its result.
 */
export function refit(
  form: Form,
  data: FitData,
  delta: number,
  starts: number[][],
  tight: LbfgsOptions = TIGHT,
) {
  let best: Optimum | null = null;
  for (let i = 0; i < starts.length; i++) {
    let o = runFrom(form, data, delta, starts[i], i === 0 ? tight : SCREEN);
    if (i > 0 && Number.isFinite(o.f) && (!best || o.f < best.f))
      o = runFrom(form, data, delta, o.theta, tight);
    if (Number.isFinite(o.f) && (!best || o.f < best.f)) best = o;
  }
  return best;
}

/**
 * Starts for refits (bootstrap, LOO, hold-out): the best 3 distinct optima of the full grid fit. A
 * resample's optimum lies near one of them; rerunning the whole grid per refit would cost 1000x more.
 */
export function refitStarts(optima: Optimum[]): number[][] {
  return optima.slice(0, 3).map((o) => o.theta);
}

/**
 * Grid starts added to a bootstrap refit when the warm start sits on E's boundary: the best optimum with
 * E reset to 30%, 60% and 90% of the replicate's smallest loss. At a boundary (e -> -inf, where
 * d f / d e = 0, or E at the smallest loss) warm starts can never leave it and the interval would collapse
 * to a fake point; these starts let a replicate find an interior optimum when its data support one. From
 * an interior optimum the warm starts already move freely, so the extra starts (which would cost ~1.5x
 * the bootstrap, bench/fit.ts) are skipped there.
 */
export function gridStartsFor(form: Form, best: number[], data: FitData): number[][] {
  const ei = form.params.indexOf("e");
  if (ei < 0) return [];
  let lmin = Number.POSITIVE_INFINITY;
  for (let i = 0; i < data.n; i++) lmin = Math.min(lmin, data.loss[i]);
  const atBound = best[ei] < E_LOG_FLOOR || Math.exp(best[ei]) > 0.95 * lmin;
  if (!atBound) return [];
  return [0.3, 0.6, 0.9].map((f) => {
    const t = [...best];
    t[ei] = Math.log(f * lmin);
    return t;
  });
}

export function predictLoss(form: Form, theta: ArrayLike<number>, data: FitData, i: number): number {
  return Math.exp(form.predictLog(Float64Array.from(theta), data, i, null));
}

function residualsOf(form: Form, data: FitData, theta: number[]): Residual[] {
  const residuals: Residual[] = [];
  for (let i = 0; i < data.n; i++) {
    const pred = predictLoss(form, theta, data, i);
    residuals.push({
      runId: data.ids[i],
      N: form.uses.N ? data.N[i] : null,
      D: form.uses.D ? data.D[i] : null,
      loss: data.loss[i],
      predicted: pred,
      logResidual: data.logLoss[i] - Math.log(pred),
    });
  }
  return residuals;
}

/** Leave-one-out RMS log-error: each point predicted by a refit without it. */
function looRmse(form: Form, data: FitData, delta: number, starts: number[][]): number | null {
  const errs: number[] = [];
  for (let i = 0; i < data.n; i++) {
    const idx = [...Array(data.n).keys()].filter((j) => j !== i);
    const o = refit(form, subset(data, idx), delta, starts);
    if (o) errs.push(data.logLoss[i] - Math.log(predictLoss(form, o.theta, data, i)));
  }
  return errs.length > 0 ? Math.sqrt(mean(errs.map((e) => e * e))) : null;
}

/** Compute of each point for the hold-out: N*D (joint), D (data form) or N (model form). */
export function computeOf(form: Form, data: FitData, i: number): number {
  return (form.uses.N ? data.N[i] : 1) * (form.uses.D ? data.D[i] : 1);
}

/**
 * The extrapolation a user relies on: fit on the lower-compute part, predict the rest. The top quarter of
 * distinct compute values is held out (at least one); when that leaves fewer than parameters + 2 distinct
 * design points, fewer values are held out; when even one is too many, there is no hold-out.
 */
export function computeHoldout(
  form: Form,
  data: FitData,
  delta: number,
  starts: number[][],
): { holdout: FitQuality["holdout"]; note?: string } {
  const comp = Array.from({ length: data.n }, (_, i) => computeOf(form, data, i));
  const levels = [...new Set(comp)].sort((a, b) => a - b);
  const p = form.params.length;
  for (let out = Math.max(1, Math.round(levels.length / 4)); out >= 1; out--) {
    const at = levels[levels.length - out];
    const keep = comp.flatMap((c, i) => (c < at ? [i] : []));
    const held = comp.flatMap((c, i) => (c >= at ? [i] : []));
    const sub = subset(data, keep);
    if (keep.length === 0 || effectivePoints(form, sub) < p + 2) continue;
    const o = refit(form, sub, delta, starts);
    if (!o) return { holdout: null, note: "the refit on the lower-compute part diverged" };
    const errors = held.map((j) => {
      const predicted = predictLoss(form, o.theta, data, j);
      return {
        runId: data.ids[j],
        N: form.uses.N ? data.N[j] : null,
        D: form.uses.D ? data.D[j] : null,
        actual: data.loss[j],
        predicted,
        relError: (predicted - data.loss[j]) / data.loss[j],
      };
    });
    return {
      holdout: {
        at,
        fitPoints: keep.length,
        points: held.length,
        actual: mean(errors.map((e) => e.actual)),
        predicted: mean(errors.map((e) => e.predicted)),
        relError: mean(errors.map((e) => e.relError)),
        maxAbsRelError: Math.max(...errors.map((e) => Math.abs(e.relError))),
        errors,
      },
    };
  }
  return {
    holdout: null,
    note: `too few distinct points to fit ${p} parameters on the lower-compute part (need ${p + 2})`,
  };
}

function quality(
  form: Form,
  data: FitData,
  delta: number,
  best: Optimum,
  starts: number[][],
  full: boolean,
): FitQuality {
  const residuals = residualsOf(form, data, best.theta);
  const m = mean(data.loss);
  let ssr = 0;
  let sst = 0;
  let ssrLog = 0;
  for (const r of residuals) {
    ssr += (r.loss - r.predicted) ** 2;
    sst += (r.loss - m) ** 2;
    ssrLog += r.logResidual ** 2;
  }
  const p = form.params.length;
  const ho = full ? computeHoldout(form, data, delta, starts) : { holdout: null, note: "quality checks off" };
  return {
    objective: best.f,
    converged: best.converged,
    r2: sst > 0 ? 1 - ssr / sst : Number.NaN,
    rmseLog: Math.sqrt(ssrLog / data.n),
    sigmaLog: data.n > p ? Math.sqrt(ssrLog / (data.n - p)) : null,
    looRmseLog: full && data.n > p ? looRmse(form, data, delta, starts) : null,
    holdout: ho.holdout,
    ...(ho.note ? { holdoutNote: ho.note } : {}),
    residuals,
  };
}

/**
 * Bootstrap refits `from` .. `to - 1`: resample points with replacement, refit from the known optima.
 * Replicate b draws from its own seed (deriveSeed(seed, b)), so results do not depend on how the
 * replicates are split over worker threads. Failed replicates (degenerate resamples) are null.
 */
export function bootstrapRange(
  form: Form,
  data: FitData,
  delta: number,
  starts: number[][],
  seed: number,
  from: number,
  to: number,
  onTick?: () => void,
): (number[] | null)[] {
  const out: (number[] | null)[] = [];
  const idx = new Array<number>(data.n);
  const need = form.uses.N && form.uses.D ? 2 : 3;
  for (let b = from; b < to; b++) {
    const rng = new Rng(deriveSeed(seed, b));
    for (let i = 0; i < data.n; i++) idx[i] = rng.int(data.n);
    const sub = subset(data, idx);
    const allEqual = sub.loss.every((v) => v === sub.loss[0]);
    if (
      (form.uses.D && new Set(sub.D).size < need) ||
      (form.uses.N && new Set(sub.N).size < need) ||
      allEqual
    ) {
      out.push(null);
    } else {
      const all = [...starts, ...(starts.length ? gridStartsFor(form, starts[0], sub) : [])];
      out.push(refit(form, sub, delta, all)?.theta ?? null);
    }
    onTick?.();
  }
  return out;
}

export function bootstrapFits(
  form: Form,
  data: FitData,
  delta: number,
  starts: number[][],
  count: number,
  seed: number,
  onTick?: (done: number, total: number) => void,
): { boot: number[][]; failures: number } {
  let done = 0;
  const all = bootstrapRange(form, data, delta, starts, seed, 0, count, () => onTick?.(++done, count));
  return collectBoot(all);
}

export function collectBoot(all: (number[] | null)[]): { boot: number[][]; failures: number } {
  const boot = all.filter((t): t is number[] => t !== null);
  return { boot, failures: all.length - boot.length };
}

/** Natural-unit parameter estimates (value from the full fit, intervals from bootstrap refits). */
export function paramEstimates(form: Form, theta: number[], boot: number[][]): Record<string, Estimate> {
  const nat = form.natural(theta);
  const bootNat = boot.map((t) => form.natural(t));
  const out: Record<string, Estimate> = {};
  for (const k of Object.keys(nat)) {
    out[k] = estimate(
      nat[k],
      bootNat.map((b) => b[k]),
    );
  }
  return out;
}

/** Bootstrap replicates to run: none for an underdetermined fit (its interval would be fake). */
export function bootstrapCount(form: Form, data: FitData, requested: number): number {
  return effectivePoints(form, data) - form.params.length >= MIN_DOF ? requested : 0;
}

/**
 * Fit a scaling-law form to points (Chinchilla approach 3 / Besiroglu et al. 2024): minimise the sum of
 * Huber losses of log-residuals with L-BFGS from the form's grid, keep the best; bootstrap over points
 * for intervals (warm starts + grid starts per replicate), a profile-likelihood interval for E;
 * residuals, R^2, leave-one-out and a compute hold-out for quality; warnings for anything unsupported.
 */
export function fitScalingLaw(points: Point[], formIn: Form | string, opts: FitOptions = {}): FitOutcome {
  const form = resolveForm(formIn);
  const delta = opts.huberDelta ?? FIT_DEFAULTS.huberDelta;
  const data = makeData(points, form, opts.label);
  const grid = opts.grid ?? form.initGrid();
  const { best, optima } = gridFit(form, data, delta, grid, opts.tight ?? TIGHT);
  const starts = refitStarts(optima);
  const count = bootstrapCount(form, data, opts.bootstrap ?? FIT_DEFAULTS.bootstrap);
  const boot =
    count > 0
      ? bootstrapFits(form, data, delta, starts, count, opts.seed ?? FIT_DEFAULTS.seed, opts.onBootstrap)
      : { boot: [], failures: 0 };
  return assembleOutcome(form, data, delta, grid.length, best, starts, { ...boot, requested: count }, opts);
}

/** Build the outcome (estimates, identification, warnings, quality) from the optimum and the refits. */
export function assembleOutcome(
  form: Form,
  data: FitData,
  delta: number,
  gridStarts: number,
  best: Optimum,
  starts: number[][],
  bootRes: { boot: number[][]; failures: number; requested: number },
  opts: FitOptions,
): FitOutcome {
  const raw: Record<string, number> = {};
  form.params.forEach((k, j) => {
    raw[k] = best.theta[j];
  });
  const nEff = effectivePoints(form, data);
  const dof = nEff - form.params.length;
  const natural = form.natural(best.theta);
  const profile = dof >= MIN_DOF ? profileE(form, data, delta, best.theta, best.f, dof) : null;
  const { warnings, params } = identify({
    form,
    theta: best.theta,
    natural,
    params: paramEstimates(form, best.theta, bootRes.boot),
    dof,
    effectivePoints: nEff,
    bootstrap: bootRes.requested,
    bootFailures: bootRes.failures,
    profile,
    rising: risingAxes(form, data),
  });
  return {
    form: form.name,
    theta: best.theta,
    raw,
    natural,
    objective: best.f,
    converged: best.converged,
    starts: gridStarts,
    optima: starts,
    boot: bootRes.boot,
    bootFailures: bootRes.failures,
    bootRequested: bootRes.requested,
    effectivePoints: nEff,
    dof,
    params,
    quality: quality(form, data, delta, best, starts, opts.quality ?? FIT_DEFAULTS.quality),
    warnings,
    data,
  };
}
