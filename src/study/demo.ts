import type { StudyConfigInput } from "./config.js";

const DEMO_NOTE =
  "The generators in this demo are tiny GPTs trained by synthmix itself on the natural training split " +
  "(exported to GGUF and decoded by synthmix's native batched engine), so their HQ/QA/TXBK rewrites are weak " +
  "imitations of the styles, and every effect measured here is the effect of such a generator, not of an " +
  "LLM rephraser. The pipeline, fits and report are real; a real study points generate.generators (or " +
  "--generator) at an LLM, e.g. openai:http://localhost:8000/v1:<model> for vLLM.";

/** What the design simulation (scripts/simulate-demo-design.ts, docs/study.md) found, said in the report. */
const DESIGN_NOTE =
  "Design check (docs/study.md, measured on this machine): on Brown at these sizes the irreducible loss " +
  "E is not identifiable by a joint fit. The 1-layer models saturate but width barely lowers their floor " +
  "(15x the parameters, 0.24 nats), and the 2-layer model is still in a learning transition (its gain per " +
  "doubling of D grows), so the fits put E at its bound 0 and say so (E_AT_BOUND). Best ratios, speed-ups " +
  "and differences between mixtures are stated only where their intervals resolve them.";

/** Said by the quick demo's report and console summary: its grid is a smoke test, not a measurement. */
export const QUICK_NOTE =
  "QUICK DEMO: THIS GRID IDENTIFIES NOTHING. It is a smoke test of the pipeline (2 tiny models, 3 small " +
  "budgets, 1 seed, synthetic text repeated for several epochs); its irreducible losses E, speed-ups and " +
  "best ratios are not estimates of anything. Run `synthmix demo` (the full grid) for findings.";

/**
 * The full demo's models: ~3k to ~0.22M non-embedding parameters, each with the peak LR that trained it
 * best in a scan on this corpus (docs/study.md, "Calibration"): the 1-layer models want ~1e-2, the
 * 2-layer one ~3e-3 (1e-2 costs it 0.3 nats at 400k tokens). A 3-layer d128 model would cost as much as
 * the other four together and sees the same learning transition as l2d96 (see docs/study.md).
 */
const FULL_MODELS = [
  { name: "l1d16", nLayer: 1, dModel: 16, nHead: 2, lr: 0.01 },
  { name: "l1d32", nLayer: 1, dModel: 32, nHead: 2, lr: 0.01 },
  { name: "l1d64", nLayer: 1, dModel: 64, nHead: 2, lr: 0.005 },
  { name: "l2d96", nLayer: 2, dModel: 96, nHead: 2, lr: 0.0033 },
];
/** An 8x data range; at vocab 512 the Brown train split holds 2.5M tokens, so natural text never repeats. */
const FULL_TOKENS = [150_000, 300_000, 600_000, 1_200_000];
/** Ratios of the ratio study: >= 5 interior ratios plus 0 (natural); r = 1 is left out of the shape fit. */
const RATIO_STUDY = [0.2, 0.33, 0.4, 0.6, 0.67, 0.8];
const GEN_BIG = "gen-s2";
const GEN_SMALL = "gen-s1";

/**
 * The built-in demo study on the Brown corpus (held-out test sets per genre group, a BPE, self-trained
 * generators, HQ/QA/TXBK data). Full: a grid designed (and checked by simulation, scripts/
 * simulate-demo-design.ts) to identify E per mixture, the best ratio in two cells and speed-ups inside
 * the fitted range, with no source repeated. Quick: a smoke test that identifies nothing.
 */
export function demoConfig(quick: boolean): StudyConfigInput {
  return quick ? quickConfig() : fullConfig();
}

function fullConfig(): StudyConfigInput {
  const generator = (name: string, model: string) => ({
    name,
    model,
    tokens: 1_500_000,
    // The generator must see a whole prompt (template + a source chunk) plus its answer.
    contextLength: 384,
    batchSize: 8,
    lr: 3e-3,
  });
  return {
    seed: 1,
    corpus: { from: "brown", testFraction: 0.1, testBy: "group" },
    // Vocab 512, not 2048: 2.5M instead of 1.7M train tokens of Brown (a longer data range without
    // repeats), and the logits no longer dominate the small models' cost (docs/study.md).
    tokenizer: { vocabSize: 512 },
    // Two generator sizes, so the report's generator comparison compares something.
    generatorModels: [generator(GEN_BIG, "s2"), generator(GEN_SMALL, "s1")],
    generate: {
      styles: ["hq", "qa", "txbk"],
      // Exactly what the largest run takes from each (style, generator), + 5%: no source repeats.
      budgetOutputTokens: "auto",
      budgetMargin: 0.05,
      chunkTokens: 120,
      maxTokens: 128,
      temperature: 0.8,
      minOutputTokens: 8,
      // The tiny generator rarely stops by itself or writes "Question:/Answer:" pairs.
      lenient: true,
    },
    sweep: {
      contextLength: 64,
      allowRepeat: false,
      grid: {
        models: FULL_MODELS,
        tokens: FULL_TOKENS,
        mixtures: ["natural", { hq: [0.33, 0.67] }, { qa: 0.33 }, { txbk: 0.33 }],
        generators: [GEN_BIG],
        // Two seeds: near their learning transitions single runs move by up to 0.2 nats with nothing but
        // the float summation order changed (docs/study.md), so one run per cell cannot separate mixtures.
        seeds: [1, 2],
      },
      // Batch 8 x 64 tokens: at these budgets the small models are limited by optimizer steps, and 8
      // beats 16 by 0.2 nats at 100k tokens (docs/study.md). WSD ladders: one constant-LR trunk per
      // model x mixture, each budget a 20% cooldown branch (37% fewer tokens than cosine runs; on the
      // 2-layer model 0.3 nats better at 1.2M). Test loss every 600 steps (307k tokens) on 16k tokens
      // per domain: the curves that show the smallest model converge, at ~5% of the training cost.
      train: {
        batchSize: 8,
        optimizer: { warmupSteps: 10, schedule: "wsd", decayFraction: 0.2 },
        evalTokens: 16384,
        evalEvery: 600,
      },
    },
    // The ratio cells sit at 600k tokens, where the two-seed run of the previous design saw the optimum
    // cross over (docs/study.md): pure HQ was best for l2d96 at 300k (the generator saw the whole natural
    // split, so its text carries more than 300k natural tokens) and natural text at 1.2M, for l1d32 too.
    // A best ratio is only an interior optimum between those ends.
    extraGrids: [
      {
        label: "generator comparison: the small generator on hq-33",
        models: FULL_MODELS,
        tokens: FULL_TOKENS,
        mixtures: [{ hq: 0.33 }],
        generators: [GEN_SMALL],
        seeds: [1, 2],
      },
      {
        label: "ratio study, small model",
        models: [FULL_MODELS[1]],
        tokens: [600_000],
        mixtures: ["natural", { hq: RATIO_STUDY }],
        generators: [GEN_BIG],
        seeds: [1, 2, 3],
      },
      {
        label: "ratio study, large model",
        models: [FULL_MODELS[3]],
        tokens: [600_000],
        mixtures: ["natural", { hq: RATIO_STUDY }],
        generators: [GEN_BIG],
        seeds: [1, 2, 3],
      },
    ],
    fit: { bootstrap: 300 },
    report: { title: "synthmix demo study", notes: [DEMO_NOTE, DESIGN_NOTE] },
  };
}

function quickConfig(): StudyConfigInput {
  return {
    seed: 1,
    corpus: { from: "brown", testFraction: 0.1, testBy: "group" },
    tokenizer: { vocabSize: 1024 },
    generatorModel: {
      name: "synthmix-demo",
      model: "s1",
      tokens: 300_000,
      contextLength: 384,
      batchSize: 8,
      lr: 3e-3,
    },
    generate: {
      styles: ["hq", "qa"],
      budgetOutputTokens: 6_000,
      chunkTokens: 120,
      maxTokens: 96,
      temperature: 0.8,
      minOutputTokens: 8,
      lenient: true,
    },
    sweep: {
      contextLength: 64,
      // 6k synthetic tokens cannot fill 33% of 80k without repeats; the smoke test repeats on purpose.
      allowRepeat: true,
      grid: {
        models: [
          { name: "t1", nLayer: 1, dModel: 32, nHead: 2 },
          { name: "t2", nLayer: 2, dModel: 64, nHead: 2 },
        ],
        tokens: [20_000, 40_000, 80_000],
        mixtures: ["natural", { hq: [0.33, 1] }, { qa: 0.33 }],
        seeds: [1],
      },
      train: { batchSize: 16, optimizer: { lr: 3e-3, warmupSteps: 10 }, evalTokens: 8192 },
    },
    fit: { bootstrap: 100 },
    report: {
      title: "synthmix demo study (quick): a smoke test that identifies nothing",
      notes: [QUICK_NOTE, DEMO_NOTE],
    },
  };
}
