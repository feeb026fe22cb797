import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { brownDocuments } from "../../bench/tokenizer/brown.js";
import { buildProgram } from "../../src/cli/main.js";
import { encodeDocuments, Tokenizer } from "../../src/tokenizer/index.js";
import { readTokens } from "../../src/util/tokenfile.js";
import { lcg, randomText } from "./helpers.js";

let dir: string;
let tok: Tokenizer;
let tokPath: string;
let docs: string[];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "synthmix-tok-par-"));
  const brown = brownDocuments(6);
  tok = await Tokenizer.train(brown, { vocabSize: 800 });
  tokPath = join(dir, "tokenizer.json");
  tok.save(tokPath);
  const rnd = lcg(9);
  docs = [...brown, ...Array.from({ length: 100 }, () => randomText(rnd)), "", "<|endoftext|>"];
});
after(() => rmSync(dir, { recursive: true, force: true }));

test("encodeDocuments on worker threads equals sequential encode, in order (sync and async input)", async () => {
  const expected = docs.map((d) => [...tok.encode(d), tok.eotId]);
  const got: number[][] = [];
  // Small batches so that several are in flight on both workers and must be reordered.
  for await (const ids of encodeDocuments(tokPath, docs, { threads: 2, appendEot: true, batchChars: 2000 })) {
    got.push(ids);
  }
  assert.deepEqual(got, expected);
  async function* gen() {
    for (const d of docs) yield d;
  }
  const got1: number[][] = [];
  for await (const ids of encodeDocuments(tokPath, gen(), { threads: 1 })) got1.push(ids);
  assert.deepEqual(
    got1,
    docs.map((d) => tok.encode(d)),
  );
});

test("encodeDocuments reports a missing tokenizer file", async () => {
  await assert.rejects(async () => {
    for await (const _ of encodeDocuments(join(dir, "nope.json"), ["x"])) {
      // consume
    }
  }, /nope\.json/);
});

test("CLI: train, encode (uint16, eot after each document) and info", async () => {
  const jsonl = join(dir, "train.jsonl");
  const small = docs.slice(0, 5);
  writeFileSync(jsonl, small.map((text, k) => JSON.stringify({ id: `d${k}`, text })).join("\n") + "\n");
  const out = join(dir, "cli", "tokenizer.json");
  const logs: string[] = [];
  const log = console.log;
  const prevMode = process.env.SYNTHMIX_PROGRESS;
  process.env.SYNTHMIX_PROGRESS = "silent";
  console.log = (...a: unknown[]) => logs.push(a.join(" "));
  try {
    await buildProgram().parseAsync([
      "node",
      "synthmix",
      "tokenizer",
      "train",
      "--corpus",
      jsonl,
      "--vocab",
      "700",
      "--out",
      out,
    ]);
    const t = Tokenizer.fromFile(out);
    assert.equal(t.vocabSize, 700);
    const bin = join(dir, "x.bin");
    await buildProgram().parseAsync([
      "node",
      "synthmix",
      "tokenizer",
      "encode",
      "--tokenizer",
      out,
      "--in",
      jsonl,
      "--out",
      bin,
      "--threads",
      "1",
    ]);
    const ids = Array.from(readTokens(bin, "uint16"));
    assert.deepEqual(
      ids,
      small.flatMap((d) => [...t.encode(d), t.eotId]),
    );
    await buildProgram().parseAsync(["node", "synthmix", "tokenizer", "info", out, "--text", "hello world"]);
  } finally {
    console.log = log;
    if (prevMode === undefined) delete process.env.SYNTHMIX_PROGRESS;
    else process.env.SYNTHMIX_PROGRESS = prevMode;
  }
  const text = logs.join("\n");
  assert.match(text, /documents 5/);
  assert.match(text, /bytes\/token \d/);
  assert.match(text, /vocabulary 700 \(256 bytes \+ 443 merges \+ 1 special\)/);
  assert.equal(readFileSync(out, "utf8"), Tokenizer.fromFile(out).toJSONString());
});
