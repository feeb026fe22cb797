import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { runGeneration } from "../../src/generate/run.js";
import { type FakeCall, okReply, startFake } from "./fake-server.js";

function makeWorkspace(nDocs: number, opts: { wordsPerDoc?: number; extraLines?: string[] } = {}): string {
  const ws = mkdtempSync(join(tmpdir(), "synthmix-gen-"));
  const dir = join(ws, "corpus", "toy");
  mkdirSync(join(dir, "test"), { recursive: true });
  const lines: string[] = [];
  for (let i = 0; i < nDocs; i++) {
    const n = opts.wordsPerDoc ?? 20;
    const text = Array.from(
      { length: n / 10 },
      (_, s) => `Doc ${i} sentence ${s} talks about topic${i} and more words.`,
    ).join(" ");
    lines.push(
      JSON.stringify({
        id: `toy:${i}`,
        text,
        source: "natural",
        meta: { domain: i % 2 ? "news" : "fiction" },
      }),
    );
  }
  lines.push(...(opts.extraLines ?? []));
  writeFileSync(join(dir, "train.jsonl"), `${lines.join("\n")}\n`);
  // A held-out document that must never become a source.
  writeFileSync(
    join(dir, "test", "news.jsonl"),
    `${JSON.stringify({ id: "toy:heldout", text: "held out" })}\n`,
  );
  return ws;
}

function readParts(dir: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const f of readdirSync(dir).filter((x) => /^part-.*\.jsonl$/.test(x))) {
    for (const l of readFileSync(join(dir, f), "utf8").split("\n")) {
      if (!l.trim()) continue;
      try {
        out.push(JSON.parse(l));
      } catch {
        // a torn tail line from a killed writer
      }
    }
  }
  return out;
}

const echo = (c: FakeCall) => okReply(`Rephrased: ${c.body.messages?.at(-1)?.content.split("\n\n").at(-1)}`);
const quiet = { progress: "silent" as const, backoffBaseMs: 5, backoffMaxMs: 50 };

test("runner: outputs with provenance, chunks re-joined per document, test docs never used", async () => {
  const fake = await startFake((c) =>
    okReply(`Here is a paraphrased version:\n\n${c.body.messages?.at(-1)?.content.split("\n\n").at(-1)}`),
  );
  try {
    const ws = makeWorkspace(5, { wordsPerDoc: 60 });
    const s = await runGeneration({
      workspace: ws,
      corpusName: "toy",
      style: "hq",
      generators: [`openai:${fake.url}:m1`],
      chunkTokens: 30,
      countTokens: (t) => t.split(/\s+/).length,
      seed: 3,
      ...quiet,
    });
    const g = s.generators[0];
    assert.equal(g.generator, "m1");
    assert.equal(g.docsWritten, 5);
    assert.equal(g.requests.completed, fake.state.calls);
    const docs = readParts(join(ws, "synthetic", "hq-m1"));
    assert.equal(docs.length, 5);
    const d = docs.find((x) => (x.meta as { parent: string }).parent === "toy:1") as {
      id: string;
      text: string;
      source: string;
      meta: Record<string, unknown>;
    };
    assert.equal(d.source, "hq");
    assert.equal(d.meta.domain, "news");
    assert.ok((d.meta.chunks as number) > 1, "a 60-word doc is split into 30-token chunks");
    // Chunks re-joined in order, preamble stripped: the echoed text is the source again.
    const src = readFileSync(join(ws, "corpus/toy/train.jsonl"), "utf8").split("\n")[1];
    assert.equal(d.text.replace(/\n\n/g, " "), JSON.parse(src).text);
    assert.deepEqual(d.meta.generator, {
      backend: "openai",
      model: "m1",
      params: { temperature: 0.7, max_tokens: 1024 },
    });
    assert.equal((d.meta.prompt as { sha256: string }).sha256, s.templateSha256);
    assert.ok((d.meta.usage as { prompt_tokens: number }).prompt_tokens > 0);
    assert.ok(docs.every((x) => (x.meta as { parent: string }).parent !== "toy:heldout"));
    // A rerun is a no-op: every key is already done.
    const again = await runGeneration({
      workspace: ws,
      corpusName: "toy",
      style: "hq",
      generators: [`openai:${fake.url}:m1`],
      chunkTokens: 30,
      countTokens: (t) => t.split(/\s+/).length,
      seed: 3,
      ...quiet,
    });
    assert.equal(again.generators[0].requests.completed, 0);
    assert.equal(readParts(join(ws, "synthetic", "hq-m1")).length, 5);
  } finally {
    await fake.close();
  }
});

test("runner: retries 500s, malformed JSON and empty choices, times out hangs; 429 is back-pressure, not a retry", async () => {
  const fake = await startFake((c) => {
    const script = [
      { status: 500, text: "boom" },
      { status: 429, text: "slow down", headers: { "retry-after": "0.05" } },
      { text: "<html>not json" },
      { json: { choices: [] } },
      "hang" as const,
    ];
    return c.n < script.length ? script[c.n] : echo(c);
  });
  try {
    const ws = makeWorkspace(1);
    const s = await runGeneration({
      workspace: ws,
      corpusName: "toy",
      style: "hq",
      generators: [`openai:${fake.url}:m?concurrency=1`],
      timeoutMs: 300,
      ...quiet,
    });
    const g = s.generators[0];
    assert.equal(g.requests.retries, 4);
    assert.equal(g.requests.backpressure, 1);
    assert.equal(s.complete, true);
    assert.equal(g.accepted, 1);
    assert.equal(g.requests.failed, 0);
    const chunks = readParts(join(ws, "synthetic", "hq-m", "chunks"));
    assert.equal(chunks.length, 1);
    assert.equal(chunks[0].attempts, 6);
  } finally {
    await fake.close();
  }
});

test("runner: rejected outputs are counted by reason; empty answers are re-asked a bounded number of times; a dead server stops the run after the stall timeout", async () => {
  // Call 1 (empty) is re-asked and answered by call 2; calls 5.. are empty for the 4th document,
  // which gives up after retryEmpty (3) re-asks and is rejected as empty.
  const replies = ["I'm sorry, but I cannot help with that.", "", "Fine text.", "", "cut"];
  const fake = await startFake((c) =>
    c.n === 3 ? okReply("cut off mid", "length") : okReply(c.n >= 4 ? "" : (replies[c.n] ?? "ok")),
  );
  try {
    const ws = makeWorkspace(4);
    const s = await runGeneration({
      workspace: ws,
      corpusName: "toy",
      style: "hq",
      generators: [`openai:${fake.url}:m?concurrency=1`],
      ...quiet,
    });
    assert.deepEqual(s.generators[0].rejected, { refusal: 1, empty: 1, truncated: 1 });
    assert.equal(s.generators[0].accepted, 1);
    assert.equal(s.generators[0].docsWritten, 1);
    assert.equal(s.generators[0].requests.reasked, 1 + 3);
    assert.equal(fake.state.calls, 4 + 1 + 3);
    // Every request was answered: rejections are the answer, not a failure.
    assert.equal(s.complete, true);
  } finally {
    await fake.close();
  }
  const down = await startFake(() => ({ status: 503, text: "overloaded" }));
  try {
    const ws = makeWorkspace(50);
    await assert.rejects(
      runGeneration({
        workspace: ws,
        corpusName: "toy",
        style: "hq",
        generators: [`openai:${down.url}:m?concurrency=2`],
        breakAfter: 5,
        stallTimeoutMs: 300,
        ...quiet,
      }),
      (e: Error) =>
        /every endpoint has stopped answering/.test(e.message) &&
        /no success for/.test(e.message) &&
        e.message.includes(down.url) &&
        /503/.test(e.message),
    );
    // The breaker opened after 5 failures in a row: afterwards only probes were sent, not all 50 docs' requests.
    assert.ok(down.state.calls < 30, `stopped early (${down.state.calls} calls)`);
  } finally {
    await down.close();
  }
});

test("runner: several endpoints for one model share the load within each concurrency limit", async () => {
  const a = await startFake((c) => ({ ...(echo(c) as object), delayMs: 5 }));
  const b = await startFake((c) => ({ ...(echo(c) as object), delayMs: 5 }));
  try {
    const ws = makeWorkspace(40);
    const s = await runGeneration({
      workspace: ws,
      corpusName: "toy",
      style: "qa",
      generators: [`openai:${a.url}:m?concurrency=3`, `openai:${b.url}:m?concurrency=5`],
      ...quiet,
    });
    assert.equal(s.generators.length, 1);
    assert.equal(a.state.calls + b.state.calls, 40);
    assert.ok(a.state.peak <= 3 && b.state.peak <= 5, `peaks ${a.state.peak} ${b.state.peak}`);
    assert.ok(a.state.calls >= 8 && b.state.calls >= 8, `calls ${a.state.calls} ${b.state.calls}`);
    // The echo has no Question/Answer pair: every qa output is rejected for that reason.
    assert.deepEqual(s.generators[0].rejected, { no_qa_pair: 40 });
  } finally {
    await a.close();
    await b.close();
  }
});

test("runner: bad source records stop with file:line, or are skipped and counted", async () => {
  const fake = await startFake(echo);
  try {
    const ws = makeWorkspace(3, { extraLines: ["{not json", JSON.stringify({ id: "x", text: 5 })] });
    const base = {
      workspace: ws,
      corpusName: "toy",
      style: "hq",
      generators: [`openai:${fake.url}:m`],
      ...quiet,
    };
    await assert.rejects(runGeneration(base), /train\.jsonl:4: malformed JSON/);
    const s = await runGeneration({ ...base, skipBadRecords: true });
    assert.equal(s.badRecords, 2);
    assert.equal(s.generators[0].docsWritten, 3);
    await assert.rejects(runGeneration({ ...base, corpusName: "nope" }), /no source corpus/);
    await assert.rejects(
      runGeneration({ ...base, generators: [`openai:${fake.url}:tiny`, "gguf:models/tiny.gguf"] }),
      /both write to synthetic\/hq-tiny/,
    );
  } finally {
    await fake.close();
  }
});

test("runner: budgets by source tokens and by output tokens", async () => {
  const fake = await startFake(echo);
  try {
    const ws = makeWorkspace(20);
    const count = (t: string) => t.split(/\s+/).length;
    const s = await runGeneration({
      workspace: ws,
      corpusName: "toy",
      style: "hq",
      generators: [`openai:${fake.url}:m`],
      countTokens: count,
      budgetSourceTokens: 50,
      ...quiet,
    });
    assert.equal(s.sourceDocs, 3); // 20-word docs: the 3rd reaches 50
    const byOutput = {
      workspace: ws,
      corpusName: "toy",
      style: "hq",
      generators: [`openai:${fake.url}:m2?concurrency=1&price_in=1&price_out=2`],
      countTokens: count,
      budgetOutputTokens: 30,
      ...quiet,
    };
    const o = await runGeneration(byOutput);
    const g = o.generators[0];
    assert.equal(g.docsWritten, 2); // 21 output words each: stops once >= 30
    assert.equal(g.tokens.prompt, 20);
    assert.equal(g.costUsd, (g.tokens.prompt * 1 + g.tokens.completion * 2) / 1e6);
    // A rerun counts the journaled answers against the budget: it stops where the first run did.
    const calls = fake.state.calls;
    const again = await runGeneration(byOutput);
    assert.equal(fake.state.calls, calls, "no request after the budget was already met");
    assert.equal(again.generators[0].requests.completed, 0);
  } finally {
    await fake.close();
  }
});

test("runner: killed mid-run then resumed gives exactly one output per key", async () => {
  const fake = await startFake((c) => ({ ...(echo(c) as object), delayMs: 20 }));
  try {
    const ws = makeWorkspace(60);
    const gen = `openai:${fake.url}:m?concurrency=4`;
    const script = `import { runGeneration } from ${JSON.stringify(new URL("../../src/generate/run.ts", import.meta.url).pathname)};
await runGeneration({ workspace: ${JSON.stringify(ws)}, corpusName: "toy", style: "hq", generators: [${JSON.stringify(gen)}], progress: "silent" });`;
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      stdio: "ignore",
    });
    await new Promise<void>((resolve) => {
      const t = setInterval(() => {
        if (fake.state.calls >= 20) {
          clearInterval(t);
          child.kill("SIGKILL");
          resolve();
        }
      }, 5);
    });
    await new Promise((r) => child.once("exit", r));
    const out = join(ws, "synthetic", "hq-m");
    const before = readParts(join(out, "chunks")).length;
    assert.ok(before > 0 && before < 60, `partial run wrote ${before}`);
    const s = await runGeneration({
      workspace: ws,
      corpusName: "toy",
      style: "hq",
      generators: [gen],
      ...quiet,
    });
    assert.equal(s.generators[0].requests.alreadyDone, before);
    const chunks = readParts(join(out, "chunks"));
    const keys = chunks.map((c) => c.key as string);
    assert.equal(keys.length, 60);
    assert.equal(new Set(keys).size, 60);
    const docs = readParts(out);
    assert.equal(docs.length, 60);
    assert.equal(new Set(docs.map((d) => d.id)).size, 60);
  } finally {
    await fake.close();
  }
});

test("runner: a non-retryable 4xx fails that request only; the document is completed by a rerun", async () => {
  let failOnce = true;
  const fake = await startFake((c) => {
    if (c.body.messages?.at(-1)?.content.includes("Doc 2 ") && failOnce) {
      failOnce = false;
      return { status: 400, text: '{"error":{"message":"prompt too long"}}' };
    }
    return echo(c);
  });
  try {
    const ws = makeWorkspace(4);
    const base = {
      workspace: ws,
      corpusName: "toy",
      style: "hq",
      generators: [`openai:${fake.url}:m`],
      ...quiet,
    };
    const s = await runGeneration(base);
    const g = s.generators[0];
    assert.equal(g.requests.failed, 1);
    assert.equal(g.requests.retries, 0);
    assert.equal(g.docsWritten, 3);
    assert.equal(g.docsIncomplete, 1);
    const again = await runGeneration(base);
    assert.equal(again.generators[0].requests.completed, 1);
    assert.equal(again.generators[0].docsIncomplete, 0);
    assert.equal(readParts(join(ws, "synthetic", "hq-m")).length, 4);
  } finally {
    await fake.close();
  }
});

test("runner: a server that reports 0 prompt tokens is warned about (it is probably ignoring the prompt)", async () => {
  const fake = await startFake(() => ({
    json: {
      choices: [{ index: 0, message: { role: "assistant", content: "same text" }, finish_reason: "stop" }],
      usage: { prompt_tokens: 0, completion_tokens: 2 },
    },
  }));
  try {
    const ws = makeWorkspace(3);
    const s = await runGeneration({
      workspace: ws,
      corpusName: "toy",
      style: "hq",
      generators: [`openai:${fake.url}:m`],
      ...quiet,
    });
    assert.equal(s.generators[0].warnings.length, 1);
    assert.match(s.generators[0].warnings[0], /reports 0 prompt tokens/);
  } finally {
    await fake.close();
  }
});
