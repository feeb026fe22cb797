import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, test } from "node:test";
import { loadTestData } from "../../src/train/data.js";
import { readMetrics, runExternal } from "../../src/train/external.js";
import { referenceKernels } from "../../src/train/kernels/reference.js";
import { loadModel } from "../../src/train/sample.js";
import type { RunConfig } from "../../src/train/schema.js";
import { evaluate } from "../../src/train/trainer.js";
import { Rng } from "../../src/util/rng.js";
import { encodeTokens } from "../../src/util/tokenfile.js";
import { optionalTool, pythonModules } from "../helpers/optional.js";

const root = mkdtempSync(join(tmpdir(), "synthmix-ext-"));
after(() => rmSync(root, { recursive: true, force: true }));

const mix = join(root, "mix");
const tests = join(root, "test");
mkdirSync(mix);
mkdirSync(tests);
const rng = new Rng(3);
const ids = Array.from({ length: 3000 }, (_, i) => (i % 5 === 0 ? rng.int(32) : (i * 7) % 32));
writeFileSync(join(mix, "tokens.bin"), encodeTokens(ids, "uint16"));
writeFileSync(
  join(mix, "manifest.json"),
  JSON.stringify({ file: "tokens.bin", dtype: "uint16", vocabSize: 32 }),
);
writeFileSync(join(tests, "web.bin"), encodeTokens(ids.slice(0, 400), "uint16"));
writeFileSync(
  join(tests, "manifest.json"),
  JSON.stringify({
    dtype: "uint16",
    vocabSize: 32,
    eotId: 0,
    domains: [{ name: "web", file: "web.bin", tokens: 400, documents: 1 }],
  }),
);

const config: RunConfig = {
  id: "ext",
  model: { nLayer: 1, dModel: 16, nHead: 2, contextLength: 16, vocabSize: 32 },
  data: { train: mix, test: tests },
  tokens: 640,
  batchSize: 4,
  gradAccum: 1,
  sampling: "epoch",
  optimizer: {
    lr: 3e-3,
    minLrRatio: 0.1,
    warmupSteps: 2,
    weightDecay: 0.1,
    beta1: 0.9,
    beta2: 0.95,
    eps: 1e-8,
    gradClip: 1,
  },
  seed: 1,
  evalEvery: 0,
  evalTokens: 200,
  checkpointEvery: 0,
  threads: 1,
};

// A fake trainer in node: writes two records through the template's {config} and {run_dir}.
const fake = (records: string) =>
  `node -e 'const fs=require("fs");const c=JSON.parse(fs.readFileSync(process.argv[1],"utf8"));fs.writeFileSync(process.argv[2]+"/metrics.jsonl",${records})' {config} {run_dir}`;

test("runExternal substitutes {config}/{run_dir}, validates metrics and returns the final record", async () => {
  const dir = join(root, "fake run");
  const final =
    '{"type":"final","step":1,"tokens":640,"loss":3,"losses":{"web":3},"nonEmbeddingParams":1,"totalParams":2,"flops":3,"tokensPerSec":1,"elapsedSec":1}';
  const r = await runExternal(
    dir,
    config,
    fake(
      `JSON.stringify({type:"eval",step:1,tokens:c.tokens,domain:"web",loss:3,evalTokens:200})+"\\n"+${JSON.stringify(final)}+"\\n"`,
    ),
    { stdio: "ignore" },
  );
  assert.equal(r.type, "final");
  assert.equal(r.tokens, 640);
  const written = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
  assert.equal(written.data.train, resolve(mix));
  // complete: returns at once without running the command
  assert.deepEqual(await runExternal(dir, config, "exit 3"), r);
});

test("runExternal rejects a failing command and metrics that break the schema, naming file and line", async () => {
  await assert.rejects(
    runExternal(join(root, "fail"), config, "exit 3", { stdio: "ignore" }),
    /exited with code 3/,
  );
  await assert.rejects(
    runExternal(join(root, "bad"), config, fake(`JSON.stringify({type:"train",step:1})+"\\n"`), {
      stdio: "ignore",
    }),
    /metrics\.jsonl:1: not a metrics record: tokens/,
  );
  await assert.rejects(
    runExternal(join(root, "nofinal"), config, fake(`""`), { stdio: "ignore" }),
    /no "final" record/,
  );
});

const torch = optionalTool(
  "python3-torch",
  pythonModules("torch", "numpy"),
  "apt-get install -y python3-torch libopenblas0-pthread",
);

test("the example PyTorch trainer fulfils the contract; our model reproduces its eval loss", {
  skip: torch.skip,
}, async () => {
  torch.require();
  const dir = join(root, "torch");
  const script = resolve("examples/external-trainer/train.py");
  const final = await runExternal(
    dir,
    config,
    `/usr/bin/python3 ${script} --config {config} --run-dir {run_dir}`,
    {
      stdio: "ignore",
    },
  );
  const records = readMetrics(join(dir, "metrics.jsonl"));
  assert.equal(records.filter((r) => r.type === "train").length, 10);
  assert.equal(final.tokens, 640);
  assert.ok(existsSync(join(dir, "model.safetensors")));
  // Independent check of our forward pass and checkpoint reader: load the torch-written HF-named
  // weights and evaluate on the same fixed windows.
  const { model } = loadModel(dir, { kernels: referenceKernels, batch: 4 });
  const ours = evaluate(model, loadTestData(tests, 32), 200);
  assert.ok(Math.abs(ours.web - final.losses.web) < 1e-4, `ours ${ours.web} vs torch ${final.losses.web}`);
});
