import jstat from "jstat";
import type { FitWarning, MixtureFit, MixtureKey, SpeedupEntry } from "./results.js";
import { estimate } from "./stats.js";

/** Natural-unit parameters of a fitted data (B, beta, E) or joint (A, alpha, B, beta, E) law. */
export type LawParams = Record<string, number>;

/**
 * Tokens needed to reach loss `target`: D(L*) = (B / (L* - E - A N^-alpha))^(1/beta), the inverse of the
 * data law (A = 0) or of the joint law at model size N. NaN when L* is not reachable (at or below the
 * asymptote) or the law is degenerate (beta <= 0).
 */
export function tokensForLoss(p: LawParams, target: number, N: number | null = null): number {
  const modelTerm = p.A !== undefined && N !== null ? p.A * N ** -p.alpha : 0;
  const gap = target - p.E - modelTerm;
  if (!(gap > 0) || !(p.beta > 0) || !(p.B > 0)) return Number.NaN;
  return (p.B / gap) ** (1 / p.beta);
}

/** Predicted loss at (N, D) from a data or joint law. */
export function lossAt(p: LawParams, D: number, N: number | null = null): number {
  const modelTerm = p.A !== undefined && N !== null ? p.A * N ** -p.alpha : 0;
  return p.E + modelTerm + p.B * D ** -p.beta;
}

export interface SpeedupInput {
  mix: MixtureKey;
  baseline: string;
  N: number | null;
  method: SpeedupEntry["method"];
  natural: LawParams;
  mixture: LawParams;
  /** Bootstrap replicates (natural-unit), paired by index: replicate b of each fit is independent. */
  naturalBoot: LawParams[];
  mixtureBoot: LawParams[];
  /** Target losses for the curve. */
  targets: number[];
  /** The natural run with the largest D at this N (mean loss over its seeds), if any. */
  largestNatural: { D: number; loss: number } | null;
  /** The two fits (their D ranges and warnings decide `extrapolated` and `supported`). */
  /** Observed mean losses at this N (natural's largest run, each mixture budget) and the seed noise. */
  observed?: ObservedCells;
  naturalFit?: Pick<MixtureFit, "key" | "range" | "warnings" | "params"> & {
    quality?: Pick<MixtureFit["quality"], "sigmaLog" | "rmseLog" | "residuals">;
  };
  mixtureFit?: SpeedupInput["naturalFit"];
}

/** Mean loss of the runs of one (mixture, N, D) cell. */
export interface ObservedCell {
  D: number;
  loss: number;
  runs: number;
}

export interface ObservedCells {
  natural: ObservedCell;
  mixture: ObservedCell[];
  /** Run-to-run noise of log loss (seed replicates, else the fits' residuals); null: unknown. */
  sigmaLog: number | null;
  /** Degrees of freedom of sigmaLog (null: treated as known, normal quantiles). */
  df: number | null;
  /** One-sided bound tests in the family (2 per entry of the speed-ups file): the Bonferroni divisor. */
  tests: number;
}

/** A bound in short: "< 1.00×". */
export function boundText(b: NonNullable<SpeedupEntry["bound"]>): string {
  return `${b.side === "below" ? "<" : ">"} ${b.value.toFixed(2)}×`;
}

/** How a bound reads in a sentence: "< 1.00× (slower than natural, from the runs: ...)". */
export function describeBound(b: NonNullable<SpeedupEntry["bound"]>): string {
  // "< 4x" says only that it is not 4x faster; "slower" needs the bound at or below 1 (and vice versa).
  const dir =
    b.side === "below"
      ? b.value <= 1
        ? "slower than natural"
        : `at most ${b.value.toFixed(2)}× natural`
      : b.value >= 1
        ? "faster than natural"
        : `at least ${b.value.toFixed(2)}× natural`;
  const where = b.side === "below" ? "still above" : "already below";
  // Files written before the family-wise threshold have no `threshold`: say nothing about it then.
  const needed =
    b.threshold === undefined
      ? ""
      : `, > ${b.threshold.toFixed(2)} needed: ${b.tests} tests at ${Math.round(100 * BOUND_FAMILY_ALPHA)}% family-wise, ${b.df === null ? "normal" : `t with ${b.df} df`}`;
  return `${boundText(b)} (${dir}, from the runs: at D = ${b.atD.toPrecision(3)} its loss ${b.loss.toFixed(3)} is ${where} L* = ${b.targetLoss.toFixed(3)} by ${b.gapSe.toFixed(1)} se${needed})`;
}

/** The status of an entry's headline reading, in a table cell. */
export function speedupStatus(e: SpeedupEntry): string {
  const a = e.atLargestNatural;
  const runs = e.bound ? `; from the runs ${boundText(e.bound)}` : "";
  if (!a) return `not reachable${runs}`;
  if (a.extrapolated) return `extrapolated${runs}`;
  if (!e.supported) return "laws not identified";
  return e.basis === "interpolation" ? "ok (interpolated; E not identified)" : "ok";
}

/** Family-wise error rate of the bounds of one speed-ups file (every entry, both sides). */
export const BOUND_FAMILY_ALPHA = 0.05;

/**
 * The se multiple an observed gap must exceed for a bound: the one-sided 1 - alpha/tests quantile
 * (Bonferroni over the file's `tests` one-sided tests) of Student's t with the noise estimate's degrees
 * of freedom (normal when unknown). With one entry (2 tests) and known noise: 1.96, the old fixed value;
 * with 20 entries and 10 df: 4.0. Without the correction, a grid of many mixtures and sizes stated
 * false bounds at ~5% per entry.
 */
export function boundThreshold(tests: number, df: number | null): number {
  const p = 1 - BOUND_FAMILY_ALPHA / Math.max(2, tests);
  // jStat (one package, no dependencies) rather than hand-written inverse incomplete-beta code.
  return df === null || !Number.isFinite(df)
    ? jstat.jStat.normal.inv(p, 0, 1)
    : jstat.jStat.studentt.inv(p, df);
}

/**
 * A bound on the speed-up read from the runs themselves, for when the law would have to be read beyond
 * its points. If the mixture's loss at its largest budget is still significantly above L*, it needs
 * more than that budget to reach L*, so speedup < D_natural / D_mix,max; if its loss at its smallest
 * budget is already significantly below L*, speedup > D_natural / D_mix,min. Both assume only that loss
 * falls with D (a mixture whose law is INVALID_LAW gets no bound).
 */
export function observedBound(inp: SpeedupInput): SpeedupEntry["bound"] {
  const o = inp.observed;
  if (!o || o.sigmaLog === null || o.mixture.length === 0) return null;
  if (inp.mixtureFit?.warnings.some((w) => w.code === "INVALID_LAW")) return null;
  const byD = [...o.mixture].sort((a, b) => a.D - b.D);
  const gap = (c: ObservedCell) => {
    const se = o.sigmaLog! * Math.sqrt(1 / c.runs + 1 / o.natural.runs);
    return (Math.log(c.loss) - Math.log(o.natural.loss)) / Math.max(se, 1e-12);
  };
  const threshold = boundThreshold(o.tests, o.df);
  const bound = (side: "below" | "above", c: ObservedCell, gapSe: number) => ({
    side,
    value: o.natural.D / c.D,
    atD: c.D,
    loss: c.loss,
    targetLoss: o.natural.loss,
    gapSe,
    threshold,
    tests: o.tests,
    df: o.df,
  });
  const last = byD[byD.length - 1];
  const first = byD[0];
  if (gap(last) > threshold) return bound("below", last, gap(last));
  if (-gap(first) > threshold) return bound("above", first, -gap(first));
  return null;
}

/**
 * Is D outside the fitted D range (by more than `margin`)? The mixture side is checked strictly. The
 * natural side is read at the natural runs' own losses, so its inversion lands on its data up to noise:
 * at the flat end of a curve 0.3% loss noise moves D by ~25%, hence a margin of 1.25 there.
 */
function outside(D: number, fit: SpeedupInput["naturalFit"], margin = 1 + 1e-9): boolean {
  const r = fit?.range.D;
  return !!r && (D < r[0] / margin || D > r[1] * margin);
}

const NATURAL_MARGIN = 1.25;

function extrapolated(inp: SpeedupInput, dn: number, dm: number): boolean {
  return outside(dm, inp.mixtureFit) || outside(dn, inp.naturalFit, NATURAL_MARGIN);
}

/**
 * Warnings that concern only the floor: the profile interval of E runs to a bound or spans most of its
 * range. They forbid reading a law beyond its points (where the floor decides D(L*)), but not between
 * them: the points fix E + A/N^alpha at each N, which is all an interpolation at that N uses.
 */
const FLOOR_ONLY_WARNINGS = new Set(["E_AT_BOUND", "E_NOT_IDENTIFIED"]);
/** Parameters whose individual values an interpolation at a fixed N does not need (only their sum at N). */
const FLOOR_PARAMS = new Set(["E", "A", "alpha"]);
/** A law follows its points at N when their RMS log-residual is at most this multiple of the fit's sigma. */
const LOCAL_FIT_FACTOR = 2;

type Law = NonNullable<SpeedupInput["naturalFit"]>;

/** RMS log-residual of the law's points at model size N (all points when N is null or the form has none). */
function localRms(f: Law, N: number | null): number | null {
  const res = f.quality?.residuals ?? [];
  const at = N === null ? res : res.filter((r) => r.N === null || r.N === N);
  if (at.length === 0) return null;
  return Math.sqrt(at.reduce((s, r) => s + r.logResidual ** 2, 0) / at.length);
}

/** Why a law cannot carry an interpolated reading at N, or null when it can. */
function interpolationBlocker(f: Law, N: number | null): string | null {
  const blocking = f.warnings.filter((w) => !FLOOR_ONLY_WARNINGS.has(w.code));
  if (blocking.length) return [...new Set(blocking.map((w) => w.code))].join(", ");
  const shape = Object.entries(f.params).filter(([k, e]) => !e.identified && !FLOOR_PARAMS.has(k));
  if (shape.length) return `${shape.map(([k]) => k).join(", ")} not identified`;
  const sigma = f.quality?.sigmaLog ?? f.quality?.rmseLog ?? null;
  const local = localRms(f, N);
  if (sigma !== null && local !== null && local > LOCAL_FIT_FACTOR * Math.max(sigma, 1e-4))
    return `its points at N = ${N} deviate from it (RMS log-residual ${local.toPrecision(2)} > ${LOCAL_FIT_FACTOR} x sigma ${sigma.toPrecision(2)})`;
  return null;
}

/**
 * Warnings inherited from the two laws, and on what basis the headline reading (at the largest natural
 * run) may be stated: `laws-identified` when both laws have no warning and every parameter is identified;
 * `interpolation` when the floor alone is unidentified but the reading lies inside both laws' D ranges,
 * both follow their points at this N and the bootstrap interval is finite; otherwise null (not supported).
 */
function support(
  inp: SpeedupInput,
  reading: SpeedupEntry["atLargestNatural"],
): { warnings: FitWarning[]; basis: SpeedupEntry["basis"] } {
  const warnings: FitWarning[] = [];
  let identified = true;
  const blockers: string[] = [];
  for (const [who, f] of [
    ["natural", inp.naturalFit],
    ["mixture", inp.mixtureFit],
  ] as const) {
    if (!f) continue;
    for (const w of f.warnings)
      warnings.push({ code: w.code, message: `${who} law (${f.key}): ${w.message}` });
    const unidentified = Object.entries(f.params).filter(([, e]) => !e.identified);
    if (f.warnings.length || unidentified.length) identified = false;
    if (unidentified.length && !f.warnings.length) {
      warnings.push({
        code: "UNIDENTIFIED",
        message: `${who} law (${f.key}): ${unidentified.map(([k, e]) => `${k} not identified (${e.reason ?? "no interval"})`).join(", ")}`,
      });
    }
    const b = interpolationBlocker(f, inp.N);
    if (b) blockers.push(`${who} law: ${b}`);
  }
  if (identified) return { warnings, basis: "laws-identified" };
  const s = reading?.speedup;
  const finite = !!s && s.lo !== null && s.hi !== null && Number.isFinite(s.hi) && s.lo > 0;
  const inside = !!reading && !reading.extrapolated;
  if (blockers.length === 0 && finite && inside) return { warnings, basis: "interpolation" };
  return { warnings, basis: null };
}

function bootSpeedups(inp: SpeedupInput, target: number): number[] {
  const n = Math.min(inp.naturalBoot.length, inp.mixtureBoot.length);
  const out: number[] = [];
  for (let b = 0; b < n; b++) {
    const dn = tokensForLoss(inp.naturalBoot[b], target, inp.N);
    const dm = tokensForLoss(inp.mixtureBoot[b], target, inp.N);
    // A replicate whose law cannot reach L* gives an unbounded ratio: keep it as +/-Infinity so the
    // percentile interval widens honestly instead of silently dropping hard cases.
    if (Number.isNaN(dn) && Number.isNaN(dm)) continue;
    if (Number.isNaN(dm)) out.push(0);
    else if (Number.isNaN(dn)) out.push(Number.POSITIVE_INFINITY);
    else out.push(dn / dm);
  }
  return out;
}

function estimateWithInf(value: number, samples: number[]) {
  const e = estimate(
    value,
    samples.filter((s) => Number.isFinite(s)),
  );
  if (samples.length >= 2) {
    const sorted = [...samples].sort((a, b) => a - b);
    const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * (sorted.length - 1) + 0.5))];
    e.lo = q(0.025);
    e.hi = q(0.975);
    if (!Number.isFinite(e.hi as number)) e.hi = null;
  }
  return e;
}

/** Speed-up of a mixture over natural data: D_natural(L*) / D_mix(L*) along `targets` and at the largest natural run. */
export function speedupEntry(inp: SpeedupInput): SpeedupEntry {
  const curve: SpeedupEntry["curve"] = [];
  for (const t of inp.targets) {
    const dn = tokensForLoss(inp.natural, t, inp.N);
    const dm = tokensForLoss(inp.mixture, t, inp.N);
    if (!Number.isFinite(dn) || !Number.isFinite(dm)) continue;
    curve.push({
      targetLoss: t,
      dNatural: dn,
      dMix: dm,
      speedup: estimateWithInf(dn / dm, bootSpeedups(inp, t)),
      extrapolated: extrapolated(inp, dn, dm),
    });
  }
  let atLargestNatural: SpeedupEntry["atLargestNatural"] = null;
  if (inp.largestNatural) {
    const t = inp.largestNatural.loss;
    const dn = tokensForLoss(inp.natural, t, inp.N);
    const dm = tokensForLoss(inp.mixture, t, inp.N);
    if (Number.isFinite(dn) && Number.isFinite(dm)) {
      atLargestNatural = {
        targetLoss: t,
        dNaturalObserved: inp.largestNatural.D,
        dNatural: dn,
        dMix: dm,
        speedup: estimateWithInf(dn / dm, bootSpeedups(inp, t)),
        extrapolated: extrapolated(inp, dn, dm),
      };
    }
  }
  const { warnings, basis } = support(inp, atLargestNatural);
  if (atLargestNatural?.extrapolated) {
    const mixSide = outside(atLargestNatural.dMix, inp.mixtureFit);
    const r = (mixSide ? inp.mixtureFit : inp.naturalFit)?.range.D;
    const d = mixSide ? atLargestNatural.dMix : atLargestNatural.dNatural;
    warnings.push({
      code: "EXTRAPOLATED",
      message: `the ${mixSide ? "mixture" : "natural"} law needs D = ${d.toPrecision(3)} to reach L* = ${atLargestNatural.targetLoss.toPrecision(4)}${r ? `, outside its fitted D range [${r[0].toPrecision(3)}, ${r[1].toPrecision(3)}]` : ""}: the speed-up is an extrapolation`,
    });
  }
  return {
    ...inp.mix,
    N: inp.N,
    method: inp.method,
    baseline: inp.baseline,
    curve,
    atLargestNatural,
    warnings,
    supported: basis !== null,
    basis,
    // Where the law cannot give the reading between its points (beyond them, or never reaching L*).
    bound: !atLargestNatural || atLargestNatural.extrapolated ? observedBound(inp) : null,
  };
}

/** `count` target losses spread evenly over [lo, hi]. */
export function targetRange(lo: number, hi: number, count = 20): number[] {
  if (!(hi > lo)) return [lo];
  return Array.from({ length: count }, (_, i) => lo + ((hi - lo) * i) / (count - 1));
}
