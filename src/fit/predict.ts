import type { RunResultRow } from "../sweep/results.js";
import { deriveSeed, Rng } from "../util/rng.js";
import { resolveForm } from "./fit.js";
import type { FitData, Form } from "./forms.js";
import { mixtureKeyOf } from "./groups.js";
import type { FitsFile, MixtureFit } from "./results.js";
import { quantileSorted } from "./stats.js";

export interface Prediction {
  N: number | null;
  D: number | null;
  /** Predicted loss of the full fit. */
  loss: number;
  /** 95% prediction interval: parameter uncertainty (bootstrap replicates) plus residual noise. */
  lo: number | null;
  hi: number | null;
  /** Outside the N or D range the law was fitted on. */
  extrapolated: boolean;
}

function one(N: number | null, D: number | null): FitData {
  const n = N ?? 1;
  const d = D ?? 1;
  return {
    n: 1,
    N: Float64Array.of(n),
    D: Float64Array.of(d),
    logN: Float64Array.of(Math.log(n)),
    logD: Float64Array.of(Math.log(d)),
    loss: Float64Array.of(1),
    logLoss: Float64Array.of(0),
    ids: ["predict"],
  };
}

/**
 * Predictions with 95% prediction intervals: for replicate b, log L_b = log L(theta_b) + sigma z_b with
 * theta_b a saved bootstrap replicate and z_b standard normal (seeded), sigma the residual log-noise with
 * its dof correction; the interval is the 2.5% and 97.5% quantiles of L_b. Without replicates there is no
 * interval (lo/hi null), never a parameter-free guess.
 */
export function predictWithIntervals(
  form: Form,
  theta: number[],
  replicates: number[][],
  sigmaLog: number | null,
  at: { N?: number | null; D?: number | null }[],
  range: { N: [number, number] | null; D: [number, number] | null },
  seed = 0,
): Prediction[] {
  return at.map((q, i) => {
    const N = form.uses.N ? (q.N ?? null) : null;
    const D = form.uses.D ? (q.D ?? null) : null;
    const data = one(N, D);
    const loss = Math.exp(form.predictLog(Float64Array.from(theta), data, 0, null));
    const outside = (v: number | null, r: [number, number] | null) =>
      v !== null && r !== null && (v < r[0] * (1 - 1e-9) || v > r[1] * (1 + 1e-9));
    const extrapolated = outside(N, range.N) || outside(D, range.D);
    if (replicates.length < 2 || sigmaLog === null) return { N, D, loss, lo: null, hi: null, extrapolated };
    const rng = new Rng(deriveSeed(seed, "predict", i));
    const draws = replicates
      .map((t) => Math.exp(form.predictLog(Float64Array.from(t), data, 0, null) + sigmaLog * rng.normal()))
      .filter(Number.isFinite)
      .sort((a, b) => a - b);
    if (draws.length < 2) return { N, D, loss, lo: null, hi: null, extrapolated };
    return { N, D, loss, lo: quantileSorted(draws, 0.025), hi: quantileSorted(draws, 0.975), extrapolated };
  });
}

/** Replicates and noise of a saved fit, as `predictWithIntervals` takes them. */
export function predictFromFit(fit: MixtureFit, at: { N?: number | null; D?: number | null }[], seed = 0) {
  const form = resolveForm(fit.form);
  const theta = form.params.map((k) => fit.raw[k]);
  return predictWithIntervals(form, theta, fit.replicates, fit.quality.sigmaLog, at, fit.range, seed);
}

/**
 * `synthmix fit --predict G`: every row of G predicted by the fits of its mixture (by the group /
 * mixture columns), or by every fit when G names no fitted mixture; per-N (per-D) fits only at their N (D).
 */
export function predictRows(
  fits: FitsFile,
  rows: RunResultRow[],
): (Prediction & { key: string; warnings: string[] })[] {
  const keys = new Set(fits.fits.map((f) => f.key));
  const out: (Prediction & { key: string; warnings: string[] })[] = [];
  rows.forEach((r, i) => {
    const k = mixtureKeyOf(r);
    const mine = fits.fits.filter(
      (f) =>
        (!keys.has(k) || f.key === k) &&
        (f.fixedN === null || f.fixedN === r.nonEmbeddingParams) &&
        (f.fixedD === null || f.fixedD === r.tokens),
    );
    for (const f of mine) {
      const [p] = predictFromFit(
        f,
        [{ N: r.nonEmbeddingParams, D: r.tokens }],
        deriveSeed(fits.settings.seed, i),
      );
      // The law's warnings travel with its predictions: an unidentified E makes the interval optimistic.
      out.push({ key: f.key, ...p, warnings: f.warnings.map((w) => w.code) });
    }
  });
  return out;
}
