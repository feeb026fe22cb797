import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { getKernels } from "../../src/train/kernels/index.js";
import type { RunConfig } from "../../src/train/schema.js";
import { trainRun } from "../../src/train/trainer.js";
import { Rng } from "../../src/util/rng.js";
import { encodeTokens } from "../../src/util/tokenfile.js";

const root = mkdtempSync(join(tmpdir(), "synthmix-kill-"));
after(() => rmSync(root, { recursive: true, force: true }));

test("a training process killed with SIGKILL resumes to the uninterrupted loss curve", async () => {
  const mix = join(root, "mix");
  mkdirSync(mix);
  const rng = new Rng(9);
  const ids = Array.from({ length: 5000 }, (_, i) => (i % 3 === 0 ? rng.int(40) : (i * 11) % 40));
  writeFileSync(join(mix, "tokens.bin"), encodeTokens(ids, "uint16"));
  writeFileSync(
    join(mix, "manifest.json"),
    JSON.stringify({ file: "tokens.bin", dtype: "uint16", vocabSize: 40 }),
  );
  const config: RunConfig = {
    id: "kill",
    model: { nLayer: 1, dModel: 16, nHead: 2, contextLength: 16, vocabSize: 40 },
    data: { train: "../mix" },
    tokens: 64 * 200,
    batchSize: 4,
    gradAccum: 1,
    sampling: "epoch",
    optimizer: {
      lr: 3e-3,
      minLrRatio: 0.1,
      warmupSteps: 5,
      weightDecay: 0.1,
      beta1: 0.9,
      beta2: 0.95,
      eps: 1e-8,
      gradClip: 1,
    },
    seed: 3,
    evalEvery: 25,
    evalTokens: 128,
    checkpointEvery: 10,
    threads: 1,
  };
  const killed = join(root, "killed");
  mkdirSync(killed);
  writeFileSync(join(killed, "config.json"), JSON.stringify(config));
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "src/cli/run.ts", "train", "--config", join(killed, "config.json")],
    {
      stdio: "ignore",
      env: { ...process.env, SYNTHMIX_PROGRESS: "silent" },
    },
  );
  const exited = new Promise<NodeJS.Signals | null>((res) => child.on("exit", (_c, s) => res(s)));
  // Kill as soon as the first checkpoint exists (the run is far from done then).
  while (!existsSync(join(killed, "checkpoint", "state.json")) && child.exitCode === null) {
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill("SIGKILL");
  const signal = await exited;
  const state = JSON.parse(readFileSync(join(killed, "checkpoint", "state.json"), "utf8"));
  assert.equal(signal, "SIGKILL", "the child was still training when killed");
  assert.ok(state.step < 200 && state.final === undefined, "killed mid-run");

  await trainRun(killed, config, { kernels: getKernels() });
  const straight = join(root, "straight");
  mkdirSync(straight);
  await trainRun(straight, config, { kernels: getKernels() });
  const curve = (dir: string) =>
    readFileSync(join(dir, "metrics.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => {
        const m = JSON.parse(l);
        return [m.type, m.step, m.loss, m.gradNorm, m.domain];
      });
  assert.deepEqual(curve(killed), curve(straight));
});
