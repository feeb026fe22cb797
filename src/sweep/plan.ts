import { join, relative } from "node:path";
import type { MixSourceSpec } from "../mix/build.js";
import { countLabel } from "../mix/count.js";
import { countParams, modelConfigFor, trainingFlops } from "../train/ladder.js";
import { type ModelConfig, type RunConfig, RunConfigSchema } from "../train/schema.js";
import { SynthmixError } from "../util/errors.js";
import { stableHash } from "../util/hash.js";
import { type ModelEntry, naturalSourcePath, type SweepSpec, wsPath } from "./spec.js";

/** One mixture a run trains on: exactly `tokens` tokens of the listed sources. */
export interface PlannedMixture {
  /** Folder name under `<ws>/mixtures/`. */
  id: string;
  /** The id without the budget: mixtures of one family differ only in D (and are nested). */
  family: string;
  /** Label without budget, seed or generator: "natural", "hq-33", "hq-20+qa-20". */
  label: string;
  /** Synthetic styles mixed in ("hq", "hq+qa") or "none". */
  synthetic: string;
  /** Total synthetic share. */
  ratio: number;
  generator: string;
  seed: number;
  tokens: number;
  /** Absolute source paths. */
  sources: MixSourceSpec[];
}

export interface PlannedRun {
  id: string;
  modelName: string;
  model: ModelConfig;
  nonEmbeddingParams: number;
  totalParams: number;
  tokens: number;
  seed: number;
  mixture: PlannedMixture;
  /** Planned training FLOPs (6ND + attention, train/ladder trainingFlops). */
  flops: number;
  threads: number;
  backend: "internal" | "external";
  config: RunConfig;
}

const pct = (r: number) => String(+(r * 100).toFixed(2));

function mixtureFor(
  spec: SweepSpec,
  workspace: string,
  shares: "natural" | Record<string, number>,
  generator: string | undefined,
  seed: number,
  tokens: number,
): PlannedMixture {
  const natural = naturalSourcePath(spec, workspace);
  const synth = shares === "natural" ? [] : Object.entries(shares).filter(([, v]) => v > 0);
  synth.sort(([a], [b]) => a.localeCompare(b));
  const ratio = +synth.reduce((a, [, v]) => a + v, 0).toFixed(12);
  if (ratio > 1 + 1e-9) {
    throw new SynthmixError(
      "SWEEP_CONFIG",
      `mixture ${JSON.stringify(shares)}: synthetic shares sum to ${ratio} > 1`,
    );
  }
  if (synth.length > 0 && !generator) {
    throw new SynthmixError(
      "SWEEP_CONFIG",
      `mixture ${JSON.stringify(shares)} is synthetic but no generator is given`,
      {
        hint: "list generators in grid.generators (the synthetic folder is synthetic/<style>-<generator>)",
      },
    );
  }
  const gen = synth.length > 0 ? (generator ?? "") : "";
  const sources: MixSourceSpec[] = synth.map(([style, share]) => ({
    name: style,
    share,
    path: wsPath(workspace, spec.synthetic.replaceAll("{style}", style).replaceAll("{generator}", gen)),
  }));
  if (ratio < 1 - 1e-9) sources.unshift({ name: "natural", share: +(1 - ratio).toFixed(12), path: natural });
  const label = synth.length === 0 ? "natural" : synth.map(([s, v]) => `${s}-${pct(v)}`).join("+");
  const family = `${label}${gen ? `-${gen}` : ""}-s${seed}`;
  return {
    id: `${family}-d${countLabel(tokens)}`,
    family,
    label,
    synthetic: synth.length === 0 ? "none" : synth.map(([s]) => s).join("+"),
    ratio,
    generator: gen,
    seed,
    tokens,
    sources,
  };
}

function modelFor(
  entry: ModelEntry,
  vocabSize: number,
  contextLength: number,
): { name: string; cfg: ModelConfig; lr?: number } {
  if (typeof entry === "string") return { name: entry, cfg: modelConfigFor(entry, vocabSize, contextLength) };
  const { name, lr, ...arch } = entry;
  if (arch.dModel % arch.nHead !== 0) {
    throw new SynthmixError(
      "SWEEP_CONFIG",
      `model ${name}: dModel ${arch.dModel} is not divisible by nHead ${arch.nHead}`,
    );
  }
  return { name, cfg: { ...arch, contextLength, vocabSize }, ...(lr !== undefined && { lr }) };
}

/**
 * Expand a sweep spec into runs: the grid (models x tokens x mixtures x generators x seeds; natural-only
 * mixtures are not repeated per generator) plus explicit runs, de-duplicated by id. Run ids are
 * readable and end in a hash of everything that determines the result (not threads or backend).
 */
export function planSweep(spec: SweepSpec, workspace: string, vocabSize: number): PlannedRun[] {
  const items = [...gridItems(spec.grid), ...explicitItems(spec.runs)];
  const runs = new Map<string, PlannedRun>();
  for (const it of items) {
    const run = planRun(spec, workspace, vocabSize, it.model, it.tokens, it.shares, it.generator, it.seed);
    if (!runs.has(run.id)) runs.set(run.id, run);
  }
  const planned = [...runs.values()];
  if (spec.train.optimizer?.schedule === "wsd") shareWsdTrunks(workspace, planned);
  return planned;
}

type Shares = "natural" | Record<string, number>;
interface PlanItem {
  model: ModelEntry;
  tokens: number;
  shares: Shares;
  generator?: string;
  seed: number;
}

/** A grid mixture entry with list-valued shares, expanded into the cartesian product of its values. */
export function expandMixture(m: NonNullable<SweepSpec["grid"]>["mixtures"][number]): Shares[] {
  if (m === "natural") return ["natural"];
  let combos: Record<string, number>[] = [{}];
  for (const [style, v] of Object.entries(m)) {
    const values = Array.isArray(v) ? v : [v];
    combos = combos.flatMap((c) => values.map((x) => ({ ...c, [style]: x })));
  }
  return combos;
}

/** One grid cell's runs: natural-only mixtures once, synthetic ones per generator. */
function cellItems(
  model: ModelEntry,
  tokens: number,
  shares: Shares,
  seed: number,
  generators: string[],
): PlanItem[] {
  const synthetic = shares !== "natural" && Object.values(shares).some((v) => v > 0);
  if (!synthetic) return [{ model, tokens, shares: "natural", seed }];
  if (generators.length === 0) return [{ model, tokens, shares, seed }];
  return generators.map((generator) => ({ model, tokens, shares, generator, seed }));
}

/** models x tokens x mixtures x seeds (x generators for synthetic mixtures), in that nesting order. */
function gridItems(g: SweepSpec["grid"]): PlanItem[] {
  if (!g) return [];
  const mixtures = g.mixtures.flatMap(expandMixture);
  const items: PlanItem[] = [];
  for (const model of g.models)
    for (const tokens of g.tokens)
      for (const shares of mixtures)
        for (const seed of g.seeds) items.push(...cellItems(model, tokens, shares, seed, g.generators));
  return items;
}

function explicitItems(runs: SweepSpec["runs"]): PlanItem[] {
  return (runs ?? []).map((r) => ({
    model: r.model,
    tokens: r.tokens,
    shares: r.mixture,
    generator: r.generator,
    seed: r.seed ?? 1,
  }));
}

/**
 * WSD ladders (train/wsd.ts): the runs that differ only in D (same model, mixture, generator, seed and
 * settings) share one constant-LR trunk in `runs/.trunks/`, and each trains only its cooldown. They
 * must then all draw from the same data, the largest budget's (nested) mixture, so a branch's mixture
 * and id name that mixture. Changing the ladder's largest budget therefore makes new runs.
 */
function shareWsdTrunks(workspace: string, runs: PlannedRun[]): void {
  const ladders = new Map<string, PlannedRun[]>();
  for (const r of runs) {
    const key = stableHash({
      model: r.model,
      label: r.mixture.label,
      gen: r.mixture.generator,
      seed: r.seed,
    });
    ladders.set(key, [...(ladders.get(key) ?? []), r]);
  }
  for (const [key, group] of ladders) {
    const largest = group.reduce((a, b) => (b.tokens > a.tokens ? b : a));
    const ladder = [...new Set(group.map((r) => r.tokens))].sort((a, b) => a - b);
    const trunk = join(
      workspace,
      "runs",
      ".trunks",
      `${largest.modelName}-${largest.mixture.id}-${key.slice(0, 8)}`,
    );
    for (const r of group) {
      const hash = r.id.slice(r.id.lastIndexOf("-") + 1);
      r.id = `${r.id.slice(0, r.id.lastIndexOf("-"))}-${stableHash({ hash, wsdData: largest.mixture.id }, 8)}`;
      r.mixture = largest.mixture;
      r.config = {
        ...r.config,
        id: r.id,
        data: { ...r.config.data, train: largest.config.data.train },
        wsd: { trunk, ladder },
      };
    }
  }
}

function planRun(
  spec: SweepSpec,
  workspace: string,
  vocabSize: number,
  entry: ModelEntry,
  tokens: number,
  shares: "natural" | Record<string, number>,
  generator: string | undefined,
  seed: number,
): PlannedRun {
  const { name, cfg, lr } = modelFor(entry, vocabSize, spec.contextLength);
  const mixture = mixtureFor(spec, workspace, shares, generator, seed, tokens);
  const params = countParams(cfg);
  const sched = spec.scheduler;
  const threads = params.nonEmbedding >= sched.allCoresFromParams ? sched.cores : 1;
  const ext = sched.external;
  const backend = ext && (!ext.models || ext.models.includes(name)) ? "external" : "internal";
  // A per-model LR replaces the grid's; the identity then holds the LR the run trains with.
  const t = lr === undefined ? spec.train : { ...spec.train, optimizer: { ...spec.train.optimizer, lr } };
  // checkpointSec changes no result, so it is not in the id (checkpointEvery is, for ids made before).
  const { checkpointSec: _cs, ...tIdentity } = t;
  const identity = {
    model: cfg,
    modelName: name,
    tokens,
    seed,
    mixture: {
      sources: mixture.sources.map((s) => ({
        name: s.name,
        share: s.share,
        path: relative(workspace, s.path),
      })),
      allowRepeat: spec.allowRepeat,
    },
    train: tIdentity,
  };
  const id = `${name}-${mixture.label}${mixture.generator ? `-${mixture.generator}` : ""}-d${countLabel(tokens)}-s${seed}-${stableHash(identity, 8)}`;
  const config = RunConfigSchema.parse({
    id,
    modelName: name,
    model: cfg,
    // Absolute, as `synthmix train --config` and the external backend rewrite them: config.json then
    // stays byte-stable across resumes (the trainer refuses a checkpoint whose config changed).
    data: { train: join(workspace, "mixtures", mixture.id), test: join(workspace, "tokens", "test") },
    tokens,
    seed,
    threads,
    ...(t.batchSize !== undefined && { batchSize: t.batchSize }),
    ...(t.gradAccum !== undefined && { gradAccum: t.gradAccum }),
    ...(t.optimizer !== undefined && { optimizer: t.optimizer }),
    ...(t.evalEvery !== undefined && { evalEvery: t.evalEvery }),
    ...(t.evalTokens !== undefined && { evalTokens: t.evalTokens }),
    ...(t.checkpointEvery !== undefined && { checkpointEvery: t.checkpointEvery }),
    ...(t.checkpointSec !== undefined && { checkpointSec: t.checkpointSec }),
    ...(t.sampling !== undefined && { sampling: t.sampling }),
  });
  return {
    id,
    modelName: name,
    model: cfg,
    nonEmbeddingParams: params.nonEmbedding,
    totalParams: params.total,
    tokens,
    seed,
    mixture,
    flops: trainingFlops(cfg, tokens),
    threads,
    backend,
    config,
  };
}
