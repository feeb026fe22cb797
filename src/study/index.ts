// The study stage: one config -> the whole pipeline, resumable.
export * from "./config.js";
export { demoConfig } from "./demo.js";
export { trainGeneratorModel } from "./generator.js";
export { formatPlan, planStudy, type StudyPlan } from "./plan.js";
export * from "./run.js";
export { STAGES, type StageName, StudyStateFile } from "./state.js";
