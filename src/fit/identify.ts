/**
 * Is a fitted law supported by its points? Degrees of freedom, a profile-likelihood interval for the
 * irreducible loss E, law sanity, and the warnings every fit carries. A fit that fails a check keeps its
 * point estimate but is marked (warning code + `identified: false`), so nothing downstream states it as a
 * finding.
 */
import { type FitData, type Form, huberObjective } from "./forms.js";
import { type LbfgsOptions, lbfgs } from "./lbfgs.js";
import type { Estimate, FitWarning, ParamEstimate } from "./results.js";
import { leastSquares } from "./stats.js";

/** A form needs at least parameters + 2 distinct design points to have an interval (item: dof). */
export const MIN_DOF = 2;
/** e = log E below this means E has run to its lower bound 0 (E < 2e-9 nats). */
export const E_LOG_FLOOR = -20;
/** Exponents outside (0, MAX_EXPONENT] are not a scaling law (Chinchilla-type fits give 0.05-1). */
export const MAX_EXPONENT = 3;
/** Scale constants A, B above this are beyond any physical scale of a loss in nats at N, D >= 1. */
export const MAX_SCALE = 1e20;
/** Above this share of failed bootstrap replicates the intervals are unreliable. */
export const MAX_BOOT_FAILURE_SHARE = 0.2;
/** An interval wider than this share of E's feasible range [0, min loss) identifies nothing. */
export const MAX_E_RANGE_SHARE = 0.5;

const PROFILE_TOL: LbfgsOptions = { gtol: 1e-9, ftol: 1e-12, maxIter: 500 };

/** Distinct design points of a form: (N, D) pairs for the joint form, distinct X for a one-axis form. */
export function effectivePoints(form: Form, data: FitData): number {
  const keys = new Set<string>();
  for (let i = 0; i < data.n; i++) {
    keys.add(`${form.uses.N ? data.N[i] : ""}|${form.uses.D ? data.D[i] : ""}`);
  }
  return keys.size;
}

/**
 * Two-sided 97.5% quantile of Student's t with `df` degrees of freedom (exact table to 30, then the
 * Cornish-Fisher expansion, error < 1e-4). Hand-written: four lines do not justify a statistics package.
 */
export function tQuantile975(df: number): number {
  const table = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131,
    2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
  ];
  if (df < 1) return Number.POSITIVE_INFINITY;
  if (df <= 30) return table[Math.floor(df) - 1];
  const z = 1.959964;
  return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df * df);
}

export interface ProfileResult {
  lo: number;
  hi: number;
  /** Feasible range of E: [0, min observed loss). */
  feasibleHi: number;
  /** Profile points (E, objective), for plots and tests. */
  points: { E: number; f: number }[];
}

/**
 * Profile-likelihood 95% interval for E: fix e = log E on a grid over its feasible range [0, min loss),
 * minimise the Huber objective over the other parameters (continuing from the neighbour's optimum), and
 * keep the E whose objective rise passes the F test (f_p - f) / (f / dof) <= F(1, dof) = t^2. The test is
 * exact for quadratic (Gaussian) residuals and conservative (wider) where Huber is linear. Crossings are
 * refined by bisection. About 25 + 2 x 10 constrained refits.
 */
export function profileE(
  form: Form,
  data: FitData,
  delta: number,
  theta: number[],
  fMin: number,
  dof: number,
): ProfileResult | null {
  const ei = form.params.indexOf("e");
  if (ei < 0 || dof < 1) return null;
  let lmin = Number.POSITIVE_INFINITY;
  for (let i = 0; i < data.n; i++) lmin = Math.min(lmin, data.loss[i]);
  const threshold = fMin + Math.max(fMin, 1e-300) * (tQuantile975(dof) ** 2 / dof) + 1e-14;
  const solveAt = (E: number, start: number[]): { f: number; theta: number[] } => {
    const x0 = Float64Array.from(start);
    x0[ei] = E > 0 ? Math.log(E) : E_LOG_FLOOR * 2;
    const r = lbfgs(
      (x, g) => {
        const f = huberObjective(form, x, data, delta, g);
        g[ei] = 0;
        return f;
      },
      x0,
      PROFILE_TOL,
    );
    return { f: Number.isFinite(r.f) ? r.f : Number.POSITIVE_INFINITY, theta: Array.from(r.x) };
  };
  const K = 25;
  const Es = Array.from({ length: K }, (_, k) => (lmin * k) / K);
  const points: { E: number; f: number; theta: number[] }[] = [];
  // Continuation outward from the optimum: each grid E starts from its neighbour's solution.
  const eHat = Math.exp(theta[ei]);
  const startIdx = Math.min(K - 1, Math.max(0, Math.round((eHat / lmin) * K)));
  const byIdx = new Array<{ f: number; theta: number[] }>(K);
  for (const dir of [-1, 1]) {
    let prev = theta;
    for (let k = dir < 0 ? startIdx : startIdx + 1; k >= 0 && k < K; k += dir) {
      const a = solveAt(Es[k], prev);
      const b = solveAt(Es[k], theta);
      byIdx[k] = a.f <= b.f ? a : b;
      prev = byIdx[k].theta;
    }
  }
  for (let k = 0; k < K; k++) points.push({ E: Es[k], ...byIdx[k] });
  const inside = points.map((p) => p.f <= threshold);
  const inIdx = inside.flatMap((v, k) => (v ? [k] : []));
  // No grid point inside: the interval is narrower than a grid step around the optimum.
  const inLo = inIdx.length ? Math.min(eHat, Es[inIdx[0]]) : eHat;
  const inHi = inIdx.length ? Math.max(eHat, Es[inIdx[inIdx.length - 1]]) : eHat;
  const below = Es.filter((E, k) => E < inLo && !inside[k]).pop();
  const above = Es.find((E, k) => E > inHi && !inside[k]);
  const bisect = (inE: number, outE: number): number => {
    let a = inE;
    let b = outE;
    for (let i = 0; i < 10; i++) {
      const m = (a + b) / 2;
      if (solveAt(m, theta).f <= threshold) a = m;
      else b = m;
    }
    return a;
  };
  const lo = inside[0] || below === undefined ? 0 : bisect(inLo, below);
  const hi = above === undefined ? lmin : bisect(inHi, above);
  return { lo, hi, feasibleHi: lmin, points: points.map((p) => ({ E: p.E, f: p.f })) };
}

/**
 * Slopes of log loss on the form's log covariates (least squares on [1, log N, log D]): a scaling law
 * falls with N and D, so a positive slope means the points rise, which no valid law of the form describes
 * (the fitter then returns a flat or inverted law). Returns the covariates whose slope is positive.
 */
export function risingAxes(form: Form, data: FitData): string[] {
  const axes = (["N", "D"] as const).filter((a) => form.uses[a]);
  const X: number[][] = [];
  for (let i = 0; i < data.n; i++) X.push([1, ...axes.map((a) => (a === "N" ? data.logN[i] : data.logD[i]))]);
  const b = leastSquares(X, Array.from(data.logLoss));
  if (!b) return [];
  return axes.filter((_, j) => b[j + 1] > 0);
}

export interface IdentifyInput {
  form: Form;
  theta: number[];
  natural: Record<string, number>;
  params: Record<string, Estimate>;
  dof: number;
  effectivePoints: number;
  bootstrap: number;
  bootFailures: number;
  profile: ProfileResult | null;
  /** Covariates along which the points rise (see risingAxes). */
  rising?: string[];
}

function sanity(natural: Record<string, number>): string[] {
  const bad: string[] = [];
  for (const k of ["alpha", "beta"]) {
    const v = natural[k];
    if (v === undefined) continue;
    if (!(v > 0)) bad.push(`${k} = ${v.toPrecision(3)} <= 0 (loss rises with ${k === "alpha" ? "N" : "D"})`);
    else if (v > MAX_EXPONENT) bad.push(`${k} = ${v.toPrecision(3)} > ${MAX_EXPONENT}`);
  }
  for (const k of ["A", "B"]) {
    const v = natural[k];
    if (v !== undefined && !(v <= MAX_SCALE)) bad.push(`${k} = ${v.toExponential(2)} > ${MAX_SCALE}`);
  }
  return bad;
}

/** E's interval: the union of its bootstrap and profile-likelihood intervals (the more conservative). */
function eInterval(e: Estimate, profile: ProfileResult | null): { lo: number | null; hi: number | null } {
  if (!profile) return { lo: e.lo, hi: e.hi };
  return {
    lo: e.lo === null ? profile.lo : Math.min(e.lo, profile.lo),
    hi: e.hi === null ? profile.hi : Math.max(e.hi, profile.hi),
  };
}

/** Warnings of one fit and the identification of each parameter. */
export function identify(inp: IdentifyInput): {
  warnings: FitWarning[];
  params: Record<string, ParamEstimate>;
} {
  const warnings: FitWarning[] = [];
  const reasons: Record<string, string> = {};
  const all = (why: string) => {
    for (const k of Object.keys(inp.params)) reasons[k] ??= why;
  };
  if (inp.dof < MIN_DOF) {
    const p = inp.form.params.length;
    const msg = `${inp.effectivePoints} distinct design point(s) for ${p} parameters (${inp.dof} degrees of freedom; need >= ${MIN_DOF}): the law passes through the points, no interval`;
    warnings.push({ code: "UNDERDETERMINED", message: msg });
    all("underdetermined");
  }
  const bad = sanity(inp.natural);
  for (const a of inp.rising ?? [])
    bad.push(`the losses rise with ${a} (least-squares slope of log loss > 0)`);
  if (bad.length) {
    warnings.push({ code: "INVALID_LAW", message: `not a scaling law: ${bad.join("; ")}` });
    all("invalid law");
  }
  const share = inp.bootstrap > 0 ? inp.bootFailures / inp.bootstrap : 0;
  if (share > MAX_BOOT_FAILURE_SHARE) {
    warnings.push({
      code: "BOOTSTRAP_FAILURES",
      message: `${inp.bootFailures} of ${inp.bootstrap} bootstrap replicates failed (${(share * 100).toFixed(0)}% > ${MAX_BOOT_FAILURE_SHARE * 100}%): intervals unreliable`,
    });
    all("bootstrap failures");
  }
  const out: Record<string, ParamEstimate> = {};
  for (const [k, est] of Object.entries(inp.params)) {
    out[k] = { ...est, identified: false };
    if (inp.dof < MIN_DOF) out[k] = { ...out[k], se: null, lo: null, hi: null };
  }
  if (out.E && inp.dof >= MIN_DOF) checkE(inp, out, warnings, reasons);
  for (const [k, est] of Object.entries(out)) {
    if (reasons[k] || est.lo === null || est.hi === null) {
      if (!reasons[k] && est.lo === null) reasons[k] = inp.bootstrap > 0 ? "no interval" : "no bootstrap";
      continue;
    }
    if (inp.bootstrap >= 100 && est.hi - est.lo <= 1e-9 * Math.max(1, Math.abs(est.value))) {
      warnings.push({
        code: "COLLAPSED_INTERVAL",
        message: `${k}: ${inp.bootstrap} bootstrap replicates gave a zero-width interval; the refits did not move, which is a defect, not precision`,
      });
      reasons[k] = "collapsed interval";
      continue;
    }
    if ((k === "alpha" || k === "beta") && est.lo <= 0) reasons[k] = "interval reaches 0";
    if ((k === "A" || k === "B") && est.hi > MAX_SCALE) reasons[k] = "interval unbounded";
  }
  for (const k of Object.keys(out)) {
    out[k].identified = !reasons[k];
    if (reasons[k]) out[k].reason = reasons[k];
  }
  return { warnings, params: out };
}

function checkE(
  inp: IdentifyInput,
  out: Record<string, ParamEstimate>,
  warnings: FitWarning[],
  reasons: Record<string, string>,
): void {
  const e = out.E;
  const iv = eInterval(e, inp.profile);
  const feasible = inp.profile?.feasibleHi ?? null;
  out.E = {
    ...e,
    lo: iv.lo,
    hi: iv.hi,
    bootstrap: { lo: e.lo, hi: e.hi },
    profile: inp.profile ? { lo: inp.profile.lo, hi: inp.profile.hi } : null,
  };
  const ei = inp.form.params.indexOf("e");
  const floor = Math.exp(E_LOG_FLOOR);
  const atZero = (ei >= 0 && inp.theta[ei] < E_LOG_FLOOR) || (iv.lo !== null && iv.lo <= floor);
  const atTop = feasible !== null && iv.hi !== null && iv.hi >= feasible * (1 - 1e-6);
  if (atZero || atTop) {
    const where = atZero ? "0" : `the smallest observed loss ${feasible?.toPrecision(4)}`;
    warnings.push({
      code: "E_AT_BOUND",
      message: `E = ${e.value.toPrecision(4)}${iv.lo !== null ? ` [${iv.lo.toPrecision(3)}, ${iv.hi?.toPrecision(3)}]` : ""}: the fit or its interval reaches its bound ${where}; the points do not pin down the irreducible loss`,
    });
    reasons.E ??= "at bound";
    return;
  }
  if (feasible !== null && iv.lo !== null && iv.hi !== null && iv.hi - iv.lo > MAX_E_RANGE_SHARE * feasible) {
    warnings.push({
      code: "E_NOT_IDENTIFIED",
      message: `E's interval [${iv.lo.toPrecision(3)}, ${iv.hi.toPrecision(3)}] spans more than ${MAX_E_RANGE_SHARE * 100}% of its feasible range [0, ${feasible.toPrecision(4)})`,
    });
    reasons.E ??= "interval spans most of the feasible range";
  }
}
