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

export function lbfgs(fun: Objective, x0: ArrayLike<number>, opts: LbfgsOptions = {}): LbfgsResult {
  const n = x0.length;
  const m = opts.memory ?? 10;
  const gtol = opts.gtol ?? 1e-10;
  const ftol = opts.ftol ?? 1e-14;
  const maxIter = opts.maxIter ?? 1000;
  const c1 = opts.c1 ?? 1e-4;
  const c2 = opts.c2 ?? 0.9;

  let x = Float64Array.from(x0);
  let g = new Float64Array(n);
  let f = fun(x, g);
  let evals = 1;
  const S: Float64Array[] = [];
  const Y: Float64Array[] = [];
  const rho: number[] = [];
  const alpha = new Float64Array(m);
  const d = new Float64Array(n);
  let xt = new Float64Array(n);
  let gt = new Float64Array(n);
  if (!Number.isFinite(f))
    return { x, f, iterations: 0, evaluations: evals, converged: false, reason: "nonFinite" };
  if (infNorm(g) < gtol) return { x, f, iterations: 0, evaluations: evals, converged: true, reason: "gtol" };

  // phi(t) = f(x + t d): evaluates into xt/gt and returns [f, directional derivative].
  const phi = (t: number): [number, number] => {
    for (let i = 0; i < n; i++) xt[i] = x[i] + t * d[i];
    const ft = fun(xt, gt);
    evals++;
    return [ft, dot(gt, d)];
  };

  for (let iter = 1; iter <= maxIter; iter++) {
    // Two-loop recursion: d = -H g.
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
    let dg0 = dot(g, d);
    if (!(dg0 < 0)) {
      // Not a descent direction (curvature info went bad): restart from steepest descent.
      S.length = 0;
      Y.length = 0;
      rho.length = 0;
      const gn = Math.sqrt(dot(g, g));
      for (let i = 0; i < n; i++) d[i] = -g[i] / Math.max(gn, 1e-300);
      dg0 = dot(g, d);
    }

    // Strong-Wolfe line search (N&W 3.5) with cubic-interpolating zoom (3.6).
    const f0 = f;
    let tPrev = 0;
    let fPrev = f0;
    let dPrev = dg0;
    let t = 1;
    let found = false;
    let ft = 0;
    let dt = 0;
    const zoom = (lo: number, flo: number, dlo: number, hi: number, fhi: number, dhi: number): boolean => {
      for (let z = 0; z < 40; z++) {
        let tj = cubicMin(lo, flo, dlo, hi, fhi, dhi);
        const left = Math.min(lo, hi);
        const width = Math.abs(hi - lo);
        if (!Number.isFinite(tj) || tj < left + 0.1 * width || tj > left + 0.9 * width) tj = (lo + hi) / 2;
        [ft, dt] = phi(tj);
        if (!Number.isFinite(ft) || ft > f0 + c1 * tj * dg0 || ft >= flo) {
          hi = tj;
          fhi = Number.isFinite(ft) ? ft : Number.MAX_VALUE;
          dhi = Number.isFinite(dt) ? dt : 0;
        } else {
          if (Math.abs(dt) <= -c2 * dg0) {
            t = tj;
            return true;
          }
          if (dt * (hi - lo) >= 0) {
            hi = lo;
            fhi = flo;
            dhi = dlo;
          }
          lo = tj;
          flo = ft;
          dlo = dt;
        }
        if (Math.abs(hi - lo) < 1e-16 * Math.max(1, Math.abs(lo))) break;
      }
      // Accept a point that decreased f even without the curvature condition: better than stopping.
      if (flo < f0) {
        [ft, dt] = phi(lo);
        t = lo;
        return true;
      }
      return false;
    };
    for (let ls = 0; ls < 30; ls++) {
      [ft, dt] = phi(t);
      if (!Number.isFinite(ft) || ft > f0 + c1 * t * dg0 || (ls > 0 && ft >= fPrev)) {
        found = zoom(
          tPrev,
          fPrev,
          dPrev,
          t,
          Number.isFinite(ft) ? ft : Number.MAX_VALUE,
          Number.isFinite(dt) ? dt : 0,
        );
        break;
      }
      if (Math.abs(dt) <= -c2 * dg0) {
        found = true;
        break;
      }
      if (dt >= 0) {
        found = zoom(t, ft, dt, tPrev, fPrev, dPrev);
        break;
      }
      tPrev = t;
      fPrev = ft;
      dPrev = dt;
      t *= 2;
    }
    if (!found) {
      return {
        x,
        f,
        iterations: iter,
        evaluations: evals,
        converged: infNorm(g) < gtol,
        reason: "lineSearch",
      };
    }

    // Accept: s = xt - x, y = gt - g.
    const s = new Float64Array(n);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      s[i] = xt[i] - x[i];
      y[i] = gt[i] - g[i];
    }
    const sy = dot(s, y);
    [x, xt] = [xt, x];
    [g, gt] = [gt, g];
    const fOld = f;
    f = ft;
    if (sy > 1e-300) {
      if (S.length === m) {
        S.shift();
        Y.shift();
        rho.shift();
      }
      S.push(s);
      Y.push(y);
      rho.push(1 / sy);
    }
    if (infNorm(g) < gtol)
      return { x, f, iterations: iter, evaluations: evals, converged: true, reason: "gtol" };
    if ((fOld - f) / Math.max(Math.abs(fOld), Math.abs(f), 1) <= ftol) {
      return { x, f, iterations: iter, evaluations: evals, converged: true, reason: "ftol" };
    }
  }
  return { x, f, iterations: maxIter, evaluations: evals, converged: false, reason: "maxIter" };
}
