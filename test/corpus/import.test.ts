import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";
import {
  corpusDir,
  type Doc,
  importCorpus,
  listCorpora,
  listTestDomains,
  planCutoffs,
  readCorpusSplit,
  readCorpusStats,
  splitScore,
} from "../../src/corpus/index.js";
import { runCliCaptured, runCliJson } from "../helpers/capture.js";
import { collect, tmp } from "./helpers.js";

function writeJsonl(
  path: string,
  n: number,
  extra: (i: number) => Record<string, unknown> = () => ({}),
): void {
  const lines = Array.from({ length: n }, (_, i) =>
    JSON.stringify({
      id: `d${i}`,
      text: `Document ${i} says ${"word ".repeat(5 + (i % 7))}end.`,
      ...extra(i),
    }),
  );
  writeFileSync(path, `${lines.join("\n")}\n`);
}

test("split: by document, seeded, independent of order and company; min docs per test set", () => {
  const ids = Array.from({ length: 2000 }, (_, i) => `doc-${i}`);
  const a = ids.map((id) => splitScore(1, id));
  assert.deepEqual(
    ids
      .slice()
      .reverse()
      .map((id) => splitScore(1, id))
      .reverse(),
    a,
  );
  assert.notDeepEqual(
    ids.map((id) => splitScore(2, id)),
    a,
  );
  const frac = a.filter((s) => s < 0.1).length / a.length;
  assert.ok(Math.abs(frac - 0.1) < 0.025, `held-out fraction ${frac}`);
  const cut = planCutoffs(
    new Map([
      ["big", a],
      ["tiny", [0.9, 0.5, 0.7]],
      ["one", [0.3]],
    ]),
    0.1,
    2,
  );
  assert.equal(a.filter((s) => s <= cut.get("big")!).length, a.filter((s) => s < 0.1).length);
  assert.equal(cut.get("tiny"), 0.5, "raised to the lowest score, but at most half of a 3-doc set");
  assert.equal(cut.get("one"), -1, "a single document is never held out");
});

test("import: train and test are disjoint, complete, per-domain, and stable when the input is reordered", async () => {
  const dir = tmp();
  const src = join(dir, "docs.jsonl");
  const domains = ["news", "fiction", "science"];
  writeJsonl(src, 300, (i) => ({ domain: domains[i % 3] }));
  const ws = join(dir, "ws");
  const stats = await importCorpus({
    from: src,
    workspace: ws,
    testBy: "domain",
    testFraction: 0.2,
    seed: 4,
  });
  assert.equal(stats.name, "docs");
  assert.deepEqual(listTestDomains(ws, "docs"), ["fiction", "news", "science"]);
  const train = await collect(readCorpusSplit(ws, "docs", "train"));
  const test: Doc[] = [];
  for (const d of listTestDomains(ws, "docs")) {
    const docs = await collect(readCorpusSplit(ws, "docs", { test: d }));
    assert.ok(docs.every((x) => x.meta?.domain === d));
    test.push(...docs);
  }
  const trainIds = new Set(train.map((d) => d.id));
  assert.ok(
    test.every((d) => !trainIds.has(d.id)),
    "no test document reaches train",
  );
  assert.equal(trainIds.size + test.length, 300);
  assert.ok(test.length > 35 && test.length < 85, `test size ${test.length}`);
  assert.equal(stats.train.docs, train.length);
  assert.equal(stats.train.byDomain.news.docs + stats.test.news.docs, 100);
  assert.equal(
    stats.train.words + Object.values(stats.test).reduce((s, t) => s + t.words, 0),
    train.concat(test).reduce((s, d) => s + d.text.split(/\s+/).length, 0),
  );

  // Same documents in reverse order: the same documents are held out.
  const lines = readFileSync(src, "utf8").trim().split("\n").reverse();
  const rev = join(dir, "rev.jsonl");
  writeFileSync(rev, `${lines.join("\n")}\n`);
  await importCorpus({ from: rev, workspace: ws, testBy: "domain", testFraction: 0.2, seed: 4 });
  const revTest = new Set<string>();
  for (const d of listTestDomains(ws, "rev"))
    for (const x of await collect(readCorpusSplit(ws, "rev", { test: d }))) revTest.add(x.id);
  assert.deepEqual([...revTest].sort(), test.map((d) => d.id).sort());
  assert.throws(() => readCorpusSplit(ws, "docs", { test: "sports" }), /no test set "sports".*|available/);
});

test("import: rerun with the same options is a no-op; changed options re-import; failures leave the old corpus", async () => {
  const dir = tmp();
  const src = join(dir, "c.jsonl");
  writeJsonl(src, 50);
  const ws = join(dir, "ws");
  const first = await importCorpus({ from: src, workspace: ws, name: "c" });
  const statsPath = join(corpusDir(ws, "c"), "stats.json");
  const mtime = statSync(statsPath).mtimeMs;
  const again = await importCorpus({ from: src, workspace: ws, name: "c" });
  assert.equal(again.reused, true);
  assert.equal(statSync(statsPath).mtimeMs, mtime);
  assert.equal(again.configHash, first.configHash);
  assert.equal(readCorpusStats(ws, "c").train.docs, first.train.docs);

  const changed = await importCorpus({ from: src, workspace: ws, name: "c", minChars: 50 });
  assert.notEqual(changed.configHash, first.configHash);
  assert.ok(!changed.reused);
  assert.ok((changed.dropped.too_short ?? 0) > 0);
  assert.equal(changed.config.minChars, 50);

  // A bad source fails the import; the previous complete corpus is untouched and no temp folder remains.
  writeFileSync(src, '{"text": "fine"}\n{broken\n');
  await assert.rejects(importCorpus({ from: src, workspace: ws, name: "c" }), /c\.jsonl:2: malformed JSON/);
  assert.equal(readCorpusStats(ws, "c").configHash, changed.configHash);
  assert.deepEqual(readdirSync(join(ws, "corpus")), ["c"]);

  // A killed import leaves only a hidden temp folder (no corpus); the next run removes it.
  const stale = join(ws, "corpus", ".c.tmp-999999999");
  mkdirSync(join(stale, "test"), { recursive: true });
  writeFileSync(join(stale, "train.jsonl"), '{"id":"x","text":"partial"}\n');
  assert.deepEqual(listCorpora(ws), ["c"]);
  const skipped = await importCorpus({ from: src, workspace: ws, name: "c", skipBadRecords: true });
  assert.ok(!existsSync(stale), "stale temp folder removed");
  assert.equal(skipped.badRecords, 1);
  assert.match(skipped.badRecordSamples[0], /c\.jsonl:2/);
  assert.equal(skipped.read, 1);
  assert.ok(!existsSync(join(corpusDir(ws, "c"), "all.jsonl.staging")));
});

test("import: a SIGKILLed import leaves no corpus (or a complete one); the rerun completes", async () => {
  const dir = tmp();
  const src = join(dir, "big.jsonl");
  writeJsonl(src, 5000);
  const ws = join(dir, "ws");
  const script = join(dir, "run.mts");
  const lib = pathToFileURL(resolve("src/corpus/index.ts")).href;
  writeFileSync(
    script,
    `import { importCorpus } from ${JSON.stringify(lib)};\nawait importCorpus({ from: ${JSON.stringify(src)}, workspace: ${JSON.stringify(ws)}, name: "big" });\n`,
  );
  const child = spawn(process.execPath, ["--import", "tsx", script], { stdio: "ignore" });
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  let killed = false;
  for (let i = 0; i < 3000 && child.exitCode === null; i++) {
    const root = join(ws, "corpus");
    if (existsSync(root) && readdirSync(root).some((e) => e.startsWith(".big.tmp-"))) {
      child.kill("SIGKILL");
      killed = true;
      break;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  await exited;
  if (killed) assert.deepEqual(listCorpora(ws), [], "no corpus after a kill mid-import");
  else assert.deepEqual(listCorpora(ws), ["big"]);
  const stats = await importCorpus({ from: src, workspace: ws, name: "big" });
  assert.equal(stats.reused, undefined, "the rerun imported");
  assert.equal(stats.read, 5000);
  assert.deepEqual(readdirSync(join(ws, "corpus")), ["big"]);
});

test("import: the Brown corpus per genre group, through the CLI (human text, then --json)", async () => {
  const ws = tmp();
  const args = [
    "corpus",
    "import",
    "--from",
    "brown",
    "--out",
    ws,
    "--test-by",
    "group",
    "--min-chars",
    "100",
  ];
  const imported = await runCliCaptured(...args);
  const listed = await runCliCaptured("corpus", "stats", ws);
  const out = `${imported.stdout}${listed.stdout}`;
  const stats = readCorpusStats(ws, "brown");
  assert.equal(stats.read, 500);
  assert.deepEqual(Object.keys(stats.test), ["fiction", "learned", "news", "nonfiction"]);
  const total = stats.train.docs + Object.values(stats.test).reduce((s, t) => s + t.docs, 0);
  assert.equal(total, 500);
  assert.ok(stats.train.byDomain.news.docs > 30);
  assert.match(out, /corpus "brown": read 500 documents/);
  assert.match(out, /test\/news: \d+ docs/);
  assert.match(out, /bad records skipped: 0/);
  // --json: stdout is exactly one JSON document; a rerun reports the reused corpus.
  const again = await runCliJson<{ name: string; read: number; reused?: boolean }>(...args);
  assert.deepEqual([again.json.name, again.json.read, again.json.reused], ["brown", 500, true]);
  const one = await runCliJson<{ configHash: string }>("corpus", "stats", ws, "--name", "brown");
  assert.equal(one.json.configHash, stats.configHash);
  const all = await runCliJson<{ name: string }[]>("corpus", "stats", ws);
  assert.deepEqual(
    all.json.map((s) => s.name),
    ["brown"],
  );
});
