import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { gzipSync } from "node:zlib";
import { parquetWriteBuffer } from "hyparquet-writer";
import { WARCRecord, WARCSerializer } from "warcio";
import { readDocuments } from "../../src/corpus/index.js";
import { BadRecordError } from "../../src/util/errors.js";
import { collect, tmp } from "./helpers.js";

function skipping() {
  const errors: BadRecordError[] = [];
  return { errors, opts: { skipBadRecords: true, onBadRecord: (e: BadRecordError) => errors.push(e) } };
}

test("JSONL: text field, id fallback, other fields to meta, gzip", async () => {
  const dir = tmp();
  const lines = [
    { id: "a", text: "Alpha text.", domain: "news", score: 3 },
    { body: "Bravo text.", lang: "en" },
    { id: 7, body: "Charlie." },
  ];
  const p = join(dir, "data.jsonl");
  writeFileSync(p, `${lines.map((l) => JSON.stringify(l)).join("\n")}\n`);
  // Lines 2 and 3 lack "text": by default that is a bad record.
  await assert.rejects(collect(readDocuments(p)), /data\.jsonl:2: no "text" field \(fields: body, lang\)/);
  const gz = join(dir, "data.jsonl.gz");
  writeFileSync(gz, gzipSync(lines.map((l) => JSON.stringify(l)).join("\n")));
  const byBody = await collect(readDocuments(gz, { textField: "body", skipBadRecords: true }));
  assert.deepEqual(byBody, [
    { id: "data.jsonl.gz:2", text: "Bravo text.", source: "natural", meta: { lang: "en" } },
    { id: "7", text: "Charlie.", source: "natural" },
  ]);
  const first = await collect(readDocuments(p, { skipBadRecords: true }));
  assert.deepEqual(first, [
    { id: "a", text: "Alpha text.", source: "natural", meta: { domain: "news", score: 3 } },
  ]);
});

test("JSONL: malformed line names file and line; skip-bad-records counts; truncated gzip", async () => {
  const dir = tmp();
  const p = join(dir, "bad.jsonl");
  writeFileSync(p, '{"text":"one"}\n{"text": "two"\n\n{"text":"three"}\n');
  await assert.rejects(collect(readDocuments(p)), (e: unknown) => {
    assert.ok(e instanceof BadRecordError);
    assert.equal(e.file, p);
    assert.equal(e.record, 2);
    assert.match(e.message, /bad\.jsonl:2: malformed JSON/);
    return true;
  });
  const s = skipping();
  const docs = await collect(readDocuments(p, s.opts));
  assert.deepEqual(
    docs.map((d) => [d.id, d.text]),
    [
      ["bad.jsonl:1", "one"],
      ["bad.jsonl:4", "three"],
    ],
  );
  assert.equal(s.errors.length, 1);

  const gz = join(dir, "cut.jsonl.gz");
  const full = gzipSync(
    Array.from({ length: 2000 }, (_, i) => JSON.stringify({ text: `doc ${i} ${"x".repeat(50)}` })).join("\n"),
  );
  writeFileSync(gz, full.subarray(0, Math.floor(full.length / 2)));
  await assert.rejects(collect(readDocuments(gz)), /cut\.jsonl\.gz:\d+: cannot read: unexpected end of file/);
});

test("Parquet: streams row groups, ids from the id column or row numbers, meta from other columns", async () => {
  const dir = tmp();
  const n = 25;
  const buf = parquetWriteBuffer({
    columnData: [
      { name: "text", data: Array.from({ length: n }, (_, i) => `document number ${i}`), type: "STRING" },
      { name: "url", data: Array.from({ length: n }, (_, i) => `https://x/${i}`), type: "STRING" },
      { name: "token_count", data: Array.from({ length: n }, (_, i) => BigInt(i * 10)), type: "INT64" },
    ],
    rowGroupSize: 10,
  });
  const p = join(dir, "shard.parquet");
  writeFileSync(p, new Uint8Array(buf));
  const docs = await collect(readDocuments(p));
  assert.equal(docs.length, n);
  assert.deepEqual(docs[12], {
    id: "shard.parquet:13",
    text: "document number 12",
    source: "natural",
    meta: { url: "https://x/12", token_count: 120 },
  });
  // A gzip-compressed shard decodes through hyparquet-compressors.
  const gz = join(dir, "gzip.parquet");
  const gzBuf = parquetWriteBuffer({
    columnData: [{ name: "text", data: ["zipped one", "zipped two"], type: "STRING" }],
    codec: "GZIP",
    compressors: { GZIP: (input: Uint8Array) => new Uint8Array(gzipSync(input)) },
  });
  writeFileSync(gz, new Uint8Array(gzBuf));
  assert.deepEqual(
    (await collect(readDocuments(gz))).map((d) => d.text),
    ["zipped one", "zipped two"],
  );
  // Same shard read by --text-field url.
  const byUrl = await collect(readDocuments(p, { textField: "url" }));
  assert.equal(byUrl[3].text, "https://x/3");
});

test("Parquet without the text column is an error listing the columns (or one skipped record)", async () => {
  const dir = tmp();
  const p = join(dir, "nocol.parquet");
  const buf = parquetWriteBuffer({
    columnData: [
      { name: "content", data: ["a", "b"], type: "STRING" },
      { name: "id", data: ["x", "y"], type: "STRING" },
    ],
  });
  writeFileSync(p, new Uint8Array(buf));
  await assert.rejects(
    collect(readDocuments(p)),
    /nocol\.parquet:0: no text column "text"; columns: content, id/,
  );
  const s = skipping();
  assert.deepEqual(await collect(readDocuments(p, s.opts)), []);
  assert.equal(s.errors.length, 1);
  const ok = await collect(readDocuments(p, { textField: "content" }));
  assert.deepEqual(
    ok.map((d) => d.id),
    ["x", "y"],
  );
});

test("plain text: a file, a folder (recursive, domain = first sub-folder), invalid UTF-8", async () => {
  const dir = tmp();
  mkdirSync(join(dir, "news", "2024"), { recursive: true });
  mkdirSync(join(dir, "fiction"));
  writeFileSync(join(dir, "news", "2024", "a.txt"), "News story.\n");
  writeFileSync(join(dir, "fiction", "b.md"), "# Tale\nOnce upon a time.");
  writeFileSync(join(dir, "top.txt"), "Top level.");
  writeFileSync(join(dir, "ignored.bin"), "zzz");
  const docs = await collect(readDocuments(dir));
  assert.deepEqual(
    docs.map((d) => [d.id, d.meta?.domain]),
    [
      ["fiction/b.md", "fiction"],
      ["news/2024/a.txt", "news"],
      ["top.txt", undefined],
    ],
  );
  assert.equal(docs[1].text, "News story.\n");
  const single = await collect(readDocuments(join(dir, "top.txt")));
  assert.equal(single[0].text, "Top level.");

  const bad = join(dir, "fiction", "latin1.txt");
  writeFileSync(
    bad,
    Buffer.concat([Buffer.from("line one\nline two caf"), Buffer.from([0xe9]), Buffer.from("\n")]),
  );
  await assert.rejects(collect(readDocuments(dir)), (e: unknown) => {
    assert.ok(e instanceof BadRecordError);
    assert.equal(e.file, bad);
    assert.equal(e.record, 2);
    assert.match(e.message, /latin1\.txt:2: invalid UTF-8/);
    return true;
  });
  const s = skipping();
  assert.equal((await collect(readDocuments(dir, s.opts))).length, 3);
  assert.equal(s.errors.length, 1);
});

async function warcRecord(
  type: "conversion" | "response" | "request",
  url: string,
  body: string,
  gzip: boolean,
) {
  const bytes = new TextEncoder().encode(body);
  async function* content() {
    yield bytes;
  }
  const rec = WARCRecord.create(
    type === "conversion"
      ? { url, type, warcHeaders: { "Content-Type": "text/plain" } }
      : {
          url,
          type,
          httpHeaders: { "Content-Type": type === "response" ? "text/html; charset=utf-8" : "x" },
        },
    content(),
  );
  return Buffer.from(await WARCSerializer.serialize(rec, { gzip }));
}

test("WET conversion records are text; WARC HTML responses are tag-stripped; other records ignored", async () => {
  const dir = tmp();
  const long = "A longer third document. ".repeat(40);
  const parts = [
    await warcRecord("conversion", "https://a.example/", "First page text.\nSecond line.", true),
    await warcRecord("request", "https://b.example/", "", true),
    await warcRecord(
      "response",
      "https://b.example/",
      "<html><head><title>Fish &amp; Chips</title><style>p{}</style></head><body><p>Hello <b>web</b></p><script>x()</script><p>caf&#233; &#x2014; &lt;ok&gt;</p></body></html>",
      true,
    ),
    await warcRecord("conversion", "https://c.example/", long, true),
  ];
  const p = join(dir, "x.warc.gz");
  const all = Buffer.concat(parts);
  writeFileSync(p, all);
  const docs = await collect(readDocuments(p));
  assert.equal(docs.length, 3);
  assert.equal(docs[0].text, "First page text.\nSecond line.");
  assert.equal(docs[0].meta?.url, "https://a.example/");
  assert.equal(docs[0].meta?.extraction, "wet");
  assert.equal(docs[1].text, "Fish & Chips\nHello web\ncafé — <ok>");
  assert.equal(docs[1].meta?.extraction, "htmlparser2");
  assert.equal(docs[2].text, long);
  assert.match(docs[0].id, /^urn:uuid:/);

  // Same records uncompressed.
  const plainParts = [await warcRecord("conversion", "https://a.example/", "Plain one.", false)];
  writeFileSync(join(dir, "y.wet"), Buffer.concat(plainParts));
  assert.equal((await collect(readDocuments(join(dir, "y.wet"))))[0].text, "Plain one.");

  // Truncated: cut inside the last gzip member, and cut exactly at a member boundary minus its trailer.
  const cutMid = join(dir, "cut.warc.gz");
  writeFileSync(cutMid, all.subarray(0, all.length - 20));
  await assert.rejects(collect(readDocuments(cutMid)), /cut\.warc\.gz:4: truncated or corrupt WARC record/);
  const s = skipping();
  const kept = await collect(readDocuments(cutMid, s.opts));
  assert.equal(kept.length, 2);
  assert.equal(s.errors.length, 1);
  assert.equal(s.errors[0].record, 4);

  // Records 1-3 complete but the gzip stream cut inside member 3's trailer: still reported.
  const cutTrailer = join(dir, "trailer.warc.gz");
  writeFileSync(cutTrailer, all.subarray(0, all.length - parts[3].length - 4));
  await assert.rejects(
    collect(readDocuments(cutTrailer)),
    /trailer\.warc\.gz:4: truncated or corrupt WARC record/,
  );

  const plain = Buffer.concat([
    await warcRecord("conversion", "https://a/", "one", false),
    await warcRecord("conversion", "https://b/", long, false),
  ]);
  const cutPlain = join(dir, "cut.warc");
  writeFileSync(cutPlain, plain.subarray(0, plain.length - 100));
  await assert.rejects(collect(readDocuments(cutPlain)), /cut\.warc:2: truncated or corrupt WARC record/);
});

test("unknown formats and missing paths are clear errors", async () => {
  const dir = tmp();
  writeFileSync(join(dir, "x.csv"), "a,b");
  await assert.rejects(collect(readDocuments(join(dir, "x.csv"))), /cannot tell the format/);
  await assert.rejects(collect(readDocuments(join(dir, "nope.jsonl"))), /no such file or folder/);
});
