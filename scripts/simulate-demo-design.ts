/**
 * Does a demo grid identify what its report claims? Simulate it: draw the losses of every planned run
 * from a known power-law truth (calibrated on real natural runs of the demo's models) with run-to-run
 * noise, fit them with synthmix's own fitter (src/fit fitRows: the joint law per mixture, bootstrap
 * intervals, the best-ratio cells), and compare the estimates with the truth.
 *
 *   npx tsx scripts/simulate-demo-design.ts [--design full|old|quick|all] [--reps 3] [--bootstrap 200]
 *       [--calibration <workspace with natural runs in results/runs.json>]
 *
 * The truth, per test domain d (the sweep reports fiction, learned, news, nonfiction and "all" = their
 * mean), for style s at share r (r = 0: natural):
 *   L_d(N, D, r) = E0 + delta_d + A / N^alpha + B / D^beta + k_{s,d} (exp(t_d r) - 1)
 * a Chinchilla law for the natural part and one Ye et al. mixing law per domain for the synthetic
 * share (the two models synthmix fits): synthetic text helps two domains (t = -4) and hurts two
 * (t = +3), so the mean over domains has its minimum inside (0, 1): r* = 0.36 for hq, 0.30 for qa/txbk.
 * E of a mixture is E0 + mean_d delta_d + mean_d k (exp(t r) - 1). The synthetic effects are
 * assumptions (the question is identifiability, not their size); the natural
law and the noise come from the calibration runs. Prints a markdown report (docs/study.md quotes it).
 */
import { parseArgs } from "node:util";
import { fitScalingLaw } from "../src/fit/fit.js";
import { type Form, GRID, getForm } from "../src/fit/forms.js";
import { isNatural, readRunRows } from "../src/fit/groups.js";
import type { FitsFile } from "../src/fit/results.js";
import { fitRows } from "../src/fit/workspace.js";
import { StudyConfigSchema } from "../src/study/config.js";
import { demoConfig } from "../src/study/demo.js";
import { type LoadedStudy, studySweepSpec } from "../src/study/run.js";
import { planSweep } from "../src/sweep/plan.js";
import type { RunResultRow } from "../src/sweep/results.js";
import { Rng } from "../src/util/rng.js";

const DOMAINS = ["fiction", "learned", "news", "nonfiction"] as const;
/** Mixing-law rate per domain: synthetic text helps learned/nonfiction, hurts fiction/news. */
const RATE: Record<string, number> = { fiction: 3, learned: -4, news: 3, nonfiction: -4 };

interface Truth {
  E0: number;
  A: number;
  alpha: number;
  B: number;
  beta: number;
  /** Log-normal run-to-run noise of a loss (sd of log loss between seeds). */
  sigma: number;
  /** Offset of each test domain from the mean (calibrated; mean 0). */
  delta: Record<string, number>;
  /** Per style: the share r* minimising the mean over domains, and the depth of that minimum (nats). */
  styles: Record<string, { rStar: number; depth: number }>;
}

/**
 * Mixing-law scales k_d of a style: helping domains share `help`, hurting ones `hurt`; the mean's
 * derivative 4 help e^{-4r} = 3 hurt e^{3r} vanishes at r*, which fixes hurt / help; depth fixes help.
 */
function scales(st: { rStar: number; depth: number }): Record<string, number> {
  const ratio = (4 / 3) * Math.exp(-7 * st.rStar); // hurt / help
  const m = (r: number) => 2 * (Math.exp(-4 * r) - 1) + 2 * ratio * (Math.exp(3 * r) - 1);
  const help = (-4 * st.depth) / m(st.rStar);
  const k: Record<string, number> = {};
  for (const d of DOMAINS) k[d] = RATE[d] < 0 ? help : help * ratio;
  return k;
}

function synthEffect(t: Truth, style: string, r: number, d: string): number {
  const st = t.styles[style];
  if (!st || r === 0) return 0;
  return scales(st)[d] * (Math.exp(RATE[d] * r) - 1);
}

function truthLoss(t: Truth, N: number, D: number, style: string, r: number, d: string): number {
  return t.E0 + (t.delta[d] ?? 0) + t.A / N ** t.alpha + t.B / D ** t.beta + synthEffect(t, style, r, d);
}

/** E of a mixture on domain "all" (the mean over domains). */
function truthE(t: Truth, style: string, r: number): number {
  let s = 0;
  for (const d of DOMAINS) s += (t.delta[d] ?? 0) + synthEffect(t, style, r, d);
  return t.E0 + s / DOMAINS.length;
}

/** r* of the truth: the minimiser over [0, 1] of the mean synthetic effect (same at every N, D). */
function truthBestRatio(t: Truth, style: string): number {
  let best = 0;
  for (let i = 1; i <= 1000; i++) if (truthE(t, style, i / 1000) < truthE(t, style, best / 1000)) best = i;
  return best / 1000;
}

/**
 * Natural law fitted (joint form) on the calibration sweep documented in docs/study.md; used when no
 * --calibration workspace is given.
 */
const DEFAULT_TRUTH: Truth = {
  E0: 4.6,
  A: 30,
  alpha: 0.3,
  B: 40,
  beta: 0.2,
  sigma: 0.004,
  delta: { fiction: 0, learned: 0, news: 0, nonfiction: 0 },
  styles: {
    hq: { rStar: 0.36, depth: 0.06 },
    qa: { rStar: 0.3, depth: 0.04 },
    txbk: { rStar: 0.3, depth: 0.04 },
  },
};

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
  const input =
    name === "old" ? oldDemoConfig() : name === "fast" ? fastConfig() : demoConfig(name === "quick");
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

/**
 * A cheaper variant for the 30-minute budget: without the 3-layer d128 model (half the training time)
 * and with the large ratio cell on the 2-layer d96 model.
 */
function fastConfig() {
  const c = demoConfig(false);
  const grid = c.sweep.grid!;
  const keep = (ms: typeof grid.models) => ms.filter((m) => typeof m === "string" || m.name !== "l3d128");
  const l2 = grid.models.find((m) => typeof m !== "string" && m.name === "l2d96")!;
  return {
    ...c,
    sweep: { ...c.sweep, grid: { ...grid, models: keep(grid.models) } },
    extraGrids: (c.extraGrids ?? []).map((g) => {
      const models = keep(g.models);
      return { ...g, models: models.length ? models : [l2] };
    }),
  };
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

/** One row per run and domain plus "all" (their mean), as the sweep writes them. */
function simulateRows(runs: DesignRun[], t: Truth, seed: number): RunResultRow[] {
  const rng = new Rng(seed);
  const out: RunResultRow[] = [];
  for (const r of runs) {
    const base = {
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
      flops: 0,
      tokensPerSec: 0,
      wallSec: 0,
    };
    // Seed noise moves a run's losses on every domain together; a little is domain-specific.
    const shared = t.sigma * rng.normal();
    let sum = 0;
    for (const d of DOMAINS) {
      const loss =
        truthLoss(t, r.N, r.D, r.synthetic, r.ratio, d) * Math.exp(shared + 0.5 * t.sigma * rng.normal());
      sum += loss;
      out.push({ ...base, domain: d, loss });
    }
    out.push({ ...base, domain: "all", loss: sum / DOMAINS.length });
  }
  return out;
}

/** Calibrate the natural law and the seed noise on real natural runs. */
/**
 * The joint law with E held at a given value (4 free parameters): the calibration runs alone do not
 * identify E (their free fit puts it at 0), so the truth takes E0 as an assumption and the rest from
 * the runs. Built on the joint form's predictor; the grid is the joint grid without the e axis.
 */
function fixedEForm(E: number): Form {
  const joint = getForm("joint")!;
  const e = Math.log(E);
  return {
    name: `joint-E=${E}`,
    params: ["a", "alpha", "b", "beta"],
    uses: { N: true, D: true },
    predictLog(t, data, i, grad) {
      const g = grad ? new Float64Array(5) : null;
      const v = joint.predictLog(Float64Array.of(t[0], t[1], t[2], t[3], e), data, i, g);
      if (grad && g) for (let j = 0; j < 4; j++) grad[j] = g[j];
      return v;
    },
    initGrid: () =>
      GRID.scale.flatMap((a) =>
        GRID.exponent.flatMap((al) => GRID.scale.flatMap((b) => GRID.exponent.map((be) => [a, al, b, be]))),
      ),
    natural: (t) => ({ A: Math.exp(t[0]), alpha: t[1], B: Math.exp(t[2]), beta: t[3], E }),
  };
}

function calibrate(ws: string, base: Truth, fixedE: number | null): Truth {
  const rows = readRunRows(ws).filter((r) => r.domain === "all" && isNatural(r));
  const pts = rows.map((r) => ({ runId: r.runId, N: r.nonEmbeddingParams, D: r.tokens, loss: r.loss }));
  const free = fitScalingLaw(pts, "joint", { quality: false });
  console.log(
    `calibration, free joint fit: E=${free.natural.E.toFixed(3)} A=${free.natural.A.toFixed(2)} alpha=${free.natural.alpha.toFixed(3)} B=${free.natural.B.toFixed(2)} beta=${free.natural.beta.toFixed(3)}`,
  );
  const fit = fixedE === null ? free : fitScalingLaw(pts, fixedEForm(fixedE), {});
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
    `calibration: ${rows.length} natural runs, ${fixedE === null ? "free" : `E fixed at ${fixedE}`}: E=${p.E.toFixed(3)} A=${p.A.toFixed(2)} alpha=${p.alpha.toFixed(3)} B=${p.B.toFixed(2)} beta=${p.beta.toFixed(3)}, RMS log-residual ${fit.quality.rmseLog.toFixed(4)}; seed noise sigma=${sigma.toFixed(4)} from ${diffs.length} pairs\n`,
  );
  for (const r of [...rows].sort(
    (a, b) => a.nonEmbeddingParams - b.nonEmbeddingParams || a.tokens - b.tokens,
  ))
    console.log(`  N=${r.nonEmbeddingParams} D=${r.tokens} seed ${r.seed}: ${r.loss.toFixed(4)}`);
  console.log("");
  // Domain offsets: mean of (domain loss - "all" loss) over the natural runs.
  const all = readRunRows(ws).filter((r) => isNatural(r));
  const allLoss = new Map(all.filter((r) => r.domain === "all").map((r) => [r.runId, r.loss]));
  const delta: Record<string, number> = {};
  for (const d of DOMAINS) {
    const ds = all
      .filter((r) => r.domain === d && allLoss.has(r.runId))
      .map((r) => r.loss - allLoss.get(r.runId)!);
    delta[d] = ds.length ? ds.reduce((a, x) => a + x, 0) / ds.length : 0;
  }
  return { ...base, E0: p.E, A: p.A, alpha: p.alpha, B: p.B, beta: p.beta, sigma, delta };
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
    reason: string;
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
      const truth = truthE(t, style, f.ratio);
      const minLoss = Math.min(
        ...rows.filter((r) => r.domain === "all" && mixKey(r) === f.key).map((r) => r.loss),
      );
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
        truth: truthBestRatio(t, b.synthetic),
        // The fitter's own verdict: >= 5 ratios, interior convex vertex, no lack of fit, interval in (0, 1).
        ok: b.resolved && q.lo !== null && q.hi !== null && q.lo > 0 && q.hi < 1,
        reason: b.reason ?? "",
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
  let few = 0;
  let fewResolved = 0;
  for (const [i, r] of outs[0].ratio.entries()) {
    const okReps = outs.filter((o) => o.ratio[i]?.ok).length;
    // Cells of the main grid have 3 ratios (0, .33, .67): counted, not listed.
    if (r.ratios < 5) {
      few++;
      fewResolved += okReps;
      continue;
    }
    console.log(
      `| ${r.cell} | ${r.ratios} | ${r.truth.toFixed(3)} | ${f3(r.value)} | [${f3(r.lo)}, ${f3(r.hi)}] | ${okReps}/${reps}${r.reason ? ` (rep 1: ${r.reason})` : ""} |`,
    );
  }
  console.log(
    `\n${few} more cell(s) with < 5 ratios (the main grid's 0/.33/.67): resolved in ${fewResolved} of ${few * reps} (cell, rep) pairs.\n`,
  );
}

async function main() {
  const { values } = parseArgs({
    options: {
      design: { type: "string", default: "all" },
      reps: { type: "string", default: "3" },
      bootstrap: { type: "string", default: "200" },
      calibration: { type: "string" },
      /** Comma-separated E0 values for the truth (with --calibration); the other parameters are refitted. */
      "truth-e": { type: "string" },
      /** Override the run-to-run noise (sd of log loss), e.g. to ask what a quieter trainer would identify. */
      sigma: { type: "string" },
    },
  });
  const es = values["truth-e"] ? values["truth-e"].split(",").map(Number) : [null];
  for (const e0 of es) {
    const base = values.calibration ? calibrate(values.calibration, DEFAULT_TRUTH, e0) : DEFAULT_TRUTH;
    const truth = values.sigma ? { ...base, sigma: Number(values.sigma) } : base;
    simulate(truth, values.design!, Number(values.reps), Number(values.bootstrap));
  }
}

function simulate(truth: Truth, design: string, reps: number, bootstrap: number) {
  console.log(
    `truth: E0=${truth.E0.toFixed(3)} A=${truth.A.toFixed(2)} alpha=${truth.alpha.toFixed(3)} B=${truth.B.toFixed(2)} beta=${truth.beta.toFixed(3)} sigma=${truth.sigma.toFixed(4)}; domain offsets ${JSON.stringify(truth.delta)}; styles ${JSON.stringify(truth.styles)} (r* of the truth: ${Object.keys(
      truth.styles,
    )
      .map((st) => `${st} ${truthBestRatio(truth, st)}`)
      .join(", ")})\n`,
  );
  const designs = design === "all" ? ["old", "full", "fast"] : design.split(",");
  for (const d of designs) report(d, designRuns(d), truth, reps, bootstrap);
}

await main();
