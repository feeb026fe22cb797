import assert from "node:assert/strict";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Resvg } from "@resvg/resvg-js";
import { Command } from "../../src/cli/options.js";
import { register } from "../../src/cli/report.js";
import type { FitsFile, SpeedupsFile } from "../../src/fit/results.js";
import { logTicks } from "../../src/report/charts/axes.js";
import { type ChartResult, evalFit, isChart } from "../../src/report/charts/common.js";
import { lossVsRatioChart } from "../../src/report/charts/ratio.js";
import { scalingChart } from "../../src/report/charts/scaling.js";
import { planSections, type ReportOutput, readInputs, writeReport } from "../../src/report/index.js";
import { resvgOptions, svgToPng, toVega, vegaToSvg } from "../../src/report/render.js";
import { SynthmixError } from "../../src/util/errors.js";
import { writeFixture } from "../fixtures/report/make-fixture.js";

const FIXTURE = new URL("../fixtures/report/ws", import.meta.url).pathname;
const NOTE =
  "The demo generator is a tiny model trained by synthmix itself; real studies point --generator at an LLM.";

/** Width and height from a PNG's signature + IHDR chunk (throws if it is not a PNG). */
function pngSize(buf: Buffer): { width: number; height: number } {
  assert.deepEqual(
    [...buf.subarray(0, 8)],
    [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
    "PNG signature",
  );
  assert.equal(buf.subarray(12, 16).toString("latin1"), "IHDR");
  assert.equal(buf.subarray(buf.length - 8, buf.length - 4).toString("latin1"), "IEND", "PNG ends with IEND");
  return { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) };
}

const tmp = () => mkdtempSync(join(tmpdir(), "synthmix-report-"));

describe("writeReport on the fixture workspace", () => {
  let ws: string;
  let out: ReportOutput;
  before(async () => {
    ws = tmp();
    cpSync(FIXTURE, ws, { recursive: true });
    out = await writeReport(ws, { title: "Fixture study", notes: [NOTE] });
  });
  after(() => rmSync(ws, { recursive: true, force: true }));

  test("writes index.html, summary.md and a valid PNG of sensible size per chart", () => {
    assert.equal(out.html, join(ws, "report", "index.html"));
    assert.ok(existsSync(out.html) && existsSync(out.summary));
    const ids = out.pngs.map((p) => p.split("/").pop());
    assert.deepEqual(ids, [
      "data-scaling.png",
      "model-scaling.png",
      "irreducible-loss.png",
      "best-ratio.png",
      "loss-vs-ratio.png",
      "speedup.png",
      "unigram.png",
    ]);
    for (const p of out.pngs) {
      const { width, height } = pngSize(readFileSync(p));
      assert.ok(width >= 500 && width <= 4000, `${p}: width ${width}`);
      assert.ok(height >= 200 && height <= 4000, `${p}: height ${height}`);
      assert.ok(existsSync(p.replace(/\.png$/, ".vl.json")), "Vega-Lite spec beside the PNG");
    }
  });

  test("the HTML is self-contained: no external script, stylesheet, image or font", () => {
    const html = readFileSync(out.html, "utf8");
    assert.doesNotMatch(html, /<(script|img|iframe|source)[^>]*\ssrc\s*=\s*["']?(https?:)?\/\//i);
    assert.doesNotMatch(html, /<link[^>]*href\s*=\s*["']?(https?:)?\/\//i);
    assert.doesNotMatch(html, /@import|url\(\s*["']?https?:/i);
    assert.match(html, /<script>!function\(/, "Vega runtime inlined");
    for (const id of [
      "data-scaling",
      "model-scaling",
      "irreducible-loss",
      "best-ratio",
      "loss-vs-ratio",
      "speedup",
      "unigram",
    ]) {
      assert.match(html, new RegExp(`id="chart-${id}" data-spec="spec-${id}"`));
    }
    assert.match(html, /<table id="table-domain-loss">/);
    assert.match(html, /<table id="table-blind-spots-fiction">/);
    assert.match(html, /<table id="table-loss-split">/);
    for (const p of out.pngs) assert.match(readFileSync(p.replace(/\.png$/, ".svg"), "utf8"), /^<svg /);
    assert.ok(html.includes(NOTE), "lead's note is in the Notes section");
    assert.match(html, /Not shown: one generator only \(tiny-gpt\)/);
  });

  test("summary numbers are the ones in results/*.json", () => {
    const md = readFileSync(out.summary, "utf8");
    const fits = JSON.parse(readFileSync(join(ws, "results", "fits.json"), "utf8")) as FitsFile;
    const joint = fits.fits.filter((f) => f.form === "joint");
    for (const f of joint) {
      const E = f.params.E;
      assert.ok(
        md.includes(`${f.mixture} ${E.value.toFixed(3)} [${E.lo!.toFixed(3)}, ${E.hi!.toFixed(3)}]`),
        `E of ${f.mixture} in summary`,
      );
    }
    const sp = JSON.parse(readFileSync(join(ws, "results", "speedups.json"), "utf8")) as SpeedupsFile;
    const maxN = Math.max(...sp.entries.map((e) => e.N ?? 0));
    for (const e of sp.entries.filter((x) => x.N === maxN)) {
      const s = e.atLargestNatural!.speedup;
      assert.ok(
        md.includes(`${e.mixture} ${s.value.toFixed(2)} [${s.lo!.toFixed(2)}, ${s.hi!.toFixed(2)}]×`),
        e.mixture,
      );
    }
    // The fixture's cells have 4 ratios: no quadratic optimum is stated, the observed best is.
    assert.match(md, /Best hq ratio \(tiny-gpt\): not resolved on this grid \(4 distinct ratios/);
    assert.match(md, /Observed best ratio at the largest cell/);
    assert.ok(md.includes(NOTE));
  });

  test("fitted curves in the data-scaling chart are the laws in fits.json", () => {
    const inp = readInputs(ws);
    const chart = scalingChart("D", inp.runs, inp.fits);
    assert.ok(isChart(chart));
    const values = (chart.spec as unknown as { data: { values: Record<string, number | string>[] } }).data
      .values;
    const fit = inp.fits!.fits.find((f) => f.form === "data" && f.mixture === "hq-33" && f.fixedN === 8e5)!;
    const curve = values.filter((v) => v.kind === "fit" && v.series === "hq-33" && v.panelValue === 8e5);
    assert.ok(curve.length > 40);
    for (const v of curve) {
      const D = v.x as number;
      const expected = fit.params.B.value / D ** fit.params.beta.value + fit.params.E.value;
      assert.ok(Math.abs((v.loss as number) - expected) < 1e-12);
      assert.equal(evalFit(fit, null, D), expected);
    }
    // Dashed extrapolation starts at the largest observed D and reaches 4x beyond it.
    const extra = curve.filter((v) => v.part === "extrapolation").map((v) => v.x as number);
    assert.equal(Math.min(...extra), 8e6);
    assert.ok(Math.max(...extra) > 3.9 * 8e6);
  });
});

test("missing fit and analysis results: charts needing them are skipped with a note, the report still renders", async () => {
  const ws = tmp();
  try {
    cpSync(join(FIXTURE, "results", "runs.json"), join(ws, "results", "runs.json"));
    const out = await writeReport(ws);
    assert.deepEqual(
      out.pngs.map((p) => p.split("/").pop()),
      ["data-scaling.png", "model-scaling.png"],
    );
    const html = readFileSync(out.html, "utf8");
    assert.match(html, /results\/fits.json is missing \(written by `synthmix fit`\)/);
    assert.match(html, /Not shown: no scaling-law fits/);
    assert.match(html, /No fitted curves: results\/fits.json is missing/);
    const md = readFileSync(out.summary, "utf8");
    assert.match(md, /## Not shown/);
    assert.match(md, /Lowest observed test loss per domain at N = 3.2M, D = 8M/);
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
});

test("two generators: the generator comparison chart is drawn", async () => {
  const ws = tmp();
  try {
    writeFixture(ws, { generators: ["tiny-gpt", "llama-8b"] });
    const sections = planSections(readInputs(ws));
    const gen = sections.find((s) => s.id === "generators")!.items[0] as ChartResult;
    assert.ok(isChart(gen), "generator chart drawn");
    assert.match(gen.caption, /tiny-gpt, llama-8b/);
    const { width } = pngSize(Buffer.from(svgToPng(await vegaToSvg(toVega(gen.spec)))));
    assert.ok(width > 500);
    // Mixture labels keep generators apart everywhere else too.
    const e = sections.find((s) => s.id === "irreducible")!.items[0] as ChartResult;
    assert.ok(isChart(e) && JSON.stringify(e.spec).includes("hq-33-llama-8b"));
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
});

test("corrupt or missing inputs give errors naming the file and what to do", async () => {
  const ws = tmp();
  try {
    await assert.rejects(
      writeReport(ws),
      (e: unknown) => e instanceof SynthmixError && /results does not exist/.test(e.message),
    );
    cpSync(FIXTURE, ws, { recursive: true });
    writeFileSync(join(ws, "results", "fits.json"), "{ not json");
    await assert.rejects(
      writeReport(ws),
      (e: unknown) =>
        e instanceof SynthmixError &&
        e.message.includes("fits.json: cannot read fit results") &&
        /synthmix fit/.test(e.hint ?? ""),
    );
    writeFileSync(join(ws, "results", "fits.json"), JSON.stringify({ version: 9, fits: [] }));
    await assert.rejects(writeReport(ws), /unsupported file version 9/);
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
});

test("chart text is rendered: the bundled font draws glyphs in the PNG", () => {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="200" height="40"><text x="5" y="30" font-family="DejaVu Sans" font-size="24">Loss 3.21</text></svg>`;
  const dark = (px: Uint8Array) => {
    let n = 0;
    for (let i = 0; i < px.length; i += 4) if (px[i] < 128) n++;
    return n;
  };
  const withFont = new Resvg(svg, resvgOptions(1)).render().pixels;
  assert.ok(dark(withFont) > 200, "text pixels drawn");
  // Control: without any font resvg silently draws nothing, which is the failure this guards against.
  const opts = resvgOptions(1);
  const none = new Resvg(svg, { ...opts, font: { loadSystemFonts: false, fontFiles: [] } }).render().pixels;
  assert.equal(dark(none), 0);
});

test("log-axis ticks follow 1-2-5 and thin to decades", () => {
  assert.deepEqual(logTicks(0.9e6, 35e6), [1e6, 2e6, 5e6, 1e7, 2e7]);
  assert.deepEqual(logTicks(1e3, 1e9), [1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9]);
});

test("CLI: synthmix report ws/ prints the report path", async () => {
  const ws = tmp();
  // Only this stage's commands: the CLI test must not depend on other stages' modules.
  const program = new Command().exitOverride();
  register(program);
  const lines: string[] = [];
  const orig = console.log;
  console.log = (...a: unknown[]) => lines.push(a.join(" "));
  try {
    cpSync(join(FIXTURE, "results", "runs.json"), join(ws, "results", "runs.json"));
    await program.parseAsync(["node", "synthmix", "report", ws, "--quiet"]);
  } finally {
    console.log = orig;
    rmSync(ws, { recursive: true, force: true });
  }
  assert.deepEqual(lines, [join(ws, "report", "index.html")]);
});

test("with only a joint fit (the fit stage's default), scaling charts draw the joint law at each N and D", () => {
  const inp = readInputs(FIXTURE);
  const fits = { ...inp.fits!, fits: inp.fits!.fits.filter((f) => f.form === "joint") };
  for (const axis of ["D", "N"] as const) {
    const chart = scalingChart(axis, inp.runs, fits);
    assert.ok(isChart(chart));
    assert.match(chart.caption, /joint fit, L\(N, D\) = A\/N\^α \+ B\/D\^β \+ E/);
    const values = (chart.spec as unknown as { data: { values: Record<string, number | string>[] } }).data
      .values;
    const joint = fits.fits.find((f) => f.mixture === "qa-33")!;
    const p = (k: string) => joint.params[k].value;
    const curve = values.filter((v) => v.kind === "fit" && v.series === "qa-33");
    assert.ok(curve.length > 100);
    for (const v of curve) {
      const [N, D] =
        axis === "D" ? [v.panelValue as number, v.x as number] : [v.x as number, v.panelValue as number];
      const expected = p("A") / N ** p("alpha") + p("B") / D ** p("beta") + p("E");
      assert.ok(Math.abs((v.loss as number) - expected) < 1e-12);
    }
  }
});

test("loss-vs-ratio without a quadratic draws the mixing law, averaged over per-domain laws", () => {
  const inp = readInputs(FIXTURE);
  const e = inp.bestRatio!.entries[0];
  const laws = [
    { domain: "news", c: 3, k: 0.5, t: -2 },
    { domain: "fiction", c: 3.2, k: 0.1, t: 1.5 },
  ];
  const entry = {
    ...e,
    quadratic: null,
    mixingLaw: {
      c: 0,
      k: 0,
      t: 0,
      bestRatio: e.quadratic!.bestRatio,
      bestLoss: e.quadratic!.bestLoss,
      domains: laws,
    },
  };
  const chart = lossVsRatioChart({ ...inp.bestRatio!, entries: [entry] });
  assert.ok(isChart(chart));
  const values = (chart.spec as unknown as { data: { values: Record<string, number | string>[] } }).data
    .values;
  const fit = values.filter((v) => v.kind === "fit");
  assert.equal(fit.length, 21);
  for (const v of fit) {
    const r = v.ratio as number;
    const expected = (3 + 0.5 * Math.exp(-2 * r) + 3.2 + 0.1 * Math.exp(1.5 * r)) / 2;
    assert.ok(Math.abs((v.loss as number) - expected) < 1e-12);
  }
});
