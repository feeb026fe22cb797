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
const TrainManifestSchema = z.looseObject({ file: z.string().min(1).optional(), dtype: Dtype });
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

/**
 * Fills one micro-batch with `rows` random windows: row r gets tokens[s..s+T) as input and
 * tokens[s+1..s+T] as targets, s uniform in [0, n-T-1]. The windows of optimizer step `step` come from
 * an Rng seeded by (run seed, step), so a resumed run draws exactly the batches it would have drawn.
 * Only the first `validTargets` targets are kept (the rest are -1 = ignored): that is how the last
 * step trains on exactly the remaining token budget.
 */
export class BatchSampler {
  constructor(
    private readonly data: TokenArray,
    private readonly T: number,
    private readonly seed: number,
  ) {}

  rngForStep(step: number): Rng {
    return new Rng(deriveSeed(this.seed, "batch", step));
  }

  fill(rng: Rng, x: Int32Array, y: Int32Array, rows: number, validTargets: number): void {
    const T = this.T;
    const maxStart = this.data.length - T - 1;
    for (let r = 0; r < rows; r++) {
      const s = rng.int(maxStart + 1);
      for (let t = 0; t < T; t++) {
        const i = r * T + t;
        x[i] = this.data[s + t];
        y[i] = i < validTargets ? this.data[s + t + 1] : -1;
      }
    }
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
