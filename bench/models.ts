/** The demo-shaped model ladder the kernel benchmarks time (3k to 0.6M non-embedding parameters). */
export const BENCH_MODELS = [
  { name: "l1d16", nLayer: 1, dModel: 16, nHead: 2 },
  { name: "l1d32", nLayer: 1, dModel: 32, nHead: 2 },
  { name: "l1d64", nLayer: 1, dModel: 64, nHead: 2 },
  { name: "l2d96", nLayer: 2, dModel: 96, nHead: 2 },
  { name: "l3d128", nLayer: 3, dModel: 128, nHead: 2 },
];
