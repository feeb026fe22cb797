import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import OpenAI from "openai";
import { type RunningServer, startServer } from "../../src/generate/serve.js";
import { writeTinyGpt2 } from "./tiny-gpt2.js";

/** `synthmix serve` driven by the official `openai` npm client over a synthmix-exported GGUF (no chat template). */
const dir = mkdtempSync(join(tmpdir(), "synthmix-serve-"));
const modelPath = join(dir, "tiny.gguf");
let srv: RunningServer | undefined;
let client: OpenAI;
const logs: string[] = [];

before(async () => {
  writeTinyGpt2(modelPath);
  srv = await startServer({
    modelPath,
    port: 0,
    threads: 1,
    maxBodyBytes: 64 * 1024,
    log: (l) => logs.push(l),
  });
  client = new OpenAI({ baseURL: srv.url, apiKey: "none", maxRetries: 0, timeout: 60_000 });
});
after(async () => {
  await srv?.close();
});

const chat = (content: string) =>
  client.chat.completions.create({
    model: "tiny",
    messages: [{ role: "user", content }],
    max_tokens: 8,
    temperature: 0,
  });

test("serve: chat without a chat template renders the messages (different prompts, different answers) and says so", async () => {
  const a = await chat("the cat sat on the mat");
  const b = await chat("zebra quilt");
  assert.ok(a.usage && a.usage.prompt_tokens > 0, "the prompt was used");
  assert.notEqual(a.usage?.prompt_tokens, b.usage?.prompt_tokens);
  assert.notEqual(a.choices[0].message.content, b.choices[0].message.content, "outputs depend on the prompt");
  assert.ok(logs.some((l) => /no chat template/.test(l)));
  const raw = await client.chat.completions
    .create({ model: "tiny", messages: [{ role: "user", content: "x" }], max_tokens: 2 })
    .withResponse();
  assert.match(raw.response.headers.get("x-synthmix-prompt") ?? "", /plain-text/);
});

test("serve: streaming chat and completions as the openai client reads them", async () => {
  const stream = await client.chat.completions.create({
    model: "tiny",
    messages: [{ role: "user", content: "the cat" }],
    max_tokens: 6,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = "";
  let finish: string | null = null;
  let usage: OpenAI.CompletionUsage | undefined;
  for await (const ch of stream) {
    text += ch.choices[0]?.delta?.content ?? "";
    finish = ch.choices[0]?.finish_reason ?? finish;
    usage = ch.usage ?? usage;
  }
  const whole = await client.chat.completions.create({
    model: "tiny",
    messages: [{ role: "user", content: "the cat" }],
    max_tokens: 6,
    temperature: 0,
  });
  assert.equal(text, whole.choices[0].message.content, "the stream carries the same text");
  assert.equal(finish, "length");
  assert.equal(usage?.completion_tokens, 6);
  assert.equal(usage?.prompt_tokens, whole.usage?.prompt_tokens);

  const cs = await client.completions.create({
    model: "tiny",
    prompt: "the cat",
    max_tokens: 5,
    temperature: 0,
    stream: true,
  });
  let ctext = "";
  for await (const ch of cs) ctext += ch.choices[0]?.text ?? "";
  const c = await client.completions.create({
    model: "tiny",
    prompt: "the cat",
    max_tokens: 5,
    temperature: 0,
  });
  assert.equal(ctext, c.choices[0].text);
  // BOS + "the", " c", "a", "t" with the test vocabulary's merges.
  assert.equal(c.usage?.prompt_tokens, 5);
});

test("serve: n, prompt arrays, max_completion_tokens and stop are honoured; the rest is refused", async () => {
  const multi = await client.completions.create({
    model: "tiny",
    prompt: ["the cat", "a dog"],
    max_tokens: 3,
    temperature: 0,
  });
  assert.equal(multi.choices.length, 2);
  assert.deepEqual(
    multi.choices.map((c) => c.index),
    [0, 1],
  );
  const n2 = await client.chat.completions.create({
    model: "tiny",
    messages: [{ role: "user", content: "hello" }],
    n: 2,
    max_completion_tokens: 3,
    seed: 1,
  });
  assert.equal(n2.choices.length, 2);
  assert.equal(n2.usage?.completion_tokens, 6);
  // stop: generate once, then stop at a piece of that very output.
  const free = await client.completions.create({
    model: "tiny",
    prompt: "the",
    max_tokens: 12,
    temperature: 0,
  });
  const t = free.choices[0].text;
  const cut = t.slice(3, 5);
  if (cut.length === 2 && !t.slice(0, 3).includes(cut)) {
    const stopped = await client.completions.create({
      model: "tiny",
      prompt: "the",
      max_tokens: 12,
      temperature: 0,
      stop: [cut],
    });
    assert.equal(stopped.choices[0].text, t.slice(0, t.indexOf(cut)));
    assert.equal(stopped.choices[0].finish_reason, "stop");
  }
  await assert.rejects(
    client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "x" }] }),
    (e: { status?: number }) => e.status === 404,
  );
  await assert.rejects(
    client.completions.create({ model: "tiny", prompt: "x", logprobs: 2 }),
    (e: { status?: number; message?: string }) => e.status === 400 && /logprobs/.test(e.message ?? ""),
  );
  const big = await fetch(`${srv?.url}/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "tiny", prompt: "x".repeat(200_000) }),
  });
  assert.equal(big.status, 413);
});

test("serve CLI: --json prints one JSON document on stdout; SIGINT closes the server through withInterrupt (exit 130)", async () => {
  const { spawn } = await import("node:child_process");
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "test/generate/cli-main.ts",
      "serve",
      "--model",
      modelPath,
      "--port",
      "0",
      "--threads",
      "1",
      "--json",
    ],
    { cwd: process.cwd(), stdio: ["ignore", "pipe", "pipe"] },
  );
  let stdout = "";
  let stderr = "";
  child.stderr.on("data", (c) => {
    stderr += c;
  });
  const exited = new Promise<number | null>((r) => child.on("exit", (c) => r(c)));
  const first = await new Promise<string>((resolve, reject) => {
    child.stdout.on("data", (c) => {
      stdout += c;
      if (stdout.includes("\n")) resolve(stdout.split("\n")[0]);
    });
    child.on("exit", () => reject(new Error(`serve exited early: ${stderr}`)));
  });
  const doc = JSON.parse(first) as { url: string; model: string };
  assert.equal(doc.model, "tiny");
  const models = (await (await fetch(`${doc.url}/models`)).json()) as { data: { id: string }[] };
  assert.deepEqual(
    models.data.map((m) => m.id),
    ["tiny"],
  );
  child.kill("SIGINT");
  assert.equal(await exited, 130, stderr);
  assert.equal(stdout, `${first}\n`, "nothing but the JSON document on stdout");
  assert.match(stderr, /synthmix serve: stopping/);
  await assert.rejects(fetch(`${doc.url}/models`), "the port is closed");
});
