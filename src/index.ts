// The library entry point: every stage is importable on its own (typed exports).
export * from "./corpus/types.js";
export * from "./mix/manifest.js";
export * from "./train/kernels/types.js";
export * from "./train/schema.js";
export * from "./util/atomic.js";
export * from "./util/errors.js";
export * from "./util/hash.js";
export * from "./util/progress.js";
export * from "./util/rng.js";
export * from "./util/tokenfile.js";
// Stage namespaces (names inside stages may repeat across stages, so they are not flattened).
export * as analyze from "./analyze/index.js";
export * as fit from "./fit/index.js";
export * as generate from "./generate/index.js";
export * as mix from "./mix/index.js";
export * as sweep from "./sweep/index.js";
export * as tokenizer from "./tokenizer/index.js";
