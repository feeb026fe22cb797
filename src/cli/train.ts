import { existsSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, isAbsolute, relative, resolve } from "node:path";
import { parseCount } from "../mix/count.js";
import { readTrainManifest } from "../train/data.js";
import { exportGguf } from "../train/export.js";
import { getKernels } from "../train/kernels/index.js";
import { countParams, modelConfigFor } from "../train/ladder.js";
import { sample } from "../train/sample.js";
import { type RunConfig, RunConfigSchema } from "../train/schema.js";
import { trainRun } from "../train/trainer.js";
import { SynthmixError } from "../util/errors.js";
import { fmtNum } from "../util/progress.js";
import { type Command, JSON_HELP, parseNumber, printResult, withInterrupt } from "./options.js";

function num(what: string, v: string | undefined): number | undefined {
  return v === undefined ? undefined : parseNumber(what, v);
}

/** A JSON file as an unknown value, for a schema to check (errors name the file). */
function readJson(path: string): unknown {
  if (!existsSync(path)) throw new SynthmixError("CLI", `${path} not found`);
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new SynthmixError("CLI", `${path}: ${(err as Error).message}`);
  }
}

/** Builds a RunConfig from CLI flags; data paths are stored relative to the run folder. */
function configFromFlags(o: Record<string, string | undefined>, out: string): RunConfig {
  if (!o.data) throw new SynthmixError("CLI", "--data <mixture folder> is required (or --config)");
  if (!o.tokens) throw new SynthmixError("CLI", "--tokens <n> is required (or --config)");
  const manifest = readTrainManifest(o.data);
  if (manifest.vocabSize === undefined)
    throw new SynthmixError(
      "CLI",
      `${o.data}/manifest.json has no vocabSize (the model's vocabulary comes from it)`,
    );
  const context = num("--context", o.context) ?? 128;
  const model = modelConfigFor(o.model ?? "s1", manifest.vocabSize, context);
  const rel = (p: string) => relative(out, resolve(p)) || ".";
  const optimizer = {
    lr: num("--lr", o.lr),
    minLrRatio: num("--min-lr-ratio", o.minLrRatio),
    warmupSteps: num("--warmup", o.warmup),
    weightDecay: num("--weight-decay", o.weightDecay),
  };
  return RunConfigSchema.parse({
    id: o.id ?? basename(resolve(out)),
    modelName: o.model ?? "s1",
    model,
    data: { train: rel(o.data), ...(o.test ? { test: rel(o.test) } : {}) },
    tokens: parseCount(o.tokens, "--tokens"),
    batchSize: num("--batch", o.batch),
    gradAccum: num("--grad-accum", o.gradAccum),
    optimizer: Object.fromEntries(Object.entries(optimizer).filter(([, v]) => v !== undefined)),
    seed: num("--seed", o.seed),
    evalEvery: num("--eval-every", o.evalEvery),
    evalTokens: num("--eval-tokens", o.evalTokens),
    checkpointEvery: num("--checkpoint-every", o.checkpointEvery),
    threads: num("--threads", o.threads),
  });
}

/** `synthmix train` and `synthmix sample`: thin wrappers over src/train/. */
export function register(program: Command): void {
  program
    .command("train")
    .description("Train one GPT on a token mixture (resumes if --out holds a checkpoint)")
    .option("--config <file>", "a RunConfig JSON (runs/<id>/config.json); flags below are then ignored")
    .option("--data <dir>", "mixture folder with tokens.bin + manifest.json")
    .option("--test <dir>", "test-set folder with manifest.json + <domain>.bin")
    .option("--model <name>", "ladder size s1..s8 (d_model = 64k, n_layer = k)", "s1")
    .option("--tokens <n>", "training tokens D (e.g. 2e6, 2M)")
    .option("--out <dir>", "run folder (default: the --config file's folder)")
    .option("--id <id>", "run id (default: the --out folder name)")
    .option("--batch <n>", "sequences per micro-batch (default 16)")
    .option("--grad-accum <n>", "micro-batches per optimizer step (default 1)")
    .option("--context <n>", "context length T (default 128)")
    .option("--lr <x>", "peak learning rate (default 1e-3)")
    .option("--min-lr-ratio <x>", "final lr / peak lr of the cosine decay (default 0.1)")
    .option("--warmup <n>", "linear warmup steps (default 20)")
    .option("--weight-decay <x>", "AdamW decoupled weight decay (default 0.1)")
    .option("--seed <n>", "seed for init and batch sampling (default 1234)")
    .option("--eval-every <n>", "evaluate every n steps (default 0: only at the end)")
    .option("--eval-tokens <n>", "tokens per test domain (default 32768)")
    .option("--checkpoint-every <n>", "checkpoint every n steps (default: every 10 s of training)")
    .option("--threads <n>", "kernel threads (default 2)")
    .option("--kernels <which>", "native | reference", "native")
    .option("--json", `${JSON_HELP}: {runDir, id, loss, losses, tokensPerSec, ...}`)
    .action(async (o) => {
      let runDir: string;
      let config: RunConfig;
      if (o.config) {
        const cfgDir = dirname(resolve(o.config));
        const raw = RunConfigSchema.parse(readJson(o.config));
        runDir = resolve(o.out ?? cfgDir);
        // Data paths are relative to the config's folder; re-anchor them to the run folder if it differs.
        const move = (p: string) =>
          isAbsolute(p) || cfgDir === runDir ? p : relative(runDir, resolve(cfgDir, p));
        config = {
          ...raw,
          data: { train: move(raw.data.train), ...(raw.data.test ? { test: move(raw.data.test) } : {}) },
        };
      } else {
        if (!o.out) throw new SynthmixError("CLI", "--out <run folder> is required");
        runDir = resolve(o.out);
        const { json: _json, ...flags } = o;
        config = configFromFlags(flags, runDir);
      }
      const kernels = getKernels(o.kernels === "reference" ? "reference" : "native");
      const p = countParams(config.model);
      process.stderr.write(
        `train ${config.id}: ${config.modelName ?? "custom"} (L${config.model.nLayer} d${config.model.dModel} h${config.model.nHead}, ${fmtNum(p.nonEmbedding)} non-embedding / ${fmtNum(p.total)} params), ${fmtNum(config.tokens)} tokens, kernels ${kernels.name}\n`,
      );
      // SIGTERM/SIGINT (a sweep stopping us, Ctrl-C) stop between two steps after a checkpoint.
      const final = await withInterrupt((signal) =>
        trainRun(runDir, config, { progress: true, kernels, signal }),
      );
      const per = Object.entries(final.losses)
        .map(([d, l]) => `${d} ${l.toFixed(4)}`)
        .join(", ");
      printResult(
        o.json,
        { runDir, id: config.id, ...final },
        () =>
          `${runDir}: final loss ${final.loss.toFixed(4)} nats/token (${per}); ${fmtNum(final.tokensPerSec)} tok/s`,
      );
    });

  program
    .command("sample")
    .description("Sample text from a trained run")
    .requiredOption("--run <dir>", "run folder with model.safetensors")
    .requiredOption("--tokenizer <file>", "tokenizer.json used to build the run's data")
    .option("--prompt <text>", "prompt text", "")
    .option("--max-tokens <n>", "tokens to generate", "100")
    .option("--temperature <x>", "0 = greedy", "0.8")
    .option("--top-k <n>", "keep the k most likely tokens (0 = all)", "40")
    .option("--seed <n>", "sampling seed", "0")
    .option("--json", `${JSON_HELP}: {text, ids, promptTokens}`)
    .action(async (o) => {
      // Imported lazily so training does not load the tokenizer code.
      const { Tokenizer } = await import("../tokenizer/index.js");
      const tok = Tokenizer.fromFile(o.tokenizer);
      const prompt = tok.encode(o.prompt);
      const ids = sample(o.run, prompt.length > 0 ? prompt : [Math.max(tok.eotId, 0)], {
        maxTokens: num("--max-tokens", o.maxTokens) ?? 100,
        temperature: num("--temperature", o.temperature),
        topK: num("--top-k", o.topK),
        seed: num("--seed", o.seed),
        stopAt: tok.eotId >= 0 ? tok.eotId : undefined,
      });
      const text = tok.decode([...prompt, ...ids]);
      printResult(o.json, { text, ids: [...prompt, ...ids], promptTokens: prompt.length }, () => text);
    });

  program
    .command("export-gguf")
    .description("Export a trained run as GGUF (llama.cpp gpt2 architecture) for the local generator backend")
    .requiredOption("--run <dir>", "run folder with model.safetensors")
    .requiredOption("--tokenizer <file>", "tokenizer.json used to build the run's data")
    .requiredOption("--out <file>", "output .gguf path")
    .option("--f16", "store weight matrices as f16 (half the size)")
    .option("--name <name>", "general.name in the GGUF metadata")
    .option("--json", `${JSON_HELP}: {out, bytes, f16}`)
    .action((o) => {
      exportGguf(o.run, o.tokenizer, o.out, { f16: Boolean(o.f16), name: o.name });
      printResult(
        o.json,
        { out: o.out, bytes: statSync(o.out).size, f16: Boolean(o.f16) },
        () => `${o.out}: written`,
      );
    });
}
