/** The demo-shaped model ladder the kernel benchmarks time (3k to 0.6M non-embedding parameters). */
export const BENCH_MODELS = [
  { name: "l1d16", nLayer: 1, dModel: 16, nHead: 2 },
  { name: "l1d32", nLayer: 1, dModel: 32, nHead: 2 },
  { name: "l1d64", nLayer: 1, dModel: 64, nHead: 2 },
  { name: "l2d96", nLayer: 2, dModel: 96, nHead: 2 },
  { name: "l3d128", nLayer: 3, dModel: 128, nHead: 2 },
];

/** The two single-run shapes of bench/train.ts (the "small" and "ref" models), with their batch. */
export const TRAIN_BENCH_MODELS = [
  { name: "small", cfg: { vocabSize: 1024, contextLength: 64, dModel: 64, nLayer: 2, nHead: 2 }, B: 32 },
  { name: "ref", cfg: { vocabSize: 4096, contextLength: 128, dModel: 256, nLayer: 4, nHead: 4 }, B: 16 },
];
