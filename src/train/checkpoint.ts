import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { linkFileAtomic, replaceDir, writeJsonAtomic } from "../util/atomic.js";
import { SynthmixError } from "../util/errors.js";
import { parseJsonValue, readJsonFile } from "../util/json.js";
import { hfGpt2Config } from "./hf-config.js";
import type { GPT } from "./model.js";
import type { AdamW } from "./optim.js";
import { type NamedTensor, readSafetensors, writeSafetensors } from "./safetensors.js";
import { FinalMetricSchema, type ModelConfig, ModelConfigSchema } from "./schema.js";

/**
 * Checkpoints. A resumable checkpoint is the folder `<run>/checkpoint/`:
 *   model.safetensors      weights with Hugging Face GPT-2 names (see below)
 *   optimizer.safetensors  AdamW state: flat `m` and `v` (our parameter order, see model.paramTable)
 *   state.json             step, tokens seen, metrics.jsonl byte offset, elapsed time, data-rng state
 * The three files must agree, so the folder is written as `checkpoint.tmp/` and swapped in with two
 * renames (checkpoint -> checkpoint.old, checkpoint.tmp -> checkpoint); a kill between the renames
 * leaves `checkpoint.old/`, which `loadCheckpointState` falls back to. `<run>/model.safetensors` is a
 * hard link to (or copy of) the latest checkpoint's weights, i.e. the final weights once the run ends.
 *
 * Weight layout: our linear weights are (out, in) like torch.nn.Linear; Hugging Face GPT-2 uses Conv1D,
 * which stores (in, out). The four block matrices (attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj) are
 * therefore transposed on write and on read; embeddings, biases and LayerNorm parameters are not.
 * The output projection is tied to `wte.weight` (HF's `lm_head.weight` is the same tensor).
 */
export const CheckpointStateSchema = z.object({
  step: z.number().int().min(0),
  tokens: z.number().min(0),
  metricsOffset: z.number().int().min(0),
  elapsedSec: z.number(),
  /** Loss of the last trained step; null before the first step (a run stopped at step 0). */
  lastLoss: z.number().nullable(),
  /** Batches are drawn from Rng(deriveSeed(seed, "batch", step)): the state is the next step. */
  rng: z.object({ seed: z.number(), stream: z.literal("batch"), nextStep: z.number().int().min(0) }),
  /** Set when the run finished: the final record, so a rerun returns it without work. */
  final: FinalMetricSchema.optional(),
});
export type CheckpointState = z.infer<typeof CheckpointStateSchema>;

export function modelTensors(model: GPT): NamedTensor[] {
  return model.specs.map((s) => {
    const src = model.params.subarray(s.offset, s.offset + s.size);
    if (!s.conv1d) return { name: s.name, shape: s.shape, data: Float32Array.from(src) };
    const [out, inp] = s.shape;
    const data = new Float32Array(s.size);
    for (let o = 0; o < out; o++) for (let i = 0; i < inp; i++) data[i * out + o] = src[o * inp + i];
    return { name: s.name, shape: [inp, out], data };
  });
}

export function writeModel(path: string, model: GPT, extra: Record<string, string> = {}): void {
  writeSafetensors(path, modelTensors(model), {
    format: "pt",
    architecture: "gpt2",
    synthmix_config: JSON.stringify(model.cfg),
    ...extra,
  });
}

/** The model config stored in a model.safetensors written by `writeModel`. */
export function readModelConfig(path: string): ModelConfig {
  const { metadata } = readSafetensors(path);
  if (!metadata.synthmix_config) {
    throw new SynthmixError("BAD_CHECKPOINT", `${path}: no synthmix_config in the safetensors metadata`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(metadata.synthmix_config);
  } catch (e) {
    throw new SynthmixError(
      "BAD_CHECKPOINT",
      `${path}: synthmix_config is not JSON (${(e as Error).message})`,
    );
  }
  return parseJsonValue(`${path} (synthmix_config)`, raw, ModelConfigSchema, {
    code: "BAD_CHECKPOINT",
    what: "a model config",
  });
}

export function loadModelWeights(path: string, model: GPT): void {
  const { tensors } = readSafetensors(path);
  for (const s of model.specs) {
    const t = tensors.get(s.name);
    const want = s.conv1d ? [s.shape[1], s.shape[0]] : s.shape;
    if (!t || t.shape.join(",") !== want.join(",")) {
      throw new SynthmixError(
        "BAD_CHECKPOINT",
        `${path}: tensor ${s.name} ${t ? `has shape [${t.shape}]` : "is missing"}, expected [${want}]`,
        { hint: "the checkpoint was written for a different model config" },
      );
    }
    const dst = model.params.subarray(s.offset, s.offset + s.size);
    if (!s.conv1d) dst.set(t.data);
    else {
      const [out, inp] = s.shape;
      for (let o = 0; o < out; o++) for (let i = 0; i < inp; i++) dst[o * inp + i] = t.data[i * out + o];
    }
  }
}

function ckptDir(runDir: string, which: "checkpoint" | "checkpoint.old" | "checkpoint.tmp"): string {
  return join(runDir, which);
}

export function saveCheckpoint(runDir: string, model: GPT, opt: AdamW, state: CheckpointState): void {
  const tmp = ckptDir(runDir, "checkpoint.tmp");
  const cur = ckptDir(runDir, "checkpoint");
  const old = ckptDir(runDir, "checkpoint.old");
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  writeModel(join(tmp, "model.safetensors"), model, { step: String(state.step) });
  writeJsonAtomic(join(tmp, "config.json"), hfGpt2Config(model.cfg)); // HF GPT2Config (from_pretrained)
  writeSafetensors(
    join(tmp, "optimizer.safetensors"),
    [
      { name: "m", shape: [opt.m.length], data: opt.m as Float32Array },
      { name: "v", shape: [opt.v.length], data: opt.v as Float32Array },
    ],
    { step: String(state.step), adam_t: String(opt.t) },
  );
  writeJsonAtomic(join(tmp, "state.json"), state);
  replaceDir(tmp, cur, old);
  publishModel(runDir);
}

/** Points `<run>/model.safetensors` at the current checkpoint's weights (hard link, else copy). */
function publishModel(runDir: string): void {
  linkFileAtomic(join(ckptDir(runDir, "checkpoint"), "model.safetensors"), join(runDir, "model.safetensors"));
}

/** The folder of the last complete checkpoint, or null. */
export function findCheckpoint(runDir: string): string | null {
  for (const which of ["checkpoint", "checkpoint.old"] as const) {
    const dir = ckptDir(runDir, which);
    if (existsSync(join(dir, "state.json"))) return dir;
  }
  return null;
}

export function loadCheckpointState(dir: string): CheckpointState {
  const path = join(dir, "state.json");
  return readJsonFile(path, CheckpointStateSchema, {
    code: "BAD_CHECKPOINT",
    what: "a checkpoint state (state.json)",
    hint: `the checkpoint is damaged: delete ${dir}; the run then resumes from an older checkpoint if one is left, else from step 0`,
  });
}

export function loadCheckpoint(dir: string, model: GPT, opt: AdamW): CheckpointState {
  const state = loadCheckpointState(dir);
  loadModelWeights(join(dir, "model.safetensors"), model);
  const path = join(dir, "optimizer.safetensors");
  const { tensors, metadata } = readSafetensors(path);
  const m = tensors.get("m");
  const v = tensors.get("v");
  if (!m || !v || m.data.length !== opt.m.length || v.data.length !== opt.v.length) {
    throw new SynthmixError("BAD_CHECKPOINT", `${path}: m/v missing or of the wrong size for this model`);
  }
  opt.m.set(m.data);
  opt.v.set(v.data);
  opt.t = Number(metadata.adam_t ?? state.step);
  return state;
}
