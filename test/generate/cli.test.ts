import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { register } from "../../src/cli/generate.js";
import { Command } from "../../src/cli/options.js";
import { type FakeCall, okReply, startFake } from "./fake-server.js";

test("CLI: generate with two --generator flags writes one folder per generator and prints a summary", async () => {
  const seen: string[] = [];
  const fake = await startFake((c: FakeCall) => {
    seen.push(c.body.model ?? "");
    return okReply("Question: What is it?\nAnswer: A thing.");
  });
  const ws = mkdtempSync(join(tmpdir(), "synthmix-cli-"));
  mkdirSync(join(ws, "corpus", "brown"), { recursive: true });
  writeFileSync(
    join(ws, "corpus", "brown", "train.jsonl"),
    Array.from({ length: 6 }, (_, i) => JSON.stringify({ id: `b:${i}`, text: `Text number ${i}.` })).join(
      "\n",
    ),
  );
  const logs: string[] = [];
  const orig = console.log;
  console.log = (...a: unknown[]) => void logs.push(a.join(" "));
  try {
    const program = new Command().exitOverride();
    register(program);
    await program.parseAsync([
      "node",
      "synthmix",
      "generate",
      "--style",
      "qa",
      "--source",
      join(ws, "corpus", "brown"),
      "--generator",
      `openai:${fake.url}:small`,
      "--generator",
      `openai:${fake.url}:large`,
      "--budget-tokens",
      "2e6",
      "--max-docs",
      "4",
      "--json",
      "--quiet",
    ]);
  } finally {
    console.log = orig;
    await fake.close();
  }
  const summary = JSON.parse(logs.join("\n"));
  assert.equal(summary.generators.length, 2);
  assert.deepEqual(readdirSync(join(ws, "synthetic")).sort(), ["qa-large", "qa-small"]);
  assert.equal(seen.filter((m) => m === "small").length, 4);
  assert.equal(seen.filter((m) => m === "large").length, 4);
  // Both generators saw the same sampled sources (the generator-comparison experiment needs that).
  const parents = (dir: string) => {
    const f = readdirSync(join(ws, "synthetic", dir)).find((x) => x.startsWith("part-")) ?? "";
    return readFileSync(join(ws, "synthetic", dir, f), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l).meta.parent)
      .sort();
  };
  assert.deepEqual(parents("qa-small"), parents("qa-large"));
  const program = new Command().exitOverride();
  register(program);
  await assert.rejects(
    program.parseAsync([
      "node",
      "synthmix",
      "generate",
      "--style",
      "hq",
      "--workspace",
      ws,
      "--corpus",
      "brown",
    ]),
    /at least one --generator/,
  );
});
