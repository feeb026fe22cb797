import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type * as vega from "vega";
import type { Chart } from "./charts/common.js";
import { escapeHtml, type Table, tableHtml } from "./tables.js";

const require = createRequire(import.meta.url);

/** A report section: charts and tables in order, plus notes for what could not be drawn. */
export interface Section {
  id: string;
  title: string;
  items: ({ chart: Chart; vega: vega.Spec; png: string } | { table: Table } | { skipped: string })[];
}

export interface PageInput {
  title: string;
  subtitle: string;
  findings: string[];
  notes: string[];
  sections: Section[];
  inputs: { file: string; detail: string }[];
}

/** JSON safe inside a <script> element (no "</script>", no U+2028/9 line breaks). */
function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

/**
 * The Vega runtime, inlined so the report opens offline (file://, no CDN). Charts are compiled from
 * Vega-Lite on the server, so the page needs only Vega itself (~500 kB) and draws with `vega.View`.
 */
function vegaRuntime(): string {
  const path = require.resolve("vega/build/vega.min.js");
  return readFileSync(path, "utf8").replace(/<\/script/gi, "<\\/script");
}

const BOOT = `
(function () {
  var charts = document.querySelectorAll("div.chart[data-spec]");
  charts.forEach(function (el) {
    var spec = JSON.parse(document.getElementById(el.getAttribute("data-spec")).textContent);
    var view = new vega.View(vega.parse(spec), { renderer: "svg", container: el, hover: true });
    view.runAsync().then(function () {
      // Charts are sized for print (PNG at 2x); on screen, enlarge them to use the page's width.
      var svg = el.querySelector("svg");
      var w = svg && parseFloat(svg.getAttribute("width"));
      if (w && svg.getAttribute("viewBox")) {
        svg.style.width = Math.min(el.clientWidth, w * 1.35) + "px";
        svg.style.height = "auto";
      }
      el.setAttribute("data-rendered", "1");
    })
      .catch(function (err) { el.textContent = "This chart failed to render: " + err; console.error(err); });
  });
})();`;

const STYLE = `
body { font-family: "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; color: #222; margin: 0 auto; max-width: 1180px; padding: 24px 32px 64px; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.1em; } h2 { margin-top: 2.2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.subtitle { color: #666; margin-top: 0; } nav a { margin-right: 1em; }
figure { margin: 1.2em 0 2em; } figcaption { color: #444; font-size: 0.92em; max-width: 900px; margin-top: 0.4em; }
figcaption a { margin-left: 0.5em; } .chart { overflow-x: auto; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; margin: 1em 0 2em; font-size: 0.9em; font-variant-numeric: tabular-nums; }
caption { caption-side: bottom; text-align: left; color: #444; font-size: 0.92em; padding-top: 0.4em; max-width: 900px; }
th, td { border-bottom: 1px solid #e3e3e3; padding: 3px 10px; text-align: right; white-space: nowrap; }
thead th { border-bottom: 2px solid #999; } tbody th { text-align: left; font-weight: normal; }
td.best { font-weight: bold; } .skipped { color: #8a5a00; background: #fff8e6; padding: 6px 10px; border-left: 3px solid #e0a800; }
.notes li, .findings li { margin: 0.3em 0; } code { font-size: 0.95em; }
`;

/** Build the self-contained index.html: no external script, stylesheet, font or image. */
export function renderHtml(page: PageInput): string {
  const body: string[] = [];
  const specs: string[] = [];
  body.push(`<h1>${escapeHtml(page.title)}</h1>`, `<p class="subtitle">${escapeHtml(page.subtitle)}</p>`);
  body.push(
    `<nav>${page.sections.map((s) => `<a href="#${escapeHtml(s.id)}">${escapeHtml(s.title)}</a>`).join(" ")}<a href="#notes">Notes</a></nav>`,
  );
  body.push('<h2 id="findings">Key findings</h2>', '<ul class="findings">');
  body.push(
    ...(page.findings.length ? page.findings : ["No results to summarise yet."]).map(
      (f) => `<li>${escapeHtml(f)}</li>`,
    ),
  );
  body.push("</ul>");
  for (const s of page.sections) {
    body.push(`<section id="${escapeHtml(s.id)}">`, `<h2>${escapeHtml(s.title)}</h2>`);
    for (const item of s.items) {
      if ("chart" in item) {
        const c = item.chart;
        const specId = `spec-${c.id}`;
        specs.push(`<script type="application/json" id="${specId}">${scriptJson(item.vega)}</script>`);
        body.push(
          `<figure id="fig-${escapeHtml(c.id)}">`,
          `<div class="chart" id="chart-${escapeHtml(c.id)}" data-spec="${specId}" role="img" aria-label="${escapeHtml(c.title)}"></div>`,
          `<figcaption><strong>${escapeHtml(c.title)}.</strong> ${escapeHtml(c.caption)}<a href="${escapeHtml(item.png)}">PNG</a><a href="${escapeHtml(`${c.id}.svg`)}">SVG</a><a href="${escapeHtml(`${c.id}.vl.json`)}">Vega-Lite spec</a></figcaption>`,
          "</figure>",
        );
      } else if ("table" in item) {
        body.push(
          `<h3>${escapeHtml(item.table.title)}</h3>`,
          `<div class="table-wrap">${tableHtml(item.table)}</div>`,
        );
      } else {
        body.push(`<p class="skipped">${escapeHtml(item.skipped)}</p>`);
      }
    }
    body.push("</section>");
  }
  body.push('<h2 id="notes">Notes</h2>', '<ul class="notes">');
  body.push(...page.notes.map((n) => `<li>${escapeHtml(n)}</li>`));
  body.push("</ul>", "<h3>Inputs</h3>", "<ul>");
  body.push(
    ...page.inputs.map((i) => `<li><code>${escapeHtml(i.file)}</code>: ${escapeHtml(i.detail)}</li>`),
  );
  body.push("</ul>");
  return [
    "<!doctype html>",
    '<html lang="en">',
    "<head>",
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(page.title)}</title>`,
    `<style>${STYLE}</style>`,
    "</head>",
    "<body>",
    ...body,
    ...specs,
    `<script>${vegaRuntime()}</script>`,
    `<script>${BOOT}</script>`,
    "</body>",
    "</html>",
    "",
  ].join("\n");
}
