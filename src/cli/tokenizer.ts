import { encodeToFile } from "../tokenizer/encode-file.js";
import { Tokenizer } from "../tokenizer/index.js";
import { readTexts, type TextSourceStats } from "../tokenizer/input.js";
import type { TrainProgress } from "../tokenizer/train.js";
import { fmtNum, Progress } from "../util/progress.js";
import { dtypeForVocab } from "../util/tokenfile.js";
import { type Command, JSON_HELP, positiveInt, printResult } from "./options.js";

/** `synthmix tokenizer ...` commands: thin wrappers over src/tokenizer/. */
export function register(program: Command): void {
  const cmd = program.command("tokenizer").description("train, apply and inspect byte-level BPE tokenizers");

  cmd
    .command("train")
    .description("train a byte-level BPE vocabulary and write a Hugging Face tokenizer.json")
    .requiredOption(
      "--corpus <files...>",
      'JSONL files with a "text" field (.jsonl, .jsonl.gz) or text files',
    )
    .requiredOption(
      "--vocab <n>",
      "vocabulary size, including 256 byte tokens and special tokens",
      positiveInt("--vocab"),
    )
    .requiredOption("--out <path>", "output tokenizer.json")
    .option(
      "--min-frequency <n>",
      "stop when the best pair is rarer than this",
      positiveInt("--min-frequency"),
      2,
    )
    .option("--special <tokens...>", "special tokens (default <|endoftext|>)")
    .option("--skip-bad-records", "skip (and count) malformed JSONL lines instead of failing")
    .option("--json", JSON_HELP)
    .action(async (o) => {
      const r = await trainCommand(o);
      printResult(o.json, r, () => formatTrainResult(r));
    });

  cmd
    .command("encode")
    .description(
      "encode documents to a token file (uint16/uint32 little endian, <|endoftext|> after each document)",
    )
    .requiredOption("--tokenizer <path>", "tokenizer.json")
    .requiredOption("--in <files...>", 'JSONL files with a "text" field, or text files')
    .requiredOption("--out <path>", "output .bin")
    .option("--threads <n>", "worker threads (default: all cores)", positiveInt("--threads"))
    .option("--no-eot", "do not append <|endoftext|> after each document")
    .option("--skip-bad-records", "skip (and count) malformed JSONL lines instead of failing")
    .option("--json", JSON_HELP)
    .action(async (o) => {
      const r = await encodeCommand(o);
      printResult(o.json, r, () => formatEncodeResult(r));
    });

  cmd
    .command("info")
    .description(
      "describe a tokenizer.json (size, special tokens, hash, longest tokens), optionally tokenize text",
    )
    .argument("<tokenizer>", 'tokenizer.json, or "gpt2" for the built-in GPT-2 vocabulary')
    .option("--text <text>", "show how this text is tokenized")
    .option("--corpus <files...>", "report documents, tokens and bytes/token on these files")
    .option("--json", JSON_HELP)
    .action(async (path: string, o) => {
      const r = await infoCommand(path, o);
      printResult(o.json, r, () => formatInfo(r));
    });
}

async function countTokens(tok: Tokenizer, texts: AsyncIterable<string>, maxDocs: number) {
  let docs = 0;
  let tokens = 0;
  let bytes = 0;
  for await (const t of texts) {
    if (docs >= maxDocs) break;
    tokens += tok.encode(t).length;
    bytes += Buffer.byteLength(t, "utf8");
    docs++;
  }
  return { docs, tokens, bytes };
}

const ratio = (bytes: number, tokens: number) => Number((bytes / Math.max(1, tokens)).toFixed(3));

interface TrainFlags {
  corpus: string[];
  vocab: number;
  out: string;
  minFrequency: number;
  special?: string[];
  skipBadRecords?: boolean;
}

/** What `tokenizer train` did (also its --json output). */
export interface TrainCommandResult {
  out: string;
  documents: number;
  skippedBadRecords: number;
  characters: number;
  vocabSize: number;
  requestedVocabSize: number;
  merges: number;
  specialTokens: number;
  /** UTF-8 bytes per token on the first `sampleDocuments` documents. */
  bytesPerToken: number;
  sampleDocuments: number;
  sha256: string;
  seconds: number;
  warnings: string[];
}

/** Progress of both training phases on stderr: documents read, then merges learned. */
function trainProgress(): { onProgress: (p: TrainProgress) => void; finish: () => void } {
  const reading = new Progress("tokenizer train: reading", { unit: "docs" });
  let merging: Progress | undefined;
  const onProgress = (p: TrainProgress) => {
    if (p.phase === "count") {
      reading.update(p.done, { chars: fmtNum(p.bytes ?? 0) });
      return;
    }
    if (!merging) {
      reading.finish();
      merging = new Progress("tokenizer train: merging", { unit: "merges", total: p.total });
    }
    merging.update(p.done);
  };
  return {
    onProgress,
    finish: () => {
      reading.finish();
      merging?.finish();
    },
  };
}

async function trainCommand(o: TrainFlags): Promise<TrainCommandResult> {
  const stats: TextSourceStats = { documents: 0, chars: 0, skipped: 0 };
  const start = Date.now();
  const progress = trainProgress();
  const tok = await Tokenizer.train(readTexts(o.corpus, stats, { skipBadRecords: o.skipBadRecords }), {
    vocabSize: o.vocab,
    minFrequency: o.minFrequency,
    specialTokens: o.special,
    onProgress: progress.onProgress,
  });
  progress.finish();
  tok.save(o.out);
  const sample = await countTokens(
    tok,
    readTexts(o.corpus, undefined, { skipBadRecords: o.skipBadRecords }),
    2000,
  );
  const warnings =
    tok.vocabSize < o.vocab
      ? [
          `vocabulary ${tok.vocabSize} is smaller than ${o.vocab}: no further pair occurs ${o.minFrequency} times`,
        ]
      : [];
  return {
    out: o.out,
    documents: stats.documents,
    skippedBadRecords: stats.skipped,
    characters: stats.chars,
    vocabSize: tok.vocabSize,
    requestedVocabSize: o.vocab,
    merges: tok.numMerges,
    specialTokens: tok.specialTokens.length,
    bytesPerToken: ratio(sample.bytes, sample.tokens),
    sampleDocuments: sample.docs,
    sha256: tok.sha256,
    seconds: Number(((Date.now() - start) / 1000).toFixed(1)),
    warnings,
  };
}

function formatTrainResult(r: TrainCommandResult): string {
  const skipped = r.skippedBadRecords ? ` (skipped ${r.skippedBadRecords} bad records)` : "";
  const short = r.vocabSize < r.requestedVocabSize ? ` — ${r.warnings[0]}` : "";
  return [
    `wrote ${r.out}`,
    `  documents ${r.documents}${skipped}, characters ${fmtNum(r.characters)}`,
    `  vocabulary ${r.vocabSize} (256 bytes + ${r.merges} merges + ${r.specialTokens} special)${short}`,
    `  bytes/token ${r.bytesPerToken.toFixed(3)} (first ${r.sampleDocuments} documents)`,
    `  sha256 ${r.sha256}`,
    `  time ${r.seconds.toFixed(1)}s`,
  ].join("\n");
}

interface EncodeFlags {
  tokenizer: string;
  in: string[];
  out: string;
  threads?: number;
  eot: boolean;
  skipBadRecords?: boolean;
}

/** What `tokenizer encode` wrote (also its --json output). */
export interface EncodeCommandResult {
  out: string;
  dtype: string;
  documents: number;
  skippedBadRecords: number;
  /** Tokens in the file, including one end-of-text token per document when `eot`. */
  tokens: number;
  eot: boolean;
  /** UTF-8 bytes per text token (end-of-text tokens not counted). */
  bytesPerToken: number;
  tokenizer: string;
  tokenizerSha256: string;
}

async function encodeCommand(o: EncodeFlags): Promise<EncodeCommandResult> {
  const stats: TextSourceStats = { documents: 0, chars: 0, skipped: 0 };
  const texts = readTexts(o.in, stats, { skipBadRecords: o.skipBadRecords });
  const progress = new Progress("tokenizer encode", { unit: "docs" });
  const r = await encodeToFile(o.tokenizer, texts, o.out, {
    threads: o.threads,
    appendEot: o.eot,
    onProgress: (p) => progress.update(p.documents, { tokens: fmtNum(p.tokens) }),
  });
  progress.finish();
  return {
    out: o.out,
    dtype: r.dtype,
    documents: r.documents,
    skippedBadRecords: stats.skipped,
    tokens: r.tokens,
    eot: o.eot,
    bytesPerToken: ratio(r.bytes, r.tokens - (o.eot ? r.documents : 0)),
    tokenizer: o.tokenizer,
    tokenizerSha256: r.tokenizerSha256,
  };
}

function formatEncodeResult(r: EncodeCommandResult): string {
  const skipped = r.skippedBadRecords ? ` (skipped ${r.skippedBadRecords} bad records)` : "";
  return [
    `wrote ${r.out} (${r.dtype})`,
    `  documents ${r.documents}${skipped}, tokens ${r.tokens}${r.eot ? " (incl. one <|endoftext|> per document)" : ""}`,
    `  bytes/token ${r.bytesPerToken.toFixed(3)}`,
    `  tokenizer ${r.tokenizer} sha256 ${r.tokenizerSha256}`,
  ].join("\n");
}

/** What `tokenizer info` found (also its --json output). */
export interface InfoCommandResult {
  path: string;
  vocabSize: number;
  merges: number;
  special: { content: string; id: number }[];
  eotId: number;
  dtype: string;
  sha256: string;
  /** The ten longest non-special tokens (by bytes), as text. */
  longest: string[];
  text?: { tokens: number; ids: number[]; pieces: string[] };
  corpus?: { documents: number; tokens: number; bytesPerToken: number };
}

async function infoCommand(
  path: string,
  o: { text?: string; corpus?: string[] },
): Promise<InfoCommandResult> {
  const tok = path === "gpt2" ? Tokenizer.gpt2() : Tokenizer.fromFile(path);
  const specialIds = new Set(tok.specialTokens.map((t) => t.id));
  const longest = [...Array(tok.vocabSize).keys()]
    .filter((id) => !specialIds.has(id))
    .sort((a, b) => tok.tokenBytes(b).length - tok.tokenBytes(a).length || a - b)
    .slice(0, 10);
  const r: InfoCommandResult = {
    path,
    vocabSize: tok.vocabSize,
    merges: tok.numMerges,
    special: tok.specialTokens.map((t) => ({ content: t.content, id: t.id })),
    eotId: tok.eotId,
    dtype: dtypeForVocab(tok.vocabSize),
    sha256: tok.sha256,
    longest: longest.map((id) => tok.tokenString(id)),
  };
  if (o.text !== undefined) {
    const ids = tok.encodeWithSpecial(o.text);
    r.text = { tokens: ids.length, ids, pieces: ids.map((id) => tok.tokenString(id)) };
  }
  if (o.corpus) {
    const c = await countTokens(tok, readTexts(o.corpus), Number.POSITIVE_INFINITY);
    r.corpus = { documents: c.docs, tokens: c.tokens, bytesPerToken: ratio(c.bytes, c.tokens) };
  }
  return r;
}

function formatInfo(r: InfoCommandResult): string {
  const lines = [
    `${r.path}`,
    `  vocabulary ${r.vocabSize} (256 bytes + ${r.merges} merges + ${r.special.length} special), ids as ${r.dtype}`,
    `  special ${r.special.map((t) => `${t.content}=${t.id}`).join(" ") || "none"}`,
    `  eot id ${r.eotId}`,
    `  sha256 ${r.sha256}`,
    `  longest tokens ${r.longest.map((t) => JSON.stringify(t)).join(" ")}`,
  ];
  if (r.text) {
    const shown = r.text.ids.map((id, k) => `${JSON.stringify(r.text?.pieces[k])}:${id}`).join(" ");
    lines.push(`  text -> ${r.text.tokens} tokens: ${shown}`);
  }
  if (r.corpus) {
    lines.push(
      `  corpus documents ${r.corpus.documents}, tokens ${r.corpus.tokens}, bytes/token ${r.corpus.bytesPerToken.toFixed(3)}`,
    );
  }
  return lines.join("\n");
}
