import { createHash } from "node:crypto";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { SynthmixError } from "../util/errors.js";
import { readBrownDocs } from "./readers/brown.js";
import type { ReadOptions } from "./readers/common.js";
import { readJsonlDocs } from "./readers/jsonl.js";
import { readParquetDocs } from "./readers/parquet.js";
import { readTextFileDoc } from "./readers/text.js";
import { readWarcDocs } from "./readers/warc.js";
import type { Doc } from "./types.js";

export type { ReadOptions } from "./readers/common.js";

export type SourceKind = "brown" | "jsonl" | "parquet" | "text" | "warc" | "dir";

/** A source: a path (kind from its extension, or a folder) or "brown", optionally with a forced kind. */
export interface SourceSpec {
  kind?: SourceKind;
  path: string;
}

const TEXT_EXT = /\.(txt|md)$/i;

/** The reader kind for one file name, or undefined if the name says nothing. */
export function kindOfFile(name: string): Exclude<SourceKind, "dir" | "brown"> | undefined {
  const n = name.toLowerCase();
  if (/\.(jsonl?|ndjson)(\.gz|\.zstd?)?$/.test(n)) return "jsonl";
  if (n.endsWith(".parquet")) return "parquet";
  if (/\.(warc|wet|arc)(\.gz)?$/.test(n)) return "warc";
  if (TEXT_EXT.test(n)) return "text";
  return undefined;
}

export function resolveSource(source: string | SourceSpec): Required<SourceSpec> {
  const spec = typeof source === "string" ? { path: source } : source;
  if (spec.kind) return { kind: spec.kind, path: spec.path };
  if (spec.path === "brown" && !existsSync(spec.path)) return { kind: "brown", path: "brown" };
  if (!existsSync(spec.path)) {
    throw new SynthmixError("NO_SOURCE", `${spec.path}: no such file or folder`, {
      hint: 'give a .jsonl[.gz|.zst], .parquet, .warc[.gz]/.wet[.gz] or .txt/.md file, a folder, or "brown"',
    });
  }
  if (statSync(spec.path).isDirectory()) return { kind: "dir", path: spec.path };
  const kind = kindOfFile(spec.path);
  if (!kind) {
    throw new SynthmixError("UNKNOWN_FORMAT", `${spec.path}: cannot tell the format from the file name`, {
      hint: "rename it to one of .jsonl, .jsonl.gz, .jsonl.zst, .parquet, .warc(.gz), .wet(.gz), .txt, .md, or pass the format with --kind jsonl|parquet|warc|text",
    });
  }
  return { kind, path: spec.path };
}

/**
 * A fingerprint of a folder's files (relative path, size, mtime), so a re-import notices a folder that
 * gained, lost or changed files.
 */
export function folderFingerprint(dir: string): { files: number; bytes: number; hash: string } {
  const files = listFiles(dir);
  const h = createHash("sha256");
  let bytes = 0;
  for (const f of files) {
    const st = statSync(f);
    bytes += st.size;
    h.update(`${relative(dir, f)}\0${st.size}\0${Math.round(st.mtimeMs)}\n`);
  }
  return { files: files.length, bytes, hash: h.digest("hex").slice(0, 16) };
}

/** Every file under `dir`, recursively, in sorted order (so ids and splits do not depend on readdir). */
export function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    if (name.startsWith(".")) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...listFiles(p));
    else out.push(p);
  }
  return out;
}

/**
 * Stream documents from any supported source. A folder is read recursively in sorted order, each file by
 * its extension (so a folder of Parquet shards or of .txt files both work); with kind "text" only
 * .txt/.md files are read. Nothing is loaded whole except single plain-text documents.
 */
export async function* readDocuments(
  source: string | SourceSpec,
  opts: ReadOptions = {},
): AsyncGenerator<Doc> {
  const { kind, path } = resolveSource(source);
  switch (kind) {
    case "brown":
      yield* readBrownDocs(opts);
      return;
    case "jsonl":
      yield* readJsonlDocs(path, opts);
      return;
    case "parquet":
      yield* readParquetDocs(path, opts);
      return;
    case "warc":
      yield* readWarcDocs(path, opts);
      return;
    case "text":
    case "dir": {
      if (!statSync(path).isDirectory()) {
        const doc = readTextFileDoc(path, opts);
        if (doc) yield doc;
        return;
      }
      for (const file of listFiles(path)) {
        const k = kindOfFile(file);
        if (k === "text") {
          const doc = readTextFileDoc(file, opts, path);
          if (doc) yield doc;
        } else if (k && kind === "dir") {
          yield* readDocuments({ kind: k, path: file }, opts);
        } else {
          // Never silently: the import names every file it did not read.
          opts.onSkippedFile?.(file, k ? `a ${k} file in a --kind text folder` : "unknown format");
        }
      }
      return;
    }
  }
}
