import type { TopLevelSpec } from "vega-lite";
import type { UnigramFile } from "../../analyze/results.js";
import { type ChartResult, CONFIG, colorScale } from "./common.js";

/** Chart 8: KL(test || source) and test-token coverage of each training source, per test domain. */
export function unigramChart(file: UnigramFile | undefined): ChartResult {
  if (!file || file.comparisons.length === 0)
    return { skipped: "no unigram analysis (results/unigram.json)" };
  const sources = [...new Set(file.comparisons.map((c) => c.source))];
  const tests = [...new Set(file.comparisons.map((c) => c.test))];
  const values = file.comparisons.flatMap((c) => [
    { source: c.source, test: c.test, metric: "KL(test ‖ source), nats", v: c.klTestSource },
    { source: c.source, test: c.test, metric: "Test tokens covered by source, %", v: 100 * c.tokenCoverage },
    { source: c.source, test: c.test, metric: "Test types covered by source, %", v: 100 * c.typeCoverage },
  ]);
  const metrics = [...new Set(values.map((v) => v.metric))];
  const spec = {
    data: { values },
    facet: { column: { field: "metric", type: "nominal", title: null, sort: metrics } },
    spec: {
      width: 200,
      height: sources.length * (tests.length * 9 + 8),
      mark: { type: "bar" },
      encoding: {
        y: { field: "source", type: "nominal", sort: sources, title: "Training source" },
        yOffset: { field: "test", sort: tests },
        x: { field: "v", type: "quantitative", title: null, axis: { format: "~r" } },
        color: { field: "test", type: "nominal", title: "Test set", sort: tests, scale: colorScale(tests) },
        tooltip: [{ field: "source" }, { field: "test" }, { field: "metric" }, { field: "v", format: ".4f" }],
      },
    },
    resolve: { scale: { x: "independent" } },
    config: CONFIG,
  } as unknown as TopLevelSpec;
  return {
    id: "unigram",
    title: "Unigram divergence and coverage",
    caption: `Token unigram distributions (study tokenizer, vocabulary ${file.vocabSize}, add-k smoothing k = ${file.smoothingK}) of ${sources.length} training sources against ${tests.length} test sets (results/unigram.json). Left: KL(test ‖ source) in nats (lower = the source covers the test distribution better); middle and right: share of test tokens / distinct test types that occur in the source.`,
    spec,
  };
}
