import type { TopLevelSpec } from "vega-lite";
import type { RunCurve } from "../inputs.js";
import { type ChartResult, CONFIG, colorScale, si } from "./common.js";

/**
 * Per-run loss curves: training loss (thin) and test loss (mean over domains, points + line) against
 * tokens seen, one panel per mixture, one colour per model size N, from each run's metrics.jsonl.
 */
export function lossCurvesChart(curves: RunCurve[] | undefined): ChartResult {
  const withData = (curves ?? []).filter((c) => c.points.length > 0);
  if (withData.length === 0) return { skipped: "no runs/<id>/metrics.jsonl to draw loss curves from" };
  const sizes = [...new Set(withData.map((c) => c.N))].sort((a, b) => a - b).map((n) => `N = ${si(n)}`);
  const values = withData.flatMap((c) =>
    c.points.map((p) => ({
      run: c.runId,
      mixture: c.mixture,
      size: `N = ${si(c.N)}`,
      budget: si(c.D),
      tokens: p.tokens,
      loss: p.loss,
      kind: p.kind,
    })),
  );
  const mixtures = [...new Set(withData.map((c) => c.mixture))];
  const spec = {
    data: { values },
    facet: { field: "mixture", type: "nominal", sort: mixtures, title: null },
    columns: Math.min(3, mixtures.length),
    spec: {
      width: 230,
      height: 170,
      encoding: {
        x: {
          field: "tokens",
          type: "quantitative",
          title: "Tokens seen",
          scale: { type: "log" },
          axis: { format: "~s" },
        },
        y: { field: "loss", type: "quantitative", title: "Loss (nats/token)", scale: { zero: false } },
        color: { field: "size", type: "nominal", title: "Model size", scale: colorScale(sizes), sort: sizes },
        detail: { field: "run" },
        strokeDash: {
          field: "kind",
          type: "nominal",
          title: "Loss",
          scale: {
            domain: ["train", "test"],
            range: [
              [2, 2],
              [1, 0],
            ],
          },
        },
        tooltip: [
          { field: "run" },
          { field: "kind" },
          { field: "tokens", format: "~s" },
          { field: "loss", format: ".4f" },
        ],
      },
      mark: { type: "line", strokeWidth: 1.2, clip: true },
    },
    resolve: { scale: { y: "independent" } },
    config: CONFIG,
  } as unknown as TopLevelSpec;
  return {
    id: "loss-curves",
    title: "Loss curves of every run",
    caption: `Training loss (dashed, per logged step) and test loss (solid, mean over test domains at each evaluation) against tokens seen, from runs/<id>/metrics.jsonl (${withData.length} runs). A test curve that turns up while training loss falls marks over-fitting, e.g. on repeated data.`,
    spec,
  };
}
