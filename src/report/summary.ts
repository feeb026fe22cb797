import { fmt, fmtEst, mixtureLabel, mixtureOrder, si } from "./charts/common.js";
import { bestOf } from "./charts/ratio.js";
import { pickEFits } from "./charts/scaling.js";
import type { ReportInputs } from "./inputs.js";
import { largestCell } from "./tables.js";

/**
 * Key findings as plain sentences, every number read from results/*.json. Shared by summary.md and the
 * HTML report's "Key findings" list, so the two always agree.
 */
export function findings(inp: ReportInputs): string[] {
  const out: string[] = [];
  const picked = pickEFits(inp.fits);
  if (picked) {
    const fits = [...picked.fits].sort(mixtureOrder);
    const multiGen = new Set(fits.filter((f) => f.synthetic !== "none").map((f) => f.generator)).size > 1;
    const natural = fits.find((f) => f.synthetic === "none");
    const best = fits.reduce((a, b) => (b.params.E.value < a.params.E.value ? b : a));
    out.push(
      `Irreducible loss E per mixture (${picked.source}; 95% bootstrap intervals): ${fits
        .map((f) => `${mixtureLabel(f, multiGen)} ${fmtEst(f.params.E)}`)
        .join("; ")}.`,
    );
    if (natural && best !== natural) {
      const d = best.params.E.value - natural.params.E.value;
      const overlap =
        best.params.E.hi !== null && natural.params.E.lo !== null && best.params.E.hi >= natural.params.E.lo;
      out.push(
        `Lowest E: ${mixtureLabel(best, multiGen)}, ${fmt(Math.abs(d))} nats/token ${d < 0 ? "below" : "above"} natural-only data${overlap ? " (the 95% intervals overlap, so the difference is not resolved)" : " (95% intervals do not overlap)"}.`,
      );
    } else if (natural) {
      out.push("Natural-only data has the lowest irreducible loss of all mixtures.");
    }
  }
  const br = inp.bestRatio?.entries ?? [];
  if (br.length > 0) {
    const groups = [...new Set(br.map((e) => `${e.synthetic}\u0000${e.generator}`))];
    for (const g of groups) {
      const [synthetic, generator] = g.split("\u0000");
      const cells = br.filter((e) => e.synthetic === synthetic && e.generator === generator);
      const vals = cells.map((e) => bestOf(e).est.value);
      const top = cells.reduce((a, b) => (b.N > a.N || (b.N === a.N && b.D > a.D) ? b : a));
      const topBest = bestOf(top);
      const trend = inp.bestRatio?.trends.find((t) => t.synthetic === synthetic && t.generator === generator);
      out.push(
        `Best ${synthetic} ratio${generator ? ` (${generator})` : ""}: ${fmtEst(topBest.est, 2)} at the largest cell (N = ${si(top.N)}, D = ${si(top.D)}, ${topBest.how} fit); ${fmt(Math.min(...vals), 2)}–${fmt(Math.max(...vals), 2)} across ${cells.length} (N, D) cells${trend?.perDecadeD != null ? `, changing ${fmt(trend.perDecadeD, 3)} per 10× D` : ""}${trend?.perDecadeN != null ? ` and ${fmt(trend.perDecadeN, 3)} per 10× N` : ""}.`,
      );
    }
  }
  const sp = (inp.speedups?.entries ?? []).filter((e) => e.atLargestNatural);
  if (sp.length > 0) {
    const maxN = Math.max(...sp.map((e) => e.N ?? 0));
    const at = sp.filter((e) => (e.N ?? 0) === maxN).sort(mixtureOrder);
    const multiGen = new Set(at.map((e) => e.generator)).size > 1;
    const L = at[0].atLargestNatural!.targetLoss;
    out.push(
      `Data speed-up over natural text at the loss of the largest natural run (L* = ${fmt(L)}${maxN ? `, N = ${si(maxN)}` : ""}): ${at
        .map((e) => `${mixtureLabel(e, multiGen)} ${fmtEst(e.atLargestNatural!.speedup, 2)}×`)
        .join("; ")}.`,
    );
  }
  if (inp.runs && inp.runs.length > 0) {
    const cell = largestCell(inp.runs);
    const parts = cell.domains.map((d, j) => {
      const best = cell.rows.reduce((a, b) => (b.loss[j] < a.loss[j] ? b : a));
      return `${d}: ${best.label} (${fmt(best.loss[j])})`;
    });
    out.push(`Lowest test loss per domain at N = ${si(cell.N)}, D = ${si(cell.D)}: ${parts.join("; ")}.`);
  }
  const uni = inp.unigram?.comparisons ?? [];
  if (uni.length > 0) {
    const tests = [...new Set(uni.map((c) => c.test))];
    const parts = tests.map((t) => {
      const cs = uni.filter((c) => c.test === t);
      const lo = cs.reduce((a, b) => (b.klTestSource < a.klTestSource ? b : a));
      const hi = cs.reduce((a, b) => (b.klTestSource > a.klTestSource ? b : a));
      return `${t}: closest ${lo.source} (${fmt(lo.klTestSource, 4)}), farthest ${hi.source} (${fmt(hi.klTestSource, 4)})`;
    });
    out.push(`Unigram KL(test ‖ source) in nats — ${parts.join("; ")}.`);
  }
  return out;
}

/** `report/summary.md`: title, findings, notes, and what was skipped and why. */
export function summaryMarkdown(
  inp: ReportInputs,
  opts: { title: string; notes: string[]; skipped: { what: string; why: string }[] },
): string {
  const lines = [
    `# ${opts.title}`,
    "",
    `Workspace: \`${inp.workspace}\`. Every number below is read from \`results/*.json\`.`,
    "",
  ];
  lines.push("## Key findings", "");
  const f = findings(inp);
  lines.push(...(f.length ? f.map((s) => `- ${s}`) : ["- No results to summarise yet."]), "");
  const picked = pickEFits(inp.fits);
  if (picked) {
    const multiGen =
      new Set(picked.fits.filter((x) => x.synthetic !== "none").map((x) => x.generator)).size > 1;
    lines.push(`## Irreducible loss E per mixture`, "", `From the ${picked.source}.`, "");
    lines.push(
      "| Mixture | E (nats/token) | 95% interval | points | R² |",
      "| --- | ---: | ---: | ---: | ---: |",
    );
    for (const x of [...picked.fits].sort(mixtureOrder)) {
      const E = x.params.E;
      const ci = E.lo !== null && E.hi !== null ? `[${fmt(E.lo)}, ${fmt(E.hi)}]` : "–";
      lines.push(
        `| ${mixtureLabel(x, multiGen)} | ${fmt(E.value)} | ${ci} | ${x.points} | ${fmt(x.quality.r2, 4)} |`,
      );
    }
    lines.push("");
  }
  if (opts.notes.length) lines.push("## Notes", "", ...opts.notes.map((n) => `- ${n}`), "");
  if (opts.skipped.length) {
    lines.push("## Not shown", "", ...opts.skipped.map((s) => `- ${s.what}: ${s.why}`), "");
  }
  return `${lines.join("\n")}\n`;
}
