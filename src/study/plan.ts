import { existsSync } from "node:fs";
import { join } from "node:path";
import { readCorpusStats } from "../corpus/workspace.js";
import { generatorName, parseGeneratorSpec } from "../generate/spec.js";
import { type PlannedRun, planSweep } from "../sweep/plan.js";
import { type ClassPlan, formatSlurmPlan, planSlurm } from "../sweep/slurm.js";
import { getKernels } from "../train/kernels/index.js";
import { countParams, modelConfigFor, trainingFlops } from "../train/ladder.js";
import { GPT } from "../train/model.js";
import type { ModelConfig } from "../train/schema.js";
import { fmtDuration, fmtNum } from "../util/progress.js";
import type { LoadedStudy } from "./run.js";
import { corpusName, studyGenerators, studySweepSpec } from "./run.js";

export interface StudyPlan {
  workspace: string;
  corpus: { documents: number | null; known: boolean };
  generation: {
    styles: string[];
    generators: string[];
    outputTokensBudget: number | null;
    requestsEstimate: number | null;
  };
  generatorModel: { model: string; tokens: number; seconds: number } | null;
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
  /** Executor slurm: jobs, FLOPs, hours and sbatch lines per resource class. */
  slurm?: { classes: ClassPlan[]; maxConcurrent?: number };
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
  const budget = gen?.budgetOutputTokens ?? null;
  const requestsEstimate =
    budget && gen
      ? Math.ceil((budget / (gen.maxTokens * 0.7)) * gen.styles.length * generators.length)
      : null;

  const vocab = config.tokenizer.file === "gpt2" ? 50257 : config.tokenizer.vocabSize;
  const spec = studySweepSpec(study, generators);
  const runs = planSweep(spec, workspace, vocab);
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
  let generatorModel: StudyPlan["generatorModel"] = null;
  if (config.generatorModel) {
    const g = config.generatorModel;
    const cfg = modelConfigFor(g.model, vocab, g.contextLength);
    const tps = measureTokensPerSec(cfg, g.batchSize, config.threads);
    generatorModel = { model: g.model, tokens: g.tokens, seconds: g.tokens / tps };
  }
  return {
    workspace,
    corpus: { documents, known },
    generation: { styles: gen?.styles ?? [], generators, outputTokensBudget: budget, requestsEstimate },
    generatorModel,
    runs: {
      count: runs.length,
      tokens: runs.reduce((a, r) => a + r.tokens, 0),
      flops: runs.reduce((a, r) => a + trainingFlops(r.model, r.tokens), 0),
      byModel: rows,
    },
    trainingSeconds: coreSeconds / cores,
    ...(spec.scheduler.executor === "slurm" && {
      slurm: { classes: planSlurm(spec, runs), maxConcurrent: spec.scheduler.slurm?.maxConcurrent },
    }),
  };
}

/** Tokens/s of a few timed training steps (after one warm-up step) on random tokens. */
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
  let steps = 0;
  while (performance.now() - t0 < 300 || steps < 2) {
    step();
    steps++;
  }
  const sec = (performance.now() - t0) / 1000;
  return (steps * batch * T) / sec;
}

export function formatPlan(p: StudyPlan): string {
  const lines = [`study plan — workspace ${p.workspace}`];
  lines.push(`  corpus: ${p.corpus.documents ?? "?"} documents${p.corpus.known ? "" : " (estimated)"}`);
  if (p.generatorModel) {
    lines.push(
      `  generator model: ${p.generatorModel.model}, ${fmtNum(p.generatorModel.tokens)} tokens, ~${fmtDuration(p.generatorModel.seconds)}`,
    );
  }
  if (p.generation.styles.length) {
    lines.push(
      `  generation: styles ${p.generation.styles.join(", ")} x generators ${p.generation.generators.join(", ") || "(none)"}; ` +
        `budget ${p.generation.outputTokensBudget === null ? "whole corpus" : `${fmtNum(p.generation.outputTokensBudget)} output tokens each`}` +
        (p.generation.requestsEstimate ? `, ~${fmtNum(p.generation.requestsEstimate)} requests` : ""),
    );
  }
  lines.push(
    `  training: ${p.runs.count} runs, ${fmtNum(p.runs.tokens)} tokens, ${p.runs.flops.toExponential(2)} FLOPs (6ND + attention)`,
  );
  for (const m of p.runs.byModel) {
    lines.push(
      `    ${m.name.padEnd(6)} N=${fmtNum(m.nonEmbeddingParams).padStart(7)}  ${String(m.runs).padStart(3)} runs  ${fmtNum(m.tokens).padStart(7)} tokens  ${fmtNum(m.tokensPerSec).padStart(7)} tok/s measured  ~${fmtDuration(m.seconds)}`,
    );
  }
  lines.push(`  estimated training wall time: ~${fmtDuration(p.trainingSeconds)} on this machine`);
  if (p.slurm)
    lines.push(
      "  on slurm, per resource class:",
      formatSlurmPlan(p.slurm.classes, p.slurm.maxConcurrent).replace(/^/gm, "    "),
    );
  return lines.join("\n");
}
