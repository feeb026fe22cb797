import { join } from "node:path";
import { buildMixture, sharesFromRatios } from "../mix/build.js";
import { parseCount } from "../mix/count.js";
import { buildTestSets } from "../mix/testsets.js";
import { SynthmixError } from "../util/errors.js";
import { type Command, collect, integer, parseNumber, positiveInt } from "./options.js";

function splitPair(opt: string, value: string): [string, string] {
  const i = value.indexOf("=");
  if (i <= 0 || i === value.length - 1) {
    throw new SynthmixError("CLI", `${opt} ${value}: expected name=value`);
  }
  return [value.slice(0, i), value.slice(i + 1)];
}

/** `synthmix mix ...` commands: thin wrappers over src/mix/. */
export function register(program: Command): void {
  const mix = program.command("mix").description("Build token mixtures and tokenized test sets");
  mix
    .command("build")
    .description("Build <ws>/mixtures/<id>/tokens.bin + manifest.json from sources at target token shares")
    .requiredOption("-w, --workspace <dir>", "study workspace")
    .option("--tokenizer <file>", "tokenizer.json (default: <ws>/tokenizer/tokenizer.json)")
    .requiredOption(
      "--source <name=path>",
      "a source: JSONL file or folder of part-*.jsonl (repeatable)",
      collect,
    )
    .option(
      "--ratio <name=share>",
      "token share of a source (repeatable); unlisted sources share the rest",
      collect,
    )
    .requiredOption("--tokens <n>", "total tokens (e.g. 2e6, 2M)")
    .requiredOption("--id <id>", "mixture id (output folder name)")
    .option("--seed <n>", "sampling seed", integer("seed"), 1234)
    .option("--allow-repeat", "repeat a source's documents when it runs out instead of failing")
    .option("--threads <n>", "tokenizer threads", positiveInt("threads"), 2)
    .option("--force", "rebuild even if a complete mixture with the same config exists")
    .action(async (o) => {
      const paths = Object.fromEntries((o.source as string[]).map((s) => splitPair("--source", s)));
      const ratios = Object.fromEntries(
        ((o.ratio as string[] | undefined) ?? []).map((r) => {
          const [k, v] = splitPair("--ratio", r);
          return [k, parseNumber(`--ratio ${k}`, v)];
        }),
      );
      const shares = sharesFromRatios(Object.keys(paths), ratios);
      const res = await buildMixture({
        workspace: o.workspace,
        id: o.id,
        tokenizer: o.tokenizer ?? join(o.workspace, "tokenizer", "tokenizer.json"),
        sources: Object.keys(paths).map((name) => ({ name, path: paths[name], share: shares[name] })),
        totalTokens: parseCount(o.tokens, "--tokens"),
        seed: o.seed,
        allowRepeat: Boolean(o.allowRepeat),
        threads: o.threads,
        force: Boolean(o.force),
        log: (l) => console.error(l),
      });
      if (res.skipped) console.error(`mixture ${o.id} is complete (same config); skipped`);
      console.log(join(res.dir, "manifest.json"));
    });
  mix
    .command("testsets")
    .description("Tokenize the held-out test sets once into <ws>/tokens/test/<domain>.bin + manifest.json")
    .requiredOption("-w, --workspace <dir>", "study workspace")
    .option("--tokenizer <file>", "tokenizer.json (default: <ws>/tokenizer/tokenizer.json)")
    .option(
      "--corpus <name>",
      "corpus under <ws>/corpus/ to take test/<domain>.jsonl from (repeatable; default all)",
      collect,
    )
    .option("--threads <n>", "tokenizer threads", positiveInt("threads"), 2)
    .option("--force", "rebuild even if up to date")
    .action(async (o) => {
      const res = await buildTestSets({
        workspace: o.workspace,
        tokenizer: o.tokenizer ?? join(o.workspace, "tokenizer", "tokenizer.json"),
        corpora: o.corpus,
        threads: o.threads,
        force: Boolean(o.force),
        log: (l) => console.error(l),
      });
      if (res.skipped) console.error("test sets are up to date; skipped");
      console.log(join(res.dir, "manifest.json"));
    });
}
