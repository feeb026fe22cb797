/**
 * Scaling-law forms in log space (Chinchilla approach 3): log L = LSE(terms), each term linear in raw
 * parameters, e.g. joint log L = LSE(a - alpha log N, b - beta log D, e) with A = e^a, B = e^b, E = e^e.
 * A form is parameter names + a log-space predictor with analytic gradient + an initialisation grid, so
 * users can add their own (`defineForm`) and reuse the same fitter, bootstrap and quality checks.
 */

/** Columns of the points being fitted (covariates already logged for speed). */
export interface FitData {
  n: number;
  N: Float64Array;
  D: Float64Array;
  logN: Float64Array;
  logD: Float64Array;
  loss: Float64Array;
  logLoss: Float64Array;
  /** Run ids, for residual tables. */
  ids: string[];
}

export interface Form {
  name: string;
  /** Raw (log-space) parameter names, in the order of theta. */
  params: string[];
  /** Which covariates the form uses (for grouping and error messages). */
  uses: { N: boolean; D: boolean };
  /**
   * log of the predicted loss at point i; when `grad` is given, writes d(log L_hat)/d(theta) into it.
   */
  predictLog(theta: Float64Array, data: FitData, i: number, grad: Float64Array | null): number;
  /** Starting points (raw parameters); the best optimum over all of them is kept. */
  initGrid(): number[][];
  /** Natural-unit parameters from raw ones (e.g. { A, alpha, B, beta, E }). */
  natural(theta: ArrayLike<number>): Record<string, number>;
  /**
   * Optional fused objective (sum of Huber losses of log-residuals and its gradient), for speed. Must
   * equal the generic one built from `predictLog`.
   */
  objective?(theta: Float64Array, data: FitData, delta: number, grad: Float64Array): number;
}

export function range(lo: number, hi: number, step: number): number[] {
  const out: number[] = [];
  for (let i = 0; lo + i * step <= hi + 1e-9; i++) out.push(lo + i * step);
  return out;
}

/** The Chinchilla / Besiroglu et al. grid: exponents {0,.5,..,2}, e {-1,-.5,..,1}, a,b {0,5,..,25}. */
export const GRID = {
  exponent: range(0, 2, 0.5),
  e: range(-1, 1, 0.5),
  scale: range(0, 25, 5),
};

function cartesian(axes: number[][]): number[][] {
  let out: number[][] = [[]];
  for (const axis of axes) out = out.flatMap((p) => axis.map((v) => [...p, v]));
  return out;
}

/** Huber loss and its derivative, written out for the hot loops. */
export function huber(r: number, delta: number): number {
  const a = Math.abs(r);
  return a <= delta ? 0.5 * r * r : delta * (a - 0.5 * delta);
}

/**
 * L = C/X^k + E over one covariate X (D for the data form, N for the model form):
 * log L = LSE(c - k log X, e), with a fused objective for the hot loop of the grid fit.
 */
function oneAxisForm(
  name: string,
  axis: "N" | "D",
  params: [string, string, string],
  natural: (t: ArrayLike<number>) => Record<string, number>,
): Form {
  const logX = (data: FitData) => (axis === "N" ? data.logN : data.logD);
  return {
    name,
    params,
    uses: { N: axis === "N", D: axis === "D" },
    predictLog(t, data, i, grad) {
      const lx = logX(data)[i];
      const t1 = t[0] - t[1] * lx;
      const t2 = t[2];
      const m = Math.max(t1, t2);
      const w1 = Math.exp(t1 - m);
      const w2 = Math.exp(t2 - m);
      const s = w1 + w2;
      if (grad) {
        grad[0] = w1 / s;
        grad[1] = (-w1 / s) * lx;
        grad[2] = w2 / s;
      }
      return m + Math.log(s);
    },
    initGrid: () => cartesian([GRID.scale, GRID.exponent, GRID.e]),
    natural,
    objective(t, data, delta, grad) {
      const [c, k, e] = [t[0], t[1], t[2]];
      const lxs = logX(data);
      let f = 0;
      let g0 = 0;
      let g1 = 0;
      let g2 = 0;
      for (let i = 0; i < data.n; i++) {
        const lx = lxs[i];
        const t1 = c - k * lx;
        const big = t1 > e;
        const m = big ? t1 : e;
        const w1 = big ? 1 : Math.exp(t1 - m);
        const w2 = big ? Math.exp(e - m) : 1;
        const s = w1 + w2;
        const r = m + Math.log(s) - data.logLoss[i];
        const ar = r < 0 ? -r : r;
        let dr: number;
        if (ar <= delta) {
          f += 0.5 * r * r;
          dr = r;
        } else {
          f += delta * (ar - 0.5 * delta);
          dr = r < 0 ? -delta : delta;
        }
        const q = dr / s;
        g0 += q * w1;
        g1 -= q * w1 * lx;
        g2 += q * w2;
      }
      grad[0] = g0;
      grad[1] = g1;
      grad[2] = g2;
      return f;
    },
  };
}

const dataForm = () =>
  oneAxisForm("data", "D", ["b", "beta", "e"], (t) => ({ B: Math.exp(t[0]), beta: t[1], E: Math.exp(t[2]) }));
const modelForm = () =>
  oneAxisForm("model", "N", ["a", "alpha", "e"], (t) => ({
    A: Math.exp(t[0]),
    alpha: t[1],
    E: Math.exp(t[2]),
  }));

function jointForm(): Form {
  return {
    name: "joint",
    params: ["a", "alpha", "b", "beta", "e"],
    uses: { N: true, D: true },
    predictLog(t, data, i, grad) {
      const t1 = t[0] - t[1] * data.logN[i];
      const t2 = t[2] - t[3] * data.logD[i];
      const t3 = t[4];
      const m = Math.max(t1, t2, t3);
      const w1 = Math.exp(t1 - m);
      const w2 = Math.exp(t2 - m);
      const w3 = Math.exp(t3 - m);
      const s = w1 + w2 + w3;
      if (grad) {
        grad[0] = w1 / s;
        grad[1] = (-w1 / s) * data.logN[i];
        grad[2] = w2 / s;
        grad[3] = (-w2 / s) * data.logD[i];
        grad[4] = w3 / s;
      }
      return m + Math.log(s);
    },
    initGrid: () => cartesian([GRID.scale, GRID.exponent, GRID.scale, GRID.exponent, GRID.e]),
    natural: (t) => ({ A: Math.exp(t[0]), alpha: t[1], B: Math.exp(t[2]), beta: t[3], E: Math.exp(t[4]) }),
    objective(t, data, delta, grad) {
      const [a, alpha, b, beta, e] = [t[0], t[1], t[2], t[3], t[4]];
      let f = 0;
      let g0 = 0;
      let g1 = 0;
      let g2 = 0;
      let g3 = 0;
      let g4 = 0;
      const { logN, logD, logLoss } = data;
      for (let i = 0; i < data.n; i++) {
        const ln = logN[i];
        const ld = logD[i];
        const t1 = a - alpha * ln;
        const t2 = b - beta * ld;
        // The largest term's weight is exactly 1: two exps per point instead of three.
        let w1: number;
        let w2: number;
        let w3: number;
        let m: number;
        if (t1 >= t2 && t1 >= e) {
          m = t1;
          w1 = 1;
          w2 = Math.exp(t2 - m);
          w3 = Math.exp(e - m);
        } else if (t2 >= e) {
          m = t2;
          w1 = Math.exp(t1 - m);
          w2 = 1;
          w3 = Math.exp(e - m);
        } else {
          m = e;
          w1 = Math.exp(t1 - m);
          w2 = Math.exp(t2 - m);
          w3 = 1;
        }
        const s = w1 + w2 + w3;
        const r = m + Math.log(s) - logLoss[i];
        const ar = r < 0 ? -r : r;
        let dr: number;
        if (ar <= delta) {
          f += 0.5 * r * r;
          dr = r;
        } else {
          f += delta * (ar - 0.5 * delta);
          dr = r < 0 ? -delta : delta;
        }
        const q = dr / s;
        g0 += q * w1;
        g1 -= q * w1 * ln;
        g2 += q * w2;
        g3 -= q * w2 * ld;
        g4 += q * w3;
      }
      grad[0] = g0;
      grad[1] = g1;
      grad[2] = g2;
      grad[3] = g3;
      grad[4] = g4;
      return f;
    },
  };
}

const registry = new Map<string, Form>([
  ["data", dataForm()],
  ["model", modelForm()],
  ["joint", jointForm()],
]);

/** A built-in or registered form by name. */
export function getForm(name: string): Form | undefined {
  return registry.get(name);
}

export function formNames(): string[] {
  return [...registry.keys()];
}

/** Register a user-defined form (same interface as the built-ins); returns it. */
export function defineForm(form: Form): Form {
  registry.set(form.name, form);
  return form;
}

/** Sum of Huber losses of log-residuals and its gradient, via the fused path when the form has one. */
export function huberObjective(
  form: Form,
  theta: Float64Array,
  data: FitData,
  delta: number,
  grad: Float64Array,
): number {
  if (form.objective) return form.objective(theta, data, delta, grad);
  const p = theta.length;
  const gi = new Float64Array(p);
  grad.fill(0);
  let f = 0;
  for (let i = 0; i < data.n; i++) {
    const r = form.predictLog(theta, data, i, gi) - data.logLoss[i];
    f += huber(r, delta);
    const dr = Math.abs(r) <= delta ? r : Math.sign(r) * delta;
    for (let j = 0; j < p; j++) grad[j] += dr * gi[j];
  }
  return f;
}
