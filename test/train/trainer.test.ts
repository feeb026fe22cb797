import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { nativeAddon, nativeLoadError } from "../../src/train/kernels/native.js";
import { referenceKernels } from "../../src/train/kernels/reference.js";
import { loadModel, sampleModel } from "../../src/train/sample.js";
import type { MetricRecord, RunConfig } from "../../src/train/schema.js";
import { trainRun } from "../../src/train/trainer.js";
import { SynthmixError } from "../../src/util/errors.js";
import { Rng } from "../../src/util/rng.js";
import { encodeTokens } from "../../src/util/tokenfile.js";
import { optionalTool } from "../helpers/optional.js";

const root = mkdtempSync(join(tmpdir(), "synthmix-train-"));
after(() => rmSync(root, { recursive: true, force: true }));

/** A mixture folder (manifest.json + tokens.bin) and a test-set folder with two domains. */
function makeData(name: string, ids: number[], vocabSize: number): { train: string; test: string } {
  const train = join(root, name, "mix");
  const test = join(root, name, "test");
  mkdirSync(train, { recursive: true });
  mkdirSync(test, { recursive: true });
  writeFileSync(join(train, "tokens.bin"), encodeTokens(ids, "uint16"));
  writeFileSync(
    join(train, "manifest.json"),
    JSON.stringify({
      id: name,
      file: "tokens.bin",
      dtype: "uint16",
      vocabSize,
      eotId: 0,
      totalTokens: ids.length,
    }),
  );
  const domains = ["news", "fiction"].map((d, i) => {
    const dids = ids.slice(i * 100, i * 100 + 300);
    writeFileSync(join(test, `${d}.bin`), encodeTokens(dids, "uint16"));
    return { name: d, file: `${d}.bin`, tokens: dids.length, documents: 1 };
  });
  writeFileSync(
    join(test, "manifest.json"),
    JSON.stringify({ dtype: "uint16", vocabSize, eotId: 0, domains }),
  );
  return { train, test };
}

function randomIds(n: number, vocab: number, seed: number): number[] {
  const rng = new Rng(seed);
  // A little structure (bigram-ish) so the loss actually falls.
  const out = [rng.int(vocab)];
  for (let i = 1; i < n; i++) out.push(rng.next() < 0.7 ? (out[i - 1] * 3 + 1) % vocab : rng.int(vocab));
  return out;
}

const data = makeData("base", randomIds(4000, 48, 1), 48);

function config(over: Partial<RunConfig> = {}): RunConfig {
  return {
    id: "t",
    model: { nLayer: 2, dModel: 16, nHead: 2, contextLength: 16, vocabSize: 48 },
    data: { train: data.train, test: data.test },
    tokens: 16 * 4 * 12,
    batchSize: 4,
    gradAccum: 1,
    sampling: "epoch",
    optimizer: {
      lr: 3e-3,
      minLrRatio: 0.1,
      warmupSteps: 3,
      weightDecay: 0.1,
      beta1: 0.9,
      beta2: 0.95,
      eps: 1e-8,
      gradClip: 1,
    },
    seed: 7,
    evalEvery: 4,
    evalTokens: 96,
    checkpointEvery: 3,
    threads: 1,
    ...over,
  };
}

const opts = { kernels: referenceKernels };

function readMetrics(dir: string): MetricRecord[] {
  return readFileSync(join(dir, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
}

/** The parts of the metrics that must be reproducible (timings are not). */
function curve(ms: MetricRecord[]): unknown[] {
  return ms.map((m) => {
    if (m.type === "train") return [m.type, m.step, m.tokens, m.loss, m.lr, m.gradNorm];
    if (m.type === "eval") return [m.type, m.step, m.domain, m.loss, m.evalTokens];
    return [m.type, m.step, m.tokens, m.loss, m.losses, m.flops];
  });
}

const straight = join(root, "straight");
let straightFinal: MetricRecord;

test("a run trains, evaluates every domain, and the loss falls", async () => {
  straightFinal = await trainRun(straight, config(), opts);
  const ms = readMetrics(straight);
  const trains = ms.filter((m) => m.type === "train");
  assert.equal(trains.length, 12);
  assert.ok(trains[11].loss < trains[0].loss - 0.1, `loss ${trains[0].loss} -> ${trains[11].loss}`);
  assert.ok(Math.abs(trains[0].loss - Math.log(48)) < 0.1, "loss at init ~ ln(vocab)");
  // evals at steps 4, 8 and the final one at 12, for both domains, on 96 tokens each
  const evals = ms.filter((m) => m.type === "eval");
  assert.deepEqual(
    evals.map((e) => (e.type === "eval" ? `${e.step}:${e.domain}:${e.evalTokens}` : "")),
    ["4:news:96", "4:fiction:96", "8:news:96", "8:fiction:96", "12:news:96", "12:fiction:96"],
  );
  assert.equal(straightFinal.type, "final");
  if (straightFinal.type === "final") {
    assert.equal(straightFinal.tokens, 768);
    assert.deepEqual(Object.keys(straightFinal.losses), ["news", "fiction"]);
    assert.equal(straightFinal.loss, (straightFinal.losses.news + straightFinal.losses.fiction) / 2);
  }
  assert.ok(existsSync(join(straight, "model.safetensors")));
  assert.ok(existsSync(join(straight, "config.json")));
});

test("same seed and config give the same loss curve bit for bit; another seed does not", async () => {
  const again = join(root, "again");
  await trainRun(again, config(), opts);
  assert.deepEqual(curve(readMetrics(again)), curve(readMetrics(straight)));
  const other = join(root, "other-seed");
  await trainRun(other, config({ seed: 8, tokens: 64 * 2 }), opts);
  assert.notEqual(curve(readMetrics(other))[0], curve(readMetrics(straight))[0]);
});

test("a crashed run resumes from its checkpoint with the same loss curve, no duplicate lines", async () => {
  const dir = join(root, "crash");
  // Crash (exception, no checkpoint written) after step 8: the last checkpoint is step 6.
  await assert.rejects(
    trainRun(dir, config(), {
      ...opts,
      onMetric: (m) => {
        if (m.type === "train" && m.step === 8) throw new Error("simulated kill");
      },
    }),
    /simulated kill/,
  );
  const state = JSON.parse(readFileSync(join(dir, "checkpoint", "state.json"), "utf8"));
  assert.equal(state.step, 6);
  const final = await trainRun(dir, config(), opts);
  assert.deepEqual(curve(readMetrics(dir)), curve(readMetrics(straight)));
  assert.deepEqual(curve([final]), curve([straightFinal]));
});

test("an aborted run saves a checkpoint and resumes to the same curve", async () => {
  const dir = join(root, "abort");
  const ac = new AbortController();
  await assert.rejects(
    trainRun(dir, config(), {
      ...opts,
      signal: ac.signal,
      onMetric: (m) => {
        if (m.type === "train" && m.step === 5) ac.abort();
      },
    }),
    (err: unknown) => err instanceof SynthmixError && err.code === "ABORTED",
  );
  assert.equal(JSON.parse(readFileSync(join(dir, "checkpoint", "state.json"), "utf8")).step, 5);
  await trainRun(dir, config(), opts);
  assert.deepEqual(curve(readMetrics(dir)), curve(readMetrics(straight)));
});

test("a run aborted before its first step resumes from that checkpoint (no loss yet is null, not NaN)", async () => {
  const dir = join(root, "abort-at-0");
  await assert.rejects(
    trainRun(dir, config(), { ...opts, signal: AbortSignal.abort() }),
    (err: unknown) => err instanceof SynthmixError && err.code === "ABORTED",
  );
  const state = JSON.parse(readFileSync(join(dir, "checkpoint", "state.json"), "utf8"));
  assert.equal(state.step, 0);
  assert.equal(state.lastLoss, null);
  await trainRun(dir, config(), opts);
  assert.deepEqual(curve(readMetrics(dir)), curve(readMetrics(straight)));
});

test("a complete run returns its final record without training again", async () => {
  const before = readFileSync(join(straight, "metrics.jsonl"), "utf8");
  const final = await trainRun(straight, config(), opts);
  assert.deepEqual(final, straightFinal);
  assert.equal(readFileSync(join(straight, "metrics.jsonl"), "utf8"), before);
  await assert.rejects(trainRun(straight, config({ seed: 99 }), opts), /different config/);
});

test("the token budget is exact: the last step trains on the remainder only", async () => {
  const dir = join(root, "partial");
  // 64 tokens per step; 150 = 2 full steps + 22 tokens (one full window + 6 targets of another)
  const final = await trainRun(dir, config({ tokens: 150, gradAccum: 2, batchSize: 2, evalEvery: 0 }), opts);
  const trains = readMetrics(dir).filter((m) => m.type === "train");
  assert.deepEqual(
    trains.map((t) => t.tokens),
    [64, 128, 150],
  );
  assert.equal(final.tokens, 150);
});

test("a NaN/Inf loss stops the run with the step and the last good loss, keeping the checkpoint", async () => {
  const dir = join(root, "nan");
  const cfg = config({
    optimizer: { ...config().optimizer, lr: 1e30, warmupSteps: 0, gradClip: 1e30 },
    checkpointEvery: 1,
  });
  await assert.rejects(trainRun(dir, cfg, opts), (err: unknown) => {
    assert.ok(err instanceof SynthmixError && err.code === "NON_FINITE_LOSS", String(err));
    assert.match(err.message, /at step \d+\/12 \(last good loss [0-9.]+ at step \d+\)/);
    return true;
  });
  const state = JSON.parse(readFileSync(join(dir, "checkpoint", "state.json"), "utf8"));
  assert.ok(state.step >= 1 && Number.isFinite(state.lastLoss));
});

test("a model trained on a periodic sequence continues it when sampled greedily", async () => {
  const ids = Array.from({ length: 2000 }, (_, i) => i % 12);
  const d = makeData("periodic", ids, 16);
  const dir = join(root, "periodic-run");
  await trainRun(
    dir,
    config({
      model: { nLayer: 1, dModel: 32, nHead: 2, contextLength: 16, vocabSize: 16 },
      data: { train: d.train },
      tokens: 64 * 60,
      optimizer: { ...config().optimizer, lr: 1e-2, warmupSteps: 5 },
      evalEvery: 0,
    }),
    opts,
  );
  const { model } = loadModel(dir, { kernels: referenceKernels });
  const out = sampleModel(model, [3, 4, 5], { maxTokens: 20, temperature: 0 });
  assert.deepEqual(
    out,
    Array.from({ length: 20 }, (_, i) => (6 + i) % 12),
  );
  // Without a test set the final record reports the training-data loss as domain "train".
  const final = readMetrics(dir).at(-1);
  assert.ok(final?.type === "final" && final.losses.train < 0.1);
});

const nativeTool = optionalTool(
  "the native addon",
  () => nativeAddon() !== null || (nativeLoadError() ?? "not loaded"),
  "`npm ci` (or `npx node-gyp rebuild`) with a C++ compiler",
);

test("with the native kernels (when built) runs are deterministic and resume bit for bit too", {
  skip: nativeTool.skip,
}, async () => {
  nativeTool.require();
  const { loadNativeKernels } = await import("../../src/train/kernels/native.js");
  const native = loadNativeKernels();
  assert.ok(native !== null);
  native.setThreads?.(2);
  const cfg = config({
    model: { nLayer: 2, dModel: 32, nHead: 2, contextLength: 16, vocabSize: 48 },
    threads: 2,
  });
  const a = join(root, "native-a");
  const b = join(root, "native-b");
  await trainRun(a, cfg, { kernels: native });
  await assert.rejects(
    trainRun(b, cfg, {
      kernels: native,
      onMetric: (m) => {
        if (m.type === "train" && m.step === 10) throw new Error("kill");
      },
    }),
  );
  await trainRun(b, cfg, { kernels: native });
  assert.deepEqual(curve(readMetrics(b)), curve(readMetrics(a)));
  // The whole model through the native kernels follows the reference kernels' loss curve (float32
  // rounding differs, so not bit for bit).
  const r = join(root, "native-vs-reference");
  await trainRun(r, cfg, { kernels: referenceKernels });
  const la = readMetrics(a).map((m) => m.loss);
  const lr = readMetrics(r).map((m) => m.loss);
  assert.equal(la.length, lr.length);
  for (let i = 0; i < la.length; i++)
    assert.ok(Math.abs(la[i] - lr[i]) < 2e-3, `record ${i}: native ${la[i]} vs reference ${lr[i]}`);
});

test("reported wall time counts each second once, however many checkpoints were written", async () => {
  const dir = join(root, "elapsed");
  const t0 = performance.now();
  const final = await trainRun(dir, config({ checkpointEvery: 1, tokens: 16 * 4 * 24 }), opts);
  const wall = (performance.now() - t0) / 1000;
  assert.ok(final.elapsedSec <= wall + 1e-3, `elapsedSec ${final.elapsedSec} > measured wall ${wall}`);
  assert.ok(final.elapsedSec > 0);
  assert.ok(Math.abs(final.tokensPerSec - final.tokens / final.elapsedSec) / final.tokensPerSec < 0.05);
});

test("without checkpointEvery the cadence is by time (checkpointSec); a changed cadence still resumes", async () => {
  const crashAt = (dir: string, cfg: RunConfig, step: number) =>
    assert.rejects(
      trainRun(dir, cfg, {
        ...opts,
        onMetric: (m) => {
          if (m.type === "train" && m.step === step) throw new Error("simulated kill");
        },
      }),
      /simulated kill/,
    );
  const { checkpointEvery: _, ...byTime } = config();
  // A cadence shorter than any step: a checkpoint after every step (the crash comes before step 8's).
  const often = join(root, "cadence-often");
  await crashAt(often, { ...byTime, checkpointSec: 1e-9 }, 8);
  assert.equal(JSON.parse(readFileSync(join(often, "checkpoint", "state.json"), "utf8")).step, 7);
  // The default (10 s): none in a run this short.
  const rare = join(root, "cadence-default");
  await crashAt(rare, byTime, 8);
  assert.equal(existsSync(join(rare, "checkpoint")), false);
  // Resuming with another cadence (steps instead of time) is the same run, and the same curve.
  await trainRun(often, config({ checkpointEvery: 5 }), opts);
  await trainRun(rare, byTime, opts);
  assert.deepEqual(curve(readMetrics(often)), curve(readMetrics(straight)));
  assert.deepEqual(curve(readMetrics(rare)), curve(readMetrics(straight)));
});
