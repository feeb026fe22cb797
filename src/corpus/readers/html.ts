import { decodeHTML } from "entities";
import { Parser } from "htmlparser2";

/**
 * HTML-to-text for WARC `response` records, on htmlparser2: a streaming, error-tolerant HTML tokenizer
 * (the parser behind cheerio) that treats script/style/textarea/title as raw text the way browsers do and
 * decodes every HTML5 named and numeric character reference through the `entities` package (the complete
 * WHATWG table, including the legacy names allowed without a semicolon). Chosen over parse5 (the
 * spec-complete tree builder) because text extraction needs no DOM: a callback pass is several times
 * faster and allocates no tree, and the differences of tree construction (misnested tags) do not change
 * which characters are text.
 *
 * What comes out: the title on the first line, then the visible text with block-level elements and <br>
 * as line breaks, runs of HTML whitespace collapsed to one space, lines trimmed, empty lines dropped;
 * <pre> keeps its whitespace. Script, style, head, noscript, template, svg, iframe and object content is
 * dropped. It does not remove boilerplate (menus, footers) the way trafilatura or resiliparse do; for
 * CommonCrawl prefer the WET files, whose `conversion` records CommonCrawl extracted itself.
 */
const BLOCK = new Set(
  (
    "address article aside blockquote body br caption center dd details dialog dir div dl dt fieldset " +
    "figcaption figure footer form h1 h2 h3 h4 h5 h6 header hgroup hr html li main menu nav ol option p pre " +
    "section summary table tbody td tfoot th thead tr ul"
  ).split(" "),
);
const HIDDEN = new Set([
  "script",
  "style",
  "head",
  "noscript",
  "template",
  "svg",
  "iframe",
  "object",
  "math",
]);

/** Decode HTML character references (all of them: the WHATWG table, via the `entities` package). */
export function decodeEntities(s: string): string {
  return decodeHTML(s);
}

export interface HtmlText {
  title: string | undefined;
  text: string;
}

/** Title and visible text of an HTML document. */
export function extractHtml(html: string): HtmlText {
  const lines: string[] = [];
  let line = "";
  let hidden = 0;
  let pre = 0;
  let inTitle = false;
  let title: string | undefined;
  const flush = () => {
    if (pre > 0) {
      line += PRE_NL; // a <br> or block inside <pre>: a line break, the whitespace stays
      return;
    }
    // HTML whitespace only: U+00A0 and the other Unicode spaces are text, as a browser shows them.
    const t = line.replace(/[ \t\n\r\f]+/g, " ").replace(/^ | $/g, "");
    if (t !== "") lines.push(t);
    line = "";
  };
  const parser = new Parser(
    {
      onopentag(name) {
        if (name === "title") inTitle = true;
        if (HIDDEN.has(name)) hidden++;
        if (BLOCK.has(name)) flush();
        if (name === "pre") {
          if (pre === 0) flush();
          pre++;
        }
      },
      onclosetag(name) {
        if (name === "title") inTitle = false;
        if (HIDDEN.has(name)) hidden = Math.max(0, hidden - 1);
        if (name === "pre") {
          pre = Math.max(0, pre - 1);
          if (pre === 0) flushPre();
        } else if (BLOCK.has(name) && name !== "br") flush();
      },
      ontext(text) {
        if (inTitle) title = (title ?? "") + text;
        else if (hidden === 0) line += pre > 0 ? text.replace(/\n/g, PRE_NL) : text;
      },
    },
    { decodeEntities: true, lowerCaseTags: true },
  );
  // Inside <pre>, newlines are kept as a private marker through the whitespace collapse.
  const flushPre = () => {
    for (const l of line.split(PRE_NL)) {
      const t = l.replace(/[\r\f]+/g, "").replace(/\s+$/, "");
      if (t.trim() !== "") lines.push(t);
    }
    line = "";
  };
  parser.write(html);
  parser.end();
  flush();
  const t = title?.replace(/[ \t\n\r\f]+/g, " ").replace(/^ | $/g, "");
  return { title: t || undefined, text: lines.join("\n") };
}

const PRE_NL = "\u{10fffd}";

/** Visible text of an HTML document (see extractHtml), without the title. */
export function htmlToText(html: string): string {
  return extractHtml(html).text;
}
