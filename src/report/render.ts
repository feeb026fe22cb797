import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { Resvg, type ResvgRenderOptions } from "@resvg/resvg-js";
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import { SynthmixError } from "../util/errors.js";

/** Font used in every chart: bundled with the package so PNGs look the same on every machine. */
export const CHART_FONT = "DejaVu Sans";

const require = createRequire(import.meta.url);

/**
 * The TrueType files resvg renders text with. resvg draws no text at all without a font, and system
 * fonts differ between machines, so we load DejaVu from the `dejavu-fonts-ttf` package (a dependency)
 * and fall back to Debian's fonts-dejavu-core only if the package is somehow absent.
 */
export function chartFontFiles(): string[] {
  const names = ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf"];
  const dirs: string[] = [];
  try {
    dirs.push(join(dirname(require.resolve("dejavu-fonts-ttf/package.json")), "ttf"));
  } catch {
    // fall through to the system path
  }
  dirs.push("/usr/share/fonts/truetype/dejavu");
  for (const dir of dirs) {
    const files = names.map((n) => join(dir, n)).filter((f) => existsSync(f));
    if (files.length > 0) return files;
  }
  throw new SynthmixError("REPORT_NO_FONT", "no font file found to render chart text into PNGs", {
    hint: "run `npm ci` (installs the dejavu-fonts-ttf package) or `apt-get install fonts-dejavu-core`",
  });
}

/** Vega-Lite -> Vega, without the `$schema` URL (the report must not reference the network). */
export function toVega(spec: TopLevelSpec): vega.Spec {
  const out = compile(spec, { logger: quietLogger() }).spec as vega.Spec & { $schema?: string };
  delete out.$schema;
  return out;
}

/** Vega-Lite warns on harmless things (e.g. `zero` with log scales); keep CLI output clean. */
function quietLogger() {
  const logger = {
    level: (_?: number) => (_ === undefined ? 0 : logger),
    error: (...args: unknown[]) => {
      throw new SynthmixError("REPORT_SPEC", `invalid chart spec: ${args.map(String).join(" ")}`);
    },
    warn: () => logger,
    info: () => logger,
    debug: () => logger,
  };
  // biome-ignore lint/suspicious/noExplicitAny: vega-lite's LoggerInterface is not exported in a stable place
  return logger as any;
}

/** Render a compiled Vega spec to SVG on the server (no DOM, no canvas). */
export async function vegaToSvg(spec: vega.Spec): Promise<string> {
  const view = new vega.View(vega.parse(spec), { renderer: "none", logLevel: vega.Error });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Rasterise an SVG to PNG at `scale` x (2 = print quality for a ~450 px wide chart). */
export function svgToPng(svg: string, scale = 2): Uint8Array {
  return new Resvg(svg, resvgOptions(scale)).render().asPng();
}

/** resvg settings: white background, zoom, and only the bundled fonts (deterministic output). */
export function resvgOptions(scale = 2): ResvgRenderOptions {
  return {
    background: "white",
    fitTo: { mode: "zoom", value: scale },
    font: { loadSystemFonts: false, fontFiles: chartFontFiles(), defaultFontFamily: CHART_FONT },
  };
}
