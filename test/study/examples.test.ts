import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { StudyConfigSchema } from "../../src/study/config.js";
import { demoConfig } from "../../src/study/demo.js";
import { loadStudy } from "../../src/study/run.js";

test("the example study configs are valid, and examples/demo.yaml is the built-in demo", () => {
  const real = loadStudy("examples/study-vllm.yaml");
  assert.equal(real.config.generate?.generators.length, 2);
  assert.ok(real.workspace.endsWith("ws-fineweb"));
  const demo = loadStudy("examples/demo.yaml");
  const { workspace: _ws, ...fromFile } = demo.config;
  assert.deepEqual(fromFile, StudyConfigSchema.parse(demoConfig(false)));
});

test("a bad study config names the file, line and key path", () => {
  const dir = mkdtempSync(join(tmpdir(), "synthmix-cfg-"));
  const path = join(dir, "study.yaml");
  writeFileSync(
    path,
    "seed: 1\ncorpus:\n  testFraction: lots\nsweep:\n  grid:\n    models: [s1]\n    tokens: [1e5]\n    mixtures: [natural]\n",
  );
  assert.throws(
    () => loadStudy(path),
    (e: Error) => /study\.yaml:3: corpus\.testFraction/.test(e.message),
  );
});

test("a study's workspace is resolved against the config's folder, and an absolute one is used as it is", () => {
  const dir = mkdtempSync(join(tmpdir(), "synthmix-cfg-"));
  const grid = "sweep:\n  grid:\n    models: [s1]\n    tokens: [1e5]\n    mixtures: [natural]\n";
  writeFileSync(join(dir, "rel.yaml"), `workspace: ws\n${grid}`);
  writeFileSync(join(dir, "abs.yaml"), `workspace: ${join(tmpdir(), "elsewhere-ws")}\n${grid}`);
  assert.equal(loadStudy(join(dir, "rel.yaml")).workspace, join(dir, "ws"));
  assert.equal(loadStudy(join(dir, "abs.yaml")).workspace, join(tmpdir(), "elsewhere-ws"));
});
