import { basename } from "node:path";
import type { MixtureFit } from "../fit/results.js";
import { describeBound } from "../fit/speedup.js";
import { fmt, fmtEst, mixtureLabel, mixtureOrder, si } from "./charts/common.js";
import { pickEFits } from "./charts/scaling.js";
import type { ReportInputs } from "./inputs.js";
import { largestCell } from "./tables.js";

/** Why a fit's E supports no ordering ("" when it does): warning codes, else E's own reason. */
export function eProblem(f: MixtureFit): string {
  if (f.warnings.length) return f.warnings.map((w) => w.code).join(", ");
  const E = f.params.E;
  if (!E.identified) return `E not identified (${E.reason ?? "no interval"})`;
  return "";
}

/** The E comparison of one mixture with natural-only data, stated only when the numbers support it. */
function eComparison(mix: MixtureFit, natural: MixtureFit, label: string): string {
  const why = [
    eProblem(mix) && `${label}: ${eProblem(mix)}`,
    eProblem(natural) && `natural: ${eProblem(natural)}`,
  ].filter(Boolean);
  if (why.length) return `${label} vs natural: not resolved on this grid (${why.join("; ")}).`;
  const a = mix.params.E;
  const n = natural.params.E;
  const overlap = a.lo! <= n.hi! && n.lo! <= a.hi!;
  if (overlap)
    return `${label} vs natural: not resolved on this grid (the 95% intervals of E overlap: ${fmtEst(a)} vs ${fmtEst(n)}).`;
  const d = a.value - n.value;
  return `${label} has a ${d < 0 ? "lower" : "higher"} irreducible loss than natural-only data by ${fmt(Math.abs(d))} nats/token (95% intervals separate: ${fmtEst(a)} vs ${fmtEst(n)}).`;
}

function eFindings(inp: ReportInputs): string[] {
  const picked = pickEFits(inp.fits);
  if (!picked) return [];
  const fits = [...picked.fits].sort(mixtureOrder);
  const multiGen = new Set(fits.filter((f) => f.synthetic !== "none").map((f) => f.generator)).size > 1;
  const natural = fits.find((f) => f.synthetic === "none");
  const out = [
    `Irreducible loss E per mixture (${picked.source}; 95% intervals, "?" = not identified): ${fits
      .map((f) => `${mixtureLabel(f, multiGen)} ${fmtEst(f.params.E)}`)
      .join("; ")}.`,
  ];
  if (!natural) return out;
  for (const f of fits) if (f !== natural) out.push(eComparison(f, natural, mixtureLabel(f, multiGen)));
  return out;
}

function ratioFindings(inp: ReportInputs): string[] {
  const br = inp.bestRatio?.entries ?? [];
  const out: string[] = [];
  for (const g of [...new Set(br.map((e) => `${e.synthetic}\u0000${e.generator}`))]) {
    const [synthetic, generator] = g.split("\u0000");
    const cells = br.filter((e) => e.synthetic === synthetic && e.generator === generator);
    const top = cells.reduce((a, b) => (b.N > a.N || (b.N === a.N && b.D > a.D) ? b : a));
    const where = `at the largest cell (N = ${si(top.N)}, D = ${si(top.D)})`;
    const name = `${synthetic} ratio${generator ? ` (${generator})` : ""}`;
    const both = `quadratic ${fmtEst(top.quadratic?.bestRatio, 2)}, mixing law ${fmtEst(top.mixingLaw?.bestRatio, 2)}${top.agreement === null ? "" : top.agreement ? ", they agree" : ", they disagree"}`;
    if (top.resolved && top.quadratic) {
      const resolved = cells.filter((e) => e.resolved && e.quadratic);
      const vals = resolved.map((e) => e.quadratic!.bestRatio.value);
      const trend = inp.bestRatio?.trends.find((t) => t.synthetic === synthetic && t.generator === generator);
      out.push(
        `Best ${name} ${where}: ${fmtEst(top.quadratic.bestRatio, 2)} (${both}); ${fmt(Math.min(...vals), 2)}–${fmt(Math.max(...vals), 2)} over the ${resolved.length} resolved of ${cells.length} cells${trend?.perDecadeD != null ? `, changing ${fmt(trend.perDecadeD, 3)} per 10× D` : ""}${trend?.perDecadeN != null ? ` and ${fmt(trend.perDecadeN, 3)} per 10× N` : ""}.`,
      );
    } else {
      const unresolved = cells.filter((e) => !e.resolved).length;
      out.push(
        `Best ${name}: not resolved on this grid (${top.reason ?? "no estimate"}). Observed best ratio ${where}: ${fmt(top.observedBest, 2)} (${both}); ${unresolved} of ${cells.length} cells unresolved.`,
      );
    }
  }
  return out;
}

function speedupFindings(inp: ReportInputs): string[] {
  const sp = (inp.speedups?.entries ?? []).filter((e) => e.atLargestNatural || e.bound);
  if (sp.length === 0) return [];
  const maxN = Math.max(...sp.map((e) => e.N ?? 0));
  const at = sp.filter((e) => (e.N ?? 0) === maxN).sort(mixtureOrder);
  const multiGen = new Set(at.map((e) => e.generator)).size > 1;
  const L = at[0].atLargestNatural?.targetLoss ?? at[0].bound!.targetLoss;
  const parts = at.map((e) => {
    const a = e.atLargestNatural;
    const label = mixtureLabel(e, multiGen);
    if ((!a || a.extrapolated) && e.bound) return `${label} ${describeBound(e.bound)}`;
    if (!a)
      return `${label}: not resolved (its law never reaches L*, and its runs do not settle the direction)`;
    if (a.extrapolated)
      return `${label}: not resolved (extrapolated beyond the fitted D range; ${fmtEst(a.speedup, 2)}×)`;
    if (!e.supported)
      return `${label}: not resolved (the laws are not identified: ${[...new Set(e.warnings.map((w) => w.code))].join(", ")})`;
    const s = a.speedup;
    const sep = s.lo !== null && s.hi !== null && (s.lo > 1 || s.hi < 1);
    const basis = e.basis === "interpolation" ? ", read between the runs; E not identified" : "";
    return `${label} ${fmtEst(s, 2)}×${sep ? (s.lo! > 1 ? ` (faster than natural${basis})` : ` (slower than natural${basis})`) : ` (interval includes 1: not resolved${basis})`}`;
  });
  return [
    `Data speed-up over natural text at the loss of the largest natural run (L* = ${fmt(L)}${maxN ? `, N = ${si(maxN)}` : ""}): ${parts.join("; ")}.`,
  ];
}

function domainFindings(inp: ReportInputs): string[] {
  if (!inp.runs || inp.runs.length === 0) return [];
  const cell = largestCell(inp.runs);
  const noise = inp.bestRatio?.entries.find((e) => e.noise.from === "seeds")?.noise.sigmaLog ?? null;
  const parts = cell.domains.map((d, j) => {
    const sorted = [...cell.rows]
      .filter((r) => Number.isFinite(r.loss[j]))
      .sort((a, b) => a.loss[j] - b.loss[j]);
    if (sorted.length === 0) return `${d}: –`;
    const [best, next] = sorted;
    // Two standard errors of a difference of two single runs: 2 * sqrt(2) * sigma (log scale).
    const sep =
      noise !== null && next && Math.log(next.loss[j]) - Math.log(best.loss[j]) > 2 * Math.SQRT2 * noise;
    return `${d}: ${best.label} (${fmt(best.loss[j])})${next ? (sep ? "" : noise === null ? ", not resolved (no seed replicates to judge the noise)" : ", not resolved (within the seed noise)") : ""}`;
  });
  return [
    `Lowest observed test loss per domain at N = ${si(cell.N)}, D = ${si(cell.D)}: ${parts.join("; ")}.`,
  ];
}

function unigramFindings(inp: ReportInputs): string[] {
  const uni = inp.unigram?.comparisons ?? [];
  if (uni.length === 0) return [];
  const tests = [...new Set(uni.map((c) => c.test))];
  const parts = tests.map((t) => {
    const cs = uni.filter((c) => c.test === t);
    const lo = cs.reduce((a, b) => (b.klTestSource < a.klTestSource ? b : a));
    const hi = cs.reduce((a, b) => (b.klTestSource > a.klTestSource ? b : a));
    const floor = inp.unigram?.noiseFloors?.find((f) => f.test === t)?.kl ?? null;
    const size = inp.unigram?.equalTokens;
    const ok = size !== undefined && floor !== null && hi.klTestSource - lo.klTestSource > floor;
    const tail = ok
      ? ""
      : size === undefined
        ? " — not resolved (sources differ in size; KL grows as a sample shrinks)"
        : " — not resolved (the spread is within the noise floor)";
    return `${t}: closest ${lo.source} (${fmt(lo.klTestSource, 4)}), farthest ${hi.source} (${fmt(hi.klTestSource, 4)})${floor !== null ? `, noise floor ${fmt(floor, 4)}` : ""}${tail}`;
  });
  const size = inp.unigram?.equalTokens;
  return [
    `Unigram KL(test ‖ source) in nats${size !== undefined ? ` at an equal ${si(size)} tokens per source` : ""} — ${parts.join("; ")}.`,
  ];
}

/** Repetition per mixture, from the fits (REPEATED_DATA). */
function repetitionFindings(inp: ReportInputs): string[] {
  const seen = new Map<string, string>();
  for (const f of inp.fits?.fits ?? []) {
    const rep = Object.entries(f.repetition.repeated);
    if (rep.length && !seen.has(f.mixture))
      seen.set(f.mixture, rep.map(([s, e]) => `${s} ${Number(e.toPrecision(3))}×`).join(", "));
  }
  if (seen.size === 0) return [];
  return [
    `Repeated data (REPEATED_DATA; fits over these runs state no finding): ${[...seen].map(([m, r]) => `${m} repeats ${r}`).join("; ")}.`,
  ];
}

/**
 * Key findings as plain sentences, every number read from results/*.json. Shared by summary.md, the
 * HTML report and the console. An ordering is stated only when the intervals separate it and both sides
 * are identified without warnings; otherwise the sentence says "not resolved on this grid" and why.
 */
export function findings(inp: ReportInputs): string[] {
  return [
    ...eFindings(inp),
    ...ratioFindings(inp),
    ...speedupFindings(inp),
    ...repetitionFindings(inp),
    ...domainFindings(inp),
    ...unigramFindings(inp),
  ];
}

/** `report/summary.md`: title, findings, notes, and what was skipped and why. */
export function summaryMarkdown(
  inp: ReportInputs,
  opts: { title: string; notes: string[]; skipped: { what: string; why: string }[] },
): string {
  const lines = [
    `# ${opts.title}`,
    "",
    `Workspace: \`${basename(inp.workspace)}\`. Every number below is read from \`results/*.json\`.`,
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
      "| Mixture | E (nats/token) | 95% interval | identified | points | dof | R² | warnings |",
      "| --- | ---: | ---: | :---: | ---: | ---: | ---: | --- |",
    );
    for (const x of [...picked.fits].sort(mixtureOrder)) {
      const E = x.params.E;
      const ci = E.lo !== null && E.hi !== null ? `[${fmt(E.lo)}, ${fmt(E.hi)}]` : "–";
      const warn = x.warnings.map((w) => `**${w.code}**: ${w.message}`).join("<br>") || "–";
      lines.push(
        `| ${mixtureLabel(x, multiGen)} | ${fmt(E.value)} | ${ci} | ${E.identified ? "yes" : `no (${E.reason ?? "?"})`} | ${x.points} | ${x.dof} | ${fmt(x.quality.r2, 4)} | ${warn} |`,
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
