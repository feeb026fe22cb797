import type { TopLevelSpec } from "vega-lite";
import type { BestRatioEntry, BestRatioFile, Estimate } from "../../fit/results.js";
import { type ChartResult, CONFIG, fmt, si } from "./common.js";

/**
 * The best-ratio estimate shown for a cell: the quadratic optimum when it is resolved, else the observed
 * best ratio of the grid (no interval: the optimum is not resolved on this grid).
 */
export function bestOf(e: BestRatioEntry): { est: Estimate; how: "quadratic" | "observed" } {
  if (e.resolved && e.quadratic) return { est: e.quadratic.bestRatio, how: "quadratic" };
  return { est: { value: e.observedBest, se: null, lo: null, hi: null, identified: false }, how: "observed" };
}

const groupOf = (e: { synthetic: string; generator: string }, multi: boolean) =>
  multi && e.generator ? `${e.synthetic} (${e.generator})` : e.synthetic;

function groups(file: BestRatioFile) {
  const multi = new Set(file.entries.map((e) => e.generator)).size > 1;
  return { multi, names: [...new Set(file.entries.map((e) => groupOf(e, multi)))] };
}

/** Chart 4a: heatmap of the loss-minimising synthetic ratio per (N, D), one panel per style (x generator). */
export function bestRatioHeatmap(file: BestRatioFile | undefined): ChartResult {
  if (!file || file.entries.length === 0)
    return { skipped: "no best-ratio estimates (results/best-ratio.json)" };
  const { multi, names } = groups(file);
  const hows = new Set<string>();
  const values = file.entries.map((e) => {
    const { est, how } = bestOf(e);
    hows.add(how);
    return {
      group: groupOf(e, multi),
      N: `${si(e.N)}`,
      Nv: e.N,
      D: `${si(e.D)}`,
      Dv: e.D,
      best: est.value,
      label: fmt(est.value, 2),
      ci: est.lo !== null && est.hi !== null ? `[${fmt(est.lo, 2)}, ${fmt(est.hi, 2)}]` : "",
    };
  });
  const cells = new Set(values.map((v) => `${v.N}|${v.D}`)).size;
  const Ns = new Set(values.map((v) => v.N)).size;
  const Ds = new Set(values.map((v) => v.D)).size;
  const inner = {
    width: Math.max(160, 70 * Ds),
    height: Math.max(100, 46 * Ns),
    encoding: {
      x: {
        field: "D",
        type: "ordinal",
        sort: { field: "Dv" },
        title: "Training tokens D",
        axis: { labelAngle: 0 },
      },
      y: { field: "N", type: "ordinal", sort: { field: "Nv", order: "descending" }, title: "Parameters N" },
    },
    layer: [
      {
        mark: { type: "rect", stroke: "white", strokeWidth: 1 },
        encoding: {
          color: {
            field: "best",
            type: "quantitative",
            title: "Best ratio",
            scale: { domain: [0, 1], scheme: "blues" },
            legend: { format: ".0%" },
          },
          tooltip: [
            { field: "N" },
            { field: "D" },
            { field: "best", title: "best ratio", format: ".3f" },
            { field: "ci", title: "95% interval" },
          ],
        },
      },
      {
        mark: { type: "text", fontSize: 12, dy: -7 },
        encoding: {
          text: { field: "label" },
          color: { condition: { test: "datum.best > 0.6", value: "white" }, value: "black" },
        },
      },
      {
        mark: { type: "text", fontSize: 9, dy: 8 },
        encoding: {
          text: { field: "ci" },
          color: { condition: { test: "datum.best > 0.6", value: "white" }, value: "#333" },
        },
      },
    ],
  };
  const spec = (names.length > 1
    ? {
        data: { values },
        facet: { field: "group", type: "nominal", title: null },
        columns: 2,
        spec: inner,
        config: CONFIG,
      }
    : {
        data: { values },
        ...inner,
        title: { text: `synthetic style: ${names[0]}`, fontSize: 12, fontWeight: "normal" },
        config: CONFIG,
      }) as unknown as TopLevelSpec;
  const trends = file.trends
    .filter((t) => t.perDecadeN !== null || t.perDecadeD !== null)
    .map(
      (t) =>
        `${groupOf(t, multi)}: ${t.perDecadeN === null ? "" : `${signed(t.perDecadeN)} per 10× N`}${t.perDecadeN !== null && t.perDecadeD !== null ? ", " : ""}${t.perDecadeD === null ? "" : `${signed(t.perDecadeD)} per 10× D`}`,
    );
  return {
    id: "best-ratio",
    title: "Best synthetic ratio per model size and token budget",
    caption: `Each cell: the synthetic share of training tokens that minimises test loss at that (N, D) (the resolved quadratic fit of loss against ratio, natural-only runs counting as ratio 0, with its 95% bootstrap interval; where the optimum is not resolved on this grid — fewer than 5 ratios, lack of fit, no interior minimum — the observed best ratio of the grid, without interval${hows.has("observed") ? `; ${file.entries.filter((e) => !e.resolved).length} of ${file.entries.length} cells are unresolved` : ""}); ${cells} cells from results/best-ratio.json.${trends.length ? ` Least-squares trend of the best ratio: ${trends.join("; ")}.` : ""}`,
    spec,
  };
}

const signed = (x: number) => `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(3)}`;

/** Chart 4b: mean loss against synthetic ratio with the fitted curve, one panel per N, colour = D. */
export function lossVsRatioChart(file: BestRatioFile | undefined): ChartResult {
  if (!file || file.entries.length === 0)
    return { skipped: "no loss-vs-ratio data (results/best-ratio.json)" };
  const { multi, names } = groups(file);
  const values: Record<string, unknown>[] = [];
  const Dlabels = [...new Set(file.entries.map((e) => e.D))].sort((a, b) => a - b).map((d) => `${si(d)}`);
  let curves = 0;
  for (const e of file.entries) {
    const base = { group: groupOf(e, multi), N: `N = ${si(e.N)}`, Nv: e.N, D: `${si(e.D)}` };
    for (const p of e.points)
      values.push({ ...base, kind: "mean", ratio: p.ratio, loss: p.loss, runs: p.runs });
    const curve = e.quadratic
      ? (r: number) => e.quadratic!.coef[0] + e.quadratic!.coef[1] * r + e.quadratic!.coef[2] * r * r
      : e.mixingLaw
        ? mixingCurve(e.mixingLaw)
        : null;
    if (curve) {
      curves++;
      for (let i = 0; i <= 20; i++) values.push({ ...base, kind: "fit", ratio: i / 20, loss: curve(i / 20) });
      const b = bestOf(e).est.value;
      values.push({ ...base, kind: "best", ratio: b, loss: curve(b) });
    }
  }
  const Ncount = new Set(file.entries.map((e) => e.N)).size;
  const inner = {
    width: 200,
    height: 180,
    encoding: {
      x: {
        field: "ratio",
        type: "quantitative",
        title: "Synthetic share of tokens",
        scale: { domain: [0, 1] },
        axis: { format: ".0%", tickCount: 5 },
      },
      y: { field: "loss", type: "quantitative", title: "Test loss (nats/token)", scale: { zero: false } },
      color: { field: "D", type: "ordinal", title: "Tokens D", sort: Dlabels, scale: { scheme: "viridis" } },
    },
    layer: [
      { transform: [{ filter: "datum.kind === 'fit'" }], mark: { type: "line", strokeWidth: 1.4 } },
      {
        transform: [{ filter: "datum.kind === 'mean'" }],
        mark: { type: "point", filled: true, size: 30 },
        encoding: {
          tooltip: [
            { field: "N" },
            { field: "D" },
            { field: "ratio", format: ".2f" },
            { field: "loss", format: ".4f" },
            { field: "runs" },
          ],
        },
      },
      {
        transform: [{ filter: "datum.kind === 'best'" }],
        mark: { type: "point", shape: "diamond", size: 80, filled: false, strokeWidth: 1.5 },
      },
    ],
  };
  const facet =
    names.length > 1
      ? {
          row: { field: "group", type: "nominal", title: null },
          column: { field: "N", type: "ordinal", sort: { field: "Nv" }, title: null },
        }
      : { column: { field: "N", type: "ordinal", sort: { field: "Nv" }, title: null } };
  const spec = {
    data: { values },
    facet,
    spec: inner,
    resolve: { scale: { y: "independent" } },
    config: CONFIG,
  } as unknown as TopLevelSpec;
  return {
    id: "loss-vs-ratio",
    title: "Loss against synthetic ratio",
    caption: `Points: mean final test loss per ratio at each (N, D) (results/best-ratio.json, ${names.join(", ")}; ${Ncount} model sizes), natural-only runs at ratio 0. Lines: the fitted curve of loss against ratio (${curves} cells; quadratic c₀ + c₁r + c₂r², else mixing law c + k·e^(t·r), averaged over per-domain laws when fitted per domain); diamonds: its minimum in [0, 1]. Each panel has its own loss axis.`,
    spec,
  };
}

/** The mixing-law curve whose minimum is the reported best ratio: the mean of per-domain laws when present. */
function mixingCurve(m: NonNullable<BestRatioEntry["mixingLaw"]>): (r: number) => number {
  const laws = m.domains && m.domains.length > 0 ? m.domains : [m];
  return (r) => laws.reduce((acc, l) => acc + l.c + l.k * Math.exp(l.t * r), 0) / laws.length;
}
