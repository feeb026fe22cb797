import type { TopLevelSpec } from "vega-lite";
import type { Estimate, MixtureFit } from "../../fit/results.js";
import { CHART_FONT } from "../render.js";

/** One figure of the report: a Vega-Lite spec plus the caption that states its data and fit. */
export interface Chart {
  /** File stem of the PNG and the HTML anchor, e.g. "data-scaling". */
  id: string;
  title: string;
  caption: string;
  spec: TopLevelSpec;
}

/** A chart function's answer: the chart, or why it cannot be drawn from the results at hand. */
export type ChartResult = Chart | { skipped: string };

export const isChart = (r: ChartResult): r is Chart => "spec" in r;

/** Shared look: a readable font size for print, no chart border, left-aligned titles. */
export const CONFIG = {
  font: CHART_FONT,
  view: { stroke: null },
  axis: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: "normal", gridColor: "#e6e6e6" },
  legend: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: "normal", labelLimit: 260 },
  header: { labelFontSize: 12, titleFontSize: 12, titleFontWeight: "normal" },
  title: { fontSize: 13, anchor: "start" },
} as const;

/** Dark grey for natural-only data, then Tableau 10: the same mixture gets the same colour in every chart. */
const PALETTE = [
  "#4e79a7",
  "#f28e2b",
  "#e15759",
  "#76b7b2",
  "#59a14f",
  "#edc948",
  "#b07aa1",
  "#ff9da7",
  "#9c755f",
];
/** Tableau 20 for studies with more series than Tableau 10 can tell apart (e.g. several generators). */
// biome-ignore format: a palette reads best on two lines
const PALETTE_20 = ["#4e79a7", "#a0cbe8", "#f28e2b", "#ffbe7d", "#59a14f", "#8cd17d", "#b6992d", "#f1ce63", "#499894", "#86bcb6",
  "#e15759", "#ff9d9a", "#79706e", "#bab0ac", "#d37295", "#fabfd2", "#b07aa1", "#d4a6c8", "#9d7660", "#d7b5a6"];
export const NATURAL_COLOR = "#333333";

export function colorScale(labels: string[], naturalLabel?: string): { domain: string[]; range: string[] } {
  const domain = [...labels];
  let k = 0;
  const others = domain.filter((l) => l !== naturalLabel).length;
  const pal = others > PALETTE.length ? PALETTE_20 : PALETTE;
  const range = domain.map((l) => (l === naturalLabel ? NATURAL_COLOR : pal[k++ % pal.length]));
  return { domain, range };
}

/** Mixture display label; generator appended only when the study compares several generators. */
export function mixtureLabel(
  m: { mixture: string; synthetic: string; generator: string },
  multiGen: boolean,
): string {
  const base = m.synthetic === "none" ? m.mixture || "natural" : m.mixture;
  return multiGen && m.generator && !base.includes(m.generator) ? `${base} (${m.generator})` : base;
}

/** Order mixtures natural first, then by style and ratio, so legends read as a progression. */
export function mixtureOrder(
  a: { synthetic: string; ratio: number },
  b: { synthetic: string; ratio: number },
) {
  const na = a.synthetic === "none" ? 0 : 1;
  const nb = b.synthetic === "none" ? 0 : 1;
  return na - nb || a.synthetic.localeCompare(b.synthetic) || a.ratio - b.ratio;
}

/** Compact SI (2e5 -> "200k", 3.2e6 -> "3.2M") for labels built on the server. */
export function si(x: number): string {
  const units: [number, string][] = [
    [1e12, "T"],
    [1e9, "G"],
    [1e6, "M"],
    [1e3, "k"],
  ];
  for (const [v, u] of units) if (Math.abs(x) >= v) return `${trim(x / v)}${u}`;
  return trim(x);
}

function trim(x: number): string {
  return Number(x.toPrecision(3)).toString();
}

export const fmt = (x: number | null | undefined, digits = 3): string =>
  x === null || x === undefined || !Number.isFinite(x) ? "–" : x.toFixed(digits);

/** "value [lo, hi]"; "value [—]" without an interval; "?" appended when the value is not identified. */
export const fmtEst = (e: Estimate | null | undefined, digits = 3): string =>
  !e
    ? "–"
    : `${fmt(e.value, digits)} ${e.lo !== null && e.hi !== null ? `[${fmt(e.lo, digits)}, ${fmt(e.hi, digits)}]` : "[—]"}${e.identified === false ? "?" : ""}`;

/** A fit whose law is invalid or unsupported is drawn over its data only, never extrapolated. */
export function mayExtrapolate(fit: MixtureFit): boolean {
  return !fit.warnings.some((w) => w.code === "INVALID_LAW" || w.code === "UNDERDETERMINED");
}

/** Evaluate a built-in fitted law at (N, D); fixed coordinates of per-N / per-D fits are implied. */
export function evalFit(fit: MixtureFit, N: number | null, D: number | null): number {
  const p = (k: string) => fit.params[k]?.value;
  let L = p("E") ?? Number.NaN;
  if (p("A") !== undefined && N !== null) L += p("A")! / N ** p("alpha")!;
  if (p("B") !== undefined && D !== null) L += p("B")! / D ** p("beta")!;
  return L;
}

/** Log-spaced grid from lo to hi (inclusive). */
export function logGrid(lo: number, hi: number, n = 40): number[] {
  const a = Math.log(lo);
  const b = Math.log(hi);
  return Array.from({ length: n }, (_, i) => Math.exp(a + ((b - a) * i) / (n - 1)));
}

/** How far past the largest observed coordinate the fitted curves are drawn (dashed). */
export const EXTRAPOLATE = 4;
