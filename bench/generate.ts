/**
 * Two benchmarks of the generate stage.
 *
 * 1. Runner (default): generation runner throughput vs the plain `openai` client under `p-limit`, against
 *    a loopback OpenAI-compatible server (a child process) that answers instantly. Reports the sustained
 *    request rate at concurrency 64/256/1024, the runner's client-side CPU per request, and its memory.
 *
 *      npx tsx bench/generate.ts [--requests 3000] [--concurrency 64,256,1024]
 *
 * 2. Local GGUF decoding (--local): output tokens/s of the native batched engine (synthmix kernels, KV
 *    cache, continuous batching) against node-llama-cpp on the same GGUF, side by side in one run; see
 *    bench/generate-local.ts.
 *
 *      npx tsx bench/generate.ts --local [--gguf synthmix-demo/generator/synthmix-demo.gguf] [--requests 200]
 */
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import pLimit from "p-limit";
import { runGeneration } from "../src/generate/run.js";

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const N = Number(arg("requests", "3000"));
const LEVELS = arg("concurrency", "64,256,1024").split(",").map(Number);

const SERVER = `
const http = require("node:http");
const body = JSON.stringify({ id: "x", object: "chat.completion", created: 0, model: "m",
  choices: [{ index: 0, message: { role: "assistant", content: "A rephrased sentence about the topic, in clear prose." }, finish_reason: "stop" }],
  usage: { prompt_tokens: 50, completion_tokens: 12, total_tokens: 62 } });
const s = http.createServer((req, res) => { req.resume(); req.on("end", () => {
  res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) }); res.end(body); }); });
s.keepAliveTimeout = 60000; s.maxRequestsPerSocket = 0;
s.listen(0, "127.0.0.1", () => console.log(s.address().port));`;

async function startServer(): Promise<{ url: string; stop: () => void }> {
  const child = spawn(process.execPath, ["-e", SERVER], { stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise<string>((resolve) =>
    child.stdout?.once("data", (d: Buffer) => resolve(d.toString().trim())),
  );
  return { url: `http://127.0.0.1:${port}/v1`, stop: () => child.kill() };
}

function workspace(n: number): string {
  const ws = mkdtempSync(join(tmpdir(), "synthmix-bench-gen-"));
  mkdirSync(join(ws, "corpus", "b"), { recursive: true });
  const lines = Array.from({ length: n }, (_, i) =>
    JSON.stringify({
      id: `b:${i}`,
      text: `Document ${i} says a few things about subject ${i % 97} in one short paragraph.`,
    }),
  );
  writeFileSync(join(ws, "corpus", "b", "train.jsonl"), `${lines.join("\n")}\n`);
  return ws;
}

interface Result {
  seconds: number;
  cpuUs: number;
  peakRssMb: number;
}

async function measure(fn: () => Promise<void>): Promise<Result> {
  global.gc?.();
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 50);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  const seconds = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  clearInterval(timer);
  return { seconds, cpuUs: c.user + c.system, peakRssMb: peak / 2 ** 20 };
}

async function main() {
  const srv = await startServer();
  const rows: string[] = [];
  const log = (s: string) => {
    console.log(s);
    rows.push(s);
  };
  log(`requests per run: ${N}; server: loopback child process answering instantly; node ${process.version}`);
  log(
    "| concurrency | synthmix runner req/s | openai+p-limit req/s | ratio (runner/plain) | runner CPU µs/req | plain CPU µs/req | runner peak RSS MB | plain peak RSS MB |",
  );
  log("|---:|---:|---:|---:|---:|---:|---:|---:|");
  const client = new OpenAI({ baseURL: srv.url, apiKey: "x", maxRetries: 5, timeout: 120_000 });
  // Warm up both paths (JIT, sockets).
  await Promise.all(
    Array.from({ length: 64 }, () =>
      client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }] }),
    ),
  );
  for (const c of LEVELS) {
    const ws = workspace(N);
    const runner = await measure(async () => {
      const s = await runGeneration({
        workspace: ws,
        corpusName: "b",
        style: "hq",
        generators: [`openai:${srv.url}:m?concurrency=${c}`],
        progress: "silent",
      });
      const g = s.generators[0];
      if (g.requests.completed !== N || g.accepted !== N)
        throw new Error(`runner completed ${g.requests.completed}/${N}`);
    });
    rmSync(ws, { recursive: true, force: true });
    const limit = pLimit(c);
    const plain = await measure(async () => {
      const prompts = Array.from({ length: N }, (_, i) => `Paraphrase: Document ${i} says a few things.`);
      const out = await Promise.all(
        prompts.map((p) =>
          limit(() =>
            client.chat.completions.create({
              model: "m",
              messages: [{ role: "user", content: p }],
              temperature: 0.7,
              max_tokens: 1024,
            }),
          ),
        ),
      );
      if (out.length !== N) throw new Error("plain client lost requests");
    });
    log(
      `| ${c} | ${(N / runner.seconds).toFixed(0)} | ${(N / plain.seconds).toFixed(0)} | ${(plain.seconds / runner.seconds).toFixed(2)} | ` +
        `${(runner.cpuUs / N).toFixed(0)} | ${(plain.cpuUs / N).toFixed(0)} | ${runner.peakRssMb.toFixed(0)} | ${plain.peakRssMb.toFixed(0)} |`,
    );
  }
  srv.stop();
}

if (process.argv.includes("--local")) {
  const { benchLocal } = await import("./generate-local.js");
  await benchLocal(process.argv);
} else {
  await main();
}
