import { existsSync } from "node:fs";
import { type RunResultRow, readRunResults, resultsPath } from "../sweep/results.js";
import { SynthmixError } from "../util/errors.js";
import type { MixtureKey } from "./results.js";

/** Read `<ws>/results/runs.json` through the sweep's reader (its schema); a missing file says what to run. */
export function readRunRows(ws: string): RunResultRow[] {
  const path = resultsPath(ws);
  if (!existsSync(path)) {
    throw new SynthmixError("NO_RUN_RESULTS", `${path} does not exist`, {
      hint: "run the sweep first (synthmix sweep run), or fit a points file with --points",
    });
  }
  return readRunResults(ws).rows;
}

/**
 * Rows of one test domain. For "all", rows with domain "all" are used when present; otherwise each run's
 * losses are averaged over its domains (the sweep's definition of "all").
 */
export function rowsForDomain(rows: RunResultRow[], domain: string): RunResultRow[] {
  const direct = rows.filter((r) => r.domain === domain);
  if (direct.length > 0 || domain !== "all") {
    if (direct.length === 0) {
      const have = [...new Set(rows.map((r) => r.domain))].join(", ");
      throw new SynthmixError("NO_ROWS_FOR_DOMAIN", `no run results for test domain "${domain}"`, {
        hint: `available domains: ${have || "(none)"}`,
      });
    }
    return direct;
  }
  const byRun = new Map<string, RunResultRow[]>();
  for (const r of rows) byRun.set(r.runId, [...(byRun.get(r.runId) ?? []), r]);
  return [...byRun.values()].map((rs) => ({
    ...rs[0],
    domain: "all",
    loss: rs.reduce((s, r) => s + r.loss, 0) / rs.length,
  }));
}

export function isNatural(r: { synthetic: string; ratio: number }): boolean {
  return r.synthetic === "none" || r.synthetic === "" || r.ratio === 0;
}

export function mixtureKeyOf(r: { synthetic: string; ratio: number; generator: string }): string {
  if (isNatural(r)) return "none:0:";
  return `${r.synthetic}:${r.ratio}:${r.generator}`;
}

export interface MixtureGroup extends MixtureKey {
  rows: RunResultRow[];
}

/** Group rows into data mixtures by (synthetic, ratio, generator); all natural-only rows form one group. */
export function groupMixtures(rows: RunResultRow[]): MixtureGroup[] {
  const groups = new Map<string, MixtureGroup>();
  for (const r of rows) {
    const key = mixtureKeyOf(r);
    let g = groups.get(key);
    if (!g) {
      const nat = isNatural(r);
      g = {
        key,
        mixture: r.mixture,
        synthetic: nat ? "none" : r.synthetic,
        ratio: nat ? 0 : r.ratio,
        generator: nat ? "" : r.generator,
        rows: [],
      };
      groups.set(key, g);
    } else if (!g.mixture.split(",").includes(r.mixture)) {
      g.mixture = `${g.mixture},${r.mixture}`;
    }
    g.rows.push(r);
  }
  return [...groups.values()].sort((a, b) =>
    a.key === "none:0:" ? -1 : b.key === "none:0:" ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0,
  );
}

/** Split rows by a numeric column, ascending. */
export function splitBy<T>(rows: T[], col: (r: T) => number): [number, T[]][] {
  const m = new Map<number, T[]>();
  for (const r of rows) m.set(col(r), [...(m.get(col(r)) ?? []), r]);
  return [...m.entries()].sort((a, b) => a[0] - b[0]);
}
