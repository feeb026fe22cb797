/**
 * GPT-2 pre-tokenization. The reference is the JavaScript regex below (the one gpt-tokenizer uses and the
 * pattern HF's ByteLevel pre-tokenizer and tiktoken's r50k use). `pieceEnd` is a hand-written scanner that
 * matches it exactly (checked against the regex on random Unicode in the tests) and is several times
 * faster, because it classifies each code point once through a table instead of running the Unicode
 * property regex with backtracking.
 *
 * Whitespace is the Unicode White_Space property, as in GPT-2's original Python `regex`, tiktoken (Rust)
 * and llama.cpp: it includes U+0085 and excludes U+FEFF. (JavaScript's `\s` differs on exactly those two,
 * so gpt-tokenizer, which runs the pattern with `\s`, splits them differently.) `\p{L}`/`\p{N}` are the
 * Unicode general categories of the running V8.
 */
export const GPT2_SPLIT_REGEX =
  /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\p{White_Space}\p{L}\p{N}]+|\p{White_Space}+(?!\P{White_Space})|\p{White_Space}+/gu;

const LETTER = 1;
const NUMBER = 2;
const SPACE = 3;
const OTHER = 4;

// Class of every code point, filled lazily (0 = not yet computed). 1.1 MB, shared by all tokenizers.
const CLASS = new Uint8Array(0x110000);
const RE_L = /^\p{L}$/u;
const RE_N = /^\p{N}$/u;
const RE_S = /^\p{White_Space}$/u;

function computeClass(cp: number): number {
  const ch = String.fromCodePoint(cp);
  const c = RE_L.test(ch) ? LETTER : RE_N.test(ch) ? NUMBER : RE_S.test(ch) ? SPACE : OTHER;
  CLASS[cp] = c;
  return c;
}
for (let cp = 0; cp < 128; cp++) computeClass(cp);

function classAt(text: string, i: number): number {
  const c = text.charCodeAt(i);
  if (c < 128) return CLASS[c];
  const cp = text.codePointAt(i)!;
  const k = CLASS[cp];
  return k !== 0 ? k : computeClass(cp);
}

/** End (exclusive) of the run of code points of class `k` starting at `p`. */
function runEnd(text: string, p: number, k: number, len: number): number {
  while (p < len) {
    const c = text.charCodeAt(p);
    if (c < 128) {
      if (CLASS[c] !== k) break;
      p++;
      continue;
    }
    const cp = text.codePointAt(p)!;
    let kk = CLASS[cp];
    if (kk === 0) kk = computeClass(cp);
    if (kk !== k) break;
    p += cp > 0xffff ? 2 : 1;
  }
  return p;
}

/** End (exclusive) of the GPT-2 pre-token that starts at `i` (< text.length). */
export function pieceEnd(text: string, i: number): number {
  const len = text.length;
  const c = text.charCodeAt(i);
  if (c === 39 && i + 1 < len) {
    // 's 't 're 've 'm 'll 'd (lowercase only, as in the pattern)
    const d = text.charCodeAt(i + 1);
    if (d === 115 || d === 116 || d === 109 || d === 100) return i + 2;
    if (i + 2 < len) {
      const e = text.charCodeAt(i + 2);
      if ((e === 101 && (d === 114 || d === 118)) || (d === 108 && e === 108)) return i + 3;
    }
  }
  if (c === 32) {
    if (i + 1 < len) {
      const k = classAt(text, i + 1);
      if (k !== SPACE) return runEnd(text, i + 1, k, len);
    }
  } else {
    const k = classAt(text, i);
    if (k !== SPACE) return runEnd(text, i, k, len);
  }
  // Whitespace: `\s+(?!\S)` leaves the last space of a run for the next word; `\s+` takes a lone one.
  const r = runEnd(text, i, SPACE, len);
  if (r === len || r - i < 2) return r;
  return r - 1;
}

/** Split text into GPT-2 pre-tokens (fast scanner). */
export function pretokenize(text: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; ) {
    const j = pieceEnd(text, i);
    out.push(text.slice(i, j));
    i = j;
  }
  return out;
}

/** Split text with the reference regex (slow; used by tests to check the scanner). */
export function pretokenizeRegex(text: string): string[] {
  return text.match(GPT2_SPLIT_REGEX) ?? [];
}
