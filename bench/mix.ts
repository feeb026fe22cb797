/**
 * Mixture building, ours vs the usual numpy script: `npx tsx bench/mix.ts [--tokens 1e6] [--repeats 3]`.
 *
 * Workspace: the 500 Brown documents as `natural` and a lower-cased copy as `hq`, GPT-2 tokenizer.
 * 1. First build: tokenizes both sources (2 threads) into the token cache, then builds the mixture.
 * 2. Cached builds: mixtures at 5 ratios from the cache (what every further mixture of a sweep costs).
 * 3. Peer: bench/peers/mix_numpy.py builds the same-size mixtures from the same cached token files with
 *    numpy (permutation sampling, truncation, doc shuffle, concatenate, write). Best of --repeats each.
 * Ours does more per build (source hashing for the config hash, nesting-preserving interleave, manifest).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readBrownDocs } from "../src/corpus/readers/brown.js";
import { buildMixture } from "../src/mix/build.js";
import { parseCount } from "../src/mix/count.js";
import { loadMixTokenizer } from "../src/mix/tokenizer.js";
import { Tokenizer } from "../src/tokenizer/index.js";

const args = process.argv.slice(2);
const arg = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const total = parseCount(arg("tokens", "1e6"));
const repeats = Number(arg("repeats", "3"));

const ws = mkdtempSync(join(tmpdir(), "synthmix-bench-mix-"));
const natural: string[] = [];
const hq: string[] = [];
for await (const d of readBrownDocs()) {
  natural.push(JSON.stringify(d));
  hq.push(JSON.stringify({ ...d, id: `${d.id}-hq`, text: d.text.toLowerCase(), source: "hq" }));
}
writeFileSync(join(ws, "natural.jsonl"), `${natural.join("\n")}\n`);
writeFileSync(join(ws, "hq.jsonl"), `${hq.join("\n")}\n`);
Tokenizer.gpt2().save(join(ws, "tokenizer.json"));
const tokenizer = await loadMixTokenizer(join(ws, "tokenizer.json"), 2);

const sources = (r: number) => [
  { name: "natural", path: join(ws, "natural.jsonl"), share: +(1 - r).toFixed(6) },
  { name: "hq", path: join(ws, "hq.jsonl"), share: r },
];
let t0 = performance.now();
await buildMixture({ workspace: ws, id: "first", tokenizer, sources: sources(0.33), totalTokens: total });
const first = (performance.now() - t0) / 1000;

const ratios = [0.1, 0.25, 0.5, 0.67, 0.9];
let oursBest = Number.POSITIVE_INFINITY;
for (let rep = 0; rep < repeats; rep++) {
  t0 = performance.now();
  for (const r of ratios) {
    await buildMixture({
      workspace: ws,
      id: `r${r}-${rep}`,
      tokenizer,
      sources: sources(r),
      totalTokens: total,
    });
  }
  oursBest = Math.min(oursBest, (performance.now() - t0) / 1000 / ratios.length);
}

const cache = join(ws, "tokens", "sources");
const files = readdirSync(cache);
const base = (name: string) =>
  join(cache, files.find((f) => f.startsWith(`${name}-`) && f.endsWith(".json"))!.replace(/\.json$/, ""));
let peerTotal = 0;
for (const r of ratios) {
  const res = spawnSync(
    "/usr/bin/python3",
    [
      "bench/peers/mix_numpy.py",
      ws,
      String(total),
      String(tokenizer.eotId),
      `natural:${1 - r}:${base("natural")}.bin:${base("natural")}.lens.bin`,
      `hq:${r}:${base("hq")}.bin:${base("hq")}.lens.bin`,
    ],
    { encoding: "utf8", env: { ...process.env, REPEATS: String(repeats) } },
  );
  if (res.status !== 0) throw new Error(res.stderr);
  peerTotal += Number(res.stdout.trim());
}
const peer = peerTotal / ratios.length;
const ms = (s: number) => `${(s * 1000).toFixed(1)} ms`;
console.log(`mixture of ${total} tokens, Brown natural + hq (lower-cased copy), GPT-2 tokenizer`);
console.log("| step | ours | numpy peer | ours/peer speed |");
console.log("|---|---|---|---|");
console.log(`| first build (tokenize 2 sources + cache + build) | ${ms(first)} | - | - |`);
console.log(
  `| build from cache, mean of ${ratios.length} ratios, best of ${repeats} | ${ms(oursBest)} | ${ms(peer)} | ${(peer / oursBest).toFixed(2)}x |`,
);
console.log(`cache saves ${(first / oursBest).toFixed(1)}x per further mixture vs re-tokenizing`);
