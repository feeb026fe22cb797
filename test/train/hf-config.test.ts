import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { saveCheckpoint } from "../../src/train/checkpoint.js";
import { referenceKernels as K } from "../../src/train/kernels/reference.js";
import { GPT } from "../../src/train/model.js";
import { AdamW } from "../../src/train/optim.js";
import { readSafetensors } from "../../src/train/safetensors.js";

test("every checkpoint has a Hugging Face config.json (GPT2Config) that matches its weights", () => {
  const dir = mkdtempSync(join(tmpdir(), "synthmix-hfcfg-"));
  try {
    const cfg = { nLayer: 3, dModel: 16, nHead: 4, contextLength: 12, vocabSize: 50 };
    const model = new GPT(cfg, K, 1);
    model.init(3);
    const opt = new AdamW(model, K, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 });
    saveCheckpoint(dir, model, opt, {
      step: 1,
      tokens: 10,
      metricsOffset: 0,
      elapsedSec: 0,
      lastLoss: 1,
      rng: { seed: 1, stream: "batch", nextStep: 1 },
    });
    const hf = JSON.parse(readFileSync(join(dir, "checkpoint", "config.json"), "utf8"));
    assert.equal(hf.model_type, "gpt2");
    assert.deepEqual(hf.architectures, ["GPT2LMHeadModel"]);
    const { tensors } = readSafetensors(join(dir, "checkpoint", "model.safetensors"));
    // The shapes GPT2LMHeadModel builds from the config must be the shapes in the file.
    assert.deepEqual(tensors.get("wte.weight")?.shape, [hf.vocab_size, hf.n_embd]);
    assert.deepEqual(tensors.get("wpe.weight")?.shape, [hf.n_positions, hf.n_embd]);
    assert.ok(tensors.has(`h.${hf.n_layer - 1}.attn.c_attn.weight`));
    assert.ok(!tensors.has(`h.${hf.n_layer}.attn.c_attn.weight`));
    assert.deepEqual(tensors.get("h.0.mlp.c_fc.weight")?.shape, [hf.n_embd, hf.n_inner]);
    assert.equal(hf.n_embd % hf.n_head, 0);
    assert.equal(hf.activation_function, "gelu_new");
    assert.equal(hf.tie_word_embeddings, true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
