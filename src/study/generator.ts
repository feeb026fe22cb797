import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeGpt2Gguf } from "../formats/gguf.js";
import { buildMixture } from "../mix/build.js";
import { loadTokenizedSource } from "../mix/sources.js";
import { loadMixTokenizer } from "../mix/tokenizer.js";
import { modelConfigFor } from "../train/ladder.js";
import { readSafetensors } from "../train/safetensors.js";
import { RunConfigSchema } from "../train/schema.js";
import { trainRun } from "../train/trainer.js";
import type { StudyConfig } from "./config.js";

export interface GeneratorModelResult {
  /** Path of the GGUF file, usable as `gguf:<path>`. */
  gguf: string;
  name: string;
  finalLoss: number;
}

/**
 * Train the study's own generator (offline demo): a small GPT on the natural training split, exported
 * to GGUF (GPT-2 architecture and BPE vocabulary, which llama.cpp runs) for the local GGUF backend.
 * Resumable: the training run checkpoints, and a finished export is reused.
 */
export async function trainGeneratorModel(opts: {
  workspace: string;
  corpusName: string;
  tokenizerPath: string;
  config: NonNullable<StudyConfig["generatorModel"]>;
  seed: number;
  threads: number;
  signal?: AbortSignal;
  progress?: boolean;
  log?: (line: string) => void;
}): Promise<GeneratorModelResult> {
  const { workspace, config } = opts;
  const dir = join(workspace, "generator");
  const gguf = join(dir, `${config.name}.gguf`);
  // One training run per generator: a study may train several (generatorModels).
  const runDir = join(dir, `run-${config.name}`);
  const tok = await loadMixTokenizer(opts.tokenizerPath, opts.threads);
  const trainJsonl = join(workspace, "corpus", opts.corpusName, "train.jsonl");
  const source = await loadTokenizedSource(workspace, "natural", trainJsonl, tok);
  // The generator trains on random windows of the whole natural split; 98% leaves room for the
  // mixture builder's end-of-text accounting.
  const mixture = await buildMixture({
    workspace,
    id: "generator-natural",
    tokenizer: tok,
    sources: [{ name: "natural", path: trainJsonl, share: 1 }],
    totalTokens: Math.floor(source.totalTokens * 0.98),
    seed: opts.seed,
    generatorTraining: true,
    log: opts.log,
  });
  const run = RunConfigSchema.parse({
    id: `generator-${config.name}`,
    modelName: config.model,
    model: modelConfigFor(config.model, tok.vocabSize, config.contextLength),
    data: { train: mixture.dir },
    tokens: config.tokens,
    batchSize: config.batchSize,
    optimizer: { lr: config.lr, warmupSteps: 20 },
    seed: opts.seed,
    threads: opts.threads,
  });
  const final = await trainRun(runDir, run, { signal: opts.signal, progress: opts.progress });
  if (!existsSync(gguf)) {
    const weights = readSafetensors(join(runDir, "model.safetensors"));
    writeGpt2Gguf(gguf, {
      config: run.model,
      tensors: weights.tensors,
      tokenizerJson: JSON.parse(readFileSync(opts.tokenizerPath, "utf8")),
      name: config.name,
    });
  }
  return { gguf, name: config.name, finalLoss: final.loss };
}
