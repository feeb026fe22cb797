import { z } from "zod";
import { parseJsonRecord } from "../util/json.js";

/**
 * `runs/<id>/config.json`: everything a trainer (ours or an external one) needs to run one training run.
 * Paths are absolute or relative to the config file's folder.
 */
export const ModelConfigSchema = z.object({
  nLayer: z.number().int().positive(),
  dModel: z.number().int().positive(),
  nHead: z.number().int().positive(),
  contextLength: z.number().int().positive(),
  vocabSize: z.number().int().positive(),
});
export type ModelConfig = z.infer<typeof ModelConfigSchema>;

export const OptimizerConfigSchema = z.object({
  lr: z.number().positive().default(1e-3),
  minLrRatio: z.number().min(0).max(1).default(0.1),
  warmupSteps: z.number().int().min(0).default(20),
  weightDecay: z.number().min(0).default(0.1),
  beta1: z.number().min(0).max(1).default(0.9),
  beta2: z.number().min(0).max(1).default(0.95),
  eps: z.number().positive().default(1e-8),
  gradClip: z.number().positive().default(1.0),
  /**
   * LR schedule after the linear warmup (absent = "cosine"): "cosine" decays to minLrRatio x lr at the
   * last step; "wsd" (warmup-stable-decay) holds lr and cools down over the last decayFraction of the
   * steps (1-sqrt shape) to minLrRatio x lr; "constant" holds lr (the shared trunk of a WSD ladder).
   */
  schedule: z.enum(["cosine", "wsd", "constant"]).optional(),
  /** WSD: fraction of the steps spent in the cooldown (default 0.2). */
  decayFraction: z.number().gt(0).max(1).optional(),
});
export type OptimizerConfig = z.infer<typeof OptimizerConfigSchema>;

export const RunConfigSchema = z.object({
  id: z.string().min(1),
  /** Named ladder size (e.g. "s3") that produced `model`, if any. */
  modelName: z.string().optional(),
  model: ModelConfigSchema,
  data: z.object({
    /** Path to a mixture folder holding tokens.bin + manifest.json. */
    train: z.string(),
    /** Path to a test-set folder holding manifest.json + <domain>.bin files. */
    test: z.string().optional(),
  }),
  /** Training budget D in tokens (exact: steps = ceil(D / tokensPerStep), last step may be partial). */
  tokens: z.number().int().positive(),
  /** Sequences per micro-batch and micro-batches per optimizer step. */
  batchSize: z.number().int().positive().default(16),
  gradAccum: z.number().int().positive().default(1),
  optimizer: OptimizerConfigSchema.default(OptimizerConfigSchema.parse({})),
  seed: z.number().int().default(1234),
  /**
   * Training windows: `epoch` cuts the data into non-overlapping windows and visits each once per epoch
   * in a seeded order (a one-epoch budget reads every token once); `random` draws windows uniformly with
   * replacement (nanoGPT), which at one epoch repeats ~37% of them and skips ~37%. See train/data.ts.
   */
  sampling: z.enum(["epoch", "random"]).default("epoch"),
  /** Evaluate every this many optimizer steps (0: only at the end), on `evalTokens` tokens per domain. */
  evalEvery: z.number().int().min(0).default(0),
  evalTokens: z.number().int().positive().default(32768),
  /**
   * Checkpoint cadence (neither changes a result: a resume is bit-exact from any step). Given
   * `checkpointEvery`, a resumable checkpoint every this many steps (0: only at the end); without it,
   * at the first step at least `checkpointSec` (default 10) seconds of training after the last one (docs/train.md,
   * Checkpoint cadence: a checkpoint costs 8-25 ms CPU plus an fsync stall on the demo's models, which
   * at the former 50 steps was ~10% of a sweep's training time).
   */
  checkpointEvery: z.number().int().min(0).optional(),
  checkpointSec: z.number().positive().optional(),
  /**
   * WSD ladder (optimizer.schedule "wsd"): start from the shared constant-LR trunk `trunk` (a folder,
   * relative to the run folder or absolute) at this run's cooldown start and train only the cooldown.
   * `ladder` lists every budget of the ladder: the trunk snapshots each one's branch point (train/wsd.ts).
   */
  wsd: z.object({ trunk: z.string().min(1), ladder: z.array(z.number().int().positive()).min(1) }).optional(),
  /** Threads for the native kernels. */
  threads: z.number().int().positive().default(2),
});
export type RunConfig = z.infer<typeof RunConfigSchema>;

/**
 * One line of `runs/<id>/metrics.jsonl`: the one contract of the file, for our trainer (which writes it),
 * external trainers (docs/train.md) and every reader (sweep, study, checkpoints).
 */
const num = z.number().finite();
export const MetricRecordSchema = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("train"),
    step: z.number().int(),
    tokens: num,
    loss: num,
    lr: num,
    gradNorm: num,
    tokensPerSec: num,
    elapsedSec: num,
  }),
  z.object({
    type: z.literal("eval"),
    step: z.number().int(),
    tokens: num,
    domain: z.string(),
    loss: num,
    evalTokens: num,
  }),
  z.object({
    type: z.literal("final"),
    step: z.number().int(),
    tokens: num,
    loss: num,
    losses: z.record(z.string(), num),
    nonEmbeddingParams: num,
    totalParams: num,
    flops: num,
    tokensPerSec: num,
    elapsedSec: num,
  }),
]);
export type MetricRecord = z.infer<typeof MetricRecordSchema>;
/** Validate one metrics.jsonl line; a bad one is a BadRecordError naming `path:line` and the field. */
export function parseMetricRecord(path: string, line: number, value: unknown): MetricRecord {
  return parseJsonRecord(path, line, value, MetricRecordSchema, {
    what: "a metrics record",
    hint: "trainers (ours and external ones) must write the MetricRecord schema (docs/train.md)",
  });
}

/** The `final` record: a finished run's result. */
export const FinalMetricSchema = MetricRecordSchema.options[2];
export type FinalMetric = z.infer<typeof FinalMetricSchema>;
