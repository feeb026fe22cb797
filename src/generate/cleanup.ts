/**
 * Output cleanup and rejection. Models wrap rephrasings in chat boilerplate ("Sure! Here is ...") and
 * sometimes refuse or get cut off; such outputs would teach the trained model the boilerplate, so we
 * strip what we can and reject (with a counted reason) what we cannot.
 */

export type RejectReason =
  | "empty"
  | "truncated"
  | "refusal"
  | "no_qa_pair"
  | "too_short"
  | "too_long"
  | "request_failed";

export interface CleanupOptions {
  style: string;
  stripMarkdown?: boolean;
  minTokens?: number;
  maxTokens?: number;
  countTokens?: (s: string) => number;
  /**
   * For weak generators (the offline demo's tiny model): keep outputs cut off at max_tokens (trimmed to
   * their last full sentence) and skip the QA-pair check. Refusal, empty and length bounds still apply.
   */
  lenient?: boolean;
}

const PREAMBLE = /^\s*(?:here(?:'s| is| are)|below is|the following is)\b[^\n:]{0,160}:[ \t]*\n?\s*/i;
const LABEL =
  /^\s*(?:(?:paraphrased|rephrased|rewritten)(?: version| text| paragraph)?|paraphrase|rephrasing)\s*:\s*/i;
const HAPPY = /^\s*i(?:'d| would| am|'m) (?:be )?(?:happy|glad) to\b[^\n.:!]{0,160}[.:!]\s*/i;
const LEAD_AFFIRM = /^\s*(?:sure|certainly|of course|absolutely)[!.,]\s+/i;
const TRAILER =
  /\n+\s*(?:i hope (?:this|that) helps|let me know if|feel free to|is there anything else)[^\n]*\s*$/i;
const REFUSAL =
  /^\s*(?:i(?:'m| am) (?:sorry|unable|not able)|i can(?:'|no)t (?:help|assist|do|provide|comply)|as an ai\b|i apologi[sz]e,? but)/i;

export function stripMarkdown(s: string): string {
  return s
    .replace(/^```[^\n]*\n([\s\S]*?)\n```\s*$/gm, "$1")
    .replace(/^#{1,6}\s+/gm, "")
    .replace(/(\*\*|__)(.+?)\1/g, "$2")
    .replace(/(^|[^*])\*(?!\s)([^*\n]+?)\*/g, "$1$2")
    .replace(/^\s*[-*+]\s+/gm, "")
    .replace(/\[([^\]]+)\]\([^)]+\)/g, "$1")
    .replace(/`([^`]+)`/g, "$1");
}

export function cleanOutput(raw: string, opts: Pick<CleanupOptions, "stripMarkdown"> = {}): string {
  let s = raw.replace(/\r\n/g, "\n").trim();
  s = s.replace(LEAD_AFFIRM, "");
  s = s.replace(HAPPY, "");
  s = s.replace(PREAMBLE, "");
  s = s.replace(LABEL, "");
  s = s.replace(TRAILER, "");
  if (opts.stripMarkdown) s = stripMarkdown(s);
  s = s.trim();
  const q = s.match(/^(["'“”«])([\s\S]*)(["'“”»])$/);
  if (q && !q[2].includes(q[1] === "“" ? "”" : q[1])) s = q[2].trim();
  return s;
}

const QA_PAIR =
  /(?:^|\n)\s*(?:\*\*)?(?:Q(?:uestion)?\s*\d*\s*[:.])[\s\S]+?\n\s*(?:\*\*)?(?:A(?:nswer)?\s*\d*\s*[:.])\s*\S/i;

/** Clean `raw` and decide whether to keep it; `finishReason` "length" means the model was cut off. */
export function checkOutput(
  raw: string,
  finishReason: string | undefined,
  opts: CleanupOptions,
): { ok: true; text: string } | { ok: false; reason: RejectReason; text: string } {
  let text = cleanOutput(raw, opts);
  if (finishReason === "length") {
    if (!opts.lenient) return { ok: false, reason: "truncated", text };
    const end = Math.max(
      text.lastIndexOf(". "),
      text.lastIndexOf(".\n"),
      text.lastIndexOf("? "),
      text.lastIndexOf("! "),
    );
    if (end > text.length / 2) text = text.slice(0, end + 1);
  }
  if (text === "") return { ok: false, reason: "empty", text };
  if (REFUSAL.test(text)) return { ok: false, reason: "refusal", text };
  if (opts.style === "qa" && !opts.lenient && !QA_PAIR.test(text))
    return { ok: false, reason: "no_qa_pair", text };
  const n = opts.countTokens ? opts.countTokens(text) : undefined;
  if (n !== undefined && opts.minTokens !== undefined && n < opts.minTokens) {
    return { ok: false, reason: "too_short", text };
  }
  if (n !== undefined && opts.maxTokens !== undefined && n > opts.maxTokens) {
    return { ok: false, reason: "too_long", text };
  }
  return { ok: true, text };
}
