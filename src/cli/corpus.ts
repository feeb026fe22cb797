import { CORPUS_DEFAULTS as D } from "../corpus/config.js";
import {
  defaultCorpusName,
  formatCorpusSummary,
  importCorpus,
  listCorpora,
  readCorpusStats,
} from "../corpus/index.js";
import { SynthmixError } from "../util/errors.js";
import { type Command, JSON_HELP, numberOption, oneOf, printResult } from "./options.js";

const num = (name: string, min?: number, max?: number) => numberOption(name, { min, max });

/** `synthmix corpus ...` commands: thin wrappers over src/corpus/. */
export function register(program: Command): void {
  const corpus = program.command("corpus").description("import, clean and split natural-text corpora");

  corpus
    .command("import")
    .description(
      "read a corpus (brown, .jsonl[.gz|.zst], .parquet, .warc[.gz]/.wet[.gz], .txt/.md or a folder), clean it and split train/test",
    )
    .requiredOption("--from <source>", 'source file or folder, or "brown" for the built-in Brown corpus')
    .requiredOption("--out <workspace>", "workspace folder; writes <workspace>/corpus/<name>/")
    .option("--name <name>", "corpus name (default: brown, or the source's base name)")
    .option(
      "--test-fraction <f>",
      "fraction of documents held out per test set",
      num("test-fraction", 0, 1),
      D.testFraction,
    )
    .option(
      "--test-by <how>",
      "one test set per group | domain | none (a single 'all' set)",
      oneOf("test-by", ["group", "domain", "none"] as const),
      D.testBy,
    )
    .option(
      "--min-test-docs <n>",
      "minimum documents per test set (at most half of a set)",
      num("min-test-docs", 0),
      D.minTestDocs,
    )
    .option("--seed <n>", "seed of the split and near-dedup", num("seed"), D.seed)
    .option("--min-chars <n>", "drop documents shorter than N characters", num("min-chars", 0))
    .option("--max-chars <n>", "drop documents longer than N characters", num("max-chars", 0))
    .option("--min-words <n>", "drop documents with fewer than N words", num("min-words", 0))
    .option("--max-words <n>", "drop documents with more than N words", num("max-words", 0))
    .option(
      "--normalize <form>",
      "Unicode normalization: NFC | NFKC | none",
      oneOf("normalize", ["NFC", "NFKC", "none"] as const),
      D.normalize,
    )
    .option("--no-dedup", "keep exact duplicates")
    .option(
      "--near-dedup <jaccard>",
      "drop near-duplicates at this estimated Jaccard similarity (MinHash LSH)",
      num("near-dedup", 0, 1),
    )
    .option("--num-perm <n>", "MinHash permutations for --near-dedup", num("num-perm", 1), 128)
    .option("--ngram <n>", "words per shingle for --near-dedup", num("ngram", 1), 5)
    .option("--bands <n>", "LSH bands for --near-dedup (default: chosen from the threshold)", num("bands", 1))
    .option("--skip-bad-records", "count and skip malformed records instead of stopping")
    .option("--text-field <field>", "JSONL field / Parquet column with the text", D.textField)
    .option("--id-field <field>", "JSONL field / Parquet column with the document id", D.idField)
    .option(
      "--kind <kind>",
      "the format when the file name does not say it: jsonl | parquet | warc | text",
      oneOf("kind", ["jsonl", "parquet", "warc", "text"] as const),
    )
    .option("--max-docs <n>", "read at most N documents", num("max-docs", 1))
    .option("--force", "re-import even if an identical complete import exists")
    .option("--json", `${JSON_HELP}: the corpus's stats.json, with "reused" when nothing was imported`)
    .action(async (o) => {
      const stats = await importCorpus({
        from: o.kind ? { kind: o.kind, path: o.from } : o.from,
        workspace: o.out,
        name: o.name ?? defaultCorpusName(o.from),
        testFraction: o.testFraction,
        testBy: o.testBy,
        minTestDocs: o.minTestDocs,
        seed: o.seed,
        minChars: o.minChars,
        maxChars: o.maxChars,
        minWords: o.minWords,
        maxWords: o.maxWords,
        normalize: o.normalize,
        dedup: o.dedup,
        nearDedup:
          o.nearDedup === undefined
            ? undefined
            : { threshold: o.nearDedup, numPerm: o.numPerm, ngram: o.ngram, bands: o.bands },
        skipBadRecords: !!o.skipBadRecords,
        textField: o.textField,
        idField: o.idField,
        maxDocs: o.maxDocs,
        force: !!o.force,
        progress: true,
      });
      printResult(o.json, stats, () => formatCorpusSummary(stats));
    });

  corpus
    .command("stats")
    .description("print the statistics of imported corpora")
    .argument("<workspace>", "workspace folder")
    .option("--name <name>", "corpus name (default: every corpus in the workspace)")
    .option("--json", `${JSON_HELP}: stats.json as is with --name, else an array of every corpus's`)
    .action((ws: string, o) => {
      const names = o.name ? [o.name] : listCorpora(ws);
      if (names.length === 0) {
        throw new SynthmixError("NO_CORPUS", `${ws}: no imported corpus`, {
          hint: "import one with `synthmix corpus import --from <source> --out <workspace>`",
        });
      }
      const all = names.map((name) => readCorpusStats(ws, name));
      printResult(o.json, o.name ? all[0] : all, () => all.map(formatCorpusSummary).join("\n"));
    });
}
