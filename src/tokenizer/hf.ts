import { SynthmixError } from "../util/errors.js";
import type { BpeModelData } from "./bpe.js";
import { bytesToTokenString, tokenStringToBytes, utf8 } from "./bytes.js";
import type { AddedToken } from "./encoder.js";
import { checkDecoderAndModel, GPT2_PIPELINE, type PipelineSpec } from "./pipeline.js";

export type { AddedToken } from "./encoder.js";

export interface TokenizerData extends BpeModelData {
  added: AddedToken[];
  /** Normalizer, pre-tokenizer and ignore_merges; absent means GPT-2's. */
  pipeline?: PipelineSpec;
  /** The file's decoder and post_processor, written back as they were (they do not change the ids). */
  decoder?: unknown;
  postProcessor?: unknown;
}

/** One entry of tokenizer.json's `added_tokens`. */
export interface HfAddedToken {
  id: number;
  content: string;
  special?: boolean;
  normalized?: boolean;
  lstrip?: boolean;
  rstrip?: boolean;
  single_word?: boolean;
}

/**
 * A Hugging Face tokenizer.json as synthmix reads and writes it (byte-level BPE): the one type of the file
 * for every stage (src/formats/gguf.ts reads it for the GGUF vocabulary). Fields synthmix does not
 * interpret (truncation, padding, ...) pass through as unknown; `fromHfJson` checks the rest.
 */
export interface HfTokenizerJson {
  version?: string;
  added_tokens?: HfAddedToken[];
  normalizer?: unknown;
  pre_tokenizer?: unknown;
  decoder?: unknown;
  post_processor?: unknown;
  model?: {
    type?: string;
    vocab?: Record<string, number>;
    /** "a b" strings (highest priority first); `[a, b]` pairs in newer files. */
    merges?: (string | [string, string])[];
    ignore_merges?: boolean;
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

/** The added token with only the flags that differ from the defaults (so GPT-2's stays compact). */
function addedOf(t: HfAddedToken): AddedToken {
  const special = t.special ?? false;
  const a: AddedToken = { id: t.id, content: t.content, special };
  if (t.normalized !== undefined && t.normalized !== !special) a.normalized = t.normalized;
  if (t.lstrip) a.lstrip = true;
  if (t.rstrip) a.rstrip = true;
  if (t.single_word) a.single_word = true;
  return a;
}

function formatError(what: string, source: string): SynthmixError {
  return new SynthmixError("TOKENIZER_FORMAT", `${source}: ${what}`, {
    hint: 'expected a Hugging Face tokenizer.json with a byte-level BPE model (model.type "BPE", vocab, merges)',
  });
}

type HfModel = NonNullable<HfTokenizerJson["model"]>;

/** The model object, checked to be a byte-level BPE with a vocab. */
function bpeModelOf(j: HfTokenizerJson, source: string): HfModel & { vocab: Record<string, number> } {
  const model = j?.model;
  if (!model || typeof model !== "object") throw formatError('no "model" object', source);
  if (model.type !== undefined && model.type !== "BPE") {
    throw formatError(`model.type is "${model.type}", only "BPE" is supported`, source);
  }
  if (!model.vocab || typeof model.vocab !== "object") throw formatError("model.vocab is missing", source);
  return model as HfModel & { vocab: Record<string, number> };
}

/** The bytes of every id (added tokens as their UTF-8 text, holes empty) and the string -> id map. */
function tokensOf(
  vocab: Record<string, number>,
  added: AddedToken[],
  source: string,
): { tokens: Uint8Array[]; ids: Map<string, number> } {
  const addedById = new Map(added.map((t) => [t.id, t]));
  let size = 0;
  for (const id of Object.values(vocab)) size = Math.max(size, id + 1);
  for (const t of added) size = Math.max(size, t.id + 1);
  const tokens = new Array<Uint8Array>(size);
  const ids = new Map<string, number>();
  for (const [str, id] of Object.entries(vocab)) {
    if (!Number.isInteger(id) || id < 0)
      throw formatError(`bad id ${id} for token ${JSON.stringify(str)}`, source);
    ids.set(str, id);
    const a = addedById.get(id);
    const bytes = a ? utf8(a.content) : tokenStringToBytes(str);
    if (!bytes) throw formatError(`token ${JSON.stringify(str)} is not a byte-level token`, source);
    tokens[id] = bytes;
  }
  for (const t of added) if (!tokens[t.id]) tokens[t.id] = utf8(t.content);
  for (let id = 0; id < size; id++) {
    // Holes in the id range decode to nothing; they never come out of encode.
    if (!tokens[id]) tokens[id] = new Uint8Array(0);
  }
  return { tokens, ids };
}

/** The two halves of merge `r` ("a b" or ["a", "b"]). */
function mergeHalves(m: string | [string, string], r: number, source: string): [string, string] {
  if (Array.isArray(m)) return m;
  const sp = m.indexOf(" ");
  if (sp < 0) throw formatError(`merge ${r} ${JSON.stringify(m)} has no space`, source);
  return [m.slice(0, sp), m.slice(sp + 1)];
}

/** Merges as id pairs (merges[2r], merges[2r+1]) -> mergeIds[r], in priority order. */
function mergesOf(
  list: (string | [string, string])[],
  ids: Map<string, number>,
  source: string,
): { merges: Int32Array; mergeIds: Int32Array } {
  const merges = new Int32Array(list.length * 2);
  const mergeIds = new Int32Array(list.length);
  for (let r = 0; r < list.length; r++) {
    const [a, b] = mergeHalves(list[r], r, source);
    const ia = ids.get(a);
    const ib = ids.get(b);
    const ic = ids.get(a + b);
    if (ia === undefined || ib === undefined || ic === undefined) {
      throw formatError(`merge ${r} ${JSON.stringify(list[r])} names a token missing from the vocab`, source);
    }
    merges[2 * r] = ia;
    merges[2 * r + 1] = ib;
    mergeIds[r] = ic;
  }
  return { merges, mergeIds };
}

/** Read the model of a Hugging Face tokenizer.json (byte-level BPE). */
export function fromHfJson(json: unknown, source = "tokenizer.json"): TokenizerData {
  const j = json as HfTokenizerJson;
  const model = bpeModelOf(j, source);
  checkDecoderAndModel(j as Record<string, unknown>, source);
  const added = (j.added_tokens ?? []).map(addedOf);
  const { tokens, ids } = tokensOf(model.vocab, added, source);
  const { merges, mergeIds } = mergesOf(model.merges ?? [], ids, source);
  const pipeline: PipelineSpec = {
    normalizer: j.normalizer ?? null,
    // A file without the key at all (hand-made minimal files) gets GPT-2's, the layout synthmix writes;
    // an explicit null is taken at its word (no ByteLevel step: refused when the encoder is built).
    pre_tokenizer: j.pre_tokenizer === undefined ? GPT2_PIPELINE.pre_tokenizer : j.pre_tokenizer,
    ignoreMerges: model.ignore_merges === true,
  };
  return { tokens, merges, mergeIds, added, pipeline, decoder: j.decoder, postProcessor: j.post_processor };
}

/** The Hugging Face tokenizer.json of a byte-level BPE (the layout GPT-2's tokenizer.json uses). */
export function toHfJson(data: TokenizerData): HfTokenizerJson {
  const addedById = new Map(data.added.map((t) => [t.id, t]));
  // A prototype-less object: tokens such as "__proto__" or "constructor" (common in code) must be plain keys.
  const vocab: Record<string, number> = Object.create(null);
  const strs = new Array<string>(data.tokens.length);
  for (let id = 0; id < data.tokens.length; id++) {
    const a = addedById.get(id);
    strs[id] = a ? a.content : bytesToTokenString(data.tokens[id]);
    if (!Object.hasOwn(vocab, strs[id])) vocab[strs[id]] = id;
  }
  const merges: string[] = [];
  for (let r = 0; r < data.mergeIds.length; r++) {
    merges.push(`${strs[data.merges[2 * r]]} ${strs[data.merges[2 * r + 1]]}`);
  }
  const byteLevel = { add_prefix_space: false, trim_offsets: true, use_regex: true };
  const p = data.pipeline ?? GPT2_PIPELINE;
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: data.added.map((t) => ({
      id: t.id,
      content: t.content,
      single_word: t.single_word ?? false,
      lstrip: t.lstrip ?? false,
      rstrip: t.rstrip ?? false,
      normalized: t.normalized ?? !t.special,
      special: t.special,
    })),
    normalizer: p.normalizer,
    pre_tokenizer: p.pre_tokenizer,
    post_processor:
      data.postProcessor !== undefined
        ? data.postProcessor
        : { type: "ByteLevel", ...byteLevel, trim_offsets: false },
    decoder: data.decoder !== undefined ? data.decoder : { type: "ByteLevel", ...byteLevel },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: "",
      end_of_word_suffix: "",
      fuse_unk: false,
      byte_fallback: false,
      ...(p.ignoreMerges ? { ignore_merges: true } : {}),
      vocab,
      merges,
    },
  };
}
