import type { Estimate } from "./results.js";

/** Linear-interpolated quantile (type 7, as numpy's default) of an ascending-sorted array. */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const h = (n - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(n - 1, lo + 1);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

/** Estimate from a point value and bootstrap replicates (non-finite replicates are dropped). */
export function estimate(value: number, samples: number[] | null | undefined): Estimate {
  const s = (samples ?? []).filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length < 2) return { value, se: null, lo: null, hi: null };
  let mean = 0;
  for (const v of s) mean += v;
  mean /= s.length;
  let ss = 0;
  for (const v of s) ss += (v - mean) * (v - mean);
  return {
    value,
    se: Math.sqrt(ss / (s.length - 1)),
    lo: quantileSorted(s, 0.025),
    hi: quantileSorted(s, 0.975),
  };
}

export function mean(xs: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  return s / xs.length;
}

/** Ordinary least squares y = X b (small dense normal equations solved by Gaussian elimination). */
export function leastSquares(X: number[][], y: number[]): number[] | null {
  const p = X[0]?.length ?? 0;
  const A = Array.from({ length: p }, () => new Array<number>(p + 1).fill(0));
  for (let i = 0; i < X.length; i++) {
    for (let j = 0; j < p; j++) {
      for (let k = 0; k < p; k++) A[j][k] += X[i][j] * X[i][k];
      A[j][p] += X[i][j] * y[i];
    }
  }
  for (let c = 0; c < p; c++) {
    let piv = c;
    for (let r = c + 1; r < p; r++) if (Math.abs(A[r][c]) > Math.abs(A[piv][c])) piv = r;
    if (Math.abs(A[piv][c]) < 1e-12 * Math.max(1, Math.abs(A[c][c]))) return null;
    [A[c], A[piv]] = [A[piv], A[c]];
    for (let r = 0; r < p; r++) {
      if (r === c) continue;
      const fct = A[r][c] / A[c][c];
      for (let k = c; k <= p; k++) A[r][k] -= fct * A[c][k];
    }
  }
  return A.map((row, j) => row[p] / row[j]);
}
