import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { readPointRows } from "../../src/fit/points.js";
import {
  bestRatioEntry,
  fitMixingLaw,
  fitQuadratic,
  meanMixingArgmin,
  mixingLawArgmin,
  quadraticArgmin,
} from "../../src/fit/ratio.js";
import type { BestRatioFile, FitsFile, SpeedupsFile } from "../../src/fit/results.js";
import { lossAt, tokensForLoss } from "../../src/fit/speedup.js";
import { fitRows } from "../../src/fit/workspace.js";
import { rowsToCsv } from "../../src/sweep/results.js";
import { SynthmixError } from "../../src/util/errors.js";
import { runCliCaptured } from "../helpers/capture.js";
import { bOfRatio, syntheticRows, TRUE } from "./synthetic.js";

test("tokensForLoss inverts the data and joint laws", () => {
  const data = { B: 300, beta: 0.3, E: 1.7 };
  const joint = { A: 400, alpha: 0.34, ...data };
  for (const D of [1e6, 1e8, 1e10]) {
    assert.ok(Math.abs(tokensForLoss(data, lossAt(data, D)) / D - 1) < 1e-9);
    assert.ok(Math.abs(tokensForLoss(joint, lossAt(joint, D, 1e6), 1e6) / D - 1) < 1e-9);
  }
  assert.ok(Number.isNaN(tokensForLoss(data, 1.7)), "the asymptote is never reached");
});

test("quadratic and mixing-law fits recover exact curves and their minimisers", () => {
  const q = (r: number) => 3 + 0.5 * (r - 0.3) ** 2;
  const pts = [0, 0.25, 0.5, 0.75, 1].map((ratio) => ({ ratio, loss: q(ratio), runs: 1 }));
  const c = fitQuadratic(pts)!;
  assert.ok(Math.abs(quadraticArgmin(c) - 0.3) < 1e-9);
  const m = (r: number) => 2.5 + 0.4 * Math.exp(-1.7 * r);
  const mp = [0, 0.2, 0.5, 0.8, 1].map((ratio) => ({ ratio, loss: m(ratio), runs: 1 }));
  const fitM = fitMixingLaw(mp)!;
  assert.ok(
    Math.abs(fitM.t + 1.7) < 1e-4 && Math.abs(fitM.c - 2.5) < 1e-4 && Math.abs(fitM.k - 0.4) < 1e-4,
    JSON.stringify(fitM),
  );
  assert.equal(mixingLawArgmin(fitM), 1);
  assert.equal(fitQuadratic(pts.slice(0, 2)), null);
});

test("workspace fit: speed-ups and best ratios match the generating law within their intervals", () => {
  const ratios = [0, 0.2, 0.4, 0.6, 0.8];
  const res = fitRows(syntheticRows(0.002, 4, { ratios }), {
    form: "data",
    bootstrap: 100,
    seed: 1,
    quality: false,
  });
  assert.equal(res.fits.failures.length, 0);
  assert.equal(res.fits.fits.length, 5 * 3); // 5 mixtures x 3 model sizes
  // True speed-up of a mixture at fixed N: (B_nat / B_mix)^(1/beta), independent of the target loss.
  for (const e of res.speedups.entries) {
    const truth = (bOfRatio(0) / bOfRatio(e.ratio)) ** (1 / TRUE.beta);
    const s = e.atLargestNatural!.speedup;
    assert.equal(e.method, "data-fit-per-N");
    assert.ok(s.lo! <= truth && truth <= s.hi!, `${e.key} N=${e.N}: ${truth} not in [${s.lo}, ${s.hi}]`);
    assert.ok(e.curve.length > 0);
  }
  // Loss is quadratic in B(r), minimal at r = 0.4, but not exactly quadratic in loss: allow 0.05.
  for (const e of res.bestRatio.entries) {
    assert.equal(e.noise.from, "fit-residuals");
    assert.ok(
      Math.abs(e.quadratic!.bestRatio.value - 0.4) < 0.05,
      `${e.N} ${e.D}: ${e.quadratic!.bestRatio.value}`,
    );
    assert.ok(e.quadratic!.bestRatio.lo! <= e.quadratic!.bestRatio.value);
  }
  assert.equal(res.bestRatio.trends.length, 1);
  assert.equal(res.fits.generators.length, 4);
});

test("CSV points: quoted commas, quotes and newlines (csv-parse)", () => {
  const dir = mkdtempSync(join(tmpdir(), "synthmix-csv-"));
  const path = join(dir, "p.csv");
  writeFileSync(path, 'group,N,D,loss\n"nat, ""a""\nb",1e6,1e8,3.2\nhq,1e6,2e8,3.1\n');
  const rows = readPointRows(path);
  assert.equal(rows.length, 2);
  assert.equal(rows[0].mixture, 'nat, "a"\nb');
  assert.equal(rows[1].loss, 3.1);
});

test("points: the sweep results CSV export is read by default; missing columns are refused", () => {
  const dir = mkdtempSync(join(tmpdir(), "synthmix-export-"));
  const rows = syntheticRows(0.002, 3, { Ns: [1e5], ratios: [0] });
  const path = join(dir, "runs.csv");
  writeFileSync(path, rowsToCsv(rows));
  const back = readPointRows(path, { need: { N: true, D: true } });
  assert.deepEqual(
    back.map((r) => [r.nonEmbeddingParams, r.tokens, r.loss]),
    rows.map((r) => [r.nonEmbeddingParams, r.tokens, r.loss]),
  );
  const bare = join(dir, "bare.csv");
  writeFileSync(bare, "x,loss\n1,3\n");
  assert.throws(
    () => readPointRows(bare, { need: { N: false, D: true } }),
    (e: unknown) =>
      e instanceof SynthmixError && e.code === "MISSING_COLUMN" && /no column "D"/.test(e.message),
  );
});

test("CLI: synthmix fit --points writes fits, speed-ups and best ratios", async () => {
  const dir = mkdtempSync(join(tmpdir(), "synthmix-fit-"));
  const rows = syntheticRows(0.002, 9, { Ns: [1e5, 1e6], ratios: [0, 0.5] });
  const csv = [
    "grp,n_params,toks,loss",
    ...rows.map((r) => `${r.ratio === 0 ? "natural" : "hq"},${r.nonEmbeddingParams},${r.tokens},${r.loss}`),
  ];
  writeFileSync(join(dir, "pts.csv"), `${csv.join("\n")}\n`);
  const parsed = readPointRows(join(dir, "pts.csv"), { group: "grp", n: "n_params", d: "toks" });
  assert.equal(parsed.length, rows.length);
  const out = join(dir, "res");
  const { stdout: printed } = await runCliCaptured(
    "fit",
    "--points",
    join(dir, "pts.csv"),
    "--form",
    "joint",
    "--bootstrap",
    "20",
    "--group-col",
    "grp",
    "--n-col",
    "n_params",
    "--d-col",
    "toks",
    "--out",
    out,
    "--no-quality",
  );
  assert.match(printed, /speed-up/);
  const fits = JSON.parse(readFileSync(join(out, "fits.json"), "utf8")) as FitsFile;
  assert.equal(fits.settings.form, "joint");
  assert.deepEqual(fits.fits.map((f) => f.key).sort(), ["hq:1:", "none:0:"]);
  const sp = JSON.parse(readFileSync(join(out, "speedups.json"), "utf8")) as SpeedupsFile;
  assert.equal(sp.entries.length, 2); // joint evaluated at each N
  const br = JSON.parse(readFileSync(join(out, "best-ratio.json"), "utf8")) as BestRatioFile;
  assert.equal(br.entries.length, 0); // two ratios only
});

test("per-domain mixing laws for domain 'all' locate an interior best ratio", () => {
  // mean of 3 + 0.5 e^{-3r} and 3 + 0.05 e^{2r}: derivative zero at e^{5r} = 15.
  const la = (r: number) => 3 + 0.5 * Math.exp(-3 * r);
  const lb = (r: number) => 3 + 0.05 * Math.exp(2 * r);
  const ratios = [0, 0.25, 0.5, 0.75, 1];
  const pts = (f: (r: number) => number) => ratios.map((ratio) => ({ ratio, loss: f(ratio), runs: 1 }));
  const truth = Math.log(15) / 5;
  assert.ok(
    Math.abs(
      meanMixingArgmin([
        { c: 3, k: 0.5, t: -3 },
        { c: 3, k: 0.05, t: 2 },
      ]).r - truth,
    ) < 1e-6,
  );
  const e = bestRatioEntry(
    {
      synthetic: "hq",
      generator: "g",
      N: 1,
      D: 1,
      points: pts((r) => (la(r) + lb(r)) / 2),
      byDomain: [
        { domain: "a", points: pts(la) },
        { domain: "b", points: pts(lb) },
      ],
    },
    { sigmaLog: 0.001, from: "fit-residuals" },
    50,
    1,
  );
  assert.ok(
    Math.abs(e.mixingLaw!.bestRatio.value - truth) < 1e-3,
    `${e.mixingLaw!.bestRatio.value} vs ${truth}`,
  );
  assert.equal(e.mixingLaw!.domains!.length, 2);
  assert.ok(e.mixingLaw!.bestRatio.lo! < truth && truth < e.mixingLaw!.bestRatio.hi!);
});

test("points: JSONL input and clear errors for missing columns", () => {
  const dir = mkdtempSync(join(tmpdir(), "synthmix-points-"));
  const path = join(dir, "p.jsonl");
  writeFileSync(
    path,
    '{"N": 1e6, "D": 1e8, "loss": 3.2, "group": "natural"}\n{"N": 1e6, "D": 2e8, "loss": 3.1, "group": "hq"}\n',
  );
  const rows = readPointRows(path);
  assert.deepEqual(
    rows.map((r) => [r.synthetic, r.ratio, r.tokens, r.loss]),
    [
      ["none", 0, 1e8, 3.2],
      ["hq", 1, 2e8, 3.1],
    ],
  );
  assert.throws(() => readPointRows(path, { loss: "final_loss" }), /p\.jsonl: no column "final_loss"/);
});

test("CLI: fit --points <sweep export> --predict G --json returns prediction intervals; warnings are printed", async () => {
  const dir = mkdtempSync(join(tmpdir(), "synthmix-predict-"));
  const rows = syntheticRows(0.003, 5, { Ns: [1e5, 3e5, 1e6], ratios: [0] });
  writeFileSync(join(dir, "runs.csv"), rowsToCsv(rows));
  writeFileSync(join(dir, "g.csv"), "N,D\n1e6,6.4e7\n3e5,4e6\n");
  const run = async (extra: string[]) => {
    const r = await runCliCaptured(
      "fit",
      "--points",
      join(dir, "runs.csv"),
      "--form",
      "joint",
      "--bootstrap",
      "60",
      "--out",
      join(dir, "res"),
      "--no-quality",
      ...extra,
    );
    return r.stdout;
  };
  const out = JSON.parse(await run(["--predict", join(dir, "g.csv"), "--json"])) as {
    fits: FitsFile;
    predictions: {
      key: string;
      N: number;
      D: number;
      loss: number;
      lo: number;
      hi: number;
      extrapolated: boolean;
    }[];
  };
  assert.equal(out.fits.fits.length, 1);
  assert.ok(
    Number.isFinite(out.fits.fits[0].params.E.value),
    "the export's nonEmbeddingParams/tokens are read",
  );
  assert.equal(out.fits.fits[0].replicates.length > 0, true, "bootstrap replicates are saved");
  assert.equal(out.predictions.length, 2);
  const [far, near] = out.predictions;
  assert.equal(far.extrapolated, true); // D = 6.4e7 beyond the fitted 3.2e7
  assert.equal(near.extrapolated, false);
  for (const p of out.predictions) assert.ok(p.lo < p.loss && p.loss < p.hi, JSON.stringify(p));
  // A 3-point data fit per N is underdetermined: the table says so and the warning is printed.
  const rows3 = syntheticRows(0.003, 5, { Ns: [1e5], Ds: [1e6, 4e6, 1.6e7], ratios: [0] });
  writeFileSync(join(dir, "runs.csv"), rowsToCsv(rows3));
  const text = await run(["--form", "data"]);
  assert.match(text, /warning UNDERDETERMINED none:0:/);
  assert.match(text, /\[—\]\?/);
});
