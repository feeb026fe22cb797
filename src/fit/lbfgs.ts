/**
 * A small L-BFGS minimiser with a strong-Wolfe line search (Nocedal & Wright, algorithms 7.4, 3.5, 3.6).
 * Hand-written because the fits run thousands of tiny (3-5 parameter) problems per call: a JS library
 * adds allocation and abstraction costs that dominate at this size, and none on npm offers analytic
 * gradients + strong Wolfe + both stopping rules we document for Node 20.
 */

/** Objective: returns f(x) and writes the gradient into `g` (same length as x). */
export type Objective = (x: Float64Array, g: Float64Array) => number;

export interface LbfgsOptions {
  /** History pairs kept (default 10). */
  memory?: number;
  /** Stop when the gradient's infinity norm is below this (default 1e-10). */
  gtol?: number;
  /** Stop when (f_k - f_{k+1}) / max(|f_k|, |f_{k+1}|, 1) <= ftol (default 1e-14; scipy's rule). */
  ftol?: number;
  maxIter?: number;
  /** Strong-Wolfe constants (default 1e-4 and 0.9). */
  c1?: number;
  c2?: number;
}

export interface LbfgsResult {
  x: Float64Array;
  f: number;
  iterations: number;
  evaluations: number;
  /** True when the gtol or ftol rule stopped the run (false: maxIter or a failed line search). */
  converged: boolean;
  reason: "gtol" | "ftol" | "maxIter" | "lineSearch" | "nonFinite";
}

function infNorm(g: Float64Array): number {
  let m = 0;
  for (let i = 0; i < g.length; i++) {
    const a = Math.abs(g[i]);
    if (a > m) m = a;
  }
  return m;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** Minimiser of the cubic through (a, fa, ga) and (b, fb, gb), or NaN when it does not exist. */
function cubicMin(a: number, fa: number, ga: number, b: number, fb: number, gb: number): number {
  const d1 = ga + gb - (3 * (fa - fb)) / (a - b);
  const disc = d1 * d1 - ga * gb;
  if (disc < 0) return Number.NaN;
  const d2 = Math.sign(b - a) * Math.sqrt(disc);
  return b - (b - a) * ((gb + d2 - d1) / (gb - ga + 2 * d2));
}

/** The iterate, its gradient, the trial point of the line search and the curvature history. */
interface State {
  fun: Objective;
  n: number;
  x: Float64Array;
  g: Float64Array;
  f: number;
  evals: number;
  /** Search direction. */
  d: Float64Array;
  /** Last point evaluated by the line search (x + t d) and its gradient. */
  xt: Float64Array;
  gt: Float64Array;
  S: Float64Array[];
  Y: Float64Array[];
  rho: number[];
  alpha: Float64Array;
}

/** phi(t) = f(x + t d): evaluates into xt/gt and returns [f, directional derivative]. */
function phi(st: State, t: number): [number, number] {
  const { n, x, d, xt, gt } = st;
  for (let i = 0; i < n; i++) xt[i] = x[i] + t * d[i];
  const ft = st.fun(xt, gt);
  st.evals++;
  return [ft, dot(gt, d)];
}

/** Two-loop recursion: d = -H g; returns the directional derivative g.d (restarting when not descent). */
function direction(st: State): number {
  const { n, g, d, S, Y, rho, alpha } = st;
  for (let i = 0; i < n; i++) d[i] = -g[i];
  const k = S.length;
  for (let j = k - 1; j >= 0; j--) {
    alpha[j] = rho[j] * dot(S[j], d);
    const y = Y[j];
    for (let i = 0; i < n; i++) d[i] -= alpha[j] * y[i];
  }
  if (k > 0) {
    const gamma = dot(S[k - 1], Y[k - 1]) / dot(Y[k - 1], Y[k - 1]);
    for (let i = 0; i < n; i++) d[i] *= gamma;
  } else {
    // First step: unit length in the steepest direction, so a huge gradient does not overshoot.
    const gn = Math.sqrt(dot(g, g));
    for (let i = 0; i < n; i++) d[i] /= Math.max(gn, 1e-300);
  }
  for (let j = 0; j < k; j++) {
    const beta = rho[j] * dot(Y[j], d);
    const s = S[j];
    for (let i = 0; i < n; i++) d[i] += s[i] * (alpha[j] - beta);
  }
  const dg0 = dot(g, d);
  if (dg0 < 0) return dg0;
  // Not a descent direction (curvature info went bad): restart from steepest descent.
  S.length = 0;
  Y.length = 0;
  rho.length = 0;
  const gn = Math.sqrt(dot(g, g));
  for (let i = 0; i < n; i++) d[i] = -g[i] / Math.max(gn, 1e-300);
  return dot(g, d);
}

/** One line search: f0, g.d at t = 0, the Wolfe constants, and the accepted step with its f and slope. */
interface Search {
  st: State;
  f0: number;
  dg0: number;
  c1: number;
  c2: number;
  t: number;
  ft: number;
  dt: number;
}

/** Sufficient decrease (Armijo) fails at t, or f is not finite there. */
const armijoFails = (ls: Search, t: number, ft: number) =>
  !Number.isFinite(ft) || ft > ls.f0 + ls.c1 * t * ls.dg0;
const curvatureHolds = (ls: Search, dt: number) => Math.abs(dt) <= -ls.c2 * ls.dg0;
const finiteOr = (v: number, fallback: number) => (Number.isFinite(v) ? v : fallback);

/** The zoom of N&W 3.6 between lo and hi, with cubic interpolation; true when a step was accepted. */
function zoom(
  ls: Search,
  lo: number,
  flo: number,
  dlo: number,
  hi: number,
  fhi: number,
  dhi: number,
): boolean {
  for (let z = 0; z < 40; z++) {
    let tj = cubicMin(lo, flo, dlo, hi, fhi, dhi);
    const left = Math.min(lo, hi);
    const width = Math.abs(hi - lo);
    if (!Number.isFinite(tj) || tj < left + 0.1 * width || tj > left + 0.9 * width) tj = (lo + hi) / 2;
    [ls.ft, ls.dt] = phi(ls.st, tj);
    if (armijoFails(ls, tj, ls.ft) || ls.ft >= flo) {
      hi = tj;
      fhi = finiteOr(ls.ft, Number.MAX_VALUE);
      dhi = finiteOr(ls.dt, 0);
    } else {
      if (curvatureHolds(ls, ls.dt)) {
        ls.t = tj;
        return true;
      }
      if (ls.dt * (hi - lo) >= 0) {
        hi = lo;
        fhi = flo;
        dhi = dlo;
      }
      lo = tj;
      flo = ls.ft;
      dlo = ls.dt;
    }
    if (Math.abs(hi - lo) < 1e-16 * Math.max(1, Math.abs(lo))) break;
  }
  // Accept a point that decreased f even without the curvature condition: better than stopping.
  if (flo < ls.f0) {
    [ls.ft, ls.dt] = phi(ls.st, lo);
    ls.t = lo;
    return true;
  }
  return false;
}

/** Strong-Wolfe line search (N&W 3.5): doubles t until the bracket is found, then zooms. */
function lineSearch(ls: Search): boolean {
  let tPrev = 0;
  let fPrev = ls.f0;
  let dPrev = ls.dg0;
  for (let k = 0; k < 30; k++) {
    const t = ls.t;
    [ls.ft, ls.dt] = phi(ls.st, t);
    const { ft, dt } = ls;
    if (armijoFails(ls, t, ft) || (k > 0 && ft >= fPrev))
      return zoom(ls, tPrev, fPrev, dPrev, t, finiteOr(ft, Number.MAX_VALUE), finiteOr(dt, 0));
    if (curvatureHolds(ls, dt)) return true;
    if (dt >= 0) return zoom(ls, t, ft, dt, tPrev, fPrev, dPrev);
    tPrev = t;
    fPrev = ft;
    dPrev = dt;
    ls.t = t * 2;
  }
  return false;
}

/** Move to the line search's point (xt, gt, ft) and keep s = xt - x, y = gt - g when sy > 0. */
function accept(st: State, ft: number, memory: number): void {
  const { n } = st;
  const s = new Float64Array(n);
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    s[i] = st.xt[i] - st.x[i];
    y[i] = st.gt[i] - st.g[i];
  }
  const sy = dot(s, y);
  [st.x, st.xt] = [st.xt, st.x];
  [st.g, st.gt] = [st.gt, st.g];
  st.f = ft;
  if (sy > 1e-300) {
    if (st.S.length === memory) {
      st.S.shift();
      st.Y.shift();
      st.rho.shift();
    }
    st.S.push(s);
    st.Y.push(y);
    st.rho.push(1 / sy);
  }
}

export function lbfgs(fun: Objective, x0: ArrayLike<number>, opts: LbfgsOptions = {}): LbfgsResult {
  const n = x0.length;
  const m = opts.memory ?? 10;
  const gtol = opts.gtol ?? 1e-10;
  const ftol = opts.ftol ?? 1e-14;
  const maxIter = opts.maxIter ?? 1000;
  const c1 = opts.c1 ?? 1e-4;
  const c2 = opts.c2 ?? 0.9;

  const x = Float64Array.from(x0);
  const g = new Float64Array(n);
  const st: State = {
    fun,
    n,
    x,
    g,
    f: fun(x, g),
    evals: 1,
    d: new Float64Array(n),
    xt: new Float64Array(n),
    gt: new Float64Array(n),
    S: [],
    Y: [],
    rho: [],
    alpha: new Float64Array(m),
  };
  const result = (iterations: number, converged: boolean, reason: LbfgsResult["reason"]): LbfgsResult => ({
    x: st.x,
    f: st.f,
    iterations,
    evaluations: st.evals,
    converged,
    reason,
  });
  if (!Number.isFinite(st.f)) return result(0, false, "nonFinite");
  if (infNorm(st.g) < gtol) return result(0, true, "gtol");

  for (let iter = 1; iter <= maxIter; iter++) {
    const dg0 = direction(st);
    const ls: Search = { st, f0: st.f, dg0, c1, c2, t: 1, ft: 0, dt: 0 };
    if (!lineSearch(ls)) return result(iter, infNorm(st.g) < gtol, "lineSearch");
    const fOld = st.f;
    accept(st, ls.ft, m);
    if (infNorm(st.g) < gtol) return result(iter, true, "gtol");
    if ((fOld - st.f) / Math.max(Math.abs(fOld), Math.abs(st.f), 1) <= ftol)
      return result(iter, true, "ftol");
  }
  return result(maxIter, false, "maxIter");
}
