import assert from "node:assert/strict";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { lrAt } from "../../src/train/optim.js";
import type { MetricRecord, RunConfig } from "../../src/train/schema.js";
import { trainRun } from "../../src/train/trainer.js";
import { branchStep, snapshotSteps } from "../../src/train/wsd.js";
import { Rng } from "../../src/util/rng.js";
import { encodeTokens } from "../../src/util/tokenfile.js";

const root = mkdtempSync(join(tmpdir(), "synthmix-wsd-"));
after(() => rmSync(root, { recursive: true, force: true }));

function makeData(): { train: string; test: string } {
  const rng = new Rng(5);
  const ids = [rng.int(40)];
  for (let i = 1; i < 6000; i++) ids.push(rng.next() < 0.7 ? (ids[i - 1] * 7 + 3) % 40 : rng.int(40));
  const train = join(root, "mix");
  const test = join(root, "test");
  mkdirSync(train, { recursive: true });
  mkdirSync(test, { recursive: true });
  writeFileSync(join(train, "tokens.bin"), encodeTokens(ids, "uint16"));
  writeFileSync(
    join(train, "manifest.json"),
    JSON.stringify({ file: "tokens.bin", dtype: "uint16", vocabSize: 40 }),
  );
  writeFileSync(join(test, "a.bin"), encodeTokens(ids.slice(0, 400), "uint16"));
  writeFileSync(
    join(test, "manifest.json"),
    JSON.stringify({
      dtype: "uint16",
      vocabSize: 40,
      domains: [{ name: "a", file: "a.bin", tokens: 400, documents: 1 }],
    }),
  );
  return { train, test };
}
const data = makeData();
const ladder = [64 * 10, 64 * 20, 64 * 40];

function config(tokens: number, over: Partial<RunConfig> = {}): RunConfig {
  return {
    id: `w${tokens}`,
    model: { nLayer: 1, dModel: 16, nHead: 2, contextLength: 16, vocabSize: 40 },
    data,
    tokens,
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
      schedule: "wsd",
      decayFraction: 0.25,
    },
    seed: 11,
    evalEvery: 5,
    evalTokens: 128,
    checkpointEvery: 4,
    threads: 1,
    ...over,
  };
}

/** Everything of a metrics.jsonl except wall-clock fields. */
function curve(dir: string): unknown[] {
  return readFileSync(join(dir, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => {
      const {
        tokensPerSec: _a,
        elapsedSec: _b,
        ...rest
      } = JSON.parse(l) as MetricRecord & {
        tokensPerSec?: number;
        elapsedSec?: number;
      };
      return rest;
    });
}

test("WSD lr: warmup, constant, then a 1-sqrt cooldown to minLr over the last decayFraction of the steps", () => {
  const o = { lr: 1, minLrRatio: 0.1, warmupSteps: 2, schedule: "wsd" as const, decayFraction: 0.25 };
  const lrs = Array.from({ length: 8 }, (_, s) => lrAt(s, 8, o));
  assert.deepEqual(lrs.slice(0, 6), [0.5, 1, 1, 1, 1, 1]);
  assert.equal(lrs[6], 0.1 + 0.9 * (1 - Math.sqrt(0.5)));
  assert.equal(lrs[7], 0.1);
  // The constant trunk does not depend on its length, even during the warmup.
  const c = { ...o, schedule: "constant" as const };
  assert.deepEqual(
    [0, 1, 5].map((s) => lrAt(s, 1, c)),
    [0.5, 1, 1],
  );
});

test("WSD branches from a shared trunk reproduce standalone WSD runs bit for bit, training the trunk once", async () => {
  // Standalone WSD runs (no trunk): the reference.
  const alone = new Map<number, number>();
  for (const D of ladder) {
    const f = await trainRun(join(root, `alone-${D}`), config(D));
    alone.set(D, f.loss);
  }
  // Branches, the largest first (as the sweep orders them), sharing one trunk.
  const trunk = join(root, "trunk");
  const trained: number[] = [];
  for (const D of [...ladder].reverse()) {
    const dir = join(root, `branch-${D}`);
    const f = await trainRun(dir, config(D, { wsd: { trunk, ladder } }), {
      onMetric: (m) => {
        if (m.type === "train") trained.push(m.step);
      },
    });
    assert.equal(f.loss, alone.get(D), `final loss of D=${D}`);
    assert.deepEqual(curve(dir), curve(join(root, `alone-${D}`)), `metrics of D=${D}`);
  }
  // Each branch trained only its cooldown; the trunk trained up to the largest branch point once.
  const steps = ladder.map((D) => D / 64);
  const points = snapshotSteps(config(ladder[0], { wsd: { trunk, ladder } }));
  assert.deepEqual(
    points,
    ladder.map((D) => branchStep(config(D))),
  );
  assert.equal(
    trained.length,
    steps.reduce((a, S, i) => a + S - points[i], 0),
  );
  assert.deepEqual(readdirSync(join(trunk, "snapshots")).sort(), points.map((p) => `step-${p}`).sort());
  const trunkSteps = curve(trunk).filter((r) => (r as { type: string }).type === "train").length;
  assert.equal(trunkSteps, points.at(-1));
  assert.ok(!existsSync(join(trunk, ".lock")));
  // A rerun of a done branch returns at once.
  const again = await trainRun(
    join(root, `branch-${ladder[0]}`),
    config(ladder[0], { wsd: { trunk, ladder } }),
  );
  assert.equal(again.loss, alone.get(ladder[0]));
});

test("two branches of one ladder started together share the trunk (lock) and still match", async () => {
  const trunk = join(root, "trunk2");
  const runs = ladder.map((D) =>
    trainRun(join(root, `par-${D}`), config(D, { wsd: { trunk, ladder } })).then((f) => [D, f.loss] as const),
  );
  const results = await Promise.all(runs);
  for (const [D, loss] of results) {
    assert.deepEqual(curve(join(root, `par-${D}`)), curve(join(root, `alone-${D}`)));
    assert.ok(Number.isFinite(loss));
  }
  const trunkSteps = curve(trunk).filter((r) => (r as { type: string }).type === "train").length;
  assert.equal(trunkSteps, branchStep(config(ladder.at(-1)!)));
});

test("a stale trunk lock (dead pid) is broken; wsd without the wsd schedule is refused", async () => {
  const trunk = join(root, "trunk3");
  mkdirSync(trunk, { recursive: true });
  writeFileSync(join(trunk, ".lock"), "999999999\n");
  const D = ladder[1];
  const f = await trainRun(join(root, "stale"), config(D, { wsd: { trunk, ladder } }));
  assert.deepEqual(curve(join(root, "stale")), curve(join(root, `alone-${D}`)));
  assert.ok(Number.isFinite(f.loss));
  const bad = config(D, { wsd: { trunk, ladder } });
  bad.optimizer = { ...bad.optimizer, schedule: "cosine" };
  await assert.rejects(trainRun(join(root, "bad"), bad), /optimizer.schedule is not "wsd"/);
});
