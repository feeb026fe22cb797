import type { RunResultRow } from "../../src/sweep/results.js";
import { Rng } from "../../src/util/rng.js";

/** Known joint law used to generate rows: L = E + A/N^alpha + B(r)/D^beta, B(r) best at r = 0.4. */
export const TRUE = { A: 400, alpha: 0.34, beta: 0.28, E: 1.7 };
export const bOfRatio = (r: number) => 300 * (1 + 1.5 * (r - 0.4) ** 2 - 1.5 * 0.16);

export function syntheticRows(
  noise = 0.003,
  seed = 1,
  opts: { Ns?: number[]; Ds?: number[]; ratios?: number[] } = {},
): RunResultRow[] {
  const rng = new Rng(seed);
  const Ns = opts.Ns ?? [1e5, 3e5, 1e6];
  const Ds = opts.Ds ?? [1e6, 2e6, 4e6, 8e6, 1.6e7, 3.2e7];
  const ratios = opts.ratios ?? [0, 0.25, 0.5, 0.75];
  const rows: RunResultRow[] = [];
  for (const r of ratios) {
    for (const N of Ns) {
      for (const D of Ds) {
        const L = TRUE.E + TRUE.A / N ** TRUE.alpha + bOfRatio(r) / D ** TRUE.beta;
        const runId = `r${r}-n${N}-d${D}`;
        rows.push({
          runId,
          modelName: "custom",
          nonEmbeddingParams: N,
          totalParams: N * 2,
          tokens: D,
          mixture: r === 0 ? "natural" : `hq-${Math.round(r * 100)}`,
          synthetic: r === 0 ? "none" : "hq",
          ratio: r,
          generator: r === 0 ? "" : "gen1",
          seed: 1,
          domain: "all",
          loss: L * Math.exp(noise * rng.normal()),
          flops: 6 * N * D,
          tokensPerSec: 1,
          wallSec: 1,
        });
      }
    }
  }
  return rows;
}
