import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { chunkText, estimateTokens } from "../../src/generate/chunk.js";
import { checkOutput, cleanOutput } from "../../src/generate/cleanup.js";
import { KeywordExtractor } from "../../src/generate/keywords.js";
import {
  HQ,
  loadTemplate,
  renderPrompt,
  resolveTemplate,
  templateHash,
} from "../../src/generate/prompts/index.js";
import { generatorName, parseGeneratorSpec } from "../../src/generate/spec.js";

const words = (s: string) => s.split(/\s+/).filter(Boolean);

test("chunkText keeps every word, in order, in chunks within the token limit", () => {
  const para = (k: number) =>
    Array.from({ length: 12 }, (_, i) => `Sentence ${k}.${i} has several plain words in it.`).join(" ");
  const text = [para(1), para(2), para(3)].join("\n\n");
  const count = (s: string) => words(s).length; // an exact counter: the limit must hold exactly
  for (const max of [20, 50, 100, 1000]) {
    const chunks = chunkText(text, max, count);
    for (const c of chunks) assert.ok(count(c) <= max, `chunk of ${count(c)} > ${max}`);
    assert.deepEqual(words(chunks.join(" ")), words(text));
  }
  // Sentence boundaries are respected when sentences fit: every chunk ends a sentence.
  for (const c of chunkText(text, 50, count)) assert.match(c, /\.$/);
  assert.equal(chunkText(text, 1000, count).length, 1);
  // A single over-long "sentence" is split at words.
  const long = Array.from({ length: 100 }, (_, i) => `w${i}`).join(" ");
  const parts = chunkText(long, 30, count);
  assert.equal(parts.length, 4);
  assert.deepEqual(words(parts.join(" ")), words(long));
  assert.deepEqual(chunkText("   ", 10), []);
  assert.equal(estimateTokens("one two three"), 4);
});

test("KeywordExtractor ranks terms distinctive of a document (TF-IDF) and samples them reproducibly", () => {
  const kw = new KeywordExtractor();
  const docs = [
    "The telescope observed the galaxy. The telescope found a nebula near the galaxy.",
    "The farmer planted wheat. The harvest of wheat was good for the farmer.",
    "The market opened and the market closed. Prices rose in the market.",
  ];
  for (const d of docs) kw.add(d);
  const top = kw.top(docs[0], 3);
  assert.ok(top.includes("telescope") && top.includes("galaxy"), top.join(","));
  assert.ok(!top.includes("the"));
  assert.deepEqual(kw.sample(docs[1], 2, 7), kw.sample(docs[1], 2, 7));
  for (const k of kw.sample(docs[1], 2, 7))
    assert.ok(["farmer", "wheat", "harvest", "planted"].some((w) => k.includes(w)));
});

test("cleanOutput strips chat boilerplate, quotes and (if asked) Markdown", () => {
  assert.equal(cleanOutput("Here is a paraphrased version:\n\nThe cat sat."), "The cat sat.");
  assert.equal(cleanOutput("Sure! Here's the paraphrase of the paragraph: The cat sat."), "The cat sat.");
  assert.equal(cleanOutput("Certainly. The cat sat.\n\nI hope this helps!"), "The cat sat.");
  assert.equal(cleanOutput('"The cat sat on the mat."'), "The cat sat on the mat.");
  assert.equal(
    cleanOutput("Sure, here's a Wikipedia-style version:\n\nParaphrased text: The cat sat."),
    "The cat sat.",
  );
  assert.equal(cleanOutput("I'd be happy to help. The cat sat."), "The cat sat.");
  assert.equal(
    cleanOutput("## Title\n**Bold** and *it* text", { stripMarkdown: true }),
    "Title\nBold and it text",
  );
  assert.equal(cleanOutput("## Title"), "## Title");
});

test("checkOutput rejects refusals, empty, truncated, QA without pairs and out-of-bounds outputs", () => {
  const o = { style: "hq" };
  assert.equal(checkOutput("I'm sorry, but I can't help with that.", "stop", o).ok, false);
  assert.deepEqual(checkOutput("I'm sorry, but I can't help.", "stop", o), {
    ok: false,
    reason: "refusal",
    text: "I'm sorry, but I can't help.",
  });
  assert.equal((checkOutput("  ", "stop", o) as { reason: string }).reason, "empty");
  assert.equal((checkOutput("Text that was cut", "length", o) as { reason: string }).reason, "truncated");
  const qa = { style: "qa" };
  assert.equal((checkOutput("Just prose.", "stop", qa) as { reason: string }).reason, "no_qa_pair");
  assert.equal(checkOutput("Question: Who?\nAnswer: Me.", "stop", qa).ok, true);
  assert.equal(checkOutput("Q1: Who?\nA1: Me.", "stop", qa).ok, true);
  const bounded = { style: "hq", minTokens: 3, maxTokens: 5, countTokens: (s: string) => words(s).length };
  assert.equal((checkOutput("too short", "stop", bounded) as { reason: string }).reason, "too_short");
  assert.equal(
    (checkOutput("one two three four five six", "stop", bounded) as { reason: string }).reason,
    "too_long",
  );
  assert.deepEqual(checkOutput("one two three", "stop", bounded), { ok: true, text: "one two three" });
});

test("templates: built-ins, user YAML files, placeholders and a content hash", () => {
  const dir = mkdtempSync(join(tmpdir(), "synthmix-tpl-"));
  const path = join(dir, "simple.yaml");
  writeFileSync(
    path,
    'name: simple\nversion: 2\nsystem: "Be {audience}-friendly."\nuser: "Simplify: {text}"\n',
  );
  const t = loadTemplate(path);
  assert.equal(t.version, "2");
  assert.equal(t.input, "source");
  const r = renderPrompt(t, { text: "Hello.", audience: "kid" });
  assert.deepEqual(r.messages, [
    { role: "system", content: "Be kid-friendly." },
    { role: "user", content: "Simplify: Hello." },
  ]);
  assert.ok(r.prompt.includes("Simplify: Hello."));
  assert.equal(resolveTemplate(path).name, "simple");
  assert.equal(resolveTemplate("HQ"), HQ);
  assert.match(templateHash(t), /^[0-9a-f]{64}$/);
  assert.notEqual(templateHash(t), templateHash({ ...t, version: "3" }));
  writeFileSync(path, "name: bad\nversion: 1\n");
  assert.throws(() => loadTemplate(path), /simple.yaml|bad|user/);
  assert.throws(() => resolveTemplate("nope"), /unknown style/);
  const tx = renderPrompt(resolveTemplate("txbk"), {
    keywords: ["gravity", "orbits"],
    audience: "college students",
  });
  assert.match(tx.messages[1].content, /college students.*gravity, orbits/s);
});

test("generator specs: URLs with ports, model names with ':', options, gguf paths", () => {
  assert.deepEqual(parseGeneratorSpec("openai:http://host:8000/v1:Qwen/Qwen2.5-7B"), {
    backend: "openai",
    baseUrl: "http://host:8000/v1",
    model: "Qwen/Qwen2.5-7B",
    mode: "chat",
  });
  const o = parseGeneratorSpec("openai:http://localhost:11434/v1:llama3:8b?concurrency=4&name=l3");
  assert.equal(o.model, "llama3:8b");
  assert.equal(o.concurrency, 4);
  assert.equal(generatorName(o), "l3");
  assert.equal(parseGeneratorSpec("openai-completions:https://api.x.com/v1:base").mode, "completions");
  const g = parseGeneratorSpec("gguf:models/tiny.gguf?threads=2");
  assert.deepEqual(g, { backend: "gguf", model: "models/tiny.gguf", threads: 2 });
  assert.equal(generatorName(g), "tiny");
  assert.equal(generatorName(parseGeneratorSpec("openai:http://h/v1:Qwen/Qwen2.5-7B")), "Qwen_Qwen2.5-7B");
  assert.throws(() => parseGeneratorSpec("vllm:x"), /unknown backend/);
  assert.throws(() => parseGeneratorSpec("openai:host:model"), /http/);
  assert.throws(() => parseGeneratorSpec("openai:http://h/v1:m?bogus=1"), /unknown option/);
});

test("lenient checks keep truncated outputs (cut to the last sentence) and skip the QA-pair check", () => {
  const cut = "The river floods in spring. Farmers plant after the water recedes. Then the";
  assert.equal(checkOutput(cut, "length", { style: "hq" }).ok, false);
  const kept = checkOutput(cut, "length", { style: "hq", lenient: true });
  assert.deepEqual(kept, {
    ok: true,
    text: "The river floods in spring. Farmers plant after the water recedes.",
  });
  assert.equal(checkOutput("no pairs here at all.", "stop", { style: "qa" }).ok, false);
  assert.equal(checkOutput("no pairs here at all.", "stop", { style: "qa", lenient: true }).ok, true);
  assert.equal(
    checkOutput("I'm sorry, but I can't help with that.", "stop", { style: "hq", lenient: true }).ok,
    false,
  );
});
