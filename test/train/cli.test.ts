import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { buildProgram } from "../../src/cli/main.js";
import { Tokenizer } from "../../src/tokenizer/index.js";
import { encodeTokens } from "../../src/util/tokenfile.js";

const root = mkdtempSync(join(tmpdir(), "synthmix-cli-train-"));
after(() => rmSync(root, { recursive: true, force: true }));

test("synthmix train + sample: flags -> config.json -> run; rerun with --config is a no-op; sample decodes text", async () => {
  const text = "the cat sat on the mat. the dog sat on the log. ".repeat(200);
  const tok = await Tokenizer.train([text], { vocabSize: 300 });
  const tokPath = join(root, "tokenizer.json");
  tok.save(tokPath);
  const ids = tok.encode(text);
  const mix = join(root, "mix");
  mkdirSync(mix);
  writeFileSync(join(mix, "tokens.bin"), encodeTokens(ids, "uint16"));
  writeFileSync(
    join(mix, "manifest.json"),
    JSON.stringify({
      id: "m",
      file: "tokens.bin",
      dtype: "uint16",
      vocabSize: tok.vocabSize,
      eotId: tok.eotId,
    }),
  );
  const out = join(root, "runs", "r1");
  const logs: string[] = [];
  const orig = console.log;
  console.log = (s: string) => logs.push(s);
  try {
    await buildProgram().parseAsync(
      [
        "node",
        "synthmix",
        "train",
        "--data",
        mix,
        "--model",
        "s1",
        "--tokens",
        "2k",
        "--context",
        "16",
      ].concat(["--batch", "4", "--out", out, "--lr", "1e-2", "--warmup", "2"]),
    );
    const cfg = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
    assert.equal(cfg.tokens, 2000);
    assert.equal(cfg.modelName, "s1");
    assert.deepEqual(cfg.model, {
      nLayer: 1,
      dModel: 64,
      nHead: 2,
      contextLength: 16,
      vocabSize: tok.vocabSize,
    });
    assert.equal(cfg.data.train, "../../mix", "data paths are stored relative to the run folder");
    assert.equal(cfg.optimizer.lr, 0.01);
    assert.match(logs.at(-1) ?? "", /final loss \d+\.\d+ nats\/token \(train /);
    const metrics = readFileSync(join(out, "metrics.jsonl"), "utf8");
    const cfgText = readFileSync(join(out, "config.json"), "utf8");
    await buildProgram().parseAsync([
      "node",
      "synthmix",
      "train",
      "--config",
      join(out, "config.json"),
      "--kernels",
      "reference",
    ]);
    assert.equal(readFileSync(join(out, "metrics.jsonl"), "utf8"), metrics);
    assert.equal(
      readFileSync(join(out, "config.json"), "utf8"),
      cfgText,
      "config.json (relative paths) untouched",
    );
    await buildProgram().parseAsync([
      "node",
      "synthmix",
      "sample",
      "--run",
      out,
      "--tokenizer",
      tokPath,
      "--prompt",
      "the cat",
      "--max-tokens",
      "8",
    ]);
    assert.ok((logs.at(-1) ?? "").startsWith("the cat"), logs.at(-1));
    // GGUF export through the generate stage's writer: header "GGUF", v3, 2 + 12*L + 2 tensors.
    const gguf = join(root, "model.gguf");
    await buildProgram().parseAsync([
      "node",
      "synthmix",
      "export-gguf",
      "--run",
      out,
      "--tokenizer",
      tokPath,
      "--out",
      gguf,
    ]);
    const head = readFileSync(gguf);
    assert.equal(head.subarray(0, 4).toString("latin1"), "GGUF");
    assert.equal(head.readUInt32LE(4), 3);
    assert.equal(head.readBigUInt64LE(8), BigInt(2 + 12 * 1 + 2));
  } finally {
    console.log = orig;
  }
});
