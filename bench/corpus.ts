/**
 * Corpus stage throughput: Brown read and full import (docs/s), and MinHash signatures for near-dedup
 * against two peers measured side by side in one run: the npm `minhash` package (pure JS) and
 * datasketch's update_batch algorithm in numpy (bench/peers/minhash_datasketch_numpy.py, run with
 * /usr/bin/python3). All compute 128-permutation signatures over word 5-gram shingles of Brown docs.
 *
 *   npx tsx bench/corpus.ts [--peer-docs 40]
 *
 * Times are the best of 3 runs (the least noisy statistic on a shared machine).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import {
  type Doc,
  DropCounts,
  importCorpus,
  MinHasher,
  nearDedup,
  readDocuments,
} from "../src/corpus/index.js";

const NUM_PERM = 128;
const NGRAM = 5;
const arg = process.argv.indexOf("--peer-docs");
const PEER_DOCS = arg > 0 ? Number(process.argv[arg + 1]) : 40;

async function best<T>(runs: number, fn: () => Promise<T> | T): Promise<{ sec: number; value: T }> {
  let sec = Number.POSITIVE_INFINITY;
  let value: T | undefined;
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    value = await fn();
    sec = Math.min(sec, (performance.now() - t) / 1000);
  }
  return { sec, value: value as T };
}

const fmt = (x: number, d = 1) => x.toLocaleString("en-US", { maximumFractionDigits: d });
const load0 = loadavg()[0];

const docs: Doc[] = [];
const read = await best(3, async () => {
  docs.length = 0;
  for await (const d of readDocuments("brown")) docs.push(d);
  return docs.length;
});
const mb = docs.reduce((s, d) => s + d.text.length, 0) / 1e6;
console.log(
  `Brown read: ${read.value} docs in ${fmt(read.sec, 2)} s = ${fmt(read.value / read.sec)} docs/s (${fmt(mb / read.sec, 2)} MB/s)`,
);

const imp = await best(3, async () => {
  const ws = mkdtempSync(join(tmpdir(), "synthmix-bench-"));
  try {
    return await importCorpus({ from: "brown", workspace: ws, testBy: "group" });
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
});
console.log(`Brown import (clean, dedup, split, write): ${fmt(500 / imp.sec)} docs/s (${fmt(imp.sec, 2)} s)`);

const impNd = await best(3, async () => {
  const ws = mkdtempSync(join(tmpdir(), "synthmix-bench-"));
  try {
    return await importCorpus({ from: "brown", workspace: ws, testBy: "group", nearDedup: 0.8 });
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
});
console.log(`Brown import with --near-dedup 0.8: ${fmt(500 / impNd.sec)} docs/s (${fmt(impNd.sec, 2)} s)`);

// MinHash signatures: ours on all 500 docs.
const hasher = new MinHasher({ numPerm: NUM_PERM, ngram: NGRAM });
const ours = await best(3, () => {
  for (const d of docs) hasher.signature(d.text);
  return docs.length;
});
const oursRate = docs.length / ours.sec;
console.log(`MinHash ours: ${fmt(oursRate)} docs/s (${fmt((mb * 1e6) / ours.sec / 1e6, 2)} MB/s)`);

// Full near-dedup step (signatures + LSH) over all docs.
const step = await best(3, async () => {
  const drops = new DropCounts();
  let n = 0;
  for await (const _ of nearDedup(
    { threshold: 0.8 },
    drops,
  )(
    (async function* () {
      yield* docs;
    })(),
  ))
    n++;
  return n;
});
console.log(`near-dedup step (signature + LSH, threshold 0.8): ${fmt(docs.length / step.sec)} docs/s`);

// Peer 1: npm minhash on the first PEER_DOCS docs (it rehashes each shingle string per permutation).
const require = createRequire(import.meta.url);
const { Minhash } = require("minhash") as {
  Minhash: new (c: { numPerm: number }) => { update(s: string): void };
};
const sub = docs.slice(0, PEER_DOCS);
const subShingles = (d: Doc) => {
  const w = d.text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
  const out: string[] = [];
  for (let i = 0; i + NGRAM <= w.length; i++) out.push(w.slice(i, i + NGRAM).join(" "));
  return out;
};
const npm = await best(1, () => {
  for (const d of sub) {
    const m = new Minhash({ numPerm: NUM_PERM });
    for (const s of subShingles(d)) m.update(s);
  }
  return sub.length;
});
const npmRate = sub.length / npm.sec;
const oursSub = await best(3, () => {
  for (const d of sub) hasher.signature(d.text);
  return sub.length;
});
const oursSubRate = sub.length / oursSub.sec;
console.log(
  `MinHash npm minhash@0.0.9 (first ${sub.length} docs): ${fmt(npmRate, 2)} docs/s; ours on the same docs ${fmt(oursSubRate)} docs/s -> ratio ${fmt(oursSubRate / npmRate)}x`,
);

// Peer 2: datasketch's algorithm in numpy, all docs.
const input = docs.map((d) => JSON.stringify({ text: d.text })).join("\n");
let pyBest = Number.POSITIVE_INFINITY;
let pyErr = "";
for (let i = 0; i < 3; i++) {
  const r = spawnSync(
    "/usr/bin/python3",
    ["bench/peers/minhash_datasketch_numpy.py", String(NUM_PERM), String(NGRAM)],
    {
      input,
      encoding: "utf8",
      maxBuffer: 1 << 26,
    },
  );
  if (r.status !== 0) {
    pyErr = r.stderr || String(r.error);
    break;
  }
  pyBest = Math.min(pyBest, JSON.parse(r.stdout).seconds);
}
if (pyErr)
  console.log(`MinHash datasketch/numpy peer: not runnable (${pyErr.split("\n").slice(-2).join(" ")})`);
else {
  const pyRate = docs.length / pyBest;
  console.log(
    `MinHash datasketch algorithm in numpy (all ${docs.length} docs): ${fmt(pyRate)} docs/s -> ratio ours/peer ${fmt(oursRate / pyRate, 2)}x`,
  );
}
console.log(`load average: ${fmt(load0, 2)} at start, ${fmt(loadavg()[0], 2)} at end (2 cores)`);
