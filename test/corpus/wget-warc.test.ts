import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { readDocuments } from "../../src/corpus/read.js";
import type { Doc } from "../../src/corpus/types.js";

const dir = join(dirname(fileURLToPath(import.meta.url)), "fixtures", "wget");

async function collect(it: AsyncIterable<Doc>): Promise<Doc[]> {
  const out: Doc[] = [];
  for await (const d of it) out.push(d);
  return out;
}

// crawl.warc.gz was recorded by GNU wget 1.21 (--warc-file) against a local server (record.mjs): chunked,
// gzip, deflate and gzip+chunked bodies, latin-1/windows-1252 pages declared in the header or only in a
// <meta>, UTF-8 pages, many character references, and a 404 that is not a document.
test("a real wget crawl imports every page with exactly the page's text", async () => {
  const expected = JSON.parse(readFileSync(join(dir, "pages.json"), "utf8")) as {
    pages: { path: string; text: string }[];
  };
  const docs = await collect(readDocuments(join(dir, "crawl.warc.gz")));
  const byPath = new Map(docs.map((d) => [new URL(String(d.meta?.url)).pathname, d]));
  assert.equal(docs.length, expected.pages.length, `documents: ${[...byPath.keys()].join(", ")}`);
  for (const p of expected.pages) {
    const d = byPath.get(p.path);
    assert.ok(d, `${p.path} was not imported`);
    assert.equal(d.text, p.text, p.path);
  }
  assert.ok(!byPath.has("/missing.html"), "a 404 page is not a document");
  assert.equal(byPath.get("/latin1-meta.html")?.meta?.charset, "windows-1252");
  assert.equal(byPath.get("/utf8.html")?.meta?.charset, "utf-8");
});
