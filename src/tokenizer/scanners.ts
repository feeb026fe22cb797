/**
 * Hand-written scanners for the Split regexes of the common byte-level BPE families, used instead of
 * V8's regex engine when a tokenizer.json's pattern is exactly one of them (the regex was ~all of the
 * encode time on code with GPT-4o's file). Each returns the end of the regex match that starts at `i`;
 * these patterns match at every position (every code point is a letter, number, whitespace or "other"),
 * so the matches tile the text and the scanner never needs a search. Exactness against the translated
 * regex (src/tokenizer/regex.ts) is tested on random and real text (test/tokenizer/scanners.test.ts);
 * the regex stays the reference and the path for every other pattern.
 *
 * Classes are those of the regex: `\s` = White_Space, `\p{L}`, `\p{N}`, general categories of the
 * running V8, and `(?i:'s|...)` folds ASCII only (as the translation and tokenizers.js do).
 */
export type Scanner = (s: string, i: number, end: number) => number;

const L = 1; // \p{L}
const N = 2; // \p{N}
const WS = 4; // White_Space
const UP = 8; // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}] (o200k's "upper" class)
const LO = 16; // [\p{Ll}\p{Lm}\p{Lo}\p{M}] (o200k's "lower" class)
const CRLF = 32; // \r or \n
const DONE = 64; // the entry has been computed

// Flags of every code point, filled lazily (0 = not yet computed). 1.1 MB, shared by all tokenizers.
const FLAGS = new Uint8Array(0x110000);
const TESTS: [RegExp, number][] = [
  [/^\p{L}$/u, L],
  [/^\p{N}$/u, N],
  [/^\p{White_Space}$/u, WS],
  [/^[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]$/u, UP],
  [/^[\p{Ll}\p{Lm}\p{Lo}\p{M}]$/u, LO],
  [/^[\r\n]$/u, CRLF],
];

function compute(cp: number): number {
  const ch = String.fromCodePoint(cp);
  let f = DONE;
  for (const [re, bit] of TESTS) if (re.test(ch)) f |= bit;
  FLAGS[cp] = f;
  return f;
}
for (let cp = 0; cp < 128; cp++) compute(cp);

function flagsAt(s: string, p: number): number {
  const c = s.charCodeAt(p);
  if (c < 128) return FLAGS[c];
  const cp = s.codePointAt(p)!;
  const f = FLAGS[cp];
  return f !== 0 ? f : compute(cp);
}

/** Index after the code point at p (a lone surrogate is one code point, as in a "u" regex). */
function next(s: string, p: number): number {
  const c = s.charCodeAt(p);
  if (c >= 0xd800 && c <= 0xdbff && p + 1 < s.length) {
    const d = s.charCodeAt(p + 1);
    if (d >= 0xdc00 && d <= 0xdfff) return p + 2;
  }
  return p + 1;
}

/** End of the run of code points that have any of `bits`, from p. */
function runEnd(s: string, p: number, end: number, bits: number): number {
  while (p < end && (flagsAt(s, p) & bits) !== 0) p = next(s, p);
  return p;
}

/** End of the run of "other" code points ([^\s\p{L}\p{N}]), from p. */
function otherEnd(s: string, p: number, end: number): number {
  while (p < end && (flagsAt(s, p) & (L | N | WS)) === 0) p = next(s, p);
  return p;
}

const isOther = (f: number) => (f & (L | N | WS)) === 0;
/** [^\r\n\p{L}\p{N}]: the optional one-code-point prefix of a word. */
const isPrefix = (f: number) => (f & (L | N | CRLF)) === 0;

/** (?i:'s|'t|'re|'ve|'m|'ll|'d) at i: its end, or -1. */
function contractionEnd(s: string, i: number, end: number): number {
  if (s.charCodeAt(i) !== 39 || i + 1 >= end) return -1;
  const d = s.charCodeAt(i + 1) | 0x20; // ASCII fold: only 'S'/'s' give 's', etc.
  if (d === 0x73 || d === 0x74 || d === 0x6d || d === 0x64) return i + 2; // s t m d
  if (i + 2 >= end) return -1;
  const e = s.charCodeAt(i + 2) | 0x20;
  if ((d === 0x72 || d === 0x76) && e === 0x65) return i + 3; // re ve
  if (d === 0x6c && e === 0x6c) return i + 3; // ll
  return -1;
}

/** \p{N}{1,max} at i (s[i] is a number). */
function digitsEnd(s: string, i: number, end: number, max: number): number {
  let p = i;
  for (let k = 0; k < max && p < end && (flagsAt(s, p) & N) !== 0; k++) p = next(s, p);
  return p;
}

/**
 * The shared tail of both families, at a code point that is not a letter/number word start:
 * ` ?[^\s\p{L}\p{N}]+[\r\n]*` (o200k: `[\r\n/]*`), then `\s*[\r\n]+`, `\s+(?!\S)`, `\s+`.
 */
function otherOrSpaceEnd(s: string, i: number, end: number, slash: boolean): number {
  let j = i;
  if (s.charCodeAt(i) === 32 && i + 1 < end && isOther(flagsAt(s, i + 1))) j = i + 1;
  if (isOther(flagsAt(s, j))) {
    let p = otherEnd(s, j, end);
    for (let c = s.charCodeAt(p); p < end && (c === 10 || c === 13 || (slash && c === 47)); ) {
      c = s.charCodeAt(++p);
    }
    return p;
  }
  // s[i] is whitespace. \s*[\r\n]+: greedy \s* gives back to the last CR/LF of the run.
  const w = runEnd(s, i, end, WS);
  for (let q = w - 1; q >= i; q--) {
    const c = s.charCodeAt(q);
    if (c === 10 || c === 13) return q + 1;
  }
  // \s+(?!\S) keeps the run's last whitespace (always one UTF-16 unit) for the next word; \s+ else.
  if (w === end || w - 1 === i) return w;
  return w - 1;
}

/** The cl100k_base / Llama-3 (maxDigits 3) and Qwen2/Qwen3 (maxDigits 1) pattern. */
function cl100kScanner(maxDigits: number): Scanner {
  return (s, i, end) => {
    if (s.charCodeAt(i) === 39) {
      const e = contractionEnd(s, i, end);
      if (e > 0) return e;
    }
    const f = flagsAt(s, i);
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if ((f & L) !== 0) return runEnd(s, i, end, L);
    if (isPrefix(f)) {
      const n1 = next(s, i);
      if (n1 < end && (flagsAt(s, n1) & L) !== 0) return runEnd(s, n1, end, L);
    }
    if ((f & N) !== 0) return digitsEnd(s, i, end, maxDigits);
    return otherOrSpaceEnd(s, i, end, false);
  };
}

/** [UP]*[LO]+ from j: its end, or -1. Greedy UP* gives back to the last LO code point of its run. */
function upperThenLower(s: string, j: number, end: number): number {
  let p = j;
  let lastLoEnd = -1;
  while (p < end) {
    const f = flagsAt(s, p);
    if ((f & UP) === 0) break;
    const q = next(s, p);
    if ((f & LO) !== 0) lastLoEnd = q;
    p = q;
  }
  if (p < end && (flagsAt(s, p) & LO) !== 0) return runEnd(s, p, end, LO);
  return lastLoEnd;
}

function withContraction(s: string, e: number, end: number): number {
  if (e >= end || s.charCodeAt(e) !== 39) return e;
  const c = contractionEnd(s, e, end);
  return c > 0 ? c : e;
}

/** The o200k_base (GPT-4o) pattern. */
function o200kScanner(s: string, i: number, end: number): number {
  const f = flagsAt(s, i);
  const n1 = next(s, i);
  const prefixed = isPrefix(f) && n1 < end;
  // [^\r\n\p{L}\p{N}]?[UP]*[LO]+(?i:'s|...)?  (the optional prefix is tried taken, then not)
  let e = prefixed ? upperThenLower(s, n1, end) : -1;
  if (e < 0) e = upperThenLower(s, i, end);
  if (e >= 0) return withContraction(s, e, end);
  // [^\r\n\p{L}\p{N}]?[UP]+[LO]*(?i:'s|...)?
  if (prefixed && (flagsAt(s, n1) & UP) !== 0) {
    return withContraction(s, runEnd(s, runEnd(s, n1, end, UP), end, LO), end);
  }
  if ((f & UP) !== 0) return withContraction(s, runEnd(s, runEnd(s, i, end, UP), end, LO), end);
  if ((f & N) !== 0) return digitsEnd(s, i, end, 3);
  return otherOrSpaceEnd(s, i, end, true);
}

/** The Split patterns (exactly as they appear in tokenizer.json) that have a scanner. */
const SCANNERS = new Map<string, Scanner>([
  [
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    cl100kScanner(3),
  ],
  [
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    cl100kScanner(1),
  ],
  [
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    o200kScanner,
  ],
]);

/** The scanner of a Split regex pattern (tokenizer.json `pattern.Regex`), if it is one we have. */
export function scannerFor(pattern: string): Scanner | undefined {
  return SCANNERS.get(pattern);
}

/** Every scanner with its pattern (tests compare each against the translated regex). */
export function allScanners(): [string, Scanner][] {
  return [...SCANNERS];
}
