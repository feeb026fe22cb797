import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { writeJsonAtomic } from "../util/atomic.js";
import { stableHash } from "../util/hash.js";

/**
 * Which stages of a study are complete, and for which configuration. Each stage's key hashes its own
 * config section together with the key of the stage before it, so a changed section invalidates that
 * stage and everything downstream, and nothing upstream.
 */
export const STAGES = ["corpus", "tokenizer", "generatorModel", "generate", "sweep"] as const;
export type StageName = (typeof STAGES)[number];

/** The workspace folders each stage owns; they are removed when the stage's config changes. */
export const STAGE_ARTIFACTS: Record<StageName, string[]> = {
  corpus: ["corpus"],
  tokenizer: ["tokenizer"],
  generatorModel: ["generator"],
  generate: ["synthetic"],
  sweep: ["mixtures", "tokens", "runs", "results", "report"],
};

interface StageRecord {
  key: string;
  complete: boolean;
}

export interface StudyState {
  version: 1;
  stages: Partial<Record<StageName, StageRecord>>;
}

export function chainKeys(sections: Record<StageName, unknown>): Record<StageName, string> {
  const keys = {} as Record<StageName, string>;
  let prev = "";
  for (const stage of STAGES) {
    prev = stableHash({ prev, stage, section: sections[stage] ?? null });
    keys[stage] = prev;
  }
  return keys;
}

export class StudyStateFile {
  readonly path: string;
  private state: StudyState;
  constructor(readonly workspace: string) {
    this.path = join(workspace, "study-state.json");
    this.state = existsSync(this.path)
      ? (JSON.parse(readFileSync(this.path, "utf8")) as StudyState)
      : { version: 1, stages: {} };
  }

  /** A stage's record: complete or started, under which key; undefined when never started. */
  record(stage: StageName): StageRecord | undefined {
    return this.state.stages[stage];
  }

  isComplete(stage: StageName, key: string): boolean {
    const r = this.state.stages[stage];
    return r !== undefined && r.key === key && r.complete;
  }

  /**
   * Mark a stage as started with `key`. If it was last run (complete or not) under another key, its
   * artifacts and those of every later stage are deleted first: they describe a different config.
   * Returns the stages whose artifacts were removed.
   */
  begin(stage: StageName, key: string): StageName[] {
    const r = this.state.stages[stage];
    const removed: StageName[] = [];
    if (r && r.key !== key) {
      for (const s of STAGES.slice(STAGES.indexOf(stage))) {
        for (const dir of STAGE_ARTIFACTS[s])
          rmSync(join(this.workspace, dir), { recursive: true, force: true });
        delete this.state.stages[s];
        removed.push(s);
      }
    }
    this.state.stages[stage] = { key, complete: false };
    this.save();
    return removed;
  }

  complete(stage: StageName, key: string): void {
    this.state.stages[stage] = { key, complete: true };
    this.save();
  }

  private save(): void {
    writeJsonAtomic(this.path, this.state);
  }
}
