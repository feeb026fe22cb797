import assert from "node:assert/strict";
import { test } from "node:test";
import { referenceKernels as K } from "../../src/train/kernels/reference.js";
import { countParams } from "../../src/train/ladder.js";
import { GPT } from "../../src/train/model.js";
import type { ModelConfig } from "../../src/train/schema.js";
import { Rng } from "../../src/util/rng.js";

// Finite-difference gradient checks in float64 through the reference kernels: every layer on its own,
// then the whole model end to end. Central differences, h = 1e-5, relative error tolerance 1e-6.

function rand(n: number, rng: Rng, scale = 1): Float64Array {
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * scale;
  return a;
}

/** Checks d(sum(out * R))/d(x) for every x in `inputs` against the analytic gradient. */
function checkLayer(
  name: string,
  inputs: Float64Array[],
  outSize: number,
  forward: (out: Float64Array) => void,
  backward: (dout: Float64Array, grads: Float64Array[]) => void,
): void {
  const rng = new Rng(7);
  const R = rand(outSize, rng);
  const out = new Float64Array(outSize);
  const objective = () => {
    forward(out);
    let s = 0;
    for (let i = 0; i < outSize; i++) s += out[i] * R[i];
    return s;
  };
  objective();
  const grads = inputs.map((x) => new Float64Array(x.length));
  backward(R, grads);
  const h = 1e-5;
  inputs.forEach((x, xi) => {
    for (let i = 0; i < x.length; i++) {
      const old = x[i];
      x[i] = old + h;
      const up = objective();
      x[i] = old - h;
      const down = objective();
      x[i] = old;
      const fd = (up - down) / (2 * h);
      const err = Math.abs(fd - grads[xi][i]) / Math.max(1, Math.abs(fd));
      assert.ok(err < 1e-6, `${name}: input ${xi}[${i}] analytic ${grads[xi][i]} vs finite difference ${fd}`);
    }
  });
}

test("every layer's backward matches finite differences (reference kernels, float64)", () => {
  const rng = new Rng(1);
  const B = 2;
  const T = 4;
  const C = 6;
  const NH = 2;
  const BT = B * T;
  // layernorm
  {
    const inp = rand(BT * C, rng);
    const w = rand(C, rng);
    const b = rand(C, rng);
    const mean = new Float64Array(BT);
    const rstd = new Float64Array(BT);
    checkLayer(
      "layernorm",
      [inp, w, b],
      BT * C,
      (out) => K.layernormForward(out, mean, rstd, inp, w, b, BT, C),
      (d, [di, dw, db]) => K.layernormBackward(di, dw, db, d, inp, w, mean, rstd, BT, C),
    );
  }
  // matmul with and without bias
  for (const withBias of [true, false]) {
    const OC = 5;
    const inp = rand(BT * C, rng);
    const w = rand(OC * C, rng);
    const b = rand(OC, rng);
    checkLayer(
      `matmul bias=${withBias}`,
      withBias ? [inp, w, b] : [inp, w],
      BT * OC,
      (out) => K.matmulForward(out, inp, w, withBias ? b : null, BT, C, OC),
      (d, [di, dw, db]) => K.matmulBackward(di, dw, withBias ? db : null, d, inp, w, BT, C, OC),
    );
  }
  // causal attention
  {
    const qkv = rand(BT * 3 * C, rng);
    const att = new Float64Array(B * NH * T * T);
    const scratch = new Float64Array(B * NH * T * T);
    checkLayer(
      "attention",
      [qkv],
      BT * C,
      (out) => K.attentionForward(out, att, qkv, B, T, C, NH),
      (d, [dq]) => K.attentionBackward(dq, scratch, d, qkv, att, B, T, C, NH),
    );
  }
  // gelu
  {
    const inp = rand(BT * C, rng, 2);
    checkLayer(
      "gelu",
      [inp],
      BT * C,
      (out) => K.geluForward(out, inp, BT * C),
      (d, [di]) => K.geluBackward(di, inp, d, BT * C),
    );
  }
  // encoder (token + position embeddings)
  {
    const V = 7;
    const tokens = Int32Array.from({ length: BT }, (_, i) => (i * 3) % V);
    const wte = rand(V * C, rng);
    const wpe = rand(T * C, rng);
    checkLayer(
      "encoder",
      [wte, wpe],
      BT * C,
      (out) => K.encoderForward(out, tokens, wte, wpe, B, T, C),
      (d, [dwte, dwpe]) => K.encoderBackward(dwte, dwpe, d, tokens, B, T, C),
    );
  }
  // cross-entropy: d(sum losses * scale) / dlogits == dlogits with dlossScale = scale
  {
    const V = 7;
    const logits = rand(BT * V, rng);
    const targets = Int32Array.from({ length: BT }, (_, i) => (i === 3 ? -1 : (i * 5) % V));
    const losses = new Float64Array(BT);
    const dlogits = new Float64Array(BT * V);
    K.crossEntropyForward(losses, dlogits, logits, targets, BT, V, 0.5);
    const h = 1e-5;
    const total = () => {
      const l = new Float64Array(BT);
      K.crossEntropyForward(l, null, logits, targets, BT, V, 0.5);
      return l.reduce((a, b) => a + b, 0) * 0.5;
    };
    for (let i = 0; i < logits.length; i++) {
      const old = logits[i];
      logits[i] = old + h;
      const up = total();
      logits[i] = old - h;
      const down = total();
      logits[i] = old;
      assert.ok(Math.abs((up - down) / (2 * h) - dlogits[i]) < 1e-7, `cross-entropy dlogits[${i}]`);
    }
  }
});

const tiny: ModelConfig = { nLayer: 2, dModel: 8, nHead: 2, contextLength: 5, vocabSize: 11 };

test("whole-model gradient matches finite differences (float64, every parameter)", () => {
  const B = 2;
  const T = 5;
  const model = new GPT(tiny, K, B, T, "float64");
  model.init(3);
  // Larger-than-GPT-2 init so every path carries signal (0.02 leaves the gradients tiny).
  const rng = new Rng(11);
  for (let i = 0; i < model.numParams; i++) model.params[i] += rng.normal() * 0.3;
  const tokens = Int32Array.from({ length: B * T }, (_, i) => (i * 7 + 3) % 11);
  const targets = Int32Array.from({ length: B * T }, (_, i) => (i === 4 ? -1 : (i * 5 + 1) % 11));
  model.zeroGrad();
  model.forward(tokens, targets);
  model.backward();
  const analytic = Float64Array.from(model.grads);
  const h = 1e-5;
  let worst = 0;
  for (let i = 0; i < model.numParams; i++) {
    const old = model.params[i];
    model.params[i] = old + h;
    const up = model.forward(tokens, targets, { needGrad: false });
    model.params[i] = old - h;
    const down = model.forward(tokens, targets, { needGrad: false });
    model.params[i] = old;
    const fd = (up - down) / (2 * h);
    const err = Math.abs(fd - analytic[i]) / Math.max(1e-3, Math.abs(fd) + Math.abs(analytic[i]));
    worst = Math.max(worst, err);
    const spec = model.specs.find((s) => i >= s.offset && i < s.offset + s.size);
    assert.ok(
      err < 1e-5,
      `param ${spec?.name}[${i - (spec?.offset ?? 0)}]: analytic ${analytic[i]} vs fd ${fd}`,
    );
  }
  assert.ok(worst < 1e-5);
});

test("parameter table matches countParams and the loss at init is ~ln(vocab)", () => {
  const cfg: ModelConfig = { nLayer: 2, dModel: 32, nHead: 2, contextLength: 16, vocabSize: 256 };
  const model = new GPT(cfg, K, 4);
  assert.equal(model.numParams, countParams(cfg).total);
  model.init(1);
  const rng = new Rng(5);
  const tokens = Int32Array.from({ length: 4 * 16 }, () => rng.int(256));
  const targets = Int32Array.from({ length: 4 * 16 }, () => rng.int(256));
  const loss = model.forward(tokens, targets, { needGrad: false });
  assert.ok(Math.abs(loss - Math.log(256)) < 0.05, `loss at init ${loss} vs ln(256) ${Math.log(256)}`);
});

test("a tiny model overfits a repeated sequence to near-zero loss", async () => {
  const { clipGradNorm, AdamW } = await import("../../src/train/optim.js");
  const cfg: ModelConfig = { nLayer: 1, dModel: 32, nHead: 2, contextLength: 16, vocabSize: 32 };
  const model = new GPT(cfg, K, 2);
  model.init(2);
  const seq = Int32Array.from({ length: 17 }, (_, i) => (i * 7 + 3) % 32);
  const tokens = new Int32Array(32);
  const targets = new Int32Array(32);
  for (let b = 0; b < 2; b++)
    for (let t = 0; t < 16; t++) {
      tokens[b * 16 + t] = seq[t];
      targets[b * 16 + t] = seq[t + 1];
    }
  const opt = new AdamW(model, K, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0 });
  let loss = Number.NaN;
  for (let step = 0; step < 150; step++) {
    model.zeroGrad();
    loss = model.forward(tokens, targets);
    model.backward();
    clipGradNorm(model.grads, 1);
    opt.step(1e-2);
  }
  assert.ok(loss < 0.05, `final loss ${loss}`);
});
