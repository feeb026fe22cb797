/**
 * Corpus format readers: zstd JSONL shards through fzstd's streaming decoder against the zstd CLI
 * (`zstd -dc`, the reference C decoder, the strongest runnable peer), and HTML-to-text (htmlparser2)
 * throughput on the pages of the wget fixture. Part of the corpus bench (bench/corpus.ts is the import
 * and MinHash half).
 *
 *   npx tsx bench/corpus-formats.ts [--mb 20]
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { readDocuments } from "../src/corpus/index.js";
import { readDecompressed } from "../src/corpus/readers/compressed.js";
import { extractHtml } from "../src/corpus/readers/html.js";

const arg = process.argv.indexOf("--mb");
const TARGET_MB = arg > 0 ? Number(process.argv[arg + 1]) : 20;
const load0 = loadavg()[0];

async function best(runs: number, fn: () => Promise<unknown> | unknown): Promise<number> {
  let sec = Number.POSITIVE_INFINITY;
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await fn();
    sec = Math.min(sec, (performance.now() - t) / 1000);
  }
  return sec;
}

// A JSONL shard of Brown documents repeated to about TARGET_MB, compressed by the zstd CLI.
const dir = mkdtempSync(join(tmpdir(), "synthmix-fmt-bench-"));
try {
  const lines: string[] = [];
  for await (const d of readDocuments("brown")) lines.push(JSON.stringify({ id: d.id, text: d.text }));
  const one = `${lines.join("\n")}\n`;
  const jsonl = one.repeat(Math.max(1, Math.round((TARGET_MB * 1e6) / Buffer.byteLength(one))));
  const raw = join(dir, "shard.jsonl");
  writeFileSync(raw, jsonl);
  const mb = Buffer.byteLength(jsonl) / 1e6;
  const z = spawnSync("zstd", ["-q", "-3", raw, "-o", `${raw}.zst`]);
  if (z.status !== 0) {
    console.log("zstd CLI not found: the zstd comparison is skipped");
  } else {
    const ours = await best(3, async () => {
      let n = 0;
      for await (const c of readDecompressed(`${raw}.zst`)) n += c.length;
      return n;
    });
    const peer = await best(3, () => spawnSync("sh", ["-c", `zstd -dc '${raw}.zst' > /dev/null`]));
    const docs = await best(1, async () => {
      let n = 0;
      for await (const _ of readDocuments(`${raw}.zst`)) n++;
      return n;
    });
    console.log(
      `zstd decode ${mb.toFixed(1)} MB: ours (fzstd, streaming) ${(mb / ours).toFixed(0)} MB/s, zstd -dc ${(mb / peer).toFixed(0)} MB/s -> ours/peer ${(peer / ours).toFixed(2)}x; full JSONL.zst read to documents ${(mb / docs).toFixed(1)} MB/s`,
    );
  }

  // HTML extraction on the wget fixture's pages (bodies decoded from the WARC once).
  const warc = gunzipSync(
    readFileSync(new URL("../test/corpus/fixtures/wget/crawl.warc.gz", import.meta.url)),
  );
  const pages = [...warc.toString("latin1").matchAll(/<html[\s\S]*?<\/html>/gi)].map((m) => m[0]);
  const html = pages.join("\n").repeat(Math.max(1, Math.round(2e6 / pages.join("\n").length)));
  const sec = await best(3, () => extractHtml(html));
  console.log(
    `htmlparser2 extraction: ${(html.length / 1e6 / sec).toFixed(1)} MB/s of HTML (${(html.length / 1e6).toFixed(1)} MB)`,
  );
  console.log(`load average ${load0.toFixed(1)} -> ${loadavg()[0].toFixed(1)}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
