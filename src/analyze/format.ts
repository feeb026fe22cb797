import type { UnigramFile } from "./results.js";

function fmtN(x: number): string {
  return Number.isFinite(x) ? x.toFixed(4) : String(x);
}

function f(x: number, d = 4): string {
  return Number.isFinite(x) ? x.toFixed(d) : String(x);
}

/** Readable summary of a unigram analysis: one line per (source, test) and the top blind spots. */
export function formatUnigramSummary(u: UnigramFile, blindSpots = 5): string {
  const out = [
    `unigram analysis: vocabulary ${u.vocabSize}, add-k smoothing k = ${u.smoothingK}, KL/JS in nats, every source subsampled to ${u.equalTokens} tokens (seed ${u.seed})`,
    `noise floor (KL between two halves of the test set at that size): ${u.noiseFloors.map((f) => `${f.test} ${fmtN(f.kl)}`).join(", ")}; differences below it are sampling noise`,
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
  if (u.lossSplits?.length) {
    out.push(
      "",
      "per-token test loss on blind-spot tokens vs the rest (the run's own mixture's blind spots):",
    );
    out.push(["run", "source", "test", "blind-spot loss (tokens)", "rest loss (tokens)"].join("\t"));
    for (const s of u.lossSplits) {
      out.push(
        [
          s.runId,
          s.source,
          s.test,
          `${f(s.blindSpot.meanLoss, 3)} (${s.blindSpot.tokens})`,
          `${f(s.rest.meanLoss, 3)} (${s.rest.tokens})`,
        ].join("\t"),
      );
    }
  }
  return out.join("\n");
}
