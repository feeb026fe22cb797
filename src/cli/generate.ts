import { existsSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { parseShard, type Shard } from "../generate/journal.js";
import { GenerationSettingsSchema } from "../generate/options.js";
import { SynthmixError } from "../util/errors.js";
import { type Command, collect, integer, nonNegative, withInterrupt } from "./options.js";

const num = nonNegative;

/** Defaults shown in --help come from the one options schema the library parses with. */
const D = GenerationSettingsSchema.parse({});

/** --shard i/n, else a Slurm array task's index/count, else the whole plan. */
function shardFrom(v: string | undefined): Shard | undefined {
  if (v) return parseShard(v);
  const id = process.env.SLURM_ARRAY_TASK_ID;
  const n = process.env.SLURM_ARRAY_TASK_COUNT;
  if (id === undefined || n === undefined) return undefined;
  // Array indices may start at 1 (--array=1-4) or skip: map the task's position via SLURM_ARRAY_TASK_MIN.
  const min = Number(process.env.SLURM_ARRAY_TASK_MIN ?? 0);
  return parseShard(`${Number(id) - min}/${n}`);
}

/** `synthmix generate ...` and `synthmix serve ...`: thin wrappers over src/generate/. */
export function register(program: Command): void {
  const gen = program
    .command("generate")
    .description(
      "Generate synthetic documents (hq, qa, txbk or a template file) from a corpus with one or more LLMs",
    )
    // Not requiredOption: commander would then demand it of `generate status` too.
    .option("--style <style>", "hq | qa | txbk | path to a template .yaml/.json (required)")
    .option("--workspace <dir>", "workspace directory", ".")
    .option("--corpus <name>", "corpus name: reads <workspace>/corpus/<name>/train.jsonl")
    .option(
      "--source <dir>",
      "corpus folder <workspace>/corpus/<name> (alternative to --workspace + --corpus)",
    )
    .option(
      "--generator <spec>",
      "openai:http://host:8000/v1:model | openai-completions:URL:model | gguf:path.gguf (repeatable; same model = more endpoints)",
      collect,
    )
    .option("--budget-tokens <n>", "source-token budget", num("budget-tokens"))
    .option(
      "--budget-output-tokens <n>",
      "accepted output-token budget per generator",
      num("budget-output-tokens"),
    )
    .option("--max-docs <n>", "at most this many source documents", num("max-docs"))
    .option(
      "--seed <n>",
      `seed for source sampling and keywords, also sent as the sampling seed (default ${D.seed})`,
      integer("seed"),
    )
    .option(
      "--sampling-seed <n>",
      "sampling seed sent to the server (default: --seed)",
      integer("sampling-seed"),
    )
    .option(
      "--chunk-tokens <n>",
      `max tokens per source chunk (default ${D.chunkTokens})`,
      num("chunk-tokens"),
    )
    .option("--temperature <t>", `sampling temperature (default ${D.params.temperature})`, num("temperature"))
    .option("--top-p <p>", "nucleus sampling", num("top-p"))
    .option(
      "--max-tokens <n>",
      `max output tokens per request (default ${D.params.max_tokens})`,
      num("max-tokens"),
    )
    .option("--keywords <n>", `keywords per txbk prompt (default ${D.keywords})`, num("keywords"))
    .option("--audience <a>", "txbk audience (repeatable; one chosen per document)", collect)
    .option("--strip-markdown", "strip Markdown from outputs")
    .option("--min-output-tokens <n>", "reject shorter outputs", num("min-output-tokens"))
    .option("--max-output-tokens <n>", "reject longer outputs", num("max-output-tokens"))
    .option(
      "--concurrency <n>",
      "requests in flight per endpoint (unless the spec sets concurrency=)",
      num("concurrency"),
    )
    .option(
      "--lenient",
      "accept outputs cut off at --max-tokens and skip the QA-pair check (weak demo generators)",
    )
    .option(
      "--retries <n>",
      `failed attempts per request beyond the first, on timeouts/5xx/malformed answers; 429 is back-pressure and not counted (default ${D.retries})`,
      num("retries"),
    )
    .option("--retry-empty <n>", `re-asks of an empty answer (default ${D.retryEmpty})`, num("retry-empty"))
    .option("--retry-truncated", "also re-ask answers cut off at --max-tokens (bounded by --retry-empty)")
    .option("--timeout <sec>", `request timeout in seconds (default ${D.timeoutMs / 1000})`, num("timeout"))
    .option(
      "--stall-timeout <sec>",
      `give an endpoint up after this long without a success (default ${D.stallTimeoutMs / 1000})`,
      num("stall-timeout"),
    )
    .option("--threads <n>", `llama.cpp threads for gguf generators (default ${D.threads})`, num("threads"))
    .option(
      "--shard <i/n>",
      "generate only shard i of n (0-based; default from SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT, else the whole plan)",
    )
    .option(
      "--tokenizer <file>",
      "tokenizer.json for token counts (default: <workspace>/tokenizer/tokenizer.json if present, else a word estimate)",
    )
    .option("--skip-bad-records", "skip and count malformed source records instead of stopping")
    .option("--json", "print the summary as JSON")
    .option("--quiet", "no progress output")
    .action(async (o) => {
      const { runGeneration, formatSummary, parseGeneratorSpec, GenerationIncompleteError } = await import(
        "../generate/index.js"
      );
      let workspace = resolve(o.workspace);
      let corpus: string | undefined = o.corpus;
      if (o.source) {
        const src = resolve(o.source);
        corpus = basename(src);
        workspace = dirname(dirname(src));
      }
      if (!o.style) throw new SynthmixError("CLI", "pass --style hq|qa|txbk|<template file>");
      if (!corpus)
        throw new SynthmixError("CLI", "pass --corpus <name> (or --source <workspace>/corpus/<name>)");
      if (!o.generator?.length) throw new SynthmixError("CLI", "pass at least one --generator");
      const generators = (o.generator as string[]).map((s) => {
        const spec = parseGeneratorSpec(s);
        if (spec.concurrency === undefined && o.concurrency !== undefined)
          spec.concurrency = Math.max(1, o.concurrency);
        return spec;
      });
      const tokPath = o.tokenizer ? resolve(o.tokenizer) : join(workspace, "tokenizer", "tokenizer.json");
      let countTokens: ((s: string) => number) | undefined;
      let tokenizerId: string | undefined;
      if (o.tokenizer || existsSync(tokPath)) {
        const { Tokenizer } = await import("../tokenizer/index.js");
        const tok = Tokenizer.fromFile(tokPath);
        countTokens = (s) => tok.encode(s).length;
        tokenizerId = tok.sha256;
      }
      const message = "interrupted: finishing in-flight writes (outputs so far are kept; rerun to resume)";
      // SIGTERM too: Slurm and sweep stop tasks with it; either way the exit code is 130.
      await withInterrupt(
        async (signal) => {
          const summary = await runGeneration({
            workspace,
            corpusName: corpus,
            style: o.style as string,
            generators,
            seed: o.seed,
            shard: shardFrom(o.shard),
            budgetSourceTokens: o.budgetTokens,
            budgetOutputTokens: o.budgetOutputTokens,
            maxDocs: o.maxDocs,
            chunkTokens: o.chunkTokens,
            countTokens,
            tokenizerId,
            // The CLI always sends a sampling seed (the study does too), so runs against vLLM/SGLang repeat.
            params: {
              temperature: o.temperature,
              top_p: o.topP,
              max_tokens: o.maxTokens,
              seed: o.samplingSeed ?? o.seed ?? D.seed,
            },
            keywords: o.keywords,
            audiences: o.audience,
            stripMarkdown: o.stripMarkdown,
            minOutputTokens: o.minOutputTokens,
            maxOutputTokens: o.maxOutputTokens,
            lenient: o.lenient,
            retries: o.retries,
            retryEmpty: o.retryEmpty,
            retryTruncated: o.retryTruncated,
            timeoutMs: o.timeout === undefined ? undefined : o.timeout * 1000,
            stallTimeoutMs: o.stallTimeout === undefined ? undefined : o.stallTimeout * 1000,
            threads: o.threads,
            skipBadRecords: !!o.skipBadRecords,
            signal,
            progress: o.quiet ? "silent" : undefined,
          });
          console.log(o.json ? JSON.stringify(summary, null, 2) : formatSummary(summary));
          if (signal.aborted)
            process.stderr.write("synthmix: generate interrupted; rerun the same command to resume\n");
          else if (!summary.complete) throw new GenerationIncompleteError(summary);
        },
        { message },
      );
    });

  gen
    .command("status <folder>")
    .description(
      "Which shards of a generation folder (synthetic/<style>-<generator>) are complete, running or missing",
    )
    .option("--shards <n>", "expected shard count (to name the shards that never ran)", num("shards"))
    .option("--json", "print JSON")
    .action(async (folder: string, o: { shards?: number; json?: boolean }) => {
      const { readStatuses } = await import("../generate/index.js");
      const dir = resolve(folder);
      if (!existsSync(dir)) throw new SynthmixError("CLI", `no generation folder ${dir}`);
      const { statuses, running } = readStatuses(dir);
      const n = o.shards ?? Math.max(1, ...statuses.map((s) => Number(s.shard.split("/")[1])));
      const byShard = new Map(statuses.map((s) => [s.shard, s]));
      const rows = Array.from({ length: n }, (_, i) => {
        const key = `${i}/${n}`;
        const st = byShard.get(key);
        const state = running.includes(key)
          ? "running"
          : st
            ? st.complete
              ? "complete"
              : "incomplete"
            : "missing";
        return { shard: key, state, ...st };
      });
      if (o.json) console.log(JSON.stringify(rows, null, 2));
      else {
        for (const r of rows) {
          const st = byShard.get(r.shard);
          console.log(
            `shard ${r.shard}: ${r.state}` +
              (st
                ? ` (${st.docsPlanned} documents planned, ${st.docsIncomplete} incomplete, ${st.requestsFailed} failed requests${st.stoppedBy ? `, stopped: ${st.stoppedBy}` : ""}; ${st.finished})`
                : ""),
          );
        }
      }
      if (rows.some((r) => r.state !== "complete")) process.exitCode = 1;
    });

  program
    .command("serve")
    .description("Serve a local GGUF model over an OpenAI-compatible HTTP API (chat, completions, models)")
    .requiredOption("--model <file>", "path to a .gguf model (never downloaded)")
    .option("--port <n>", "port (0 = any free port)", num("port"), 8000)
    .option("--host <host>", "address to bind", "127.0.0.1")
    .option("--threads <n>", "llama.cpp CPU threads", num("threads"), 2)
    .option("--parallel <n>", "parallel sequences", num("parallel"), 1)
    .option("--model-id <id>", "model id reported by /v1/models")
    .option("--quiet", "do not log requests")
    .option("--json", 'print {"url", "model"} as one JSON document once listening (instead of the text line)')
    .action(async (o) => {
      const { startServer } = await import("../generate/serve.js");
      // Ctrl-C or SIGTERM (a sbatch script ending) closes the server; the exit code is then 130.
      await withInterrupt(
        async (signal) => {
          const srv = await startServer({
            modelPath: resolve(o.model),
            port: o.port,
            host: o.host,
            threads: Math.max(1, o.threads),
            concurrency: Math.max(1, o.parallel),
            modelId: o.modelId,
            log: o.quiet ? undefined : (l) => process.stderr.write(`${l}\n`),
          });
          // A machine-readable first line so scripts and tests can find the port.
          if (o.json) console.log(JSON.stringify({ url: srv.url, model: srv.modelId }));
          else console.log(`synthmix serve: listening on ${srv.url}`);
          if (!signal.aborted)
            await new Promise<void>((r) => signal.addEventListener("abort", () => r(), { once: true }));
          await srv.close();
        },
        { message: "synthmix serve: stopping (in-flight requests are dropped)" },
      );
    });
}
