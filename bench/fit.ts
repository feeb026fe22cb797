/**
 * Benchmark of the scaling-law fit: the joint form over the full Chinchilla grid (4,500 starts) on 250
 * points, and 1,000 bootstrap refits, single-threaded and on a 2-worker pool; peer: scipy's L-BFGS-B on
 * the same objective (bench/peers/fit_scipy.py, /usr/bin/python3), same data, same starts.
 *
 *   npx tsx bench/fit.ts [--peer-every 10] [--bootstrap 1000]
 *
 * scipy over all 4,500 starts takes minutes, so the peer runs every k-th start (--peer-every) and its time
 * is scaled to the full grid; ours is timed on the same subset too, so the per-start ratio is like for like.
 */
import { spawnSync } from "node:child_process";
import { bootstrapFits, gridFit, makeData, refitStarts } from "../src/fit/fit.js";
import { getForm, huberObjective } from "../src/fit/forms.js";
import { lbfgs } from "../src/fit/lbfgs.js";
import { FitPool, fitScalingLawParallel } from "../src/fit/pool.js";
import { Rng } from "../src/util/rng.js";

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const peerEvery = arg("peer-every", 10);
const bootCount = arg("bootstrap", 1000);

const rng = new Rng(2024);
const points: { N: number; D: number; loss: number }[] = [];
const Ns = Array.from({ length: 10 }, (_, i) => 1e7 * 10 ** (i * 0.3));
const Ds = Array.from({ length: 25 }, (_, i) => 1e9 * 10 ** (i * 0.1));
for (const N of Ns) {
  for (const D of Ds) {
    const L = 1.69 + 406.4 / N ** 0.34 + 410.7 / D ** 0.28; // Chinchilla's published fit
    points.push({ N, D, loss: L * Math.exp(0.01 * rng.normal()) });
  }
}
const form = getForm("joint")!;
const data = makeData(points, form);
const grid = form.initGrid();
const delta = 1e-3;
const sec = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;

console.log(`joint form, ${points.length} points, ${grid.length} starts, Huber delta ${delta}`);

let t0 = process.hrtime.bigint();
const { best, optima } = gridFit(form, data, delta, grid);
const tGrid = sec(t0);
console.log(
  `ours  grid fit (screen + polish), 1 thread: ${tGrid.toFixed(2)} s  objective ${best.f.toExponential(10)}`,
);

t0 = process.hrtime.bigint();
const pool = new FitPool(2);
// Warm-up: worker start-up (loading tsx and compiling the modules) is paid once per CLI call.
await fitScalingLawParallel(points.slice(0, 40), form, pool, { quality: false, grid: grid.slice(0, 4) });
const tStart = sec(t0);
console.log(`ours  2-worker pool start-up: ${tStart.toFixed(2)} s`);
t0 = process.hrtime.bigint();
const outPool = await fitScalingLawParallel(points, form, pool, { quality: false });
const tGridPool = sec(t0);
console.log(
  `ours  grid fit, 2-worker pool: ${tGridPool.toFixed(2)} s  objective ${outPool.objective.toExponential(10)}`,
);

const starts = refitStarts(optima);
// The whole fit a user runs: grid, 1000 bootstrap refits (warm + grid starts), profile-likelihood E,
// identification and warnings (no LOO/hold-out), on the 2-worker pool.
t0 = process.hrtime.bigint();
const whole = await fitScalingLawParallel(points, form, pool, {
  bootstrap: bootCount,
  seed: 1,
  quality: false,
});
const tWhole = sec(t0);
console.log(
  `ours  joint fit with intervals (grid + ${bootCount} bootstrap + profile E), 2-worker pool: ${tWhole.toFixed(2)} s; E = ${whole.params.E.value.toFixed(4)} [${whole.params.E.lo?.toFixed(4)}, ${whole.params.E.hi?.toFixed(4)}], warnings: ${whole.warnings.map((w) => w.code).join(",") || "none"}`,
);
t0 = process.hrtime.bigint();
const boot1 = bootstrapFits(form, data, delta, starts, bootCount, 1);
const tBoot = sec(t0);
console.log(
  `ours  ${bootCount} bootstrap refits, 1 thread: ${tBoot.toFixed(2)} s (${boot1.failures} failed)`,
);
t0 = process.hrtime.bigint();
const bootPool = await pool.bootstrap(form, data, delta, starts, bootCount, 1);
const tBootPool = sec(t0);
await pool.close();
console.log(
  `ours  ${bootCount} bootstrap refits, 2-worker pool: ${tBootPool.toFixed(2)} s (${bootPool.filter((b) => !b).length} failed)`,
);

// Like-for-like per-start comparison on the grid subset: every start run to the tight tolerance.
const subset = grid.filter((_, i) => i % peerEvery === 0);
t0 = process.hrtime.bigint();
let oursSubBest = Number.POSITIVE_INFINITY;
for (const s of subset) {
  const r = lbfgs((x, g) => huberObjective(form, x, data, delta, g), s, {
    gtol: 1e-10,
    ftol: 1e-14,
    maxIter: 2000,
  });
  if (r.f < oursSubBest) oursSubBest = r.f;
}
const tOursSub = sec(t0);

const input = JSON.stringify({
  form: "joint",
  N: points.map((p) => p.N),
  D: points.map((p) => p.D),
  loss: points.map((p) => p.loss),
  grid: subset,
  delta,
});
const peer = spawnSync("/usr/bin/python3", ["bench/peers/fit_scipy.py"], {
  input,
  encoding: "utf8",
  maxBuffer: 1 << 26,
});
if (peer.status !== 0) {
  console.log(`peer  scipy unavailable: ${peer.stderr.trim().split("\n").pop()}`);
} else {
  const p = JSON.parse(peer.stdout) as { objective: number; seconds: number; starts: number };
  const full = (p.seconds * grid.length) / p.starts;
  console.log(
    `peer  scipy L-BFGS-B on ${p.starts} starts: ${p.seconds.toFixed(2)} s (scaled to ${grid.length} starts: ${full.toFixed(1)} s)  objective ${p.objective.toExponential(10)}`,
  );
  console.log(
    `ours  tight L-BFGS on the same ${subset.length} starts: ${tOursSub.toFixed(2)} s  objective ${oursSubBest.toExponential(10)}`,
  );
  console.log(
    `ratio per start (scipy / ours, same starts, same tolerance): ${(p.seconds / tOursSub).toFixed(1)}x`,
  );
  console.log(`ratio full grid (scipy scaled / ours screen+polish, 1 thread): ${(full / tGrid).toFixed(1)}x`);
  console.log(
    `objective: ours ${best.f <= p.objective * (1 + 1e-9) ? "<=" : ">"} scipy (relative difference ${((best.f - p.objective) / p.objective).toExponential(2)})`,
  );
}
console.log(
  `goal: grid fit < 5 s -> ${Math.min(tGrid, tGridPool) < 5 ? "met" : "NOT met"} (best ${Math.min(tGrid, tGridPool).toFixed(2)} s)`,
);
console.log(
  `goal: joint fit with intervals < 5 s -> ${tWhole < 5 ? "met" : "NOT met"} (${tWhole.toFixed(2)} s)`,
);
