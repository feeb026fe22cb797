import type { UnigramFile } from "../analyze/results.js";
import type { FitsFile, SpeedupsFile } from "../fit/results.js";
import { speedupStatus } from "../fit/speedup.js";
import type { RunResultRow } from "../sweep/results.js";
import { fmt, fmtEst, mixtureLabel, mixtureOrder, si } from "./charts/common.js";
import { multiGenerator, pickEFits } from "./charts/scaling.js";

/** An HTML table with a caption that states where its numbers come from. */
export interface Table {
  id: string;
  title: string;
  caption: string;
  head: string[];
  rows: Cell[][];
  /** A file written next to index.html with the table's full data (e.g. runs.csv). */
  download?: { file: string; label: string; content: string };
}
export type Cell = string | { text: string; best?: boolean; title?: string };

export function escapeHtml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!,
  );
}

export function tableHtml(t: Table): string {
  const cell = (c: Cell, tag: string) => {
    const o = typeof c === "string" ? { text: c } : c;
    const attrs = `${o.best ? ' class="best"' : ""}${o.title ? ` title="${escapeHtml(o.title)}"` : ""}`;
    return `<${tag}${attrs}>${escapeHtml(o.text)}</${tag}>`;
  };
  return [
    `<table id="table-${escapeHtml(t.id)}">`,
    `<caption>${escapeHtml(t.caption)}${t.download ? ` <a href="${escapeHtml(t.download.file)}" download>${escapeHtml(t.download.label)}</a>` : ""}</caption>`,
    `<thead><tr>${t.head.map((h) => cell(h, "th")).join("")}</tr></thead>`,
    `<tbody>${t.rows.map((r) => `<tr>${r.map((c, i) => cell(c, i === 0 ? "th" : "td")).join("")}</tr>`).join("\n")}</tbody>`,
    "</table>",
  ].join("\n");
}

/** The largest (N, D) cell present in the runs, and the mean loss per (mixture, domain) there. */
export function largestCell(runs: RunResultRow[]) {
  const N = Math.max(...runs.map((r) => r.nonEmbeddingParams));
  const D = Math.max(...runs.filter((r) => r.nonEmbeddingParams === N).map((r) => r.tokens));
  const at = runs.filter((r) => r.nonEmbeddingParams === N && r.tokens === D);
  const multiGen = multiGenerator(runs);
  const mixes = [...new Map(at.map((r) => [`${r.synthetic}:${r.ratio}:${r.generator}`, r])).values()].sort(
    mixtureOrder,
  );
  const domains = [...new Set(at.map((r) => r.domain))].sort((a, b) =>
    a === "all" ? 1 : b === "all" ? -1 : a.localeCompare(b),
  );
  const mean = (m: RunResultRow, d: string) => {
    const xs = at
      .filter((r) => r.mixture === m.mixture && r.generator === m.generator && r.domain === d)
      .map((r) => r.loss);
    return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN;
  };
  return {
    N,
    D,
    domains,
    rows: mixes.map((m) => ({ label: mixtureLabel(m, multiGen), loss: domains.map((d) => mean(m, d)) })),
  };
}

/** Table 7: per-domain test loss at the largest (N, D), best per domain marked. */
export function domainLossTable(runs: RunResultRow[] | undefined): Table | { skipped: string } {
  if (!runs || runs.length === 0) return { skipped: "no sweep results (results/runs.json)" };
  const cell = largestCell(runs);
  const best = cell.domains.map((_, j) =>
    Math.min(...cell.rows.map((r) => r.loss[j]).filter(Number.isFinite)),
  );
  return {
    id: "domain-loss",
    title: "Test loss per domain",
    caption: `Final test loss (nats/token, mean over seeds) of each mixture on each held-out domain at the largest model and budget (N = ${si(cell.N)} params, D = ${si(cell.D)} tokens), from results/runs.json; "all" is the mean over domains. Bold: lowest in the column.`,
    head: ["Mixture", ...cell.domains],
    rows: cell.rows.map((r) => [r.label, ...r.loss.map((l, j) => ({ text: fmt(l), best: l === best[j] }))]),
  };
}

/** Parameters of the fits behind the E chart, with quality measures. */
export function fitTable(fits: FitsFile | undefined): Table | { skipped: string } {
  const picked = pickEFits(fits);
  if (!picked) return { skipped: "no fits (results/fits.json)" };
  const multiGen =
    new Set(picked.fits.filter((f) => f.synthetic !== "none").map((f) => f.generator)).size > 1;
  const names = ["A", "alpha", "B", "beta", "E"].filter((k) => picked.fits.some((f) => f.params[k]));
  const greek: Record<string, string> = { alpha: "α", beta: "β" };
  return {
    id: "fit-params",
    title: "Fitted parameters",
    caption: `Parameters of the ${picked.source} per mixture; E with its 95% bootstrap interval, other parameters' intervals on hover (results/fits.json, ${fits!.settings.bootstrap} resamples, seed ${fits!.settings.seed}); R² in loss space, RMSE and leave-one-out RMSE of log-residuals, and the relative error when the largest D (N) is held out and predicted.`,
    head: [
      "Mixture",
      ...names.map((n) => (n === "E" ? "E [95% CI]" : (greek[n] ?? n))),
      "points",
      "R²",
      "RMSE log",
      "LOO RMSE",
      "hold-out error",
      "dof",
      "warnings",
    ],
    rows: [...picked.fits].sort(mixtureOrder).map((f) => [
      mixtureLabel(f, multiGen),
      ...names.map((n) => {
        const p = f.params[n];
        const digits = n === "A" || n === "B" ? 1 : 3;
        // E is the headline number: show its interval; the others carry it on hover.
        if (n === "E" && p) return fmtEst(p, 3);
        return {
          text: p ? fmt(p.value, digits) : "–",
          title: p ? `95% interval ${fmtEst(p, 4)}` : undefined,
        };
      }),
      String(f.points),
      fmt(f.quality.r2, 4),
      fmt(f.quality.rmseLog, 4),
      fmt(f.quality.looRmseLog, 4),
      f.quality.holdout ? `${(f.quality.holdout.relError * 100).toFixed(2)}%` : "–",
      String(f.dof),
      // Next to the numbers they qualify: codes in the cell, the full message on hover.
      {
        text: f.warnings.map((w) => w.code).join(", ") || "–",
        title: f.warnings.map((w) => w.message).join("\n") || undefined,
      },
    ]),
  };
}

/** CSV of every run (domain "all"), with the largest epochs of any source. */
export function runsCsv(rows: RunResultRow[]): string {
  const head = [
    "runId",
    "mixture",
    "synthetic",
    "ratio",
    "generator",
    "seed",
    "N",
    "D",
    "maxEpochs",
    "loss",
    "flops",
    "wallSec",
  ];
  const cell = (v: unknown) => {
    const t = String(v ?? "");
    return /[",\n\r]/.test(t) ? `"${t.replaceAll('"', '""')}"` : t;
  };
  const lines = [head.join(",")];
  for (const r of rows) {
    const ep = r.epochs ? Math.max(...Object.values(r.epochs)) : "";
    lines.push(
      [
        r.runId,
        r.mixture,
        r.synthetic,
        r.ratio,
        r.generator,
        r.seed,
        r.nonEmbeddingParams,
        r.tokens,
        ep,
        r.loss,
        r.flops,
        r.wallSec,
      ]
        .map(cell)
        .join(","),
    );
  }
  return `${lines.join("\n")}\n`;
}

/** Table of all runs: N, D, mixture, epochs, loss, FLOPs, wall time, with a CSV download. */
export function runsTable(runs: RunResultRow[] | undefined): Table | { skipped: string } {
  const all = (runs ?? []).filter((r) => r.domain === "all");
  if (all.length === 0) return { skipped: "no sweep results (results/runs.json)" };
  const sorted = [...all].sort(
    (a, b) =>
      mixtureOrder(a, b) ||
      a.nonEmbeddingParams - b.nonEmbeddingParams ||
      a.tokens - b.tokens ||
      a.seed - b.seed,
  );
  const multiGen = multiGenerator(all);
  return {
    id: "runs",
    title: "All runs",
    caption: `Every finished run (results/runs.json, test loss over all domains). Epochs: the most passes over any source of the run's mixture (from its manifest; > 1 means repeated data).`,
    head: ["Run", "Mixture", "seed", "N", "D", "epochs", "loss", "FLOPs", "wall time"],
    rows: sorted.map((r) => {
      const ep = r.epochs ? Math.max(...Object.values(r.epochs)) : null;
      return [
        r.runId,
        mixtureLabel(r, multiGen),
        String(r.seed),
        si(r.nonEmbeddingParams),
        si(r.tokens),
        ep === null
          ? "–"
          : { text: ep.toPrecision(3), best: ep > 1, title: r.epochs ? JSON.stringify(r.epochs) : undefined },
        fmt(r.loss, 4),
        r.flops.toExponential(2),
        `${r.wallSec.toFixed(0)} s`,
      ];
    }),
    download: { file: "runs.csv", label: "Download CSV", content: runsCsv(sorted) },
  };
}

/** Speed-ups at the loss of the largest natural run, per mixture and N. */
export function speedupTable(file: SpeedupsFile | undefined): Table | { skipped: string } {
  const rows = (file?.entries ?? []).filter((e) => e.atLargestNatural || e.bound);
  if (rows.length === 0)
    return { skipped: "no speed-up at the largest natural loss (results/speedups.json)" };
  const multiGen = new Set(rows.map((e) => e.generator)).size > 1;
  return {
    id: "speedup",
    title: "Speed-up at the largest natural run",
    caption:
      "L*: test loss of the natural-only run with the most tokens at that N; D_nat and D_mix: tokens each needs to reach L* by the fitted laws; speed-up = D_nat / D_mix with 95% bootstrap interval (results/speedups.json).",
    head: ["Mixture", "N", "L*", "D_nat", "D_mix", "speed-up [95% CI]", "status"],
    rows: [...rows]
      .sort((a, b) => mixtureOrder(a, b) || (a.N ?? 0) - (b.N ?? 0))
      .map((e) => {
        const a = e.atLargestNatural;
        return [
          mixtureLabel(e, multiGen),
          e.N === null ? "all" : si(e.N),
          fmt(a?.targetLoss ?? e.bound!.targetLoss),
          a ? si(a.dNatural) : "–",
          a ? si(a.dMix) : "never",
          a ? fmtEst(a.speedup, 2) : "–",
          {
            text: speedupStatus(e),
            title: e.warnings.map((w) => `${w.code}: ${w.message}`).join("\n") || undefined,
          },
        ];
      }),
  };
}

/** Unigram summary: KL both ways, JS and coverage of each (source, test) pair. */
export function unigramTable(file: UnigramFile | undefined): Table | { skipped: string } {
  if (!file || file.comparisons.length === 0)
    return { skipped: "no unigram analysis (results/unigram.json)" };
  return {
    id: "unigram",
    title: "Unigram divergences",
    caption: `Per training source and test set (results/unigram.json): KL both ways and Jensen–Shannon divergence in nats, token and type coverage, and the share of test tokens that are among the top ${file.topK} blind spots.`,
    head: [
      "Source",
      "Test",
      "KL(test‖src)",
      "KL(src‖test)",
      "JS",
      "token cov.",
      "type cov.",
      "blind-spot share",
    ],
    rows: file.comparisons.map((c) => [
      c.source,
      c.test,
      fmt(c.klTestSource, 4),
      fmt(c.klSourceTest, 4),
      fmt(c.js, 4),
      pct(c.tokenCoverage),
      pct(c.typeCoverage),
      pct(c.blindSpotTokenShare),
    ]),
  };
}

/** Top blind-spot tokens: per test set, a column per source, ranked by contribution to KL(test ‖ source). */
export function blindSpotTables(file: UnigramFile | undefined, top = 8): Table[] {
  if (!file) return [];
  const tests = [...new Set(file.comparisons.map((c) => c.test))];
  return tests.map((test) => {
    const comps = file.comparisons.filter((c) => c.test === test);
    const depth = Math.min(top, Math.max(0, ...comps.map((c) => c.blindSpots.length)));
    return {
      id: `blind-spots-${test}`,
      title: `Blind spots for test set "${test}"`,
      caption: `Tokens frequent in test set "${test}" but rare in each source, ranked by their term p_test·log(p_test/p_source) of KL(test ‖ source) (results/unigram.json); cell: token (its contribution in nats; hover for counts and probabilities); ␣ marks a space, ↵ a newline.`,
      head: ["Rank", ...comps.map((c) => c.source)],
      rows: Array.from({ length: depth }, (_, k) => [
        String(k + 1),
        ...comps.map((c) => {
          const b = c.blindSpots[k];
          if (!b) return "";
          return {
            text: `${showToken(b.token, b.id)} (${fmt(b.contribution, 4)})`,
            title: `id ${b.id}: ${b.testCount} in test, ${b.sourceCount} in source; p_test ${b.pTest.toExponential(2)}, p_source ${b.pSource.toExponential(2)}`,
          };
        }),
      ]),
    };
  });
}

/** Per-token loss of trained models on blind-spot tokens vs the rest (present when the analysis had models). */
export function lossSplitTable(file: UnigramFile | undefined): Table | null {
  const splits = file?.lossSplits ?? [];
  if (splits.length === 0) return null;
  return {
    id: "loss-split",
    title: "Loss on blind-spot tokens",
    caption:
      "Mean per-token test loss (nats) of a trained model on the test tokens that are blind spots of its training source vs on all other test tokens (results/unigram.json lossSplits). A large gap means the blind spots explain part of the loss.",
    head: ["Run", "Source", "Test", "blind-spot tokens", "loss on blind spots", "loss on the rest", "gap"],
    rows: splits.map((s) => [
      s.runId,
      s.source,
      s.test,
      String(s.blindSpot.tokens),
      fmt(s.blindSpot.meanLoss),
      fmt(s.rest.meanLoss),
      fmt(s.blindSpot.meanLoss - s.rest.meanLoss),
    ]),
  };
}

/** Make whitespace and control characters in token strings visible. */
export function showToken(token: string | null, id: number): string {
  if (token === null) return `#${id}`;
  const visible = token.replace(/ /g, "␣").replace(/\n/g, "↵").replace(/\t/g, "⇥");
  return `“${visible}”`;
}

const pct = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : "–");
