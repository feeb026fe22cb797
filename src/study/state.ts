import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { writeJsonAtomic } from "../util/atomic.js";
import { stableHash } from "../util/hash.js";
import { readJsonFile } from "../util/json.js";

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

const StageRecordSchema = z.object({ key: z.string(), complete: z.boolean() });
type StageRecord = z.infer<typeof StageRecordSchema>;

/** `<ws>/study-state.json`: per stage, the key of its last run and whether it completed. */
export const StudyStateSchema = z.object({
  version: z.literal(1),
  stages: z.partialRecord(z.enum(STAGES), StageRecordSchema),
});
export type StudyState = z.infer<typeof StudyStateSchema>;

export function chainKeys(sections: Record<StageName, unknown>): Record<StageName, string> {
  const keys = {} as Record<StageName, string>; // filled for every stage by the loop below
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
      ? readJsonFile(this.path, StudyStateSchema, {
          code: "BAD_STUDY_STATE",
          what: "the study state (study-state.json)",
          hint: `delete ${this.path} and rerun: each stage runs again, reusing complete outputs whose own resume keys match`,
        })
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
