export * from "./format.js";
export type * from "./results.js";
export * from "./unigram.js";
export * from "./workspace.js";
