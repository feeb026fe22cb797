// The library entry point: every stage is importable on its own (typed exports).

// Stage namespaces (names inside stages may repeat across stages, so they are not flattened).
export * as analyze from "./analyze/index.js";
export * as config from "./config/index.js";
export * as corpus from "./corpus/index.js";
export * from "./corpus/types.js";
export * as fit from "./fit/index.js";
export * as generate from "./generate/index.js";
export * as mix from "./mix/index.js";
export * from "./mix/manifest.js";
export * as report from "./report/index.js";
export * as study from "./study/index.js";
export * as sweep from "./sweep/index.js";
export * as tokenizer from "./tokenizer/index.js";
export * as train from "./train/index.js";
export * from "./train/kernels/types.js";
export * from "./train/schema.js";
export * from "./util/atomic.js";
export * from "./util/errors.js";
export * from "./util/hash.js";
export * from "./util/progress.js";
export * from "./util/rng.js";
export * from "./util/tokenfile.js";
