// Library API of the train stage (the sweep and the CLI call these).
export {
  type CheckpointState,
  findCheckpoint,
  loadModelWeights,
  modelTensors,
  readModelConfig,
  writeModel,
} from "./checkpoint.js";
export { BatchSampler, evalWindows, loadTestData, loadTrainData, type TestDomain } from "./data.js";
export { exportGguf } from "./export.js";
export { MetricRecordSchema, readMetrics, runExternal } from "./external.js";
export {
  countParams,
  executedFlopsPerToken,
  LADDER,
  type LadderName,
  modelConfigFor,
  trainingFlops,
} from "./ladder.js";
export { GPT, paramTable, type TensorSpec } from "./model.js";
export { AdamW, clipGradNorm, lrAt } from "./optim.js";
export { decodeSafetensors, encodeSafetensors, readSafetensors, writeSafetensors } from "./safetensors.js";
export { loadModel, type SampleOptions, sample, sampleModel } from "./sample.js";
export * from "./schema.js";
export {
  evalLoss,
  evaluate,
  type FinalRecord,
  resolveDataPath,
  type TrainOptions,
  trainRun,
} from "./trainer.js";
