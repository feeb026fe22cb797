/**
 * Inference honesty with known truth: a well-posed grid recovers the truth inside its intervals in about
 * 95% of seeded replicates; an ill-posed grid is flagged and never given a narrow interval; degenerate
 * shapes carry their warning code, and the report states no finding from them.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { fitScalingLaw, type Point } from "../../src/fit/fit.js";
import { getForm } from "../../src/fit/forms.js";
import { predictWithIntervals } from "../../src/fit/predict.js";
import { boundThreshold, describeBound, observedBound, type SpeedupInput } from "../../src/fit/speedup.js";
import { fitRows } from "../../src/fit/workspace.js";
import { findings } from "../../src/report/summary.js";
import type { RunResultRow } from "../../src/sweep/results.js";
import { Rng } from "../../src/util/rng.js";
import { optionalTool, pythonModules } from "../helpers/optional.js";

const TRUTH = { B: 400, beta: 0.3, E: 2.5 };
const law = (D: number) => TRUTH.E + TRUTH.B / D ** TRUTH.beta;

function dataPoints(Ds: number[], noise: number, seed: number, seeds = 1): Point[] {
  const rng = new Rng(seed);
  return Ds.flatMap((D) =>
    Array.from({ length: seeds }, (_, s) => ({
      runId: `${D}-${s}`,
      D,
      loss: law(D) * Math.exp(noise * rng.normal()),
    })),
  );
}

const WELL = [1e5, 3e5, 1e6, 3e6, 1e7, 3e7, 1e8, 3e8, 1e9];

test("well-posed grid: the 95% intervals cover the true B, beta, E in ~95% of seeded replicates", () => {
  const reps = 24;
  let covered = 0;
  let cells = 0;
  for (let s = 0; s < reps; s++) {
    const f = fitScalingLaw(dataPoints(WELL, 0.01, 100 + s), "data", {
      bootstrap: 200,
      seed: s,
      quality: false,
    });
    for (const [k, v] of Object.entries(TRUTH)) {
      const e = f.params[k];
      assert.ok(e.lo !== null && e.hi !== null, `${k} has an interval`);
      cells++;
      if (e.lo <= v && v <= e.hi) covered++;
    }
    assert.ok(f.params.E.identified, `replicate ${s}: E identified (${JSON.stringify(f.warnings)})`);
  }
  // 72 intervals at a nominal 95%: expect ~68; below 60 (83%) would be a real under-coverage.
  assert.ok(covered >= 60, `${covered} / ${cells} intervals cover the truth`);
});

test("ill-posed grid (a short D range high above E): E is flagged, never given a narrow interval", () => {
  const ill = [2e5, 3e5, 4.5e5, 7e5, 1e6];
  for (let s = 0; s < 8; s++) {
    const pts = ill.map((D, i) => ({
      runId: `${i}`,
      D,
      loss: (5.5 + 300 / D ** 0.3) * Math.exp(0.01 * new Rng(s * 10 + i).normal()),
    }));
    const f = fitScalingLaw(pts, "data", { bootstrap: 200, seed: s, quality: false });
    const E = f.params.E;
    const lmin = Math.min(...pts.map((p) => p.loss));
    assert.equal(E.identified, false, `replicate ${s}: ${JSON.stringify(E)}`);
    assert.ok(
      f.warnings.some((w) => ["E_AT_BOUND", "E_NOT_IDENTIFIED"].includes(w.code)),
      JSON.stringify(f.warnings),
    );
    // Never narrow: whatever interval is reported spans a large part of E's feasible range.
    if (E.lo !== null && E.hi !== null)
      assert.ok(E.hi - E.lo > 0.3 * lmin, `[${E.lo}, ${E.hi}] of [0, ${lmin})`);
  }
});

test("E at its bound (losses still falling fast, no floor in sight): E_AT_BOUND, the interval reaches 0", () => {
  // A pure power law: the best E is 0, where dL/de = 0 and warm-started refits could never move.
  const pts = [1e5, 3e5, 1e6, 3e6, 1e7, 3e7].map((D, i) => ({
    runId: `${i}`,
    D,
    loss: 900 * D ** -0.25 * Math.exp(0.01 * new Rng(i + 1).normal()),
  }));
  const f = fitScalingLaw(pts, "data", { bootstrap: 200, seed: 1, quality: false });
  assert.ok(
    f.warnings.some((w) => w.code === "E_AT_BOUND"),
    JSON.stringify(f.warnings),
  );
  assert.equal(f.params.E.identified, false);
  assert.ok(f.params.E.lo !== null && f.params.E.lo < 1e-6);
  // Most resamples also sit at E = 0 (so the bootstrap interval alone would be a point); the reported
  // interval is the union with the profile-likelihood interval, which spans a real part of [0, min loss).
  assert.ok(f.params.E.profile!.hi > 0.1, JSON.stringify(f.params.E.profile));
  assert.ok(f.params.E.hi! >= f.params.E.profile!.hi);
});

test("3 points for 3 parameters: UNDERDETERMINED, no interval, 0 dof", () => {
  const f = fitScalingLaw(dataPoints([1e6, 1e7, 1e8], 0.01, 1), "data", { bootstrap: 100, seed: 1 });
  assert.equal(f.dof, 0);
  assert.ok(f.warnings.some((w) => w.code === "UNDERDETERMINED"));
  for (const e of Object.values(f.params)) {
    assert.equal(e.identified, false);
    assert.equal(e.lo, null);
    assert.equal(e.hi, null);
  }
  assert.equal(f.boot.length, 0, "no bootstrap on an underdetermined fit");
  // Seeds do not add design points: 3 D values x 3 seeds is still 0 dof.
  const g = fitScalingLaw(dataPoints([1e6, 1e7, 1e8], 0.01, 1, 3), "data", { bootstrap: 50, seed: 1 });
  assert.equal(g.dof, 0);
  assert.ok(g.warnings.some((w) => w.code === "UNDERDETERMINED"));
});

test("a rising curve: INVALID_LAW (the data rise with D; no decreasing law describes them)", () => {
  const pts = [1e5, 3e5, 1e6, 3e6, 1e7, 3e7].map((D, i) => ({
    runId: `${i}`,
    D,
    loss: 3 + 0.02 * Math.log(D) + 0.001 * i,
  }));
  const f = fitScalingLaw(pts, "data", { bootstrap: 50, seed: 1, quality: false });
  assert.ok(
    f.warnings.some((w) => w.code === "INVALID_LAW"),
    JSON.stringify({ n: f.natural, w: f.warnings }),
  );
  assert.ok(Object.values(f.params).every((e) => !e.identified));
});

test("prediction intervals: a fit on the lower-compute half covers most of the upper half", () => {
  const rng = new Rng(11);
  const pts: Point[] = [];
  // Well-posed: the grid reaches losses where E is a large part of the loss, so the lower half pins E.
  for (const N of [1e6, 3e6, 1e7, 3e7, 1e8, 3e8, 1e9]) {
    for (const D of [1e7, 3e7, 1e8, 3e8, 1e9, 3e9, 1e10, 3e10, 1e11]) {
      pts.push({ N, D, loss: (1.8 + 500 / N ** 0.35 + 800 / D ** 0.3) * Math.exp(0.005 * rng.normal()) });
    }
  }
  const compute = pts.map((p) => p.N! * p.D!).sort((a, b) => a - b);
  const median = compute[Math.floor(compute.length / 2)];
  const lower = pts.filter((p) => p.N! * p.D! < median);
  const upper = pts.filter((p) => p.N! * p.D! >= median);
  const f = fitScalingLaw(lower, "joint", { bootstrap: 200, seed: 2, quality: false });
  assert.deepEqual(f.warnings, []);
  const preds = predictWithIntervals(getForm("joint")!, f.theta, f.boot, f.quality.sigmaLog, upper, {
    N: [1e6, 1e9],
    D: [1e7, 1e11],
  });
  const covered = preds.filter(
    (p, i) => p.lo !== null && p.hi !== null && p.lo <= upper[i].loss && upper[i].loss <= p.hi,
  ).length;
  assert.ok(covered >= 0.8 * upper.length, `${covered} / ${upper.length} covered`);
  for (const p of preds) assert.ok(p.lo! < p.loss && p.loss < p.hi!);
});

function row(over: Partial<RunResultRow>): RunResultRow {
  return {
    runId: "r",
    modelName: "custom",
    nonEmbeddingParams: 1e6,
    totalParams: 2e6,
    tokens: 1e6,
    mixture: "natural",
    synthetic: "none",
    ratio: 0,
    generator: "",
    seed: 1,
    domain: "all",
    loss: 3,
    flops: 1,
    tokensPerSec: 1,
    wallSec: 1,
    ...over,
  };
}

test("degenerate workspace: warnings reach fits.json and the summary states no finding from them", () => {
  const Ds = [1e5, 2e5, 4e5];
  const rows: RunResultRow[] = [];
  for (const D of Ds) {
    rows.push(row({ runId: `nat-${D}`, tokens: D, loss: 5.5 + 300 / D ** 0.3 }));
    // hq-100 repeats its 10 documents: epochs from the mixture manifest say so; its curve rises.
    rows.push(
      row({
        runId: `hq-${D}`,
        tokens: D,
        mixture: "hq-100",
        synthetic: "hq",
        ratio: 1,
        generator: "g",
        loss: 5.3 + 1e-6 * D,
        epochs: { "hq-g": D / 4e4 },
      }),
    );
  }
  const res = fitRows(rows, { form: "data", bootstrap: 50, seed: 1 });
  const hq = res.fits.fits.find((f) => f.key === "hq:1:g")!;
  const nat = res.fits.fits.find((f) => f.key === "none:0:")!;
  const codes = (f: { warnings: { code: string }[] }) => f.warnings.map((w) => w.code);
  assert.ok(codes(hq).includes("REPEATED_DATA") && codes(hq).includes("UNDERDETERMINED"), codes(hq).join());
  assert.deepEqual(hq.repetition.repeated, { "hq-g": 10 });
  assert.ok(codes(nat).includes("UNDERDETERMINED"));
  assert.ok(res.speedups.entries.every((e) => !e.supported));
  const said = findings({
    workspace: "ws",
    fits: res.fits,
    speedups: res.speedups,
    bestRatio: res.bestRatio,
    missing: [],
  });
  const text = said.join("\n");
  assert.match(text, /hq-100 vs natural: not resolved on this grid/);
  assert.match(text, /hq-100 repeats hq-g 10×/);
  assert.doesNotMatch(text, /lower irreducible loss|higher irreducible loss|faster than natural/);
});

test("an unidentified floor still supports a speed-up read between the runs; beyond them only the runs bound it", () => {
  // Pure power laws (true E = 0), so both fits put E at its bound; hq-33 reaches any loss with
  // (20/18)^(1/0.2) = 1.69x fewer tokens, inside the fitted D range; qa-33 would need 2.5x more tokens
  // than the largest run, an extrapolation.
  const Ds = [1e5, 2e5, 4e5, 8e5, 1.6e6];
  const rng = new Rng(7);
  const rows: RunResultRow[] = [];
  const laws = [
    { mixture: "natural", synthetic: "none", ratio: 0, generator: "", B: 20 },
    { mixture: "hq-33", synthetic: "hq", ratio: 0.33, generator: "g", B: 18 },
    { mixture: "qa-33", synthetic: "qa", ratio: 0.33, generator: "g", B: 24 },
  ];
  for (const law of laws)
    for (const D of Ds)
      for (const seed of [1, 2]) {
        const loss = law.B * D ** -0.2 * Math.exp(0.002 * rng.normal());
        const { B: _b, ...key } = law;
        rows.push(row({ ...key, runId: `${law.mixture}-${D}-${seed}`, tokens: D, seed, loss }));
      }
  const res = fitRows(rows, { form: "data", bootstrap: 200, seed: 1 });
  const codes = (f: { warnings: { code: string }[] }) => f.warnings.map((w) => w.code);
  for (const f of res.fits.fits) assert.ok(codes(f).includes("E_AT_BOUND"), `${f.key}: ${codes(f).join()}`);
  const hq = res.speedups.entries.find((e) => e.key === "hq:0.33:g")!;
  assert.equal(hq.supported, true, hq.warnings.map((w) => w.message).join("\n"));
  assert.equal(hq.basis, "interpolation");
  const s = hq.atLargestNatural!.speedup;
  assert.equal(hq.atLargestNatural!.extrapolated, false);
  assert.ok(s.lo! < 1.69 && 1.69 < s.hi!, `[${s.lo}, ${s.hi}] misses the true 1.69`);
  const qa = res.speedups.entries.find((e) => e.key === "qa:0.33:g")!;
  assert.equal(qa.atLargestNatural!.extrapolated, true);
  assert.equal(qa.supported, false);
  assert.equal(qa.basis, null);
  // ... but its own runs settle the direction: at 1.6M tokens its loss is still far above L*.
  assert.equal(qa.bound?.side, "below");
  assert.equal(qa.bound?.value, 1);
  assert.ok(qa.bound!.gapSe > 10);
  assert.equal(hq.bound, null, "an interpolated reading needs no bound");
  const text = findings({
    workspace: "ws",
    fits: res.fits,
    speedups: res.speedups,
    bestRatio: res.bestRatio,
    missing: [],
  }).join("\n");
  assert.match(text, /hq-33 [^;]*× \(faster than natural, read between the runs; E not identified\)/);
  assert.match(text, /qa-33 < 1\.00× \(slower than natural, from the runs: at D = 1\.60e\+6 its loss/);
});

test("a bound says a direction only when it implies one", () => {
  const b = { atD: 3e5, loss: 4.29, targetLoss: 3.8, gapSe: 7.3 };
  assert.match(
    describeBound({ ...b, side: "below", value: 1 }),
    /^< 1\.00× \(slower than natural, from the runs/,
  );
  const weak = describeBound({ ...b, side: "below", value: 4 });
  assert.match(
    weak,
    /^< 4\.00× \(at most 4\.00× natural, from the runs: at D = 3\.00e\+5 its loss 4\.290 is still above L\* = 3\.800 by 7\.3 se\)/,
  );
  assert.doesNotMatch(weak, /slower/);
  assert.match(
    describeBound({ ...b, loss: 3.5, side: "above", value: 0.5 }),
    /at least 0\.50× natural.*already below/,
  );
});

const scipy = optionalTool("python3-scipy", pythonModules("scipy"), "apt-get install -y python3-scipy");

test("the bound threshold is scipy's one-sided Bonferroni quantile (t with the noise's df, else normal)", {
  skip: scipy.skip,
}, () => {
  scipy.require();
  const cases: [number, number | null][] = [
    [2, null],
    [2, 3],
    [12, 9],
    [40, 1],
    [40, null],
    [330, 165],
  ];
  const py = `import json,sys
from scipy.stats import t, norm
cs = json.load(sys.stdin)
print(json.dumps([float(norm.ppf(1 - 0.05 / n) if df is None else t.ppf(1 - 0.05 / n, df)) for n, df in cs]))`;
  const r = spawnSync("/usr/bin/python3", ["-c", py], { input: JSON.stringify(cases), encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const ref = JSON.parse(r.stdout) as number[];
  cases.forEach(([n, df], i) => {
    const ours = boundThreshold(n, df);
    // jStat's inverse incomplete beta agrees with scipy to ~4e-9 relative; a threshold needs far less.
    assert.ok(Math.abs(ours / ref[i] - 1) < 1e-7, `tests ${n}, df ${df}: ours ${ours}, scipy ${ref[i]}`);
  });
  assert.ok(Math.abs(boundThreshold(2, null) - 1.959964) < 1e-6, "one entry, known noise: the old 1.96");
});

test("a gap that is significant alone is not a bound in a family of many entries", () => {
  const sigmaLog = 0.01;
  const se = sigmaLog * Math.sqrt(1 / 2 + 1 / 2);
  const input = (tests: number, df: number | null): SpeedupInput =>
    ({
      observed: {
        natural: { D: 1e6, loss: 4, runs: 2 },
        // still above L* at its largest budget by 2.6 se
        mixture: [
          { D: 5e5, loss: 4.3, runs: 2 },
          { D: 1e6, loss: 4 * Math.exp(2.6 * se), runs: 2 },
        ],
        sigmaLog,
        df,
        tests,
      },
    }) as unknown as SpeedupInput;
  const alone = observedBound(input(2, null));
  assert.equal(alone?.side, "below");
  assert.ok(Math.abs(alone!.gapSe - 2.6) < 1e-9);
  assert.ok(Math.abs(alone!.threshold! - 1.96) < 1e-3);
  // 20 entries x 2 sides: the threshold is 3.02 (normal), so 2.6 se settles nothing.
  assert.equal(observedBound(input(40, null)), null);
  // Few degrees of freedom in the noise estimate widen it too: t with 2 df at one entry needs 4.30.
  assert.equal(observedBound(input(2, 2)), null);
  assert.match(describeBound(alone!), /by 2\.6 se, > 1\.96 needed: 2 tests at 5% family-wise, normal\)$/);
});
