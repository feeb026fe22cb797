import { closeSync, existsSync, openSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseDocLine } from "../corpus/docs.js";
import { listCorpora, readCorpusSplit } from "../corpus/workspace.js";
import { partFiles } from "../generate/journal.js";
import { readExactly } from "../util/readexact.js";
import type { Table } from "./tables.js";

/** One generated document next to the natural document it was generated from. */
export interface GeneratorSample {
  folder: string;
  id: string;
  parent?: string;
  text: string;
  /** The source document's text, when the document has a parent that the workspace's corpora hold. */
  sourceText?: string;
}

const HEAD_BYTES = 256 * 1024;
const EXCERPT_CHARS = 480;

/**
 * The complete JSONL lines (with their 1-based numbers) within the first HEAD_BYTES of a file: a sample
 * never reads a whole part. The last piece is dropped when the read filled the buffer (it may be cut at
 * the window) and, for a whole file, when it lacks its newline (a tail torn by a killed writer, which is
 * the generate stage's to repair).
 */
function headLines(path: string): { text: string; line: number }[] {
  const fd = openSync(path, "r");
  try {
    const size = statSync(path).size;
    const buf = Buffer.alloc(Math.min(HEAD_BYTES, size));
    readExactly(fd, buf, 0, path);
    const lines = buf.toString("utf8").split("\n");
    lines.pop(); // "" after a final newline, or a piece cut by the window or a kill
    return lines.map((text, i) => ({ text, line: i + 1 })).filter((l) => l.text.trim() !== "");
  } finally {
    closeSync(fd);
  }
}

function firstDocs(dir: string, perFolder: number): { id: string; text: string; parent?: string }[] {
  const out: { id: string; text: string; parent?: string }[] = [];
  for (const file of partFiles(dir)) {
    for (const { text, line } of headLines(file)) {
      const d = parseDocLine(text, file, line);
      const parent = d.meta?.parent;
      out.push({ id: d.id, text: d.text, parent: typeof parent === "string" ? parent : undefined });
      if (out.length >= perFolder) return out;
    }
  }
  return out;
}

/** Find the parents' texts in the workspace's imported corpora (train split), stopping once all are found. */
async function sourceTexts(workspace: string, parents: Set<string>): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  if (parents.size === 0) return found;
  for (const name of listCorpora(workspace)) {
    for await (const doc of readCorpusSplit(workspace, name, "train")) {
      if (parents.has(doc.id) && !found.has(doc.id)) found.set(doc.id, doc.text);
      if (found.size === parents.size) return found;
    }
  }
  return found;
}

/**
 * A few generated documents of every synthetic folder (`<ws>/synthetic/<style>-<generator>/`), each next
 * to the source document it rewrites, so a reader of the report can judge what the generator wrote.
 * Deterministic: the first documents of the first part files in name order.
 */
export async function readGeneratorSamples(workspace: string, perFolder = 2): Promise<GeneratorSample[]> {
  const root = join(workspace, "synthetic");
  if (!existsSync(root)) return [];
  const samples: GeneratorSample[] = [];
  for (const folder of readdirSync(root).sort()) {
    const dir = join(root, folder);
    if (!statSync(dir).isDirectory()) continue;
    for (const d of firstDocs(dir, perFolder)) samples.push({ folder, ...d });
  }
  const texts = await sourceTexts(workspace, new Set(samples.flatMap((s) => (s.parent ? [s.parent] : []))));
  for (const s of samples) if (s.parent) s.sourceText = texts.get(s.parent);
  return samples;
}

function excerpt(s: string): string {
  const t = s.replace(/\s+/g, " ").trim();
  return t.length > EXCERPT_CHARS ? `${t.slice(0, EXCERPT_CHARS)}…` : t;
}

export function samplesTable(samples: GeneratorSample[] | undefined): Table | { skipped: string } {
  if (!samples || samples.length === 0) return { skipped: "no synthetic documents in the workspace" };
  return {
    id: "generator-samples",
    title: "Generator samples",
    caption:
      "The first documents of each synthetic folder next to the natural document they were generated from " +
      `(excerpts of ${EXCERPT_CHARS} characters; TXBK sections are written from keywords and have no source document).`,
    head: ["folder / document", "source (natural)", "generated"],
    rows: samples.map((s) => [
      `${s.folder}: ${s.id}`,
      s.sourceText !== undefined
        ? excerpt(s.sourceText)
        : s.parent
          ? `(source ${s.parent} not in the workspace's corpora)`
          : "(no source document)",
      excerpt(s.text),
    ]),
  };
}
