import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";
import type { RunExecutor } from "../../src/sweep/executors.js";
import { planSweep } from "../../src/sweep/plan.js";
import { distIsFresh } from "../../src/sweep/pool.js";
import type { FinalMetric } from "../../src/sweep/registry.js";
import { listStatuses, readStatus } from "../../src/sweep/registry.js";
import { mixtureEpochs, resultRows, rowsToCsv } from "../../src/sweep/results.js";
import { runSweep } from "../../src/sweep/scheduler.js";
import { resolveSpec, type SweepSpecInput } from "../../src/sweep/spec.js";
import { byteTokenizer, makeWorkspace } from "../mix/helpers.js";

const tiny = (name: string) => ({ name, nLayer: 1, dModel: 16, nHead: 2 });

function gridSpec(extra: Partial<SweepSpecInput> = {}): SweepSpecInput {
  return {
    contextLength: 16,
    grid: {
      models: [tiny("t16"), { name: "t32", nLayer: 1, dModel: 32, nHead: 2 }],
      tokens: [4000, "8k"],
      mixtures: ["natural", { hq: [0.33, 1] }],
      generators: ["demo"],
      seeds: [1],
    },
    ...extra,
  };
}

function fakeFinal(id: string, loss: number): FinalMetric {
  return {
    type: "final",
    step: 1,
    tokens: 1,
    loss,
    losses: { fiction: loss + 1, news: loss - 1 },
    nonEmbeddingParams: 1,
    totalParams: 2,
    flops: id.length,
    tokensPerSec: 10,
    elapsedSec: 1,
  };
}

test("grid expands models x tokens x mixtures x generators x seeds with stable ids and a threads rule", () => {
  const ws = makeWorkspace();
  const { spec } = resolveSpec(gridSpec(), ws);
  const runs = planSweep(spec, ws, 257);
  // natural is not repeated per generator: 2 models x 2 budgets x (1 + 2) mixtures.
  assert.equal(runs.length, 12);
  assert.equal(new Set(runs.map((r) => r.id)).size, 12);
  const again = planSweep(resolveSpec(gridSpec(), ws).spec, ws, 257);
  assert.deepEqual(
    again.map((r) => r.id),
    runs.map((r) => r.id),
  );
  const r = runs.find((x) => x.mixture.label === "hq-33" && x.tokens === 8000 && x.modelName === "t16")!;
  assert.equal(r.mixture.id, "hq-33-demo-s1-d8k");
  assert.equal(r.mixture.synthetic, "hq");
  assert.equal(r.mixture.ratio, 0.33);
  assert.deepEqual(
    r.mixture.sources.map((s) => [s.name, s.share]),
    [
      ["natural", 0.67],
      ["hq", 0.33],
    ],
  );
  assert.ok(r.mixture.sources[1].path.endsWith("synthetic/hq-demo"));
  assert.equal(r.config.data.train, join(ws, "mixtures/hq-33-demo-s1-d8k"));
  assert.equal(r.config.tokens, 8000);
  // 6ND + attention (train/ladder), computed independently here.
  const N = r.nonEmbeddingParams;
  assert.equal(r.flops, 6 * N * 8000 + 6 * 1 * 16 * 16 * 8000);
  const synthOnly = runs.find((x) => x.mixture.label === "hq-100")!;
  assert.deepEqual(
    synthOnly.mixture.sources.map((s) => s.name),
    ["hq"],
  );
  assert.ok(runs.every((x) => x.threads === 1));
  // A large model gets both cores; a ladder name resolves through train/ladder.
  const big = planSweep(
    resolveSpec({ ...gridSpec(), grid: { ...gridSpec().grid!, models: ["s4"] } }, ws).spec,
    ws,
    257,
  );
  assert.ok(big.every((x) => x.threads === 2 && x.nonEmbeddingParams > 3e6));
  // Changing a training setting changes the ids; listing order of keys does not.
  const lr = planSweep(resolveSpec(gridSpec({ train: { optimizer: { lr: 0.01 } } }), ws).spec, ws, 257);
  assert.notEqual(lr[0].id, runs[0].id);
});

test("a failing run is retried once, then reported with its error; the others finish; results rows", async () => {
  const ws = makeWorkspace();
  const { spec } = resolveSpec(
    {
      contextLength: 16,
      runs: [
        { model: tiny("t16"), tokens: 3000, mixture: "natural" },
        { model: tiny("broken"), tokens: 3000, mixture: "natural" },
        { model: tiny("t16"), tokens: 3000, mixture: { hq: 0.5 }, generator: "demo" },
        { model: tiny("t16"), tokens: 3000, mixture: { hq: 0.5 }, generator: "missing" },
      ],
    },
    ws,
  );
  const calls = new Map<string, number>();
  const executor: RunExecutor = async (job) => {
    calls.set(job.id, (calls.get(job.id) ?? 0) + 1);
    assert.ok(existsSync(join(job.runDir, "config.json")));
    assert.ok(existsSync(join(resolve(job.runDir, job.config.data.train), "tokens.bin")));
    if (job.config.modelName === "broken") throw new Error("boom: out of memory");
    return fakeFinal(job.id, 3);
  };
  const summary = await runSweep({
    spec,
    workspace: ws,
    tokenizer: byteTokenizer(),
    executor,
    progress: "silent",
  });
  assert.equal(summary.planned, 4);
  assert.equal(summary.finished, 2);
  assert.equal(summary.failed.length, 2);
  const statuses = listStatuses(ws);
  const broken = statuses.find((s) => s.modelName === "broken")!;
  assert.equal(broken.status, "failed");
  assert.equal(broken.attempts, 2);
  assert.match(broken.error!, /boom: out of memory/);
  assert.equal(calls.get(broken.id), 2);
  // A mixture that cannot be built (no such synthetic folder) fails its run without a retry.
  const missing = statuses.find((s) => s.mixture.generator === "missing")!;
  assert.equal(missing.status, "failed");
  assert.match(missing.error!, /synthetic\/hq-missing does not exist/);
  assert.equal(calls.get(missing.id), undefined);
  const done = statuses.filter((s) => s.status === "done");
  assert.equal(done.length, 2);
  // results/runs.json: one row per done run x (2 domains + "all").
  const results = JSON.parse(readFileSync(join(ws, "results/runs.json"), "utf8"));
  assert.equal(results.rows.length, 6);
  // Rows carry each source's epochs from the mixture manifest (fit flags REPEATED_DATA from them).
  assert.deepEqual(
    results.rows,
    resultRows(statuses, (id) => mixtureEpochs(ws, id)),
  );
  assert.ok(results.rows.every((r: { epochs?: Record<string, number> }) => r.epochs !== undefined));
  const row = results.rows.find(
    (r: { domain: string; mixture: string }) => r.domain === "news" && r.mixture === "hq-50",
  );
  assert.equal(row.loss, 2);
  assert.equal(row.generator, "demo");
  assert.equal(row.ratio, 0.5);
  const csv = rowsToCsv(results.rows).trim().split("\n");
  assert.equal(csv.length, 7);
  assert.ok(csv[0].startsWith("runId,modelName,"));
  // A rerun trains nothing that is done and retries the failed run.
  const again = await runSweep({
    spec,
    workspace: ws,
    tokenizer: byteTokenizer(),
    executor,
    progress: "silent",
  });
  assert.equal(again.alreadyDone, 2);
  assert.equal(again.finished, 0);
  for (const s of done) assert.equal(calls.get(s.id), 1);
  assert.equal(calls.get(broken.id), 4);
});

test("a sweep killed mid-way and rerun finishes every run exactly once, resuming from checkpoints", async () => {
  const ws = makeWorkspace();
  const fake = resolve("test/sweep/fixtures/fake-train.mjs");
  const spec: SweepSpecInput = {
    contextLength: 16,
    grid: {
      models: [tiny("t16"), { name: "t32", nLayer: 1, dModel: 32, nHead: 2 }],
      tokens: [3000],
      mixtures: ["natural", { hq: 0.33 }],
      generators: ["demo"],
    },
    scheduler: { cores: 2, command: [process.execPath, fake, "{config}"] },
  };
  const specPath = join(ws, "spec.json");
  writeFileSync(specPath, JSON.stringify(spec));
  const driver = (env: Record<string, string>) =>
    spawn(process.execPath, ["--import", "tsx", "test/sweep/fixtures/driver.ts", specPath, ws], {
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...env },
    });
  const first = driver({ FAKE_STEPS: "10", FAKE_STEP_MS: "250" });
  const exited = new Promise((r) => first.on("exit", r));
  // Kill the whole process group (sweep + training children) once one run is done and another is mid-way.
  const deadline = Date.now() + 30_000;
  for (;;) {
    assert.ok(Date.now() < deadline, "the first sweep made no progress");
    const st = listStatuses(ws);
    const midway = st.some((s) => {
      const p = join(ws, "runs", s.id, "ckpt.json");
      if (s.status !== "running" || !existsSync(p)) return false;
      const ck = JSON.parse(readFileSync(p, "utf8"));
      return !ck.done && ck.step >= 1 && ck.step <= 6;
    });
    if (st.some((s) => s.status === "done") && midway) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const snap = () =>
    listStatuses(ws)
      .map(
        (s) =>
          `${s.id} ${s.status} ${existsSync(join(ws, "runs", s.id, "ckpt.json")) ? readFileSync(join(ws, "runs", s.id, "ckpt.json"), "utf8") : "-"}`,
      )
      .join("\n");
  const atKill = snap();
  process.kill(-first.pid!, "SIGKILL");
  await exited;
  const before = listStatuses(ws);
  assert.ok(
    before.some((s) => s.status !== "done"),
    "the kill came before the end",
  );
  // Runs cut mid-way: a checkpoint that is not final.
  const cut = new Map<string, number>();
  for (const s of before) {
    const p = join(ws, "runs", s.id, "ckpt.json");
    const ck = existsSync(p) ? JSON.parse(readFileSync(p, "utf8")) : undefined;
    if (ck && !ck.done && ck.step > 0) cut.set(s.id, ck.step);
  }
  assert.ok(cut.size >= 1, `at least one run was killed mid-way\n${atKill}\n--\n${snap()}`);

  const second = driver({ FAKE_STEPS: "10", FAKE_STEP_MS: "5" });
  let out = "";
  second.stdout!.on("data", (d) => (out += d));
  let err = "";
  second.stderr!.on("data", (d) => (err += d));
  const code = await new Promise((r) => second.on("exit", r));
  assert.equal(code, 0, err);
  const summary = JSON.parse(out.trim().split("\n").at(-1)!);
  assert.equal(summary.failed.length, 0);
  const after = listStatuses(ws);
  assert.equal(after.length, 4);

  for (const s of after) {
    assert.equal(s.status, "done", s.id);
    const dir = join(ws, "runs", s.id);
    const starts = readFileSync(join(dir, "starts.log"), "utf8").trim().split("\n").map(Number);
    const wasDone = before.find((b) => b.id === s.id)?.status === "done";
    if (wasDone) assert.deepEqual(starts, [0], "a done run is never started again");
    if (cut.has(s.id))
      assert.deepEqual(starts, [0, cut.get(s.id)], "the cut run resumed from its checkpoint");
    // Trained exactly once: every step once (a resumed attempt continued after its checkpoint), one final.
    const records = readFileSync(join(dir, "metrics.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    const steps = records.filter((r) => r.type === "train").map((r) => r.step);
    assert.deepEqual(steps, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.equal(records.filter((r) => r.type === "final").length, 1);
    assert.equal(readStatus(ws, s.id)!.final!.tokens, 3000);
  }
  assert.equal(JSON.parse(readFileSync(join(ws, "results/runs.json"), "utf8")).rows.length, 12);
});

test("threadsBy measure: each model's decision comes from measured throughput, is recorded and reused", async () => {
  const ws = makeWorkspace();
  const { spec } = resolveSpec(
    {
      contextLength: 16,
      runs: [
        { model: tiny("t16"), tokens: 2000, mixture: "natural" },
        { model: tiny("t16"), tokens: 3000, mixture: "natural" },
      ],
      train: { batchSize: 2 },
      scheduler: { threadsBy: "measure", minSpeedup: 1.6 },
    },
    ws,
  );
  const seen: number[] = [];
  const executor: RunExecutor = async (job) => {
    seen.push(job.config.threads);
    return fakeFinal(job.id, 3);
  };
  await runSweep({ spec, workspace: ws, tokenizer: byteTokenizer(), executor, progress: "silent" });
  const path = join(ws, "runs/.threads.json");
  const recorded = Object.values(JSON.parse(readFileSync(path, "utf8"))) as {
    tokPerSec1: number;
    tokPerSecAll: number;
    speedup: number;
    threads: number;
  }[];
  assert.equal(recorded.length, 1, "one measurement per distinct model");
  const m = recorded[0];
  assert.ok(m.tokPerSec1 > 0 && m.tokPerSecAll > 0);
  assert.equal(m.threads, m.speedup >= 1.6 ? 2 : 1);
  assert.deepEqual(seen, [m.threads, m.threads]);
  for (const s of listStatuses(ws)) assert.equal(s.config.threads, m.threads);
});

test("a model's own lr overrides the grid's, enters its run id, and leaves other models' ids alone", () => {
  const ws = makeWorkspace();
  const base = gridSpec({ train: { optimizer: { lr: 0.003 } } });
  const withLr = gridSpec({ train: { optimizer: { lr: 0.003 } } });
  withLr.grid!.models = [
    { ...tiny("t16"), lr: 0.01 },
    { name: "t32", nLayer: 1, dModel: 32, nHead: 2 },
  ];
  const a = planSweep(resolveSpec(base, ws).spec, ws, 257);
  const b = planSweep(resolveSpec(withLr, ws).spec, ws, 257);
  for (const r of b) {
    const twin = a.find((x) => x.id.replace(/-[0-9a-f]{8}$/, "") === r.id.replace(/-[0-9a-f]{8}$/, ""))!;
    if (r.modelName === "t16") {
      assert.equal(r.config.optimizer.lr, 0.01);
      assert.notEqual(r.id, twin.id, "a different LR is a different run");
      assert.equal(r.config.optimizer.warmupSteps, twin.config.optimizer.warmupSteps);
    } else {
      assert.equal(r.config.optimizer.lr, 0.003);
      assert.equal(r.id, twin.id);
    }
    assert.deepEqual(r.model, twin.model, "lr is not part of the architecture");
  }
});

test("train.checkpointSec reaches each run's config and leaves its run id alone", () => {
  const ws = makeWorkspace();
  const a = planSweep(resolveSpec(gridSpec(), ws).spec, ws, 257);
  const b = planSweep(resolveSpec(gridSpec({ train: { checkpointSec: 2.5 } }), ws).spec, ws, 257);
  assert.deepEqual(
    b.map((r) => r.id),
    a.map((r) => r.id),
  );
  for (const r of b) assert.equal(r.config.checkpointSec, 2.5);
  for (const r of a) assert.equal(r.config.checkpointSec, undefined);
});

test("the pool starts the compiled worker only when dist/ is newer than every source file", () => {
  const root = mkdtempSync(join(tmpdir(), "synthmix-dist-"));
  try {
    mkdirSync(join(root, "src", "train"), { recursive: true });
    mkdirSync(join(root, "dist", "train"), { recursive: true });
    writeFileSync(join(root, "src", "train", "a.ts"), "");
    writeFileSync(join(root, "src", "b.ts"), "");
    assert.equal(distIsFresh(root), false, "no dist/*.js");
    writeFileSync(join(root, "dist", "train", "a.js"), "");
    writeFileSync(join(root, "dist", "b.js"), "");
    const old = new Date(Date.now() - 60_000);
    utimesSync(join(root, "src", "train", "a.ts"), old, old);
    utimesSync(join(root, "src", "b.ts"), old, old);
    assert.equal(distIsFresh(root), true);
    writeFileSync(join(root, "src", "train", "a.ts"), "// edited after the build");
    assert.equal(distIsFresh(root), false, "a source edited after the build");
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
