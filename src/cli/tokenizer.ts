import { encodeToFile } from "../tokenizer/encode-file.js";
import { Tokenizer } from "../tokenizer/index.js";
import { readTexts, type TextSourceStats } from "../tokenizer/input.js";
import { fmtNum, Progress } from "../util/progress.js";
import { dtypeForVocab } from "../util/tokenfile.js";
import { type Command, positiveInt } from "./options.js";

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
    .action(async (o) => {
      const stats: TextSourceStats = { documents: 0, chars: 0, skipped: 0 };
      const progress = new Progress("tokenizer train: reading", { unit: "docs" });
      const start = Date.now();
      let merging: Progress | undefined;
      const tok = await Tokenizer.train(readTexts(o.corpus, stats, { skipBadRecords: o.skipBadRecords }), {
        vocabSize: o.vocab,
        minFrequency: o.minFrequency,
        specialTokens: o.special,
        onProgress: (p) => {
          if (p.phase === "count") progress.update(p.done, { chars: fmtNum(p.bytes ?? 0) });
          else {
            if (!merging) {
              progress.finish();
              merging = new Progress("tokenizer train: merging", { unit: "merges", total: p.total });
            }
            merging.update(p.done);
          }
        },
      });
      progress.finish();
      merging?.finish();
      tok.save(o.out);
      const sample = await countTokens(
        tok,
        readTexts(o.corpus, undefined, { skipBadRecords: o.skipBadRecords }),
        2000,
      );
      console.log(
        [
          `wrote ${o.out}`,
          `  documents ${stats.documents}${stats.skipped ? ` (skipped ${stats.skipped} bad records)` : ""}, characters ${fmtNum(stats.chars)}`,
          `  vocabulary ${tok.vocabSize} (256 bytes + ${tok.numMerges} merges + ${tok.specialTokens.length} special)${tok.vocabSize < o.vocab ? ` — fewer than ${o.vocab}: no pair occurs ${o.minFrequency} times` : ""}`,
          `  bytes/token ${(sample.bytes / Math.max(1, sample.tokens)).toFixed(3)} (first ${sample.docs} documents)`,
          `  sha256 ${tok.sha256}`,
          `  time ${((Date.now() - start) / 1000).toFixed(1)}s`,
        ].join("\n"),
      );
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
    .action(async (o) => {
      const stats: TextSourceStats = { documents: 0, chars: 0, skipped: 0 };
      const texts = readTexts(o.in, stats, { skipBadRecords: o.skipBadRecords });
      const progress = new Progress("tokenizer encode", { unit: "docs" });
      const r = await encodeToFile(o.tokenizer, texts, o.out, {
        threads: o.threads,
        appendEot: o.eot,
        onProgress: (p) => progress.update(p.documents, { tokens: fmtNum(p.tokens) }),
      });
      progress.finish();
      const { dtype, documents: docs, tokens, bytes } = r;
      console.log(
        [
          `wrote ${o.out} (${dtype})`,
          `  documents ${docs}${stats.skipped ? ` (skipped ${stats.skipped} bad records)` : ""}, tokens ${tokens}${o.eot ? " (incl. one <|endoftext|> per document)" : ""}`,
          `  bytes/token ${(bytes / Math.max(1, tokens - (o.eot ? docs : 0))).toFixed(3)}`,
          `  tokenizer ${o.tokenizer} sha256 ${r.tokenizerSha256}`,
        ].join("\n"),
      );
    });

  cmd
    .command("info")
    .description(
      "describe a tokenizer.json (size, special tokens, hash, longest tokens), optionally tokenize text",
    )
    .argument("<tokenizer>", 'tokenizer.json, or "gpt2" for the built-in GPT-2 vocabulary')
    .option("--text <text>", "show how this text is tokenized")
    .option("--corpus <files...>", "report documents, tokens and bytes/token on these files")
    .action(async (path: string, o) => {
      const tok = path === "gpt2" ? Tokenizer.gpt2() : Tokenizer.fromFile(path);
      const ids = [...Array(tok.vocabSize).keys()];
      const longest = ids
        .filter((id) => !tok.specialTokens.some((t) => t.id === id))
        .sort((a, b) => tok.tokenBytes(b).length - tok.tokenBytes(a).length || a - b)
        .slice(0, 10);
      const lines = [
        `${path}`,
        `  vocabulary ${tok.vocabSize} (256 bytes + ${tok.numMerges} merges + ${tok.specialTokens.length} special), ids as ${dtypeForVocab(tok.vocabSize)}`,
        `  special ${tok.specialTokens.map((t) => `${t.content}=${t.id}`).join(" ") || "none"}`,
        `  eot id ${tok.eotId}`,
        `  sha256 ${tok.sha256}`,
        `  longest tokens ${longest.map((id) => JSON.stringify(tok.tokenString(id))).join(" ")}`,
      ];
      if (o.text !== undefined) {
        const t = tok.encodeWithSpecial(o.text);
        lines.push(
          `  text -> ${t.length} tokens: ${t.map((id) => `${JSON.stringify(tok.tokenString(id))}:${id}`).join(" ")}`,
        );
      }
      if (o.corpus) {
        const stats: TextSourceStats = { documents: 0, chars: 0, skipped: 0 };
        const c = await countTokens(tok, readTexts(o.corpus, stats), Number.POSITIVE_INFINITY);
        lines.push(
          `  corpus documents ${c.docs}, tokens ${c.tokens}, bytes/token ${(c.bytes / Math.max(1, c.tokens)).toFixed(3)}`,
        );
      }
      console.log(lines.join("\n"));
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
