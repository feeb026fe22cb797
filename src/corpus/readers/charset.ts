import { TextDecoder } from "node:util";
import iconv from "iconv-lite";

/**
 * The character encoding of an HTTP response body, in the order browsers use (WHATWG "encoding sniffing"):
 * a byte-order mark, then the `charset` of the HTTP Content-Type, then a <meta charset> or
 * <meta http-equiv="Content-Type" content="...; charset=..."> in the first 1024 bytes, else UTF-8.
 * Labels go through TextDecoder's WHATWG label table, so "iso-8859-1" and "latin1" mean windows-1252, as in
 * every browser. windows-1252 itself is decoded by iconv-lite: Node 20's TextDecoder decodes it as plain
 * ISO-8859-1 (0x93 stays U+0093 instead of becoming U+201C).
 */
export interface Decoded {
  text: string;
  /** The encoding used (a TextDecoder encoding name) and where it came from. */
  encoding: string;
  from: "bom" | "http" | "meta" | "default" | "fallback";
}

function bomEncoding(b: Uint8Array): string | undefined {
  if (b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) return "utf-8";
  if (b[0] === 0xfe && b[1] === 0xff) return "utf-16be";
  if (b[0] === 0xff && b[1] === 0xfe) return "utf-16le";
  return undefined;
}

function charsetParam(contentType: string | null | undefined): string | undefined {
  const m = /;\s*charset\s*=\s*["']?([^"';\s]+)/i.exec(contentType ?? "");
  return m?.[1];
}

function metaCharset(b: Uint8Array): string | undefined {
  const head = Buffer.from(b.buffer, b.byteOffset, Math.min(b.length, 1024)).toString("latin1");
  for (const m of head.matchAll(/<meta\b[^>]*>/gi)) {
    const tag = m[0];
    const direct = /\bcharset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)/i.exec(tag);
    if (direct) return direct[1];
  }
  return undefined;
}

type Decode = { encoding: string; decode: (b: Uint8Array) => string };

function decoderFor(label: string | undefined): Decode | undefined {
  if (!label) return undefined;
  let d: TextDecoder;
  try {
    d = new TextDecoder(label.trim().toLowerCase());
  } catch {
    return undefined; // an unknown label: fall through to the next source
  }
  // A declared UTF-16 in a <meta> is impossible (the tag was read as ASCII): browsers use UTF-8 then.
  if (d.encoding.startsWith("utf-16")) d = new TextDecoder("utf-8");
  if (d.encoding === "windows-1252")
    return { encoding: d.encoding, decode: (b) => iconv.decode(Buffer.from(b), "win1252") };
  return { encoding: d.encoding, decode: (b) => d.decode(b) };
}

/** Decode an HTML response body; see the module comment for the order of the sources. */
export function decodeHtmlBody(body: Uint8Array, contentType: string | null | undefined): Decoded {
  const bom = bomEncoding(body);
  if (bom) return { text: new TextDecoder(bom).decode(body), encoding: bom, from: "bom" };
  for (const [from, label] of [
    ["http", charsetParam(contentType)],
    ["meta", metaCharset(body)],
  ] as const) {
    const d = decoderFor(label);
    if (d) return { text: d.decode(body), encoding: d.encoding, from };
  }
  try {
    return {
      text: new TextDecoder("utf-8", { fatal: true }).decode(body),
      encoding: "utf-8",
      from: "default",
    };
  } catch {
    // Undeclared and not UTF-8: the legacy default of the web (what browsers use for such pages).
    return { text: decoderFor("windows-1252")!.decode(body), encoding: "windows-1252", from: "fallback" };
  }
}
