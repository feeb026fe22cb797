export { assembleDoc, judge } from "./assemble.js";
export { LlamaEndpoint, type LlamaEndpointOptions } from "./backends/llama.js";
export { OpenAIEndpoint, type OpenAIEndpointOptions, parseRetryAfter } from "./backends/openai.js";
export * from "./backends/types.js";
export { type CountTokens, chunkText, estimateTokens } from "./chunk.js";
export { checkOutput, cleanOutput, type RejectReason, stripMarkdown } from "./cleanup.js";
export * from "./gguf.js";
export {
  acquireLock,
  checkManifest,
  type JournalRec,
  parseShard,
  prepareSyntheticSource,
  readStatuses,
  repairJsonlTail,
  type Shard,
  type ShardStatus,
} from "./journal.js";
export { KeywordExtractor } from "./keywords.js";
export * from "./options.js";
export { planDocs, requestKey, shardDocs } from "./plan.js";
export {
  type EndpointState,
  type Outcome,
  type PolicyOptions,
  RequestPolicy,
  StalledError,
} from "./policy.js";
export * from "./prompts/index.js";
export {
  formatSummary,
  GenerationIncompleteError,
  type GenerationOptions,
  type GenerationSummary,
  type GeneratorSummary,
  runGeneration,
} from "./run.js";
export { type RunningServer, type ServeOptions, startServer } from "./serve.js";
export { createEndpoint, type GeneratorSpec, generatorName, parseGeneratorSpec } from "./spec.js";
