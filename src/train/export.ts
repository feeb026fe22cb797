import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type HfTokenizerJson, writeGpt2Gguf } from "../formats/gguf.js";
import { Tokenizer } from "../tokenizer/index.js";
import { SynthmixError } from "../util/errors.js";
import { readModelConfig } from "./checkpoint.js";
import { readSafetensors } from "./safetensors.js";

/**
 * Exports a trained run as a GGUF file (llama.cpp "gpt2" architecture) through the generate stage's
 * writer: our model.safetensors already uses Hugging Face GPT-2 names and Conv1D layouts, which is
 * what `writeGpt2Gguf` takes. The tokenizer.json must be the one the run's data was tokenized with.
 */
export function exportGguf(
  runDir: string,
  tokenizerPath: string,
  outPath: string,
  opts: { f16?: boolean; name?: string } = {},
): void {
  const weights = join(runDir, "model.safetensors");
  if (!existsSync(weights)) {
    throw new SynthmixError("MISSING_MODEL", `${weights} not found`, {
      hint: "train the run first (synthmix train)",
    });
  }
  const config = readModelConfig(weights);
  // Tokenizer.fromFile validates the file (a named error on a broken or unsupported one); the writer
  // embeds the file's own JSON, so the cast below is of an object that has just passed that check.
  Tokenizer.fromFile(tokenizerPath);
  const tokenizerJson = JSON.parse(readFileSync(tokenizerPath, "utf8")) as HfTokenizerJson;
  writeGpt2Gguf(outPath, {
    config,
    tensors: readSafetensors(weights).tensors,
    tokenizerJson,
    name: opts.name,
    f16: opts.f16,
  });
}
