import assert from "node:assert/strict";
import { test } from "node:test";
import { fitScalingLaw } from "../../src/fit/fit.js";
import { FitPool, fitScalingLawParallel } from "../../src/fit/pool.js";
import { syntheticRows } from "./synthetic.js";

test("the worker pool gives exactly the single-threaded fit and bootstrap", async () => {
  const pts = syntheticRows(0.005, 3, { ratios: [0] }).map((r) => ({
    runId: r.runId,
    N: r.nonEmbeddingParams,
    D: r.tokens,
    loss: r.loss,
  }));
  const opts = { bootstrap: 40, seed: 9, quality: false };
  const seq = fitScalingLaw(pts, "joint", { ...opts, grid: fitGrid() });
  const pool = new FitPool(2);
  try {
    const par = await fitScalingLawParallel(pts, "joint", pool, { ...opts, grid: fitGrid() });
    assert.deepEqual(par.theta, seq.theta);
    assert.deepEqual(par.params, seq.params);
    assert.equal(par.boot.length + par.bootFailures, 40);
  } finally {
    await pool.close();
  }
});

/** A coarser grid than the default keeps this test quick; the pool logic does not depend on its size. */
function fitGrid(): number[][] {
  const out: number[][] = [];
  for (const a of [0, 5, 10])
    for (const al of [0, 0.5, 1])
      for (const b of [0, 5, 10])
        for (const be of [0, 0.5, 1]) for (const e of [0, 0.5]) out.push([a, al, b, be, e]);
  return out;
}
