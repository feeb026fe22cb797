import { existsSync, rmSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { writeFileAtomic } from "../util/atomic.js";
import { type ChartResult, isChart } from "./charts/common.js";
import { lossCurvesChart } from "./charts/curves.js";
import { bestRatioHeatmap, lossVsRatioChart } from "./charts/ratio.js";
import { irreducibleChart, scalingChart } from "./charts/scaling.js";
import { generatorChart, speedupChart } from "./charts/speedup.js";
import { unigramChart } from "./charts/unigram.js";
import { renderHtml, type Section } from "./html.js";
import { type ReportInputs, readInputs } from "./inputs.js";
import { svgToPng, toVega, vegaToSvg } from "./render.js";
import { readGeneratorSamples, samplesTable } from "./samples.js";
import { findings, summaryMarkdown } from "./summary.js";
import {
  blindSpotTables,
  domainLossTable,
  fitTable,
  lossSplitTable,
  runsTable,
  speedupTable,
  type Table,
  unigramTable,
} from "./tables.js";

export type { ReportInputs } from "./inputs.js";
export { readInputs } from "./inputs.js";

export interface ReportOptions {
  /** Report title (default "synthmix study report"). */
  title?: string;
  /** Extra notes shown in the report's Notes section and in summary.md (e.g. about the generator). */
  notes?: string[];
}

export interface ReportOutput {
  /** Path of report/index.html. */
  html: string;
  /** Paths of the chart PNGs written (one per drawn chart; an .svg and a .vl.json sit beside each). */
  pngs: string[];
  /** Path of report/summary.md. */
  summary: string;
  /** The key findings as plain sentences (also in summary.md and at the top of the HTML). */
  findings: string[];
  /** Charts and tables not drawn, and why (also listed in the report). */
  skipped: { what: string; why: string }[];
}

type Item = ChartResult | Table | { skipped: string };

/** The report's sections in the study's figure order; pure: only reads the parsed inputs. */
export function planSections(inp: ReportInputs): { id: string; title: string; items: Item[] }[] {
  return [
    { id: "data-scaling", title: "1. Data scaling", items: [scalingChart("D", inp.runs, inp.fits)] },
    { id: "model-scaling", title: "2. Model scaling", items: [scalingChart("N", inp.runs, inp.fits)] },
    {
      id: "irreducible",
      title: "3. Irreducible loss",
      items: [irreducibleChart(inp.fits), fitTable(inp.fits)],
    },
    {
      id: "ratio",
      title: "4. Best synthetic ratio",
      items: [bestRatioHeatmap(inp.bestRatio), lossVsRatioChart(inp.bestRatio)],
    },
    {
      id: "speedup",
      title: "5. Data speed-up",
      items: [speedupChart(inp.speedups), speedupTable(inp.speedups)],
    },
    {
      id: "generators",
      title: "6. Generators",
      items: [generatorChart(inp.fits), samplesTable(inp.samples)],
    },
    { id: "domains", title: "7. Per-domain test loss", items: [domainLossTable(inp.runs)] },
    {
      id: "unigram",
      title: "8. Unigram analysis",
      items: [
        unigramChart(inp.unigram),
        unigramTable(inp.unigram),
        ...blindSpotTables(inp.unigram),
        ...[lossSplitTable(inp.unigram)].filter((t): t is Table => t !== null),
      ],
    },
    { id: "runs", title: "9. Runs", items: [lossCurvesChart(inp.curves), runsTable(inp.runs)] },
  ];
}

/** Every chart id the report can draw: a stale PNG of a chart that is now skipped is removed. */
const CHART_IDS = [
  "data-scaling",
  "model-scaling",
  "irreducible-loss",
  "best-ratio",
  "loss-vs-ratio",
  "speedup",
  "generators",
  "unigram",
  "loss-curves",
];

/**
 * Read `<ws>/results/*.json` and write `<ws>/report/index.html` (self-contained, opens offline), one PNG
 * and one Vega-Lite spec per chart, and `<ws>/report/summary.md`. Charts whose inputs are missing are
 * skipped with a note; the report renders with whatever results exist.
 */
export async function writeReport(workspace: string, opts: ReportOptions = {}): Promise<ReportOutput> {
  const ws = resolve(workspace);
  const inp = readInputs(ws);
  inp.samples = await readGeneratorSamples(ws);
  const outDir = join(ws, "report");
  const title = opts.title ?? "synthmix study report";
  const sections: Section[] = [];
  const pngs: string[] = [];
  const skipped: ReportOutput["skipped"] = [];
  const drawn = new Set<string>();
  for (const plan of planSections(inp)) {
    const section: Section = { id: plan.id, title: plan.title, items: [] };
    for (const item of plan.items) {
      if ("skipped" in item) {
        skipped.push({ what: plan.title.replace(/^\d+\.\s*/, ""), why: item.skipped });
        section.items.push({ skipped: `Not shown: ${item.skipped}.` });
      } else if (isChart(item as ChartResult)) {
        const chart = item as Exclude<ChartResult, { skipped: string }>;
        const vegaSpec = toVega(chart.spec);
        const png = join(outDir, `${chart.id}.png`);
        const svg = await vegaToSvg(vegaSpec);
        writeFileAtomic(png, svgToPng(svg));
        // Vector copy for papers (text set in DejaVu Sans; PNG is the exact rendering).
        writeFileAtomic(join(outDir, `${chart.id}.svg`), svg);
        writeFileAtomic(join(outDir, `${chart.id}.vl.json`), `${JSON.stringify(chart.spec)}\n`);
        pngs.push(png);
        drawn.add(chart.id);
        section.items.push({ chart, vega: vegaSpec, png: `${chart.id}.png` });
      } else {
        const table = item as Table;
        if (table.download) writeFileAtomic(join(outDir, table.download.file), table.download.content);
        section.items.push({ table });
      }
    }
    sections.push(section);
  }
  for (const id of CHART_IDS) {
    if (drawn.has(id)) continue;
    for (const ext of [".png", ".svg", ".vl.json"])
      if (existsSync(join(outDir, id + ext))) rmSync(join(outDir, id + ext));
  }
  const notes = [...(opts.notes ?? []), ...defaultNotes(inp)];
  const found = findings(inp);
  const html = join(outDir, "index.html");
  writeFileAtomic(
    html,
    renderHtml({
      title,
      subtitle: `Workspace ${basename(ws)} · ${pngs.length} charts · every number is read from results/*.json`,
      findings: found,
      notes,
      sections,
      inputs: inputList(inp),
    }),
  );
  const summary = join(outDir, "summary.md");
  writeFileAtomic(summary, summaryMarkdown(inp, { title, notes, skipped }));
  return { html, pngs, summary, findings: found, skipped };
}

function defaultNotes(inp: ReportInputs): string[] {
  const notes: string[] = [];
  const domain = inp.fits?.settings.domain ?? "all";
  notes.push(
    `Losses are final test losses in nats per token on held-out natural text; fits use test domain "${domain}"${domain === "all" ? " (the mean over domains)" : ""}. N counts non-embedding parameters; D counts training tokens (study tokenizer).`,
  );
  if (inp.fits) {
    const s = inp.fits.settings;
    notes.push(
      `Scaling laws are fitted in log space with a Huber loss (δ = ${s.huberDelta}) from ${s.gridStarts} initial points (Chinchilla approach 3); intervals are 95% bootstrap percentile intervals over runs (${s.bootstrap} resamples, seed ${s.seed}).`,
    );
    for (const f of inp.fits.failures) {
      notes.push(
        `Fit failed for ${f.mixture} (${f.key}${f.fixedN !== null ? `, N = ${f.fixedN}` : ""}${f.fixedD !== null ? `, D = ${f.fixedD}` : ""}, ${f.points} points): ${f.error}`,
      );
    }
  }
  for (const m of inp.missing)
    notes.push(
      `results/${m.file} is missing (written by \`${m.writtenBy}\`): charts that need it are skipped.`,
    );
  return notes;
}

function inputList(inp: ReportInputs): { file: string; detail: string }[] {
  const out: { file: string; detail: string }[] = [];
  if (inp.runs)
    out.push({ file: "results/runs.json", detail: `${inp.runs.length} rows (run × test domain)` });
  const meta = (f: { createdBy: string; createdAt: string } | undefined) =>
    f ? `written by ${f.createdBy} at ${f.createdAt}` : "";
  if (inp.fits)
    out.push({ file: "results/fits.json", detail: `${inp.fits.fits.length} fits, ${meta(inp.fits)}` });
  if (inp.speedups)
    out.push({
      file: "results/speedups.json",
      detail: `${inp.speedups.entries.length} entries, ${meta(inp.speedups)}`,
    });
  if (inp.bestRatio)
    out.push({
      file: "results/best-ratio.json",
      detail: `${inp.bestRatio.entries.length} cells, ${meta(inp.bestRatio)}`,
    });
  if (inp.unigram)
    out.push({
      file: "results/unigram.json",
      detail: `${inp.unigram.comparisons.length} comparisons, ${meta(inp.unigram)}`,
    });
  for (const m of inp.missing) out.push({ file: `results/${m.file}`, detail: "missing" });
  return out;
}
