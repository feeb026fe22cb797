import { existsSync } from "node:fs";
import { join } from "node:path";
import { listStatuses } from "../sweep/registry.js";
import { type LoadedStudy, studyStageKeys } from "./run.js";
import { STAGES, type StageName, StudyStateFile } from "./state.js";

export interface StudyStatus {
  workspace: string;
  /**
   * Per stage: complete (for this config), partial (started under this config), stale (done or started
   * under another config: `study run` rebuilds it and everything after it) or not started.
   */
  stages: { stage: StageName; state: "complete" | "partial" | "stale" | "not started" }[];
  /** The sweep's runs by state (runs/<id>/status.json); planned = registered so far. */
  runs: { planned: number; done: number; running: number; pending: number; failed: number };
  /** The report, once written. */
  reportHtml: string | null;
}

/** Where a study stands, read from its workspace (nothing is run or changed). */
export function studyStatus(study: LoadedStudy): StudyStatus {
  const { workspace } = study;
  const { keys } = studyStageKeys(study);
  const state = new StudyStateFile(workspace);
  const stages = STAGES.map((stage) => {
    const r = state.record(stage);
    const s = !r ? "not started" : r.key !== keys[stage] ? "stale" : r.complete ? "complete" : "partial";
    return { stage, state: s as StudyStatus["stages"][number]["state"] };
  });
  const runs = { planned: 0, done: 0, running: 0, pending: 0, failed: 0 };
  for (const st of existsSync(join(workspace, "runs")) ? listStatuses(workspace) : []) {
    runs.planned++;
    runs[st.status]++;
  }
  const report = join(workspace, "report", "index.html");
  return { workspace, stages, runs, reportHtml: existsSync(report) ? report : null };
}

export function formatStudyStatus(s: StudyStatus): string {
  const lines = [`workspace ${s.workspace}`];
  for (const st of s.stages) lines.push(`  ${st.stage.padEnd(15)} ${st.state}`);
  const r = s.runs;
  lines.push(
    `  runs            ${r.done}/${r.planned} done, ${r.running} running, ${r.pending} pending, ${r.failed} failed`,
  );
  if (s.reportHtml) lines.push(`report ${s.reportHtml}`);
  return lines.join("\n");
}
