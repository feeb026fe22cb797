// The native addon against the TypeScript reference (run in float64 on the same float32 inputs) on odd
// shapes, for both GEMM micro-kernels and both thread counts; plus bitwise determinism across thread
// counts and the argument checks that protect memory.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { nativeAddon, nativeLoadError } from "../../src/train/kernels/native.js";
import { referenceKernels } from "../../src/train/kernels/reference.js";
import type { FloatArray, Kernels } from "../../src/train/kernels/types.js";
import { optionalTool } from "../helpers/optional.js";

const addon = nativeAddon();
const native = optionalTool(
  "the native addon",
  () => addon !== null || (nativeLoadError() ?? "not loaded"),
  "`npm ci` (or `npx node-gyp rebuild`) with a C++ compiler",
);
const skip = native.skip;

let seed = 987654321;
function rand(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 4294967296;
}
function rnd(n: number, s = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (rand() * 2 - 1) * s;
  return a;
}
function ints(n: number, max: number): Int32Array {
  return Int32Array.from({ length: n }, () => Math.floor(rand() * max));
}

/** A kernel call on fixed float32 inputs; `A` copies each input into the precision under test. */
interface Case {
  name: string;
  run(K: Kernels, A: (x: Float32Array) => FloatArray): FloatArray[];
}

function cases(): Case[] {
  const out: Case[] = [];
  for (const [B, T] of [
    [1, 1],
    [1, 7],
    [3, 5],
    [2, 17],
  ]) {
    for (const C of [3, 17, 64, 65]) {
      const V = 11;
      const tokens = ints(B * T, V);
      const wte = rnd(V * C);
      const wpe = rnd(T * C);
      const dout = rnd(B * T * C);
      const g1 = rnd(V * C);
      const g2 = rnd(T * C);
      out.push({
        name: `encoder B=${B} T=${T} C=${C}`,
        run(K, A) {
          const o = A(new Float32Array(B * T * C));
          const dwte = A(g1);
          const dwpe = A(g2);
          K.encoderForward(o, tokens, A(wte), A(wpe), B, T, C);
          K.encoderBackward(dwte, dwpe, A(dout), tokens, B, T, C);
          return [o, dwte, dwpe];
        },
      });
    }
  }
  for (const BT of [1, 7, 33]) {
    for (const C of [3, 17, 64, 65]) {
      const inp = rnd(BT * C, 3);
      const w = rnd(C);
      const b = rnd(C);
      const dout = rnd(BT * C);
      const [gi, gw, gb] = [rnd(BT * C), rnd(C), rnd(C)];
      out.push({
        name: `layernorm BT=${BT} C=${C}`,
        run(K, A) {
          const [o, mean, rstd] = [
            A(new Float32Array(BT * C)),
            A(new Float32Array(BT)),
            A(new Float32Array(BT)),
          ];
          const [x, wa] = [A(inp), A(w)];
          const [dinp, dw, db] = [A(gi), A(gw), A(gb)];
          K.layernormForward(o, mean, rstd, x, wa, A(b), BT, C);
          K.layernormBackward(dinp, dw, db, A(dout), x, wa, mean, rstd, BT, C);
          // overwrite: the garbage already in the buffer must not matter
          const dinp2 = A(rnd(BT * C, 9));
          K.layernormBackward(dinp2, A(gw), A(gb), A(dout), x, wa, mean, rstd, BT, C, true);
          return [o, mean, rstd, dinp, dw, db, dinp2];
        },
      });
      for (const OC of [1, 5, 31, 97]) {
        for (const withBias of [true, false]) out.push(matmulCase(BT, C, OC, withBias));
      }
    }
  }
  // several cache blocks in every dimension (K > 256, N > 1024, M > 168) and uneven thread splits
  out.push(matmulCase(173, 300, 1050, true));
  out.push(matmulCase(1100, 40, 70, false));
  // a row stride that is a multiple of 2 KB with more than 4 panels of B: A is packed, not read in place
  out.push(matmulCase(60, 512, 200, true));
  out.push(matmulCase(60, 200, 512, false));
  for (const [B, T, C, NH] of [
    [1, 1, 3, 1],
    [2, 5, 17, 1],
    [1, 17, 64, 1],
    [2, 17, 65, 1],
    [2, 5, 64, 2],
    [1, 17, 3, 3],
    [2, 17, 63, 3],
    [1, 70, 32, 2], // rows past the 64 of two column panels
    [3, 130, 24, 4],
    [1, 300, 16, 2], // the P·V depth in two cache blocks: some tiles' depth starts in the second (Tri upper)
  ]) {
    const qkv = rnd(B * T * 3 * C, 2);
    const dout = rnd(B * T * C);
    const g = rnd(B * T * 3 * C);
    out.push({
      name: `attention B=${B} T=${T} C=${C} NH=${NH}`,
      run(K, A) {
        const o = A(new Float32Array(B * T * C));
        // att and the scratch start as NaN: the causal products skip the scores above the diagonal,
        // and nothing may read what they did not write
        const att = A(new Float32Array(B * NH * T * T).fill(Number.NaN));
        const x = A(qkv);
        K.attentionForward(o, att, x, B, T, C, NH);
        const dqkv = A(g);
        const scratch = () => A(new Float32Array(B * NH * T * T).fill(Number.NaN));
        K.attentionBackward(dqkv, scratch(), A(dout), x, att, B, T, C, NH);
        const dqkv2 = A(rnd(B * T * 3 * C, 9));
        K.attentionBackward(dqkv2, scratch(), A(dout), x, att, B, T, C, NH, true);
        return [o, att, dqkv, dqkv2];
      },
    });
  }
  for (const N of [1, 7, 33, 1000, 4099]) {
    const x = rnd(N, 6);
    x[0] = N > 1 ? 30 : -30; // saturated tanh
    const dout = rnd(N);
    const g = rnd(N);
    const y = rnd(N);
    out.push({
      name: `gelu + residual N=${N}`,
      run(K, A) {
        const o = A(new Float32Array(N));
        const d = A(g);
        const r = A(new Float32Array(N));
        K.geluForward(o, A(x), N);
        K.geluBackward(d, A(x), A(dout), N);
        K.residualForward(r, A(x), A(y), N);
        const d2 = A(rnd(N, 9));
        K.geluBackward(d2, A(x), A(dout), N, true);
        return [o, d, r, d2];
      },
    });
  }
  for (const BT of [1, 7, 33]) {
    for (const V of [1, 5, 31, 97, 1000]) {
      const logits = rnd(BT * V, 4);
      const targets = ints(BT, V);
      if (BT > 1) targets[1] = -1;
      out.push({
        name: `crossEntropy BT=${BT} V=${V}`,
        run(K, A) {
          const losses = A(new Float32Array(BT));
          const losses2 = A(new Float32Array(BT));
          const dl = A(rnd(BT * V, 50));
          K.crossEntropyForward(losses, dl, A(logits), targets, BT, V, 0.25);
          K.crossEntropyForward(losses2, null, A(logits), targets, BT, V, 0.25);
          return [losses, dl, losses2];
        },
      });
    }
  }
  out.push(...headCases());
  for (const N of [1, 7, 33, 1000]) {
    const p = rnd(N);
    const g = rnd(N, 0.1);
    const g2 = rnd(N, 0.1);
    out.push({
      name: `adamw N=${N}`,
      run(K, A) {
        const [pa, m, v] = [A(p), A(new Float32Array(N)), A(new Float32Array(N))];
        K.adamwUpdate(pa, A(g), m, v, N, 1e-3, 0.9, 0.95, 1e-8, 0.1, 1);
        K.adamwUpdate(pa, A(g2), m, v, N, 1e-3, 0.9, 0.95, 1e-8, 0, 2);
        return [pa, m, v];
      },
    });
  }
  return out;
}

/**
 * The fused output head: several row sub-blocks (BT > 56) and dlogits blocks (V = 40000), odd C and V, ignored targets; and the loss-only
 * path. V*C <= 131072 with more than 2^20 kept dlogits takes dwte sub-block by sub-block into 4
 * accumulators: BT = 2100, V = 520 has 25 sub-blocks of 84 rows, 6-7 per group. Prefilled garbage in dlnf/dwte checks that both are written, not accumulated.
 */
function headCases(): Case[] {
  const out: Case[] = [];
  for (const [BT, C, V] of [
    [1, 3, 5],
    [33, 17, 97],
    [130, 16, 300],
    [2100, 12, 520],
    [70, 65, 2048],
    [120, 40, 9000],
    [300, 8, 40000], // dwte accumulated over 3 blocks of kept dlogits (126 + 126 + 48 rows)
  ]) {
    const lnf = rnd(BT * C, 2);
    const wte = rnd(V * C, 0.5);
    const targets = ints(BT, V);
    if (BT > 1) targets[1] = -1;
    out.push({
      name: `logitsCrossEntropy BT=${BT} C=${C} V=${V}`,
      run(K, A) {
        const [losses, losses2] = [A(new Float32Array(BT)), A(new Float32Array(BT))];
        const [dlnf, dwte] = [A(rnd(BT * C, 50)), A(rnd(V * C, 50))];
        K.logitsCrossEntropy(losses, dlnf, dwte, A(lnf), A(wte), targets, BT, C, V, 0.25);
        K.logitsCrossEntropy(losses2, null, null, A(lnf), A(wte), targets, BT, C, V, 0.25);
        return [losses, dlnf, dwte, losses2];
      },
    });
  }
  return out;
}

function matmulCase(BT: number, C: number, OC: number, withBias: boolean): Case {
  const inp = rnd(BT * C);
  const w = rnd(OC * C);
  const b = rnd(OC);
  const dout = rnd(BT * OC);
  const [gi, gw, gb] = [rnd(BT * C), rnd(OC * C), rnd(OC)];
  return {
    name: `matmul BT=${BT} C=${C} OC=${OC}${withBias ? "" : " no bias"}`,
    run(K, A) {
      const o = A(new Float32Array(BT * OC));
      const [x, wa] = [A(inp), A(w)];
      const [dinp, dw] = [A(gi), A(gw)];
      const db = withBias ? A(gb) : null;
      K.matmulForward(o, x, wa, withBias ? A(b) : null, BT, C, OC);
      K.matmulBackward(dinp, dw, db, A(dout), x, wa, BT, C, OC);
      const dinp2 = A(rnd(BT * C, 9));
      K.matmulBackward(dinp2, A(gw), null, A(dout), x, wa, BT, C, OC, true);
      return db === null ? [o, dinp, dw, dinp2] : [o, dinp, dw, db, dinp2];
    },
  };
}

/** |got - want| <= 1e-4 * (|want| + max|want|) elementwise: float32 accuracy on sums with cancellation. */
function assertClose(what: string, got: FloatArray, want: FloatArray): void {
  assert.equal(got.length, want.length, what);
  let scale = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    if (!(err <= 1e-4 * (Math.abs(want[i]) + scale)))
      assert.fail(`${what}[${i}]: native ${got[i]}, reference ${want[i]}`);
  }
}

describe("native kernels vs reference", { skip }, () => {
  it("the addon is loaded", () => native.require());
  const all = cases();
  const want = all.map((c) => c.run(referenceKernels, (x) => Float64Array.from(x)));
  const isas = (["avx512", "avx2", "portable"] as const).filter((i) => addon?.setIsa(i));

  for (const isa of isas) {
    it(`every kernel, ${isa} micro-kernel, 1 and 2 threads (bitwise identical)`, (t) => {
      if (addon === null) return;
      t.after(() => {
        addon.setIsa(isas[0]);
        addon.setThreads(2);
        addon.setMinParallelWork(2e5);
      });
      addon.setIsa(isa);
      addon.setMinParallelWork(0); // split even the tiny shapes over threads
      const byThreads: FloatArray[][][] = [];
      for (const threads of [1, 2]) {
        addon.setThreads(threads);
        const native = { ...(addon as unknown as Kernels), name: "native" };
        byThreads.push(
          all.map((c, i) => {
            const got = c.run(native, (x) => Float32Array.from(x));
            for (const [j, g] of got.entries()) {
              assertClose(`${c.name} (${isa}, ${threads} threads) output ${j}`, g, want[i][j]);
            }
            return got;
          }),
        );
      }
      for (const [i, c] of all.entries()) {
        for (const [j, g] of byThreads[0][i].entries()) {
          assert.deepEqual(byThreads[1][i][j], g, `${c.name} output ${j} differs between 1 and 2 threads`);
        }
      }
    });
  }

  // Every micro-kernel gives each C element the same arithmetic (bias or 0, one FMA per k in a fixed
  // order, the same KC blocking), so a run is reproducible across machines with different vector units.
  // The portable kernel may differ in the sign of a zero (it broadcasts A as 0 + a), which === ignores.
  it("the micro-kernels agree bit for bit on every kernel's output", (t) => {
    if (addon === null || isas.length < 2) return;
    t.after(() => addon.setIsa(isas[0]));
    const native = { ...(addon as unknown as Kernels), name: "native" };
    const outputs = isas.map((isa) => {
      addon.setIsa(isa);
      return all.map((c) => c.run(native, (x) => Float32Array.from(x)));
    });
    for (const [k, isa] of isas.entries()) {
      for (const [i, c] of all.entries()) {
        for (const [j, g] of outputs[k][i].entries()) {
          const first = outputs[0][i][j];
          const at = g.findIndex((v, n) => !(v === first[n] || (Number.isNaN(v) && Number.isNaN(first[n]))));
          if (at >= 0) assert.fail(`${c.name} output ${j}[${at}]: ${isa} ${g[at]}, ${isas[0]} ${first[at]}`);
        }
      }
    }
  });

  it("clipGradNorm: the norm and the scaling match the TypeScript loop; identical for 1 and 2 threads", async () => {
    const { clipGradNorm } = await import("../../src/train/optim.js");
    for (const N of [1, 5, 4096, 4097, 100_003]) {
      for (const s of [1e-3, 10]) {
        const g = rnd(N, s);
        const want = Float32Array.from(g);
        const wantNorm = clipGradNorm(want, 1);
        const outs: Float32Array[] = [];
        for (const th of [1, 2]) {
          addon!.setThreads(th);
          addon!.setMinParallelWork(0);
          const got = Float32Array.from(g);
          const norm = addon!.clipGradNorm(got, N, 1);
          assert.ok(Math.abs(norm - wantNorm) <= 1e-12 * wantNorm, `N=${N} norm ${norm} vs ${wantNorm}`);
          // Scaling by a factor that differs in the last bits at most: float32 results equal or 1 ulp apart.
          for (let i = 0; i < N; i++)
            assert.ok(Math.abs(got[i] - want[i]) <= 1e-6 * Math.abs(want[i]), `N=${N} i=${i}`);
          outs.push(got);
        }
        assert.deepEqual(outs[0], outs[1]);
        addon!.setMinParallelWork(2e5);
      }
    }
  });

  it("is deterministic run to run", () => {
    if (addon === null) return;
    const c = matmulCase(300, 65, 97, true);
    const native = { ...(addon as unknown as Kernels), name: "native" };
    const a = c.run(native, (x) => Float32Array.from(x));
    const b = c.run(native, (x) => Float32Array.from(x));
    for (const [j, x] of a.entries()) assert.deepEqual(b[j], x);
  });

  it("NaN in the logits reaches the loss", () => {
    if (addon === null) return;
    const logits = Float32Array.from([1, Number.NaN, 2, 0.5, 0.1, 0.2]);
    const losses = new Float32Array(2);
    addon.crossEntropyForward(losses, null, logits, Int32Array.from([0, 1]), 2, 3, 1);
    assert.ok(Number.isNaN(losses[0]));
    assert.ok(Number.isFinite(losses[1]));
  });

  it("rejects wrong array types, short arrays and out-of-range tokens instead of corrupting memory", () => {
    if (addon === null) return;
    const f = (n: number) => new Float32Array(n);
    assert.throws(() => addon.matmulForward(new Float64Array(6), f(6), f(9), null, 2, 3, 3), /Float32Array/);
    assert.throws(
      () => addon.matmulForward(f(5), f(6), f(9), null, 2, 3, 3),
      /out has 5 elements but the shapes need 6/,
    );
    assert.throws(() => addon.matmulForward(f(6), f(6), f(9), null, 2.5, 3, 3), RangeError);
    assert.throws(
      () => addon.encoderForward(f(4), Int32Array.from([0, 7]), f(6), f(4), 1, 2, 2),
      /tokens\[1\] = 7 is outside the vocabulary/,
    );
    assert.throws(
      () => addon.crossEntropyForward(f(1), null, f(3), Int32Array.from([3]), 1, 3, 1),
      /targets\[0\] = 3/,
    );
    assert.throws(() => addon.attentionForward(f(8), f(4), f(24), 1, 2, 4, 3), /not divisible/);
  });
});
