import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { childProcessExecutor } from "../../src/sweep/executors.js";
import { listStatuses, processAlive } from "../../src/sweep/registry.js";
import { runSweep } from "../../src/sweep/scheduler.js";
import { resolveSpec, type SweepSpecInput } from "../../src/sweep/spec.js";
import { trainRun } from "../../src/train/trainer.js";
import { byteTokenizer, makeWorkspace } from "../mix/helpers.js";

const tiny = { name: "t16", nLayer: 1, dModel: 16, nHead: 2 };

function metricsOf(dir: string): unknown[] {
  return readFileSync(join(dir, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => {
      const { tokensPerSec: _a, elapsedSec: _b, ...rest } = JSON.parse(l);
      return rest;
    });
}

function logPids(dir: string): string[] {
  return [...readFileSync(join(dir, "train.log"), "utf8").matchAll(/worker (\d+) train/g)].map((m) => m[1]);
}

test("pooled workers train several runs each, with the same metrics as a fresh process per run", async () => {
  const spec: SweepSpecInput = {
    contextLength: 16,
    grid: { models: [tiny], tokens: [1600, 2400, 3200], mixtures: ["natural"] },
    train: { batchSize: 4, evalTokens: 256, checkpointEvery: 5 },
    scheduler: { cores: 1 },
  };
  const wsPool = makeWorkspace();
  const wsChild = makeWorkspace();
  const pooled = await runSweep({
    spec: resolveSpec(spec, wsPool).spec,
    workspace: wsPool,
    tokenizer: byteTokenizer(),
    progress: "silent",
  });
  const child = await runSweep({
    spec: resolveSpec(spec, wsChild).spec,
    workspace: wsChild,
    tokenizer: byteTokenizer(),
    executor: childProcessExecutor(),
    progress: "silent",
  });
  assert.equal(pooled.finished, 3);
  assert.equal(child.finished, 3);
  const pids = new Set<string>();
  for (const s of listStatuses(wsPool)) {
    assert.equal(s.status, "done");
    assert.deepEqual(metricsOf(join(wsPool, "runs", s.id)), metricsOf(join(wsChild, "runs", s.id)), s.id);
    for (const p of logPids(join(wsPool, "runs", s.id))) pids.add(p);
  }
  // One core: one worker served all three runs.
  assert.equal(pids.size, 1);
});

test("WSD ladder through the sweep: branches share a trunk and equal standalone WSD runs on the largest mixture", async () => {
  const ws = makeWorkspace();
  const spec: SweepSpecInput = {
    contextLength: 16,
    grid: { models: [tiny], tokens: [1280, 2560], mixtures: ["natural"] },
    train: {
      batchSize: 4,
      evalTokens: 256,
      optimizer: { schedule: "wsd", decayFraction: 0.25, warmupSteps: 3 },
    },
  };
  const summary = await runSweep({
    spec: resolveSpec(spec, ws).spec,
    workspace: ws,
    tokenizer: byteTokenizer(),
    progress: "silent",
  });
  assert.equal(summary.finished, 2);
  const st = listStatuses(ws);
  const largest = st.find((s) => s.tokens === 2560)!;
  for (const s of st) {
    assert.equal(s.status, "done");
    assert.equal(s.mixture.id, largest.mixture.id, "every branch draws from the largest budget's mixture");
    assert.ok(s.config.wsd && existsSync(s.config.wsd.trunk));
    const { wsd: _w, ...standalone } = s.config;
    const f = await trainRun(join(ws, "alone", s.id), { ...standalone, threads: 1 });
    assert.equal(s.final!.loss, f.loss, s.id);
  }
});

test("a sweep SIGKILLed mid-run: its worker stops by itself, and the rerun finishes each run exactly once", async () => {
  const ws = makeWorkspace();
  const spec: SweepSpecInput = {
    contextLength: 16,
    grid: { models: [tiny], tokens: [64 * 150, 64 * 160], mixtures: ["natural"] },
    train: { batchSize: 4, evalTokens: 128, checkpointEvery: 10 },
  };
  const specPath = join(ws, "spec.json");
  writeFileSync(specPath, JSON.stringify(spec));
  const driver = () =>
    spawn(process.execPath, ["--import", "tsx", "test/sweep/fixtures/driver.ts", specPath, ws], {
      stdio: ["ignore", "pipe", "pipe"],
    });
  const first = driver();
  const exited = new Promise((r) => first.on("exit", r));
  const deadline = Date.now() + 60_000;
  let pid = 0;
  for (;;) {
    assert.ok(Date.now() < deadline, "the first sweep made no progress");
    const s = listStatuses(ws).find(
      (x) => x.status === "running" && x.pid && existsSync(join(ws, "runs", x.id, "checkpoint")),
    );
    if (s) {
      pid = s.pid!;
      break;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  first.kill("SIGKILL"); // the sweep only: its worker gets no signal, just a closed IPC channel
  await exited;
  for (let i = 0; i < 300 && processAlive(pid); i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(!processAlive(pid), "the orphaned worker exited");
  const second = driver();
  let err = "";
  second.stderr!.on("data", (d) => (err += d));
  const code = await new Promise((r) => second.on("exit", r));
  assert.equal(code, 0, err);
  for (const s of listStatuses(ws)) {
    assert.equal(s.status, "done");
    const records = metricsOf(join(ws, "runs", s.id)) as { type: string; step: number }[];
    const steps = records.filter((r) => r.type === "train").map((r) => r.step);
    assert.deepEqual(
      steps,
      Array.from({ length: s.tokens / 64 }, (_, i) => i + 1),
    );
    assert.equal(records.filter((r) => r.type === "final").length, 1);
  }
});
