import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { encodeGguf, f32ToF16, gv } from "../../src/generate/gguf.js";
import { runGeneration } from "../../src/generate/run.js";
import { type RunningServer, startServer } from "../../src/generate/serve.js";
import { gpt2NextTokenLogits } from "./gpt2-reference.js";
import { writeTinyGpt2 } from "./tiny-gpt2.js";

const dir = mkdtempSync(join(tmpdir(), "synthmix-gguf-"));
const modelPath = join(dir, "tiny.gguf");

test("f32ToF16 matches IEEE half-precision reference values", () => {
  const cases: [number, number][] = [
    [0, 0x0000],
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [65504, 0x7bff],
    [1e6, 0x7c00],
    [2 ** -24, 0x0001],
    [1 / 3, 0x3555],
    [Number.POSITIVE_INFINITY, 0x7c00],
  ];
  for (const [x, h] of cases) assert.equal(f32ToF16(x), h, `f16(${x})`);
  assert.equal(f32ToF16(Number.NaN) & 0x7c00, 0x7c00);
});

test("encodeGguf writes the v3 header, typed metadata and 32-byte aligned tensor data", () => {
  const data = new Float32Array([1, 2, 3, 4, 5, 6]);
  const buf = Buffer.concat(
    encodeGguf({
      metadata: { "general.architecture": gv.str("x"), "x.n": gv.u32(7) },
      tensors: [
        { name: "a", shape: [2, 3], data },
        { name: "b", shape: [1], data: new Float32Array([9]) },
      ],
    }),
  );
  assert.equal(buf.toString("ascii", 0, 4), "GGUF");
  assert.equal(buf.readUInt32LE(4), 3);
  assert.equal(buf.readBigUInt64LE(8), 2n);
  assert.equal(buf.readBigUInt64LE(16), 2n);
  // Tensor data is the last 32-aligned region: a (24 bytes, padded to 32) then b.
  const dataStart = buf.length - 64;
  assert.equal(dataStart % 32, 0);
  assert.deepEqual(
    [...new Float32Array(buf.buffer.slice(buf.byteOffset + dataStart, buf.byteOffset + dataStart + 24))],
    [1, 2, 3, 4, 5, 6],
  );
  assert.equal(buf.readFloatLE(dataStart + 32), 9);
  assert.throws(() => encodeGguf({ metadata: {}, tensors: [{ name: "a", shape: [4], data }] }), /4 elements/);
});

test("a GPT-2 GGUF is read back by node-llama-cpp's own GGUF parser with llama.cpp's names and layouts", async () => {
  writeTinyGpt2(modelPath);
  const { readGgufFileInfo } = await import("node-llama-cpp");
  const info = await readGgufFileInfo(modelPath, { readTensorInfo: true });
  const md = info.metadata as unknown as Record<string, Record<string, unknown>>;
  assert.equal(md.general.architecture, "gpt2");
  assert.equal(md.gpt2.block_count, 2);
  assert.equal(md.gpt2.embedding_length, 64);
  const tok = md.tokenizer.ggml as Record<string, unknown>;
  assert.equal(tok.model, "gpt2");
  assert.equal(tok.pre, "gpt-2");
  assert.equal((tok.tokens as string[]).length, 263);
  assert.equal((tok.tokens as string[])[262], "<|endoftext|>");
  assert.equal(tok.eos_token_id, 262);
  const shapes = Object.fromEntries(
    (info.fullTensorInfo ?? []).map((t) => [t.name, t.dimensions.map(Number)]),
  );
  assert.deepEqual(shapes["token_embd.weight"], [64, 263]);
  assert.deepEqual(shapes["blk.1.attn_qkv.weight"], [64, 192]);
  assert.deepEqual(shapes["blk.0.ffn_down.weight"], [256, 64]);
  assert.deepEqual(shapes["output_norm.bias"], [64]);
});

let srv: RunningServer | undefined;
let url = "";
before(async () => {
  writeTinyGpt2(modelPath);
  srv = await startServer({ modelPath, port: 0, threads: 1 });
  url = srv.url;
});
after(async () => {
  await srv?.close();
});

test("serve: OpenAI-compatible models, chat and completions endpoints over the tiny GGUF", async () => {
  // biome-ignore lint/suspicious/noExplicitAny: JSON responses checked field by field below
  type Json = any;
  const models: Json = await (await fetch(`${url}/models`)).json();
  assert.equal(models.data[0].id, "tiny");
  const comp: Json = await (
    await fetch(`${url}/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      signal: AbortSignal.timeout(60_000),
      body: JSON.stringify({ model: "tiny", prompt: "the cat", max_tokens: 5, temperature: 0 }),
    })
  ).json();
  assert.equal(comp.object, "text_completion");
  assert.equal(typeof comp.choices[0].text, "string");
  // BOS + "the", " c", "a", "t" with the test vocabulary's merges: what llama.cpp evaluates (it was
  // reported one short, without the BOS, before).
  assert.equal(comp.usage.prompt_tokens, 5);
  assert.equal(comp.usage.completion_tokens, 5);
  assert.equal(comp.choices[0].finish_reason, "length");
  const chat: Json = await (
    await fetch(`${url}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      signal: AbortSignal.timeout(60_000),
      body: JSON.stringify({
        model: "tiny",
        messages: [{ role: "user", content: "hello there" }],
        max_tokens: 4,
      }),
    })
  ).json();
  assert.equal(chat.object, "chat.completion");
  assert.equal(chat.choices[0].message.role, "assistant");
  assert.ok(["stop", "length"].includes(chat.choices[0].finish_reason), JSON.stringify(chat));
  const bad = await fetch(`${url}/chat/completions`, { method: "POST", body: "{" });
  assert.equal(bad.status, 400);
});

test("end to end: runGeneration over HTTP against serve (tiny GGUF), with usage in provenance", async () => {
  const ws = join(dir, "ws");
  mkdirSync(join(ws, "corpus", "toy"), { recursive: true });
  const docs = ["The sun is a star.", "Cats sleep a lot.", "Rivers flow to the sea."];
  writeFileSync(
    join(ws, "corpus", "toy", "train.jsonl"),
    docs.map((t, i) => JSON.stringify({ id: `toy:${i}`, text: t, source: "natural" })).join("\n"),
  );
  const s = await runGeneration({
    workspace: ws,
    corpusName: "toy",
    style: "hq",
    generators: [`openai-completions:${url}:tiny?concurrency=1`],
    params: { max_tokens: 6, temperature: 0.8, seed: 1 },
    // One answer per request here (re-asking empty answers is tested against the fault server).
    retryEmpty: 0,
    progress: "silent",
  });
  const g = s.generators[0];
  assert.equal(g.requests.completed, 3);
  assert.equal(g.requests.failed, 0);
  assert.ok(g.tokens.prompt > 0 && g.tokens.completion > 0);
  // A random model hits max_tokens: every output is rejected as truncated, and counted as such.
  assert.equal((g.rejected.truncated ?? 0) + g.accepted, 3);
  const chunkDir = join(ws, "synthetic", "hq-tiny", "chunks");
  const lines = readFileSync(join(chunkDir, readdirSync(chunkDir)[0]), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  assert.equal(lines.length, 3);
  assert.ok(
    lines.every((l) => l.usage.completion_tokens > 0 && l.usage.completion_tokens <= 6),
    JSON.stringify(lines.map((l) => l.usage)),
  );
});

test("in-process gguf generator: TXBK prompts seeded by corpus keywords, provenance per output", async () => {
  const ws = join(dir, "ws-txbk");
  mkdirSync(join(ws, "corpus", "toy"), { recursive: true });
  const docs = [
    "Photosynthesis converts light into chemical energy. Chlorophyll absorbs light in the leaves.",
    "Volcanoes erupt magma. Lava cools into basalt rock near the volcano.",
  ];
  writeFileSync(
    join(ws, "corpus", "toy", "train.jsonl"),
    docs.map((t, i) => JSON.stringify({ id: `toy:${i}`, text: t })).join("\n"),
  );
  const s = await runGeneration({
    workspace: ws,
    corpusName: "toy",
    style: "txbk",
    generators: [`gguf:${modelPath}?threads=1`],
    keywords: 2,
    audiences: ["college students"],
    params: { max_tokens: 4, temperature: 0.8, seed: 2 },
    retryEmpty: 0,
    progress: "silent",
  });
  const g = s.generators[0];
  assert.equal(g.backend, "gguf");
  assert.equal(g.requests.completed, 2);
  const chunkDir = join(ws, "synthetic", "txbk-tiny", "chunks");
  const recs = readFileSync(join(chunkDir, readdirSync(chunkDir)[0]), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  assert.equal(recs.length, 2);
  // A base model (no chat template) is prompted in completion mode and may sample end-of-text early.
  assert.ok(
    recs.every(
      (r) => r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 4 && r.usage.prompt_tokens > 0,
    ),
  );
});

test("exported GPT-2: llama.cpp's next-token distribution matches an independent HF-layout forward pass", async () => {
  const path = join(dir, "ref.gguf");
  const m = writeTinyGpt2(path, 5);
  const { getLlama } = await import("node-llama-cpp");
  const llama = await getLlama({ gpu: false, build: "never", progressLogs: false });
  const model = await llama.loadModel({ modelPath: path });
  const ctx = await model.createContext({ contextSize: 256, threads: 1 });
  try {
    const tokens = model.tokenize("the cat and the hat sat");
    const ref = gpt2NextTokenLogits(m, tokens as unknown as number[]);
    const mx = Math.max(...ref);
    const z = ref.reduce((a, v) => a + Math.exp(v - mx), 0);
    const seq = ctx.getSequence();
    const opts = { temperature: 1, topK: 0, topP: 1, minP: 0 };
    for await (const out of seq.evaluateWithMetadata(tokens, { probabilities: true }, opts)) {
      const probs = out.probabilities as Map<number, number>;
      assert.equal(probs.size, m.vocabSize);
      let maxDiff = 0;
      for (let v = 0; v < m.vocabSize; v++)
        maxDiff = Math.max(maxDiff, Math.abs((probs.get(v) ?? 0) - Math.exp(ref[v] - mx) / z));
      // llama.cpp's GELU uses an f16 lookup table: agreement to ~1e-3 in probability, not to f32 precision.
      assert.ok(maxDiff < 2e-3, `max |p_llama - p_ref| = ${maxDiff}`);
      break;
    }
  } finally {
    await ctx.dispose();
    await model.dispose();
  }
});

test("local GGUF: answers are clamped to the model's context and over-long prompts fail cleanly", async () => {
  const { LlamaEndpoint } = await import("../../src/generate/backends/llama.js");
  const { GenerationError } = await import("../../src/generate/backends/types.js");
  const path = join(dir, "short-ctx.gguf");
  writeTinyGpt2(path, 3, 32);
  const ep = new LlamaEndpoint({ modelPath: path, threads: 1, concurrency: 2 });
  try {
    const params = { max_tokens: 100, temperature: 0.8, seed: 1 };
    // Past 32 positions a GPT-2 (learned positions) would make llama.cpp abort the process.
    const r = await ep.generate({ id: "fits", messages: [], prompt: "short prompt", params });
    assert.ok((r.usage?.completion_tokens ?? 0) <= 32 - 12);
    await assert.rejects(
      ep.generate({ id: "too-long", messages: [], prompt: "x".repeat(200), params }),
      (e: unknown) =>
        e instanceof GenerationError && !e.retryable && /context is 32/.test((e as Error).message),
    );
  } finally {
    await ep.close();
  }
});
