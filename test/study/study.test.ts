import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { loadMixTokenizer } from "../../src/mix/tokenizer.js";
import { type StudyConfigInput, StudyConfigSchema } from "../../src/study/config.js";
import { genTokensPerSec } from "../../src/study/plan.js";
import { type LoadedStudy, runStudy, studySweepSpec } from "../../src/study/run.js";
import { studyStatus } from "../../src/study/status.js";
import { checkSupply } from "../../src/study/supply.js";
import type { RunExecutor } from "../../src/sweep/executors.js";
import { inProcessExecutor } from "../../src/sweep/executors.js";

/**
 * A loopback OpenAI-compatible generator that "rephrases" deterministically: it answers with the
 * request's source text reshaped into a Question/Answer pair, so every style passes its output checks.
 */
async function startRephraser() {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      const user: string = body.messages?.at(-1)?.content ?? body.prompt ?? "";
      const words = user.split(/\s+/).filter(Boolean).slice(-60);
      const content = `Question: What does the passage describe? Answer: ${words.join(" ")}.`;
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }],
          usage: { prompt_tokens: user.length >> 2, completion_tokens: words.length + 8 },
        }),
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

let gen: Awaited<ReturnType<typeof startRephraser>>;
before(async () => {
  gen = await startRephraser();
});
after(async () => {
  await gen.close();
});

function tinyStudy(workspace: string): LoadedStudy {
  const input: StudyConfigInput = {
    seed: 3,
    corpus: { from: "brown", maxDocs: 40, testFraction: 0.15, testBy: "domain" },
    tokenizer: { vocabSize: 384 },
    generate: {
      styles: ["hq"],
      generators: [`openai:${gen.url}:fake-llm?name=fake&concurrency=8`],
      budgetOutputTokens: 3000,
      chunkTokens: 120,
      maxTokens: 64,
    },
    sweep: {
      contextLength: 16,
      allowRepeat: true,
      grid: {
        models: [
          { name: "t1", nLayer: 1, dModel: 16, nHead: 2 },
          { name: "t2", nLayer: 1, dModel: 32, nHead: 2 },
        ],
        tokens: [2048, 4096, 8192],
        mixtures: ["natural", { hq: 0.5 }],
      },
      train: { batchSize: 8, optimizer: { lr: 3e-3, warmupSteps: 2 }, evalTokens: 1024, checkpointEvery: 4 },
    },
    fit: { bootstrap: 20 },
    report: { title: "tiny study", notes: ["a test study"] },
  };
  return { config: StudyConfigSchema.parse(input), workspace, baseDir: workspace };
}

const quiet = { progress: "silent" as const, log: () => {} };

function runRows(ws: string) {
  const rows = JSON.parse(readFileSync(join(ws, "results", "runs.json"), "utf8")).rows as {
    runId: string;
    domain: string;
    loss: number;
  }[];
  return rows.map((r) => `${r.runId}/${r.domain}=${r.loss}`).sort();
}

test("a tiny study runs through every stage; a killed study resumes to the same results", async () => {
  // Uninterrupted reference.
  const wsA = mkdtempSync(join(tmpdir(), "synthmix-study-a-"));
  const a = await runStudy(tinyStudy(wsA), { ...quiet, executor: inProcessExecutor() });
  for (const f of [
    "corpus/brown/train.jsonl",
    "corpus/brown/stats.json",
    "tokenizer/tokenizer.json",
    "results/runs.json",
    "results/fits.json",
    "results/unigram.json",
    "report/index.html",
    "report/summary.md",
  ]) {
    assert.ok(existsSync(join(wsA, f)), `${f} missing`);
  }
  assert.ok(readdirSync(join(wsA, "synthetic")).includes("hq-fake"));
  assert.equal(readdirSync(join(wsA, "runs")).length, 12, "2 models x 3 budgets x 2 mixtures");
  assert.equal(a.failedRuns.length, 0);
  assert.ok(a.reportHtml && existsSync(a.reportHtml));
  assert.ok(a.findings.length > 0, "the study prints findings");
  const rowsA = runRows(wsA);
  assert.ok(rowsA.length >= 12 * 2);
  const done = studyStatus(tinyStudy(wsA));
  assert.deepEqual(
    done.stages.map((s) => s.state),
    ["complete", "complete", "complete", "complete", "complete"],
  );
  assert.deepEqual(done.runs, { planned: 12, done: 12, running: 0, pending: 0, failed: 0 });
  assert.equal(done.reportHtml, a.reportHtml);

  // Interrupted after three training runs, then resumed.
  const wsB = mkdtempSync(join(tmpdir(), "synthmix-study-b-"));
  const ac = new AbortController();
  let finished = 0;
  const inner = inProcessExecutor();
  const killing: RunExecutor = async (job) => {
    const r = await inner(job);
    if (++finished === 3) ac.abort();
    return r;
  };
  await assert.rejects(runStudy(tinyStudy(wsB), { ...quiet, executor: killing, signal: ac.signal }));
  const state = JSON.parse(readFileSync(join(wsB, "study-state.json"), "utf8"));
  assert.equal(state.stages.generate.complete, true);
  assert.equal(state.stages.sweep.complete, false);
  const mid = studyStatus(tinyStudy(wsB));
  assert.equal(mid.stages.find((s) => s.stage === "sweep")!.state, "partial");
  assert.equal(mid.stages.find((s) => s.stage === "generate")!.state, "complete");
  assert.ok(mid.runs.done >= 3 && mid.runs.done < 12, JSON.stringify(mid.runs));
  // Another config for the same workspace: what it would rebuild is stale.
  const other = tinyStudy(wsB);
  other.config.tokenizer.vocabSize = 400;
  assert.deepEqual(
    studyStatus(other).stages.map((s) => s.state),
    ["complete", "stale", "stale", "stale", "stale"],
  );
  let trainedOnResume = 0;
  const counting: RunExecutor = async (job) => {
    trainedOnResume++;
    return inner(job);
  };
  const b = await runStudy(tinyStudy(wsB), { ...quiet, executor: counting });
  assert.deepEqual(b.failedRuns, [], "the resumed study trains every run");
  assert.ok(trainedOnResume <= 12 - 3, `finished runs were redone (${trainedOnResume} trained on resume)`);
  assert.deepEqual(runRows(wsB), rowsA, "resumed study gives the same losses as an uninterrupted one");

  // A third invocation is a no-op for every stage and leaves the results unchanged.
  let trainedAgain = 0;
  await runStudy(tinyStudy(wsB), {
    ...quiet,
    executor: async (job) => {
      trainedAgain++;
      return inner(job);
    },
  });
  assert.equal(trainedAgain, 0);
  assert.deepEqual(runRows(wsB), rowsA);
});

test("changing the sweep invalidates only the sweep, not the corpus, tokenizer or synthetic data", async () => {
  const ws = mkdtempSync(join(tmpdir(), "synthmix-study-c-"));
  const study = tinyStudy(ws);
  study.config.sweep.grid!.tokens = [2048, 4096];
  study.config.sweep.grid!.mixtures = ["natural"];
  study.config.generate!.budgetOutputTokens = 1000;
  const lines: string[] = [];
  await runStudy(study, {
    progress: "silent",
    log: (l) => lines.push(l),
    executor: inProcessExecutor(),
    until: "sweep",
  });
  const tokBefore = readFileSync(join(ws, "tokenizer", "tokenizer.json"), "utf8");
  study.config.sweep.grid!.tokens = [2048, 4096, 8192];
  lines.length = 0;
  await runStudy(study, {
    progress: "silent",
    log: (l) => lines.push(l),
    executor: inProcessExecutor(),
    until: "sweep",
  });
  assert.ok(lines.includes("[corpus] up to date, skipped"));
  assert.ok(lines.includes("[tokenizer] up to date, skipped"));
  assert.ok(lines.includes("[generate] up to date, skipped"));
  assert.ok(lines.some((l) => l.startsWith("[sweep] config changed")));
  assert.equal(readFileSync(join(ws, "tokenizer", "tokenizer.json"), "utf8"), tokBefore);
  assert.equal(readdirSync(join(ws, "runs")).length, 6);
});

test("without allowRepeat a short generation stops the study before training; an auto budget suffices", async () => {
  const ws = mkdtempSync(join(tmpdir(), "synthmix-study-supply-"));
  const study = tinyStudy(ws);
  study.config.sweep.allowRepeat = false;
  study.config.generate!.budgetOutputTokens = 300;
  // 300 output tokens start at most a few documents (each is finished: ~8k tokens); hq-50 at 64k needs 32k.
  study.config.sweep.grid!.tokens = [2048, 65536];
  let trained = 0;
  const inner = inProcessExecutor();
  const counting: RunExecutor = async (job) => {
    trained++;
    return inner(job);
  };
  await assert.rejects(
    runStudy(study, { ...quiet, executor: counting }),
    (e: Error & { code?: string }) => e.code === "SUPPLY_SHORT" && /hq-fake/.test(e.message),
  );
  assert.equal(trained, 0, "no run trains on a short source");

  // "auto": each (style, generator) gets what its largest run takes (+ margin); the check then passes.
  const ws2 = mkdtempSync(join(tmpdir(), "synthmix-study-supply-auto-"));
  const auto = tinyStudy(ws2);
  auto.config.sweep.allowRepeat = false;
  auto.config.generate!.budgetOutputTokens = "auto";
  await runStudy(auto, { ...quiet, executor: inProcessExecutor(), until: "generate" });
  const spec = studySweepSpec(auto, ["fake"]);
  const tokenizer = await loadMixTokenizer(join(ws2, "tokenizer", "tokenizer.json"), 1);
  const rows = await checkSupply(spec, ws2, tokenizer);
  const hq = rows.find((r) => r.name.includes("hq-fake"));
  assert.ok(hq && hq.have >= hq.need, JSON.stringify(rows));
  assert.equal(hq.need, 4096, "the largest run takes half of 8192 tokens from hq");
});

test("SYNTHMIX_GEN_TOKENS_PER_SEC: unset is the default; a non-number or non-positive value is an error naming it", () => {
  assert.equal(genTokensPerSec(undefined), 12000);
  assert.equal(genTokensPerSec(""), 12000);
  assert.equal(genTokensPerSec("2500"), 2500);
  for (const bad of ["fast", "0", "-3", "Infinity", "NaN"])
    assert.throws(() => genTokensPerSec(bad), /SYNTHMIX_GEN_TOKENS_PER_SEC=.*positive number/, bad);
});
