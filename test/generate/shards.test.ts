import assert from "node:assert/strict";
import { spawn } from "node:child_process";
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
  const srv = await startFaultServer({ seed: 1, delayMs: 3 });
  try {
    const whole = workspace();
    const s = await runGeneration(base(whole, srv.url));
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
          ...base(ws, srv.url),
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
    const again = await runGeneration({ ...base(ws, srv.url), shard: { index: 2, count: 4 } });
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
