import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { prepareSyntheticSource, readStatuses, setWriteFaultForTests } from "../../src/generate/journal.js";
import { runGeneration } from "../../src/generate/run.js";
import { readSourceTexts, sourceFiles } from "../../src/mix/sources.js";
import { startFaultServer } from "./fake-server.js";

const N = 20;

function workspace(n = N): string {
  const ws = mkdtempSync(join(tmpdir(), "synthmix-shards-"));
  const dir = join(ws, "corpus", "toy");
  mkdirSync(dir, { recursive: true });
  const lines = Array.from({ length: n }, (_, i) =>
    JSON.stringify({ id: `toy:${i}`, text: `Doc ${i} is about subject${i}. It has two sentences of words.` }),
  );
  writeFileSync(join(dir, "train.jsonl"), `${lines.join("\n")}\n`);
  return ws;
}

type Rec = { id: string; text: string };
function docs(ws: string): Rec[] {
  const dir = join(ws, "synthetic", "hq-m");
  return readdirSync(dir)
    .filter((x) => /^part-.*\.jsonl$/.test(x))
    .flatMap((f) => readFileSync(join(dir, f), "utf8").split("\n"))
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Rec);
}
const byId = (d: Rec[]) => Object.fromEntries(d.map((x) => [x.id, x.text]));

const base = (ws: string, url: string) => ({
  workspace: ws,
  corpusName: "toy",
  style: "hq",
  generators: [`openai:${url}:m?concurrency=4`],
  seed: 5,
  progress: "silent" as const,
  backoffBaseMs: 5,
});

test("shards: 4 concurrent shards write exactly the documents of an unsharded run; a stopped shard resumes alone", async () => {
  // 30 ms per answer, one request in flight per shard: each shard takes ~150 ms, so the stop below
  // lands mid-shard even when a loaded machine delays the 1 ms timer.
  const srv = await startFaultServer({ seed: 1, delayMs: 30 });
  const one = (ws: string) => ({ ...base(ws, srv.url), generators: [`openai:${srv.url}:m?concurrency=1`] });
  try {
    const whole = workspace();
    const s = await runGeneration(one(whole));
    assert.equal(s.complete, true);
    const expected = byId(docs(whole));
    assert.equal(Object.keys(expected).length, N);

    const ws = workspace();
    // Shard 2 is stopped after its first answers (as if its node died); the others finish.
    const ac = new AbortController();
    const callsBefore = srv.counts.calls;
    const timer = setInterval(() => {
      if (srv.counts.calls - callsBefore >= 6) ac.abort();
    }, 1);
    const results = await Promise.all(
      [0, 1, 2, 3].map((i) =>
        runGeneration({
          ...one(ws),
          shard: { index: i, count: 4 },
          signal: i === 2 ? ac.signal : undefined,
        }),
      ),
    );
    clearInterval(timer);
    assert.deepEqual(
      results.map((r) => r.sourceDocs),
      [5, 5, 5, 5],
      "balanced shards",
    );
    assert.equal(results[2].complete, false);
    for (const i of [0, 1, 3]) assert.equal(results[i].complete, true);
    const st = readStatuses(join(ws, "synthetic", "hq-m"));
    assert.deepEqual(
      st.statuses.map((x) => [x.shard, x.complete]),
      [
        ["0/4", true],
        ["1/4", true],
        ["2/4", false],
        ["3/4", true],
      ],
    );
    // Rerun only shard 2: it sends only its missing requests.
    const partial = docs(ws).length;
    const before = srv.counts.calls;
    const again = await runGeneration({ ...one(ws), shard: { index: 2, count: 4 } });
    assert.equal(again.complete, true);
    assert.equal(srv.counts.calls - before, N - partial);
    assert.equal(again.generators[0].requests.completed, N - partial);
    const got = docs(ws);
    assert.equal(got.length, N, "0 duplicates");
    assert.deepEqual(byId(got), expected, "same ids and texts as the unsharded run");
    // Downstream reads all shards as one folder.
    const { texts } = await readSourceTexts(sourceFiles(join(ws, "synthetic", "hq-m")));
    assert.deepEqual(texts.sort(), Object.values(expected).sort());
  } finally {
    await srv.close();
  }
});

test("lock: a second generate on the same folder refuses while the first runs; 0 duplicates", async () => {
  const srv = await startFaultServer({ seed: 2, delayMs: 150 });
  try {
    const ws = workspace();
    const script = `
      import { runGeneration } from "./src/generate/run.ts";
      const s = await runGeneration(${JSON.stringify(base(ws, srv.url))});
      process.exit(s.complete ? 0 : 3);
    `;
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      cwd: process.cwd(),
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (c) => {
      stderr += c;
    });
    const exited = new Promise<number>((r) => child.on("exit", (c) => r(c ?? -1)));
    // Wait until the child holds the lock and is sending requests.
    while (srv.counts.calls === 0) await new Promise((r) => setTimeout(r, 50));
    await assert.rejects(
      runGeneration(base(ws, srv.url)),
      (e: Error) => /another generate \(pid \d+/.test(e.message) && e.message.includes(String(child.pid)),
    );
    assert.throws(
      () => prepareSyntheticSource(join(ws, "synthetic", "hq-m")),
      /still being written by generate/,
    );
    assert.equal(await exited, 0, stderr);
    assert.equal(docs(ws).length, N);
    assert.equal(srv.counts.calls, N, "each request paid for once");
    // The lock is gone with its holder: a rerun goes through (and has nothing to do).
    const again = await runGeneration(base(ws, srv.url));
    assert.equal(again.generators[0].requests.completed, 0);
    // A stale lock (its process is gone) is taken over.
    writeFileSync(
      join(ws, "synthetic", "hq-m", ".generate.lock"),
      JSON.stringify({ pid: 2 ** 22 + 12345, host: (await import("node:os")).hostname(), shard: "0/1" }),
    );
    assert.equal((await runGeneration(base(ws, srv.url))).complete, true);
  } finally {
    await srv.close();
  }
});

test("disk: a write error mid-run ends in a clean message, torn tails are repaired, and the mixture source reads", async () => {
  const srv = await startFaultServer({ seed: 3 });
  try {
    const ws = workspace();
    const out = join(ws, "synthetic", "hq-m");
    let flushes = 0;
    setWriteFaultForTests((path) => {
      if (path.includes("chunks") && ++flushes > 3)
        throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
    });
    try {
      await assert.rejects(
        runGeneration({ ...base(ws, srv.url), generators: [`openai:${srv.url}:m?concurrency=1`] }),
        (e: Error & { hint?: string }) =>
          /cannot write .*chunks.*ENOSPC/.test(e.message) && /disk \(or quota\) is full/.test(e.hint ?? ""),
      );
    } finally {
      setWriteFaultForTests(undefined);
    }
    assert.ok(!existsSync(join(out, ".generate.lock")), "lock released after the failure");
    assert.ok(!readdirSync(out).some((f) => f.endsWith(".tmp")), "no temporary files left");
    // Tear the tails as a kill or a full disk would.
    const part = readdirSync(out).find((f) => f.startsWith("part-")) as string;
    appendFileSync(join(out, part), '{"id": "torn", "te');
    const jpart = readdirSync(join(out, "chunks"))[0];
    appendFileSync(join(out, "chunks", jpart), '{"key": "tor');
    const s = await runGeneration(base(ws, srv.url));
    assert.equal(s.complete, true);
    assert.equal(s.generators[0].repaired.length, 2);
    assert.equal(docs(ws).length, N);
    // A torn tail left for a downstream reader is repaired by it (no --skip-bad-records needed).
    appendFileSync(join(out, part), '{"id": "torn2", "te');
    const { texts } = await readSourceTexts(sourceFiles(out));
    assert.equal(texts.length, N);
  } finally {
    await srv.close();
  }
});

test("disk: a full filesystem (a 1 MB tmpfs) is refused before any request, with a clean message", async (t) => {
  const { execFileSync } = await import("node:child_process");
  const mnt = mkdtempSync(join(tmpdir(), "synthmix-tmpfs-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt], { stdio: "ignore" });
  } catch {
    if (process.env.CI === "true") throw new Error("CI=true but a tmpfs cannot be mounted here");
    t.skip("cannot mount a tmpfs here (needs root); the simulated write error test covers the path");
    return;
  }
  const srv = await startFaultServer({ seed: 4 });
  try {
    const ws = join(mnt, "ws");
    mkdirSync(join(ws, "corpus", "toy"), { recursive: true });
    writeFileSync(
      join(ws, "corpus", "toy", "train.jsonl"),
      readFileSync(join(workspace(), "corpus", "toy", "train.jsonl")),
    );
    writeFileSync(join(mnt, "filler"), Buffer.alloc(900 * 1024));
    await assert.rejects(runGeneration(base(ws, srv.url)), /ENOSPC/);
    assert.equal(srv.counts.calls, 0, "refused before paying for requests");
  } finally {
    await srv.close();
    execFileSync("umount", [mnt]);
  }
});

/** `synthmix generate --shard i/4` as its own process (the CLI from source), as a Slurm array task runs it. */
function spawnShard(ws: string, url: string, i: number) {
  const args = [
    "--import",
    "tsx",
    "test/generate/cli-main.ts",
    "generate",
    "--style",
    "hq",
    "--workspace",
    ws,
    "--corpus",
    "toy",
    "--generator",
    `openai:${url}:m?concurrency=1`,
    "--seed",
    "5",
    "--shard",
    `${i}/4`,
    "--quiet",
    "--json",
  ];
  const child = spawn(process.execPath, args, { cwd: process.cwd(), stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (c) => {
    stdout += c;
  });
  child.stderr.on("data", (c) => {
    stderr += c;
  });
  const done = new Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>(
    (r) => child.on("exit", (code, signal) => r({ code, signal, stdout, stderr })),
  );
  return { child, done };
}

/** Lines journaled so far by one shard (its chunks/part-<tag>-*.jsonl files). */
function journaled(out: string, tag: string): number {
  const dir = join(out, "chunks");
  if (!existsSync(dir)) return 0;
  return readdirSync(dir)
    .filter((f) => f.startsWith(`part-${tag}-`))
    .reduce(
      (n, f) =>
        n +
        readFileSync(join(dir, f), "utf8")
          .split("\n")
          .filter((l) => l.endsWith("}")).length,
      0,
    );
}

/** Every file of the folder except shard `tag`'s, with its bytes: what a rerun of that shard must not touch. */
function othersSnapshot(out: string, tag: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const sub of ["", "chunks"]) {
    for (const f of readdirSync(join(out, sub))) {
      const p = join(out, sub, f);
      if (f.includes(tag) || f === "chunks" || f === "manifest.json") continue;
      files[join(sub, f)] = readFileSync(p, "utf8");
    }
  }
  return files;
}

test("shards: 4 shard processes run at once; one is SIGKILLed mid-run, its rerun completes only that shard", async () => {
  const M = 40;
  // 60 ms per answer and one request in flight per shard: ~0.6 s of work per shard, time to kill one.
  const srv = await startFaultServer({ seed: 1, delayMs: 60 });
  try {
    const whole = workspace(M);
    assert.equal(
      (await runGeneration({ ...base(whole, srv.url), generators: [`openai:${srv.url}:m?concurrency=1`] }))
        .complete,
      true,
    );
    const expected = byId(docs(whole));
    assert.equal(Object.keys(expected).length, M);

    const ws = workspace(M);
    const out = join(ws, "synthetic", "hq-m");
    const shards = [0, 1, 2, 3].map((i) => spawnShard(ws, srv.url, i));
    // Kill shard 2 for real (no signal handler runs) once it has journaled a few answers.
    const victim = shards[2];
    let killedAt = -1;
    while (victim.child.exitCode === null && killedAt < 0) {
      const n = journaled(out, "s0002of0004");
      if (n >= 3) {
        victim.child.kill("SIGKILL");
        killedAt = n;
      } else await new Promise((r) => setTimeout(r, 5));
    }
    const results = await Promise.all(shards.map((s) => s.done));
    assert.ok(killedAt >= 3 && killedAt < M / 4, `shard 2 killed mid-run (after ${killedAt} answers)`);
    assert.equal(results[2].signal, "SIGKILL");
    for (const i of [0, 1, 3]) {
      assert.equal(results[i].code, 0, results[i].stderr);
      const summary = JSON.parse(results[i].stdout);
      assert.equal(summary.complete, true);
      assert.equal(summary.sourceDocs, M / 4);
    }
    const st = readStatuses(out);
    assert.deepEqual(
      st.statuses.map((x) => [x.shard, x.complete]),
      [
        ["0/4", true],
        ["1/4", true],
        ["3/4", true],
      ],
      "the killed shard wrote no status",
    );
    assert.ok(existsSync(join(out, ".generate-s0002of0004.lock")), "the killed shard left its lock behind");

    // `generate status --json`: one JSON document on stdout, exit 1 while a shard is not complete.
    const status = () => {
      const r = spawnSync(
        process.execPath,
        [
          "--import",
          "tsx",
          "test/generate/cli-main.ts",
          "generate",
          "status",
          out,
          "--shards",
          "4",
          "--json",
        ],
        { cwd: process.cwd(), encoding: "utf8" },
      );
      return { code: r.status, rows: JSON.parse(r.stdout) as { shard: string; state: string }[] };
    };
    const before = status();
    assert.equal(before.code, 1);
    assert.deepEqual(
      before.rows.map((r) => r.state === "complete"),
      [true, true, false, true],
    );

    // Rerun only shard 2: it takes over the stale lock, sends only its missing requests, touches no other shard.
    const journaledBefore = journaled(out, "s0002of0004");
    const others = othersSnapshot(out, "s0002of0004");
    const calls = srv.counts.calls;
    const again = await spawnShard(ws, srv.url, 2).done;
    assert.equal(again.code, 0, again.stderr);
    const summary = JSON.parse(again.stdout);
    assert.equal(summary.complete, true);
    assert.equal(
      summary.generators[0].requests.completed,
      M / 4 - journaledBefore,
      "only the missing requests",
    );
    assert.equal(srv.counts.calls - calls, M / 4 - journaledBefore, "no other shard's request was sent");
    assert.deepEqual(othersSnapshot(out, "s0002of0004"), others, "the other shards' files are untouched");
    assert.ok(readStatuses(out).statuses.every((x) => x.complete));
    const after = status();
    assert.equal(after.code, 0);
    assert.ok(after.rows.every((r) => r.state === "complete"));

    const got = docs(ws);
    assert.equal(got.length, M, "0 duplicates");
    assert.equal(new Set(got.map((d) => d.id)).size, M);
    assert.deepEqual(byId(got), expected, "same ids and texts as the unsharded run");
  } finally {
    await srv.close();
  }
});

test("folder files are read through their schemas: a malformed manifest or status is an error naming the file", async () => {
  const srv = await startFaultServer({ seed: 6 });
  try {
    const ws = workspace(4);
    assert.equal((await runGeneration(base(ws, srv.url))).complete, true);
    const out = join(ws, "synthetic", "hq-m");
    writeFileSync(join(out, "status.json"), '{"shard": "0/1", "complete": "yes"}\n');
    assert.throws(() => readStatuses(out), /status\.json:1: complete: .*boolean/);
    const manifest = readFileSync(join(out, "manifest.json"), "utf8");
    writeFileSync(join(out, "manifest.json"), manifest.replace('"identityHash"', '"identityHash_"'));
    await assert.rejects(runGeneration(base(ws, srv.url)), /manifest\.json:\d+: identityHash: /);
  } finally {
    await srv.close();
  }
});
