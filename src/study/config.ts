import { z } from "zod";
import { SamplingSchema } from "../generate/options.js";
import { CountSchema, SweepSpecSchema } from "../sweep/spec.js";

const Count = CountSchema;

/** corpus: where the natural text comes from and how it is cleaned and split. */
export const StudyCorpusSchema = z.strictObject({
  /** "brown" (built in), or a JSONL / Parquet / text folder / WARC / WET path (relative to the config). */
  from: z.string().default("brown"),
  name: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/)
    .optional(),
  textField: z.string().optional(),
  testFraction: z.number().gt(0).lt(1).default(0.1),
  testBy: z.enum(["group", "domain", "none"]).default("group"),
  minTestDocs: z.number().int().positive().optional(),
  minChars: z.number().int().min(0).optional(),
  maxChars: z.number().int().positive().optional(),
  nearDedup: z.number().gt(0).max(1).optional(),
  maxDocs: z.number().int().positive().optional(),
  skipBadRecords: z.boolean().default(false),
});

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
  /** Accepted output tokens per style and generator. */
  budgetOutputTokens: Count.optional(),
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

export const StudyFitSchema = z.strictObject({
  bootstrap: z.number().int().min(0).default(200),
  huberDelta: z.number().positive().optional(),
});

export const StudyReportSchema = z.strictObject({
  title: z.string().default("synthmix study report"),
  notes: z.array(z.string()).default([]),
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
  generate: StudyGenerateSchema.optional(),
  sweep: SweepSpecSchema,
  fit: StudyFitSchema.default(StudyFitSchema.parse({})),
  report: StudyReportSchema.default(StudyReportSchema.parse({})),
});

export type StudyConfig = z.infer<typeof StudyConfigSchema>;
export type StudyConfigInput = z.input<typeof StudyConfigSchema>;
