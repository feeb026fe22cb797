import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { loadModelWeights, writeModel } from "../../src/train/checkpoint.js";
import { referenceKernels as K } from "../../src/train/kernels/reference.js";
import { countParams, modelConfigFor, trainingFlops } from "../../src/train/ladder.js";
import { GPT } from "../../src/train/model.js";
import { lrAt } from "../../src/train/optim.js";
import type { ModelConfig } from "../../src/train/schema.js";

const root = mkdtempSync(join(tmpdir(), "synthmix-ckpt-"));
after(() => rmSync(root, { recursive: true, force: true }));

const cfg: ModelConfig = { nLayer: 2, dModel: 8, nHead: 2, contextLength: 6, vocabSize: 10 };

test("model.safetensors round-trips and is readable by HF GPT-2 name (header parsed independently)", () => {
  const model = new GPT(cfg, K, 1);
  model.init(5);
  const path = join(root, "model.safetensors");
  writeModel(path, model);

  // Parse the file by the spec, without our reader: u64 header length, JSON header, raw F32 data.
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  assert.equal((8 + n) % 8, 0, "data section is 8-byte aligned");
  const header = JSON.parse(buf.subarray(8, 8 + n).toString("utf8"));
  assert.equal(header.__metadata__.format, "pt");
  const names = Object.keys(header).filter((k) => k !== "__metadata__");
  assert.equal(names.length, 2 + 12 * cfg.nLayer + 2);
  const tensor = (name: string) => {
    const {
      dtype,
      shape,
      data_offsets: [a, b],
    } = header[name];
    assert.equal(dtype, "F32");
    const bytes = buf.subarray(8 + n + a, 8 + n + b);
    const arr = new Float32Array(bytes.length / 4);
    for (let i = 0; i < arr.length; i++) arr[i] = bytes.readFloatLE(4 * i);
    return { shape, arr };
  };
  assert.deepEqual(tensor("wte.weight").shape, [10, 8]);
  assert.deepEqual(tensor("wpe.weight").shape, [6, 8]);
  assert.deepEqual(tensor("h.1.ln_2.bias").shape, [8]);
  assert.deepEqual(tensor("ln_f.weight").shape, [8]);
  assert.deepEqual(Array.from(tensor("wte.weight").arr), Array.from(model.p.wte));
  // Conv1D layout (in, out): HF c_attn.weight[i][o] == our qkvW[o][i]
  const qkv = tensor("h.0.attn.c_attn.weight");
  assert.deepEqual(qkv.shape, [8, 24]);
  for (let o = 0; o < 24; o++)
    for (let i = 0; i < 8; i++) assert.equal(qkv.arr[i * 24 + o], model.p.layers[0].qkvW[o * 8 + i]);
  assert.deepEqual(tensor("h.1.mlp.c_proj.weight").shape, [32, 8]);
  assert.deepEqual(tensor("h.1.mlp.c_fc.weight").shape, [8, 32]);
  assert.deepEqual(tensor("h.0.attn.c_proj.weight").shape, [8, 8]);

  // And back: bit-identical parameters.
  const loaded = new GPT(cfg, K, 1);
  loadModelWeights(path, loaded);
  assert.deepEqual(loaded.params, model.params);
  // A different config is refused with the tensor named.
  assert.throws(
    () => loadModelWeights(path, new GPT({ ...cfg, dModel: 16 }, K, 1)),
    /wte\.weight has shape \[10,8\]/,
  );
});

test("GPT-2 init: std 0.02, residual projections scaled by 1/sqrt(2 n_layer), LN ones, biases zero", () => {
  const c = { nLayer: 4, dModel: 64, nHead: 2, contextLength: 8, vocabSize: 64 };
  const m = new GPT(c, K, 1);
  m.init(1);
  const std = (a: ArrayLike<number>) => Math.sqrt(Array.from(a).reduce((s, x) => s + x * x, 0) / a.length);
  assert.ok(Math.abs(std(m.p.layers[0].fcW) - 0.02) < 0.001);
  assert.ok(Math.abs(std(m.p.layers[0].fcProjW) - 0.02 / Math.sqrt(8)) < 0.0005);
  assert.ok(Math.abs(std(m.p.layers[3].projW) - 0.02 / Math.sqrt(8)) < 0.001);
  assert.ok(m.p.layers[2].ln1W.every((x) => x === 1) && m.p.layers[2].qkvB.every((x) => x === 0));
});

test("ladder: documented rule, parameter counts and FLOPs formula", () => {
  const s3 = modelConfigFor("s3", 8192, 256);
  assert.deepEqual(s3, { nLayer: 3, dModel: 192, nHead: 3, contextLength: 256, vocabSize: 8192 });
  const sizes = ["s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8"].map(
    (s) => countParams(modelConfigFor(s, 8192, 256)).nonEmbedding,
  );
  assert.ok(sizes[0] > 40e3 && sizes[0] < 60e3 && sizes[7] > 18e6 && sizes[7] < 30e6, String(sizes));
  for (let i = 1; i < sizes.length; i++) assert.ok(sizes[i] > sizes[i - 1]);
  // countParams matches the allocated parameter table
  const c = modelConfigFor("s2", 100, 32);
  assert.equal(new GPT(c, K, 1).numParams, countParams(c).total);
  const N = countParams(c).nonEmbedding;
  assert.equal(trainingFlops(c, 1000), 6 * N * 1000 + 6 * 2 * 32 * 128 * 1000);
  assert.throws(() => modelConfigFor("s9", 10, 10), /unknown model size/);
});

test("lr schedule: linear warmup to lr, cosine to minLrRatio*lr at the last step", () => {
  const o = { lr: 1, warmupSteps: 4, minLrRatio: 0.1 };
  assert.deepEqual(
    [0, 1, 2, 3].map((s) => lrAt(s, 20, o)),
    [0.25, 0.5, 0.75, 1],
  );
  assert.ok(Math.abs(lrAt(19, 20, o) - 0.1) < 1e-12);
  assert.ok(Math.abs(lrAt(4 + 7.5, 20, o) - 0.55) < 1e-12, "cosine midpoint");
  for (let s = 4; s < 19; s++) assert.ok(lrAt(s + 1, 20, o) < lrAt(s, 20, o));
});
