/**
 * Result files written by `synthmix fit` (src/fit/) and read by the report, as zod schemas (one
 * read/write pair per file at the bottom):
 *   `<ws>/results/fits.json`       FitsFile        scaling-law parameters per data mixture (+ generator table)
 *   `<ws>/results/speedups.json`   SpeedupsFile    data speed-up of each mixture over natural-only data
 *   `<ws>/results/best-ratio.json` BestRatioFile   loss-minimising synthetic ratio per (N, D)
 * Losses are nats per token (test loss of the chosen domain, "all" = mean over domains), N is
 * non-embedding parameters, D training tokens. Every estimate carries bootstrap uncertainty over runs,
 * and every fit carries `warnings` (codes below): a number is either supported or flagged.
 * Version 2 added identification, warnings, dof, saved bootstrap replicates and the compute hold-out.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { writeJsonAtomic } from "../util/atomic.js";
import { SynthmixError } from "../util/errors.js";
import { parseJsonValue, readJsonFile } from "../util/json.js";

/** JSON has no NaN: JSON.stringify writes null, so numbers that can be NaN read back null -> NaN. */
const num = z.union([z.number(), z.null()]).transform((v) => (v === null ? Number.NaN : v));
const nullableNum = z.number().nullable();

/** A point estimate with bootstrap uncertainty (resampling runs with replacement). */
export const EstimateSchema = z.object({
  /** Estimate from the fit on all points. */
  value: num,
  /** Bootstrap standard error; null when the bootstrap was off (count 0) or had < 2 successful refits. */
  se: nullableNum,
  /** 95% interval (bootstrap percentile; for E the union with the profile-likelihood interval). */
  lo: nullableNum,
  hi: nullableNum,
  /** False when the value is not supported by the points (see `reason` and the fit's warnings). */
  identified: z.boolean().optional(),
  reason: z.string().optional(),
});
export type Estimate = z.infer<typeof EstimateSchema>;

/** A fitted parameter: identification is always stated. E also keeps its two intervals apart. */
export const ParamEstimateSchema = EstimateSchema.extend({
  identified: z.boolean(),
  bootstrap: z.object({ lo: nullableNum, hi: nullableNum }).optional(),
  profile: z.object({ lo: z.number(), hi: z.number() }).nullable().optional(),
});
export type ParamEstimate = z.infer<typeof ParamEstimateSchema>;

/**
 * Warning codes: E_AT_BOUND (E or its interval at 0 or at the smallest loss), E_NOT_IDENTIFIED (E's
 * interval spans most of its feasible range), UNDERDETERMINED (< parameters + 2 distinct points),
 * INVALID_LAW (exponent <= 0 or > 3, scale > 1e20), REPEATED_DATA (a source above 1 epoch),
 * BOOTSTRAP_FAILURES (> 20% failed replicates), COLLAPSED_INTERVAL (zero width from >= 100 replicates),
 * EXTRAPOLATED (a derived number read outside the fitted range), UNIDENTIFIED (a speed-up rests on a
 * parameter without an identified interval).
 */
export const WARNING_CODES = [
  "E_AT_BOUND",
  "E_NOT_IDENTIFIED",
  "UNDERDETERMINED",
  "INVALID_LAW",
  "REPEATED_DATA",
  "BOOTSTRAP_FAILURES",
  "COLLAPSED_INTERVAL",
  "EXTRAPOLATED",
  "UNIDENTIFIED",
] as const;
export const FitWarningSchema = z.object({ code: z.string(), message: z.string() });
export type FitWarning = { code: (typeof WARNING_CODES)[number] | (string & {}); message: string };

/** A data mixture = the rows sharing (synthetic, ratio, generator). */
export const MixtureKeySchema = z.object({
  /** Stable key "synthetic:ratio:generator", e.g. "hq:0.33:llama3-8b" or "none:0:" for natural-only. */
  key: z.string(),
  /** Mixture id(s) from the sweep rows (usually one; joined with "," when several ids share the key). */
  mixture: z.string(),
  synthetic: z.string(),
  ratio: z.number(),
  generator: z.string(),
});
export type MixtureKey = z.infer<typeof MixtureKeySchema>;

/** Names of the built-in forms; user-defined forms use their own name. */
export type FormName = "data" | "model" | "joint" | (string & {});

/** How the fit was made, shared by all files. */
export const FitSettingsSchema = z.object({
  form: z.string(),
  /** Test domain of the fitted losses ("all" = mean over domains). */
  domain: z.string(),
  /** Huber delta on log-residuals (Chinchilla approach 3 default 1e-3). */
  huberDelta: z.number(),
  /** Starts in the initialisation grid (the best optimum is kept). */
  gridStarts: z.number(),
  /** Bootstrap refits requested (0 = no intervals). */
  bootstrap: z.number(),
  /** Seed of the bootstrap resampling (src/util/rng.ts). */
  seed: z.number(),
});
export type FitSettings = z.infer<typeof FitSettingsSchema>;

/** One observed point and its fitted value. */
export const ResidualSchema = z.object({
  runId: z.string(),
  /** N (non-embedding params); null for the data form. */
  N: nullableNum,
  /** D (tokens); null for the model form. */
  D: nullableNum,
  loss: z.number(),
  predicted: num,
  /** log(loss) - log(predicted). */
  logResidual: num,
});
export type Residual = z.infer<typeof ResidualSchema>;

/**
 * Extrapolation check: fit on the lower-compute part (compute = N*D for the joint form, D for the data
 * form, N for the model form; the top quarter of distinct compute values is held out), predict the rest.
 */
export const HoldoutSchema = z.object({
  /** Smallest held-out compute value (N*D, D or N). */
  at: z.number(),
  /** Points fitted and points predicted. */
  fitPoints: z.number(),
  points: z.number(),
  /** Mean observed and predicted loss of the held-out points. */
  actual: z.number(),
  predicted: num,
  /** Mean of the per-point (predicted - actual) / actual. */
  relError: num,
  /** Largest |relative error| over the held-out points. */
  maxAbsRelError: num,
  errors: z.array(
    z.object({
      runId: z.string(),
      N: nullableNum,
      D: nullableNum,
      actual: z.number(),
      predicted: num,
      relError: num,
    }),
  ),
});

export const FitQualitySchema = z.object({
  /** Huber objective at the optimum (sum over points). */
  objective: z.number(),
  /** Optimiser met its tolerance from the best start. */
  converged: z.boolean(),
  /** R^2 of loss (linear space): 1 - SS_res / SS_tot. */
  r2: num,
  /** Root-mean-square of log-residuals. */
  rmseLog: num,
  /** RMS log-residual with the degrees-of-freedom correction sqrt(SSR / (n - p)); null when n <= p. */
  sigmaLog: nullableNum,
  /** Leave-one-out: RMS of log-residuals of each point predicted by a fit without it; null if too few points. */
  looRmseLog: nullableNum,
  holdout: HoldoutSchema.nullable(),
  /** Why there is no hold-out, when there is none. */
  holdoutNote: z.string().optional(),
  residuals: z.array(ResidualSchema),
});
export type FitQuality = z.infer<typeof FitQualitySchema>;

/** Repetition of the sources behind a fit (from the mixture manifests via results/runs.json). */
export const RepetitionSchema = z.object({
  /** Largest epochs of any source over the fitted runs (1 = no repetition; null = unknown). */
  maxEpochs: nullableNum,
  /** Source name -> largest epochs over the fitted runs, for sources above 1 epoch. */
  repeated: z.record(z.string(), z.number()),
});

/** One fitted scaling law: a mixture, optionally at a fixed N (data form) or fixed D (model form). */
export const MixtureFitSchema = MixtureKeySchema.extend({
  form: z.string(),
  /** Data form fitted separately per model size: that N; null when all points were fitted together. */
  fixedN: nullableNum,
  /** Model form fitted separately per token budget: that D; null otherwise. */
  fixedD: nullableNum,
  points: z.number(),
  /** Distinct design points ((N, D) pairs for joint, distinct D or N otherwise). */
  effectivePoints: z.number(),
  /** effectivePoints - parameters; intervals need >= 2. */
  dof: z.number(),
  /** Fitted range of the covariates (speed-ups outside it are marked extrapolated). */
  range: z.object({
    N: z.tuple([z.number(), z.number()]).nullable(),
    D: z.tuple([z.number(), z.number()]).nullable(),
  }),
  /**
   * Parameters in natural units, keyed by the form's names: built-ins use A, alpha (model term),
   * B, beta (data term), E (irreducible loss). Each says whether it is identified.
   */
  params: z.record(z.string(), ParamEstimateSchema),
  /** Raw log-space parameters of the best fit (a, alpha, b, beta, e for built-ins). */
  raw: z.record(z.string(), z.number()),
  quality: FitQualitySchema,
  /** Bootstrap refits that failed (degenerate resample); excluded from the intervals. */
  bootstrapFailures: z.number(),
  /** bootstrapFailures / requested replicates (0 without a bootstrap). */
  bootstrapFailureShare: z.number(),
  /** Raw log-space parameters of every successful bootstrap replicate (order of `raw`), for own intervals. */
  replicates: z.array(z.array(z.number())),
  repetition: RepetitionSchema,
  warnings: z.array(FitWarningSchema),
});
export type MixtureFit = z.infer<typeof MixtureFitSchema>;

/** A group that could not be fitted (too few points, degenerate losses), kept so the report can say so. */
export const FitFailureSchema = MixtureKeySchema.extend({
  fixedN: nullableNum,
  fixedD: nullableNum,
  points: z.number(),
  error: z.string(),
});
export type FitFailure = z.infer<typeof FitFailureSchema>;

/** Per-generator side-by-side summary of the same statistics (one row per mixture with a generator). */
export const GeneratorRowSchema = z.object({
  generator: z.string(),
  synthetic: z.string(),
  ratio: z.number(),
  key: z.string(),
  /** Irreducible loss E (at the largest N when fitted per N). */
  E: EstimateSchema.nullable(),
  /** Data speed-up at the loss of the largest natural run (largest N); see SpeedupsFile. */
  speedupAtLargestNatural: EstimateSchema.nullable(),
  /** Mean resolved best ratio over the (N, D) cells of this (synthetic, generator); null when none is. */
  bestRatio: EstimateSchema.nullable(),
});
export type GeneratorRow = z.infer<typeof GeneratorRowSchema>;

const fileHeader = {
  version: z.literal(2),
  createdBy: z.string(),
  /** ISO time of writing. */
  createdAt: z.string(),
  settings: FitSettingsSchema,
};

/** `<ws>/results/fits.json`. */
export const FitsFileSchema = z.object({
  ...fileHeader,
  fits: z.array(MixtureFitSchema),
  failures: z.array(FitFailureSchema),
  generators: z.array(GeneratorRowSchema),
});
export type FitsFile = z.infer<typeof FitsFileSchema>;

const SpeedupPointSchema = z.object({
  targetLoss: z.number(),
  speedup: EstimateSchema,
  dNatural: z.number(),
  dMix: z.number(),
  /** True when dNatural or dMix lies outside the D range its law was fitted on. */
  extrapolated: z.boolean(),
});

/** Speed-up of one mixture over natural-only data, at one model size. */
export const SpeedupEntrySchema = MixtureKeySchema.extend({
  /** Model size the curves are for: the per-N data fit, or the joint fit evaluated at this N. */
  N: nullableNum,
  method: z.enum(["data-fit-per-N", "data-fit-pooled", "joint-at-N"]),
  /** Key of the natural-only baseline mixture used. */
  baseline: z.string(),
  /**
   * speedup(L*) = D_natural(L*) / D_mix(L*), with D(L*) = (B / (L* - E))^(1/beta) from the fitted laws.
   * > 1 means the mixture reaches L* with fewer tokens. Targets below either E are omitted.
   */
  curve: z.array(SpeedupPointSchema),
  /** At the (mean) loss of the natural run with the largest D at this N; null if not reachable. */
  atLargestNatural: SpeedupPointSchema.omit({ dNatural: true, dMix: true })
    .extend({ dNaturalObserved: z.number(), dNatural: z.number(), dMix: z.number() })
    .nullable(),
  /** Warnings of the two laws (mixture and baseline) plus EXTRAPOLATED; a headline needs none of the first. */
  warnings: z.array(FitWarningSchema),
  /** The headline reading may be stated (not extrapolated; `basis` says on what grounds). */
  supported: z.boolean(),
  /**
   * Why it may be stated: `laws-identified` (both laws without warnings, every parameter identified) or
   * `interpolation` (only the floor E is unidentified; the reading lies between both laws' points at
   * this N, both follow those points and the interval is finite); null when it may not.
   */
  basis: z.enum(["laws-identified", "interpolation"]).nullable().optional(),
  /**
   * When the headline reading is extrapolated or not reachable: a bound read from the runs instead (speedup < value when
   * the mixture's mean loss at its largest budget `atD` is still above L* by `gapSe` > `threshold` standard errors (seed noise at this N, else pooled),
   * > value when at its smallest budget it is already below). Null when the runs do not settle it.
   */
  bound: z
    .object({
      side: z.enum(["below", "above"]),
      value: z.number(),
      atD: z.number(),
      loss: z.number(),
      /** L*: the mean loss of the natural run with the largest D at this N. */
      targetLoss: z.number(),
      gapSe: z.number(),
      /** The se multiple the gap had to exceed (Bonferroni over `tests` one-sided tests, t with `df`). */
      threshold: z.number().optional(),
      tests: z.number().int().optional(),
      /** Degrees of freedom of the noise estimate; null: normal quantiles. */
      df: z.number().nullable().optional(),
    })
    .nullable()
    .optional(),
});
export type SpeedupEntry = z.infer<typeof SpeedupEntrySchema>;

/** `<ws>/results/speedups.json`. */
export const SpeedupsFileSchema = z.object({
  ...fileHeader,
  entries: z.array(SpeedupEntrySchema),
  /** Why no entries were written, when none were (e.g. no natural-only mixture). */
  note: z.string().optional(),
});
export type SpeedupsFile = z.infer<typeof SpeedupsFileSchema>;

const RatioEstimateSchema = z.object({ bestRatio: EstimateSchema, bestLoss: EstimateSchema });

/** Loss versus synthetic ratio at one (synthetic, generator, N, D) cell, and the minimising ratio. */
export const BestRatioEntrySchema = z.object({
  synthetic: z.string(),
  generator: z.string(),
  N: z.number(),
  D: z.number(),
  /** Mean loss per ratio (the natural-only runs at this N, D count as ratio 0); sd over seeds when >= 2. */
  points: z.array(
    z.object({ ratio: z.number(), loss: z.number(), runs: z.number(), sd: nullableNum.optional() }),
  ),
  /**
   * loss = c0 + c1 r + c2 r^2; best ratio = argmin clamped to [0, 1]. Fitted with >= 3 ratios but only
   * `resolved` with >= 5 distinct ratios, a convex vertex inside (0, 1) and no lack of fit.
   */
  quadratic: RatioEstimateSchema.extend({
    coef: z.tuple([z.number(), z.number(), z.number()]),
    /** Lack-of-fit: RMS residual of the quadratic vs the noise level; ok when the ratio F test passes. */
    lackOfFit: z.object({ rms: z.number(), noise: z.number(), ok: z.boolean() }).nullable(),
  }).nullable(),
  /**
   * Mixing law loss = c + k exp(t r) (>= 3 ratios; 4+ to be identifiable), fitted to the mean loss. It is
   * monotone in r, so on one domain its best ratio is 0 or 1. When the fitted domain is "all" and per-domain
   * rows exist, `domains` holds one law per test domain and bestRatio/bestLoss minimise their mean over
   * [0, 1] (Ye et al. 2024: one law per validation domain), which can have an interior optimum.
   */
  mixingLaw: RatioEstimateSchema.extend({
    c: z.number(),
    k: z.number(),
    t: z.number(),
    domains: z
      .array(z.object({ domain: z.string(), c: z.number(), k: z.number(), t: z.number() }))
      .optional(),
  }).nullable(),
  /** Ratio with the lowest observed mean loss. */
  observedBest: z.number(),
  /** Noise level (log scale) used by the bootstrap: from seed replicates when present, else the fits. */
  noise: z.object({ sigmaLog: z.number(), from: z.enum(["seeds", "fit-residuals"]) }),
  /** Do the quadratic and mixing-law best ratios agree (each inside the other's interval)? */
  agreement: z.boolean().nullable(),
  /** Whether the optimum is resolved on this grid; `reason` says why not. */
  resolved: z.boolean(),
  reason: z.string().optional(),
});
export type BestRatioEntry = z.infer<typeof BestRatioEntrySchema>;

/** Least-squares trend of the (resolved quadratic) best ratio against log10 N and log10 D. */
export const BestRatioTrendSchema = z.object({
  synthetic: z.string(),
  generator: z.string(),
  /** Change in best ratio per decade of N (null when only one N); same for D. */
  perDecadeN: nullableNum,
  perDecadeD: nullableNum,
  cells: z.number(),
});
export type BestRatioTrend = z.infer<typeof BestRatioTrendSchema>;

/** `<ws>/results/best-ratio.json`. */
export const BestRatioFileSchema = z.object({
  ...fileHeader,
  entries: z.array(BestRatioEntrySchema),
  trends: z.array(BestRatioTrendSchema),
});
export type BestRatioFile = z.infer<typeof BestRatioFileSchema>;

/** Read and validate one artifact; undefined when absent (`required` false), SynthmixError when malformed. */
function readArtifact<S extends z.ZodType>(
  path: string,
  schema: S,
  required: boolean,
): z.infer<S> | undefined {
  if (!existsSync(path)) {
    if (!required) return undefined;
    throw new SynthmixError("NO_FIT_RESULTS", `${path} does not exist`, { hint: "run synthmix fit first" });
  }
  const artifact = {
    code: "BAD_FIT_RESULTS",
    what: "fit results",
    hint: "rerun synthmix fit with this version of synthmix to rewrite it",
  };
  const raw = readJsonFile(path, z.unknown(), {
    ...artifact,
    unreadableHint: "rerun synthmix fit to rewrite it",
  });
  const version = (raw as { version?: unknown } | null)?.version;
  if (version !== 2) {
    throw new SynthmixError(
      "BAD_FIT_RESULTS",
      `${path}: unsupported file version ${JSON.stringify(version)} (this synthmix reads 2)`,
      { hint: artifact.hint },
    );
  }
  return parseJsonValue(path, raw, schema, artifact);
}

/** `read(dir)` returns the file or throws NO_FIT_RESULTS; `read(dir, false)` returns undefined when absent. */
function reader<S extends z.ZodType>(file: string, schema: S) {
  function read(dir: string): z.infer<S>;
  function read(dir: string, required: boolean): z.infer<S> | undefined;
  function read(dir: string, required = true): z.infer<S> | undefined {
    return readArtifact(join(dir, file), schema, required);
  }
  return read;
}

export const readFitsFile = reader("fits.json", FitsFileSchema);
export const writeFitsFile = (dir: string, f: FitsFile) => writeJsonAtomic(join(dir, "fits.json"), f);
export const readSpeedupsFile = reader("speedups.json", SpeedupsFileSchema);
export const writeSpeedupsFile = (dir: string, f: SpeedupsFile) =>
  writeJsonAtomic(join(dir, "speedups.json"), f);
export const readBestRatioFile = reader("best-ratio.json", BestRatioFileSchema);
export const writeBestRatioFile = (dir: string, f: BestRatioFile) =>
  writeJsonAtomic(join(dir, "best-ratio.json"), f);
