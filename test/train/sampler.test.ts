/**
 * The training-window sampler: `epoch` reads every window once per epoch (what a mixture manifest's
 * `epochs: 1` promises), `random` keeps nanoGPT-style draws with replacement, and both depend on
 * (seed, step, row) alone, so resumed runs and WSD branches draw the same batches.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { BatchSampler } from "../../src/train/data.js";
import { deriveSeed, Rng } from "../../src/util/rng.js";

const T = 8;
const B = 4;
const n = 8 * 100 + 5;
// Token i holds the value i, so a window's first input token is its start position.
const data = Uint16Array.from({ length: n }, (_, i) => i);

function starts(s: BatchSampler, steps: number[], rowsPerMicro = B, micros = 1): number[] {
  const x = new Int32Array(rowsPerMicro * T);
  const y = new Int32Array(rowsPerMicro * T);
  const out: number[] = [];
  for (const step of steps)
    for (let m = 0; m < micros; m++) {
      s.fill(step, m * rowsPerMicro, x, y, rowsPerMicro, rowsPerMicro * T);
      for (let r = 0; r < rowsPerMicro; r++) {
        for (let t = 0; t < T; t++)
          assert.equal(y[r * T + t], x[r * T + t] + 1, "targets are the next tokens");
        out.push(x[r * T]);
      }
    }
  return out;
}

test("epoch sampling: one epoch reads every window exactly once, at one offset, in a seeded order", () => {
  const W = Math.floor((n - 1 - (T - 1) - T) / T) + 1; // 99 windows of 8 with an offset up to 7
  const steps = Array.from({ length: Math.ceil((2 * W) / B) }, (_, i) => i);
  for (const seed of [1, 2]) {
    const all = starts(new BatchSampler(data, T, seed, B), steps);
    for (const epoch of [all.slice(0, W), all.slice(W, 2 * W)]) {
      const offset = Math.min(...epoch);
      assert.ok(offset < T);
      const sorted = [...epoch].sort((a, b) => a - b);
      assert.deepEqual(
        sorted,
        Array.from({ length: W }, (_, k) => offset + k * T),
        `seed ${seed}: each window once`,
      );
      assert.ok(sorted[W - 1] + T <= n - 1, "the last window's targets stay inside the data");
    }
    assert.notDeepEqual(all.slice(0, W), all.slice(W, 2 * W), "each epoch has its own order");
  }
  const a = starts(new BatchSampler(data, T, 1, B), steps.slice(0, 5));
  const b = starts(new BatchSampler(data, T, 2, B), steps.slice(0, 5));
  assert.notDeepEqual(a, b, "seeds differ in order");
});

test("draws depend on (seed, step, row) alone: any call order, any micro-batch split", () => {
  for (const sampling of ["epoch", "random"] as const) {
    const inOrder = starts(new BatchSampler(data, T, 3, B, sampling), [0, 1, 2, 30, 31]);
    const scrambled = new BatchSampler(data, T, 3, B, sampling);
    const byStep = new Map<number, number[]>();
    for (const step of [31, 2, 0, 30, 1]) byStep.set(step, starts(scrambled, [step]));
    assert.deepEqual(
      [0, 1, 2, 30, 31].flatMap((s) => byStep.get(s)!),
      inOrder,
      sampling,
    );
    // Two micro-batches of 2 rows draw the same rows as one of 4.
    const split = starts(new BatchSampler(data, T, 3, B, sampling), [0, 1, 2, 30, 31], 2, 2);
    assert.deepEqual(split, inOrder, `${sampling}: micro-batches`);
  }
});

test("random sampling keeps the old draws: s uniform in [0, n-T-1] from the step's stream, row by row", () => {
  const got = starts(new BatchSampler(data, T, 5, B, "random"), [0, 7]);
  const want: number[] = [];
  for (const step of [0, 7]) {
    const rng = new Rng(deriveSeed(5, "batch", step));
    for (let r = 0; r < B; r++) want.push(rng.int(n - T));
  }
  assert.deepEqual(got, want);
});

test("data shorter than one window is a clear error; exactly one window works", () => {
  assert.throws(() => new BatchSampler(data.subarray(0, T), T, 1, B), /fewer than one window of 9/);
  const one = starts(new BatchSampler(data.subarray(0, T + 1), T, 1, 1), [0, 1, 2], 1);
  assert.deepEqual(one, [0, 0, 0]);
});
