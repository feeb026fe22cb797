import { relative } from "node:path";
import { loadTokenizedSource } from "../mix/sources.js";
import type { MixTokenizer } from "../mix/tokenizer.js";
import { expandMixture, type PlannedRun, planSweep } from "../sweep/plan.js";
import type { SweepSpec } from "../sweep/spec.js";
import { SynthmixError } from "../util/errors.js";
import type { StudyConfig } from "./config.js";

type RunEntry = NonNullable<SweepSpec["runs"]>[number];
type GridLike = StudyConfig["extraGrids"][number];

/**
 * The explicit runs of the study's extra grids: each grid's cartesian product (list-valued shares
 * expand like sweep.grid; natural mixtures are not repeated per generator). The sweep de-duplicates
 * runs by id, so a cell shared with the main grid is trained once.
 */
export function extraGridRuns(grids: GridLike[]): RunEntry[] {
  const out: RunEntry[] = [];
  for (const g of grids) {
    const mixtures = g.mixtures.flatMap(expandMixture);
    for (const model of g.models)
      for (const tokens of g.tokens)
        for (const mixture of mixtures)
          for (const seed of g.seeds) out.push(...cellRuns({ model, tokens, mixture, seed }, g.generators));
  }
  return out;
}

/** One grid cell: once for a natural-only mixture (or no generators), else once per generator. */
function cellRuns(cell: RunEntry, generators: string[]): RunEntry[] {
  const m = cell.mixture;
  const synthetic = m !== "natural" && Object.values(m).some((v) => v > 0);
  if (!synthetic || generators.length === 0) return [cell];
  return generators.map((generator) => ({ ...cell, generator }));
}

/** What the planned runs take from one source at most (one run's mixture, tokens before end-of-text). */
export interface SourceNeed {
  /** Source name in the mixture ("natural", "hq", ...). */
  name: string;
  /** Absolute path of the source folder or file. */
  path: string;
  /** The largest share x tokens of any one run. */
  tokens: number;
  /** The run that needs the most. */
  runId: string;
}

/** The largest single-run need of every source of the planned runs (each run must see a source at most once). */
export function sourceNeeds(runs: PlannedRun[]): SourceNeed[] {
  const needs = new Map<string, SourceNeed>();
  for (const r of runs) {
    for (const s of r.mixture.sources) {
      const tokens = Math.ceil(s.share * r.tokens);
      const cur = needs.get(s.path);
      if (!cur || tokens > cur.tokens) needs.set(s.path, { name: s.name, path: s.path, tokens, runId: r.id });
    }
  }
  return [...needs.values()].sort((a, b) => a.path.localeCompare(b.path));
}

/**
 * Output-token budget of each (style, generator) for `budgetOutputTokens: "auto"`: the largest need of
 * `synthetic/<style>-<generator>` times 1 + margin; 0 for a pair no run uses (nothing is generated).
 */
export function autoBudgets(
  spec: SweepSpec,
  workspace: string,
  vocabSize: number,
  styles: string[],
  generators: string[],
  margin: number,
): Map<string, number> {
  const needs = sourceNeeds(planSweep(spec, workspace, vocabSize));
  const out = new Map<string, number>();
  for (const style of styles) {
    for (const g of generators) {
      const rel = spec.synthetic.replaceAll("{style}", style).replaceAll("{generator}", g);
      const need = needs.find((n) => n.path.endsWith(rel) && n.name === style);
      out.set(`${style}\u0000${g}`, need ? Math.ceil(need.tokens * (1 + margin)) : 0);
    }
  }
  return out;
}

/**
 * Without allowRepeat every run must find enough unique text in each source. Checked once before the
 * sweep, from the tokenized sources (the cache the mixtures reuse), so a short generation stops the
 * study with every shortfall listed instead of failing run after run (or, with repeats, silently
 * training on several epochs of the same synthetic documents).
 */
export async function checkSupply(
  spec: SweepSpec,
  workspace: string,
  tokenizer: MixTokenizer,
): Promise<{ name: string; need: number; have: number }[]> {
  const runs = planSweep(spec, workspace, tokenizer.vocabSize);
  const rows: { name: string; need: number; have: number }[] = [];
  const short: string[] = [];
  for (const n of sourceNeeds(runs)) {
    const src = await loadTokenizedSource(workspace, n.name, n.path, tokenizer);
    // The mixture counts one end-of-text per document it takes.
    const have = src.totalTokens + src.lengths.length;
    const label = relative(workspace, n.path) || n.path;
    rows.push({ name: label, need: n.tokens, have });
    if (have < n.tokens) short.push(`${label}: ${have} tokens, run ${n.runId} needs ${n.tokens}`);
  }
  if (short.length && !spec.allowRepeat) {
    throw new SynthmixError(
      "SUPPLY_SHORT",
      `not enough unique text for the sweep without repeats: ${short.join("; ")}`,
      {
        hint: 'raise generate.budgetOutputTokens (or set it to "auto"), lower the largest budget or share, or set sweep.allowRepeat: true (repeated epochs confound the findings)',
      },
    );
  }
  return rows;
}
