/** Deterministic random strings for the tokenizer tests: emoji, CJK, combining marks, lone surrogates. */
export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

const PIECES = [
  "a",
  "Z",
  "é",
  "ß",
  "中",
  "文",
  "日本",
  "한",
  "1",
  "42",
  "٣",
  "Ⅻ",
  "½",
  " ",
  "  ",
  "\n",
  "\r\n",
  "\t",
  "\u00a0",
  "\u3000",
  "\ufeff",
  "\u0085",
  "'",
  "'s",
  "'ll",
  "'T",
  "!",
  "?!",
  "...",
  "-",
  "😀",
  "👍🏽",
  "👨‍👩‍👧",
  "\u0301",
  "e\u0301",
  "\u200d",
  "\ud800",
  "\udfff",
  "x\ud83d",
  "<|endoftext|>",
  "Ġ",
  "ĉ",
  "\u0000",
  "\u007f",
  "\u{10ffff}",
  "\u{1d11e}",
];

export function randomText(rnd: () => number, maxPieces = 24): string {
  const n = Math.floor(rnd() * maxPieces);
  let s = "";
  for (let k = 0; k < n; k++) {
    if (rnd() < 0.15) s += String.fromCodePoint(Math.floor(rnd() * 0x3000));
    else s += PIECES[Math.floor(rnd() * PIECES.length)];
  }
  return s;
}

/** JS strings with lone surrogates cannot survive UTF-8: they become U+FFFD, as in every encoder. */
export function wellFormed(s: string): string {
  return Buffer.from(s, "utf8").toString("utf8");
}
