export {
  type BuildMixtureOptions,
  type BuildMixtureResult,
  buildMixture,
  type MixSourceSpec,
  normaliseShares,
  sharesFromRatios,
} from "./build.js";
export * from "./manifest.js";
export { type MixturePlan, type PlannedUnit, type PlanSource, planMixture, targetTokens } from "./plan.js";
export { loadTokenizedSource, sourceFiles, type TokenizedSource } from "./sources.js";
export { type BuildTestSetsOptions, buildTestSets, findTestFiles, testSetDir } from "./testsets.js";
export { loadMixTokenizer, type MixTokenizer } from "./tokenizer.js";
