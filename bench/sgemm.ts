import { nativeAddon } from "../src/train/kernels/native.js";

/**
 * The benches' ceiling: best-of-`reps` GFLOP/s of our native SGEMM on a large product (2048x256x1024
 * forward, out = inp·Wᵀ) at `threads` threads, timed by `clock` (milliseconds; wall clock by default).
 * Benches divide their achieved rate by this, measured in the same run.
 */
export function sgemmRate(
  threads: number,
  { reps = 12, clock = () => performance.now() }: { reps?: number; clock?: () => number } = {},
): number {
  const addon = nativeAddon();
  if (!addon) throw new Error("native addon not built (npm ci)");
  addon.setThreads(threads);
  const [BT, C, OC] = [2048, 256, 1024];
  const inp = new Float32Array(BT * C).fill(0.01);
  const w = new Float32Array(OC * C).fill(0.02);
  const out = new Float32Array(BT * OC);
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < reps; i++) {
    const t0 = clock();
    addon.matmulForward(out, inp, w, null, BT, C, OC);
    best = Math.min(best, clock() - t0);
  }
  return (2 * BT * C * OC) / (best / 1000) / 1e9;
}
