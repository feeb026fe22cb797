import { z } from "zod";

/**
 * Options of the fit stage, every default held once: `fitScalingLaw`, `fitRows`/`fitWorkspace`, the CLI
 * (`synthmix fit`) and the study (`fit:` in study.yaml) all read their defaults from here.
 *
 * bootstrap = 1000: 95% percentile intervals use the 2.5% and 97.5% tails, i.e. the 25th of 1000 sorted
 * replicates; with 200 (the study's old default) the tail rests on 5 replicates and moves by about a
 * standard error between seeds (Efron & Tibshirani 1993, ch. 19, recommend >= 1000 for percentile
 * intervals). The fits are cheap enough (bench/fit.ts: 1000 joint refits on 250 points in a few seconds),
 * so the study no longer trades honesty of the tails for speed.
 */
export const FitStageSchema = z.strictObject({
  /** data | model | joint, or a form registered with defineForm (library callers may pass the Form). */
  form: z.string().default("joint"),
  /** Test domain of the fitted losses ("all" = mean over domains). */
  domain: z.string().default("all"),
  /** Bootstrap refits over runs for the intervals (0: point estimates only, every parameter unidentified). */
  bootstrap: z.number().int().min(0).default(1000),
  /** Seed of the bootstrap resampling. */
  seed: z.number().int().min(0).default(0),
  /** Huber delta on log-residuals (Chinchilla approach 3). */
  huberDelta: z.number().positive().default(1e-3),
  /** Leave-one-out and the compute hold-out. */
  quality: z.boolean().default(true),
  /** Target losses on each speed-up curve. */
  curvePoints: z.number().int().min(2).default(20),
  /** Worker threads for grid screening and bootstrap (pays off from ~100 points per fit). */
  workers: z.number().int().min(1).default(1),
});

export type FitStageOptions = z.infer<typeof FitStageSchema>;
export type FitStageInput = z.input<typeof FitStageSchema>;

/** The defaults, parsed once from the schema. */
export const FIT_DEFAULTS: FitStageOptions = FitStageSchema.parse({});
