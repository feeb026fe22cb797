import { basename } from "node:path";
import type { BadRecordError } from "../../util/errors.js";
import type { Doc, DocMeta } from "../types.js";

export interface ReadOptions {
  /** Field (JSONL) or column (Parquet) holding the text; default "text". */
  textField?: string;
  /** Field holding the document id; default "id". Missing ids become `<basename>:<line|row>`. */
  idField?: string;
  /** Count and skip bad records instead of throwing; see `onBadRecord`. */
  skipBadRecords?: boolean;
  /** Called for every skipped bad record (only with `skipBadRecords`). */
  onBadRecord?: (err: BadRecordError) => void;
  /** Called for every file of a folder that is not read (unknown format, or not text with kind "text"). */
  onSkippedFile?: (path: string, reason: string) => void;
  /** `source` of the documents produced; default "natural" (a record's own `source` field wins). */
  source?: string;
}

/** Throw `err`, or with `skipBadRecords` report it and let the caller skip the record. */
export function badRecord(opts: ReadOptions, err: BadRecordError): void {
  if (!opts.skipBadRecords) throw err;
  opts.onBadRecord?.(err);
}

/** JSON-safe metadata value: parquet gives bigint and Date, which JSON.stringify cannot write. */
export function jsonSafe(v: unknown): unknown {
  if (typeof v === "bigint") return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? null : v.toISOString();
  if (v instanceof Uint8Array) return undefined;
  if (Array.isArray(v)) return v.map(jsonSafe);
  if (v !== null && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const s = jsonSafe(x);
      if (s !== undefined) out[k] = s;
    }
    return out;
  }
  return v;
}

/**
 * Turn a flat record (a JSONL object or a Parquet row) into a Doc: the text field becomes `text`, the id
 * field `id`, a `meta` object is merged, and every other field goes to `meta` (so nothing is lost).
 * Returns a reason string when the record has no usable text.
 */
export function recordToDoc(
  rec: Record<string, unknown>,
  file: string,
  n: number,
  opts: ReadOptions,
): Doc | { error: string } {
  const textField = opts.textField ?? "text";
  const idField = opts.idField ?? "id";
  const text = rec[textField];
  if (typeof text !== "string") {
    const fields = Object.keys(rec).join(", ") || "none";
    return {
      error:
        text === undefined || text === null
          ? `no "${textField}" field (fields: ${fields})`
          : `field "${textField}" is a ${typeof text}, not a string`,
    };
  }
  const rawId = rec[idField];
  const id = rawId === undefined || rawId === null || rawId === "" ? `${basename(file)}:${n}` : String(rawId);
  const meta: DocMeta = {};
  for (const [k, v] of Object.entries(rec)) {
    if (k === textField || k === idField || k === "source" || k === "meta") continue;
    const s = jsonSafe(v);
    if (s !== undefined) meta[k] = s;
  }
  if (rec.meta && typeof rec.meta === "object" && !Array.isArray(rec.meta)) {
    Object.assign(meta, jsonSafe(rec.meta) as DocMeta);
  }
  const source = typeof rec.source === "string" ? rec.source : (opts.source ?? "natural");
  const doc: Doc = { id, text, source };
  if (Object.keys(meta).length > 0) doc.meta = meta;
  return doc;
}
