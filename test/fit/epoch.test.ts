/**
 * Published data as a regression test: the 245 points Epoch AI extracted from Chinchilla's figure 4
 * (github.com/epoch-research/analyzing-chinchilla, data/svg_extracted_data.csv at commit 92258837,
 * columns Model Size, Training FLOP, loss), with D = FLOP / (6 N) and the 5 highest losses dropped as in
 * their notebook (240 points). Their Huber fit (delta 1e-3, same grid) is A = 482.0, B = 2085.4,
 * E = 1.817, alpha = 0.3478, beta = 0.3658 (paper, table 1; the notebook's optimum from the same grid is
 * the one below): A = 477.8, B = 2143, E = 1.8172, alpha = 0.3473, beta = 0.3672.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { parse } from "csv-parse/sync";
import { fitScalingLaw, type Point } from "../../src/fit/fit.js";

function epochPoints(): Point[] {
  const rows: { modelSize: string; trainingFlop: string; loss: string }[] = parse(
    readFileSync(new URL("../fixtures/fit/epoch-chinchilla.csv", import.meta.url), "utf8"),
    { columns: true },
  );
  const pts = rows.map((r, i) => {
    const N = Number(r.modelSize);
    return { runId: `#${i}`, N, D: Number(r.trainingFlop) / (6 * N), loss: Number(r.loss) };
  });
  const sorted = pts.map((p) => p.loss).sort((a, b) => a - b);
  const cut = sorted[sorted.length - 5];
  return pts.filter((p) => p.loss < cut);
}

test("Epoch AI's Chinchilla points: the joint fit matches the published optimum and is identified", () => {
  const pts = epochPoints();
  assert.equal(pts.length, 240);
  const f = fitScalingLaw(pts, "joint", { bootstrap: 100, seed: 1, quality: false });
  const want: Record<string, number> = { A: 477.8, B: 2143, E: 1.8172, alpha: 0.3473, beta: 0.3672 };
  for (const [k, v] of Object.entries(want)) {
    assert.ok(Math.abs(f.natural[k] / v - 1) < 2e-3, `${k}: ${f.natural[k]} vs ${v}`);
  }
  assert.deepEqual(f.warnings, [], JSON.stringify(f.warnings));
  const E = f.params.E;
  assert.ok(E.identified && E.lo! < 1.8172 && 1.8172 < E.hi!, JSON.stringify(E));
  assert.ok(E.profile && E.profile.lo > 1 && E.profile.hi < 2.5, JSON.stringify(E.profile));
  assert.equal(f.dof, f.effectivePoints - 5);
});
