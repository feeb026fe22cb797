// The TypeScript reference kernels checked against central finite differences in float64, and the
// accumulate-into-gradient contract (every backward adds to what is already in its gradient arrays).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { referenceKernels as K } from "../../src/train/kernels/reference.js";

let seed = 12345;
function rand(): number {
  // xorshift32: deterministic and independent of the code under test
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 4294967296;
}
function randn(n: number, s = 1): Float64Array {
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) a[i] = (rand() * 2 - 1) * s;
  return a;
}
function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/**
 * Runs `backward` on gradient arrays pre-filled with random values, checks that it added exactly the
 * finite-difference gradient of `loss` with respect to each input in `wrt`.
 */
function checkGrads(
  wrt: Record<string, Float64Array>,
  loss: () => number,
  backward: (grads: Record<string, Float64Array>) => void,
  tol = 1e-6,
): void {
  const grads: Record<string, Float64Array> = {};
  const prior: Record<string, Float64Array> = {};
  for (const [k, x] of Object.entries(wrt)) {
    prior[k] = randn(x.length);
    grads[k] = Float64Array.from(prior[k]);
  }
  backward(grads);
  const h = 1e-5;
  for (const [k, x] of Object.entries(wrt)) {
    for (let i = 0; i < x.length; i++) {
      const x0 = x[i];
      x[i] = x0 + h;
      const lp = loss();
      x[i] = x0 - h;
      const lm = loss();
      x[i] = x0;
      const fd = (lp - lm) / (2 * h);
      const an = grads[k][i] - prior[k][i];
      const err = Math.abs(fd - an) / Math.max(1, Math.abs(fd));
      assert.ok(err < tol, `${k}[${i}]: analytic ${an} vs finite difference ${fd}`);
    }
  }
}

describe("reference kernels: backward vs finite differences (float64)", () => {
  it("encoder", () => {
    const B = 2;
    const T = 3;
    const C = 4;
    const V = 5;
    const tokens = Int32Array.from([1, 4, 1, 0, 1, 3]); // repeated tokens exercise accumulation
    const wte = randn(V * C);
    const wpe = randn(T * C);
    const R = randn(B * T * C);
    const out = new Float64Array(B * T * C);
    const loss = () => {
      K.encoderForward(out, tokens, wte, wpe, B, T, C);
      return dot(out, R);
    };
    checkGrads({ wte, wpe }, loss, (g) => K.encoderBackward(g.wte, g.wpe, R, tokens, B, T, C));
  });

  it("layernorm", () => {
    const BT = 3;
    const C = 7;
    const inp = randn(BT * C, 2);
    const weight = randn(C);
    const bias = randn(C);
    const R = randn(BT * C);
    const out = new Float64Array(BT * C);
    const mean = new Float64Array(BT);
    const rstd = new Float64Array(BT);
    const loss = () => {
      K.layernormForward(out, mean, rstd, inp, weight, bias, BT, C);
      return dot(out, R);
    };
    loss();
    // normalised rows have mean 0 and variance 1 before the affine part
    for (let r = 0; r < BT; r++) {
      let m = 0;
      for (let i = 0; i < C; i++) m += inp[r * C + i];
      assert.ok(Math.abs(mean[r] - m / C) < 1e-12);
    }
    checkGrads({ inp, weight, bias }, loss, (g) => {
      K.layernormForward(out, mean, rstd, inp, weight, bias, BT, C);
      K.layernormBackward(g.inp, g.weight, g.bias, R, inp, weight, mean, rstd, BT, C);
    });
  });

  for (const withBias of [true, false]) {
    it(`matmul ${withBias ? "with" : "without"} bias`, () => {
      const BT = 5;
      const C = 3;
      const OC = 4;
      const inp = randn(BT * C);
      const weight = randn(OC * C);
      const bias = randn(OC);
      const R = randn(BT * OC);
      const out = new Float64Array(BT * OC);
      const loss = () => {
        K.matmulForward(out, inp, weight, withBias ? bias : null, BT, C, OC);
        return dot(out, R);
      };
      loss();
      // out[1,2] = inp[1,:] . weight[2,:] + bias[2]
      const expect = inp[3] * weight[6] + inp[4] * weight[7] + inp[5] * weight[8] + (withBias ? bias[2] : 0);
      assert.ok(Math.abs(out[1 * OC + 2] - expect) < 1e-12);
      const wrt: Record<string, Float64Array> = withBias ? { inp, weight, bias } : { inp, weight };
      checkGrads(wrt, loss, (g) =>
        K.matmulBackward(g.inp, g.weight, withBias ? g.bias : null, R, inp, weight, BT, C, OC),
      );
    });
  }

  for (const [B, T, C, NH] of [
    [1, 1, 4, 1],
    [2, 4, 6, 2],
    [1, 5, 9, 3],
  ]) {
    it(`attention B=${B} T=${T} C=${C} NH=${NH}`, () => {
      const qkv = randn(B * T * 3 * C);
      const R = randn(B * T * C);
      const out = new Float64Array(B * T * C);
      const att = new Float64Array(B * NH * T * T);
      const scratch = new Float64Array(B * NH * T * T);
      const loss = () => {
        K.attentionForward(out, att, qkv, B, T, C, NH);
        return dot(out, R);
      };
      loss();
      // causal softmax rows sum to 1 and are zero above the diagonal
      for (let row = 0; row < B * NH * T; row++) {
        const t = row % T;
        let s = 0;
        for (let t2 = 0; t2 < T; t2++) {
          if (t2 > t) assert.equal(att[row * T + t2], 0);
          s += att[row * T + t2];
        }
        assert.ok(Math.abs(s - 1) < 1e-12);
      }
      checkGrads({ qkv }, loss, (g) => {
        K.attentionForward(out, att, qkv, B, T, C, NH);
        K.attentionBackward(g.qkv, scratch, R, qkv, att, B, T, C, NH);
      });
    });
  }

  it("gelu (and its closed form at known points)", () => {
    const N = 9;
    const inp = randn(N, 4);
    const R = randn(N);
    const out = new Float64Array(N);
    const loss = () => {
      K.geluForward(out, inp, N);
      return dot(out, R);
    };
    checkGrads({ inp }, loss, (g) => K.geluBackward(g.inp, inp, R, N));
    const x = Float64Array.from([0, 1, -1, 3]);
    const y = new Float64Array(4);
    K.geluForward(y, x, 4);
    // values from torch.nn.functional.gelu(approximate="tanh") in float64
    assert.ok(Math.abs(y[0]) < 1e-15);
    assert.ok(Math.abs(y[1] - 0.841191990608) < 1e-11);
    assert.ok(Math.abs(y[2] + 0.158808009392) < 1e-11);
    assert.ok(Math.abs(y[3] - 2.996362607918) < 1e-11);
  });

  it("residual", () => {
    const a = randn(5);
    const b = randn(5);
    const out = new Float64Array(5);
    K.residualForward(out, a, b, 5);
    for (let i = 0; i < 5; i++) assert.equal(out[i], a[i] + b[i]);
  });

  it("fused cross-entropy: loss, dlogits and ignored targets", () => {
    const BT = 4;
    const V = 6;
    const logits = randn(BT * V, 3);
    const targets = Int32Array.from([2, 5, -1, 0]);
    const losses = new Float64Array(BT);
    const scale = 0.37;
    const loss = () => {
      K.crossEntropyForward(losses, null, logits, targets, BT, V, scale);
      return (losses[0] + losses[1] + losses[2] + losses[3]) * scale;
    };
    // dlogits is written, not accumulated: prefill garbage and check it is gone
    const dlogits = randn(BT * V, 100);
    K.crossEntropyForward(losses, dlogits, logits, targets, BT, V, scale);
    assert.equal(losses[2], 0);
    for (let i = 0; i < V; i++) assert.equal(dlogits[2 * V + i], 0);
    // closed form for row 0: log(sum exp) - logit[target]
    let s = 0;
    for (let i = 0; i < V; i++) s += Math.exp(logits[i]);
    assert.ok(Math.abs(losses[0] - (Math.log(s) - logits[2])) < 1e-12);
    checkGrads({ logits }, loss, (g) => {
      K.crossEntropyForward(losses, dlogits, logits, targets, BT, V, scale);
      for (let i = 0; i < g.logits.length; i++) g.logits[i] += dlogits[i];
    });
    // huge logit margins stay finite
    const big = Float64Array.from([1000, -1000]);
    const l1 = new Float64Array(1);
    K.crossEntropyForward(l1, null, big, Int32Array.from([1]), 1, 2, 1);
    assert.ok(Math.abs(l1[0] - 2000) < 1e-9);
  });

  it("adamw: first step closed form and bias correction", () => {
    const N = 5;
    const p0 = randn(N);
    const g = randn(N);
    const p = Float64Array.from(p0);
    const m = new Float64Array(N);
    const v = new Float64Array(N);
    const lr = 0.01;
    const eps = 1e-8;
    const wd = 0.1;
    K.adamwUpdate(p, g, m, v, N, lr, 0.9, 0.95, eps, wd, 1);
    for (let i = 0; i < N; i++) {
      // at t=1, mhat = g and vhat = g^2
      const expect = p0[i] - lr * (g[i] / (Math.abs(g[i]) + eps) + wd * p0[i]);
      assert.ok(Math.abs(p[i] - expect) < 1e-12);
      assert.ok(Math.abs(m[i] - 0.1 * g[i]) < 1e-15);
      assert.ok(Math.abs(v[i] - 0.05 * g[i] * g[i]) < 1e-15);
    }
    // a constant gradient keeps mhat/sqrt(vhat) = sign(g) at every step
    const q = Float64Array.from([1]);
    const mm = new Float64Array(1);
    const vv = new Float64Array(1);
    for (let t = 1; t <= 4; t++)
      K.adamwUpdate(q, Float64Array.from([0.5]), mm, vv, 1, 0.1, 0.9, 0.95, 0, 0, t);
    assert.ok(Math.abs(q[0] - 0.6) < 1e-12);
  });

  it("works on Float32Array too", () => {
    const inp = Float32Array.from([1, 2, 3, 4]);
    const w = Float32Array.from([0.5, -1]);
    const out = new Float32Array(2);
    K.matmulForward(out, inp, w, null, 2, 2, 1);
    assert.deepEqual(Array.from(out), [-1.5, -2.5]);
  });
});
