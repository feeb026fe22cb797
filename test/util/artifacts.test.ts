import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { closeSync, mkdirSync, mkdtempSync, openSync, utimesSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { readCorpusStats } from "../../src/corpus/workspace.js";
import { acquireLock, liveLocks, prepareSyntheticSource, readJournal } from "../../src/generate/journal.js";
import { readSourceCacheIndex } from "../../src/mix/manifest.js";
import { TokenReader } from "../../src/mix/tokenio.js";
import { StudyStateFile } from "../../src/study/state.js";
import { listStatuses, readProgress, readStatus } from "../../src/sweep/registry.js";
import { loadCheckpointState } from "../../src/train/checkpoint.js";
import { readExactly } from "../../src/util/readexact.js";

/**
 * Artifacts read back from disk go through their stage's zod schema: a damaged file is a clear error
 * naming the file and the bad key (before, each was cast with `as T` and failed later, or not at all).
 */

const tmp = () => mkdtempSync(join(tmpdir(), "synthmix-artifacts-"));

test("run status.json: a damaged entry names the file and key instead of crashing a later reader", () => {
  const ws = tmp();
  mkdirSync(join(ws, "runs", "r1"), { recursive: true });
  writeFileSync(join(ws, "runs", "r1", "status.json"), JSON.stringify({ id: "r1", status: "done" }));
  assert.throws(
    () => readStatus(ws, "r1"),
    (e: Error & { code?: string; hint?: string }) =>
      e.code === "BAD_RUN_STATUS" &&
      /runs\/r1\/status\.json: not a run status \(status\.json\): modelName: /.test(e.message) &&
      /delete .*status\.json and rerun the sweep/.test(e.hint ?? ""),
  );
  writeFileSync(join(ws, "runs", "r1", "status.json"), "{torn");
  assert.throws(() => listStatuses(ws), /status\.json: cannot read a run status/);
});

test("metrics.jsonl progress: a record outside the MetricRecord schema names file:line; a torn tail is dropped", async () => {
  const dir = tmp();
  const train = {
    type: "train",
    step: 1,
    tokens: 64,
    loss: 5,
    lr: 1e-3,
    gradNorm: 1,
    tokensPerSec: 9,
    elapsedSec: 1,
  };
  writeFileSync(join(dir, "metrics.jsonl"), `${JSON.stringify(train)}\n{"type": "tr`);
  assert.deepEqual(await readProgress(dir), { tokens: 64, loss: 5, final: undefined });
  writeFileSync(
    join(dir, "metrics.jsonl"),
    `${JSON.stringify(train)}\n${JSON.stringify({ ...train, tokens: "64" })}\n`,
  );
  await assert.rejects(readProgress(dir), /metrics\.jsonl:2: not a metrics record: tokens: /);
});

test("checkpoint state.json, study-state.json, corpus stats.json, token cache index: schema errors name file and key", () => {
  const d = tmp();
  writeFileSync(
    join(d, "state.json"),
    JSON.stringify({ step: 3, tokens: 10, metricsOffset: 0, elapsedSec: 1, lastLoss: 2 }),
  );
  assert.throws(
    () => loadCheckpointState(d),
    (e: Error & { code?: string }) =>
      e.code === "BAD_CHECKPOINT" &&
      /state\.json: not a checkpoint state \(state\.json\): rng: /.test(e.message),
  );

  const ws = tmp();
  writeFileSync(
    join(ws, "study-state.json"),
    JSON.stringify({ version: 1, stages: { corpus: { key: "k" } } }),
  );
  assert.throws(
    () => new StudyStateFile(ws),
    /study-state\.json: not the study state \(study-state\.json\): stages\.corpus\.complete: /,
  );
  writeFileSync(
    join(ws, "study-state.json"),
    JSON.stringify({ version: 1, stages: { nope: { key: "k", complete: true } } }),
  );
  assert.throws(() => new StudyStateFile(ws), /study-state\.json: not the study state/);

  mkdirSync(join(ws, "corpus", "c"), { recursive: true });
  writeFileSync(join(ws, "corpus", "c", "stats.json"), JSON.stringify({ version: 1, name: "c" }));
  assert.throws(
    () => readCorpusStats(ws, "c"),
    (e: Error & { code?: string }) =>
      e.code === "BAD_CORPUS_STATS" &&
      /corpus\/c\/stats\.json: not corpus stats \(stats\.json\): configHash: /.test(e.message),
  );

  const idx = join(ws, "natural-abc.json");
  writeFileSync(
    idx,
    JSON.stringify({
      version: 1,
      source: "natural",
      files: [],
      contentSha256: "a",
      tokenizerSha256: "b",
      dtype: "int8",
      documents: 1,
      tokens: 1,
      skippedEmpty: 0,
    }),
  );
  assert.throws(() => readSourceCacheIndex(idx), /natural-abc\.json: not a token cache index: dtype: /);
});

test("readExactly: a short file is an error naming the file, the offset and what was read", () => {
  const d = tmp();
  const f = join(d, "t.bin");
  writeFileSync(f, Buffer.alloc(10));
  const fd = openSync(f, "r");
  try {
    readExactly(fd, new Uint8Array(10), 0, f);
    assert.throws(
      () => readExactly(fd, new Uint8Array(8), 6, f, "X"),
      (e: Error & { code?: string }) =>
        e.code === "X" &&
        e.message === `${f}: unexpected end of file: wanted 8 bytes at offset 6, the file ended after 4`,
    );
  } finally {
    closeSync(fd);
  }
  // The mix stage's token reader: a truncated cache file is a SynthmixError with the file's name.
  const r = new TokenReader(f, "uint16");
  try {
    assert.deepEqual([...r.read(1, 4)], [0, 0, 0, 0]);
    assert.throws(
      () => r.read(3, 4),
      (e: Error & { code?: string }) =>
        e.code === "BAD_TOKEN_FILE" && e.message.startsWith(`${f}: unexpected end of file`),
    );
  } finally {
    r.close();
  }
});

test("generate folder lock (util/lock): held while live, a dead or stale holder is taken over, shard conflicts", () => {
  const dir = tmp();
  const release = acquireLock(dir, { index: 0, count: 1 });
  assert.deepEqual(
    liveLocks(dir).map((l) => [l.shard, l.pid, l.host]),
    [["0/1", process.pid, hostname()]],
  );
  assert.throws(
    () => acquireLock(dir, { index: 0, count: 1 }),
    /another generate \(pid \d+ on .*, shard 0\/1/,
    "a second taker in this process is refused",
  );
  assert.throws(
    () => acquireLock(dir, { index: 1, count: 4 }),
    /shard 0\/1/,
    "a shard conflicts with a whole-folder run",
  );
  assert.throws(() => prepareSyntheticSource(mkChunks(dir)), /still being written by generate/);
  release();
  assert.deepEqual(liveLocks(dir), []);

  // A lock of a process that is gone (this host) is taken over at once.
  const dead = spawnSync(process.execPath, ["-e", "0"]).pid!;
  writeFileSync(
    join(dir, ".generate-s0001of0004.lock"),
    JSON.stringify({ pid: dead, host: hostname(), shard: "1/4" }),
  );
  acquireLock(dir, { index: 1, count: 4 })();

  // Another host's lock holds while its heartbeat is fresh and is taken over once stale (before: it was
  // held forever and had to be removed by hand).
  const other = join(dir, ".generate-s0002of0004.lock");
  writeFileSync(other, JSON.stringify({ pid: 1, host: "node-b.cluster", since: "t0", token: "b" }));
  const rel0 = acquireLock(dir, { index: 0, count: 4 }); // another shard of the same count: no conflict
  assert.throws(
    () => acquireLock(dir, { index: 2, count: 4 }),
    /pid 1 on node-b\.cluster, shard 2\/4, since t0/,
  );
  const old = new Date(Date.now() - 11 * 60_000);
  utimesSync(other, old, old);
  acquireLock(dir, { index: 2, count: 4 })();
  rel0();
  assert.deepEqual(liveLocks(dir), []);
});

function mkChunks(dir: string): string {
  mkdirSync(join(dir, "chunks"), { recursive: true });
  return dir;
}

test("generation journal: records checked against JournalRecSchema (null finish_reason kept as absent); a damaged one names file:line", async () => {
  const dir = tmp();
  const rec = {
    key: "k1",
    doc: "d",
    chunk: 0,
    chunks: 1,
    parent: "d",
    raw: "answer",
    finish_reason: null,
    latency_ms: 3,
    endpoint: "e",
    attempts: 1,
    try: 0,
  };
  writeFileSync(join(dir, "part-000.jsonl"), `${JSON.stringify(rec)}\n{"key": "k2", "do`);
  const j = await readJournal(dir);
  assert.deepEqual([...j.keys()], ["k1"]);
  assert.equal(j.get("k1")?.[0].finish_reason, undefined);
  // Before: a record without its chunk fields was taken as an answer and broke the assembly later.
  writeFileSync(
    join(dir, "part-000.jsonl"),
    `${JSON.stringify({ key: "k2", raw: "x" })}\n${JSON.stringify(rec)}\n`,
  );
  await assert.rejects(readJournal(dir), /part-000\.jsonl:1: not a generation journal record: doc: /);
});
