/**
 * Run the full demo and verify, from its results/*.json and run curves, the four properties its report
 * must have (issue #15): E per mixture identified for the main grid; a best ratio whose interval lies
 * inside (0, 1) in the ratio cells; speed-ups read inside the fitted range; per-run curves that show
 * convergence for the smallest model. Exit 1 when any fails. Long (the whole demo): not in `npm test`.
 *
 *   npx tsx scripts/check-demo.ts [--workspace dir] [--no-run]   # --no-run: only check an existing workspace
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { BestRatioFile, FitsFile, SpeedupsFile } from "../src/fit/results.js";
import { StudyConfigSchema } from "../src/study/config.js";
import { demoConfig } from "../src/study/demo.js";
import { runStudy } from "../src/study/run.js";
import type { RunResultRow } from "../src/sweep/results.js";
import { formatError } from "../src/util/errors.js";

interface Check {
  property: string;
  what: string;
  ok: boolean;
  detail: string;
}

const readJson = <T>(ws: string, f: string): T =>
  JSON.parse(readFileSync(join(ws, "results", f), "utf8")) as T;
const f3 = (x: number | null | undefined) => (x === null || x === undefined ? "—" : x.toFixed(3));
const codes = (x: { warnings: { code: string }[] }) => x.warnings.map((w) => w.code);

/** The main grid's mixture keys ("synthetic:ratio:generator"), from the demo config itself. */
function mainGridKeys(): string[] {
  const grid = StudyConfigSchema.parse(demoConfig(false)).sweep.grid!;
  const keys = new Set<string>();
  for (const m of grid.mixtures) {
    if (m === "natural") {
      keys.add("none:0:");
      continue;
    }
    for (const [style, v] of Object.entries(m))
      for (const r of Array.isArray(v) ? v : [v])
        for (const g of grid.generators) keys.add(`${style}:${r}:${g}`);
  }
  return [...keys];
}

const keyOf = (r: RunResultRow) =>
  r.synthetic === "none" || r.ratio === 0 ? "none:0:" : `${r.synthetic}:${r.ratio}:${r.generator}`;

/** 1. E per main-grid mixture: identified by the fitter, no E warning, interval in (0, lowest loss). */
function checkE(fits: FitsFile, rows: RunResultRow[]): Check[] {
  return mainGridKeys().map((key) => {
    const f = fits.fits.find((x) => x.key === key && x.fixedN === null && x.fixedD === null);
    if (!f?.params.E) return { property: "E identified", what: key, ok: false, detail: "no joint fit" };
    const E = f.params.E;
    const minLoss = Math.min(...rows.filter((r) => keyOf(r) === key).map((r) => r.loss));
    const flags = codes(f).filter((c) => /^E_|UNDERDETERMINED|INVALID_LAW|REPEATED_DATA/.test(c));
    const ok = E.identified && !flags.length && E.lo !== null && E.hi !== null && E.lo > 0 && E.hi < minLoss;
    return {
      property: "E identified",
      what: key,
      ok,
      detail: `E ${f3(E.value)} [${f3(E.lo)}, ${f3(E.hi)}], lowest loss ${f3(minLoss)}${flags.length ? `, flagged ${flags.join(",")}` : ""}`,
    };
  });
}

/** 2. Best ratio in the ratio cells (>= 5 synthetic ratios): interval strictly inside (0, 1). */
function checkRatio(best: BestRatioFile): Check[] {
  const cells = best.entries.filter((e) => e.points.filter((p) => p.ratio > 0).length >= 5);
  if (cells.length < 2) {
    return [
      {
        property: "best ratio",
        what: "ratio cells",
        ok: false,
        detail: `${cells.length} cell(s) with >= 5 ratios, need 2`,
      },
    ];
  }
  return cells.map((e) => {
    const q = e.quadratic?.bestRatio;
    // The fitter's own verdict (>= 5 ratios, interior convex vertex, no lack of fit) plus the interval.
    const ok = e.resolved && !!q && q.lo !== null && q.hi !== null && q.lo > 0 && q.hi < 1;
    return {
      property: "best ratio",
      what: `${e.synthetic}-${e.generator} N=${e.N} D=${e.D}`,
      ok,
      detail: q
        ? `r* ${f3(q.value)} [${f3(q.lo)}, ${f3(q.hi)}] from ${e.points.length} ratios${e.reason ? `; not resolved: ${e.reason}` : ""}`
        : "no quadratic",
    };
  });
}

/**
 * 3. Speed-ups: each main-grid mixture has a stated reading at the largest natural run read inside the
 * fitted D range: a supported interpolation, or, where the law would be read beyond its points, a bound
 * from the runs themselves (`bound`: e.g. < 1x when the mixture's loss at the largest budget is still
 * significantly above L*); and no reading outside that range goes unflagged (`extrapolated`).
 */
function checkSpeedups(sp: SpeedupsFile, rows: RunResultRow[]): Check[] {
  const Ds = rows.map((r) => r.tokens);
  const [lo, hi] = [Math.min(...Ds), Math.max(...Ds)];
  const out: Check[] = [];
  for (const key of mainGridKeys().filter((k) => k !== "none:0:")) {
    const es = sp.entries.filter((e) => e.key === key && (e.atLargestNatural || e.bound));
    let inside = 0;
    let bounded = 0;
    const bad: string[] = [];
    for (const e of es) {
      const a = e.atLargestNatural;
      if ((!a || a.extrapolated) && e.bound) bounded++;
      if (!a) continue;
      const within = a.dMix >= lo && a.dMix <= hi && a.dNatural >= lo && a.dNatural <= hi;
      if (within && !a.extrapolated && e.supported) inside++;
      if (!within && !a.extrapolated)
        bad.push(`N=${e.N}: D_mix ${Math.round(a.dMix)} outside [${lo}, ${hi}] and not flagged`);
    }
    out.push({
      property: "speed-up in range",
      what: key,
      ok: inside + bounded > 0 && bad.length === 0,
      detail: `${inside}/${es.length} supported readings inside [${lo}, ${hi}], ${bounded} bounds from the runs${bad.length ? `; ${bad.join("; ")}` : ""}`,
    });
  }
  return out;
}

/**
 * 4. Convergence of the smallest model: per mixture and seed, its final test loss falls by less than 2%
 * over the last doubling of D (the learning curve L(D) has flattened). Final losses, not one run's eval
 * curve: in a WSD ladder a run's curve is the constant-LR trunk and then its cooldown, whose drop says
 * nothing about convergence in D. Without a budget at D_max / 2 there is nothing to judge (a failure).
 */
function checkConvergence(rows: RunResultRow[]): Check[] {
  const nMin = Math.min(...rows.map((r) => r.nonEmbeddingParams));
  const small = rows.filter((r) => r.nonEmbeddingParams === nMin);
  const dMax = Math.max(...small.map((r) => r.tokens));
  const byCurve = new Map<string, RunResultRow[]>();
  for (const r of small) {
    const k = `${keyOf(r)} seed ${r.seed}`;
    byCurve.set(k, [...(byCurve.get(k) ?? []), r]);
  }
  return [...byCurve].map(([what, curve]) => {
    const last = curve.find((r) => r.tokens === dMax);
    const half = curve.filter((r) => r.tokens <= dMax / 2).sort((x, y) => y.tokens - x.tokens)[0];
    if (!last || !half) {
      return {
        property: "convergence",
        what,
        ok: false,
        detail: `no budgets D_max and <= D_max/2 to compare`,
      };
    }
    const drop = (half.loss - last.loss) / half.loss;
    return {
      property: "convergence",
      what: `N=${nMin} ${what}`,
      ok: drop < 0.02,
      detail: `final test loss ${f3(half.loss)} at D=${half.tokens} -> ${f3(last.loss)} at D=${last.tokens} (${(drop * 100).toFixed(2)}% drop)`,
    };
  });
}

async function main() {
  const { values } = parseArgs({
    options: { workspace: { type: "string", default: "synthmix-demo-check" }, "no-run": { type: "boolean" } },
  });
  const ws = resolve(values.workspace!);
  if (!values["no-run"]) {
    const t0 = Date.now();
    const r = await runStudy(
      { config: StudyConfigSchema.parse(demoConfig(false)), workspace: ws, baseDir: ws },
      { progress: "plain" },
    );
    console.log(
      `demo finished in ${((Date.now() - t0) / 60000).toFixed(1)} min, ${r.failedRuns.length} failed run(s)`,
    );
    if (r.failedRuns.length) process.exitCode = 1;
  }
  const rows = readJson<{ rows: RunResultRow[] }>(ws, "runs.json").rows.filter((r) => r.domain === "all");
  const checks = [
    ...checkE(readJson<FitsFile>(ws, "fits.json"), rows),
    ...checkRatio(readJson<BestRatioFile>(ws, "best-ratio.json")),
    ...checkSpeedups(readJson<SpeedupsFile>(ws, "speedups.json"), rows),
    ...checkConvergence(rows),
  ];
  console.log("| property | what | ok | detail |\n|---|---|---|---|");
  for (const c of checks)
    console.log(`| ${c.property} | ${c.what} | ${c.ok ? "yes" : "**NO**"} | ${c.detail} |`);
  const failed = checks.filter((c) => !c.ok);
  console.log(
    failed.length
      ? `\n${failed.length} of ${checks.length} checks FAILED`
      : `\nall ${checks.length} checks passed`,
  );
  if (failed.length) process.exitCode = 1;
}

// A study that stops (e.g. a source too short for the grid) is reported as the CLI reports it, no stack.
await main().catch((e: unknown) => {
  console.error(formatError(e));
  process.exit(1);
});
