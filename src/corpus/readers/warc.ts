import { closeSync, createReadStream, openSync, readSync } from "node:fs";
import { constants, createGunzip } from "node:zlib";
import { AsyncIterReader, type LimitReader, WARCParser, type WARCRecord } from "warcio";
import { BadRecordError } from "../../util/errors.js";
import type { Doc } from "../types.js";
import { badRecord, type ReadOptions } from "./common.js";
import { decodeEntities, htmlToText } from "./html.js";

const utf8 = new TextDecoder("utf-8");

/**
 * Stream documents from a WARC or WET file (plain or gzip, as CommonCrawl writes them: one gzip member per
 * record). Gzip is decoded by node's zlib rather than warcio's pako path, whose handling of a truncated
 * member we could not make report the cut. WET `conversion` records are text as-is; WARC `response` records with an
 * HTML payload go through the simple tag stripper in html.ts; every other record type is ignored.
 * A truncated file (short gzip member or record) is a bad record naming the file and 1-based record
 * number; nothing after it can be trusted, so with skipBadRecords the rest of the file is skipped.
 */
export async function* readWarcDocs(path: string, opts: ReadOptions = {}): AsyncGenerator<Doc> {
  const stream = createReadStream(path);
  // Two decoders on the same bytes: `gunzip` (Z_SYNC_FLUSH) hands over every byte decoded so far even at a
  // truncated end (a failing node stream drops its buffered output, which would hide the complete records
  // before the cut), and `verify` (default flush) reports the truncation, even one at a member boundary
  // that leaves every record whole but the gzip stream incomplete. The second decode costs ~1 CPU pass.
  const gz = isGzip(path);
  const gunzip = gz ? createGunzip({ finishFlush: constants.Z_SYNC_FLUSH }) : undefined;
  const verify = gz ? createGunzip() : undefined;
  let gzError: Error | undefined;
  const verified = new Promise<void>((resolve) => {
    if (!verify) return resolve();
    verify.on("error", (e) => {
      gzError ??= e;
      resolve();
    });
    verify.on("end", resolve);
    verify.resume();
  });
  gunzip?.on("error", (e) => {
    gzError ??= e;
  });
  if (gunzip && verify) {
    stream.pipe(gunzip);
    stream.pipe(verify);
  }
  let n = 0;
  try {
    const parser = new WARCParser(new AsyncIterReader(gunzip ?? stream, null));
    while (true) {
      let record: WARCRecord | null;
      try {
        record = await parser.parse();
      } catch (e) {
        throw truncated(path, n + 1, (e as Error).message);
      }
      if (record === null || !record.warcType) {
        // warcio may swallow a source error mid-header and return an empty record or end early.
        if (record === null) await verified;
        if (gzError || record !== null) throw truncated(path, n + 1, gzError?.message ?? "bad header");
        break;
      }
      n++;
      const type = record.warcType;
      const expected = record.warcContentLength;
      // Read the raw block ourselves so a short read (truncation) is visible as an unfilled limit.
      const limitReader = record.reader as LimitReader;
      let raw: Uint8Array;
      try {
        raw = await record.readFully(false);
      } catch (e) {
        throw truncated(path, n, (e as Error).message);
      }
      if (limitReader.limit > 0 || (!record.httpHeaders && raw.length < expected)) {
        throw truncated(path, n, `record body has ${raw.length} of ${expected} bytes`);
      }
      const doc = recordToDoc(record, type, raw, path, n, opts);
      if (doc) yield doc;
    }
  } catch (e) {
    if (!(e instanceof BadRecordError)) throw e;
    badRecord(opts, e);
  } finally {
    gunzip?.destroy();
    verify?.destroy();
    stream.destroy();
  }
}

function truncated(path: string, n: number, what: string): BadRecordError {
  return new BadRecordError(path, n, `truncated or corrupt WARC record (${what})`, {
    hint: "re-download the file (a partial download leaves a short last gzip member), or pass --skip-bad-records",
  });
}

function recordToDoc(
  record: WARCRecord,
  type: string,
  raw: Uint8Array,
  path: string,
  n: number,
  opts: ReadOptions,
): Doc | undefined {
  let text: string;
  let extraction: string;
  if (type === "conversion") {
    text = utf8.decode(raw);
    extraction = "wet";
  } else if (type === "response") {
    const ctype = record.httpHeaders?.headers.get("content-type") ?? "";
    if (!/html/i.test(ctype)) return undefined;
    const encoding = record.httpHeaders?.headers.get("content-encoding");
    if (encoding && encoding !== "identity") return undefined; // compressed payloads are rare in CC WARCs
    text = htmlToText(utf8.decode(raw));
    const title = /<title[^>]*>([\s\S]*?)<\/title>/i.exec(utf8.decode(raw.subarray(0, 65536)))?.[1];
    extraction = "html-strip";
    if (title) text = `${decodeEntities(title).trim()}\n${text}`;
  } else {
    return undefined;
  }
  const recordId = record.warcHeader("WARC-Record-ID")?.replace(/^<|>$/g, "");
  const meta: Record<string, unknown> = { extraction };
  const url = record.warcTargetURI;
  if (url) meta.url = url;
  if (record.warcDate) meta.date = record.warcDate;
  return {
    id: recordId || `${path.split("/").pop()}:${n}`,
    text,
    source: opts.source ?? "natural",
    meta,
  };
}

/** Sniff the gzip magic bytes: a file's name may not say (e.g. a download saved as `.warc.gz.part`). */
function isGzip(path: string): boolean {
  const fd = openSync(path, "r");
  try {
    const b = Buffer.alloc(2);
    return readSync(fd, b, 0, 2, 0) === 2 && b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    closeSync(fd);
  }
}
