import type { TopLevelSpec } from "vega-lite";
import type { FitsFile, MixtureFit } from "../../fit/results.js";
import type { RunResultRow } from "../../sweep/results.js";
import { linearTicks, logDomain, logTicks } from "./axes.js";
import {
  type ChartResult,
  CONFIG,
  colorScale,
  EXTRAPOLATE,
  evalFit,
  fmt,
  logGrid,
  mayExtrapolate,
  mixtureLabel,
  mixtureOrder,
  si,
} from "./common.js";

/** Which coordinate is on the x axis: data scaling (D, panels per N) or model scaling (N, panels per D). */
type Axis = "D" | "N";

const LAWS = { joint: "L(N, D) = A/N^α + B/D^β + E" };

const AXIS = {
  D: { name: "Training tokens D", form: "data", law: "L(D) = B/D^β + E", panel: "N" as Axis },
  N: { name: "Non-embedding parameters N", form: "model", law: "L(N) = A/N^α + E", panel: "D" as Axis },
};

export function multiGenerator(runs: { generator: string; synthetic: string }[] | undefined): boolean {
  return new Set((runs ?? []).filter((r) => r.synthetic !== "none").map((r) => r.generator)).size > 1;
}

/** Rows of the fitted domain (default "all" = mean over test domains). */
export function domainRows(runs: RunResultRow[], domain: string): RunResultRow[] {
  return runs.filter((r) => r.domain === domain);
}

const coord = (r: RunResultRow, a: Axis) => (a === "D" ? r.tokens : r.nonEmbeddingParams);

/**
 * The fit drawn in a panel: the per-panel fit of the chart's own form (data fit at this N, model fit at
 * this D), else the joint fit evaluated at the panel's coordinate, else a pooled fit of the form.
 */
function fitFor(fits: MixtureFit[], key: string, axis: Axis, panel: number): [MixtureFit, string] | null {
  const own = fits.filter((f) => f.key === key && f.form === AXIS[axis].form);
  const perPanel = own.find((f) => (axis === "D" ? f.fixedN : f.fixedD) === panel);
  if (perPanel) return [perPanel, `${AXIS[axis].form} fit at this ${AXIS[axis].panel}`];
  const joint = fits.find((f) => f.key === key && f.form === "joint");
  if (joint) return [joint, "joint fit"];
  const pooled = own.find((f) => f.fixedN === null && f.fixedD === null);
  return pooled ? [pooled, `pooled ${AXIS[axis].form} fit`] : null;
}

type Value = Record<string, unknown>;
const mixKey = (r: RunResultRow) => `${r.synthetic}:${r.ratio}:${r.generator}`;

/** One point per run, in its panel. */
function runValues(rows: RunResultRow[], axis: Axis, multiGen: boolean): Value[] {
  const panelAxis = AXIS[axis].panel;
  return rows.map((r) => ({
    kind: "run",
    series: mixtureLabel(r, multiGen),
    x: coord(r, axis),
    loss: r.loss,
    ...panel(panelAxis, coord(r, panelAxis)),
    run: r.runId,
  }));
}

interface CurveContext {
  axis: Axis;
  rows: RunResultRow[];
  fits: MixtureFit[];
  multiGen: boolean;
  /** Largest x of any run: where extrapolated curves end (times EXTRAPOLATE). */
  xMax: number;
}

/** The fitted curve of one mixture in one panel (solid over its data, dashed beyond); which law drew it. */
function curveValues(c: CurveContext, m: RunResultRow, p: number): { values: Value[]; used?: string } {
  const found = fitFor(c.fits, mixKey(m), c.axis, p);
  if (!found) return { values: [] };
  const [fit, how] = found;
  const panelAxis = AXIS[c.axis].panel;
  const used = `${how}, ${fit.form === "joint" ? LAWS.joint : AXIS[c.axis].law}`;
  const pts = c.rows
    .filter((r) => mixKey(r) === mixKey(m) && coord(r, panelAxis) === p)
    .map((r) => coord(r, c.axis));
  if (pts.length === 0) return { values: [], used };
  const lo = Math.min(...pts);
  const hi = Math.max(...pts);
  const extend = mayExtrapolate(fit);
  const values: Value[] = [];
  for (const x of logGrid(lo, extend ? c.xMax * EXTRAPOLATE : hi, 48).concat([hi])) {
    const loss = c.axis === "D" ? evalFit(fit, p, x) : evalFit(fit, x, p);
    if (!Number.isFinite(loss)) continue;
    const base = { kind: "fit", series: mixtureLabel(m, c.multiGen), x, loss, ...panel(panelAxis, p) };
    if (x <= hi * 1.0001) values.push({ ...base, part: "fitted range" });
    if (extend && x >= hi * 0.9999) values.push({ ...base, part: "extrapolation" });
  }
  return { values, used };
}

const SCALING_LAYERS = (axis: Axis) => [
  {
    transform: [{ filter: "datum.kind === 'fit'" }],
    mark: { type: "line", strokeWidth: 1.6, clip: true },
    encoding: {
      strokeDash: {
        field: "part",
        type: "nominal",
        title: "Curve",
        scale: {
          domain: ["fitted range", "extrapolation"],
          range: [
            [1, 0],
            [5, 3],
          ],
        },
      },
    },
  },
  {
    transform: [{ filter: "datum.kind === 'run'" }],
    mark: { type: "point", filled: true, size: 36, opacity: 0.9 },
    encoding: {
      tooltip: [
        { field: "run" },
        { field: "series", title: "mixture" },
        { field: "x", title: axis, format: "~s" },
        { field: "loss", format: ".4f" },
      ],
    },
  },
];

function scalingEncoding(
  axis: Axis,
  xDomain: [number, number],
  yDomain: [number, number],
  labels: string[],
  nice: string | undefined,
) {
  const [yLo, yHi] = yDomain;
  return {
    x: {
      field: "x",
      type: "quantitative",
      title: `${AXIS[axis].name} (log scale)`,
      scale: { type: "log", domain: xDomain, nice: false },
      axis: { values: logTicks(xDomain[0], xDomain[1]), format: "~s", labelOverlap: "greedy" },
    },
    y: {
      field: "loss",
      type: "quantitative",
      title: "Test loss (nats/token, log scale)",
      scale: { type: "log", domain: [yLo, yHi], nice: false },
      axis: { values: linearTicks(yLo, yHi), format: ".2~f" },
    },
    color: {
      field: "series",
      type: "nominal",
      title: "Mixture",
      scale: colorScale(labels, nice),
      sort: labels,
    },
  };
}

/** Charts 1 and 2: loss against D (or N) per mixture, log-log, with fitted curves, dashed beyond the data. */
export function scalingChart(
  axis: Axis,
  runs: RunResultRow[] | undefined,
  fitsFile: FitsFile | undefined,
): ChartResult {
  const domain = fitsFile?.settings.domain ?? "all";
  const rows = domainRows(runs ?? [], domain);
  if (rows.length === 0)
    return { skipped: `no sweep results for test domain "${domain}" (results/runs.json)` };
  const panelAxis = AXIS[axis].panel;
  const multiGen = multiGenerator(rows);
  const mixes = [...new Map(rows.map((r) => [mixKey(r), r])).values()].sort(mixtureOrder);
  const labels = mixes.map((m) => mixtureLabel(m, multiGen));
  const panels = [...new Set(rows.map((r) => coord(r, panelAxis)))].sort((a, b) => a - b);
  const xs = rows.map((r) => coord(r, axis));
  const xMax = Math.max(...xs);
  const values = runValues(rows, axis, multiGen);
  const used = new Set<string>();
  const c: CurveContext = { axis, rows, fits: fitsFile?.fits ?? [], multiGen, xMax };
  for (const m of mixes) {
    for (const p of panels) {
      const curve = curveValues(c, m, p);
      if (curve.used) used.add(curve.used);
      values.push(...curve.values);
    }
  }
  const yDomain = logDomain(
    values.map((v) => v.loss as number),
    1.03,
  );
  const xDomain: [number, number] = [Math.min(...xs) / 1.15, xMax * EXTRAPOLATE * 1.05];
  const faceted = panels.length > 1;
  const encoding = scalingEncoding(axis, xDomain, yDomain, labels, naturalLabel(mixes, multiGen));
  const inner = {
    width: faceted ? 250 : 420,
    height: faceted ? 210 : 300,
    encoding,
    layer: SCALING_LAYERS(axis),
  };
  const spec = (faceted
    ? {
        data: { values },
        facet: { field: "panel", type: "ordinal", sort: { field: "panelValue" }, title: null },
        columns: panels.length <= 3 ? panels.length : 2,
        spec: inner,
        config: CONFIG,
      }
    : { data: { values }, ...inner, config: CONFIG }) as unknown as TopLevelSpec;
  const fitText =
    used.size === 0
      ? "No fitted curves: results/fits.json is missing or has no fit for these mixtures."
      : `Lines: ${[...used].join("; ")} (Huber δ = ${fitsFile?.settings.huberDelta}, from results/fits.json); solid over the fitted range, dashed extrapolated to ${EXTRAPOLATE}× the largest ${axis}; laws flagged INVALID_LAW or UNDERDETERMINED are drawn over their data only.`;
  const other = panelAxis === "N" ? "model size N" : "token budget D";
  return {
    id: axis === "D" ? "data-scaling" : "model-scaling",
    title: axis === "D" ? "Data scaling: loss vs training tokens" : "Model scaling: loss vs parameters",
    caption: `Points: final test loss (domain "${domain}") of each sweep run (results/runs.json, ${rows.length} runs), ${faceted ? `one panel per ${other}` : `at ${other} ${si(panels[0])}`}. ${fitText}`,
    spec,
  };
}

function panel(axis: Axis, v: number) {
  return { panel: axis === "N" ? `N = ${si(v)} params` : `D = ${si(v)} tokens`, panelValue: v };
}

function naturalLabel(mixes: RunResultRow[], multiGen: boolean): string | undefined {
  const n = mixes.find((m) => m.synthetic === "none");
  return n ? mixtureLabel(n, multiGen) : undefined;
}

/**
 * Chart 3: irreducible loss E per mixture with 95% bootstrap intervals. Prefers the joint fit (E is the
 * loss floor at infinite N and D); otherwise the data fit at the largest N, else the model fit at the largest D.
 */
export function irreducibleChart(fitsFile: FitsFile | undefined): ChartResult {
  const picked = pickEFits(fitsFile);
  if (!picked) return { skipped: "no scaling-law fits with an irreducible-loss term (results/fits.json)" };
  const { fits, source } = picked;
  const multiGen = new Set(fits.filter((f) => f.synthetic !== "none").map((f) => f.generator)).size > 1;
  const sorted = [...fits].sort(mixtureOrder);
  const labels = sorted.map((f) => mixtureLabel(f, multiGen));
  const natural = sorted.find((f) => f.synthetic === "none");
  const values = sorted.map((f, i) => ({
    series: labels[i],
    E: f.params.E.value,
    lo: f.params.E.lo ?? f.params.E.value,
    hi: f.params.E.hi ?? f.params.E.value,
    se: f.params.E.se,
    label: fmt(f.params.E.value),
    status: f.params.E.identified && f.warnings.length === 0 ? "identified" : "not identified",
    warnings: f.warnings.map((w) => w.code).join(", ") || "none",
  }));
  const y = { field: "series", type: "nominal", sort: labels, title: "Mixture" };
  const color = {
    field: "series",
    type: "nominal",
    legend: null,
    scale: colorScale(labels, natural ? mixtureLabel(natural, multiGen) : undefined),
  };
  const layer: unknown[] = [
    {
      mark: { type: "rule", strokeWidth: 2 },
      encoding: { y, color, x: { field: "lo", type: "quantitative" }, x2: { field: "hi" } },
    },
    {
      mark: { type: "point", filled: true, size: 70 },
      encoding: {
        y,
        color,
        shape: {
          field: "status",
          type: "nominal",
          title: "E",
          scale: { domain: ["identified", "not identified"], range: ["circle", "cross"] },
        },
        tooltip: [
          { field: "series", title: "mixture" },
          { field: "status" },
          { field: "warnings" },
          { field: "E", format: ".4f" },
          { field: "lo", title: "95% lo", format: ".4f" },
          { field: "hi", title: "95% hi", format: ".4f" },
        ],
      },
    },
  ];
  if (natural) {
    layer.unshift({
      data: { values: [{ E: natural.params.E.value }] },
      mark: { type: "rule", strokeDash: [4, 3], color: "#888" },
      encoding: { x: { field: "E", type: "quantitative" } },
    });
  }
  const all = values.flatMap((v) => [v.lo, v.hi]);
  const pad = (Math.max(...all) - Math.min(...all)) * 0.1 || 0.05;
  const spec = {
    data: { values },
    width: 420,
    height: Math.max(120, 26 * values.length),
    encoding: {
      x: {
        field: "E",
        type: "quantitative",
        title: "Irreducible loss E (nats/token)",
        scale: { zero: false, domain: [Math.min(...all) - pad, Math.max(...all) + pad], nice: false },
        axis: { format: ".2f", tickCount: 6, labelOverlap: "greedy" },
      },
    },
    layer,
    config: CONFIG,
  } as unknown as TopLevelSpec;
  const boot = fitsFile!.settings.bootstrap;
  return {
    id: "irreducible-loss",
    title: "Irreducible loss E per mixture",
    caption: `E from the ${source} (results/fits.json); bars: 95% intervals (bootstrap over runs, ${boot} resamples${boot === 0 ? ", i.e. none" : ""}, united with the profile-likelihood interval). Crosses: E not identified on this grid (at its bound, spanning most of its feasible range, or a fit with warnings; see the table) — no ordering can be read from them. ${natural ? "Dashed line: natural-only E. " : ""}Lower is better.`,
    spec,
  };
}

/** The fits that define "E per mixture" and a phrase saying which they are. */
export function pickEFits(fitsFile: FitsFile | undefined): { fits: MixtureFit[]; source: string } | null {
  const withE = (fitsFile?.fits ?? []).filter((f) => f.params.E && Number.isFinite(f.params.E.value));
  const joint = withE.filter((f) => f.form === "joint" && f.fixedN === null && f.fixedD === null);
  if (joint.length > 0) return { fits: joint, source: "joint fit L(N, D) = A/N^α + B/D^β + E" };
  const largest = (form: string, field: "fixedN" | "fixedD") => {
    const own = withE.filter((f) => f.form === form);
    if (own.length === 0) return null;
    const byKey = new Map<string, MixtureFit>();
    for (const f of own) {
      const cur = byKey.get(f.key);
      if (!cur || (f[field] ?? Number.POSITIVE_INFINITY) > (cur[field] ?? Number.POSITIVE_INFINITY))
        byKey.set(f.key, f);
    }
    return [...byKey.values()];
  };
  const data = largest("data", "fixedN");
  if (data)
    return {
      fits: data,
      source: "data fit L(D) = B/D^β + E at the largest model size (E includes that size's A/N^α)",
    };
  const model = largest("model", "fixedD");
  if (model) return { fits: model, source: "model fit L(N) = A/N^α + E at the largest token budget" };
  return null;
}
