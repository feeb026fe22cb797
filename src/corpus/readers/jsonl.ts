import { BadRecordError } from "../../util/errors.js";
import type { Doc } from "../types.js";
import { badRecord, type ReadOptions, recordToDoc } from "./common.js";
import { readDecompressed } from "./compressed.js";

// ignoreBOM false: a byte-order mark opening the file (or a line) is not part of the JSON.
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Lines of a (possibly .gz/.zst) file as bytes with 1-based numbers. Lines are split on bytes, not
 * decoded text, so each line can be decoded strictly: invalid UTF-8 is a bad record naming the line, as
 * in the .txt reader, instead of turning silently into U+FFFD.
 */
async function* byteLines(path: string): AsyncGenerator<{ bytes: Uint8Array; line: number }> {
  let carry: Uint8Array | null = null;
  let line = 0;
  for await (const chunk of readDecompressed(path)) {
    let buf = chunk;
    if (carry) {
      buf = new Uint8Array(carry.length + chunk.length);
      buf.set(carry);
      buf.set(chunk, carry.length);
      carry = null;
    }
    let start = 0;
    for (let nl = buf.indexOf(10, start); nl >= 0; nl = buf.indexOf(10, start)) {
      line++;
      yield { bytes: buf.subarray(start, nl), line };
      start = nl + 1;
    }
    if (start < buf.length) carry = buf.slice(start);
  }
  if (carry && carry.length > 0) yield { bytes: carry, line: line + 1 };
}

function parseLine(path: string, bytes: Uint8Array, line: number): unknown {
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    throw new BadRecordError(path, line, "invalid UTF-8", {
      hint: "convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8), or pass --skip-bad-records to skip and count such lines",
    });
  }
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new BadRecordError(path, line, `malformed JSON (${(e as Error).message})`, {
      hint: "fix or remove the line, or pass --skip-bad-records to skip and count such lines",
    });
  }
}

/** Stream documents from a JSONL file (plain, .gz or .zst), one JSON object per line. */
export async function* readJsonlDocs(path: string, opts: ReadOptions = {}): AsyncGenerator<Doc> {
  let last = 0;
  try {
    for await (const { bytes, line } of byteLines(path)) {
      last = line;
      let value: unknown;
      try {
        value = parseLine(path, bytes, line);
      } catch (e) {
        if (!(e instanceof BadRecordError)) throw e;
        badRecord(opts, e);
        continue;
      }
      if (value === undefined) continue;
      if (value === null || typeof value !== "object" || Array.isArray(value)) {
        badRecord(opts, new BadRecordError(path, line, "expected a JSON object per line"));
        continue;
      }
      // Cast: checked just above to be a non-null, non-array object.
      const doc = recordToDoc(value as Record<string, unknown>, path, line, opts);
      if ("error" in doc) {
        badRecord(
          opts,
          new BadRecordError(path, line, doc.error, {
            hint: "choose the text field with --text-field, or pass --skip-bad-records",
          }),
        );
        continue;
      }
      yield doc;
    }
  } catch (e) {
    if (e instanceof BadRecordError) throw e;
    // A decompression or read error: everything after it is lost, so it is never silently skipped.
    throw new BadRecordError(path, last + 1, `cannot read: ${(e as Error).message}`, {
      cause: e,
      hint: "the file is truncated or not in the format its name says; re-download or recompress it",
    });
  }
}
