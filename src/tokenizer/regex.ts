import { SynthmixError } from "../util/errors.js";

/**
 * Translate the Oniguruma/Rust-regex patterns of Hugging Face `Split` pre-tokenizers into JavaScript
 * (flags "gu"). Hand-written because no npm package does this translation on its own (tokenizers.js keeps
 * its rewriter private); it covers the syntax real BPE tokenizers use (the GPT-2, cl100k/Llama-3, Qwen and
 * o200k patterns) and refuses, by name, anything it does not translate exactly:
 * - `\s` / `\S` become `\p{White_Space}` / `\P{White_Space}` (Oniguruma and Rust use the Unicode property;
 *   JavaScript's `\s` adds U+FEFF and misses U+0085).
 * - `\d` is `\p{Nd}`, `\w` the Unicode word class, `.` any character but `\n`.
 * - `(?i:...)` (inline case-insensitivity, not in Node 20's RegExp) is rewritten by folding the ASCII
 *   letters inside it (`s` -> `[sS]`), which is what tokenizers.js does for these patterns.
 */
const WORD = "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}";
const OUT_ESCAPES: Record<string, string> = {
  s: "\\p{White_Space}",
  S: "\\P{White_Space}",
  d: "\\p{Nd}",
  D: "\\P{Nd}",
  w: `[${WORD}]`,
  W: `[^${WORD}]`,
};
const CLASS_ESCAPES: Record<string, string> = {
  s: "\\p{White_Space}",
  S: "\\P{White_Space}",
  d: "\\p{Nd}",
  D: "\\P{Nd}",
  w: WORD,
};
// Escapes that mean the same in both dialects (control characters, escaped punctuation are handled apart).
const SAME = new Set(["n", "r", "t", "f", "v", "0"]);

function unsupported(what: string, pattern: string, source: string): SynthmixError {
  return new SynthmixError(
    "TOKENIZER_UNSUPPORTED",
    `${source}: the Split pre-tokenizer regex ${JSON.stringify(pattern)} uses ${what}, which synthmix does not translate`,
    {
      hint: "use a tokenizer whose Split patterns are plain Unicode-class regexes (GPT-2, Llama-3, Qwen, GPT-4o)",
    },
  );
}

/** Length of a `\p{...}`/`\P{...}` or `\x{..}`/`\u....` escape at i (0 if none). */
function bracedEscapeLength(re: string, i: number): number {
  const m = /^\\(?:[pP]\{[^}]*\}|x\{[0-9A-Fa-f]+\}|x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4})/.exec(
    re.slice(i, i + 64),
  );
  return m ? m[0].length : 0;
}

interface State {
  out: string;
  inClass: boolean;
  foldDepth: number; // > 0 inside (?i:...)
  groups: boolean[]; // per open group: is it a (?i:) group
  lastQuant: boolean; // this token was a quantifier
  prevQuant: boolean; // the previous token was a quantifier (so a following `+` is possessive)
}

function translateEscape(re: string, i: number, st: State, source: string): number {
  const braced = bracedEscapeLength(re, i);
  if (braced) {
    const text = re.slice(i, i + braced);
    st.out += text.startsWith("\\x{") ? `\\u{${text.slice(3, -1)}}` : text;
    return i + braced;
  }
  const c = re[i + 1];
  if (c === undefined) throw unsupported("a trailing backslash", re, source);
  const table = st.inClass ? CLASS_ESCAPES : OUT_ESCAPES;
  if (table[c] !== undefined) st.out += table[c];
  else if (SAME.has(c)) st.out += `\\${c}`;
  else if (/[A-Za-z0-9]/.test(c)) throw unsupported(`the escape \\${c}`, re, source);
  else st.out += `\\${c}`; // escaped punctuation: literal in both dialects
  return i + 2;
}

function translateGroupOpen(re: string, i: number, st: State, source: string): number {
  if (re.startsWith("(?i:", i)) {
    st.groups.push(true);
    st.foldDepth++;
    st.out += "(?:";
    return i + 4;
  }
  const m = /^\(\?(?::|=|!|<=|<!)/.exec(re.slice(i, i + 4));
  if (m) {
    st.groups.push(false);
    st.out += m[0];
    return i + m[0].length;
  }
  if (re[i + 1] === "?") throw unsupported(`the group ${JSON.stringify(re.slice(i, i + 4))}`, re, source);
  st.groups.push(false);
  st.out += "(";
  return i + 1;
}

function translateOutside(re: string, i: number, st: State, source: string): number {
  const c = re[i];
  switch (c) {
    case "\\":
      return translateEscape(re, i, st, source);
    case "[":
      if (st.foldDepth > 0) throw unsupported("a character class inside (?i:...)", re, source);
      st.inClass = true;
      st.out += "[";
      if (re[i + 1] === "^") {
        st.out += "^";
        return i + 2;
      }
      return i + 1;
    case "(":
      return translateGroupOpen(re, i, st, source);
    case ")":
      if (st.groups.pop()) st.foldDepth--;
      st.out += ")";
      return i + 1;
    case ".":
      st.out += "[^\\n]";
      return i + 1;
    case "^":
    case "$":
      throw unsupported(`the anchor ${c}`, re, source);
    default:
      return translateLiteral(re, i, st, source);
  }
}

function translateLiteral(re: string, i: number, st: State, source: string): number {
  const c = re[i];
  if (c === "*" || c === "+" || c === "?") {
    // `x*+`, `x++`, `x?+`, `x{n}+` are possessive in Oniguruma; JavaScript has no such quantifier.
    if (c === "+" && st.prevQuant) throw unsupported("a possessive quantifier", re, source);
    st.out += c;
    st.lastQuant = !(c === "?" && st.prevQuant); // `x*?` is lazy: same in both dialects
    return i + 1;
  }
  const q = c === "{" ? /^\{\d+(?:,\d*)?\}/.exec(re.slice(i, i + 24)) : null;
  if (q) {
    st.out += q[0];
    st.lastQuant = true;
    return i + q[0].length;
  }
  const cp = String.fromCodePoint(re.codePointAt(i)!);
  st.out += st.foldDepth > 0 && /[A-Za-z]/.test(cp) ? `[${cp.toLowerCase()}${cp.toUpperCase()}]` : cp;
  return i + cp.length;
}

function translateInClass(re: string, i: number, st: State, source: string): number {
  const c = re[i];
  if (c === "\\") return translateEscape(re, i, st, source);
  if (c === "]") {
    st.inClass = false;
    st.out += "]";
    return i + 1;
  }
  if (c === "[") throw unsupported("a nested character class", re, source);
  if (c === "&" && re[i + 1] === "&") throw unsupported("class intersection (&&)", re, source);
  const cp = String.fromCodePoint(re.codePointAt(i)!);
  st.out += cp;
  return i + cp.length;
}

/** The JavaScript RegExp (flags "gu") equivalent to an Oniguruma pattern of a tokenizer.json Split. */
export function translateHfRegex(pattern: string, source = "tokenizer.json"): RegExp {
  const st: State = { out: "", inClass: false, foldDepth: 0, groups: [], lastQuant: false, prevQuant: false };
  let i = 0;
  while (i < pattern.length) {
    st.prevQuant = st.lastQuant;
    st.lastQuant = false; // only a quantifier sets it again
    i = st.inClass ? translateInClass(pattern, i, st, source) : translateOutside(pattern, i, st, source);
  }
  try {
    return new RegExp(st.out, "gu");
  } catch (e) {
    throw unsupported(`syntax JavaScript rejects (${(e as Error).message})`, pattern, source);
  }
}

/** A RegExp matching the literal string of a `{"String": ...}` Split pattern. */
export function literalRegex(s: string): RegExp {
  return new RegExp(s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&"), "gu");
}
