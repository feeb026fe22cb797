import assert from "node:assert/strict";
import { test } from "node:test";
import { lbfgs } from "../../src/fit/lbfgs.js";

test("L-BFGS finds the Rosenbrock minimum (1, 1) from the classic start", () => {
  const r = lbfgs(
    (x, g) => {
      g[0] = -2 * (1 - x[0]) - 400 * x[0] * (x[1] - x[0] ** 2);
      g[1] = 200 * (x[1] - x[0] ** 2);
      return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2;
    },
    [-1.2, 1],
  );
  assert.ok(r.converged, r.reason);
  assert.ok(Math.abs(r.x[0] - 1) < 1e-6 && Math.abs(r.x[1] - 1) < 1e-6, `x = ${Array.from(r.x)}`);
  assert.ok(r.f < 1e-12);
});

test("L-BFGS solves an ill-conditioned quadratic to its closed-form minimiser", () => {
  // f = 1/2 sum c_i (x_i - m_i)^2 with condition number 1e4: minimiser x = m.
  const c = [1, 10, 100, 1000, 10000];
  const m = [3, -2, 0.5, 7, -1];
  const r = lbfgs(
    (x, g) => {
      let f = 0;
      for (let i = 0; i < c.length; i++) {
        f += 0.5 * c[i] * (x[i] - m[i]) ** 2;
        g[i] = c[i] * (x[i] - m[i]);
      }
      return f;
    },
    [0, 0, 0, 0, 0],
  );
  assert.ok(r.converged);
  for (let i = 0; i < m.length; i++) assert.ok(Math.abs(r.x[i] - m[i]) < 1e-8, `x${i} = ${r.x[i]}`);
});

test("L-BFGS stops at maxIter and says so", () => {
  const r = lbfgs(
    (x, g) => {
      g[0] = -2 * (1 - x[0]) - 400 * x[0] * (x[1] - x[0] ** 2);
      g[1] = 200 * (x[1] - x[0] ** 2);
      return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2;
    },
    [-1.2, 1],
    { maxIter: 3 },
  );
  assert.equal(r.converged, false);
  assert.equal(r.reason, "maxIter");
});
