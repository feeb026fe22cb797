import { existsSync } from "node:fs";
import { join } from "node:path";
import { readCorpusStats } from "../corpus/workspace.js";
import { decodeKernels } from "../generate/native/decoder.js";
import { generatorName, LLAMA_FALLBACK_SLOWDOWN, parseGeneratorSpec } from "../generate/spec.js";
import { type PlannedRun, planSweep } from "../sweep/plan.js";
import { type ClassPlan, formatSlurmPlan, planSlurm } from "../sweep/slurm.js";
import { getKernels } from "../train/kernels/index.js";
import { countParams, modelConfigFor, trainingFlops } from "../train/ladder.js";
import { GPT } from "../train/model.js";
import type { ModelConfig } from "../train/schema.js";
import { fmtDuration, fmtNum } from "../util/progress.js";
import { studyGeneratorModels } from "./config.js";
import type { LoadedStudy } from "./run.js";
import { corpusName, studyGenerators, studySweepSpec } from "./run.js";
import { autoBudgets } from "./supply.js";

export interface StudyPlan {
  workspace: string;
  corpus: { documents: number | null; known: boolean };
  generation: {
    styles: string[];
    generators: string[];
    /** Output tokens per style and generator; null = the whole corpus. With "auto", the largest. */
    outputTokensBudget: number | null;
    /** Accepted output tokens over every style x generator (null without a budget). */
    outputTokensTotal: number | null;
    /** Per (style, generator) budget when `budgetOutputTokens: "auto"`. */
    budgets: { style: string; generator: string; tokens: number }[];
    requestsEstimate: number | null;
    /** Wall time at `tokensPerSec` (an assumption, not a measurement: see docs/study.md). */
    seconds: number | null;
    /** The assumed rate: GEN_TOKENS_PER_SEC, divided by LLAMA_FALLBACK_SLOWDOWN without the native engine. */
    tokensPerSec: number;
    /** Why self-trained generators will run on the slow llama.cpp fallback, or null (native engine). */
    fallback: string | null;
  };
  generatorModel: { model: string; tokens: number; seconds: number } | null;
  /** Every self-trained generator (generatorModel is the first, kept for older readers). */
  generatorModels: { name: string; model: string; tokens: number; seconds: number }[];
  runs: {
    count: number;
    tokens: number;
    flops: number;
    byModel: {
      name: string;
      nonEmbeddingParams: number;
      runs: number;
      tokens: number;
      tokensPerSec: number;
      seconds: number;
    }[];
  };
  /** Estimated wall time of training, from throughput measured here on a few steps of each model. */
  trainingSeconds: number;
  /** Generator training + generation + sweep training (fits/report are not included; see fitSeconds). */
  totalSeconds: number;
  /** Executor slurm: jobs, FLOPs, hours and sbatch lines per resource class. */
  slurm?: { classes: ClassPlan[]; maxConcurrent?: number };
}

/**
 * Accepted output tokens per second of the self-trained GGUF generators per study thread: an assumed
 * rate, since the plan runs before any generator exists. Measured: the full demo's generation through
 * one native engine (src/generate/backends/native.ts) accepted 2.13M tokens in 2m58s, 11.9k/s, with
 * other work on the machine (2026-12-02, load ~3.5); the study now runs two engines per thread, which
 * took 13.2-14.3 s instead of 26.5-28.0 s for 368k accepted tokens on 2 threads (27k/s: 1.9-2.0x; see
 * NATIVE_ENGINES_PER_THREAD), so the plan multiplies this by the study's threads. The 4000 this replaced
 * was node-llama-cpp's rate, and overstated the demo's generation time 3x. Remote generators have no
 * estimate.
 */
export const GEN_TOKENS_PER_SEC = genTokensPerSec(process.env.SYNTHMIX_GEN_TOKENS_PER_SEC);

/** The override, strictly: a positive finite number, or the default when unset; anything else is an error. */
export function genTokensPerSec(raw: string | undefined): number {
  if (raw === undefined || raw.trim() === "") return 12000;
  const v = Number(raw);
  if (!Number.isFinite(v) || v <= 0)
    throw new Error(
      `SYNTHMIX_GEN_TOKENS_PER_SEC=${JSON.stringify(raw)}: expected a positive number of tokens/s`,
    );
  return v;
}

/**
 * The assumed generation time: only when every generator is self-trained (remote ones have no rate).
 * Without the native decode engine they fall back to node-llama-cpp with one sequence, about
 * LLAMA_FALLBACK_SLOWDOWN times slower (src/generate/spec.ts warns), and the estimate says so.
 */
function generationTime(
  config: LoadedStudy["config"],
  generators: number,
  total: number | null,
): { tokensPerSec: number; fallback: string | null; seconds: number | null } {
  const selfTrained = studyGeneratorModels(config).length;
  const engine = decodeKernels();
  const fallback = selfTrained > 0 && "error" in engine ? engine.error : null;
  // The fallback is one sequence on one thread, whatever the study's threads.
  const tokensPerSec =
    fallback === null ? GEN_TOKENS_PER_SEC * config.threads : GEN_TOKENS_PER_SEC / LLAMA_FALLBACK_SLOWDOWN;
  const seconds =
    total !== null && selfTrained > 0 && selfTrained === generators ? total / tokensPerSec : null;
  return { tokensPerSec, fallback, seconds };
}

/**
 * What a study will spend, before anything is spent: documents, generation requests, training runs,
 * tokens and FLOPs, and a time estimate from a measured throughput of each model on this machine.
 */
export async function planStudy(study: LoadedStudy): Promise<StudyPlan> {
  const { config, workspace } = study;
  const name = corpusName(config);
  let documents: number | null = null;
  let known = false;
  if (existsSync(join(workspace, "corpus", name, "stats.json"))) {
    const s = readCorpusStats(workspace, name);
    documents = s.train.docs + Object.values(s.test).reduce((a, t) => a + t.docs, 0);
    known = true;
  } else if (config.corpus.from === "brown") documents = 500;
  const generators = studyGenerators(study).map((g) => generatorName(parseGeneratorSpec(g)));
  const gen = config.generate;
  const vocab = config.tokenizer.file === "gpt2" ? 50257 : config.tokenizer.vocabSize;
  const spec = studySweepSpec(study, generators);
  const runs = planSweep(spec, workspace, vocab);
  const budgets: StudyPlan["generation"]["budgets"] = [];
  if (gen?.budgetOutputTokens === "auto") {
    const m = autoBudgets(spec, workspace, vocab, gen.styles, generators, gen.budgetMargin);
    for (const [k, tokens] of m) {
      const [style, generator] = k.split("\u0000");
      budgets.push({ style, generator, tokens });
    }
  }
  const fixed = typeof gen?.budgetOutputTokens === "number" ? gen.budgetOutputTokens : null;
  const total = budgets.length
    ? budgets.reduce((a, b) => a + b.tokens, 0)
    : fixed !== null && gen
      ? fixed * gen.styles.length * generators.length
      : null;
  const budget = budgets.length ? Math.max(...budgets.map((b) => b.tokens)) : fixed;
  const requestsEstimate = total !== null && gen ? Math.ceil(total / (gen.maxTokens * 0.7)) : null;
  const { tokensPerSec, fallback, seconds: genSeconds } = generationTime(config, generators.length, total);
  const cores = spec.scheduler.cores;
  const byModel = new Map<string, { cfg: ModelConfig; runs: PlannedRun[]; threads: number }>();
  for (const r of runs) {
    const e = byModel.get(r.modelName) ?? { cfg: r.model, runs: [], threads: r.threads };
    e.runs.push(r);
    byModel.set(r.modelName, e);
  }
  const batch = spec.train.batchSize ?? 16;
  const rows: StudyPlan["runs"]["byModel"] = [];
  let coreSeconds = 0;
  for (const [modelName, e] of byModel) {
    const tps = measureTokensPerSec(e.cfg, batch, e.threads);
    const tokens = e.runs.reduce((a, r) => a + r.tokens, 0);
    const seconds = tokens / tps;
    coreSeconds += seconds * e.threads;
    rows.push({
      name: modelName,
      nonEmbeddingParams: countParams(e.cfg).nonEmbedding,
      runs: e.runs.length,
      tokens,
      tokensPerSec: tps,
      seconds,
    });
  }
  const generatorModels: StudyPlan["generatorModels"] = [];
  for (const g of studyGeneratorModels(config)) {
    const cfg = modelConfigFor(g.model, vocab, g.contextLength);
    const tps = measureTokensPerSec(cfg, g.batchSize, config.threads);
    generatorModels.push({ name: g.name, model: g.model, tokens: g.tokens, seconds: g.tokens / tps });
  }
  const trainingSeconds = coreSeconds / cores;
  return {
    workspace,
    corpus: { documents, known },
    generation: {
      styles: gen?.styles ?? [],
      generators,
      outputTokensBudget: budget,
      outputTokensTotal: total,
      budgets,
      requestsEstimate,
      seconds: genSeconds,
      tokensPerSec,
      fallback,
    },
    generatorModel: generatorModels[0] ?? null,
    generatorModels,
    runs: {
      count: runs.length,
      tokens: runs.reduce((a, r) => a + r.tokens, 0),
      flops: runs.reduce((a, r) => a + trainingFlops(r.model, r.tokens), 0),
      byModel: rows,
    },
    trainingSeconds,
    totalSeconds: generatorModels.reduce((a, g) => a + g.seconds, 0) + (genSeconds ?? 0) + trainingSeconds,
    ...(spec.scheduler.executor === "slurm" && {
      slurm: { classes: planSlurm(spec, runs), maxConcurrent: spec.scheduler.slurm?.maxConcurrent },
    }),
  };
}

/** Tokens/s of a few timed training steps (after one warm-up step) on random tokens, per CPU-second. */
function measureTokensPerSec(cfg: ModelConfig, batch: number, threads: number): number {
  const kernels = getKernels();
  kernels.setThreads?.(threads);
  const T = cfg.contextLength;
  const model = new GPT(cfg, kernels, batch, T);
  model.init(1);
  const tokens = new Int32Array(batch * T);
  const targets = new Int32Array(batch * T);
  for (let i = 0; i < tokens.length; i++) {
    tokens[i] = (i * 7919) % cfg.vocabSize;
    targets[i] = (i * 104729 + 1) % cfg.vocabSize;
  }
  const step = () => {
    model.zeroGrad();
    model.forward(tokens, targets);
    model.backward();
  };
  step();
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  let steps = 0;
  while (performance.now() - t0 < 300 || steps < 2) {
    step();
    steps++;
  }
  const wall = (performance.now() - t0) / 1000;
  // On a shared machine wall time measures the neighbours: CPU time over the threads used is what the
  // run costs when it has its cores (the scheduler gives each run its own). Never below the wall time
  // that full use of `threads` cores would take.
  const c = process.cpuUsage(c0);
  const cpu = (c.user + c.system) / 1e6 / threads;
  const sec = Math.min(wall, Math.max(cpu, 1e-6));
  return (steps * batch * T) / sec;
}

export function formatPlan(p: StudyPlan): string {
  const lines = [`study plan — workspace ${p.workspace}`];
  lines.push(`  corpus: ${p.corpus.documents ?? "?"} documents${p.corpus.known ? "" : " (estimated)"}`);
  for (const g of p.generatorModels) {
    lines.push(
      `  generator model ${g.name}: ${g.model}, ${fmtNum(g.tokens)} tokens, ~${fmtDuration(g.seconds)}`,
    );
  }
  lines.push(...generationLines(p.generation));
  lines.push(
    `  training: ${p.runs.count} runs, ${fmtNum(p.runs.tokens)} tokens, ${p.runs.flops.toExponential(2)} FLOPs (6ND + attention)`,
  );
  for (const m of p.runs.byModel) {
    lines.push(
      `    ${m.name.padEnd(6)} N=${fmtNum(m.nonEmbeddingParams).padStart(7)}  ${String(m.runs).padStart(3)} runs  ${fmtNum(m.tokens).padStart(7)} tokens  ${fmtNum(m.tokensPerSec).padStart(7)} tok/s measured  ~${fmtDuration(m.seconds)}`,
    );
  }
  lines.push(`  estimated training wall time: ~${fmtDuration(p.trainingSeconds)} on this machine`);
  lines.push(
    `  estimated study wall time: ~${fmtDuration(p.totalSeconds)} (generator training + generation${p.generation.seconds === null ? " (not estimated)" : ""} + sweep; fits and report not included)`,
  );
  if (p.slurm)
    lines.push(
      "  on slurm, per resource class:",
      formatSlurmPlan(p.slurm.classes, p.slurm.maxConcurrent).replace(/^/gm, "    "),
    );
  return lines.join("\n");
}

function generationLines(g: StudyPlan["generation"]): string[] {
  if (!g.styles.length) return [];
  const budget = g.budgets.length
    ? `budget "auto" (the most one run takes, + margin), ${fmtNum(g.outputTokensTotal ?? 0)} output tokens in all`
    : `budget ${g.outputTokensBudget === null ? "whole corpus" : `${fmtNum(g.outputTokensBudget)} output tokens each`}`;
  const lines = [
    `  generation: styles ${g.styles.join(", ")} x generators ${g.generators.join(", ") || "(none)"}; ${budget}` +
      (g.requestsEstimate ? `, ~${fmtNum(g.requestsEstimate)} requests` : "") +
      (g.seconds !== null
        ? `, ~${fmtDuration(g.seconds)} at an assumed ${fmtNum(g.tokensPerSec)} tok/s`
        : ""),
  ];
  if (g.fallback !== null)
    lines.push(
      `  WARNING: the native decode engine is unavailable (${g.fallback}): the self-trained generators will run on ` +
        `node-llama-cpp, about ${LLAMA_FALLBACK_SLOWDOWN}x slower (run \`npm ci\` to build the addon)`,
    );
  for (const b of g.budgets) {
    lines.push(`    ${`${b.style}-${b.generator}`.padEnd(22)} ${fmtNum(b.tokens).padStart(7)} tokens`);
  }
  return lines;
}

/**
 * Progress of the whole study against its plan, logged as each stage starts: elapsed time and the
 * planned time of the stages still to run (generator training, generation, sweep; the cheap stages
 * count 0). The first line, before anything runs, is the whole study's estimate.
 */
export class StudyClock {
  private readonly start = Date.now();
  private readonly left: Map<string, number>;

  constructor(
    plan: StudyPlan,
    private readonly log: (line: string) => void,
  ) {
    this.left = new Map([
      ["generatorModel", plan.generatorModels.reduce((a, g) => a + g.seconds, 0)],
      ["generate", plan.generation.seconds ?? 0],
      ["sweep", plan.trainingSeconds],
    ]);
    log(
      `[study] plan: ${plan.runs.count} runs, ${fmtNum(plan.runs.tokens)} training tokens; estimated ~${fmtDuration(plan.totalSeconds)} in all` +
        ` (generators ~${fmtDuration(this.left.get("generatorModel") ?? 0)}, generation ${plan.generation.seconds === null ? "not estimated" : `~${fmtDuration(plan.generation.seconds)}`}, training ~${fmtDuration(plan.trainingSeconds)})`,
    );
  }

  /** A stage starts (or was found complete: `skipped`); log elapsed and remaining. */
  stage(name: string, skipped = false): void {
    if (skipped) {
      this.left.delete(name);
      return;
    }
    const remaining = [...this.left.values()].reduce((a, b) => a + b, 0);
    this.left.delete(name);
    this.log(
      `[study] ${name}: elapsed ${fmtDuration((Date.now() - this.start) / 1000)}, ~${fmtDuration(remaining)} of planned work left`,
    );
  }
}
