import { existsSync, readdirSync, readFileSync } from "node:fs";
import { basename, join, relative } from "node:path";
import { writeJsonAtomic } from "../util/atomic.js";
import { SynthmixError } from "../util/errors.js";
import { stableHash } from "../util/hash.js";
import { dtypeForVocab } from "../util/tokenfile.js";
import type { TestSetManifest } from "./manifest.js";
import { hashSourceFiles, streamSourceTexts } from "./sources.js";
import { TokenWriter } from "./tokenio.js";
import { loadMixTokenizer, type MixTokenizer } from "./tokenizer.js";

export interface BuildTestSetsOptions {
  workspace: string;
  tokenizer: string | MixTokenizer;
  /** Corpus names under `<ws>/corpus/` whose `test/<domain>.jsonl` files to use (default: all). */
  corpora?: string[];
  /** Or explicit domain -> JSONL file (overrides `corpora`). */
  files?: Record<string, string>;
  threads?: number;
  force?: boolean;
  log?: (line: string) => void;
}

/** `<ws>/tokens/test/` holding manifest.json and one `<domain>.bin` per test domain. */
export function testSetDir(workspace: string): string {
  return join(workspace, "tokens", "test");
}

/** The held-out test files by domain: `<ws>/corpus/<name>/test/<domain>.jsonl`. */
export function findTestFiles(workspace: string, corpora?: string[]): Record<string, string> {
  const root = join(workspace, "corpus");
  const names = corpora ?? (existsSync(root) ? readdirSync(root).sort() : []);
  const out: Record<string, string> = {};
  for (const c of names) {
    const dir = join(root, c, "test");
    if (!existsSync(dir)) {
      if (corpora) throw new SynthmixError("MIX_TEST", `corpus ${c} has no test folder ${dir}`);
      continue;
    }
    for (const f of readdirSync(dir).sort()) {
      if (!/\.jsonl(\.gz)?$/.test(f)) continue;
      const domain = basename(f).replace(/\.jsonl(\.gz)?$/, "");
      if (out[domain]) {
        throw new SynthmixError(
          "MIX_TEST",
          `test domain "${domain}" exists in two corpora (${out[domain]}, ${join(dir, f)})`,
          {
            hint: "choose one corpus with --corpus",
          },
        );
      }
      out[domain] = join(dir, f);
    }
  }
  if (Object.keys(out).length === 0) {
    throw new SynthmixError("MIX_TEST", `no test sets found under ${root}/*/test/`, {
      hint: "build the corpus first (synthmix corpus ...), which writes held-out test/<domain>.jsonl files",
    });
  }
  return out;
}

/**
 * Tokenize the held-out test sets once (eot after every document) so every run evaluates on the same
 * ids. Reruns skip when manifest.json has the same tokenizer and test-file hash.
 */
export async function buildTestSets(
  opts: BuildTestSetsOptions,
): Promise<{ manifest: TestSetManifest; dir: string; skipped: boolean }> {
  const files = opts.files ?? findTestFiles(opts.workspace, opts.corpora);
  const domains = Object.keys(files).sort();
  const tokenizer =
    typeof opts.tokenizer === "string"
      ? await loadMixTokenizer(opts.tokenizer, opts.threads)
      : opts.tokenizer;
  const hashes: Record<string, string> = {};
  for (const d of domains) hashes[d] = await hashSourceFiles([files[d]]);
  const configHash = stableHash({ version: 1, tokenizer: tokenizer.sha256, hashes });
  const dir = testSetDir(opts.workspace);
  const manifestPath = join(dir, "manifest.json");
  if (!opts.force && existsSync(manifestPath)) {
    const old = JSON.parse(readFileSync(manifestPath, "utf8")) as TestSetManifest;
    if (old.configHash === configHash) return { manifest: old, dir, skipped: true };
  }
  const dtype = dtypeForVocab(tokenizer.vocabSize);
  const manifest: TestSetManifest = {
    dtype,
    vocabSize: tokenizer.vocabSize,
    eotId: tokenizer.eotId,
    tokenizerSha256: tokenizer.sha256,
    domains: [],
    configHash,
    sources: {},
  };
  for (const d of domains) {
    // Streamed like the training sources: documents -> tokenizer -> file, never a whole domain in memory.
    const counter = { skippedEmpty: 0, documents: 0 };
    const file = `${d}.bin`;
    const out = new TokenWriter(join(dir, file), dtype);
    try {
      for await (const doc of tokenizer.encodeAll(streamSourceTexts([files[d]], counter))) {
        out.push(doc);
        out.pushOne(tokenizer.eotId);
      }
    } catch (e) {
      out.abort();
      throw e;
    }
    out.commit();
    manifest.domains.push({ name: d, file, tokens: out.count, documents: counter.documents });
    manifest.sources![d] = relative(opts.workspace, files[d]);
    opts.log?.(`test set ${d}: ${counter.documents} documents, ${out.count} tokens`);
  }
  writeJsonAtomic(manifestPath, manifest);
  return { manifest, dir, skipped: false };
}
