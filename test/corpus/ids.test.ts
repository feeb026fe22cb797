import assert from "node:assert/strict";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { corpusConfigSchema, defaultCorpusName, importCorpus } from "../../src/corpus/index.js";
import { SweepSpecSchema } from "../../src/sweep/spec.js";
import { checkId, isId } from "../../src/util/ids.js";
import { tmp } from "./helpers.js";

const BAD = [
  "../x",
  "../../x",
  "..",
  ".",
  "a/b",
  "a\\b",
  "/abs",
  "-flag",
  ".hidden",
  "",
  "x".repeat(129),
  "a b",
];

test("the id rule rejects every name that could leave its folder", () => {
  for (const s of BAD) assert.equal(isId(s), false, JSON.stringify(s));
  for (const s of ["brown", "s3", "qwen2.5-7b", "hq_web", "A1"]) assert.equal(isId(s), true, s);
  assert.throws(() => checkId("../x", "corpus name"), /corpus name "\.\.\/x" is not a valid name[\s\S]*/);
});

test("corpus import --name ../../x is refused and writes nothing outside the workspace", async () => {
  const ws = tmp();
  const src = join(tmp(), "a.jsonl");
  writeFileSync(src, '{"text":"hello there world"}\n');
  await assert.rejects(
    importCorpus({ from: src, workspace: ws, name: "../../x" }),
    /corpus name "\.\.\/\.\.\/x"/,
  );
  assert.ok(!existsSync(join(ws, "..", "x")));
  assert.ok(!corpusConfigSchema.safeParse({ from: src, name: "../x" }).success);
  assert.equal(defaultCorpusName("/data/My Corpus (2024).jsonl.zst"), "My_Corpus_2024");
  assert.equal(defaultCorpusName("/data/..jsonl"), "corpus");
});

test("grid model names and runs[].generator / runs[].mixture keys follow the id rule", () => {
  const base = { tokenizer: "t.json" };
  const grid = (name: string) =>
    SweepSpecSchema.safeParse({
      ...base,
      grid: { models: [{ name, nLayer: 1, dModel: 8, nHead: 1 }], tokens: [1000], mixtures: ["natural"] },
    });
  assert.ok(grid("tiny").success);
  assert.ok(!grid("../m").success);
  const run = (r: Record<string, unknown>) =>
    SweepSpecSchema.safeParse({ ...base, runs: [{ model: "s1", tokens: 1000, mixture: "natural", ...r }] });
  assert.ok(run({ generator: "llama" }).success);
  assert.ok(!run({ generator: "../../g" }).success);
  assert.ok(!run({ mixture: { "../hq": 0.5 } }).success);
  assert.ok(!run({ model: "../s1" }).success);
});
