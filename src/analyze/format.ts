import type { UnigramFile } from "./results.js";

function f(x: number, d = 4): string {
  return Number.isFinite(x) ? x.toFixed(d) : String(x);
}

/** Readable summary of a unigram analysis: one line per (source, test) and the top blind spots. */
export function formatUnigramSummary(u: UnigramFile, blindSpots = 5): string {
  const out = [
    `unigram analysis: vocabulary ${u.vocabSize}, add-k smoothing k = ${u.smoothingK}, KL/JS in nats`,
    "",
    [
      "source",
      "test",
      "KL(test||src)",
      "KL(src||test)",
      "JS",
      "token cov",
      "type cov",
      "top blind spots",
    ].join("\t"),
  ];
  for (const c of u.comparisons) {
    const spots = c.blindSpots
      .slice(0, blindSpots)
      .map((b) => (b.token !== null ? JSON.stringify(b.token) : `#${b.id}`))
      .join(" ");
    out.push(
      [
        c.source,
        c.test,
        f(c.klTestSource),
        f(c.klSourceTest),
        f(c.js),
        f(c.tokenCoverage, 3),
        f(c.typeCoverage, 3),
        spots,
      ].join("\t"),
    );
  }
  return out.join("\n");
}
