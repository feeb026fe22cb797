/**
 * Result files written by `synthmix fit` (src/fit/) and read by the report:
 *   `<ws>/results/fits.json`       FitsFile        scaling-law parameters per data mixture (+ generator table)
 *   `<ws>/results/speedups.json`   SpeedupsFile    data speed-up of each mixture over natural-only data
 *   `<ws>/results/best-ratio.json` BestRatioFile   loss-minimising synthetic ratio per (N, D)
 * Losses are nats per token (test loss of the chosen domain, "all" = mean over domains), N is
 * non-embedding parameters, D training tokens. Every estimate carries bootstrap uncertainty over runs.
 * These types are a cross-stage contract: fields may be added, existing ones keep their meaning.
 */

/** A point estimate with bootstrap uncertainty (resampling runs with replacement). */
export interface Estimate {
  /** Estimate from the fit on all points. */
  value: number;
  /** Bootstrap standard error; null when the bootstrap was off (count 0) or had < 2 successful refits. */
  se: number | null;
  /** 95% percentile interval (2.5% and 97.5% quantiles of the bootstrap refits); null like `se`. */
  lo: number | null;
  hi: number | null;
}

/** A data mixture = the rows sharing (synthetic, ratio, generator). */
export interface MixtureKey {
  /** Stable key "synthetic:ratio:generator", e.g. "hq:0.33:llama3-8b" or "none:0:" for natural-only. */
  key: string;
  /** Mixture id(s) from the sweep rows (usually one; joined with "," when several ids share the key). */
  mixture: string;
  synthetic: string;
  ratio: number;
  generator: string;
}

/** Names of the built-in forms; user-defined forms use their own name. */
export type FormName = "data" | "model" | "joint" | (string & {});

/** How the fit was made, shared by all files. */
export interface FitSettings {
  form: FormName;
  /** Test domain of the fitted losses ("all" = mean over domains). */
  domain: string;
  /** Huber delta on log-residuals (Chinchilla approach 3 default 1e-3). */
  huberDelta: number;
  /** Starts in the initialisation grid (the best optimum is kept). */
  gridStarts: number;
  /** Bootstrap refits requested (0 = no intervals). */
  bootstrap: number;
  /** Seed of the bootstrap resampling (src/util/rng.ts). */
  seed: number;
}

/** One observed point and its fitted value. */
export interface Residual {
  runId: string;
  /** N (non-embedding params); null for the data form. */
  N: number | null;
  /** D (tokens); null for the model form. */
  D: number | null;
  loss: number;
  predicted: number;
  /** log(loss) - log(predicted). */
  logResidual: number;
}

export interface FitQuality {
  /** Huber objective at the optimum (sum over points). */
  objective: number;
  /** Optimiser met its tolerance from the best start. */
  converged: boolean;
  /** R^2 of loss (linear space): 1 - SS_res / SS_tot. NaN when all losses are equal. */
  r2: number;
  /** Root-mean-square of log-residuals. */
  rmseLog: number;
  /** Leave-one-out: RMS of log-residuals of each point predicted by a fit without it; null if too few points. */
  looRmseLog: number | null;
  /**
   * Extrapolation check: fit without the points at the largest D (largest N for the model form), predict
   * them. null when that leaves too few points.
   */
  holdout: {
    /** The held-out coordinate value (D or N). */
    at: number;
    points: number;
    /** Mean observed and predicted loss of the held-out points. */
    actual: number;
    predicted: number;
    /** (predicted - actual) / actual. */
    relError: number;
  } | null;
  residuals: Residual[];
}

/** One fitted scaling law: a mixture, optionally at a fixed N (data form) or fixed D (model form). */
export interface MixtureFit extends MixtureKey {
  form: FormName;
  /** Data form fitted separately per model size: that N; null when all points were fitted together. */
  fixedN: number | null;
  /** Model form fitted separately per token budget: that D; null otherwise. */
  fixedD: number | null;
  points: number;
  /**
   * Parameters in natural units, keyed by the form's names: built-ins use A, alpha (model term),
   * B, beta (data term), E (irreducible loss). Absent keys are not part of the form.
   */
  params: Record<string, Estimate>;
  /** Raw log-space parameters of the best fit (a, alpha, b, beta, e for built-ins). */
  raw: Record<string, number>;
  quality: FitQuality;
  /** Bootstrap refits that failed (degenerate resample); excluded from the intervals. */
  bootstrapFailures: number;
}

/** A group that could not be fitted (too few points, degenerate losses), kept so the report can say so. */
export interface FitFailure extends MixtureKey {
  fixedN: number | null;
  fixedD: number | null;
  points: number;
  error: string;
}

/** Per-generator side-by-side summary of the same statistics (one row per mixture with a generator). */
export interface GeneratorRow {
  generator: string;
  synthetic: string;
  ratio: number;
  key: string;
  /** Irreducible loss E (at the largest N when fitted per N). */
  E: Estimate | null;
  /** Data speed-up at the loss of the largest natural run (largest N); see SpeedupsFile. */
  speedupAtLargestNatural: Estimate | null;
  /** Mean best ratio over the (N, D) cells of this (synthetic, generator) (quadratic fit). */
  bestRatio: Estimate | null;
}

/** `<ws>/results/fits.json`. */
export interface FitsFile {
  version: 1;
  createdBy: string;
  /** ISO time of writing. */
  createdAt: string;
  settings: FitSettings;
  fits: MixtureFit[];
  failures: FitFailure[];
  generators: GeneratorRow[];
}

/** Speed-up of one mixture over natural-only data, at one model size. */
export interface SpeedupEntry extends MixtureKey {
  /** Model size the curves are for: the per-N data fit, or the joint fit evaluated at this N. */
  N: number | null;
  method: "data-fit-per-N" | "data-fit-pooled" | "joint-at-N";
  /** Key of the natural-only baseline mixture used. */
  baseline: string;
  /**
   * speedup(L*) = D_natural(L*) / D_mix(L*), with D(L*) = (B / (L* - E))^(1/beta) from the fitted laws.
   * > 1 means the mixture reaches L* with fewer tokens. Targets below either E are omitted.
   */
  curve: { targetLoss: number; speedup: Estimate; dNatural: number; dMix: number }[];
  /** At the (mean) loss of the natural run with the largest D at this N; null if not reachable. */
  atLargestNatural: {
    targetLoss: number;
    /** Observed D of that natural run. */
    dNaturalObserved: number;
    dNatural: number;
    dMix: number;
    speedup: Estimate;
  } | null;
}

/** `<ws>/results/speedups.json`. */
export interface SpeedupsFile {
  version: 1;
  createdBy: string;
  createdAt: string;
  settings: FitSettings;
  entries: SpeedupEntry[];
  /** Why no entries were written, when none were (e.g. no natural-only mixture). */
  note?: string;
}

/** Loss versus synthetic ratio at one (synthetic, generator, N, D) cell, and the minimising ratio. */
export interface BestRatioEntry {
  synthetic: string;
  generator: string;
  N: number;
  D: number;
  /** Mean loss per ratio (the natural-only runs at this N, D count as ratio 0). */
  points: { ratio: number; loss: number; runs: number }[];
  /** loss = c0 + c1 r + c2 r^2 (>= 3 ratios); best ratio = argmin clamped to [0, 1]. */
  quadratic: { coef: [number, number, number]; bestRatio: Estimate; bestLoss: Estimate } | null;
  /**
   * Mixing law loss = c + k exp(t r) (>= 3 ratios; 4+ to be identifiable), fitted to the mean loss. It is
   * monotone in r, so on one domain its best ratio is 0 or 1. When the fitted domain is "all" and per-domain
   * rows exist, `domains` holds one law per test domain and bestRatio/bestLoss minimise their mean over
   * [0, 1] (Ye et al. 2024: one law per validation domain), which can have an interior optimum.
   */
  mixingLaw: {
    c: number;
    k: number;
    t: number;
    bestRatio: Estimate;
    bestLoss: Estimate;
    domains?: { domain: string; c: number; k: number; t: number }[];
  } | null;
  /** Ratio with the lowest observed mean loss. */
  observedBest: number;
}

/** Least-squares trend of the (quadratic) best ratio against log10 N and log10 D. */
export interface BestRatioTrend {
  synthetic: string;
  generator: string;
  /** Change in best ratio per decade of N (null when only one N); same for D. */
  perDecadeN: number | null;
  perDecadeD: number | null;
  cells: number;
}

/** `<ws>/results/best-ratio.json`. */
export interface BestRatioFile {
  version: 1;
  createdBy: string;
  createdAt: string;
  settings: FitSettings;
  entries: BestRatioEntry[];
  trends: BestRatioTrend[];
}
