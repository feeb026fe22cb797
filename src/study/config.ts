import { z } from "zod";
import { corpusConfigSchema } from "../corpus/config.js";
import { FitStageSchema } from "../fit/options.js";
import { SamplingSchema } from "../generate/options.js";
import { CountSchema, MixtureEntrySchema, ModelEntrySchema, SweepSpecSchema } from "../sweep/spec.js";
import { SynthmixError } from "../util/errors.js";

const Count = CountSchema;

/**
 * corpus: the corpus stage's own options schema (src/corpus/config.ts), so a study imports with exactly
 * the defaults of `synthmix corpus import`. Two differences, both because the study owns them: `from`
 * is a string resolved against the config file's folder, and the split seed is the study's `seed`.
 */
export const StudyCorpusSchema = corpusConfigSchema
  .omit({ from: true, seed: true })
  .extend({
    /** "brown" (built in), or a JSONL / Parquet / text folder / WARC / WET path (relative to the config). */
    from: z.string().min(1).default("brown"),
  })
  .strict();

export const StudyTokenizerSchema = z.strictObject({
  /** Train a byte-level BPE of this size on the natural training split... */
  vocabSize: z.number().int().min(257).max(200000).default(4096),
  /** ...or use an existing Hugging Face tokenizer.json ("gpt2" for GPT-2's vocabulary). */
  file: z.string().optional(),
});

/**
 * generatorModel: train the generator with synthmix itself (the offline demo). The model is trained on
 * the natural training split, exported to GGUF and served through the local GGUF backend. Such a model
 * is tiny and weak; real studies list an LLM endpoint under generate.generators instead.
 */
export const StudyGeneratorModelSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/)
    .default("synthmix-demo"),
  model: z.string().default("s3"),
  tokens: Count.default(2_000_000),
  contextLength: z.number().int().positive().default(128),
  batchSize: z.number().int().positive().default(16),
  lr: z.number().positive().default(2e-3),
});

export const StudyGenerateSchema = z.strictObject({
  styles: z.array(z.string().min(1)).min(1).default(["hq", "qa", "txbk"]),
  /** Generator specs: `openai:http://host:8000/v1:model`, `gguf:path/model.gguf` (see `synthmix generate`). */
  generators: z.array(z.string().min(1)).default([]),
  /**
   * Accepted output tokens per style and generator, or "auto": for each (style, generator) the most
   * any planned run takes from that source (share x tokens), times 1 + budgetMargin, so that no run
   * repeats synthetic text (with sweep.allowRepeat false the study stops before training if it falls short).
   */
  budgetOutputTokens: z.union([z.literal("auto"), Count]).optional(),
  /** Headroom of the "auto" budget over the largest need (end-of-text tokens, rejected outputs). */
  budgetMargin: z.number().min(0).max(2).default(0.05),
  /** Source tokens per style and generator. */
  budgetSourceTokens: Count.optional(),
  chunkTokens: z.number().int().positive().default(300),
  // Sampling defaults come from the one generation schema (src/generate/options.ts), not from here.
  temperature: SamplingSchema.shape.temperature,
  topP: z.number().gt(0).max(1).optional(),
  maxTokens: SamplingSchema.shape.max_tokens,
  minOutputTokens: z.number().int().min(0).optional(),
  keywords: z.number().int().positive().optional(),
  audiences: z.array(z.string()).optional(),
  threads: z.number().int().positive().optional(),
  retries: z.number().int().min(0).optional(),
  /** Accept outputs cut off at maxTokens and skip the QA-pair check: only for weak demo generators. */
  lenient: z.boolean().default(false),
  timeoutMs: z.number().positive().optional(),
});

/** The fit stage's own options schema (src/fit/options.ts): the same defaults as `synthmix fit`. */
export const StudyFitSchema = FitStageSchema.pick({ bootstrap: true, huberDelta: true });

export const StudyReportSchema = z.strictObject({
  title: z.string().default("synthmix study report"),
  notes: z.array(z.string()).default([]),
});

/**
 * One more grid (the same fields as sweep.grid), expanded into explicit runs and added to the sweep;
 * runs it shares with the main grid (same model, budget, mixture, generator and seed) are trained once.
 * Used for a ratio study (many ratios x seeds in a few (N, D) cells) or a second generator on a subset.
 */
export const StudyExtraGridSchema = z.strictObject({
  /** What the cells are for (shown in the plan), e.g. "ratio study, small model". */
  label: z.string().optional(),
  models: z.array(ModelEntrySchema).min(1),
  tokens: z.array(Count).min(1),
  mixtures: z.array(MixtureEntrySchema).min(1),
  generators: z.array(z.string().regex(/^[A-Za-z0-9_.-]+$/)).default([]),
  seeds: z.array(z.number().int()).default([1]),
});

/** A whole study in one file: `synthmix study run study.yaml`. */
export const StudyConfigSchema = z.strictObject({
  /** Workspace folder (relative to the config file; default: the config file's folder). */
  workspace: z.string().optional(),
  seed: z.number().int().default(1),
  /** Parallelism for tokenization and generation; training follows sweep.scheduler. */
  threads: z.number().int().positive().default(2),
  corpus: StudyCorpusSchema.default(StudyCorpusSchema.parse({})),
  tokenizer: StudyTokenizerSchema.default(StudyTokenizerSchema.parse({})),
  generatorModel: StudyGeneratorModelSchema.optional(),
  /** Several self-trained generators (e.g. two sizes, to exercise the generator comparison). */
  generatorModels: z.array(StudyGeneratorModelSchema).default([]),
  generate: StudyGenerateSchema.optional(),
  sweep: SweepSpecSchema,
  extraGrids: z.array(StudyExtraGridSchema).default([]),
  fit: StudyFitSchema.default(StudyFitSchema.parse({})),
  report: StudyReportSchema.default(StudyReportSchema.parse({})),
});

export type StudyConfig = z.infer<typeof StudyConfigSchema>;
export type StudyGeneratorModel = z.infer<typeof StudyGeneratorModelSchema>;

/** Every self-trained generator of a study (`generatorModel` first, then `generatorModels`); names unique. */
export function studyGeneratorModels(config: StudyConfig): StudyGeneratorModel[] {
  const all = [...(config.generatorModel ? [config.generatorModel] : []), ...config.generatorModels];
  const seen = new Set<string>();
  for (const g of all) {
    if (seen.has(g.name)) {
      throw new SynthmixError("CONFIG", `generatorModels: two generators are named "${g.name}"`, {
        hint: "give each self-trained generator its own name",
      });
    }
    seen.add(g.name);
  }
  return all;
}
export type StudyConfigInput = z.input<typeof StudyConfigSchema>;
