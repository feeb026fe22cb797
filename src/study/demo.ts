import type { StudyConfigInput } from "./config.js";

const DEMO_NOTE =
  "The generator in this demo is a tiny GPT trained by synthmix itself on the natural training split " +
  "(exported to GGUF and decoded by synthmix's native batched engine), so its HQ/QA/TXBK rewrites are weak " +
  "imitations of the styles. The pipeline, fits and report are real; a real study points " +
  "generate.generators (or --generator) at an LLM, e.g. openai:http://localhost:8000/v1:<model> for vLLM.";

/**
 * The built-in demo study: the Brown corpus with held-out test sets per genre group, a 4k BPE, a
 * self-trained generator, HQ/QA/TXBK data, mixtures at 0/33/67/100% HQ and 33% QA and TXBK, a grid of
 * 3 model sizes x 4 token budgets, fits, analysis and the report. `quick` trims every dimension so the
 * whole loop runs in a few minutes.
 */
export function demoConfig(quick: boolean): StudyConfigInput {
  // Full: 3 sizes x 4 budgets x 6 mixtures = 72 runs. Quick: 2 x 3 x 4 = 24 smaller runs.
  const models = quick
    ? [
        { name: "t1", nLayer: 1, dModel: 32, nHead: 2 },
        { name: "t2", nLayer: 2, dModel: 64, nHead: 2 },
      ]
    : [
        { name: "d1", nLayer: 1, dModel: 64, nHead: 2 },
        { name: "d2", nLayer: 2, dModel: 96, nHead: 2 },
        { name: "d3", nLayer: 3, dModel: 128, nHead: 2 },
      ];
  const mixtures: ("natural" | Record<string, number | number[]>)[] = quick
    ? ["natural", { hq: [0.33, 1] }, { qa: 0.33 }]
    : ["natural", { hq: [0.33, 0.67, 1] }, { qa: 0.33 }, { txbk: 0.33 }];
  return {
    seed: 1,
    corpus: { from: "brown", testFraction: 0.1, testBy: "group" },
    tokenizer: { vocabSize: quick ? 1024 : 2048 },
    generatorModel: {
      name: "synthmix-demo",
      model: quick ? "s1" : "s2",
      tokens: quick ? 300_000 : 1_500_000,
      // The generator must see a whole prompt (template + a source chunk) plus its answer.
      contextLength: 384,
      batchSize: 8,
      lr: 3e-3,
    },
    generate: {
      styles: quick ? ["hq", "qa"] : ["hq", "qa", "txbk"],
      budgetOutputTokens: quick ? 6_000 : 40_000,
      chunkTokens: 120,
      maxTokens: quick ? 96 : 128,
      temperature: 0.8,
      minOutputTokens: 8,
      // The tiny generator rarely stops by itself or writes "Question:/Answer:" pairs.
      lenient: true,
    },
    sweep: {
      contextLength: 64,
      allowRepeat: true,
      grid: {
        models,
        tokens: quick ? [20_000, 40_000, 80_000] : [50_000, 100_000, 200_000, 400_000],
        mixtures,
        seeds: [1],
      },
      train: { batchSize: 16, optimizer: { lr: 3e-3, warmupSteps: 10 }, evalTokens: quick ? 8192 : 32768 },
    },
    fit: { bootstrap: quick ? 100 : 300 },
    report: { title: quick ? "synthmix demo study (quick)" : "synthmix demo study", notes: [DEMO_NOTE] },
  };
}
