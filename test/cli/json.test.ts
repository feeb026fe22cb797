import assert from "node:assert/strict";
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { printResult } from "../../src/cli/options.js";
import { Tokenizer } from "../../src/tokenizer/index.js";
import { readTokens } from "../../src/util/tokenfile.js";
import { capture, runCliCaptured, runCliJson } from "../helpers/capture.js";

// The --json convention (src/cli/options.ts printResult): stdout is exactly one JSON document, the
// command's result; progress and logs go to stderr. runCliJson fails on any other stdout line.

const root = mkdtempSync(join(tmpdir(), "synthmix-cli-json-"));
after(() => rmSync(root, { recursive: true, force: true }));

test("printResult: one JSON document with json, the human text without", async () => {
  const j = await capture(() => printResult(true, { a: 1, b: ["x"] }, () => "human"));
  assert.deepEqual(JSON.parse(j.stdout), { a: 1, b: ["x"] });
  const h = await capture(() => printResult(false, { a: 1 }, () => "human"));
  assert.equal(h.stdout, "human\n");
});

const words = ["the", "cat", "sat", "on", "mat", "dog", "log", "ran", "far", "and"];
function docs(n: number, seed: number): string[] {
  let s = seed;
  return Array.from({ length: n }, () => {
    const w: string[] = [];
    for (let k = 0; k < 60; k++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      w.push(words[s % words.length]);
    }
    return `${w.join(" ")}.`;
  });
}

test("tokenizer train / encode / info --json, then mix testsets / build, train, sample, export-gguf, report", async () => {
  const ws = join(root, "ws");
  const corpus = join(ws, "corpus", "c", "train.jsonl");
  const testFile = join(ws, "corpus", "c", "test", "all.jsonl");
  mkdirSync(join(ws, "corpus", "c", "test"), { recursive: true });
  const jsonl = (texts: string[]) => texts.map((text, i) => JSON.stringify({ id: `d${i}`, text })).join("\n");
  writeFileSync(corpus, `${jsonl(docs(80, 1))}\n`);
  writeFileSync(testFile, `${jsonl(docs(10, 2))}\n`);
  const tokPath = join(ws, "tokenizer", "tokenizer.json");

  const trained = await runCliJson<{ out: string; vocabSize: number; sha256: string; warnings: string[] }>(
    "tokenizer",
    "train",
    "--corpus",
    corpus,
    "--vocab",
    "300",
    "--out",
    tokPath,
  );
  const tok = Tokenizer.fromFile(tokPath);
  assert.equal(trained.json.out, tokPath);
  assert.equal(trained.json.vocabSize, tok.vocabSize);
  assert.equal(trained.json.sha256, tok.sha256);
  assert.ok(Array.isArray(trained.json.warnings));

  const bin = join(root, "x.bin");
  const enc = await runCliJson<{ tokens: number; documents: number; dtype: string }>(
    "tokenizer",
    "encode",
    "--tokenizer",
    tokPath,
    "--in",
    corpus,
    "--out",
    bin,
    "--threads",
    "1",
  );
  assert.equal(enc.json.documents, 80);
  assert.equal(enc.json.tokens, readTokens(bin, "uint16").length);

  const info = await runCliJson<{
    vocabSize: number;
    text: { ids: number[] };
    corpus: { documents: number };
  }>("tokenizer", "info", tokPath, "--text", "the cat<|endoftext|>", "--corpus", corpus);
  assert.equal(info.json.vocabSize, tok.vocabSize);
  assert.deepEqual(info.json.text.ids, tok.encodeWithSpecial("the cat<|endoftext|>"));
  assert.equal(info.json.corpus.documents, 80);

  const ts = await runCliJson<{ dir: string; skipped: boolean; manifest: { domains: unknown[] } }>(
    "mix",
    "testsets",
    "-w",
    ws,
    "--threads",
    "1",
  );
  assert.equal(ts.json.skipped, false);
  assert.equal(ts.json.manifest.domains.length, 1);
  const built = await runCliJson<{ dir: string; skipped: boolean; manifest: { totalTokens: number } }>(
    "mix",
    "build",
    "-w",
    ws,
    "--source",
    `natural=${corpus}`,
    "--tokens",
    "3000",
    "--id",
    "nat",
    "--threads",
    "1",
  );
  assert.equal(built.json.manifest.totalTokens, 3000);
  // A rerun is skipped: the note goes to stderr, stdout stays one document.
  const again = await runCliJson<{ skipped: boolean }>(
    ...["mix", "build", "-w", ws, "--source", `natural=${corpus}`, "--tokens", "3000", "--id", "nat"],
    ...["--threads", "1"],
  );
  assert.equal(again.json.skipped, true);
  assert.match(again.stderr, /skipped/);

  const run = join(ws, "runs", "r1");
  const trainArgs = ["train", "--data", built.json.dir, "--test", ts.json.dir, "--tokens", "1k"];
  const trainedRun = await runCliJson<{ runDir: string; loss: number; losses: Record<string, number> }>(
    ...trainArgs,
    ...["--context", "16", "--batch", "4", "--out", run, "--kernels", "reference", "--warmup", "1"],
  );
  assert.equal(trainedRun.json.runDir, run);
  assert.ok(Number.isFinite(trainedRun.json.loss));
  assert.ok("all" in trainedRun.json.losses);
  assert.match(trainedRun.stderr, /train r1:/, "the banner goes to stderr");

  const sampled = await runCliJson<{ text: string; ids: number[] }>(
    ...["sample", "--run", run, "--tokenizer", tokPath, "--prompt", "the", "--max-tokens", "5"],
  );
  assert.equal(sampled.json.text, tok.decode(sampled.json.ids));
  const gguf = join(root, "m.gguf");
  const exported = await runCliJson<{ out: string; bytes: number }>(
    ...["export-gguf", "--run", run, "--tokenizer", tokPath, "--out", gguf],
  );
  assert.equal(exported.json.bytes, statSync(gguf).size);

  // The report stage's own fixture workspace (results/*.json of a small study).
  const repWs = join(root, "report-ws");
  cpSync(new URL("../fixtures/report/ws", import.meta.url).pathname, repWs, { recursive: true });
  const rep = await runCliJson<{ html: string; pngs: string[]; findings: string[]; skipped: unknown[] }>(
    "report",
    repWs,
  );
  assert.ok(existsSync(rep.json.html));
  assert.ok(rep.json.pngs.length > 0 && rep.json.pngs.every((p) => existsSync(p)));
  assert.ok(rep.json.findings.length > 0);
  assert.ok(Array.isArray(rep.json.skipped));

  // An error prints nothing on stdout.
  const failed = await capture(() =>
    runCliCaptured("tokenizer", "info", join(root, "missing.json"), "--json").catch((e: Error) => e.message),
  );
  assert.match(String(failed.value), /missing\.json/);
  assert.equal(failed.stdout, "");
});
