import { z } from "zod";
import { stableHash } from "../util/hash.js";

/**
 * Every generation default, held once. The library (`runGeneration`), the CLI (`synthmix generate`)
 * and the study config (`generate:` section) all parse through this schema, so a default cannot drift
 * between them again (it did: temperature 0.7 vs 0.8, max_tokens 1024 vs 400).
 *
 * - temperature 0.7: the common setting for faithful rephrasing (diverse enough not to copy, low enough
 *   to keep the facts); the study's former 0.8 only existed for the tiny demo model, which sets its own.
 * - max_tokens 1024: a ceiling, not a target. A 300-token chunk rephrased as QA pairs or a textbook
 *   section often needs 400-700 tokens; with 400 such answers were cut off and rejected as truncated
 *   after being paid for, while a higher ceiling costs nothing when the model stops on its own.
 */
export const SamplingSchema = z.strictObject({
  temperature: z.number().min(0).default(0.7),
  top_p: z.number().gt(0).max(1).optional(),
  max_tokens: z.number().int().positive().default(1024),
  /** Sent to the server (vLLM/SGLang honour it) so a rerun asks for the same samples. */
  seed: z.number().int().optional(),
});

export const GenerationSettingsSchema = z.strictObject({
  /** Seed for source sampling, keywords and audiences (the sampling seed defaults to it). */
  seed: z.number().int().default(0),
  params: SamplingSchema.default(SamplingSchema.parse({})),
  /** Chunk size for source-based styles, in tokens. */
  chunkTokens: z.number().int().positive().default(300),
  /** Keywords per TXBK prompt. */
  keywords: z.number().int().positive().default(5),
  audiences: z.array(z.string()).optional(),
  // --- acceptance: applied when documents are assembled from journaled raw answers ---
  stripMarkdown: z.boolean().optional(),
  /** Accept truncated outputs and skip the QA-pair check (weak demo generators). */
  lenient: z.boolean().default(false),
  minOutputTokens: z.number().int().min(0).optional(),
  maxOutputTokens: z.number().int().positive().optional(),
  /** Stop when, after 50 completed requests, fewer than this share were accepted. */
  minAcceptRate: z.number().min(0).max(1).default(0.02),
  // --- request policy ---
  /** Failed attempts per request beyond the first (timeouts, 5xx, malformed answers). 429 is not counted. */
  retries: z.number().int().min(0).default(6),
  /** Extra requests for an answer that came back empty (and, with retryTruncated, cut off). */
  retryEmpty: z.number().int().min(0).default(3),
  retryTruncated: z.boolean().default(false),
  backoffBaseMs: z.number().positive().default(500),
  backoffMaxMs: z.number().positive().default(30_000),
  timeoutMs: z.number().positive().default(120_000),
  /** Failed attempts in a row after which an endpoint's breaker opens (it then cools down and probes). */
  breakAfter: z.number().int().positive().default(10),
  /** Give an endpoint up only after it has had no success for this long (default 5 minutes). */
  stallTimeoutMs: z
    .number()
    .positive()
    .default(5 * 60_000),
  /** llama.cpp threads for gguf generators. */
  threads: z.number().int().positive().default(2),
});
export type GenerationSettings = z.infer<typeof GenerationSettingsSchema>;
export type GenerationSettingsInput = z.input<typeof GenerationSettingsSchema>;

/**
 * Settings that do not change what a request returns, so they are left out of the output folder's
 * identity (as distilabel leaves runtime attributes out of a step's signature). Everything else is
 * in: a new setting is pinned by default, which is the safe side. Acceptance settings are out because
 * acceptance is applied at assembly from the journaled raw answers: relaxing it reuses what was paid for.
 */
export const IDENTITY_EXCLUDED = new Set<string>([
  "stripMarkdown",
  "lenient",
  "minOutputTokens",
  "maxOutputTokens",
  "minAcceptRate",
  "retries",
  "retryEmpty",
  "retryTruncated",
  "backoffBaseMs",
  "backoffMaxMs",
  "timeoutMs",
  "breakAfter",
  "stallTimeoutMs",
  "threads",
]);

/** The settings that pin an output folder: everything parsed minus IDENTITY_EXCLUDED. */
export function settingsIdentity(s: GenerationSettings): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s)) if (!IDENTITY_EXCLUDED.has(k) && v !== undefined) out[k] = v;
  return out;
}

export function identityHash(identity: unknown): string {
  return stableHash(identity, 16);
}

/** `a` vs `b` as "field: old -> new" lines (dotted paths), for the refusal message. */
export function diffIdentity(a: unknown, b: unknown, path = ""): string[] {
  if (JSON.stringify(a) === JSON.stringify(b)) return [];
  const isObj = (x: unknown): x is Record<string, unknown> =>
    typeof x === "object" && x !== null && !Array.isArray(x);
  if (!isObj(a) || !isObj(b)) return [`${path || "value"}: ${JSON.stringify(a)} -> ${JSON.stringify(b)}`];
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return keys.flatMap((k) => diffIdentity(a[k], b[k], path ? `${path}.${k}` : k));
}
