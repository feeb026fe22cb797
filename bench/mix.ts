/**
 * Mixture building, ours vs the usual numpy script: `npx tsx bench/mix.ts [--tokens 1e6] [--repeats 3]`.
 *
 * Workspace: the 500 Brown documents as `natural` and a lower-cased copy as `hq`, GPT-2 tokenizer.
 * 1. First build: tokenizes both sources (2 threads) into the token cache, then builds the mixture.
 * 2. Cached builds: mixtures at 5 ratios from the cache (what every further mixture of a sweep costs).
 * 3. Peer: bench/peers/mix_numpy.py builds the same-size mixtures from the same cached token files with
 *    numpy (permutation sampling, truncation, doc shuffle, concatenate, write). Best of --repeats each.
 * Ours does more per build (source hashing for the config hash, nesting-preserving interleave, manifest).
 *
 * `npx tsx bench/mix.ts --rss 20M,100M,500M [--mix 5M] [--bin bin/synthmix.js]`: peak RSS of a first
 * build (tokenize a generated source of about that many GPT-2 tokens into the cache, then build a --mix
 * mixture) and of the same build from the cache, each in a fresh process of the binary (--bin: another
 * checkout's, for a before/after), against the numpy peer building the same mixture from the same cache,
 * reading the token file whole (np.fromfile) and memory-mapped (np.memmap). Sources come from
 * test/mix/fixtures/gen-source.ts (seconds per GB), written in this process before the builds.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readBrownDocs } from "../src/corpus/readers/brown.js";
import { buildMixture } from "../src/mix/build.js";
import { parseCount } from "../src/mix/count.js";
import { loadMixTokenizer } from "../src/mix/tokenizer.js";
import { Tokenizer } from "../src/tokenizer/index.js";
import { generateSource } from "../test/mix/fixtures/gen-source.js";

const args = process.argv.slice(2);
const arg = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
if (args.includes("--rss")) {
  await rssBench(
    arg("rss", "20M,100M")
      .split(",")
      .map((c) => parseCount(c)),
    parseCount(arg("mix", "5M")),
    arg("bin", "bin/synthmix.js"),
  );
  process.exit(0);
}
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

async function rssBench(sizes: number[], mix: number, bin: string): Promise<void> {
  // The builds measured run the shipped binary (bin/synthmix.js over dist/, as a user runs `mix build`):
  // under tsx every tokenizer worker would also load tsx's loader, which a user never pays for. The
  // workers are threads, so the process's maxrss covers them; `mix build` starts no child process.
  const cli = (ws: string, mixTokens: number) => {
    const t0 = performance.now();
    const r = spawnSync(
      "/usr/bin/time",
      [
        "-f",
        "%M %U %S",
        process.execPath,
        bin,
        "mix",
        "build",
        "-w",
        ws,
        "--tokenizer",
        join(ws, "tokenizer.json"),
        "--source",
        `natural=${join(ws, "natural.jsonl")}`,
        "--tokens",
        String(mixTokens),
        "--id",
        "rss",
        "--force",
      ],
      { encoding: "utf8" },
    );
    if (r.status !== 0) throw new Error(r.stderr);
    const [rssKB, user, sys] = r.stderr.trim().split("\n").at(-1)!.split(" ").map(Number);
    return { maxRssMB: rssKB / 1024, seconds: (performance.now() - t0) / 1000, cpu: user + sys };
  };
  // Characters per GPT-2 token of the generated text, from a 2M-character sample.
  const cal = mkdtempSync(join(tmpdir(), "synthmix-bench-rss-"));
  generateSource(join(cal, "s.jsonl"), 2_000_000);
  const gpt2 = Tokenizer.gpt2();
  let calChars = 0;
  let calTokens = 0;
  for (const line of readFileSync(join(cal, "s.jsonl"), "utf8").trim().split("\n")) {
    const { text } = JSON.parse(line) as { text: string };
    calChars += text.length;
    calTokens += gpt2.encode(text).length;
  }
  rmSync(cal, { recursive: true, force: true });
  const charsPerToken = calChars / calTokens;
  console.log(`mix build peak RSS vs source size: GPT-2 tokenizer (2 threads), ${mix}-token mixture, ${bin}`);
  console.log(
    "| source tokens | source JSONL | synthmix first build (tokenize + build) peak RSS | s | CPU s | M tokens/s | synthmix build from cache peak RSS | numpy fromfile peak RSS | numpy memmap peak RSS | ours/memmap (from cache) |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|---|");
  for (const size of sizes) {
    const ws = mkdtempSync(join(tmpdir(), "synthmix-bench-rss-"));
    try {
      generateSource(join(ws, "natural.jsonl"), Math.round(size * charsPerToken));
      gpt2.save(join(ws, "tokenizer.json"));
      const ours = cli(ws, mix);
      const cached = cli(ws, mix); // the same build again, from the token cache
      const cache = join(ws, "tokens", "sources");
      const base = join(
        cache,
        readdirSync(cache)
          .find((f) => f.endsWith(".json"))!
          .replace(/\.json$/, ""),
      );
      const sourceTokens = (JSON.parse(readFileSync(`${base}.json`, "utf8")) as { tokens: number }).tokens;
      const peer = (mmap: string) => {
        const r = spawnSync(
          "/usr/bin/python3",
          ["bench/peers/mix_numpy.py", ws, String(mix), "50256", `natural:1:${base}.bin:${base}.lens.bin`],
          { encoding: "utf8", env: { ...process.env, REPEATS: "1", RSS: "1", MMAP: mmap } },
        );
        if (r.status !== 0) throw new Error(r.stderr);
        return Number(r.stderr.trim().split("\n").at(-1));
      };
      const whole = peer("0");
      const mapped = peer("1");
      const mb = statSync(join(ws, "natural.jsonl")).size / 1e6;
      console.log(
        `| ${(sourceTokens / 1e6).toFixed(1)}M | ${mb.toFixed(0)} MB | ${ours.maxRssMB.toFixed(0)} MB | ${ours.seconds.toFixed(1)} | ${ours.cpu.toFixed(1)} | ${(sourceTokens / 1e6 / ours.seconds).toFixed(2)} | ${cached.maxRssMB.toFixed(0)} MB | ${whole.toFixed(0)} MB | ${mapped.toFixed(0)} MB | ${(cached.maxRssMB / mapped).toFixed(2)}x |`,
      );
    } finally {
      rmSync(ws, { recursive: true, force: true });
    }
  }
}
