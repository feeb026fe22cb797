/**
 * Opens the generated report in headless Chromium (Debian's `chromium`, installed by .ci/run) with the
 * network off, and checks that every chart renders and the page logs no errors. A screenshot is saved
 * to .test-output/report/ as a test artifact. Without Chromium it skips locally with the reason, and fails
 * under CI=true (test/helpers/optional.ts): it must not pass silently there.
 */
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";
import { chromium } from "playwright-core";
import { writeReport } from "../../src/report/index.js";
import { optionalTool } from "../helpers/optional.js";

const CHROMIUM = process.env.SYNTHMIX_CHROMIUM ?? "/usr/bin/chromium";
const FIXTURE = new URL("../fixtures/report/ws", import.meta.url).pathname;
const ARTIFACTS = resolve(".test-output", "report");
const browser = optionalTool(
  "Chromium",
  () => existsSync(CHROMIUM) || `no ${CHROMIUM}`,
  "`apt-get install -y chromium` (.ci/run does), or set SYNTHMIX_CHROMIUM to its path",
);

test("the report renders every chart in headless Chromium, offline, with no console errors", {
  skip: browser.skip,
}, async () => {
  browser.require();
  const ws = mkdtempSync(join(tmpdir(), "synthmix-report-browser-"));
  const profile = mkdtempSync(join(tmpdir(), "synthmix-chromium-profile-"));
  // playwright-core manages the profile itself: a fresh, throw-away user-data-dir per run.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  try {
    cpSync(FIXTURE, ws, { recursive: true });
    const out = await writeReport(ws, { notes: ["Browser test."] });
    const page = await context.newPage();
    const errors: string[] = [];
    const external: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") errors.push(`console.${m.type()}: ${m.text()}`);
    });
    page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
    // Any request that is not the report file itself means the report is not self-contained.
    await page.route("**/*", (route) => {
      const url = route.request().url();
      if (url.startsWith("file:") || url.startsWith("data:")) return route.continue();
      external.push(url);
      return route.abort();
    });
    await page.goto(pathToFileURL(out.html).href, { waitUntil: "load", timeout: 90_000 });
    const ids = out.pngs.map((p) =>
      p
        .split("/")
        .pop()!
        .replace(/\.png$/, ""),
    );
    await page.waitForFunction(
      `document.querySelectorAll("div.chart[data-rendered='1']").length === ${ids.length}`,
      undefined,
      { timeout: 90_000 },
    );
    const charts = await page.$$eval("div.chart", (els) =>
      els.map((el) => {
        const svg = el.querySelector("svg");
        const box = svg?.getBoundingClientRect();
        return {
          id: el.id,
          width: box?.width ?? 0,
          height: box?.height ?? 0,
          marks: svg ? svg.querySelectorAll("path, line, rect, text").length : 0,
          text: svg?.textContent ?? "",
        };
      }),
    );
    assert.deepEqual(
      charts.map((c) => c.id),
      ids.map((id) => `chart-${id}`),
    );
    for (const c of charts) {
      assert.ok(c.width > 200 && c.height > 100, `${c.id} has a sized svg (${c.width}x${c.height})`);
      assert.ok(c.marks > 20, `${c.id} drew marks (${c.marks})`);
    }
    assert.match(charts.find((c) => c.id === "chart-data-scaling")!.text, /Training tokens D \(log scale\)/);
    assert.deepEqual(external, [], "no network requests");
    assert.deepEqual(errors, [], "no console errors");
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, "report.png"), fullPage: true });
    assert.ok(existsSync(join(ARTIFACTS, "report.png")));
  } finally {
    await context.close();
    rmSync(ws, { recursive: true, force: true });
    rmSync(profile, { recursive: true, force: true });
  }
});
