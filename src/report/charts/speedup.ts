import type { TopLevelSpec } from "vega-lite";
import type { FitsFile, SpeedupsFile } from "../../fit/results.js";
import { boundText } from "../../fit/speedup.js";
import { logDomain, logTicks } from "./axes.js";
import { type ChartResult, CONFIG, colorScale, mixtureLabel, mixtureOrder, si } from "./common.js";

const fmtNum = (x: number) => Number(x.toPrecision(2)).toString();

const CLIP = 20;

const METHOD: Record<string, string> = {
  "data-fit-per-N": "inverted data-scaling fits at each N",
  "data-fit-pooled": "inverted pooled data-scaling fits",
  "joint-at-N": "the inverted joint fit at each N",
};

type SpeedupEntry = SpeedupsFile["entries"][number];
type Value = Record<string, unknown>;

/** Curve points (with their intervals) and the diamond at the largest natural run, per entry. */
function speedupValues(entries: SpeedupEntry[], multiGen: boolean): Value[] {
  const panel = (N: number | null) => (N === null ? "all N" : `N = ${si(N)} params`);
  const values: Value[] = [];
  for (const e of entries) {
    const base = { series: mixtureLabel(e, multiGen), panel: panel(e.N), Nv: e.N ?? 0 };
    for (const c of e.curve) {
      if (!(c.speedup.value > 0)) continue;
      values.push({
        ...base,
        kind: "curve",
        part: c.extrapolated ? "extrapolated (outside the fitted D range)" : "within the fitted D range",
        L: c.targetLoss,
        s: c.speedup.value,
        lo: c.speedup.lo !== null && c.speedup.lo > 0 ? c.speedup.lo : null,
        hi: c.speedup.hi ?? null,
      });
    }
    const mark = e.atLargestNatural;
    if (mark && mark.speedup.value > 0)
      values.push({
        ...base,
        kind: "mark",
        L: mark.targetLoss,
        s: mark.speedup.value,
        status: markStatus(e),
      });
  }
  return values;
}

function markStatus(e: SpeedupEntry): string {
  if (e.atLargestNatural?.extrapolated)
    return e.bound ? `extrapolated (runs: ${boundText(e.bound)})` : "extrapolated";
  if (e.supported) return e.basis === "interpolation" ? "supported (interpolated)" : "supported";
  return `not identified (${[...new Set(e.warnings.map((w) => w.code))].join(", ")})`;
}

/**
 * The y range: near a mixture's E the inverted law diverges (speed-up -> 0 or infinity); such tails
 * would squash the informative range, so the axis stops at CLIP x either way (and the caption says so).
 * Clipped marks still count towards Vega's layout bounds, so the data is cut to the axis too.
 */
function clipToAxis(values: Value[]): { shown: Value[]; yLo: number; yHi: number; clipped: boolean } {
  const ys = values
    .flatMap((v) => [v.s, v.lo, v.hi])
    .filter((x): x is number => typeof x === "number" && x > 0);
  const marks = values.filter((v) => v.kind === "mark").map((v) => v.s as number);
  let [yLo, yHi] = logDomain([...ys, 1], 1.1);
  const clipped = yLo < Math.min(1 / CLIP, ...marks) || yHi > Math.max(CLIP, ...marks);
  yLo = Math.max(yLo, Math.min(1 / CLIP, ...marks.map((m) => m / 1.5)));
  yHi = Math.min(yHi, Math.max(CLIP, ...marks.map((m) => m * 1.5)));
  const inRange = (v: number) => v >= yLo && v <= yHi;
  const clamp = (v: unknown) => (typeof v === "number" ? Math.min(yHi, Math.max(yLo, v)) : v);
  const shown = values
    .filter((v) => inRange(v.s as number))
    .map((v) => ({ ...v, lo: clamp(v.lo), hi: clamp(v.hi) }));
  return { shown, yLo, yHi, clipped };
}

/** The layered curve + band + 1x rule + diamonds of one panel. */
function speedupLayers(labels: string[], yLo: number, yHi: number, faceted: boolean) {
  const x = {
    field: "L",
    type: "quantitative",
    title: "Target test loss L* (nats/token)",
    scale: { zero: false, nice: false },
  };
  const y = {
    field: "s",
    type: "quantitative",
    title: "Speed-up over natural (×, log scale)",
    scale: { type: "log", domain: [yLo, yHi], nice: false },
    axis: { values: logTicks(yLo, yHi), format: "~g" },
  };
  const color = {
    field: "series",
    type: "nominal",
    title: "Mixture",
    sort: labels,
    scale: colorScale(labels),
    legend: { symbolType: "stroke", symbolStrokeWidth: 2.5, symbolOpacity: 1 },
  };
  return {
    width: faceted ? 250 : 420,
    height: faceted ? 240 : 300,
    layer: [
      {
        transform: [{ filter: "datum.kind === 'curve'" }],
        mark: { type: "line", strokeWidth: 1.6, clip: true },
        encoding: {
          x,
          y,
          color,
          strokeDash: {
            field: "part",
            type: "nominal",
            title: "Inversion",
            scale: {
              domain: ["within the fitted D range", "extrapolated (outside the fitted D range)"],
              range: [
                [1, 0],
                [5, 3],
              ],
            },
          },
        },
      },
      {
        transform: [{ filter: "datum.kind === 'curve' && datum.lo !== null && datum.hi !== null" }],
        mark: { type: "area", opacity: 0.15, clip: true },
        encoding: { x, y: { ...y, field: "lo" }, y2: { field: "hi" }, color },
      },
      { mark: { type: "rule", strokeDash: [4, 3], color: "#888" }, encoding: { y: { datum: 1 } } },
      {
        transform: [{ filter: "datum.kind === 'mark'" }],
        mark: { type: "point", filled: true, size: 60, shape: "diamond" },
        encoding: {
          x,
          y,
          color,
          tooltip: [
            { field: "series", title: "mixture" },
            { field: "L", title: "L*", format: ".3f" },
            { field: "s", title: "speed-up", format: ".3f" },
          ],
        },
      },
    ],
  };
}

/** Chart 5: data speed-up D_natural(L*) / D_mix(L*) against target loss, per mixture, with 95% band. */
export function speedupChart(file: SpeedupsFile | undefined): ChartResult {
  const entries = (file?.entries ?? []).filter((e) => e.curve.length > 0);
  if (!file || entries.length === 0) {
    return { skipped: `no speed-up curves (results/speedups.json${file?.note ? `: ${file.note}` : ""})` };
  }
  const multiGen = new Set(entries.map((e) => e.generator)).size > 1;
  const mixes = [...new Map(entries.map((e) => [e.key, e])).values()].sort(mixtureOrder);
  const labels = mixes.map((m) => mixtureLabel(m, multiGen));
  const Ns = [...new Set(entries.map((e) => e.N))];
  const faceted = Ns.length > 1;
  const { shown, yLo, yHi, clipped } = clipToAxis(speedupValues(entries, multiGen));
  const inner = speedupLayers(labels, yLo, yHi, faceted);
  const spec = (faceted
    ? {
        data: { values: shown },
        facet: { field: "panel", type: "ordinal", sort: { field: "Nv" }, title: null },
        columns: Ns.length <= 3 ? Ns.length : 2,
        spec: inner,
        config: CONFIG,
      }
    : { data: { values: shown }, ...inner, config: CONFIG }) as unknown as TopLevelSpec;
  const methods = [...new Set(entries.map((e) => METHOD[e.method] ?? e.method))];
  const baseline = entries[0].baseline;
  return {
    id: "speedup",
    title: "Data speed-up over natural text",
    caption: `Speed-up = D_natural(L*) / D_mix(L*): how many times fewer tokens a mixture needs than natural-only data (baseline ${baseline}) to reach target loss L*, from ${methods.join(" / ")} (results/speedups.json). Bands: 95% bootstrap intervals; diamonds: at the loss of the largest natural run; dashed line: no speed-up (1×). Above 1 = the mixture is more token-efficient.${clipped ? ` The axis is cut at ${fmtNum(yLo)}×–${fmtNum(yHi)}× where the inverted laws diverge near E.` : ""}`,
    spec,
  };
}

/** Chart 6: the same statistics per generator side by side (drawn only when several generators exist). */
export function generatorChart(fits: FitsFile | undefined): ChartResult {
  const rows = fits?.generators ?? [];
  const gens = [...new Set(rows.map((r) => r.generator))];
  if (gens.length < 2) {
    return {
      skipped:
        gens.length === 1
          ? `one generator only (${gens[0]}): nothing to compare`
          : "no generator table (results/fits.json)",
    };
  }
  const values: Record<string, unknown>[] = [];
  const metrics: [string, "E" | "speedupAtLargestNatural" | "bestRatio"][] = [
    ["Irreducible loss E (nats/token)", "E"],
    ["Speed-up at largest natural loss (×)", "speedupAtLargestNatural"],
    ["Mean best ratio", "bestRatio"],
  ];
  for (const r of rows) {
    for (const [metric, field] of metrics) {
      const e = r[field];
      if (!e) continue;
      values.push({
        mix: `${r.synthetic}-${Math.round(r.ratio * 100)}`,
        generator: r.generator,
        metric,
        v: e.value,
        lo: e.lo ?? e.value,
        hi: e.hi ?? e.value,
      });
    }
  }
  const order = [
    ...new Map(
      [...rows].sort(mixtureOrder).map((r) => [`${r.synthetic}-${Math.round(r.ratio * 100)}`, 1]),
    ).keys(),
  ];
  const y = { field: "mix", type: "nominal", title: "Style and ratio", sort: order };
  const color = { field: "generator", type: "nominal", title: "Generator", scale: colorScale(gens) };
  const spec = {
    data: { values },
    facet: { column: { field: "metric", type: "nominal", title: null, sort: metrics.map((m) => m[0]) } },
    spec: {
      width: 220,
      height: new Set(values.map((v) => v.mix)).size * (14 * gens.length + 12),
      encoding: { y, yOffset: { field: "generator" }, color },
      layer: [
        {
          mark: { type: "rule", strokeWidth: 2 },
          encoding: {
            x: { field: "lo", type: "quantitative", title: null, scale: { zero: false } },
            x2: { field: "hi" },
          },
        },
        {
          mark: { type: "point", filled: true, size: 50 },
          encoding: {
            x: { field: "v", type: "quantitative" },
            tooltip: [
              { field: "generator" },
              { field: "mix" },
              { field: "metric" },
              { field: "v", format: ".4f" },
              { field: "lo", format: ".4f" },
              { field: "hi", format: ".4f" },
            ],
          },
        },
      ],
    },
    resolve: { scale: { x: "independent" } },
    config: CONFIG,
  } as unknown as TopLevelSpec;
  return {
    id: "generators",
    title: "Generator comparison",
    caption: `Per synthetic style and ratio, one row per generator (${gens.join(", ")}): irreducible loss E, data speed-up at the loss of the largest natural run, and the mean best ratio over (N, D) cells, each with its 95% bootstrap interval (results/fits.json "generators" table).`,
    spec,
  };
}
