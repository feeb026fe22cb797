/**
 * Split long documents into chunks of at most `maxTokens` tokens at paragraph, then sentence, then word
 * boundaries, so each generator request sees coherent text (WRAP rephrases ~300-token chunks).
 */

export type CountTokens = (s: string) => number;

/** Default token estimate when no tokenizer is given: ~1.3 tokens per whitespace word (GPT-2 BPE on English). */
export function estimateTokens(s: string): number {
  const words = s.match(/\S+/g);
  return words ? Math.ceil(words.length * 1.3) : 0;
}

const SENTENCE_END = /(?<=[.!?]["')\]]?)\s+(?=["'([]?[A-Z0-9])/;

export function chunkText(text: string, maxTokens = 300, count: CountTokens = estimateTokens): string[] {
  const trimmed = text.trim();
  if (trimmed === "") return [];
  if (count(trimmed) <= maxTokens) return [trimmed];
  const units: string[] = [];
  for (const para of trimmed.split(/\n\s*\n/)) {
    const p = para.trim();
    if (p === "") continue;
    if (count(p) <= maxTokens) {
      units.push(p);
      continue;
    }
    for (const sent of p.split(SENTENCE_END)) {
      const s = sent.trim();
      if (s === "") continue;
      if (count(s) <= maxTokens) units.push(s);
      else units.push(...splitWords(s, maxTokens, count));
    }
  }
  // Greedily pack units back together; paragraph breaks survive inside a chunk as blank lines.
  const chunks: string[] = [];
  let cur = "";
  for (const u of units) {
    const joined = cur === "" ? u : `${cur}${sepFor(cur, u, trimmed)}${u}`;
    if (cur !== "" && count(joined) > maxTokens) {
      chunks.push(cur);
      cur = u;
    } else {
      cur = joined;
    }
  }
  if (cur !== "") chunks.push(cur);
  return chunks;
}

function sepFor(prev: string, next: string, whole: string): string {
  // A unit that began a paragraph in the source is rejoined with a blank line, else with a space.
  const at = whole.indexOf(next);
  if (at > 0 && /\n\s*\n\s*$/.test(whole.slice(Math.max(0, at - 8), at))) return "\n\n";
  return prev.endsWith("\n") ? "" : " ";
}

function splitWords(s: string, maxTokens: number, count: CountTokens): string[] {
  const words = s.split(/\s+/);
  const out: string[] = [];
  let cur: string[] = [];
  for (const w of words) {
    cur.push(w);
    if (cur.length > 1 && count(cur.join(" ")) > maxTokens) {
      cur.pop();
      out.push(cur.join(" "));
      cur = [w];
    }
  }
  if (cur.length) out.push(cur.join(" "));
  return out;
}
