import { existsSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { type HfTokenizerJson, writeGpt2Gguf } from "../formats/gguf.js";
import { fromHfJson } from "../tokenizer/hf.js";
import { SynthmixError } from "../util/errors.js";
import { readJsonFile } from "../util/json.js";
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
  // fromHfJson validates the file (a named error on a broken or unsupported one); the writer embeds
  // the file's own JSON, so the cast below is of an object that has just passed that check.
  const raw = readJsonFile(tokenizerPath, z.unknown(), { code: "TOKENIZER_READ", what: "a tokenizer" });
  fromHfJson(raw, tokenizerPath);
  const tokenizerJson = raw as HfTokenizerJson;
  writeGpt2Gguf(outPath, {
    config,
    tensors: readSafetensors(weights).tensors,
    tokenizerJson,
    name: opts.name,
    f16: opts.f16,
  });
}
