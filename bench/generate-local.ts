/**
 * Local GGUF generation: output tokens/s of the native engine (src/generate/backends/native.ts: synthmix's
 * kernels, KV cache, continuous batching) against node-llama-cpp on the same GGUF, side by side in one run:
 *
 *   - llama c=1:  LlamaEndpoint with one sequence on one thread, what the demo used (reproducible bytes);
 *   - llama c=K:  LlamaEndpoint with K sequences in one context (node-llama-cpp batches their tokens into
 *                 one llama_decode: llama.cpp's batch API), K = 4 and 16 by default; the ratios are taken
 *                 against the best node-llama-cpp row (per wall second and per CPU second separately);
 *   - native c=N: the native engine with N KV-cache slots.
 *
 * Every engine answers the same requests (HQ prompts over 120-token source chunks of the workspace's corpus, the
 * demo's sampling: temperature 0.8, top-p default, max_tokens 128, seed 1). Output tokens are the
 * completion tokens the endpoints report. "same text" counts requests whose output equals llama c=1's.
 *
 *   npx tsx bench/generate.ts --local [--gguf synthmix-demo/generator/synthmix-demo.gguf] [--requests 256]
 *       [--threads 1] [--llama-threads <--threads>] [--llama-concurrency 4,16] [--native-concurrency 64]
 *       [--native-engines 1] [--llama-engines 1,2]
 *
 * --threads is the native engine's thread count; --llama-threads lists node-llama-cpp's (each with every
 * concurrency; default the same as the native engine's), so a 2-thread native row can be compared with
 * node-llama-cpp on 1 and 2 threads (`--threads 2 --llama-threads 1,2`). The llama rows are named
 * `llama c=K` on one thread and `llama c=K t=2` otherwise. --native-engines runs that many native engines
 * side by side (the study runs 2 per thread, src/study/run.ts); --llama-engines lists node-llama-cpp's
 * replica counts (`llama c=K x2`: 2 endpoints, each its own context, requests alternating), so that both
 * sides can use every core. Per CPU second the comparison is the same either way; in wall time only rows
 * that may use the same cores compare.
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname, join, resolve } from "node:path";
import { LlamaEndpoint } from "../src/generate/backends/llama.js";
import { NativeEndpoint } from "../src/generate/backends/native.js";
import type { Endpoint, GenRequest, GenResponse, SamplingParams } from "../src/generate/backends/types.js";
import { chunkText } from "../src/generate/chunk.js";
import { loadGpt2Gguf } from "../src/generate/native/gguf-model.js";
import { GgufText } from "../src/generate/native/text.js";
import { HQ, renderPrompt } from "../src/generate/prompts/index.js";

function argOf(argv: string[], name: string, dflt: string): string {
  const i = argv.indexOf(`--${name}`);
  return i > 0 && argv[i + 1] !== undefined ? argv[i + 1] : dflt;
}

/**
 * Source chunks from the workspace's corpus as the demo cuts them: chunkText at the demo's chunk size
 * (120 tokens of the workspace tokenizer, which is the generator's: counted with the GGUF's vocabulary),
 * the first `n` chunks in corpus order.
 */
export async function paragraphs(gguf: string, n: number): Promise<string[]> {
  const text = new GgufText((await loadGpt2Gguf(gguf)).vocab);
  const count = (s: string) => text.encode(s).length;
  const corpusDir = join(dirname(dirname(gguf)), "corpus");
  const name = existsSync(corpusDir) ? readdirSync(corpusDir)[0] : undefined;
  const file = name ? join(corpusDir, name, "train.jsonl") : "";
  if (!name || !existsSync(file)) {
    throw new Error(`no corpus next to ${gguf} (expected ${corpusDir}/<name>/train.jsonl)`);
  }
  const out: string[] = [];
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (!line.trim()) continue;
    const doc = (JSON.parse(line) as { text: string }).text;
    for (const c of chunkText(doc, 120, count)) if (out.length < n) out.push(c);
    if (out.length >= n) break;
  }
  return out;
}

interface Row {
  name: string;
  seconds: number;
  /** CPU seconds of this process (all threads, llama.cpp's included) during the timed part. */
  cpuSeconds: number;
  outTokens: number;
  promptTokens: number;
  texts: string[];
}

/**
 * node-llama-cpp on several cores, the way the native engine gets them: `n` endpoints (each its own model
 * and context, `threads` threads), request i to endpoint i mod n; llama.cpp decodes their contexts side by
 * side on its own threads.
 */
class LlamaReplicas implements Endpoint {
  readonly label: string;
  readonly concurrency: number;
  private readonly eps: LlamaEndpoint[];
  private next = 0;
  constructor(modelPath: string, threads: number, concurrency: number, n: number) {
    this.eps = Array.from({ length: n }, () => new LlamaEndpoint({ modelPath, threads, concurrency }));
    this.label = `${n} x ${modelPath}`;
    this.concurrency = concurrency * n;
  }
  generate(req: GenRequest): Promise<GenResponse> {
    return this.eps[this.next++ % this.eps.length].generate(req);
  }
  async close(): Promise<void> {
    await Promise.all(this.eps.map((e) => e.close()));
  }
}

async function runEngine(
  name: string,
  ep: Endpoint,
  prompts: string[],
  params: SamplingParams,
): Promise<Row> {
  // Warm-up (model load, first context) outside the timing.
  await ep.generate({ id: "warmup", messages: [], prompt: prompts[0], params });
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const res: GenResponse[] = await Promise.all(
    prompts.map((prompt, i) => ep.generate({ id: `r${i}`, messages: [], prompt, params })),
  );
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(c0);
  await ep.close?.();
  return {
    name,
    seconds,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    outTokens: res.reduce((a, r) => a + (r.usage?.completion_tokens ?? 0), 0),
    promptTokens: res.reduce((a, r) => a + (r.usage?.prompt_tokens ?? 0), 0),
    texts: res.map((r) => r.text),
  };
}

export async function benchLocal(argv: string[]): Promise<void> {
  const gguf = resolve(argOf(argv, "gguf", "synthmix-demo/generator/synthmix-demo.gguf"));
  if (!existsSync(gguf)) {
    console.error(
      `synthmix bench: ${gguf} not found. hint: train the demo's generator first, e.g. ` +
        "`synthmix demo --workspace synthmix-demo` (stop it after the generatorModel stage), or pass --gguf",
    );
    process.exitCode = 1;
    return;
  }
  const n = Number(argOf(argv, "requests", "256"));
  const threads = Number(argOf(argv, "threads", "1"));
  const llamaThreads = argOf(argv, "llama-threads", String(threads)).split(",").map(Number);
  const lcs = argOf(argv, "llama-concurrency", "4,16").split(",").map(Number);
  const nc = Number(argOf(argv, "native-concurrency", "64"));
  const ne = Number(argOf(argv, "native-engines", "1"));
  const le = argOf(argv, "llama-engines", "1").split(",").map(Number);
  const prompts = (await paragraphs(gguf, n)).map((text) => renderPrompt(HQ, { text }).prompt);
  const params: SamplingParams = { temperature: 0.8, max_tokens: 128, seed: 1 };
  console.log(
    `model ${gguf}; ${prompts.length} requests (HQ prompts, temperature 0.8, max_tokens 128, seed 1); ` +
      `threads ${threads}; node ${process.version}; load average ${loadavg()[0].toFixed(1)}`,
  );
  if (argv.includes("--native-only")) {
    await nativeOnly(argv, gguf, prompts, params);
    return;
  }
  const rows: Row[] = [];
  for (const n of le) {
    for (const t of llamaThreads) {
      for (const c of [1, ...lcs.filter((c) => c > 1)]) {
        const ep =
          n === 1
            ? new LlamaEndpoint({ modelPath: gguf, threads: t, concurrency: c })
            : new LlamaReplicas(gguf, t, c, n);
        const name = `llama c=${c}${t === 1 ? "" : ` t=${t}`}${n === 1 ? "" : ` x${n}`}`;
        rows.push(await runEngine(name, ep, prompts, params));
      }
    }
  }
  const nativeEp = new NativeEndpoint({ modelPath: gguf, threads, concurrency: nc, engines: ne });
  const native = await runEngine(
    `native c=${nc}${threads === 1 ? "" : ` t=${threads}`}${ne === 1 ? "" : ` x${ne}`}`,
    nativeEp,
    prompts,
    params,
  );
  rows.push(native);
  printRows(rows);
  const base = rows[0];
  const rate = (r: Row) => r.outTokens / r.seconds;
  const perCpu = (r: Row) => r.outTokens / r.cpuSeconds;
  const peers = rows.slice(0, -1);
  const bestWall = peers.reduce((a, r) => (rate(r) > rate(a) ? r : a));
  const bestCpu = peers.reduce((a, r) => (perCpu(r) > perCpu(a) ? r : a));
  console.log(
    `ratio (wall) native / llama c=1: ${(rate(native) / rate(base)).toFixed(2)}x; ` +
      `native / best node-llama-cpp (${bestWall.name}): ${(rate(native) / rate(bestWall)).toFixed(2)}x`,
  );
  console.log(
    `ratio (per CPU second) native / llama c=1: ${(perCpu(native) / perCpu(base)).toFixed(2)}x; ` +
      `native / best node-llama-cpp (${bestCpu.name}): ${(perCpu(native) / perCpu(bestCpu)).toFixed(2)}x`,
  );
  // Where the native engine's time went (its thread's CPU seconds per phase, warm-up included).
  const prof = await nativeEp.profile();
  const phases = Object.entries(prof).filter(([k]) => !["rows", "steps", "decodePositions"].includes(k));
  console.log(
    `native engine: ${prof.steps} steps, ${prof.rows} rows (prompt rows computed: ${prof.rows - native.outTokens}); ` +
      `CPU s per phase: ${phases.map(([k, v]) => `${k} ${v.toFixed(3)}`).join(", ")}; ` +
      (threads === 1
        ? `outside the engine (JS: scheduling, tokenising, detokenising) ~${(native.cpuSeconds - phases.reduce((a, [, v]) => a + v, 0)).toFixed(2)}`
        : "(the calling thread only; its workers are not included)") +
      `; native texts ${textsHash(native.texts)}`,
  );
}

/** sha256 over the texts in request order (each followed by a NUL): equal hashes = byte-identical outputs. */
function textsHash(texts: string[]): string {
  const h = createHash("sha256");
  for (const t of texts) h.update(t).update("\0");
  return h.digest("hex").slice(0, 16);
}

/**
 * --native-only [--native-concurrency 16,64] [--native-threads 1,2]: the native engine alone at each
 * concurrency and thread count, with a hash of its 256 texts (to check that a change keeps every output
 * byte) and its CPU time; for iterating on the engine, not a comparison.
 */
async function nativeOnly(
  argv: string[],
  gguf: string,
  prompts: string[],
  params: SamplingParams,
): Promise<void> {
  const ncs = argOf(argv, "native-concurrency", "64").split(",").map(Number);
  const nts = argOf(argv, "native-threads", argOf(argv, "threads", "1"))
    .split(",")
    .map(Number);
  const nes = argOf(argv, "native-engines", "1").split(",").map(Number);
  const rows: Row[] = [];
  for (const c of ncs) {
    for (const t of nts) {
      for (const e of nes) {
        const ep = new NativeEndpoint({ modelPath: gguf, threads: t, concurrency: c, engines: e });
        const row = await runEngine(`native c=${c} t=${t}${e === 1 ? "" : ` x${e}`}`, ep, prompts, params);
        rows.push(row);
        const prof = await ep.profile();
        const phases = Object.entries(prof).filter(
          ([k]) => !["rows", "steps", "decodePositions"].includes(k),
        );
        console.log(
          `${row.name}: wall ${row.seconds.toFixed(3)} s, CPU ${row.cpuSeconds.toFixed(3)} s, ` +
            `${row.outTokens} output tokens, texts ${textsHash(row.texts)}; ` +
            phases.map(([k, v]) => `${k} ${v.toFixed(3)}`).join(", ") +
            `; decode rows ${((prof["attention (decode rows)"] / prof.decodePositions) * 1e9).toFixed(2)} ns per cached position and head`,
        );
      }
    }
  }
  const hashes = new Set(rows.map((r) => textsHash(r.texts)));
  console.log(
    hashes.size === 1 ? "all runs: the same texts" : `texts DIFFER between runs (${hashes.size} hashes)`,
  );
}

function printRows(rows: Row[]): void {
  const base = rows[0];
  console.log(
    "| engine | wall s | CPU s | output tok/s (wall) | output tok per CPU s | prompt tok/s (wall) | same text as llama c=1 |",
  );
  console.log("|---|---:|---:|---:|---:|---:|---:|");
  for (const r of rows) {
    const same = r.texts.filter((t, i) => t === base.texts[i]).length;
    console.log(
      `| ${r.name} | ${r.seconds.toFixed(2)} | ${r.cpuSeconds.toFixed(2)} | ${(r.outTokens / r.seconds).toFixed(0)} | ` +
        `${(r.outTokens / r.cpuSeconds).toFixed(0)} | ${(r.promptTokens / r.seconds).toFixed(0)} | ${same}/${r.texts.length} |`,
    );
  }
}
