// The sweep's Slurm executor against a real Slurm (scripts/ci/start-slurm.sh starts one on loopback).
// Without Slurm these tests skip with the reason; under CI=true they fail instead.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type TestContext, test } from "node:test";
import { inProcessExecutor } from "../../src/sweep/executors.js";
import { listStatuses, readStatus } from "../../src/sweep/registry.js";
import { runSweep } from "../../src/sweep/scheduler.js";
import { jobNameFor, liveSlurmStates } from "../../src/sweep/slurm.js";
import { isTerminal, slurmAvailable } from "../../src/sweep/slurm-cli.js";
import { resolveSpec, type SweepSpecInput } from "../../src/sweep/spec.js";
import { runCli } from "../helpers/cli.js";
import { optionalTool } from "../helpers/optional.js";
import { byteTokenizer, makeWorkspace } from "../mix/helpers.js";

const tiny = (name: string, dModel = 16) => ({ name, nLayer: 1, dModel, nHead: 2 });
const fake = resolve("test/sweep/fixtures/fake-train.mjs");

const slurmTool = optionalTool(
  "Slurm",
  () => {
    const s = slurmAvailable();
    return s.ok || (s.why ?? "not available");
  },
  "scripts/ci/start-slurm.sh",
);

function needSlurm(t: TestContext): boolean {
  if (slurmTool.skip) {
    t.skip(slurmTool.skip);
    return false;
  }
  slurmTool.require();
  return true;
}

/** Every array task Slurm knows of for this workspace's job name (scontrol keeps them for MinJobAge). */
function slurmTasks(ws: string, jobName: string): string[] {
  const r = spawnSync("scontrol", ["show", "job", "-o"], { encoding: "utf8" });
  const out: string[] = [];
  for (const line of r.stdout.split("\n")) {
    if (!line.includes(`JobName=${jobName} `)) continue;
    const job = /ArrayJobId=(\d+)/.exec(line)?.[1];
    const task = /ArrayTaskId=(\S+)/.exec(line)?.[1];
    if (job && task) out.push(`${job}_${task}`);
  }
  assert.ok(ws);
  return out.sort();
}

async function waitFor(what: string, cond: () => boolean, ms = 120_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const slurm = (extra: Record<string, unknown> = {}) => ({
  executor: "slurm" as const,
  retries: 1,
  slurm: { pollSec: 0.5, time: "10", ...extra },
});

test("slurm: a dozen tiny runs train as job arrays per class; ids recorded; results equal the local executor's", async (t) => {
  if (!needSlurm(t)) return;
  const ws = makeWorkspace();
  const wsLocal = mkdtempSync(join(tmpdir(), "synthmix-local-"));
  cpSync(ws, wsLocal, { recursive: true });
  const grid = {
    contextLength: 16,
    grid: {
      models: [tiny("t16"), tiny("t32", 32)],
      tokens: [800, 1600],
      mixtures: ["natural", { hq: [0.33, 1] }],
      generators: ["demo"],
    },
    train: { batchSize: 4, evalTokens: 128, checkpointEvery: 10, optimizer: { warmupSteps: 2 } },
  } satisfies SweepSpecInput;
  const classes = [
    { name: "small", models: ["t16"], cpusPerTask: 1 },
    { name: "big", minParams: 5000, cpusPerTask: 1 },
  ];
  const onSlurm = resolveSpec({ ...grid, scheduler: slurm({ classes }) }, ws);
  const s1 = await runSweep({ ...onSlurm, tokenizer: byteTokenizer(), progress: "silent" });
  assert.equal(s1.planned, 12);
  assert.deepEqual(s1.failed, []);
  assert.equal(s1.slurm!.submitted, 12);
  const local = resolveSpec({ ...grid, scheduler: { cores: 2 } }, wsLocal);
  // The local side trains in this process (the same trainRun the `synthmix train` children call).
  const s2 = await runSweep({
    ...local,
    tokenizer: byteTokenizer(),
    executor: inProcessExecutor(),
    progress: "silent",
  });
  assert.deepEqual(s2.failed, []);

  const st = listStatuses(ws);
  assert.equal(st.length, 12);
  const classesSeen = new Set<string>();
  for (const s of st) {
    assert.equal(s.status, "done", `${s.id}: ${s.error}`);
    assert.match(s.slurm!.jobId, /^\d+_\d+$/);
    assert.deepEqual(s.slurm!.history, [s.slurm!.jobId]);
    classesSeen.add(s.slurm!.class);
    assert.equal(s.slurm!.class, s.modelName === "t16" ? "small" : "big");
    assert.match(
      readFileSync(join(ws, "runs", s.id, "train.log"), "utf8"),
      new RegExp(`slurm job ${s.slurm!.jobId} `),
    );
  }
  assert.deepEqual([...classesSeen].sort(), ["big", "small"]);
  // Slurm's own record: exactly one task per run (no duplicates), and they are the recorded ones.
  assert.deepEqual(
    slurmTasks(ws, jobNameFor(ws, onSlurm.spec.scheduler.slurm!)),
    st.map((s) => s.slurm!.jobId).sort(),
  );
  // Bit-identical training: the same final losses as the local child-process executor.
  const localFinal = new Map(listStatuses(wsLocal).map((s) => [s.id, s.final]));
  for (const s of st) assert.deepEqual(s.final!.losses, localFinal.get(s.id)!.losses, s.id);
  const rows = (w: string) =>
    (JSON.parse(readFileSync(join(w, "results/runs.json"), "utf8")).rows as Record<string, unknown>[]).map(
      ({ tokensPerSec: _a, wallSec: _b, ...r }) => r,
    );
  assert.deepEqual(rows(ws), rows(wsLocal));

  // `sweep status` shows the job ids.
  const table = JSON.parse(await runCli("sweep", "status", ws, "--json")) as {
    id: string;
    job: string;
    jobState: string;
  }[];
  for (const r of table) assert.equal(r.job, readStatus(ws, r.id)!.slurm!.jobId);
  assert.ok(table.every((r) => r.jobState === "COMPLETED"));
});

test("slurm: a task cancelled with scancel mid-run is resubmitted and resumes from its checkpoint", async (t) => {
  if (!needSlurm(t)) return;
  const ws = makeWorkspace();
  const prev = { steps: process.env.FAKE_STEPS, ms: process.env.FAKE_STEP_MS };
  process.env.FAKE_STEPS = "16";
  process.env.FAKE_STEP_MS = "400";
  t.after(() => {
    process.env.FAKE_STEPS = prev.steps;
    process.env.FAKE_STEP_MS = prev.ms;
  });
  const { spec } = resolveSpec(
    {
      contextLength: 16,
      grid: {
        models: [tiny("t16")],
        tokens: [3000],
        mixtures: ["natural", { hq: 0.33 }],
        generators: ["demo"],
      },
      scheduler: { ...slurm(), command: [process.execPath, fake, "{config}"] },
    },
    ws,
  );
  const sweep = runSweep({ spec, workspace: ws, tokenizer: byteTokenizer(), progress: "silent" });
  let victim = "";
  let cutAt = 0;
  await waitFor("a run mid-way", () => {
    for (const s of listStatuses(ws)) {
      const p = join(ws, "runs", s.id, "ckpt.json");
      if (!existsSync(p)) continue;
      const ck = JSON.parse(readFileSync(p, "utf8"));
      if (!ck.done && ck.step >= 3) {
        victim = s.id;
        return true;
      }
    }
    return false;
  });
  const job = readStatus(ws, victim)!.slurm!.jobId;
  assert.equal(spawnSync("scancel", [job]).status, 0);
  const summary = await sweep;
  assert.deepEqual(summary.failed, []);
  const st = readStatus(ws, victim)!;
  assert.equal(st.status, "done", st.error);
  assert.equal(st.slurm!.history.length, 2, "one resubmission");
  assert.equal(st.slurm!.history[0], job);
  const starts = readFileSync(join(ws, "runs", victim, "starts.log"), "utf8")
    .trim()
    .split("\n")
    .map(Number);
  cutAt = starts[1];
  assert.equal(starts.length, 2);
  assert.equal(starts[0], 0);
  assert.ok(cutAt >= 3 && cutAt < 16, `resumed from its checkpoint (step ${cutAt})`);
  const steps = readFileSync(join(ws, "runs", victim, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l))
    .filter((r) => r.type === "train")
    .map((r) => r.step);
  assert.deepEqual(
    steps,
    Array.from({ length: 16 }, (_, i) => i + 1),
    "every step exactly once",
  );
  const other = listStatuses(ws).find((s) => s.id !== victim)!;
  assert.deepEqual(other.slurm!.history, [other.slurm!.jobId]);
});

test("slurm: killing `sweep run` and rerunning re-attaches to the queued and running jobs (no duplicates)", async (t) => {
  if (!needSlurm(t)) return;
  const ws = makeWorkspace();
  const spec: SweepSpecInput = {
    contextLength: 16,
    grid: {
      models: [tiny("t16"), tiny("t32", 32)],
      tokens: [3000],
      mixtures: ["natural", { hq: 0.33 }],
      generators: ["demo"],
    },
    scheduler: { ...slurm(), command: [process.execPath, fake, "{config}"] },
  };
  const specPath = join(ws, "spec.json");
  writeFileSync(specPath, JSON.stringify(spec));
  const driver = () =>
    spawn(process.execPath, ["--import", "tsx", "test/sweep/fixtures/driver.ts", specPath, ws], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, FAKE_STEPS: "8", FAKE_STEP_MS: "1000" },
    });
  const first = driver();
  const exited = new Promise((r) => first.on("exit", r));
  await waitFor("all four runs submitted and one training", () => {
    const st = listStatuses(ws);
    return (
      st.length === 4 &&
      st.every((s) => s.slurm) &&
      st.some((s) => existsSync(join(ws, "runs", s.id, "ckpt.json")))
    );
  });
  first.kill("SIGKILL");
  await exited;
  const atKill = listStatuses(ws);
  assert.ok(
    atKill.some((s) => s.status === "running"),
    "killed before the end",
  );

  const second = driver();
  let out = "";
  let err = "";
  second.stdout!.on("data", (d) => (out += d));
  second.stderr!.on("data", (d) => (err += d));
  const code = await new Promise((r) => second.on("exit", r));
  assert.equal(code, 0, err);
  const summary = JSON.parse(out.trim().split("\n").at(-1)!);
  assert.equal(summary.slurm.submitted, 0, "nothing submitted again");
  assert.ok(summary.slurm.reattached >= 1);
  const st = listStatuses(ws);
  for (const s of st) {
    assert.equal(s.status, "done", s.id);
    assert.deepEqual(s.slurm!.history, [atKill.find((a) => a.id === s.id)!.slurm!.jobId]);
    assert.deepEqual(
      readFileSync(join(ws, "runs", s.id, "starts.log"), "utf8")
        .trim()
        .split("\n"),
      ["0"],
      "trained once",
    );
  }
  const name = jobNameFor(ws, resolveSpec(spec, ws).spec.scheduler.slurm!);
  assert.equal(slurmTasks(ws, name).length, 4, "Slurm saw exactly one task per run");
});

test("slurm: --submit-only, then `sweep status` and `sweep collect`; `sweep cancel`; external trainer under srun", async (t) => {
  if (!needSlurm(t)) return;
  const ws = makeWorkspace();
  const { Tokenizer } = await import("../../src/tokenizer/index.js");
  const texts = readFileSync(join(ws, "corpus/brown/train.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l).text as string);
  (await Tokenizer.train(texts, { vocabSize: 300 })).save(join(ws, "tokenizer/tokenizer.json"));
  const grid = (stepMs: number) => ({
    contextLength: 16,
    grid: { models: [tiny("t16"), tiny("t32", 32)], tokens: [3000], mixtures: ["natural" as const] },
    scheduler: {
      ...slurm({ maxConcurrent: 1 }),
      command: [process.execPath, fake, "{config}"],
      // t32 goes to the external backend: the same fake trainer as a shell command, under srun.
      external: {
        command: `FAKE_STEP_MS=${stepMs} ${process.execPath} ${fake} {config} && echo "srun step $SLURM_STEP_ID of {id}"`,
        models: ["t32"],
      },
    },
  });
  const specPath = join(ws, "grid.json");
  const cli = runCli;
  process.env.FAKE_STEPS = "6";
  process.env.FAKE_STEP_MS = "1500";
  t.after(() => {
    delete process.env.FAKE_STEPS;
    delete process.env.FAKE_STEP_MS;
  });

  // Cancel: submitted, then cancelled while queued/running; the runs go back to pending.
  writeFileSync(specPath, JSON.stringify(grid(1500)));
  await cli("sweep", "run", specPath, "--submit-only");
  const submitted = listStatuses(ws);
  assert.equal(submitted.length, 2);
  assert.ok(submitted.every((s) => s.status === "running" && s.slurm));
  const cancelled = await cli("sweep", "cancel", ws);
  assert.match(cancelled, /cancelled 2 slurm job/);
  for (const s of listStatuses(ws)) {
    assert.equal(s.status, "pending");
    assert.equal(s.slurm!.state, "CANCELLED");
  }
  await waitFor("the cancelled tasks to leave the queue", () => {
    const r = spawnSync(
      "squeue",
      ["-h", "-n", jobNameFor(ws, resolveSpec(grid(1), ws).spec.scheduler.slurm!)],
      {
        encoding: "utf8",
      },
    );
    return r.stdout.trim() === "";
  });

  // Submit-only again (fast steps), then status while on Slurm, then collect.
  process.env.FAKE_STEP_MS = "20";
  writeFileSync(specPath, JSON.stringify(grid(20)));
  await cli("sweep", "run", specPath, "--submit-only");
  const rows = JSON.parse(await cli("sweep", "status", ws, "--json")) as { job: string; jobState: string }[];
  assert.equal(rows.length, 2);
  for (const r of rows) assert.match(r.job, /^\d+_\d+$/);
  // Ended means ended for Slurm too: the job script writes .slurm-exit just before it exits, and
  // squeue lists the task as RUNNING/COMPLETING a moment longer (collect rightly counts it as live).
  await waitFor("both tasks to end", () => {
    const st = listStatuses(ws);
    if (!st.every((s) => existsSync(join(ws, "runs", s.id, ".slurm-exit")))) return false;
    const states = liveSlurmStates(st);
    // A task squeue no longer lists has been purged: ended (collect judges it by its run folder).
    return states !== undefined && st.every((s) => isTerminal(states.get(s.slurm!.jobId) ?? "COMPLETED"));
  });
  const collected = await cli("sweep", "collect", ws);
  assert.match(collected, /collected: 2 done, 0 failed, 0 still on slurm/);
  const st = listStatuses(ws);
  for (const s of st) {
    assert.equal(s.status, "done", s.error);
    assert.equal(s.slurm!.history.length, 2);
  }
  const ext = st.find((s) => s.modelName === "t32")!;
  assert.equal(ext.backend, "external");
  assert.match(
    readFileSync(join(ws, "runs", ext.id, "train.log"), "utf8"),
    new RegExp(`srun step 0 of ${ext.id}`),
  );
  const results = JSON.parse(readFileSync(join(ws, "results/runs.json"), "utf8")).rows;
  assert.equal(results.length, 2 * 3);
});

/** Start and end (epoch seconds) of every array task Slurm knows of for a job name. */
function taskIntervals(jobName: string): { task: string; start: number; end: number }[] {
  const r = spawnSync("scontrol", ["show", "job", "-o"], { encoding: "utf8" });
  const out: { task: string; start: number; end: number }[] = [];
  for (const line of r.stdout.split("\n")) {
    if (!line.includes(`JobName=${jobName} `)) continue;
    const task = `${/ArrayJobId=(\d+)/.exec(line)?.[1]}_${/ArrayTaskId=(\S+)/.exec(line)?.[1]}`;
    const at = (k: string) => Date.parse(`${new RegExp(`(?:^| )${k}=(\\S+)`).exec(line)?.[1]}Z`) / 1000;
    out.push({ task, start: at("StartTime"), end: at("EndTime") });
  }
  return out;
}

test("slurm: maxConcurrent caps the whole sweep, not each class's array", async (t) => {
  if (!needSlurm(t)) return;
  const ws = makeWorkspace();
  process.env.FAKE_STEPS = "4";
  process.env.FAKE_STEP_MS = "600";
  t.after(() => {
    delete process.env.FAKE_STEPS;
    delete process.env.FAKE_STEP_MS;
  });
  // Two classes, two runs each, one CPU per task: the 2-CPU node could run two tasks (one per
  // array) at once; the sweep-wide cap of 1 must keep it to one.
  const spec = resolveSpec(
    {
      contextLength: 16,
      grid: { models: [tiny("t16"), tiny("t32", 32)], tokens: [800, 1600], mixtures: ["natural"] },
      scheduler: {
        ...slurm({
          maxConcurrent: 1,
          classes: [
            { name: "small", models: ["t16"], cpusPerTask: 1 },
            { name: "big", models: ["t32"], cpusPerTask: 1 },
          ],
        }),
        command: [process.execPath, fake, "{config}"],
      },
    },
    ws,
  );
  const s = await runSweep({ ...spec, tokenizer: byteTokenizer(), progress: "silent" });
  assert.deepEqual(s.failed, []);
  assert.equal(s.slurm!.submitted, 4);
  const st = listStatuses(ws);
  assert.ok(st.every((x) => x.status === "done"));
  const arrays = new Set(st.map((x) => x.slurm!.jobId.split("_")[0]));
  assert.equal(arrays.size, 2, "one array per class");
  // Slurm's own start/end times (whole seconds): no two tasks of the sweep overlap.
  const iv = taskIntervals(jobNameFor(ws, spec.spec.scheduler.slurm!));
  assert.equal(iv.length, 4);
  for (const a of iv) {
    for (const b of iv) {
      if (a.task === b.task) continue;
      const overlap = Math.min(a.end, b.end) - Math.max(a.start, b.start);
      assert.ok(
        overlap <= 0,
        `${a.task} [${a.start}, ${a.end}] and ${b.task} [${b.start}, ${b.end}] ran together`,
      );
    }
  }
  // The second array's script says why it waits.
  const scripts = readdirSync(join(ws, "runs", ".slurm")).filter((f) => f.endsWith(".sbatch"));
  const deps = scripts.map(
    (f) => /--dependency=afterany:(\d+)/.exec(readFileSync(join(ws, "runs", ".slurm", f), "utf8"))?.[1],
  );
  assert.equal(deps.filter(Boolean).length, 1);
  assert.ok(arrays.has(deps.find(Boolean)!));
});
