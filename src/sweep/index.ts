export {
  childProcessExecutor,
  defaultTrainCommand,
  externalExecutor,
  inProcessExecutor,
  type RunExecutor,
  type RunJob,
} from "./executors.js";
export { type PlannedMixture, type PlannedRun, planSweep } from "./plan.js";
export { type PooledExecutor, pooledExecutor } from "./pool.js";
export {
  type FinalMetric,
  listStatuses,
  type RunState,
  type RunStatus,
  readStatus,
  runDir,
} from "./registry.js";
export * from "./results.js";
export { type RunSweepOptions, runSweep, type SweepSummary } from "./scheduler.js";
export {
  type LoadedSpec,
  loadSweepSpec,
  resolveSpec,
  type SweepSpec,
  type SweepSpecInput,
  SweepSpecSchema,
} from "./spec.js";
export { formatStatusTable, type StatusRow, sweepStatus } from "./status.js";
