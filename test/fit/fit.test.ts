import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { fitScalingLaw, type Point } from "../../src/fit/fit.js";
import { defineForm, getForm } from "../../src/fit/forms.js";
import { SynthmixError } from "../../src/util/errors.js";
import { Rng } from "../../src/util/rng.js";
import { optionalTool, pythonModules } from "../helpers/optional.js";

function jointPoints(noise: number, seed: number): Point[] {
  const rng = new Rng(seed);
  const out: Point[] = [];
  for (const N of [1e5, 3e5, 1e6, 3e6, 1e7]) {
    for (const D of [1e6, 3e6, 1e7, 3e7, 1e8, 3e8]) {
      const L = 1.8 + 500 / N ** 0.35 + 800 / D ** 0.3;
      out.push({ runId: `${N}-${D}`, N, D, loss: L * Math.exp(noise * rng.normal()) });
    }
  }
  return out;
}

test("joint fit recovers known parameters exactly from noise-free points", () => {
  const f = fitScalingLaw(jointPoints(0, 1), "joint", { quality: false });
  const p = f.natural;
  assert.ok(f.converged);
  assert.ok(Math.abs(p.alpha - 0.35) < 1e-4 && Math.abs(p.beta - 0.3) < 1e-4, JSON.stringify(p));
  assert.ok(Math.abs(p.E - 1.8) < 1e-3 && Math.abs(p.A / 500 - 1) < 1e-2 && Math.abs(p.B / 800 - 1) < 1e-2);
  assert.ok(f.quality.rmseLog < 1e-6);
});

test("joint fit with noise: the bootstrap 95% intervals contain the true parameters", () => {
  const f = fitScalingLaw(jointPoints(0.005, 7), "joint", { bootstrap: 200, seed: 3 });
  const truth: Record<string, number> = { A: 500, alpha: 0.35, B: 800, beta: 0.3, E: 1.8 };
  for (const [k, v] of Object.entries(truth)) {
    const e = f.params[k];
    assert.ok(e.lo !== null && e.hi !== null && e.se !== null && e.se > 0, `${k}: ${JSON.stringify(e)}`);
    assert.ok(e.lo <= v && v <= e.hi, `${k}: ${v} not in [${e.lo}, ${e.hi}] (fit ${e.value})`);
  }
  assert.ok(f.quality.r2 > 0.99);
  assert.ok(f.quality.looRmseLog !== null && f.quality.looRmseLog < 0.02);
  // Hold-out: fit on the lower-compute part (N*D below the top quarter of compute levels), predict the rest.
  const ho = f.quality.holdout;
  assert.ok(ho !== null && ho.points > 0 && ho.fitPoints + ho.points === 30, JSON.stringify(ho));
  assert.ok(ho.errors.every((e) => (e.N ?? 0) * (e.D ?? 0) >= ho.at));
  assert.ok(Math.abs(ho.relError) < 0.02 && ho.maxAbsRelError < 0.03, JSON.stringify(ho));
  assert.deepEqual(f.warnings, []);
  for (const k of Object.keys(truth)) assert.equal(f.params[k].identified, true, k);
  assert.equal(f.quality.residuals.length, 30);
});

test("bootstrap is reproducible for a seed", () => {
  const pts = jointPoints(0.01, 2).filter((p) => p.N === 1e6);
  const a = fitScalingLaw(pts, "data", { bootstrap: 30, seed: 5, quality: false });
  const b = fitScalingLaw(pts, "data", { bootstrap: 30, seed: 5, quality: false });
  assert.deepEqual(a.params, b.params);
});

test("degenerate input gives a clear SynthmixError", () => {
  const pts = jointPoints(0, 1).filter((p) => p.N === 1e5);
  const code = (fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      assert.ok(e instanceof SynthmixError, String(e));
      return e.code;
    }
    assert.fail("no error");
  };
  assert.equal(
    code(() => fitScalingLaw(pts.slice(0, 2), "data")),
    "TOO_FEW_POINTS",
  );
  assert.equal(
    code(() => fitScalingLaw(pts, "joint")),
    "TOO_FEW_POINTS",
  ); // a single N
  assert.equal(
    code(() =>
      fitScalingLaw(
        pts.map((p) => ({ ...p, loss: 3 })),
        "data",
      ),
    ),
    "DEGENERATE_FIT_INPUT",
  );
  assert.equal(
    code(() => fitScalingLaw([{ ...pts[0], loss: -1 }, ...pts.slice(1)], "data")),
    "BAD_FIT_INPUT",
  );
  assert.equal(
    code(() => fitScalingLaw([{ ...pts[0], D: Number.NaN }, ...pts.slice(1)], "data")),
    "BAD_FIT_INPUT",
  );
  assert.equal(
    code(() => fitScalingLaw(pts, "cubic")),
    "UNKNOWN_FORM",
  );
});

const scipy = optionalTool("python3-scipy", pythonModules("scipy"), "apt-get install -y python3-scipy");

test("grid fit reaches scipy L-BFGS-B's optimum on the same objective and grid", {
  skip: scipy.skip,
}, () => {
  scipy.require();
  const pts = jointPoints(0.01, 11).filter((p) => p.N === 3e5);
  const form = getForm("data")!;
  // Every 10th start of the grid keeps python's runtime small; both sides use the same starts.
  const grid = form.initGrid().filter((_, i) => i % 10 === 0);
  const ours = fitScalingLaw(pts, form, { quality: false, grid });
  const input = {
    form: "data",
    N: pts.map((p) => p.N),
    D: pts.map((p) => p.D),
    loss: pts.map((p) => p.loss),
    grid,
    delta: 1e-3,
  };
  const r = spawnSync("/usr/bin/python3", ["bench/peers/fit_scipy.py"], {
    input: JSON.stringify(input),
    encoding: "utf8",
  });
  assert.equal(r.status, 0, r.stderr);
  const peer = JSON.parse(r.stdout) as { theta: number[]; objective: number };
  assert.ok(
    ours.objective <= peer.objective * (1 + 1e-6) + 1e-15,
    `ours ${ours.objective} vs scipy ${peer.objective}`,
  );
  // Same optimum: natural parameters agree.
  const pn = form.natural(peer.theta);
  for (const k of ["B", "beta", "E"])
    assert.ok(Math.abs(ours.natural[k] / pn[k] - 1) < 1e-3, `${k}: ${ours.natural[k]} vs ${pn[k]}`);
});

test("a user-defined form fits through the same interface (pure power law, no offset)", () => {
  const form = defineForm({
    name: "power-d",
    params: ["b", "beta"],
    uses: { N: false, D: true },
    predictLog(t, data, i, grad) {
      if (grad) {
        grad[0] = 1;
        grad[1] = -data.logD[i];
      }
      return t[0] - t[1] * data.logD[i];
    },
    initGrid: () => [0, 5, 10].flatMap((b) => [0, 0.5, 1].map((beta) => [b, beta])),
    natural: (t) => ({ B: Math.exp(t[0]), beta: t[1] }),
  });
  const pts = [1e6, 1e7, 1e8, 1e9].map((D) => ({ D, loss: 50 * D ** -0.2 }));
  const f = fitScalingLaw(pts, "power-d", { bootstrap: 10, seed: 1 });
  assert.equal(f.form, form.name);
  assert.ok(
    Math.abs(f.natural.B / 50 - 1) < 1e-6 && Math.abs(f.natural.beta - 0.2) < 1e-8,
    JSON.stringify(f.natural),
  );
});
