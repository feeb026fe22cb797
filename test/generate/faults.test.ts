import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { main } from "../../src/cli/main.js";
import { BatchedAppender } from "../../src/generate/journal.js";
import { type FaultOptions, startFaultServer } from "./fake-server.js";

/**
 * Fault injection through the CLI, in-process (`main` sets process.exitCode exactly as the binary
 * exits): every scenario asserts the exit code, the number of documents, and that a rerun completes
 * exactly the missing ones with no duplicate.
 */
const N_DOCS = 24;

function workspace(nDocs = N_DOCS, words = 60): string {
  const ws = mkdtempSync(join(tmpdir(), "synthmix-faults-"));
  const dir = join(ws, "corpus", "toy");
  mkdirSync(dir, { recursive: true });
  const lines = Array.from({ length: nDocs }, (_, i) =>
    JSON.stringify({
      id: `toy:${i}`,
      text: Array.from(
        { length: words / 10 },
        (_, s) => `Doc ${i} sentence ${s} is about subject${i} with filler.`,
      ).join(" "),
    }),
  );
  writeFileSync(join(dir, "train.jsonl"), `${lines.join("\n")}\n`);
  return ws;
}

function docs(ws: string): { id: string; text: string; meta: { parent: string; rejected_chunks: number } }[] {
  const dir = join(ws, "synthetic", "hq-m");
  const out = [];
  for (const f of readdirSync(dir).filter((x) => /^part-.*\.jsonl$/.test(x))) {
    for (const l of readFileSync(join(dir, f), "utf8").split("\n")) if (l.trim()) out.push(JSON.parse(l));
  }
  return out;
}

async function cli(
  url: string,
  ws: string,
  extra: string[] = [],
): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const [log, error, write] = [console.log, console.error, process.stderr.write];
  console.log = (...a: unknown[]) => void out.push(a.join(" "));
  console.error = (...a: unknown[]) => void err.push(a.join(" "));
  process.stderr.write = ((s: string) => {
    err.push(String(s));
    return true;
  }) as typeof process.stderr.write;
  process.exitCode = 0;
  try {
    await main([
      "node",
      "synthmix",
      "generate",
      "--style",
      "hq",
      "--workspace",
      ws,
      "--corpus",
      "toy",
      "--generator",
      `openai:${url}:m?concurrency=8`,
      "--chunk-tokens",
      "30",
      "--timeout",
      "0.5",
      "--quiet",
      ...extra,
    ]);
  } finally {
    console.log = log;
    console.error = error;
    process.stderr.write = write;
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = 0;
  return { code, out: out.join("\n"), err: err.join("\n") };
}

function assertNoDuplicates(ws: string): void {
  const d = docs(ws);
  assert.equal(new Set(d.map((x) => x.id)).size, d.length, "duplicate documents");
  const keys = readdirSync(join(ws, "synthetic", "hq-m", "chunks"))
    .flatMap((f) => readFileSync(join(ws, "synthetic", "hq-m", "chunks", f), "utf8").split("\n"))
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l))
    .filter((r) => r.raw !== "")
    .map((r) => r.key as string);
  assert.equal(new Set(keys).size, keys.length, "a request answered twice");
}

/** A transient-fault scenario: the run completes (exit 0, every document), the rerun sends nothing. */
async function transient(name: string, o: FaultOptions): Promise<void> {
  const srv = await startFaultServer(o);
  try {
    const ws = workspace();
    // A retry budget with room: the faults are fixed per (prompt, attempt), but a spurious client
    // timeout on a loaded machine moves a prompt on to its next attempt's fault; with the default 6,
    // seed 3's mixed scenario has a request that needs exactly all 6 (no margin at all).
    const r = await cli(srv.url, ws, ["--stall-timeout", "60", "--retries", "12"]);
    assert.equal(r.code, 0, `${name}: ${r.err}`);
    assert.equal(docs(ws).length, N_DOCS, name);
    assert.ok(
      Object.values(srv.injected).some((v) => (v ?? 0) > 0),
      `${name}: no fault was injected`,
    );
    const calls = srv.counts.calls;
    const again = await cli(srv.url, ws);
    assert.equal(again.code, 0);
    assert.equal(srv.counts.calls, calls, `${name}: the rerun sent requests`);
    assert.equal(docs(ws).length, N_DOCS);
    assertNoDuplicates(ws);
  } finally {
    await srv.close();
  }
}

test("faults: a 3-second outage with 503 + Retry-After is ridden out (no request lost)", async () => {
  await transient("outage", { seed: 1, outage: { afterCalls: 10, ms: 3000, retryAfterSec: 1 } });
});

test("faults: 70% 429s slow the run down but lose nothing", async () => {
  await transient("429", { seed: 2, rates: { "429": 0.7 } });
});

test("faults: 8% of every fault type together", async () => {
  await transient("mixed", {
    seed: 3,
    rates: {
      "500": 0.08,
      "429": 0.08,
      "503": 0.08,
      badjson: 0.08,
      nochoices: 0.08,
      reset: 0.08,
      hang: 0.08,
      empty: 0.08,
    },
  });
});

test("faults: 20% empty answers are re-asked, every document gets all its chunks", async () => {
  const srv = await startFaultServer({ seed: 4, rates: { empty: 0.2 } });
  try {
    const ws = workspace();
    // Room in the re-ask budget (seed 4 needs 2 of the default 3): a spurious client timeout on a loaded
    // machine moves a prompt on to its next attempt's answer.
    const r = await cli(srv.url, ws, ["--retry-empty", "6"]);
    assert.equal(r.code, 0, r.err);
    const d = docs(ws);
    assert.equal(d.length, N_DOCS);
    assert.ok((srv.injected.empty ?? 0) >= 5, `empties injected: ${srv.injected.empty}`);
    assert.ok(
      d.every((x) => x.meta.rejected_chunks === 0),
      "a chunk was lost to an empty answer",
    );
    const calls = srv.counts.calls;
    assert.equal((await cli(srv.url, ws)).code, 0);
    assert.equal(srv.counts.calls, calls);
    assertNoDuplicates(ws);
  } finally {
    await srv.close();
  }
});

async function failThenHeal(o: FaultOptions, extra: string[]): Promise<void> {
  const srv = await startFaultServer(o);
  try {
    const ws = workspace();
    const r = await cli(srv.url, ws, extra);
    assert.equal(r.code, 1, "failed requests must give a non-zero exit");
    assert.match(r.err, /generation incomplete: m: \d+ requests failed/);
    assert.match(r.err, /rerun the same command/);
    const written = docs(ws).length;
    assert.ok(written > 0 && written < N_DOCS, `wrote ${written}`);
    srv.heal();
    const calls = srv.counts.calls;
    const again = await cli(srv.url, ws);
    assert.equal(again.code, 0, again.err);
    // Exactly the missing documents: 2 chunks each, each asked once.
    const missing = N_DOCS - written;
    assert.ok(srv.counts.calls - calls >= missing && srv.counts.calls - calls <= 2 * missing);
    assert.equal(docs(ws).length, N_DOCS);
    assertNoDuplicates(ws);
    const s = JSON.parse(readFileSync(join(ws, "synthetic", "hq-m", "status.json"), "utf8"));
    assert.equal(s.complete, true);
  } finally {
    await srv.close();
  }
}

test("faults: permanent failures exit 1, keep what succeeded, and a rerun completes exactly the rest", async () => {
  await failThenHeal({ seed: 5, permanentRate: 0.15 }, []);
});

test("faults: 30% 500s with --retries 0 exit 1 (not 0 as before); the rerun completes", async () => {
  await failThenHeal({ seed: 6, rates: { "500": 0.3 } }, ["--retries", "0"]);
});

test("faults: a rerun with other sampling settings refuses and names them", async () => {
  const srv = await startFaultServer({ seed: 7 });
  try {
    const ws = workspace(4);
    assert.equal((await cli(srv.url, ws)).code, 0);
    const r = await cli(srv.url, ws, ["--temperature", "0.9", "--max-tokens", "64"]);
    assert.equal(r.code, 1);
    assert.match(
      r.err,
      /other settings: .*settings\.params\.max_tokens: 1024 -> 64.*temperature: 0\.7 -> 0\.9/,
    );
    assert.match(r.err, /\?name=NEW/);
    // Acceptance settings do not pin the folder: they are applied at assembly.
    assert.equal((await cli(srv.url, ws, ["--min-output-tokens", "3"])).code, 0);
  } finally {
    await srv.close();
  }
});

test("faults: Ctrl-C exits 130 and the rerun resumes without duplicates", async () => {
  const srv = await startFaultServer({ seed: 8, delayMs: 40 });
  try {
    const ws = workspace();
    // The test runner has its own SIGINT handler (it would end the tests): hide it while the CLI's runs.
    const harness = process.listeners("SIGINT");
    const timer = setInterval(() => {
      if (srv.counts.calls >= 6) {
        clearInterval(timer);
        for (const l of harness) process.off("SIGINT", l);
        process.emit("SIGINT");
        for (const l of harness) process.on("SIGINT", l);
      }
    }, 5);
    const r = await cli(srv.url, ws);
    clearInterval(timer);
    assert.equal(r.code, 130, r.err);
    assert.ok(docs(ws).length < N_DOCS);
    assert.equal((await cli(srv.url, ws)).code, 0);
    assert.equal(docs(ws).length, N_DOCS);
    assertNoDuplicates(ws);
  } finally {
    await srv.close();
  }
});

test("faults: an unwritable workspace fails before any request with a clean message", async () => {
  const srv = await startFaultServer({ seed: 9 });
  try {
    const ws = workspace(3);
    writeFileSync(join(ws, "synthetic"), "a file where a folder should be");
    const r = await cli(srv.url, ws);
    assert.equal(r.code, 1);
    assert.match(r.err, /synthmix: cannot create .*synthetic.*: ENOTDIR/);
    assert.match(r.err, /hint: a component of the path is a file/);
    assert.doesNotMatch(r.err, /\n\s+at /, "no stack trace");
    assert.equal(srv.counts.calls, 0, "no request was paid for");
  } finally {
    await srv.close();
  }
});

test("journal appender: every batch is written when it arrives (a killed run keeps it), fsyncs are rate-limited", async () => {
  const path = join(mkdtempSync(join(tmpdir(), "synthmix-appender-")), "part.jsonl");
  const errors: unknown[] = [];
  const app = new BatchedAppender(path, (e) => errors.push(e));
  const lines = () => (existsSync(path) ? readFileSync(path, "utf8").split("\n").filter(Boolean).length : 0);
  const tick = () => new Promise<void>((r) => setImmediate(r));
  // Batches in quick succession: the first is fsynced, the next ones within the interval only written;
  // each is in the file (the page cache, which outlives the process) as soon as its turn of the loop ends.
  for (let b = 0; b < 5; b++) {
    for (let i = 0; i < 3; i++) app.push({ b, i });
    await tick();
    assert.equal(lines(), 3 * (b + 1), `batch ${b} written`);
  }
  app.close();
  assert.equal(lines(), 15);
  assert.deepEqual(errors, []);
});
