import assert from "node:assert/strict";
import { test } from "node:test";
import { makeData } from "../../src/fit/fit.js";
import { type Form, getForm, huberObjective } from "../../src/fit/forms.js";

const points = [
  { N: 1e5, D: 1e6, loss: 5.1 },
  { N: 3e5, D: 2e6, loss: 4.4 },
  { N: 1e6, D: 4e6, loss: 3.9 },
  { N: 3e6, D: 1e7, loss: 3.5 },
  { N: 1e7, D: 3e7, loss: 3.1 },
  { N: 1e5, D: 3e7, loss: 4.0 },
];

function genericObjective(form: Form, theta: Float64Array, delta: number): number {
  // Independent reference: plain log-sum-exp in natural units and the textbook Huber loss.
  const data = makeData(points, form);
  const nat = form.natural(theta);
  let f = 0;
  for (let i = 0; i < data.n; i++) {
    const L =
      (nat.E ?? 0) +
      (nat.A !== undefined ? nat.A / data.N[i] ** nat.alpha : 0) +
      (nat.B !== undefined ? nat.B / data.D[i] ** nat.beta : 0);
    const r = Math.log(L) - data.logLoss[i];
    f += Math.abs(r) <= delta ? 0.5 * r * r : delta * (Math.abs(r) - 0.5 * delta);
  }
  return f;
}

for (const name of ["data", "model", "joint"]) {
  test(`${name} form: objective matches natural-unit reference and its gradient matches finite differences`, () => {
    const form = getForm(name)!;
    const data = makeData(points, form);
    const theta = Float64Array.from(
      form.params.map((p) => (p.startsWith("a") || p.startsWith("b") ? (p.length === 1 ? 5 : 0.3) : 0.9)),
    );
    for (const delta of [1e-3, 1]) {
      const g = new Float64Array(theta.length);
      const f = huberObjective(form, theta, data, delta, g);
      assert.ok(Math.abs(f - genericObjective(form, theta, delta)) < 1e-12 * Math.max(1, f));
      for (let j = 0; j < theta.length; j++) {
        const h = 1e-6;
        const tp = Float64Array.from(theta);
        const tm = Float64Array.from(theta);
        tp[j] += h;
        tm[j] -= h;
        const dummy = new Float64Array(theta.length);
        const fd =
          (huberObjective(form, tp, data, delta, dummy) - huberObjective(form, tm, data, delta, dummy)) /
          (2 * h);
        assert.ok(
          Math.abs(fd - g[j]) < 1e-6 * Math.max(1, Math.abs(fd)),
          `${name} d/d${form.params[j]}: ${g[j]} vs ${fd}`,
        );
      }
      // The fused fast path (when present) must equal the generic one built from predictLog.
      if (form.objective) {
        const g2 = new Float64Array(theta.length);
        const slow = { ...form, objective: undefined };
        const f2 = huberObjective(slow, theta, data, delta, g2);
        assert.ok(Math.abs(f - f2) < 1e-12);
        for (let j = 0; j < theta.length; j++) assert.ok(Math.abs(g[j] - g2[j]) < 1e-10);
      }
    }
  });
}

test("the joint grid is the Chinchilla grid (5 x 5 x 6 x 6 x 5 = 4500 starts)", () => {
  assert.equal(getForm("joint")!.initGrid().length, 4500);
  assert.equal(getForm("data")!.initGrid().length, 150);
});
