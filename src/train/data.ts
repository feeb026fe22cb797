import { existsSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { SynthmixError } from "../util/errors.js";
import { readJsonFile } from "../util/json.js";
import { deriveSeed, Rng } from "../util/rng.js";
import { readTokens } from "../util/tokenfile.js";

export type TokenArray = Uint16Array | Uint32Array;

/**
 * What the trainer needs of a data folder's manifest.json: the token file and its dtype (mixtures) or
 * the domains (test sets). Not the mix stage's full schema: `synthmix train --data` also takes folders
 * written by other tools with only these fields.
 */
const Dtype = z.enum(["uint16", "uint32"]);
const TrainManifestSchema = z.looseObject({
  file: z.string().min(1).optional(),
  dtype: Dtype,
  vocabSize: z.number().int().positive().optional(),
});
const TestManifestSchema = z.looseObject({
  dtype: Dtype,
  domains: z.array(z.looseObject({ name: z.string().min(1), file: z.string().min(1) })).min(1),
});

function readManifest<S extends z.ZodType>(dir: string, what: string, schema: S): z.infer<S> {
  const path = join(dir, "manifest.json");
  if (!existsSync(path)) {
    throw new SynthmixError("MISSING_DATA", `${path} not found`, {
      hint: `point ${what} at a folder written by synthmix (it must hold manifest.json)`,
    });
  }
  return readJsonFile(path, schema, { code: "BAD_MANIFEST", what: `a ${what} manifest` });
}

/** The fields of `<dir>/manifest.json` the trainer reads (any token folder, not only synthmix mixtures). */
export function readTrainManifest(dir: string): z.infer<typeof TrainManifestSchema> {
  return readManifest(dir, "data.train", TrainManifestSchema);
}

export interface TrainData {
  manifest: z.infer<typeof TrainManifestSchema>;
  tokens: TokenArray;
}

/** Loads `<mixture>/tokens.bin` with the dtype recorded in `<mixture>/manifest.json`. */
export function loadTrainData(dir: string, vocabSize: number, contextLength: number): TrainData {
  const manifest = readManifest(dir, "data.train", TrainManifestSchema);
  const tokens = readTokens(join(dir, manifest.file ?? "tokens.bin"), manifest.dtype);
  checkIds(tokens, vocabSize, join(dir, manifest.file ?? "tokens.bin"));
  if (tokens.length < contextLength + 1) {
    throw new SynthmixError(
      "DATA_TOO_SMALL",
      `${dir}: ${tokens.length} tokens, fewer than one training window (context ${contextLength} + 1)`,
    );
  }
  return { manifest, tokens };
}

function checkIds(tokens: TokenArray, vocabSize: number, path: string): void {
  let max = 0;
  for (let i = 0; i < tokens.length; i++) if (tokens[i] > max) max = tokens[i];
  if (tokens.length > 0 && max >= vocabSize) {
    throw new SynthmixError(
      "VOCAB_MISMATCH",
      `${path}: token id ${max} >= the model's vocabSize ${vocabSize}`,
      {
        hint: "set model.vocabSize to the tokenizer's vocabulary size",
      },
    );
  }
}

export interface TestDomain {
  name: string;
  tokens: TokenArray;
}

/** Loads every domain of a test-set folder (`manifest.json` + `<domain>.bin`). */
export function loadTestData(dir: string, vocabSize: number): TestDomain[] {
  const manifest = readManifest(dir, "data.test", TestManifestSchema);
  return manifest.domains.map((d) => {
    const path = join(dir, d.file);
    const tokens = readTokens(path, manifest.dtype);
    checkIds(tokens, vocabSize, path);
    return { name: d.name, tokens };
  });
}

/** How training windows are drawn: each window once per epoch (default), or uniformly with replacement. */
export type Sampling = "epoch" | "random";

/**
 * Draws the training windows: row r of a micro-batch gets tokens[s..s+T) as input and tokens[s+1..s+T]
 * as targets. Only the first `validTargets` targets are kept (the rest are -1 = ignored): that is how
 * the last step trains on exactly the remaining token budget. Every draw is a function of (run seed,
 * step, row) alone, so a resumed run and every WSD branch draw exactly the batches of the same steps.
 *
 * - `epoch`: the file is cut into non-overlapping windows s = o_e + kT (o_e a random offset per epoch
 *   e), visited in a random order per epoch, so a budget of one epoch reads each token once, as the
 *   mixture manifest's `epochs` says, and seeds differ only in order, not in which text they see.
 * - `random`: s uniform in [0, n-T-1] for every row (nanoGPT's get_batch): at "one epoch" about 37% of
 *   the windows are drawn more than once and 37% never, and which ones depends on the seed.
 */
export class BatchSampler {
  private epoch = -1;
  private order: Uint32Array = new Uint32Array(0);
  private offset = 0;
  /** Largest per-epoch offset, and windows per epoch W (the same in every epoch: fixed by that offset). */
  private readonly maxOffset: number;
  private readonly windows: number;

  constructor(
    private readonly data: TokenArray,
    private readonly T: number,
    private readonly seed: number,
    /** Rows per optimizer step (batchSize x gradAccum): row g of the run is row g % this of step g / this. */
    private readonly rowsPerStep: number,
    private readonly sampling: Sampling = "epoch",
  ) {
    if (data.length < T + 1)
      throw new SynthmixError(
        "DATA_TOO_SHORT",
        `training data holds ${data.length} tokens, fewer than one window of ${T + 1}`,
      );
    this.maxOffset = Math.min(T - 1, data.length - 1 - T);
    this.windows = Math.floor((data.length - 1 - this.maxOffset - T) / T) + 1;
  }

  /**
   * Fills rows [firstRow, firstRow + rows) of optimizer step `step` (firstRow = micro-batch x batchSize).
   */
  fill(
    step: number,
    firstRow: number,
    x: Int32Array,
    y: Int32Array,
    rows: number,
    validTargets: number,
  ): void {
    const T = this.T;
    const rng = this.sampling === "random" ? this.rowRng(step, firstRow) : null;
    for (let r = 0; r < rows; r++) {
      const s = rng ? rng.int(this.data.length - T) : this.epochStart(step * this.rowsPerStep + firstRow + r);
      for (let t = 0; t < T; t++) {
        const i = r * T + t;
        x[i] = this.data[s + t];
        y[i] = i < validTargets ? this.data[s + t + 1] : -1;
      }
    }
  }

  /** The step's stream, advanced past the rows of earlier micro-batches (one draw per row). */
  private rowRng(step: number, firstRow: number): Rng {
    const rng = new Rng(deriveSeed(this.seed, "batch", step));
    for (let i = 0; i < firstRow; i++) rng.int(this.data.length - this.T);
    return rng;
  }

  /** Start of the run's g-th window: epoch e = g / W, position g % W of that epoch's order. */
  private epochStart(g: number): number {
    const W = this.windows;
    const e = Math.floor(g / W);
    if (e !== this.epoch) this.startEpoch(e, W);
    return this.offset + this.order[g - e * W] * this.T;
  }

  private startEpoch(e: number, W: number): void {
    const rng = new Rng(deriveSeed(this.seed, "epoch", e));
    this.offset = rng.int(this.maxOffset + 1);
    const order = new Uint32Array(W);
    for (let i = 0; i < W; i++) order[i] = i;
    for (let i = W - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      const tmp = order[i];
      order[i] = order[j];
      order[j] = tmp;
    }
    this.order = order;
    this.epoch = e;
  }
}

/**
 * Fixed evaluation windows: the first min(evalTokens, n-1) target positions of a domain, cut into
 * consecutive non-overlapping windows of T (the last one partial, padded with ignored targets). Every
 * run and every eval step sees the same windows, so losses are comparable across runs.
 */
export function evalWindows(
  tokens: TokenArray,
  T: number,
  evalTokens: number,
): { x: Int32Array; y: Int32Array; rows: number; count: number } {
  const count = Math.max(0, Math.min(evalTokens, tokens.length - 1));
  const rows = Math.ceil(count / T);
  const x = new Int32Array(rows * T);
  const y = new Int32Array(rows * T).fill(-1);
  for (let i = 0; i < count; i++) {
    x[i] = tokens[i];
    y[i] = tokens[i + 1];
  }
  return { x, y, rows, count };
}
