/**
 * Does a demo grid identify what its report claims? Simulate it: draw the losses of every planned run
 * from a known power-law truth (calibrated on real natural runs of the demo's models) with run-to-run
 * noise, fit them with synthmix's own fitter (src/fit fitRows: the joint law per mixture, bootstrap
 * intervals, the best-ratio cells), and compare the estimates with the truth.
 *
 *   npx tsx scripts/simulate-demo-design.ts [--design full|old|quick|all] [--reps 3] [--bootstrap 200]
 *       [--calibration <workspace with natural runs in results/runs.json>]
 *
 * The truth per mixture of style s at share r (r = 0: natural):
 *   L(N, D, r) = E0 + e_s r^2 + A / N^alpha + B (1 - b_s r) / D^beta
 * The synthetic share raises the floor (less natural diversity: e_s) and makes data more efficient
 * (b_s), so the loss-minimising share r* = b_s B D^-beta / (2 e_s) lies inside (0, 1) and falls with D.
 * e_s is set from an assumed r* at D = 800k (hq 0.36, qa/txbk 0.30) and b_s (hq 0.3, qa/txbk 0.2).
 * The synthetic effects are assumptions (the question is identifiability, not their size); the natural
 * law and the noise come from the calibration runs. Prints a markdown report (docs/study.md quotes it).
 */
import { parseArgs } from "node:util";
import { fitScalingLaw } from "../src/fit/fit.js";
import { isNatural, readRunRows } from "../src/fit/groups.js";
import type { FitsFile } from "../src/fit/results.js";
import { fitRows } from "../src/fit/workspace.js";
import { StudyConfigSchema } from "../src/study/config.js";
import { demoConfig } from "../src/study/demo.js";
import { type LoadedStudy, studySweepSpec } from "../src/study/run.js";
import { planSweep } from "../src/sweep/plan.js";
import type { RunResultRow } from "../src/sweep/results.js";
import { Rng } from "../src/util/rng.js";

interface Truth {
  E0: number;
  A: number;
  alpha: number;
  B: number;
  beta: number;
  /** Log-normal run-to-run noise of a loss (sd of log loss between seeds). */
  sigma: number;
  /** Per style: data-efficiency gain b_s and the assumed best share at D = REF_D (sets e_s). */
  styles: Record<string, { b: number; rStar: number }>;
}

const REF_D = 800_000;

/** Floor raise e_s of a style: r* = b B REF_D^-beta / (2 e) solved for e. */
function floorRaise(t: Truth, style: string): number {
  const s = t.styles[style];
  return s ? (s.b * t.B * REF_D ** -t.beta) / (2 * s.rStar) : 0;
}

/**
 * Natural law fitted (joint form) on the calibration sweep documented in docs/study.md: 21 natural runs
 * of the five demo models at 100k/400k/1.6M tokens, vocab 2048, context 64; sigma from 6 seed pairs.
 * Overridden by --calibration.
 */
const DEFAULT_TRUTH: Truth = {
  E0: 4.6,
  A: 30,
  alpha: 0.3,
  B: 40,
  beta: 0.2,
  sigma: 0.004,
  styles: { hq: { b: 0.3, rStar: 0.36 }, qa: { b: 0.2, rStar: 0.3 }, txbk: { b: 0.2, rStar: 0.3 } },
};

function truthLoss(t: Truth, N: number, D: number, style: string, r: number): number {
  const b = t.styles[style]?.b ?? 0;
  const rr = style === "none" ? 0 : r;
  return t.E0 + floorRaise(t, style) * rr * rr + t.A / N ** t.alpha + (t.B * (1 - b * rr)) / D ** t.beta;
}

/** r* of the truth at D (clamped to [0, 1]). */
function truthBestRatio(t: Truth, D: number, style: string): number {
  const s = t.styles[style];
  return Math.min(1, Math.max(0, (s.b * t.B * D ** -t.beta) / (2 * floorRaise(t, style))));
}

interface DesignRun {
  id: string;
  modelName: string;
  N: number;
  D: number;
  synthetic: string;
  ratio: number;
  generator: string;
  seed: number;
  label: string;
}

function designRuns(name: string): DesignRun[] {
  const input = name === "old" ? oldDemoConfig() : demoConfig(name === "quick");
  const config = StudyConfigSchema.parse(input);
  const study: LoadedStudy = { config, workspace: "/nonexistent", baseDir: "/nonexistent" };
  const gens = [
    ...(config.generatorModel ? [config.generatorModel.name] : []),
    ...config.generatorModels.map((g) => g.name),
  ];
  const spec = studySweepSpec(study, gens);
  return planSweep(spec, "/nonexistent", config.tokenizer.vocabSize).map((r) => ({
    id: r.id,
    modelName: r.modelName,
    N: r.nonEmbeddingParams,
    D: r.tokens,
    synthetic: r.mixture.synthetic,
    ratio: r.mixture.ratio,
    generator: r.mixture.generator,
    seed: r.seed,
    label: r.mixture.label,
  }));
}

/** The grid of the demo before issue #15 (src/study/demo.ts at 1d2edc4), for comparison. */
function oldDemoConfig() {
  const c = demoConfig(false);
  return {
    ...c,
    generatorModels: [],
    generatorModel: { name: "synthmix-demo", model: "s2" },
    extraGrids: [],
    sweep: {
      ...c.sweep,
      allowRepeat: true,
      grid: {
        models: [
          { name: "d1", nLayer: 1, dModel: 64, nHead: 2 },
          { name: "d2", nLayer: 2, dModel: 96, nHead: 2 },
          { name: "d3", nLayer: 3, dModel: 128, nHead: 2 },
        ],
        tokens: [50_000, 100_000, 200_000, 400_000],
        mixtures: ["natural" as const, { hq: [0.33, 0.67, 1] }, { qa: 0.33 }, { txbk: 0.33 }],
        seeds: [1],
      },
    },
  };
}

function simulateRows(runs: DesignRun[], t: Truth, seed: number): RunResultRow[] {
  const rng = new Rng(seed);
  return runs.map((r) => ({
    runId: r.id,
    modelName: r.modelName,
    nonEmbeddingParams: r.N,
    totalParams: r.N,
    tokens: r.D,
    mixture: r.label,
    synthetic: r.synthetic,
    ratio: r.ratio,
    generator: r.generator,
    seed: r.seed,
    domain: "all",
    loss: truthLoss(t, r.N, r.D, r.synthetic, r.ratio) * Math.exp(t.sigma * rng.normal()),
    flops: 0,
    tokensPerSec: 0,
    wallSec: 0,
  }));
}

/** Calibrate the natural law and the seed noise on real natural runs. */
function calibrate(ws: string, base: Truth): Truth {
  const rows = readRunRows(ws).filter((r) => r.domain === "all" && isNatural(r));
  const fit = fitScalingLaw(
    rows.map((r) => ({ runId: r.runId, N: r.nonEmbeddingParams, D: r.tokens, loss: r.loss })),
    "joint",
  );
  const p = fit.natural;
  const pairs = new Map<string, number[]>();
  for (const r of rows) {
    const k = `${r.nonEmbeddingParams}:${r.tokens}`;
    pairs.set(k, [...(pairs.get(k) ?? []), Math.log(r.loss)]);
  }
  const diffs = [...pairs.values()].filter((v) => v.length >= 2).map((v) => v[0] - v[1]);
  const sigma = diffs.length
    ? Math.sqrt(diffs.reduce((a, d) => a + d * d, 0) / diffs.length / 2)
    : base.sigma;
  console.log(
    `calibration: ${rows.length} natural runs, joint fit E=${p.E.toFixed(3)} A=${p.A.toFixed(2)} alpha=${p.alpha.toFixed(3)} B=${p.B.toFixed(2)} beta=${p.beta.toFixed(3)}, RMS log-residual ${fit.quality.rmseLog.toFixed(4)}; seed noise sigma=${sigma.toFixed(4)} from ${diffs.length} pairs\n`,
  );
  for (const r of [...rows].sort(
    (a, b) => a.nonEmbeddingParams - b.nonEmbeddingParams || a.tokens - b.tokens,
  ))
    console.log(`  N=${r.nonEmbeddingParams} D=${r.tokens} seed ${r.seed}: ${r.loss.toFixed(4)}`);
  console.log("");
  return { ...base, E0: p.E, A: p.A, alpha: p.alpha, B: p.B, beta: p.beta, sigma };
}

interface RepOutcome {
  e: { key: string; value: number; lo: number | null; hi: number | null; truth: number; ok: boolean }[];
  ratio: {
    cell: string;
    ratios: number;
    value: number;
    lo: number | null;
    hi: number | null;
    truth: number;
    ok: boolean;
  }[];
}

/**
 * E is identified when the fitter says so (src/fit/identify.ts: not at a bound, interval not spanning
 * most of [0, lowest loss), no E warning) and its interval is finite, above 0 and below every loss.
 */
function eIdentified(f: FitsFile["fits"][number], minLoss: number): boolean {
  const E = f.params.E;
  const flagged = f.warnings.some((w) => /^E_|UNDERDETERMINED|INVALID_LAW/.test(w.code));
  return E.identified && !flagged && E.lo !== null && E.hi !== null && E.lo > 0 && E.hi < minLoss;
}

function runRep(runs: DesignRun[], t: Truth, seed: number, bootstrap: number): RepOutcome {
  const rows = simulateRows(runs, t, seed);
  const res = fitRows(rows, { form: "joint", bootstrap, seed, quality: false });
  // Mixtures that exist only in a ratio cell (one N, one D) have no scaling law to identify.
  const e = res.fits.fits
    .filter((f) => f.effectivePoints >= 6)
    .map((f) => {
      const E = f.params.E;
      const style = f.synthetic;
      const truth = t.E0 + (style === "none" ? 0 : floorRaise(t, style) * f.ratio * f.ratio);
      const minLoss = Math.min(...rows.filter((r) => mixKey(r) === f.key).map((r) => r.loss));
      return { key: f.key, value: E.value, lo: E.lo, hi: E.hi, truth, ok: eIdentified(f, minLoss) };
    });
  const ratio = res.bestRatio.entries
    .filter((b) => b.quadratic)
    .map((b) => {
      const q = b.quadratic!.bestRatio;
      return {
        cell: `${b.synthetic}-${b.generator} N=${b.N} D=${b.D}`,
        ratios: b.points.length,
        value: q.value,
        lo: q.lo,
        hi: q.hi,
        truth: truthBestRatio(t, b.D, b.synthetic),
        // The fitter's own verdict: >= 5 ratios, interior convex vertex, no lack of fit, interval in (0, 1).
        ok: b.resolved && q.lo !== null && q.hi !== null && q.lo > 0 && q.hi < 1,
      };
    });
  return { e, ratio };
}

function mixKey(r: RunResultRow): string {
  return isNatural(r) ? "none:0:" : `${r.synthetic}:${r.ratio}:${r.generator}`;
}

const f3 = (x: number | null) => (x === null ? "—" : x.toFixed(3));

function report(design: string, runs: DesignRun[], t: Truth, reps: number, bootstrap: number): void {
  const outs = Array.from({ length: reps }, (_, i) => runRep(runs, t, 1000 + i, bootstrap));
  const tokens = runs.reduce((a, r) => a + r.D, 0);
  console.log(`### design "${design}": ${runs.length} runs, ${(tokens / 1e6).toFixed(1)}M training tokens\n`);
  console.log(
    `E per mixture (truth vs estimate [95% bootstrap interval]; rep 1 of ${reps}; identified = the fitter's verdict, no E warning, interval inside (0, lowest loss)):\n`,
  );
  console.log("| mixture | true E | estimate | interval | identified in reps |");
  console.log("|---|---|---|---|---|");
  for (const [i, e] of outs[0].e.entries()) {
    const okReps = outs.filter((o) => o.e[i]?.ok).length;
    console.log(
      `| ${e.key} | ${e.truth.toFixed(3)} | ${f3(e.value)} | [${f3(e.lo)}, ${f3(e.hi)}] | ${okReps}/${reps} |`,
    );
  }
  console.log(
    "\nBest ratio (quadratic over the cell's ratios; inside = the fitter's `resolved`, which needs >= 5 ratios):\n",
  );
  console.log("| cell | ratios | true r* | estimate | interval | inside (0,1) in reps |");
  console.log("|---|---|---|---|---|---|");
  for (const [i, r] of outs[0].ratio.entries()) {
    const okReps = outs.filter((o) => o.ratio[i]?.ok).length;
    console.log(
      `| ${r.cell} | ${r.ratios} | ${r.truth.toFixed(3)} | ${f3(r.value)} | [${f3(r.lo)}, ${f3(r.hi)}] | ${okReps}/${reps} |`,
    );
  }
  console.log("");
}

async function main() {
  const { values } = parseArgs({
    options: {
      design: { type: "string", default: "all" },
      reps: { type: "string", default: "3" },
      bootstrap: { type: "string", default: "200" },
      calibration: { type: "string" },
    },
  });
  const truth = values.calibration ? calibrate(values.calibration, DEFAULT_TRUTH) : DEFAULT_TRUTH;
  console.log(
    `truth: E0=${truth.E0.toFixed(3)} A=${truth.A.toFixed(2)} alpha=${truth.alpha.toFixed(3)} B=${truth.B.toFixed(2)} beta=${truth.beta.toFixed(3)} sigma=${truth.sigma.toFixed(4)}; styles ${JSON.stringify(truth.styles)}\n`,
  );
  const designs = values.design === "all" ? ["old", "full"] : [values.design];
  for (const d of designs) report(d, designRuns(d), truth, Number(values.reps), Number(values.bootstrap));
}

await main();
