import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { parse } from "csv-parse/sync";
import { asyncBufferFromFile, parquetReadObjects } from "hyparquet";
import {
  type Cell,
  exportFitResults,
  type FlatTable,
  fitResultTables,
  tableToCsv,
  tableToParquet,
} from "../../src/fit/export.js";
import { readBestRatioFile, readFitsFile, readSpeedupsFile } from "../../src/fit/results.js";
import { fitRows, writeFitResults } from "../../src/fit/workspace.js";
import { runCliCaptured } from "../helpers/capture.js";
import { syntheticRows } from "./synthetic.js";

/** A real (small) fit: per-N data laws with intervals, warnings, speed-ups, best-ratio cells and a failure. */
function fittedResults(): string {
  const dir = mkdtempSync(join(tmpdir(), "synthmix-export-"));
  const rows = syntheticRows(0.003, 2, { Ns: [1e5, 1e6], ratios: [0, 0.2, 0.4, 0.6, 0.8] });
  // One point of another mixture: too few to fit, so fits.json has a failure.
  rows.push({ ...rows[0], runId: "lone", mixture: "qa-50", synthetic: "qa", ratio: 0.5, generator: "g" });
  const res = fitRows(rows, { form: "data", bootstrap: 30, seed: 1, quality: false });
  writeFitResults(join(dir, "results"), res);
  return dir;
}

type Row = Record<string, Cell>;

/** CSV read back by csv-parse (an independent parser), cells typed by the table's column types. */
function readCsv(path: string, t: FlatTable): Row[] {
  const types = Object.fromEntries(t.columns.map((c) => [c.name, c.type]));
  // An unquoted empty field is null; a quoted one ("") an empty string.
  const recs = parse(readFileSync(path, "utf8"), {
    columns: true,
    cast: (v, ctx) => (v === "" && !ctx.header && !ctx.quoting ? null : v),
  }) as Record<string, string | null>[];
  return recs.map((r) =>
    Object.fromEntries(
      Object.entries(r).map(([k, v]) => {
        if (v === null) return [k, null];
        if (types[k] === "boolean") return [k, v === "true"];
        return [k, types[k] === "string" ? v : Number(v)];
      }),
    ),
  );
}

async function readParquet(path: string): Promise<Row[]> {
  return (await parquetReadObjects({ file: await asyncBufferFromFile(path) })) as Row[];
}

const same = (a: Cell | undefined, b: Cell | undefined, what: string) =>
  assert.ok(Object.is(a ?? null, b ?? null), `${what}: ${String(a)} != ${String(b)}`);

/** Every number of the JSON artifacts is found in the flat rows, by key, exactly. */
function checkAgainstJson(resultsDir: string, fits: Row[], speedups: Row[], ratios: Row[]) {
  const f = readFitsFile(resultsDir);
  let n = 0;
  for (const fit of f.fits) {
    for (const [param, est] of Object.entries(fit.params)) {
      const rows = fits.filter(
        (r) => r.key === fit.key && r.fixedN === fit.fixedN && r.fixedD === fit.fixedD && r.param === param,
      );
      assert.equal(rows.length, 1, `${fit.key} N=${fit.fixedN} ${param}`);
      const [r] = rows;
      for (const k of ["value", "se", "lo", "hi", "identified", "reason"] as const)
        same(r[k], est[k] as Cell, `${fit.key} ${param} ${k}`);
      same(r.profileLo, est.profile?.lo, "profile lo");
      assert.equal(r.warnings, fit.warnings.map((w) => w.code).join(";") || null);
      assert.equal(r.status, "fitted");
      n++;
    }
  }
  assert.ok(n >= 30, "one row per group x parameter");
  assert.ok(
    fits.some((r) => r.identified === false && r.reason),
    "the fixture has an unidentified parameter with a reason",
  );
  assert.ok(f.failures.length > 0);
  for (const fail of f.failures) {
    const r = fits.find((x) => x.key === fail.key && x.status === "failed");
    assert.equal(r?.error, fail.error);
  }
  assert.equal(fits.length, n + f.failures.length);

  const s = readSpeedupsFile(resultsDir);
  let i = 0;
  for (const e of s.entries) {
    const points: [string, (typeof e.curve)[number]][] = e.curve.map((p) => ["curve", p]);
    if (e.atLargestNatural) points.push(["largest-natural", e.atLargestNatural]);
    for (const [at, p] of points) {
      const r = speedups[i++];
      assert.deepEqual([r.key, r.N, r.point], [e.key, e.N, at]);
      for (const [col, v] of [
        ["targetLoss", p.targetLoss],
        ["speedup", p.speedup.value],
        ["speedupSe", p.speedup.se],
        ["speedupLo", p.speedup.lo],
        ["speedupHi", p.speedup.hi],
        ["dNatural", p.dNatural],
        ["dMix", p.dMix],
        ["extrapolated", p.extrapolated],
        ["supported", e.supported],
      ] as const)
        same(r[col], v, `speed-up ${e.key} ${col}`);
    }
  }
  assert.equal(speedups.length, i);
  assert.ok(i > 20);

  const b = readBestRatioFile(resultsDir);
  assert.equal(ratios.length, b.entries.length);
  assert.ok(b.entries.length > 0);
  b.entries.forEach((e, j) => {
    const r = ratios[j];
    assert.deepEqual([r.synthetic, r.generator, r.N, r.D], [e.synthetic, e.generator, e.N, e.D]);
    same(r.quadraticBestRatio, e.quadratic?.bestRatio.value, "quadratic");
    same(r.quadraticBestRatioLo, e.quadratic?.bestRatio.lo, "quadratic lo");
    same(r.mixingLawBestRatio, e.mixingLaw?.bestRatio.value, "mixing law");
    same(r.mixingLawBestRatioHi, e.mixingLaw?.bestRatio.hi, "mixing law hi");
    same(r.resolved, e.resolved, "resolved");
    same(r.reason, e.reason, "reason");
    same(r.agreement, e.agreement, "agreement");
  });
}

test("fit export: CSV (read back by csv-parse) and Parquet (read back by hyparquet) equal the JSON artifacts", async () => {
  const ws = fittedResults();
  const results = join(ws, "results");
  const tables = fitResultTables(results);
  const csv = exportFitResults(results, { format: "csv", out: join(ws, "flat") });
  const pq = exportFitResults(results, { format: "parquet", out: join(ws, "flat") });
  assert.deepEqual(
    csv.map((p) => p.split("/").at(-1)),
    ["fits.csv", "speedups.csv", "best-ratio.csv"],
  );
  const fromCsv = csv.map((p, k) => readCsv(p, tables[k]));
  checkAgainstJson(results, fromCsv[0], fromCsv[1], fromCsv[2]);
  const fromPq = await Promise.all(pq.map(readParquet));
  checkAgainstJson(results, fromPq[0], fromPq[1], fromPq[2]);
  // Both formats carry the same cells, in the same column order.
  for (let k = 0; k < 3; k++) {
    assert.deepEqual(
      Object.keys(fromPq[k][0]),
      tables[k].columns.map((c) => c.name),
    );
    assert.deepEqual(fromPq[k], fromCsv[k]);
  }
});

test("fit export: NaN, null, booleans and strings with commas, quotes and newlines survive both formats", async () => {
  const t: FlatTable = {
    name: "t",
    columns: [
      { name: "s", type: "string" },
      { name: "x", type: "double" },
      { name: "n", type: "int" },
      { name: "b", type: "boolean" },
    ],
    rows: [
      { s: 'a, "quoted"\nline', x: Number.NaN, n: 3, b: false },
      { s: null, x: 1 / 3, n: null, b: true },
      { s: "plain", x: null, n: -2, b: null },
      { s: "", x: -0.5e-300, n: 0, b: true },
    ],
  };
  const dir = mkdtempSync(join(tmpdir(), "synthmix-export-cells-"));
  const { writeFileSync } = await import("node:fs");
  writeFileSync(join(dir, "t.csv"), tableToCsv(t));
  writeFileSync(join(dir, "t.parquet"), tableToParquet(t));
  assert.deepEqual(readCsv(join(dir, "t.csv"), t), t.rows);
  assert.deepEqual(await readParquet(join(dir, "t.parquet")), t.rows);
  // No rows (e.g. a grid without ratio cells): a header-only CSV and an empty, typed Parquet file.
  const none = { ...t, rows: [] };
  writeFileSync(join(dir, "none.csv"), tableToCsv(none));
  writeFileSync(join(dir, "none.parquet"), tableToParquet(none));
  assert.equal(readFileSync(join(dir, "none.csv"), "utf8"), "s,x,n,b\n");
  assert.deepEqual(await readParquet(join(dir, "none.parquet")), []);
});

async function cli(...args: string[]): Promise<string> {
  return (await runCliCaptured(...args)).stdout;
}

test("fit export CLI: --json prints only the written paths; a missing artifact is a clean error and writes nothing", async () => {
  const ws = fittedResults();
  const out = join(ws, "pq");
  const doc = JSON.parse(
    await cli("fit", "export", "--workspace", ws, "--format", "parquet", "--out", out, "--json"),
  );
  assert.deepEqual(doc, {
    format: "parquet",
    files: ["fits", "speedups", "best-ratio"].map((n) => join(out, `${n}.parquet`)),
  });
  for (const f of doc.files) assert.ok(existsSync(f));
  // Default: CSV next to the JSON files.
  assert.match(await cli("fit", "export", "--workspace", ws), /wrote .*results\/best-ratio\.csv/);

  rmSync(join(ws, "results", "speedups.json"));
  const empty = join(ws, "none");
  await assert.rejects(
    cli("fit", "export", "--workspace", ws, "--out", empty),
    (e: Error & { code?: string; hint?: string }) =>
      e.code === "NO_FIT_RESULTS" &&
      /speedups\.json does not exist/.test(e.message) &&
      /synthmix fit/.test(e.hint ?? ""),
  );
  assert.ok(!existsSync(empty), "nothing written when an artifact is missing");
  // The fit flags go through the shared CLI parsers: an empty value is an error, not 0.
  await assert.rejects(
    cli("fit", "--results", ws, "--bootstrap", ""),
    /--bootstrap: expected a non-negative integer, got ""/,
  );
  await assert.rejects(
    cli("fit", "--results", ws, "--workers", "0"),
    /--workers: expected a positive integer/,
  );
  await assert.rejects(
    cli("fit", "export", "--format", "xlsx", "--workspace", ws),
    /--format: expected one of csv, parquet/,
  );
});

test("fit and report read results/runs.json through the sweep's schema: a bad row names the file and the row", async () => {
  const { mkdirSync, writeFileSync } = await import("node:fs");
  const { readRunRows } = await import("../../src/fit/groups.js");
  const { readInputs } = await import("../../src/report/inputs.js");
  const ws = mkdtempSync(join(tmpdir(), "synthmix-runs-schema-"));
  mkdirSync(join(ws, "results"));
  assert.throws(
    () => readRunRows(ws),
    (e: Error & { code?: string }) => e.code === "NO_RUN_RESULTS",
  );
  const row = syntheticRows(0.003, 1, { Ns: [1e5], Ds: [1e6], ratios: [0] })[0];
  writeFileSync(join(ws, "results", "runs.json"), JSON.stringify({ rows: [row, { ...row, loss: "3.1" }] }));
  const bad = /runs\.json: not the sweep results: rows\.1\.loss: /;
  assert.throws(() => readRunRows(ws), bad);
  assert.throws(() => readInputs(ws), bad);
  writeFileSync(join(ws, "results", "runs.json"), JSON.stringify({ rows: [row] }));
  assert.equal(readRunRows(ws).length, 1);
  assert.equal(readInputs(ws).runs?.length, 1);
});
