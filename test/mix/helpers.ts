import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { MixTokenizer } from "../../src/mix/tokenizer.js";
import { Rng } from "../../src/util/rng.js";

/** A byte-level test tokenizer (id = UTF-8 byte, eot = 256) that counts how many documents it encoded. */
export function byteTokenizer(): MixTokenizer & { encoded: number } {
  const tok = {
    vocabSize: 257,
    eotId: 256,
    sha256: "byte-tokenizer-test",
    encoded: 0,
    async *encodeAll(texts: AsyncIterable<string> | Iterable<string>) {
      for await (const t of texts) {
        tok.encoded++;
        yield [...Buffer.from(t, "utf8")];
      }
    },
  };
  return tok;
}

/** Documents whose text starts with a tag (e.g. "N17|") so a token stream can be traced back to them. */
export function makeDocs(
  tag: string,
  count: number,
  seed: number,
): { id: string; text: string; source: string }[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, (_, i) => {
    const words = 10 + rng.int(70);
    const body = Array.from({ length: words }, () =>
      String.fromCharCode(97 + rng.int(26)).repeat(1 + rng.int(5)),
    );
    return { id: `${tag}${i}`, text: `${tag}${i}|${body.join(" ")}`, source: tag };
  });
}

export function writeJsonlFile(path: string, records: unknown[]): void {
  mkdirSync(join(path, ".."), { recursive: true });
  writeFileSync(path, records.map((r) => JSON.stringify(r)).join("\n") + "\n");
}

const created: string[] = [];

/** A workspace with a natural corpus (train + two test domains) and one synthetic folder of parts. */
export function makeWorkspace(naturalDocs = 300, hqDocs = 200): string {
  const ws = mkdtempSync(join(tmpdir(), "synthmix-mix-"));
  if (created.length === 0) {
    process.once("exit", () => {
      for (const dir of created) rmSync(dir, { recursive: true, force: true });
    });
  }
  created.push(ws);
  writeJsonlFile(join(ws, "corpus/brown/train.jsonl"), makeDocs("N", naturalDocs, 1));
  writeJsonlFile(join(ws, "corpus/brown/test/news.jsonl"), makeDocs("T", 20, 2));
  writeJsonlFile(join(ws, "corpus/brown/test/fiction.jsonl"), makeDocs("F", 10, 3));
  const hq = makeDocs("H", hqDocs, 4).map((d) => ({ ...d, source: "hq" }));
  writeJsonlFile(join(ws, "synthetic/hq-demo/part-00000.jsonl"), hq.slice(0, hqDocs / 2));
  writeJsonlFile(join(ws, "synthetic/hq-demo/part-00001.jsonl"), hq.slice(hqDocs / 2));
  return ws;
}
