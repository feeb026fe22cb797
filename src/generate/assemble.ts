import type { Doc } from "../corpus/types.js";
import type { CountTokens } from "./chunk.js";
import { type CleanupOptions, checkOutput, type RejectReason } from "./cleanup.js";
import type { JournalRec } from "./journal.js";

/**
 * Document assembly: the final journaled answer of each of a document's requests, judged by the
 * acceptance rules of *this* run (so relaxing a rule reuses answers already paid for), joined into one
 * synthetic document with its provenance.
 */
export interface Verdict {
  ok: boolean;
  text: string;
  reason?: RejectReason;
}

export function judge(rec: JournalRec, acceptance: CleanupOptions): Verdict {
  // Journals written before raw answers were kept hold the cleaned text or only the rejection.
  if (rec.raw === undefined) {
    if (rec.text !== undefined) return { ok: true, text: rec.text };
    return { ok: false, text: "", reason: (rec.rejected as RejectReason) ?? "empty" };
  }
  const c = checkOutput(rec.raw, rec.finish_reason, acceptance);
  return c.ok ? { ok: true, text: c.text } : { ok: false, text: c.text, reason: c.reason };
}

/** Should this answer be asked again (bounded by retryEmpty)? Judged on the raw answer, not acceptance. */
export function wantsRetry(rec: JournalRec, retryTruncated: boolean): boolean {
  if (rec.raw === undefined) return false;
  if (rec.raw.trim() === "") return true;
  return retryTruncated && rec.finish_reason === "length";
}

export interface AssembleContext {
  styleName: string;
  generatorName: string;
  generator: { backend: string; model: string; params?: Record<string, unknown> };
  prompt: { style: string; version: string; sha256: string };
  acceptance: CleanupOptions;
  count: CountTokens;
}

export interface Assembled {
  doc?: Doc;
  accepted: number;
  acceptedTokens: number;
  rejected: Partial<Record<RejectReason, number>>;
}

export function assembleDoc(
  source: Doc,
  keys: string[],
  results: JournalRec[],
  extra: Record<string, unknown> | undefined,
  ctx: AssembleContext,
): Assembled {
  const verdicts = results.map((r) => judge(r, ctx.acceptance));
  const rejected: Partial<Record<RejectReason, number>> = {};
  for (const v of verdicts) if (!v.ok && v.reason) rejected[v.reason] = (rejected[v.reason] ?? 0) + 1;
  const kept = verdicts.filter((v) => v.ok);
  const acceptedTokens = kept.reduce((a, v) => a + ctx.count(v.text), 0);
  if (kept.length === 0) return { accepted: 0, acceptedTokens, rejected };
  const usage = { prompt_tokens: 0, completion_tokens: 0 };
  let latency = 0;
  for (const r of results) {
    usage.prompt_tokens += r.usage?.prompt_tokens ?? 0;
    usage.completion_tokens += r.usage?.completion_tokens ?? 0;
    latency += r.latency_ms ?? 0;
  }
  const doc: Doc = {
    id: `${source.id}#${ctx.styleName}@${ctx.generatorName}`,
    text: kept.map((v) => v.text).join("\n\n"),
    source: ctx.styleName,
    meta: {
      ...(source.meta?.domain ? { domain: source.meta.domain } : {}),
      parent: source.id,
      generator: ctx.generator,
      prompt: ctx.prompt,
      usage,
      latency_ms: Math.round(latency),
      chunks: keys.length,
      rejected_chunks: keys.length - kept.length,
      keys,
      ...extra,
    },
  };
  return { doc, accepted: kept.length, acceptedTokens, rejected };
}
