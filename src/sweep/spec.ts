import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { parseDocument } from "yaml";
import { z } from "zod";
import { loadConfigFile } from "../config/index.js";
import { parseCount } from "../mix/count.js";
import { OptimizerConfigSchema } from "../train/schema.js";
import { SynthmixError } from "../util/errors.js";
import { IdSchema } from "../util/ids.js";
import { unknownPlaceholderMessage, unknownPlaceholders } from "../util/placeholders.js";

/** A token count as people write it (2000000, "2e6", "2M", "500k"). */
export const CountSchema = z.union([z.number(), z.string()]).transform((v, ctx) => {
  try {
    return parseCount(v, "token count");
  } catch (e) {
    ctx.addIssue({ code: "custom", message: (e as Error).message });
    return z.NEVER;
  }
});
const Count = CountSchema;

/** A ladder name ("s3") or an explicit architecture (useful for tiny test models). */
export const ModelEntrySchema = z.union([
  IdSchema,
  z.strictObject({
    name: IdSchema,
    nLayer: z.number().int().positive(),
    dModel: z.number().int().positive(),
    nHead: z.number().int().positive(),
    /**
     * Peak learning rate of this model (overrides train.optimizer.lr): a grid from ~3k to ~600k
     * parameters has no single good LR (small models want ~1e-2, larger ones ~3e-3; docs/sweep.md).
     */
    lr: z.number().positive().optional(),
  }),
]);
export type ModelEntry = z.infer<typeof ModelEntrySchema>;

const Share = z.number().min(0).max(1);
/** "natural", or synthetic shares per style: `{hq: 0.33}`, `{hq: [0.33, 0.67, 1]}` (lists expand). */
export const MixtureEntrySchema = z.union([
  z.literal("natural"),
  z.record(z.string().regex(/^[A-Za-z0-9_]+$/), z.union([Share, z.array(Share).min(1)])),
]);

export const RunEntrySchema = z.strictObject({
  model: ModelEntrySchema,
  tokens: Count,
  mixture: z.union([z.literal("natural"), z.record(IdSchema, Share)]),
  generator: IdSchema.optional(),
  seed: z.number().int().optional(),
});

const CommandString = z.string().superRefine((v, ctx) => {
  const bad = unknownPlaceholders(v);
  if (bad.length > 0) {
    ctx.addIssue({
      code: "custom",
      message: unknownPlaceholderMessage(bad),
    });
  }
});

/** Slurm resources of a job (sbatch options); every field is optional and omitted when unset. */
export const SlurmResourcesSchema = z.strictObject({
  partition: z.string().min(1).optional(),
  account: z.string().min(1).optional(),
  qos: z.string().min(1).optional(),
  /** Wall-time limit as sbatch takes it ("30", "2:00:00", "1-00:00:00"). */
  time: z.string().min(1).optional(),
  cpusPerTask: z.number().int().positive().optional(),
  /** Memory per node as sbatch takes it ("4G", "16000M"). */
  mem: z.string().min(1).optional(),
  /** Generic resources ("gpu:8", "gpu:a100:4"). */
  gres: z.string().min(1).optional(),
  constraint: z.string().min(1).optional(),
  /** More sbatch options, verbatim (e.g. ["--exclusive", "--nodes=1"]). */
  extraArgs: z.array(z.string().min(1)).optional(),
  /** Planning throughput: training FLOP/s one job of this class reaches (for `--dry-run` hours). */
  flopsPerSec: z.number().positive().optional(),
});
export type SlurmResources = z.infer<typeof SlurmResourcesSchema>;

/** A resource class: the runs whose model name is listed, or whose N is in [minParams, maxParams). */
export const SlurmClassSchema = SlurmResourcesSchema.extend({
  name: z.string().regex(/^[A-Za-z0-9_.-]+$/),
  models: z.array(z.string()).optional(),
  minParams: z.number().min(0).optional(),
  maxParams: z.number().positive().optional(),
});
export type SlurmClass = z.infer<typeof SlurmClassSchema>;

export const SlurmSchema = SlurmResourcesSchema.extend({
  /** Array throttle: at most this many tasks of one job array run at once (`--array=0-n%max`). */
  maxConcurrent: z.number().int().positive().optional(),
  /** Shell lines run in each task before the command (`module load cuda`, `source venv/bin/activate`). */
  setup: z.array(z.string()).default([]),
  /** Seconds between two squeue polls while `sweep run` waits for its jobs. */
  pollSec: z.number().positive().default(15),
  /** Run external-trainer commands under `srun` (one task; torchrun then spreads over the GPUs). */
  srun: z.boolean().default(true),
  /** Resource classes per model size; the first match wins, runs matching none use the fields above. */
  classes: z.array(SlurmClassSchema).default([]),
  /** Job name prefix (the workspace hash is appended, so two workspaces never share jobs). */
  jobName: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/)
    .default("synthmix"),
});
export type SlurmConfig = z.infer<typeof SlurmSchema>;

export const SchedulerSchema = z.strictObject({
  /** Where runs train: "local" child processes on this machine, or "slurm" job arrays. */
  executor: z.enum(["local", "slurm"]).default("local"),
  slurm: SlurmSchema.optional(),
  /** Cores (threads) to fill; default 2. */
  cores: z.number().int().positive().default(2),
  /**
   * Threads rule: a model with at least this many non-embedding parameters runs alone using every
   * core; smaller ones run one per core with one thread each (see docs/sweep.md).
   */
  allCoresFromParams: z.number().positive().default(3e6),
  /**
   * "params": the rule above. "measure": time a few training steps of each model at 1 and at `cores`
   * threads and give a model every core when that is at least `minSpeedup` times faster.
   */
  threadsBy: z.enum(["params", "measure"]).default("params"),
  minSpeedup: z.number().positive().default(1.6),
  /** Extra attempts for a failed run (each resumes from its checkpoint). */
  retries: z.number().int().min(0).default(1),
  /** Argv of a run's child process; {config} {runDir}/{run_dir} {id} {threads} are substituted. */
  command: z.array(CommandString).min(1).optional(),
  /** External trainer (src/train/external.ts) command template, and which models use it (default all). */
  external: z
    .strictObject({ command: CommandString.pipe(z.string().min(1)), models: z.array(z.string()).optional() })
    .optional(),
});

export const SweepSpecSchema = z
  .strictObject({
    /** The workspace folder, relative to the spec file (default: the spec file's folder). */
    workspace: z.string().optional(),
    /** Paths below are relative to the workspace. */
    tokenizer: z.string().default("tokenizer/tokenizer.json"),
    /** Natural training documents; default: the only `corpus/<name>/train.jsonl`. */
    natural: z.string().optional(),
    /** Folder of a synthetic source; {style} and {generator} are substituted. */
    synthetic: z.string().default("synthetic/{style}-{generator}"),
    /** Test sets: corpora under corpus/ whose test/<domain>.jsonl are used (default all). */
    testCorpora: z.array(z.string()).optional(),
    contextLength: z.number().int().positive().default(64),
    grid: z
      .strictObject({
        models: z.array(ModelEntrySchema).min(1),
        tokens: z.array(Count).min(1),
        mixtures: z.array(MixtureEntrySchema).min(1),
        generators: z.array(IdSchema).default([]),
        seeds: z.array(z.number().int()).default([1]),
      })
      .optional(),
    runs: z.array(RunEntrySchema).optional(),
    /** Repeat a source's documents when a mixture needs more than it holds (counted in the manifest). */
    allowRepeat: z.boolean().default(false),
    train: z
      .strictObject({
        batchSize: z.number().int().positive().optional(),
        gradAccum: z.number().int().positive().optional(),
        optimizer: OptimizerConfigSchema.partial().optional(),
        evalEvery: z.number().int().min(0).optional(),
        evalTokens: z.number().int().positive().optional(),
        checkpointEvery: z.number().int().min(0).optional(),
        checkpointSec: z.number().positive().optional(),
        sampling: z.enum(["epoch", "random"]).optional(),
      })
      .default({}),
    scheduler: SchedulerSchema.default(SchedulerSchema.parse({})),
  })
  .refine((s) => s.grid !== undefined || (s.runs !== undefined && s.runs.length > 0), {
    message: "give a grid or a list of runs",
  });
export type SweepSpec = z.infer<typeof SweepSpecSchema>;
export type SweepSpecInput = z.input<typeof SweepSpecSchema>;

export interface LoadedSpec {
  spec: SweepSpec;
  /** Absolute workspace path. */
  workspace: string;
  file?: string;
}

/**
 * Read a grid file, or a study config holding the grid under `sweep:` (its `workspace` is inherited).
 * The workspace is resolved relative to the file.
 */
export function loadSweepSpec(path: string): LoadedSpec {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new SynthmixError("CONFIG", `${path}: cannot read (${(e as Error).message})`);
  }
  const top = (parseDocument(text).toJS() ?? {}) as Record<string, unknown>;
  let spec: SweepSpec;
  let workspace: string | undefined;
  if (top.sweep && typeof top.sweep === "object" && !top.grid && !top.runs) {
    const study = loadConfigFile(
      path,
      z.looseObject({ workspace: z.string().optional(), sweep: SweepSpecSchema }),
    );
    spec = study.sweep;
    workspace = spec.workspace ?? study.workspace;
  } else {
    spec = loadConfigFile(path, SweepSpecSchema);
    workspace = spec.workspace;
  }
  workspace = resolve(dirname(path), workspace ?? ".");
  return { spec, workspace, file: path };
}

export function resolveSpec(input: SweepSpecInput, workspace: string): LoadedSpec {
  const spec = SweepSpecSchema.parse(input);
  return { spec, workspace: resolve(workspace) };
}

export function wsPath(workspace: string, p: string): string {
  return isAbsolute(p) ? p : join(workspace, p);
}

/** The natural source: the spec's `natural`, else the single `corpus/<name>/train.jsonl`. */
export function naturalSourcePath(spec: SweepSpec, workspace: string): string {
  if (spec.natural) return wsPath(workspace, spec.natural);
  const root = join(workspace, "corpus");
  const found = existsSync(root)
    ? readdirSync(root)
        .sort()
        .filter((c) => existsSync(join(root, c, "train.jsonl")))
    : [];
  if (found.length !== 1) {
    throw new SynthmixError(
      "SWEEP_CONFIG",
      found.length === 0
        ? `no natural corpus found (${root}/<name>/train.jsonl)`
        : `several corpora found (${found.join(", ")}); say which to use`,
      { hint: "set `natural: corpus/<name>/train.jsonl` in the sweep config" },
    );
  }
  return join(root, found[0], "train.jsonl");
}
