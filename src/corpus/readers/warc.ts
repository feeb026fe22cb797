import { closeSync, createReadStream, openSync, readSync } from "node:fs";
import { constants, createGunzip } from "node:zlib";
import { AsyncIterReader, type LimitReader, WARCParser, type WARCRecord } from "warcio";
import { BadRecordError } from "../../util/errors.js";
import type { Doc } from "../types.js";
import { decodeHtmlBody } from "./charset.js";
import { badRecord, type ReadOptions } from "./common.js";
import { extractHtml } from "./html.js";

const utf8 = new TextDecoder("utf-8");

/**
 * Stream documents from a WARC or WET file (plain or gzip, as CommonCrawl writes them: one gzip member per
 * record). Gzip is decoded by node's zlib rather than warcio's pako path, whose handling of a truncated
 * member we could not make report the cut. WET `conversion` records are text as-is. WARC `response` records
 * (2xx, HTML) are de-chunked and decompressed (Content-Encoding gzip/deflate) by warcio, decoded with the
 * charset of the HTTP header, else the page's <meta>, else UTF-8 (charset.ts), and turned into text by
 * htmlparser2 (html.ts); a Content-Encoding warcio cannot decode (br, zstd) is a bad record. Every other
 * record type is ignored.
 * A truncated file (short gzip member or record) is a bad record naming the file and 1-based record
 * number; nothing after it can be trusted, so with skipBadRecords the rest of the file is skipped.
 */
export async function* readWarcDocs(path: string, opts: ReadOptions = {}): AsyncGenerator<Doc> {
  const src = new WarcSource(path);
  let n = 0;
  try {
    const parser = new WARCParser(new AsyncIterReader(src.input, null));
    for (let record = await nextRecord(parser, src, n); record; record = await nextRecord(parser, src, n)) {
      n++;
      const raw = await readBlock(record, path, n);
      const body = await httpBody(record, raw, path, n, opts);
      if (body === null) continue;
      const doc = recordToDoc(record, record.warcType!, body, path, n, opts);
      if (doc) yield doc;
    }
  } catch (e) {
    if (!(e instanceof BadRecordError)) throw e;
    badRecord(opts, e);
  } finally {
    src.destroy();
  }
}

/**
 * The file's bytes for warcio, gunzipped when the name says gzip. Two decoders run on the same bytes:
 * `gunzip` (Z_SYNC_FLUSH) hands over every byte decoded so far even at a truncated end (a failing node
 * stream drops its buffered output, which would hide the complete records before the cut), and `verify`
 * (default flush) reports the truncation, even one at a member boundary that leaves every record whole
 * but the gzip stream incomplete. The second decode costs ~1 CPU pass.
 */
class WarcSource {
  readonly input: NodeJS.ReadableStream;
  /** The first gzip error of either decoder. */
  gzError: Error | undefined;
  /** Resolves when the verifying decoder has seen the whole file (or failed). */
  readonly verified: Promise<void>;
  private readonly stream: ReturnType<typeof createReadStream>;
  private readonly gunzip?: ReturnType<typeof createGunzip>;
  private readonly verify?: ReturnType<typeof createGunzip>;

  constructor(readonly path: string) {
    this.stream = createReadStream(path);
    if (!isGzip(path)) {
      this.input = this.stream;
      this.verified = Promise.resolve();
      return;
    }
    const gunzip = createGunzip({ finishFlush: constants.Z_SYNC_FLUSH });
    const verify = createGunzip();
    this.gunzip = gunzip;
    this.verify = verify;
    this.verified = new Promise<void>((resolve) => {
      verify.on("error", (e) => {
        this.gzError ??= e;
        resolve();
      });
      verify.on("end", resolve);
      verify.resume();
    });
    gunzip.on("error", (e) => {
      this.gzError ??= e;
    });
    this.stream.pipe(gunzip);
    this.stream.pipe(verify);
    this.input = gunzip;
  }

  destroy(): void {
    this.gunzip?.destroy();
    this.verify?.destroy();
    this.stream.destroy();
  }
}

/** The next record, or null at a clean end of file; a cut or corrupt record is a BadRecordError. */
async function nextRecord(parser: WARCParser, src: WarcSource, n: number): Promise<WARCRecord | null> {
  let record: WARCRecord | null;
  try {
    record = await parser.parse();
  } catch (e) {
    throw truncated(src.path, n + 1, (e as Error).message);
  }
  if (record?.warcType) return record;
  // warcio may swallow a source error mid-header and return an empty record or end early.
  if (record === null) await src.verified;
  if (src.gzError || record !== null) throw truncated(src.path, n + 1, src.gzError?.message ?? "bad header");
  return null;
}

/** The record's raw block, read by us so a short read (truncation) shows as an unfilled limit. */
async function readBlock(record: WARCRecord, path: string, n: number): Promise<Uint8Array> {
  const expected = record.warcContentLength;
  // Cast: warcio types `reader` as its base class; a record read from a file always holds a LimitReader.
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
  return raw;
}

function truncated(path: string, n: number, what: string): BadRecordError {
  return new BadRecordError(path, n, `truncated or corrupt WARC record (${what})`, {
    hint: "re-download the file (a partial download leaves a short last gzip member), or pass --skip-bad-records",
  });
}

const DECODABLE = new Set(["gzip", "x-gzip", "deflate"]);

/** Is this an HTML response worth extracting (2xx, an HTML content type)? */
function isHtmlResponse(record: WARCRecord): boolean {
  const h = record.httpHeaders;
  if (!h) return false;
  const status = Number(h.statusCode);
  if (Number.isFinite(status) && (status < 200 || status >= 300)) return false;
  return /html/i.test(h.headers.get("content-type") ?? "");
}

/**
 * The payload to extract: WET/other records as they are; HTML responses with Transfer-Encoding and
 * Content-Encoding undone by warcio (it decodes the raw block already read). null: not a document.
 */
async function httpBody(
  record: WARCRecord,
  raw: Uint8Array,
  path: string,
  n: number,
  opts: ReadOptions,
): Promise<Uint8Array | null> {
  if (record.warcType !== "response") return raw;
  if (!isHtmlResponse(record)) return null;
  const enc = (record.httpHeaders?.headers.get("content-encoding") ?? "identity").trim().toLowerCase();
  if (enc !== "identity" && enc !== "" && !DECODABLE.has(enc)) {
    badRecord(
      opts,
      new BadRecordError(path, n, `HTTP Content-Encoding "${enc}" cannot be decoded`, {
        hint: "only gzip and deflate bodies are decoded; pass --skip-bad-records to import the rest of the file",
      }),
    );
    return null;
  }
  let body: Uint8Array;
  try {
    body = await record.readFully(true);
  } catch (e) {
    badRecord(opts, new BadRecordError(path, n, `cannot decode the HTTP body (${(e as Error).message})`));
    return null;
  }
  // warcio passes bytes through unchanged when inflating fails: a body still starting with the gzip magic
  // was not decoded, and importing it as text would be garbage.
  if (DECODABLE.has(enc) && body[0] === 0x1f && body[1] === 0x8b) {
    badRecord(
      opts,
      new BadRecordError(path, n, `corrupt ${enc} HTTP body`, { hint: "pass --skip-bad-records" }),
    );
    return null;
  }
  return body;
}

function recordToDoc(
  record: WARCRecord,
  type: string,
  body: Uint8Array,
  path: string,
  n: number,
  opts: ReadOptions,
): Doc | undefined {
  let text: string;
  const meta: Record<string, unknown> = {};
  if (type === "conversion") {
    text = utf8.decode(body);
    meta.extraction = "wet";
  } else if (type === "response") {
    const decoded = decodeHtmlBody(body, record.httpHeaders?.headers.get("content-type"));
    const page = extractHtml(decoded.text);
    text = page.title ? `${page.title}\n${page.text}` : page.text;
    meta.extraction = "htmlparser2";
    meta.charset = decoded.encoding;
  } else {
    return undefined;
  }
  const recordId = record.warcHeader("WARC-Record-ID")?.replace(/^<|>$/g, "");
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
