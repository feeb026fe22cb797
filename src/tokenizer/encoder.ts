import type { BpeModel } from "./bpe.js";
import {
  compileNormalizerOf,
  compilePreTokenizer,
  type Emit,
  type Normalize,
  type PipelineSpec,
  type PreTokenize,
} from "./pipeline.js";

/** A token that is matched as a whole before BPE, e.g. "<|endoftext|>", with the tokenizer.json flags. */
export interface AddedToken {
  id: number;
  content: string;
  special: boolean;
  /** Matched in the normalized text (true) or the raw text (false). Default: !special, as in HF. */
  normalized?: boolean;
  /** Also swallow the whitespace on the left / right of the token. */
  lstrip?: boolean;
  rstrip?: boolean;
  /** Only match when not inside a word. */
  single_word?: boolean;
}

// Rust's `\w` (the word class tokenizers uses for single_word) and char::is_whitespace.
const WORD_CHAR = /[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]/u;
const SPACE_CHAR = /\p{White_Space}/u;

/** Leftmost-longest matcher of a set of added tokens (the aho-corasick LeftmostLongest of HF tokenizers). */
class AddedMatcher {
  private readonly re: RegExp;
  private readonly byContent = new Map<string, AddedToken>();

  constructor(tokens: AddedToken[]) {
    for (const t of tokens) if (!this.byContent.has(t.content)) this.byContent.set(t.content, t);
    const contents = [...this.byContent.keys()].sort((x, y) => y.length - x.length);
    this.re = new RegExp(contents.map((c) => c.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|"), "gu");
  }

  /** Call `text(from, to)` for the ordinary stretches and `token(id)` for each match, in order. */
  split(s: string, text: (from: number, to: number) => void, token: (id: number) => void): void {
    const re = this.re;
    re.lastIndex = 0;
    let last = 0;
    for (let m = re.exec(s); m !== null; m = re.exec(s)) {
      const t = this.byContent.get(m[0])!;
      let a = m.index;
      let b = a + m[0].length;
      if (t.single_word && !singleWordOk(s, a, b)) {
        re.lastIndex = a + 1;
        continue;
      }
      if (t.lstrip) while (a > last && SPACE_CHAR.test(s[a - 1])) a--;
      if (t.rstrip) while (b < s.length && SPACE_CHAR.test(s[b])) b++;
      if (a > last) text(last, a);
      token(t.id);
      last = b;
      re.lastIndex = b;
    }
    if (last < s.length) text(last, s.length);
  }
}

function singleWordOk(s: string, a: number, b: number): boolean {
  if (a > 0 && WORD_CHAR.test(String.fromCodePoint(s.codePointAt(a - 1)!))) return false;
  return !(b < s.length && WORD_CHAR.test(String.fromCodePoint(s.codePointAt(b)!)));
}

function matcherOf(tokens: AddedToken[]): AddedMatcher | null {
  return tokens.length > 0 ? new AddedMatcher(tokens) : null;
}

/**
 * The full encode of a tokenizer.json: added tokens matched in the raw text, then the normalizer, then
 * added tokens matched in the normalized text, then the pre-tokenizer, then BPE on each pre-token. Shared
 * by the Tokenizer and the worker threads, so both give the same ids.
 */
export class Encoder {
  private readonly normalize: Normalize | null;
  private readonly preTokenize: PreTokenize | null;
  /** [without special tokens, with]: raw-text and normalized-text matchers. */
  private readonly raw: [AddedMatcher | null, AddedMatcher | null];
  private readonly norm: [AddedMatcher | null, AddedMatcher | null];
  private out: number[] = [];
  private readonly emit: Emit = (s, i, j) => this.model.encodeRange(s, i, j, this.out);

  constructor(
    readonly model: BpeModel,
    spec: PipelineSpec,
    added: readonly AddedToken[],
    source = "tokenizer.json",
  ) {
    this.normalize = compileNormalizerOf(spec, source);
    this.preTokenize = compilePreTokenizer(spec.pre_tokenizer, source);
    if (spec.ignoreMerges) model.setIgnoreMerges(new Set(added.map((t) => t.id)));
    const isNorm = (t: AddedToken) => t.normalized ?? !t.special;
    // Without specials (plain `encode`): non-special added tokens still match, as with HF's
    // split_special_tokens=true; special ones are ordinary text.
    const plain = added.filter((t) => !t.special);
    this.raw = [matcherOf(plain.filter((t) => !isNorm(t))), matcherOf(added.filter((t) => !isNorm(t)))];
    this.norm = [matcherOf(plain.filter(isNorm)), matcherOf(added.filter(isNorm))];
  }

  /** Append the ids of `text` to `out`; `special` also recognises special tokens such as "<|endoftext|>". */
  encodeInto(text: string, out: number[], special: boolean): void {
    const k = special ? 1 : 0;
    const raw = this.raw[k];
    if (raw === null) {
      this.encodeNormalizing(text, out, k);
      return;
    }
    raw.split(
      text,
      (a, b) => this.encodeNormalizing(text.slice(a, b), out, k),
      (id) => out.push(id),
    );
  }

  private encodeNormalizing(text: string, out: number[], k: number): void {
    const s = this.normalize ? this.normalize(text) : text;
    const norm = this.norm[k];
    if (norm === null) {
      this.encodeOrdinary(s, out);
      return;
    }
    norm.split(
      s,
      (a, b) => this.encodeOrdinary(s.slice(a, b), out),
      (id) => out.push(id),
    );
  }

  /** Pre-tokenize and BPE a normalized stretch with no added tokens in it. */
  private encodeOrdinary(s: string, out: number[]): void {
    if (s.length === 0) return;
    if (this.preTokenize === null) {
      this.model.encodeInto(s, out);
      return;
    }
    const saved = this.out;
    this.out = out;
    try {
      this.preTokenize(s, this.emit);
    } finally {
      this.out = saved;
    }
  }
}
