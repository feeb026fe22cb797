export * from "./format.js";
export * from "./results.js";
export * from "./unigram.js";
export * from "./workspace.js";
