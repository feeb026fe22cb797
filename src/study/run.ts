import { dirname, isAbsolute, join, resolve } from "node:path";
import { loadConfigFile } from "../config/index.js";
import { importCorpus } from "../corpus/import.js";
import type { Doc } from "../corpus/types.js";
import { readCorpusSplit } from "../corpus/workspace.js";
import { fitWorkspace, writeFitResults } from "../fit/workspace.js";
import { formatSummary, GenerationIncompleteError, runGeneration } from "../generate/run.js";
import { generatorName, parseGeneratorSpec, specKey } from "../generate/spec.js";
import { loadMixTokenizer } from "../mix/tokenizer.js";
import type { RunExecutor } from "../sweep/executors.js";
import { writeResults } from "../sweep/results.js";
import { runSweep } from "../sweep/scheduler.js";
import { type SweepSpec, SweepSpecSchema } from "../sweep/spec.js";
import { Tokenizer } from "../tokenizer/index.js";
import { writeFileAtomic } from "../util/atomic.js";
import { SynthmixError } from "../util/errors.js";
import { fmtDuration } from "../util/progress.js";
import { type StudyConfig, StudyConfigSchema, studyGeneratorModels } from "./config.js";
import { trainGeneratorModel } from "./generator.js";
import { chainKeys, type StageName, StudyStateFile } from "./state.js";
import { autoBudgets, checkSupply, extraGridRuns } from "./supply.js";

export interface LoadedStudy {
  config: StudyConfig;
  /** Absolute workspace path. */
  workspace: string;
  /** Folder that relative paths in the config are resolved against. */
  baseDir: string;
  file?: string;
}

export function loadStudy(path: string, workspaceOverride?: string): LoadedStudy {
  const config = loadConfigFile(path, StudyConfigSchema);
  const baseDir = dirname(resolve(path));
  // resolve, not join: an absolute `workspace:` is used as it is (as the sweep spec does).
  const workspace = resolve(workspaceOverride ?? resolve(baseDir, config.workspace ?? "."));
  return { config, workspace, baseDir, file: path };
}

export interface StudyRunOptions {
  signal?: AbortSignal;
  progress?: "bar" | "plain" | "silent";
  /** Stop after this stage (for inspection). */
  until?: StageName | "fit" | "analyze" | "report";
  log?: (line: string) => void;
  /** How sweep runs are trained (default: child processes per the sweep's scheduler). */
  executor?: RunExecutor;
  /** Log the plan's whole-study estimate first and the time left at each stage (default: unless silent). */
  eta?: boolean;
}

export interface StudyRunResult {
  workspace: string;
  reportHtml?: string;
  findings: string[];
  elapsedSec: number;
  failedRuns: { id: string; error: string }[];
}

/**
 * Each stage's key (its config section chained with the stage before it: src/study/state.ts), with the
 * generators and sweep spec they are computed from.
 */
export function studyStageKeys(study: LoadedStudy): {
  generators: string[];
  generatorNames: string[];
  sweepSpec: SweepSpec;
  keys: Record<StageName, string>;
} {
  const { config } = study;
  const generators = studyGenerators(study);
  const generatorNames = generators.map((g) => generatorName(parseGeneratorSpec(g)));
  const sweepSpec = studySweepSpec(study, generatorNames);
  const keys = chainKeys({
    corpus: { ...config.corpus, seed: config.seed },
    tokenizer: config.tokenizer,
    generatorModel: config.generatorModels.length
      ? studyGeneratorModels(config)
      : (config.generatorModel ?? null),
    generate: { generate: config.generate ?? null, generators: generators.map(specKey) },
    sweep: sweepSpec,
  });
  return { generators, generatorNames, sweepSpec, keys };
}

/**
 * Native decode engines per study thread for the self-trained generators. Each engine's step runs on a
 * libuv worker while the JS thread turns the last step's tokens into the next step's rows (and journals
 * and checks the answers), so with one engine per core the cores wait on the JS thread; with two, one
 * computes while the other waits. Measured on 2 cores (`synthmix generate --style hq --max-docs 60`, 429k
 * output tokens, the same texts in every configuration): 1 engine x 64 slots 26.5-28.0 s, 2 x 64 17.6-19.5 s,
 * 2 x 128 15.3-15.5 s, 4 x 32 13.6 s, 4 x 64 13.2-14.3 s (BENCHMARKS.md, "Session 18"). libuv runs at most
 * 4 steps at a time (its default pool), so beyond 4 engines the rest queue.
 */
export const NATIVE_ENGINES_PER_THREAD = 2;

/** The generator specs of a study: configured endpoints plus the self-trained model, if any. */
export function studyGenerators(study: LoadedStudy): string[] {
  const { config, workspace, baseDir } = study;
  const specs = config.generate?.generators.map((g) => resolveGguf(g, baseDir)) ?? [];
  for (const gm of studyGeneratorModels(config)) {
    const path = join(workspace, "generator", `${gm.name}.gguf`);
    // The native engine (src/generate/backends/native.ts): batched decoding with a KV cache whose outputs
    // do not depend on batch composition, so the demo gives the same bytes for the same seed; it falls
    // back (with a warning) to llama.cpp with one sequence on one thread when the addon is missing.
    // NATIVE_ENGINES_PER_THREAD 1-thread engines per study thread side by side (engines= is not in the
    // stage key: the outputs do not depend on it).
    const engines = NATIVE_ENGINES_PER_THREAD * config.threads;
    specs.push(`native:${path}?name=${gm.name}&concurrency=32&threads=1&engines=${engines}`);
  }
  return specs;
}

function resolveGguf(spec: string, baseDir: string): string {
  const kind = spec.startsWith("gguf:") ? "gguf" : spec.startsWith("native:") ? "native" : null;
  if (!kind) return spec;
  const rest = spec.slice(kind.length + 1);
  return isAbsolute(rest) ? spec : `${kind}:${resolve(baseDir, rest)}`;
}

/** The sweep spec of a study: generators, natural source and test corpora filled in from the study. */
export function studySweepSpec(study: LoadedStudy, generatorNames: string[]): SweepSpec {
  const { config } = study;
  const name = corpusName(config);
  return SweepSpecSchema.parse({
    ...config.sweep,
    grid: config.sweep.grid
      ? {
          ...config.sweep.grid,
          generators: config.sweep.grid.generators.length ? config.sweep.grid.generators : generatorNames,
        }
      : undefined,
    runs: [...(config.sweep.runs ?? []), ...extraGridRuns(config.extraGrids)],
    natural: config.sweep.natural ?? `corpus/${name}/train.jsonl`,
    testCorpora: config.sweep.testCorpora ?? [name],
  });
}

export function corpusName(config: StudyConfig): string {
  return config.corpus.name ?? (config.corpus.from === "brown" ? "brown" : "natural");
}

/**
 * Run a whole study: corpus -> tokenizer -> (self-trained generator) -> synthetic data -> mixtures and
 * sweep -> fits -> unigram analysis -> report. Each stage is skipped when complete for the current
 * config, resumes when partial, and is rebuilt (with everything downstream) when its config changed.
 */
export async function runStudy(study: LoadedStudy, opts: StudyRunOptions = {}): Promise<StudyRunResult> {
  const start = Date.now();
  const { config, workspace, baseDir } = study;
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const progress = opts.progress ?? (process.stderr.isTTY ? "bar" : "plain");
  const showBars = progress !== "silent";
  const state = new StudyStateFile(workspace);
  const name = corpusName(config);
  const { generators, generatorNames, sweepSpec, keys } = studyStageKeys(study);
  writeFileAtomic(join(workspace, "study.json"), `${JSON.stringify(config, null, 2)}\n`);

  const clock = (opts.eta ?? progress !== "silent") ? await studyClock(study, log) : null;
  // Declared before the first `done()`: `--until` returns early through it.
  let failedRuns: { id: string; error: string }[] = [];
  /** `fn` returns false when it ran but left work undone: the stage is then not marked complete. */
  const stage = async (s: StageName, fn: () => Promise<unknown>): Promise<boolean> => {
    clock?.stage(s, state.isComplete(s, keys[s]));
    if (state.isComplete(s, keys[s])) {
      log(`[${s}] up to date, skipped`);
      return opts.until !== s;
    }
    const removed = state.begin(s, keys[s]);
    if (removed.length) log(`[${s}] config changed: rebuilding ${removed.join(", ")}`);
    const t0 = Date.now();
    log(`[${s}] ...`);
    const finished = await fn();
    if (opts.signal?.aborted) throw new SynthmixError("INTERRUPTED", "study interrupted; rerun to resume");
    if (finished === false) {
      log(
        `[${s}] incomplete after ${fmtDuration((Date.now() - t0) / 1000)}: a rerun retries what is missing`,
      );
      return opts.until !== s;
    }
    state.complete(s, keys[s]);
    log(`[${s}] done in ${fmtDuration((Date.now() - t0) / 1000)}`);
    return opts.until !== s;
  };
  const tokenizerPath = join(workspace, "tokenizer", "tokenizer.json");

  // 1. corpus: import, clean, split held-out test sets.
  let go = await stage("corpus", async () => {
    const c = config.corpus;
    const from = c.from === "brown" || isAbsolute(c.from) ? c.from : resolve(baseDir, c.from);
    const { from: _from, ...options } = c;
    const stats = await importCorpus({
      ...options,
      from,
      workspace,
      name,
      seed: config.seed,
      progress: showBars,
    });
    log(
      `  ${stats.train.docs} train documents, test sets: ${Object.entries(stats.test)
        .map(([k, v]) => `${k} (${v.docs})`)
        .join(", ")}`,
    );
  });
  if (!go) return done();

  // 2. tokenizer: train a byte-level BPE on the natural training split (or copy a given file).
  go = await stage("tokenizer", async () => {
    const t = config.tokenizer;
    let tok: Tokenizer;
    if (t.file === "gpt2") tok = Tokenizer.gpt2();
    else if (t.file) tok = Tokenizer.fromFile(resolve(baseDir, t.file));
    else {
      const texts = docTexts(readCorpusSplit(workspace, name, "train"));
      tok = await Tokenizer.train(texts, { vocabSize: t.vocabSize });
    }
    tok.save(tokenizerPath);
    log(`  vocabulary ${tok.vocabSize}, sha256 ${tok.sha256.slice(0, 12)}`);
  });
  if (!go) return done();

  // 3. the self-trained generator (offline demo only).
  go = await stage("generatorModel", async () => {
    for (const gm of studyGeneratorModels(config)) {
      const g = await trainGeneratorModel({
        workspace,
        corpusName: name,
        tokenizerPath,
        config: gm,
        seed: config.seed,
        threads: config.threads,
        signal: opts.signal,
        progress: showBars,
        log,
      });
      log(`  generator ${g.name}: ${g.gguf}`);
    }
  });
  if (!go) return done();

  // 4. synthetic data: every style x generator.
  go = await stage("generate", async () => {
    const gen = config.generate;
    if (!gen || generators.length === 0) return;
    const tok = Tokenizer.fromFile(tokenizerPath);
    const auto =
      gen.budgetOutputTokens === "auto"
        ? autoBudgets(sweepSpec, workspace, tok.vocabSize, gen.styles, generatorNames, gen.budgetMargin)
        : null;
    // "auto" sizes every (style, generator) to what the sweep takes from it, so each gets its own call.
    const jobs = gen.styles.flatMap((style) =>
      auto
        ? generators.map((g, i) => ({
            style,
            gens: [g],
            budget: auto.get(`${style}\u0000${generatorNames[i]}`),
          }))
        : [{ style, gens: generators, budget: gen.budgetOutputTokens as number | undefined }],
    );
    for (const { style, gens, budget } of jobs) {
      if (budget === 0) continue;
      const summary = await runGeneration({
        workspace,
        corpusName: name,
        style: isStyleName(style) ? style : resolve(baseDir, style),
        generators: gens,
        seed: config.seed,
        budgetOutputTokens: budget,
        budgetSourceTokens: gen.budgetSourceTokens,
        chunkTokens: gen.chunkTokens,
        countTokens: (s) => tok.encode(s).length,
        tokenizerId: tok.sha256,
        params: {
          temperature: gen.temperature,
          top_p: gen.topP,
          max_tokens: gen.maxTokens,
          seed: config.seed,
        },
        keywords: gen.keywords,
        audiences: gen.audiences,
        minOutputTokens: gen.minOutputTokens,
        lenient: gen.lenient,
        retries: gen.retries,
        timeoutMs: gen.timeoutMs,
        threads: gen.threads ?? config.threads,
        progress,
        signal: opts.signal,
      });
      log(formatSummary(summary));
      // Mixtures built from a partial synthetic folder would be a different study: stop here, and the
      // stage stays incomplete so the rerun retries exactly the missing requests.
      if (!summary.complete && !opts.signal?.aborted) throw new GenerationIncompleteError(summary);
    }
  });
  if (!go) return done();

  // 5. mixtures + the training sweep. Failed runs leave the stage incomplete (retried on rerun); the
  // fits and the report are still written from the runs that finished, and the CLI exits non-zero.
  go = await stage("sweep", async () => {
    const tokenizer = await loadMixTokenizer(tokenizerPath, config.threads);
    await checkSupply(sweepSpec, workspace, tokenizer);
    const summary = await runSweep({
      spec: sweepSpec,
      workspace,
      tokenizer,
      signal: opts.signal,
      progress,
      executor: opts.executor,
    });
    failedRuns = summary.failed;
    if (summary.failed.length) {
      log(
        `  ${summary.failed.length} run(s) failed: ${summary.failed.map((f) => `${f.id}: ${f.error}`).join("; ")}`,
      );
      return false;
    }
  });
  writeResults(workspace);
  if (!go) return done();

  // 6-8. fits, unigram analysis and the report are cheap: always recomputed from the artifacts.
  const resultsDir = join(workspace, "results");
  const fits = fitWorkspace(workspace, {
    bootstrap: config.fit.bootstrap,
    seed: config.seed,
    huberDelta: config.fit.huberDelta,
  });
  writeFitResults(resultsDir, fits);
  // Say what the numbers do not support, where the user reads the log (details in fits.json / report).
  const flagged = fits.fits.fits.filter((f) => f.warnings.length > 0);
  const codes = [...new Set(flagged.flatMap((f) => f.warnings.map((w) => w.code)))];
  log(
    `[fit] done${flagged.length ? `: ${flagged.length} of ${fits.fits.fits.length} fits flagged (${codes.join(", ")})` : ""}`,
  );
  if (opts.until === "fit") return done();
  const analyze = await import("../analyze/index.js");
  // Blind-spot split of the per-token losses of the largest run of each mixture (shown in the report).
  await analyze.analyzeWorkspace(workspace, { seed: config.seed, runs: "largest" });
  log(`[analyze] done`);
  if (opts.until === "analyze") return done();
  const { writeReport } = await import("../report/index.js");
  const out = await writeReport(workspace, { title: config.report.title, notes: config.report.notes });
  log(`[report] ${out.html}`);
  return { ...done(), reportHtml: out.html, findings: out.findings, failedRuns };

  function done(): StudyRunResult {
    return { workspace, findings: [], elapsedSec: (Date.now() - start) / 1000, failedRuns };
  }
}

/** The plan's clock (src/study/plan.ts); imported lazily because the plan itself reads this module. */
async function studyClock(study: LoadedStudy, log: (line: string) => void) {
  const { planStudy, StudyClock } = await import("./plan.js");
  return new StudyClock(await planStudy(study), log);
}

function isStyleName(style: string): boolean {
  return /^[A-Za-z0-9_]+$/.test(style);
}

async function* docTexts(docs: AsyncIterable<Doc>): AsyncGenerator<string> {
  for await (const d of docs) yield d.text;
}
