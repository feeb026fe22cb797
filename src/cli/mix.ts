import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { type LlmcLayout, type LlmcShardInfo, rawTokensToLlmc } from "../formats/llmc.js";
import { buildMixture, sharesFromRatios } from "../mix/build.js";
import { parseCount } from "../mix/count.js";
import { type MixtureManifest, tryReadMixtureManifest, tryReadTestSetManifest } from "../mix/manifest.js";
import { buildTestSets } from "../mix/testsets.js";
import { SynthmixError } from "../util/errors.js";
import { checkId } from "../util/ids.js";
import {
  type Command,
  collect,
  integer,
  JSON_HELP,
  oneOf,
  parseNumber,
  positiveInt,
  printResult,
} from "./options.js";

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
    .option("--json", `${JSON_HELP}: {manifest, dir, skipped}`)
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
      printResult(o.json, { ...res, manifestPath: join(res.dir, "manifest.json") }, () =>
        join(res.dir, "manifest.json"),
      );
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
    .option("--json", `${JSON_HELP}: {manifest, dir, skipped}`)
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
      printResult(o.json, { ...res, manifestPath: join(res.dir, "manifest.json") }, () =>
        join(res.dir, "manifest.json"),
      );
    });
  registerList(mix);
  registerExport(mix);
}

/** One row of `mix list`. */
interface MixtureRow {
  id: string;
  dir: string;
  totalTokens: number;
  dtype: string;
  vocabSize: number;
  sources: { name: string; targetShare: number; tokens: number; epochs: number }[];
  family?: string;
  tokenizerSha256: string;
}

function mixtureRow(dir: string, m: MixtureManifest): MixtureRow {
  return {
    id: m.id,
    dir,
    totalTokens: m.totalTokens,
    dtype: m.dtype,
    vocabSize: m.vocabSize,
    sources: m.sources.map((s) => ({
      name: s.name,
      targetShare: s.targetShare,
      tokens: s.tokens,
      epochs: s.epochs,
    })),
    ...(m.family ? { family: m.family } : {}),
    tokenizerSha256: m.tokenizerSha256,
  };
}

function formatMixtureRows(rows: MixtureRow[]): string {
  if (rows.length === 0) return "no complete mixtures";
  return rows
    .map((r) => {
      const shares = r.sources.map((s) => `${s.name} ${((100 * s.tokens) / r.totalTokens).toFixed(1)}%`);
      return `${r.id}\t${r.totalTokens} tokens (${r.dtype})\t${shares.join(", ")}`;
    })
    .join("\n");
}

function registerList(mix: Command): void {
  mix
    .command("list")
    .description("List the complete mixtures of a workspace (<ws>/mixtures/<id>/manifest.json)")
    .argument("<workspace>", "study workspace")
    .option("--json", `${JSON_HELP}: an array of {id, dir, totalTokens, dtype, vocabSize, sources, ...}`)
    .action((ws: string, o) => {
      const root = join(ws, "mixtures");
      const ids = existsSync(root) ? readdirSync(root).sort() : [];
      const rows: MixtureRow[] = [];
      for (const id of ids) {
        const dir = join(root, id);
        // A folder without a valid manifest is a build in progress or an interrupted one: not a mixture.
        const m = tryReadMixtureManifest(dir);
        if (m) rows.push(mixtureRow(dir, m));
      }
      printResult(o.json, rows, () => formatMixtureRows(rows));
    });
}

/** What `mix export` wrote (also its --json output). */
export interface ExportResult {
  format: "llmc";
  layout: LlmcLayout | "auto";
  source: string;
  kind: "mixture" | "testsets";
  files: (LlmcShardInfo & { domain?: string })[];
  tokens: number;
}

/** `mix export <dir>`: a mixture folder, a test-set folder, or a mixture id under --workspace. */
function exportMixture(
  dir: string,
  o: { out: string; layout?: LlmcLayout; shardTokens?: string },
): ExportResult {
  const shardTokens = o.shardTokens === undefined ? undefined : parseCount(o.shardTokens, "--shard-tokens");
  const mixture = tryReadMixtureManifest(dir);
  if (mixture) {
    const files = rawTokensToLlmc({
      input: join(dir, mixture.file),
      dtype: mixture.dtype,
      out: o.out,
      layout: o.layout,
      shardTokens,
    });
    return result(dir, "mixture", files, o.layout);
  }
  const tests = tryReadTestSetManifest(dir);
  if (tests) {
    const files = tests.domains.flatMap((d) =>
      rawTokensToLlmc({
        input: join(dir, d.file),
        dtype: tests.dtype,
        out: join(o.out, `${checkId(d.name, "test domain")}.bin`),
        layout: o.layout,
        shardTokens,
      }).map((f) => ({ ...f, domain: d.name })),
    );
    return result(dir, "testsets", files, o.layout);
  }
  throw new SynthmixError("NO_MIXTURE", `${dir}: no valid mixture or test-set manifest.json`, {
    hint: "pass a folder written by `synthmix mix build` (<ws>/mixtures/<id>) or `mix testsets` (<ws>/tokens/test), or an id with --workspace",
  });
}

function result(
  source: string,
  kind: ExportResult["kind"],
  files: ExportResult["files"],
  layout: LlmcLayout | undefined,
): ExportResult {
  const tokens = files.reduce((a, f) => a + f.tokens, 0);
  return { format: "llmc", layout: layout ?? "auto", source, kind, files, tokens };
}

function registerExport(mix: Command): void {
  mix
    .command("export")
    .description(
      "Write a mixture's (or the test sets') tokens as llm.c token shards: 256 int32 header (magic, version, count) + ids",
    )
    .argument(
      "<mixture>",
      "mixture folder (<ws>/mixtures/<id>), test-set folder (<ws>/tokens/test), or an id with --workspace",
    )
    .requiredOption("--out <path>", "output .bin (a folder for test sets: <out>/<domain>.bin)")
    .option("--format <format>", "output format: llmc", oneOf("format", ["llmc"] as const), "llmc")
    .option(
      "--layout <layout>",
      "llm.c layout: gpt-2 (magic 20240520, version 1, uint16 ids; train_gpt2.c) | llama-3 (20240801, 7, uint32; train_llama3.py); default by the ids' width",
      oneOf("layout", ["gpt-2", "llama-3"] as const),
    )
    .option("--shard-tokens <n>", "tokens per shard: <out>_000000.bin, _000001.bin, ... (e.g. 1e8)")
    .option("-w, --workspace <dir>", "study workspace, when <mixture> is an id")
    .option("--json", `${JSON_HELP}: {files: [{path, tokens}], tokens, ...}`)
    .action((mixture: string, o) => {
      const dir = o.workspace ? join(o.workspace, "mixtures", checkId(mixture, "mixture id")) : mixture;
      const r = exportMixture(dir, o);
      printResult(o.json, r, () => r.files.map((f) => `${f.path}: ${f.tokens} tokens`).join("\n"));
    });
}
