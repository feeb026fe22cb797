import { readFileSync } from "node:fs";
import { relative, sep } from "node:path";
import { BadRecordError } from "../../util/errors.js";
import type { Doc } from "../types.js";
import { badRecord, type ReadOptions } from "./common.js";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Decode a whole file as strict UTF-8. On invalid bytes, throw a BadRecordError naming the first bad
 * line (found by decoding line by line, which only happens on the error path).
 */
export function decodeUtf8Strict(buf: Uint8Array, path: string): string {
  try {
    return utf8.decode(buf);
  } catch {
    let start = 0;
    let line = 1;
    for (let i = 0; i <= buf.length; i++) {
      if (i === buf.length || buf[i] === 0x0a) {
        try {
          utf8.decode(buf.subarray(start, i));
        } catch {
          throw new BadRecordError(path, line, `invalid UTF-8 (byte offset ${start}..${i})`, {
            hint: "convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8), or pass --skip-bad-records",
          });
        }
        start = i + 1;
        line++;
      }
    }
    throw new BadRecordError(path, line, "invalid UTF-8");
  }
}

/**
 * One plain-text file as one document. `root` (the folder given by the user) makes the id the relative
 * path and the first sub-folder the domain, so `corpus/news/a.txt` gets `meta.domain = "news"`.
 */
export function readTextFileDoc(path: string, opts: ReadOptions = {}, root?: string): Doc | undefined {
  let text: string;
  try {
    text = decodeUtf8Strict(readFileSync(path), path);
  } catch (e) {
    if (e instanceof BadRecordError) {
      badRecord(opts, e);
      return undefined;
    }
    throw e;
  }
  const rel = root ? relative(root, path).split(sep).join("/") : path.split(sep).pop()!;
  const parts = rel.split("/");
  const doc: Doc = { id: rel, text, source: opts.source ?? "natural" };
  if (parts.length > 1) doc.meta = { domain: parts[0], path: rel };
  else doc.meta = { path: rel };
  return doc;
}
