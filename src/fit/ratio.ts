import type { RunResultRow } from "../sweep/results.js";
import { Rng } from "../util/rng.js";
import type { BestRatioEntry, BestRatioTrend, Estimate } from "./results.js";
import { estimate, leastSquares } from "./stats.js";

/** A quadratic best ratio needs at least this many distinct ratios (3 fit it exactly, 4 leave 1 dof). */
export const MIN_RATIOS_QUADRATIC = 5;

/** 95% quantile of chi-square with df degrees of freedom (table to 10, then Wilson-Hilferty). */
export function chi2Quantile95(df: number): number {
  const table = [3.841, 5.991, 7.815, 9.488, 11.07, 12.592, 14.067, 15.507, 16.919, 18.307];
  if (df < 1) return Number.POSITIVE_INFINITY;
  if (df <= 10) return table[Math.floor(df) - 1];
  const z = 1.644854;
  return df * (1 - 2 / (9 * df) + z * Math.sqrt(2 / (9 * df))) ** 3;
}

/**
 * Seed-to-seed noise: pooled standard deviation of log loss over the runs that share (mixture, N, D)
 * and differ only in seed; null when the grid has no seed replicates.
 */
export function seedNoise(rows: RunResultRow[]): number | null {
  return seedNoiseWithDf(rows)?.sigmaLog ?? null;
}

/** seedNoise with its degrees of freedom (sum over cells of replicates - 1). */
export function seedNoiseWithDf(rows: RunResultRow[]): { sigmaLog: number; df: number } | null {
  const groups = new Map<string, number[]>();
  for (const r of rows) {
    const k = `${r.synthetic}\u0000${r.ratio}\u0000${r.generator}\u0000${r.nonEmbeddingParams}\u0000${r.tokens}`;
    groups.set(k, [...(groups.get(k) ?? []), Math.log(r.loss)]);
  }
  let ss = 0;
  let df = 0;
  for (const ls of groups.values()) {
    if (ls.length < 2) continue;
    const m = ls.reduce((a, b) => a + b, 0) / ls.length;
    for (const l of ls) ss += (l - m) ** 2;
    df += ls.length - 1;
  }
  return df > 0 ? { sigmaLog: Math.sqrt(ss / df), df } : null;
}

export interface RatioPoint {
  ratio: number;
  loss: number;
  runs: number;
}

/** loss = c0 + c1 r + c2 r^2 by least squares; null with fewer than 3 distinct ratios. */
export function fitQuadratic(points: RatioPoint[]): [number, number, number] | null {
  if (new Set(points.map((p) => p.ratio)).size < 3) return null;
  const c = leastSquares(
    points.map((p) => [1, p.ratio, p.ratio * p.ratio]),
    points.map((p) => p.loss),
  );
  return c ? [c[0], c[1], c[2]] : null;
}

/** Minimiser of a quadratic over [0, 1]: the vertex when convex and inside, else the better endpoint. */
export function quadraticArgmin(c: [number, number, number]): number {
  const f = (r: number) => c[0] + c[1] * r + c[2] * r * r;
  if (c[2] > 0) {
    const v = -c[1] / (2 * c[2]);
    if (v > 0 && v < 1) return v;
  }
  return f(0) <= f(1) ? 0 : 1;
}

/**
 * Mixing law loss = c + k exp(t r) (Ye et al. 2024, one domain): for fixed t it is linear in (c, k), so
 * t is profiled on a grid over [-20, 20] and refined by golden-section search.
 */
export function fitMixingLaw(
  points: RatioPoint[],
  /** Search t only within +/-2 of this (bootstrap refits start from the full fit's t). */
  near?: number,
): { c: number; k: number; t: number } | null {
  if (new Set(points.map((p) => p.ratio)).size < 3) return null;
  const y = points.map((p) => p.loss);
  const solve = (t: number) => {
    if (Math.abs(t) < 1e-6) return null;
    const ck = leastSquares(
      points.map((p) => [1, Math.exp(t * p.ratio)]),
      y,
    );
    if (!ck) return null;
    let sse = 0;
    points.forEach((p, i) => {
      sse += (ck[0] + ck[1] * Math.exp(t * p.ratio) - y[i]) ** 2;
    });
    return { c: ck[0], k: ck[1], t, sse };
  };
  let best: ReturnType<typeof solve> = null;
  const [tLo, tHi] = near === undefined ? [-20, 20] : [near - 2, near + 2];
  for (let t = tLo; t <= tHi + 1e-9; t += 0.25) {
    const s = solve(t);
    if (s && (!best || s.sse < best.sse)) best = s;
  }
  if (!best) return null;
  let lo = best.t - 0.25;
  let hi = best.t + 0.25;
  const g = (Math.sqrt(5) - 1) / 2;
  for (let i = 0; i < 40; i++) {
    const a = hi - g * (hi - lo);
    const b = lo + g * (hi - lo);
    const sa = solve(a)?.sse ?? Number.POSITIVE_INFINITY;
    const sb = solve(b)?.sse ?? Number.POSITIVE_INFINITY;
    if (sa < sb) hi = b;
    else lo = a;
  }
  const refined = solve((lo + hi) / 2);
  const out = refined && refined.sse <= best.sse ? refined : best;
  return { c: out.c, k: out.k, t: out.t };
}

/** The mixing law is monotone in r, so its minimiser over [0, 1] is an endpoint. */
export function mixingLawArgmin(m: { c: number; k: number; t: number }): number {
  return m.c + m.k <= m.c + m.k * Math.exp(m.t) ? 0 : 1;
}

export interface RatioCell {
  synthetic: string;
  generator: string;
  N: number;
  D: number;
  points: RatioPoint[];
  /** Mean loss per ratio on each test domain (for the per-domain mixing laws of domain "all"). */
  byDomain?: { domain: string; points: RatioPoint[] }[];
}

type MixLaw = { c: number; k: number; t: number };

/** Minimiser over [0, 1] of the mean of per-domain mixing laws: fine grid, then golden-section refine. */
export function meanMixingArgmin(laws: MixLaw[]): { r: number; loss: number } {
  const f = (r: number) => laws.reduce((s, m) => s + m.c + m.k * Math.exp(m.t * r), 0) / laws.length;
  let best = 0;
  for (let i = 1; i <= 200; i++) if (f(i / 200) < f(best)) best = i / 200;
  let lo = Math.max(0, best - 1 / 200);
  let hi = Math.min(1, best + 1 / 200);
  const g = (Math.sqrt(5) - 1) / 2;
  for (let i = 0; i < 40; i++) {
    const a = hi - g * (hi - lo);
    const b = lo + g * (hi - lo);
    if (f(a) < f(b)) hi = b;
    else lo = a;
  }
  const mid = (lo + hi) / 2;
  const r = f(mid) < f(best) ? mid : best;
  return { r, loss: f(r) };
}

function domainLaws(byDomain: RatioCell["byDomain"], near?: MixLaw[]): MixLaw[] | null {
  if (!byDomain || byDomain.length < 2) return null;
  const laws: MixLaw[] = [];
  for (let i = 0; i < byDomain.length; i++) {
    const m = fitMixingLaw(byDomain[i].points, near?.[i].t);
    if (!m) return null;
    laws.push(m);
  }
  return laws;
}

/** Two estimates agree when each interval contains the other's value (null when either lacks one). */
function agree(a: Estimate | undefined, b: Estimate | undefined): boolean | null {
  if (!a || !b || a.lo === null || a.hi === null || b.lo === null || b.hi === null) return null;
  return a.lo <= b.value && b.value <= a.hi && b.lo <= a.value && a.value <= b.hi;
}

/**
 * Lack of fit of the quadratic: its residual sum of squares in log loss against the noise level (sigma^2
 * / runs per point) must pass chi-square(k - 3) at 95%; with 3 ratios there is nothing to test.
 */
function lackOfFit(pts: RatioPoint[], c: [number, number, number], sigmaLog: number) {
  const k = pts.length;
  if (k <= 3 || !(sigmaLog > 0)) return null;
  let ss = 0;
  let chi = 0;
  for (const p of pts) {
    const r = Math.log(p.loss) - Math.log(c[0] + c[1] * p.ratio + c[2] * p.ratio * p.ratio);
    ss += r * r;
    chi += (r * r * p.runs) / (sigmaLog * sigmaLog);
  }
  return { rms: Math.sqrt(ss / k), noise: sigmaLog, ok: chi <= chi2Quantile95(k - 3) };
}

/** Why a quadratic best ratio is not resolved (null when it is). */
function unresolvedReason(
  pts: RatioPoint[],
  quadratic: BestRatioEntry["quadratic"],
  agreement: boolean | null,
  perDomain: boolean,
): string | null {
  const k = new Set(pts.map((p) => p.ratio)).size;
  if (k < MIN_RATIOS_QUADRATIC)
    return `${k} distinct ratios; a quadratic optimum needs >= ${MIN_RATIOS_QUADRATIC} (with 3-4 its vertex is set by the design, not the losses)`;
  if (!quadratic) return "the quadratic could not be fitted";
  const [, c1, c2] = quadratic.coef;
  const v = c2 > 0 ? -c1 / (2 * c2) : Number.NaN;
  if (!(v > 0 && v < 1)) return "the quadratic has no interior minimum on [0, 1]";
  if (quadratic.lackOfFit && !quadratic.lackOfFit.ok)
    return `lack of fit: the quadratic misses the losses by ${quadratic.lackOfFit.rms.toPrecision(2)} (log) against noise ${quadratic.lackOfFit.noise.toPrecision(2)}`;
  const e = quadratic.bestRatio;
  if (e.lo === null || e.hi === null) return "no bootstrap interval";
  if (e.lo <= 0 || e.hi >= 1) return "the interval reaches the end of [0, 1]";
  // A one-domain mixing law is monotone (its optimum is 0 or 1 by construction), so only the per-domain
  // mean, which can have an interior optimum, can contradict the quadratic; the lack-of-fit test above
  // is what catches a monotone truth.
  if (agreement === false && perDomain) return "the quadratic and the per-domain mixing laws disagree";
  return null;
}

/**
 * Best ratio for one (synthetic, generator, N, D) cell with a parametric bootstrap: each mean loss is
 * perturbed by log-normal noise of scale sigma / sqrt(runs), where sigma is the seed-to-seed noise when
 * the grid has seed replicates, else the scaling-law fits' RMS log-residual. Resampling runs is not
 * possible here: a cell usually has one run per ratio. The quadratic and the mixing law are both
 * reported with their agreement; the optimum is `resolved` only when the quadratic passes every check.
 */
export function bestRatioEntry(
  cell: RatioCell,
  noise: BestRatioEntry["noise"],
  count: number,
  seed: number,
): BestRatioEntry {
  const sigma = noise.sigmaLog;
  const pts = [...cell.points].sort((a, b) => a.ratio - b.ratio);
  const observedBest = pts.reduce((b, p) => (p.loss < b.loss ? p : b), pts[0]).ratio;
  const quad = fitQuadratic(pts);
  const mix = fitMixingLaw(pts);
  const byDomain = cell.byDomain?.map((d) => ({
    ...d,
    points: [...d.points].sort((a, b) => a.ratio - b.ratio),
  }));
  const laws = mix ? domainLaws(byDomain) : null;
  const fits: RatioFits = { pts, quad, mix, byDomain, laws };
  const reps =
    sigma > 0 && count > 0 && (quad || mix)
      ? ratioBootstrap(fits, sigma, count, new Rng(seed))
      : EMPTY_REPLICATES;
  const quadratic = quad ? quadraticResult(pts, quad, sigma, reps) : null;
  const mixingLaw = mix ? mixingLawResult(fits, mix, reps) : null;
  const agreement = agree(quadratic?.bestRatio, mixingLaw?.bestRatio);
  const reason = unresolvedReason(pts, quadratic, agreement, !!mixingLaw?.domains);
  return {
    synthetic: cell.synthetic,
    generator: cell.generator,
    N: cell.N,
    D: cell.D,
    points: pts,
    quadratic,
    mixingLaw,
    observedBest,
    noise,
    agreement,
    resolved: reason === null,
    ...(reason ? { reason } : {}),
  };
}

type Quad = NonNullable<ReturnType<typeof fitQuadratic>>;

/** The full-data fits of one cell (points sorted by ratio). */
interface RatioFits {
  pts: RatioPoint[];
  quad: ReturnType<typeof fitQuadratic>;
  mix: MixLaw | null;
  byDomain: RatioCell["byDomain"];
  laws: MixLaw[] | null;
}

/** Best ratio and best loss of every successful bootstrap refit: quadratic (q) and mixing law (m). */
interface RatioReplicates {
  qR: number[];
  qL: number[];
  mR: number[];
  mL: number[];
}
const EMPTY_REPLICATES: RatioReplicates = { qR: [], qL: [], mR: [], mL: [] };

/** Each loss times log-normal noise of scale sigma / sqrt(runs) (one draw per point, in order). */
function perturb<P extends RatioPoint>(points: P[], sigma: number, rng: Rng): P[] {
  return points.map((p) => ({ ...p, loss: p.loss * Math.exp((sigma / Math.sqrt(p.runs)) * rng.normal()) }));
}

/** The parametric bootstrap of one cell; the draw order (mean points, then each domain's) fixes the seed's meaning. */
function ratioBootstrap(f: RatioFits, sigma: number, count: number, rng: Rng): RatioReplicates {
  const out: RatioReplicates = { qR: [], qL: [], mR: [], mL: [] };
  for (let b = 0; b < count; b++) {
    const noisy = perturb(f.pts, sigma, rng);
    const q = f.quad ? fitQuadratic(noisy) : null;
    if (q) {
      const r = quadraticArgmin(q);
      out.qR.push(r);
      out.qL.push(q[0] + q[1] * r + q[2] * r * r);
    }
    const m =
      f.laws && f.byDomain ? domainReplicate(f.byDomain, f.laws, sigma, rng) : mixReplicate(f.mix, noisy);
    if (m) {
      out.mR.push(m.r);
      out.mL.push(m.loss);
    }
  }
  return out;
}

/** Per-domain mixing laws refitted on perturbed domain points; their mean's argmin. */
function domainReplicate(
  byDomain: NonNullable<RatioCell["byDomain"]>,
  laws: MixLaw[],
  sigma: number,
  rng: Rng,
): { r: number; loss: number } | null {
  const noisyDomains = byDomain.map((d) => ({ ...d, points: perturb(d.points, sigma, rng) }));
  const ls = domainLaws(noisyDomains, laws);
  return ls ? meanMixingArgmin(ls) : null;
}

/** One mixing law refitted on the perturbed mean points (starting near the full fit's t). */
function mixReplicate(mix: MixLaw | null, noisy: RatioPoint[]): { r: number; loss: number } | null {
  const m = mix ? fitMixingLaw(noisy, mix.t) : null;
  if (!m) return null;
  const r = mixingLawArgmin(m);
  return { r, loss: m.c + m.k * Math.exp(m.t * r) };
}

function quadraticResult(
  pts: RatioPoint[],
  quad: Quad,
  sigma: number,
  reps: RatioReplicates,
): NonNullable<BestRatioEntry["quadratic"]> {
  const r = quadraticArgmin(quad);
  return {
    coef: quad,
    bestRatio: estimate(r, reps.qR),
    bestLoss: estimate(quad[0] + quad[1] * r + quad[2] * r * r, reps.qL),
    lackOfFit: lackOfFit(pts, quad, sigma),
  };
}

function mixingLawResult(
  f: RatioFits,
  mix: MixLaw,
  reps: RatioReplicates,
): NonNullable<BestRatioEntry["mixingLaw"]> {
  if (f.laws && f.byDomain) {
    const { byDomain } = f;
    const { r, loss } = meanMixingArgmin(f.laws);
    return {
      ...mix,
      bestRatio: estimate(r, reps.mR),
      bestLoss: estimate(loss, reps.mL),
      domains: f.laws.map((m, i) => ({ domain: byDomain[i].domain, ...m })),
    };
  }
  const r = mixingLawArgmin(mix);
  return {
    ...mix,
    bestRatio: estimate(r, reps.mR),
    bestLoss: estimate(mix.c + mix.k * Math.exp(mix.t * r), reps.mL),
  };
}

/** Trend of the quadratic best ratio with log10 N and log10 D per (synthetic, generator). */
export function bestRatioTrends(entries: BestRatioEntry[]): BestRatioTrend[] {
  const groups = new Map<string, BestRatioEntry[]>();
  for (const e of entries) {
    if (!e.quadratic || !e.resolved) continue;
    const k = `${e.synthetic}\u0000${e.generator}`;
    groups.set(k, [...(groups.get(k) ?? []), e]);
  }
  const out: BestRatioTrend[] = [];
  for (const es of groups.values()) {
    const varyN = new Set(es.map((e) => e.N)).size > 1;
    const varyD = new Set(es.map((e) => e.D)).size > 1;
    const X = es.map((e) => [1, ...(varyN ? [Math.log10(e.N)] : []), ...(varyD ? [Math.log10(e.D)] : [])]);
    const y = es.map((e) => e.quadratic!.bestRatio.value);
    const c = X[0].length > 1 && es.length > X[0].length - 1 ? leastSquares(X, y) : null;
    out.push({
      synthetic: es[0].synthetic,
      generator: es[0].generator,
      perDecadeN: c && varyN ? c[1] : null,
      perDecadeD: c && varyD ? c[varyN ? 2 : 1] : null,
      cells: es.length,
    });
  }
  return out;
}
