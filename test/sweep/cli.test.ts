import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import type { MixtureManifest } from "../../src/mix/manifest.js";
import { listStatuses } from "../../src/sweep/registry.js";
import { Tokenizer } from "../../src/tokenizer/index.js";
import { readTokens } from "../../src/util/tokenfile.js";
import { runCli } from "../helpers/cli.js";
import { makeWorkspace } from "../mix/helpers.js";

const cli = runCli;

test("CLI end to end with the real tokenizer and trainer: mix build, sweep run/status/results", async () => {
  const ws = makeWorkspace(120, 80);
  const texts = readFileSync(join(ws, "corpus/brown/train.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l).text as string);
  const tok = await Tokenizer.train(texts, { vocabSize: 300 });
  tok.save(join(ws, "tokenizer/tokenizer.json"));

  const printed = await cli(
    "mix",
    "build",
    "--workspace",
    ws,
    "--source",
    `natural=${join(ws, "corpus/brown/train.jsonl")}`,
    "--source",
    `hq=${join(ws, "synthetic/hq-demo")}`,
    "--ratio",
    "hq=0.33",
    "--tokens",
    "5k",
    "--id",
    "hq-33",
    "--threads",
    "1",
  );
  assert.equal(printed.trim(), join(ws, "mixtures/hq-33/manifest.json"));
  const m = JSON.parse(readFileSync(join(ws, "mixtures/hq-33/manifest.json"), "utf8")) as MixtureManifest;
  assert.equal(m.totalTokens, 5000);
  assert.equal(m.vocabSize, tok.vocabSize);
  const ids = readTokens(join(ws, "mixtures/hq-33/tokens.bin"), m.dtype);
  assert.equal(ids.length, 5000);
  assert.equal(
    ids.filter((x) => x === tok.eotId).length,
    m.sources.reduce((a, s) => a + s.documents, 0),
  );
  for (const s of m.sources) assert.ok(Math.abs(s.tokens / 5000 - s.targetShare) < 0.005);

  writeFileSync(
    join(ws, "grid.yaml"),
    [
      "contextLength: 16",
      "grid:",
      "  models: [{name: tiny, nLayer: 1, dModel: 16, nHead: 2}]",
      "  tokens: [800]",
      "  mixtures: [natural, {hq: 0.5}]",
      "  generators: [demo]",
      "train: {batchSize: 4, evalTokens: 128, checkpointEvery: 10, optimizer: {warmupSteps: 2}}",
      "",
    ].join("\n"),
  );
  await cli("sweep", "run", join(ws, "grid.yaml"));
  const st = listStatuses(ws);
  assert.equal(st.length, 2);
  for (const s of st) {
    assert.equal(s.status, "done", `${s.id}: ${s.error}`);
    assert.ok(s.final!.loss > 0 && s.final!.loss < 7, `loss ${s.final!.loss}`);
    assert.deepEqual(Object.keys(s.final!.losses).sort(), ["fiction", "news"]);
    assert.ok(s.flops > 0);
  }
  const table = await cli("sweep", "status", ws);
  assert.match(table, /2 runs: 2 done, 0 running, 0 pending, 0 failed/);
  // --json through the binary's entry point: stdout is exactly the summary, the progress is on stderr.
  const again = spawnSync(
    process.execPath,
    ["--import", "tsx", "test/sweep/fixtures/cli-main.ts", "sweep", "run", join(ws, "grid.yaml"), "--json"],
    { encoding: "utf8", env: { ...process.env, SYNTHMIX_PROGRESS: "plain" } },
  );
  assert.equal(again.status, 0, again.stderr);
  assert.deepEqual(JSON.parse(again.stdout), {
    planned: 2,
    alreadyDone: 2,
    finished: 0,
    failed: [],
    interrupted: false,
  });
  assert.match(table, /hq-50/);
  const csv = (await cli("sweep", "results", ws, "--format", "csv")).trim().split("\n");
  assert.equal(csv.length, 1 + 2 * 3);
  const json = JSON.parse(await cli("sweep", "results", ws, "--format", "json"));
  assert.deepEqual(json, JSON.parse(readFileSync(join(ws, "results/runs.json"), "utf8")));
  // A second `sweep run` trains nothing.
  const before = st.map((s) => s.attempts);
  await cli("sweep", "run", join(ws, "grid.yaml"));
  assert.deepEqual(
    listStatuses(ws).map((s) => s.attempts),
    before,
  );
});
