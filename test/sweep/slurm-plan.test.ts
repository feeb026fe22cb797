// Slurm executor pieces that need no cluster: resource classes, the cluster plan, the generated batch
// script (run by bash as Slurm would), the placeholder vocabulary and external-trainer logs.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { buildProgram } from "../../src/cli/main.js";
import { buildMixture } from "../../src/mix/build.js";
import { buildTestSets } from "../../src/mix/testsets.js";
import { externalExecutor } from "../../src/sweep/executors.js";
import { planSweep } from "../../src/sweep/plan.js";
import { registerRun } from "../../src/sweep/registry.js";
import {
  classFor,
  formatSlurmPlan,
  gpusOf,
  planSlurm,
  sbatchScript,
  taskCommand,
} from "../../src/sweep/slurm.js";
import { loadSweepSpec, resolveSpec, type SweepSpecInput } from "../../src/sweep/spec.js";
import { fillPlaceholders } from "../../src/util/placeholders.js";
import { runCli } from "../helpers/cli.js";
import { byteTokenizer, makeWorkspace } from "../mix/helpers.js";

const tiny = (name: string, dModel = 16) => ({ name, nLayer: 1, dModel, nHead: 2 });

function spec(slurm: Record<string, unknown>, extra: Partial<SweepSpecInput> = {}): SweepSpecInput {
  return {
    contextLength: 16,
    grid: { models: [tiny("t16"), tiny("t32", 32), tiny("t64", 64)], tokens: [3000], mixtures: ["natural"] },
    scheduler: { executor: "slurm", slurm },
    ...extra,
  };
}

test("resource classes: first match by model name or N range, defaults merged; plan hours from FLOPs", () => {
  const ws = makeWorkspace();
  const { spec: s } = resolveSpec(
    spec({
      partition: "gpu",
      time: "1:00:00",
      flopsPerSec: 1e9,
      classes: [
        { name: "named", models: ["t16"], cpusPerTask: 2 },
        { name: "mid", minParams: 10_000, maxParams: 40_000, gres: "gpu:a100:4", flopsPerSec: 2e9 },
        { name: "large", minParams: 40_000, gres: "gpu:8", mem: "64G", extraArgs: ["--exclusive"] },
      ],
    }),
    ws,
  );
  const runs = planSweep(s, ws, 257);
  const by = new Map(runs.map((r) => [r.modelName, r]));
  const cfg = s.scheduler.slurm!;
  // N: t16 = 3136, t32 = 12416, t64 = 49408 (12 * d^2 + 13 * d per layer).
  assert.equal(classFor(by.get("t16")!, cfg).name, "named");
  assert.equal(classFor(by.get("t32")!, cfg).name, "mid");
  assert.equal(classFor(by.get("t64")!, cfg).name, "large");
  assert.deepEqual(classFor(by.get("t16")!, cfg).resources, {
    partition: "gpu",
    time: "1:00:00",
    flopsPerSec: 1e9,
    cpusPerTask: 2,
  });
  assert.equal(gpusOf("gpu:a100:4"), 4);
  assert.equal(gpusOf("gpu:8,license:2"), 8);
  assert.equal(gpusOf("gpu"), 1);
  assert.equal(gpusOf(undefined), 0);
  const plan = planSlurm(s, runs);
  const mid = plan.find((p) => p.name === "mid")!;
  assert.equal(mid.jobs, 1);
  assert.equal(mid.flops, by.get("t32")!.flops);
  assert.ok(Math.abs(mid.jobHours! - mid.flops / 2e9 / 3600) < 1e-15);
  assert.ok(Math.abs(mid.gpuHours! - 4 * mid.jobHours!) < 1e-15);
  const named = plan.find((p) => p.name === "named")!;
  assert.ok(Math.abs(named.cpuHours! - (2 * named.flops) / 1e9 / 3600) < 1e-15);
  const text = formatSlurmPlan(plan, 3);
  assert.match(text, /class large: 1 job, .* FLOPs/);
  assert.match(text, /#SBATCH --gres=gpu:8\n {2}#SBATCH --exclusive/);
  assert.match(text, /#SBATCH --array=0-0%3/);
});

test("the generated batch script, run by bash as a Slurm task would, trains its run and records the exit code", async () => {
  const ws = makeWorkspace();
  const fake = resolve("test/sweep/fixtures/fake-train.mjs");
  const { spec: s } = resolveSpec(
    spec(
      { maxConcurrent: 2, setup: ["export FROM_SETUP=yes", 'echo "setup ran: $FROM_SETUP"'] },
      {
        scheduler: {
          executor: "slurm",
          command: [process.execPath, fake, "{config}"],
          slurm: { maxConcurrent: 2, setup: ["export FROM_SETUP=yes", 'echo "setup ran: $FROM_SETUP"'] },
        },
      },
    ),
    ws,
  );
  const runs = planSweep(s, ws, 257);
  const tok = byteTokenizer();
  await buildTestSets({ workspace: ws, tokenizer: tok });
  for (const r of runs) {
    registerRun(ws, r);
    await buildMixture({
      workspace: ws,
      id: r.mixture.id,
      tokenizer: tok,
      sources: r.mixture.sources,
      totalTokens: r.tokens,
      seed: r.mixture.seed,
    });
  }
  const script = sbatchScript({ spec: s, workspace: ws, cls: { name: "default", resources: {} }, runs });
  assert.match(script, /^#SBATCH --array=0-2%2$/m);
  assert.match(script, /^#SBATCH --cpus-per-task=1$/m);
  const path = join(ws, "task.sh");
  writeFileSync(path, script);
  const r = spawnSync("bash", [path], {
    encoding: "utf8",
    env: { ...process.env, SLURM_ARRAY_TASK_ID: "1", SLURM_ARRAY_JOB_ID: "77", FAKE_STEP_MS: "1" },
  });
  assert.equal(r.status, 0, r.stderr);
  const dir = join(ws, "runs", runs[1].id);
  assert.deepEqual(JSON.parse(readFileSync(join(dir, ".slurm-exit"), "utf8")), { job: "77_1", code: 0 });
  const log = readFileSync(join(dir, "train.log"), "utf8");
  assert.match(log, /slurm job 77_1 on /);
  assert.match(log, /setup ran: yes/);
  assert.match(readFileSync(join(dir, "metrics.jsonl"), "utf8"), /"type":"final"/);
  assert.ok(!existsSync(join(ws, "runs", runs[0].id, "metrics.jsonl")), "task 1 trains only run 1");
  const bad = spawnSync("bash", [path], {
    env: { ...process.env, SLURM_ARRAY_TASK_ID: "9", SLURM_ARRAY_JOB_ID: "77" },
  });
  assert.equal(bad.status, 2);
});

test("one placeholder vocabulary: {run_dir} and {runDir} both work, unknown placeholders are refused", () => {
  const v = { config: "/w/c.json", runDir: "/w/r 1", id: "x", threads: 2 };
  const shellVar = ["$", "{HOME}"].join(""); // shell expansion, not a placeholder
  assert.equal(
    fillPlaceholders(`t --c {config} --o {run_dir} {runDir}{id} -j {threads} ${shellVar}`, v),
    `t --c /w/c.json --o /w/r 1 /w/r 1x -j 2 ${shellVar}`,
  );
  assert.throws(() => fillPlaceholders("t --out {rundir}", v), /unknown placeholder \{rundir\}/);
  const ws = makeWorkspace();
  assert.throws(
    () => resolveSpec({ ...spec({}), scheduler: { external: { command: "python train.py {cfg}" } } }, ws),
    /unknown placeholder \{cfg\}/,
  );
  assert.throws(() => resolveSpec({ ...spec({}), scheduler: { command: ["x", "{dir}"] } }, ws), /\{dir\}/);
});

test("external trainer output goes to train.log and a failure quotes it", async () => {
  const ws = makeWorkspace();
  const { spec: s } = resolveSpec(spec({}), ws);
  const run = planSweep(s, ws, 257)[0];
  registerRun(ws, run);
  const dir = join(ws, "runs", run.id);
  const exec = externalExecutor('echo "hello from {id} in {runDir}"; echo "CUDA out of memory" >&2; exit 7');
  await assert.rejects(
    exec({
      id: run.id,
      runDir: dir,
      configPath: join(dir, "config.json"),
      config: run.config,
      signal: new AbortController().signal,
    }),
    (e: Error) => /exited with code 7/.test(e.message) && /CUDA out of memory/.test(e.message),
  );
  const log = readFileSync(join(dir, "train.log"), "utf8");
  assert.match(log, new RegExp(`hello from ${run.id} in ${dir}`));
  assert.match(log, /CUDA out of memory/);
});

test("sweep status / results / collect on a missing workspace fail with a clear error", async () => {
  for (const cmd of ["status", "results", "collect", "cancel"]) {
    await assert.rejects(
      buildProgram().exitOverride().parseAsync(["node", "synthmix", "sweep", cmd, "/nonexistent/ws"]),
      (e: Error & { code?: string }) => e.code === "NO_WORKSPACE" && /does not exist/.test(e.message),
      cmd,
    );
  }
  const ws = makeWorkspace();
  await assert.rejects(
    buildProgram().exitOverride().parseAsync(["node", "synthmix", "sweep", "status", ws]),
    /holds no sweep/,
  );
});

test("examples/sweep-slurm.yaml parses; --dry-run prints jobs, hours and sbatch lines per class", async () => {
  const ws = makeWorkspace();
  const { spec } = loadSweepSpec("examples/sweep-slurm.yaml");
  const runs = planSweep(spec, ws, 16384);
  const plan = planSlurm(spec, runs);
  assert.deepEqual(
    plan.map((p) => [p.name, p.jobs]),
    [
      ["cpu-small", 2 * 3 * 4],
      ["gpu-8", 2 * 3 * 4],
    ],
  );
  const gpu = plan.find((p) => p.name === "gpu-8")!;
  assert.ok(Math.abs(gpu.gpuHours! - (8 * gpu.flops) / 1.6e15 / 3600) < 1e-9);
  assert.ok(gpu.sbatch.includes("--gres=gpu:8") && gpu.sbatch.includes("--partition=gpu"));
  assert.ok(plan[0].sbatch.includes("--partition=cpu"));
  const ext = runs.find((r) => r.modelName === "s8")!;
  assert.equal(ext.backend, "external");
  assert.match(
    taskCommand(spec, ext, ws, spec.scheduler.slurm!),
    /^srun --ntasks=1 --export=ALL bash -c 'torchrun .*--config .*config\.json --run-dir /,
  );
  // The CLI's dry run, with a tokenizer in the workspace.
  const { Tokenizer } = await import("../../src/tokenizer/index.js");
  (await Tokenizer.train(["some text to train on", "and more text"], { vocabSize: 280 })).save(
    join(ws, "tokenizer/tokenizer.json"),
  );
  const yaml = readFileSync("examples/sweep-slurm.yaml", "utf8").replace(
    "workspace: ../ws-fineweb",
    `workspace: ${ws}`,
  );
  writeFileSync(join(ws, "grid.yaml"), yaml);
  const text = await runCli("sweep", "run", join(ws, "grid.yaml"), "--dry-run");
  assert.match(text, /class gpu-8: 24 jobs, .* GPU-hours/);
  assert.match(text, / {2}#SBATCH --array=0-23%64/);
  assert.match(text, /#SBATCH --exclusive/);
  // --json: stdout is exactly one JSON document (the plan), through the binary's own entry point.
  const r = spawnSync(
    process.execPath,
    [
      "--import",
      "tsx",
      "test/sweep/fixtures/cli-main.ts",
      "sweep",
      "run",
      join(ws, "grid.yaml"),
      "--dry-run",
      "--json",
    ],
    { encoding: "utf8" },
  );
  assert.equal(r.status, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as {
    runs: { id: string; backend: string }[];
    slurm: { classes: { name: string; jobs: number }[]; maxConcurrent: number };
  };
  assert.equal(doc.runs.length, 48);
  assert.deepEqual(
    doc.slurm.classes.map((c) => [c.name, c.jobs]),
    [
      ["cpu-small", 24],
      ["gpu-8", 24],
    ],
  );
  assert.equal(doc.slurm.maxConcurrent, 64);
});
