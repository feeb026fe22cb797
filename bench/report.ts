/**
 * Report stage: time to turn every chart of the fixture report into a PNG, server-side (Vega-Lite compile
 * -> vega View.toSVG -> resvg, what `writeReport` does) against the usual peer, a headless browser
 * (Chromium via playwright-core: the same compiled Vega spec rendered by the inlined Vega runtime in a
 * page, then an element screenshot, as vega-embed + puppeteer/playwright pipelines do). Both measured
 * side by side in one run; the browser's launch is counted once, outside the per-chart times.
 *
 *   npx tsx bench/report.ts [--runs 3]
 *
 * Times are the best of N runs (the least noisy statistic on a shared machine).
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import type { Chart } from "../src/report/charts/common.js";
import { planSections, readInputs } from "../src/report/index.js";
import { svgToPng, toVega, vegaToSvg } from "../src/report/render.js";

const arg = process.argv.indexOf("--runs");
const RUNS = arg > 0 ? Number(process.argv[arg + 1]) : 3;
const require = createRequire(import.meta.url);

async function best(fn: () => Promise<unknown>): Promise<number> {
  let min = Number.POSITIVE_INFINITY;
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    await fn();
    min = Math.min(min, (performance.now() - t) / 1000);
  }
  return min;
}

const inputs = readInputs(new URL("../test/fixtures/report/ws", import.meta.url).pathname);
const charts = planSections(inputs).flatMap((s) => s.items.filter((i): i is Chart => "spec" in i));
const specs = charts.map((c) => toVega(c.spec));

const server = await best(async () => {
  for (const c of charts) svgToPng(await vegaToSvg(toVega(c.spec)));
});

const profile = mkdtempSync(join(tmpdir(), "bench-report-chromium-"));
const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.SYNTHMIX_CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  deviceScaleFactor: 2,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
});
const page = await ctx.newPage();
await page.setContent(
  `<html><body><div id="c"></div><script>${readFileSync(require.resolve("vega/build/vega.min.js"), "utf8")}</script></body></html>`,
);
const browser = await best(async () => {
  for (const spec of specs) {
    await page.evaluate(async (s) => {
      const w = globalThis as unknown as {
        vega: {
          View: new (r: unknown, o: unknown) => { runAsync(): Promise<unknown> };
          parse(s: unknown): unknown;
        };
        document: { getElementById(id: string): unknown };
      };
      await new w.vega.View(w.vega.parse(s), {
        renderer: "svg",
        container: w.document.getElementById("c"),
      }).runAsync();
    }, spec as unknown);
    await page.locator("#c svg").screenshot({ type: "png" });
  }
});
await ctx.close();
rmSync(profile, { recursive: true, force: true });

const load = loadavg()
  .map((x) => x.toFixed(1))
  .join(" ");
console.log(`charts: ${charts.length} (fixture report), best of ${RUNS}, load average ${load}`);
console.log(`server-side vega -> svg -> resvg png : ${server.toFixed(2)} s`);
console.log(`headless Chromium render + screenshot: ${browser.toFixed(2)} s (browser already running)`);
console.log(`ratio (Chromium / synthmix): ${(browser / server).toFixed(2)}x`);
