import { fmtNum } from "../util/progress.js";
import type { Estimate } from "./results.js";
import { speedupStatus } from "./speedup.js";
import type { FitRowsResult } from "./workspace.js";

function g(x: number | null | undefined, digits = 4): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return "-";
  const a = Math.abs(x);
  return a !== 0 && (a >= 1e5 || a < 1e-3) ? x.toExponential(digits - 1) : x.toPrecision(digits);
}

/**
 * "value [lo, hi]" (95% interval); "value [—]" when there is no interval; a trailing "?" when the value
 * is not identified (see the fit's warnings).
 */
export function fmtEstimate(e: Estimate | null | undefined, digits = 4): string {
  if (!e) return "-";
  const mark = e.identified === false ? "?" : "";
  if (e.lo === null || e.hi === null) return `${g(e.value, digits)} [—]${mark}`;
  return `${g(e.value, digits)} [${g(e.lo, 3)}, ${g(e.hi, 3)}]${mark}`;
}

/** Every warning of the fits and speed-ups, one line each: what the numbers above do not support. */
export function formatWarnings(res: FitRowsResult): string {
  const out: string[] = [];
  for (const f of res.fits.fits) {
    const at =
      f.fixedN !== null ? ` N=${fmtNum(f.fixedN)}` : f.fixedD !== null ? ` D=${fmtNum(f.fixedD)}` : "";
    for (const w of f.warnings) out.push(`warning ${w.code} ${f.key}${at}: ${w.message}`);
  }
  for (const e of res.speedups.entries) {
    for (const w of e.warnings.filter((x) => x.code === "EXTRAPOLATED"))
      out.push(`warning ${w.code} speed-up ${e.key}${e.N !== null ? ` N=${fmtNum(e.N)}` : ""}: ${w.message}`);
  }
  if (out.length) out.unshift("warnings (values marked ? are not identified and are no findings):");
  return out.join("\n");
}

function table(head: string[], rows: string[][]): string {
  const w = head.map((h, j) => Math.max(h.length, ...rows.map((r) => r[j].length)));
  const line = (r: string[]) =>
    r
      .map((c, j) => c.padEnd(w[j]))
      .join("  ")
      .trimEnd();
  return [line(head), line(w.map((n) => "-".repeat(n))), ...rows.map(line)].join("\n");
}

/** The human-readable summary printed by `synthmix fit`: parameters ± CI, speed-ups, best ratios. */
export function formatFitSummary(res: FitRowsResult): string {
  const out: string[] = [];
  const s = res.fits.settings;
  out.push(
    `form ${s.form}, domain ${s.domain}, Huber delta ${s.huberDelta}, ${s.gridStarts} starts, ${s.bootstrap} bootstrap refits (95% intervals)`,
  );
  const names = [...new Set(res.fits.fits.flatMap((f) => Object.keys(f.params)))];
  out.push(
    "",
    table(
      ["mixture", "at", "pts", "dof", ...names, "R2", "LOO rmse", "holdout err", "warnings"],
      res.fits.fits.map((f) => [
        f.key,
        f.fixedN !== null ? `N=${fmtNum(f.fixedN)}` : f.fixedD !== null ? `D=${fmtNum(f.fixedD)}` : "all",
        String(f.points),
        String(f.dof),
        ...names.map((k) => fmtEstimate(f.params[k])),
        g(f.quality.r2, 4),
        g(f.quality.looRmseLog, 3),
        f.quality.holdout
          ? `${(f.quality.holdout.relError * 100).toFixed(2)}% (max ${(f.quality.holdout.maxAbsRelError * 100).toFixed(1)}%)`
          : "-",
        f.warnings.map((w) => w.code).join(",") || "-",
      ]),
    ),
  );
  for (const f of res.fits.failures) {
    out.push(`not fitted: ${f.key}${f.fixedN !== null ? ` N=${f.fixedN}` : ""}: ${f.error}`);
  }
  if (res.speedups.entries.length > 0) {
    out.push(
      "",
      "data speed-up over natural (D_natural / D_mix at the loss of the largest natural run):",
      table(
        ["mixture", "N", "target loss", "speed-up", "status"],
        res.speedups.entries.map((e) => [
          e.key,
          e.N === null ? "all" : fmtNum(e.N),
          g(e.atLargestNatural?.targetLoss),
          fmtEstimate(e.atLargestNatural?.speedup, 3),
          speedupStatus(e),
        ]),
      ),
    );
  } else if (res.speedups.note) out.push("", `speed-ups: ${res.speedups.note}`);
  const gens = res.fits.generators;
  if (new Set(gens.map((r) => r.generator)).size > 1) {
    out.push(
      "",
      "generators side by side (E at the largest N, speed-up at the largest natural run, mean best ratio):",
      table(
        ["synthetic", "ratio", "generator", "E", "speed-up", "best ratio"],
        gens.map((r) => [
          r.synthetic,
          g(r.ratio, 3),
          r.generator,
          fmtEstimate(r.E),
          fmtEstimate(r.speedupAtLargestNatural, 3),
          fmtEstimate(r.bestRatio, 3),
        ]),
      ),
    );
  }
  if (res.bestRatio.entries.length > 0) {
    out.push(
      "",
      "best synthetic ratio per (N, D) (quadratic in ratio; mixing law c + k exp(t r)):",
      table(
        [
          "synthetic",
          "generator",
          "N",
          "D",
          "ratios",
          "quadratic best",
          "mixing-law best",
          "agree",
          "observed",
          "resolved",
        ],
        res.bestRatio.entries.map((e) => [
          e.synthetic,
          e.generator,
          fmtNum(e.N),
          fmtNum(e.D),
          String(e.points.length),
          fmtEstimate(e.quadratic?.bestRatio, 3),
          fmtEstimate(e.mixingLaw?.bestRatio, 3),
          e.agreement === null ? "-" : e.agreement ? "yes" : "no",
          g(e.observedBest, 3),
          e.resolved ? "yes" : `no: ${e.reason}`,
        ]),
      ),
    );
    for (const t of res.bestRatio.trends) {
      out.push(
        `trend ${t.synthetic}/${t.generator || "-"}: ${g(t.perDecadeN, 3)} per decade of N, ${g(t.perDecadeD, 3)} per decade of D (${t.cells} cells)`,
      );
    }
  }
  return out.join("\n");
}

type PredictionLine = {
  key: string;
  N: number | null;
  D: number | null;
  loss: number;
  lo: number | null;
  hi: number | null;
  extrapolated: boolean;
  warnings: string[];
};

/** The `--predict` table: one line per prediction with its 95% prediction interval. */
export function formatPredictions(predictions: PredictionLine[]): string {
  const lines = predictions.map((p) => {
    const extra = `${p.extrapolated ? "  (extrapolated)" : ""}${p.warnings.length ? `  (law: ${p.warnings.join(", ")})` : ""}`;
    return `  ${p.key}  N=${p.N ?? "-"}  D=${p.D ?? "-"}  loss ${p.loss.toPrecision(5)} [${p.lo?.toPrecision(4) ?? "-"}, ${p.hi?.toPrecision(4) ?? "-"}]${extra}`;
  });
  return ["predictions (95% prediction intervals):", ...lines].join("\n");
}
