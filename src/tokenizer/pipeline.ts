import { SynthmixError } from "../util/errors.js";
import { pieceEnd } from "./pretokenize.js";
import { literalRegex, translateHfRegex } from "./regex.js";
import { type Scanner, scannerFor } from "./scanners.js";

/**
 * The parts of a Hugging Face tokenizer.json around the BPE model that change the ids: normalizer,
 * pre-tokenizer, `model.ignore_merges` and the added tokens' flags. Kept as the file's own JSON so a
 * loaded tokenizer saves (and hashes) with its pipeline, and so worker threads rebuild the same encoder.
 * Supported: normalizers NFC/NFD/NFKC/NFKD/Lowercase/Sequence; pre-tokenizers Sequence, Split (Regex or
 * String pattern, all five behaviours, invert) and ByteLevel (add_prefix_space, use_regex); decoders
 * ByteLevel (or none). Everything else is refused with the component's name: a tokenizer we would encode
 * differently from its own library must not load silently.
 */
export interface PipelineSpec {
  normalizer: unknown;
  pre_tokenizer: unknown;
  ignoreMerges: boolean;
}

/** The pipeline of GPT-2 (and of every tokenizer `synthmix tokenizer train` writes). */
export const GPT2_PIPELINE: PipelineSpec = {
  normalizer: null,
  pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
  ignoreMerges: false,
};

type Json = Record<string, unknown>;

export function unsupportedComponent(what: string, source: string): SynthmixError {
  return new SynthmixError("TOKENIZER_UNSUPPORTED", `${source}: ${what} is not supported`, {
    hint: "synthmix encodes byte-level BPE tokenizers (GPT-2, Llama-3, Qwen, GPT-4o style); WordPiece, Unigram and SentencePiece-style pipelines are refused rather than encoded differently from their own library",
  });
}

// ---------- normalizers ----------

export type Normalize = (s: string) => string;

function compileNormalizer(n: unknown, source: string): Normalize | null {
  if (n === null || n === undefined) return null;
  const j = n as Json;
  switch (j.type) {
    case "NFC":
    case "NFD":
    case "NFKC":
    case "NFKD": {
      const form = j.type;
      // ASCII is invariant under every normalization form; skipping ICU for it keeps prose fast.
      return (s) => (isAscii(s) ? s : s.normalize(form));
    }
    case "Lowercase":
      return (s) => s.toLowerCase();
    case "Sequence": {
      const parts = ((j.normalizers as unknown[]) ?? []).map((x) => compileNormalizer(x, source));
      const fs = parts.filter((f): f is Normalize => f !== null);
      if (fs.length === 0) return null;
      return (s) => {
        for (const f of fs) s = f(s);
        return s;
      };
    }
    default:
      throw unsupportedComponent(`normalizer ${JSON.stringify(j.type)}`, source);
  }
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 127) return false;
  return true;
}

// ---------- pre-tokenizers ----------

/** Receives the final pre-tokens as ranges of a string (no substring is made unless a step needs one). */
export type Emit = (s: string, i: number, j: number) => void;
type Step = (s: string, i: number, j: number, next: Emit) => void;

type Behavior = "Removed" | "Isolated" | "MergedWithPrevious" | "MergedWithNext" | "Contiguous";
const BEHAVIORS = new Set(["Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"]);

/** Spans of one regex pass: start, end, and whether the span is a delimiter (after `invert`). */
class Spans {
  a: number[] = [];
  push(i: number, j: number, delim: boolean): void {
    this.a.push(i, j, delim ? 1 : 0);
  }
}

function regexSpans(re: RegExp, s: string, invert: boolean): Spans {
  const sp = new Spans();
  re.lastIndex = 0;
  let last = 0;
  for (let m = re.exec(s); m !== null; m = re.exec(s)) {
    const a = m.index;
    const b = a + m[0].length;
    if (b === a) {
      re.lastIndex++;
      continue;
    }
    if (a > last) sp.push(last, a, invert);
    sp.push(a, b, !invert);
    last = b;
  }
  if (last < s.length) sp.push(last, s.length, invert);
  return sp;
}

/** Apply a split behaviour to the spans (the Rust tokenizers `SplitDelimiterBehavior` rules). */
function applyBehavior(sp: Spans, behavior: Behavior): number[] {
  if (behavior === "MergedWithNext") return mergedWithNext(sp.a);
  const a = sp.a;
  const out: number[] = [];
  let prevDelim = false;
  for (let k = 0; k < a.length; k += 3) {
    const delim = a[k + 2] === 1;
    if (joinsPrevious(behavior, delim, prevDelim) && out.length > 0) out[out.length - 1] = a[k + 1];
    else if (behavior !== "Removed" || !delim) out.push(a[k], a[k + 1]);
    prevDelim = delim;
  }
  return out;
}

/** Whether a span extends the piece before it: a delimiter after a non-delimiter (MergedWithPrevious), or a span of the same kind as the previous (Contiguous). */
function joinsPrevious(behavior: Behavior, delim: boolean, prevDelim: boolean): boolean {
  if (behavior === "MergedWithPrevious") return delim && !prevDelim;
  if (behavior === "Contiguous") return delim === prevDelim;
  return false;
}

/** MergedWithNext: a delimiter starts the piece after it (walked from the back, pairs pushed as end, start). */
function mergedWithNext(a: number[]): number[] {
  const out: number[] = [];
  let prevDelim = false;
  for (let k = a.length - 3; k >= 0; k -= 3) {
    const delim = a[k + 2] === 1;
    if (delim && !prevDelim && out.length > 0) out[out.length - 1] = a[k];
    else out.push(a[k + 1], a[k]);
    prevDelim = delim;
  }
  out.reverse();
  return out;
}

function splitStep(j: Json, source: string): Step {
  const pattern = j.pattern as Json | undefined;
  let re: RegExp;
  if (pattern && typeof pattern.Regex === "string") re = translateHfRegex(pattern.Regex, source);
  else if (pattern && typeof pattern.String === "string") re = literalRegex(pattern.String);
  else throw unsupportedComponent(`Split pattern ${JSON.stringify(pattern)}`, source);
  const behavior = String(j.behavior ?? "Isolated") as Behavior;
  if (!BEHAVIORS.has(behavior))
    throw unsupportedComponent(`Split behavior ${JSON.stringify(behavior)}`, source);
  const invert = j.invert === true;
  // A known pattern (cl100k/Llama-3, Qwen, o200k) matches at every position, so its matches tile the
  // text: Isolated keeps them (there are no gaps), inverted Removed keeps them too (and drops no gap).
  const scanner = typeof pattern.Regex === "string" ? scannerFor(pattern.Regex) : undefined;
  if (scanner && ((behavior === "Isolated" && !invert) || (behavior === "Removed" && invert))) {
    return scannerStep(scanner);
  }
  // The common case (Isolated, not inverted): every match and every gap is a piece, streamed directly.
  if (behavior === "Isolated" && !invert) {
    return (s, i, e, next) => {
      if (i !== 0 || e !== s.length) {
        s = s.slice(i, e);
      }
      re.lastIndex = 0;
      let last = 0;
      for (let m = re.exec(s); m !== null; m = re.exec(s)) {
        const a = m.index;
        const len = m[0].length;
        if (len === 0) {
          re.lastIndex++;
          continue;
        }
        if (a > last) next(s, last, a);
        next(s, a, a + len);
        last = a + len;
      }
      if (last < s.length) next(s, last, s.length);
    };
  }
  // GPT-4o's form (Removed, inverted): the matches are the pieces and the gaps are dropped.
  if (behavior === "Removed" && invert) {
    return (s, i, e, next) => {
      if (i !== 0 || e !== s.length) s = s.slice(i, e);
      re.lastIndex = 0;
      for (let m = re.exec(s); m !== null; m = re.exec(s)) {
        const len = m[0].length;
        if (len === 0) {
          re.lastIndex++;
          continue;
        }
        next(s, m.index, m.index + len);
      }
    };
  }
  return (s, i, e, next) => {
    if (i !== 0 || e !== s.length) s = s.slice(i, e);
    const r = applyBehavior(regexSpans(re, s, invert), behavior);
    for (let k = 0; k < r.length; k += 2) if (r[k + 1] > r[k]) next(s, r[k], r[k + 1]);
  };
}

/** Pieces from a hand-written scanner (src/tokenizer/scanners.ts): each ends where the regex match would. */
function scannerStep(scan: Scanner): Step {
  return (s, i, e, next) => {
    while (i < e) {
      const k = scan(s, i, e);
      next(s, i, k);
      i = k;
    }
  };
}

function byteLevelStep(j: Json): Step {
  const prefix = j.add_prefix_space === true;
  const useRegex = j.use_regex !== false;
  const split = (s: string, i: number, e: number, next: Emit) => {
    if (!useRegex) {
      next(s, i, e);
      return;
    }
    // The GPT-2 scanner reads to the end of its string (its `\s+(?!\S)` looks ahead), so a range gets its own.
    if (i !== 0 || e !== s.length) {
      s = s.slice(i, e);
      i = 0;
      e = s.length;
    }
    while (i < e) {
      const k = pieceEnd(s, i);
      next(s, i, k);
      i = k;
    }
  };
  if (!prefix) return split;
  return (s, i, e, next) => {
    if (s.charCodeAt(i) !== 32) {
      const t = ` ${s.slice(i, e)}`;
      split(t, 0, t.length, next);
    } else split(s, i, e, next);
  };
}

interface NamedStep {
  type: string;
  run: Step;
}

function compileSteps(p: unknown, source: string, steps: NamedStep[]): void {
  const j = p as Json;
  switch (j?.type) {
    case "Sequence":
      for (const x of (j.pretokenizers as unknown[]) ?? []) compileSteps(x, source, steps);
      return;
    case "Split":
      steps.push({ type: "Split", run: splitStep(j, source) });
      return;
    case "ByteLevel":
      steps.push({ type: "ByteLevel", run: byteLevelStep(j) });
      return;
    default:
      throw unsupportedComponent(`pre_tokenizer ${JSON.stringify(j?.type ?? null)}`, source);
  }
}

export type PreTokenize = (s: string, emit: Emit) => void;

/** A function splitting a (normalized) string into pre-tokens, or null for the GPT-2 fast path. */
export function compilePreTokenizer(p: unknown, source: string): PreTokenize | null {
  const steps: NamedStep[] = [];
  compileSteps(p, source, steps);
  const at = steps.findIndex((x) => x.type === "ByteLevel");
  if (at < 0) {
    throw unsupportedComponent(
      "a pre_tokenizer without a ByteLevel step (the vocabulary would not be byte-level)",
      source,
    );
  }
  if (at !== steps.length - 1) throw unsupportedComponent("a pre_tokenizer step after ByteLevel", source);
  const j = p as Json;
  if (j.type === "ByteLevel" && j.add_prefix_space !== true && j.use_regex !== false) return null;
  // Chain the steps once, back to front: step k hands its pieces to step k+1, the last to `sink`.
  let sink: Emit = () => {};
  let head: Emit = (t, i, e) => sink(t, i, e);
  for (let k = steps.length - 1; k >= 0; k--) {
    const run = steps[k].run;
    const after = head;
    head = (t, i, e) => run(t, i, e, after);
  }
  return (s, emit) => {
    sink = emit;
    head(s, 0, s.length);
  };
}

// ---------- the rest of the file ----------

export function compileNormalizerOf(spec: PipelineSpec, source: string): Normalize | null {
  return compileNormalizer(spec.normalizer, source);
}

/** Refuse decoders and model options whose output we would not reproduce. */
export function checkDecoderAndModel(json: Json, source: string): void {
  const d = json.decoder as Json | null | undefined;
  const okDecoder = (x: Json | null | undefined): boolean =>
    x === null ||
    x === undefined ||
    x.type === "ByteLevel" ||
    (x.type === "Sequence" && ((x.decoders as Json[]) ?? []).every(okDecoder));
  if (!okDecoder(d)) throw unsupportedComponent(`decoder ${JSON.stringify(d?.type)}`, source);
  const m = (json.model ?? {}) as Json;
  if (m.dropout !== null && m.dropout !== undefined && m.dropout !== 0) {
    throw unsupportedComponent(`BPE dropout ${m.dropout} (random merges)`, source);
  }
  if (m.byte_fallback === true) throw unsupportedComponent("BPE byte_fallback (SentencePiece-style)", source);
  for (const k of ["continuing_subword_prefix", "end_of_word_suffix"]) {
    if (m[k] !== null && m[k] !== undefined && m[k] !== "") {
      throw unsupportedComponent(`BPE ${k} ${JSON.stringify(m[k])}`, source);
    }
  }
}
