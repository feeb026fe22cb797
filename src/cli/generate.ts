import { existsSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { SynthmixError } from "../util/errors.js";
import { type Command, collect, nonNegative, withInterrupt } from "./options.js";

const num = nonNegative;

/** `synthmix generate ...` and `synthmix serve ...`: thin wrappers over src/generate/. */
export function register(program: Command): void {
  program
    .command("generate")
    .description(
      "Generate synthetic documents (hq, qa, txbk or a template file) from a corpus with one or more LLMs",
    )
    .requiredOption("--style <style>", "hq | qa | txbk | path to a template .yaml/.json")
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
    .option("--seed <n>", "seed for source sampling and keywords", num("seed"), 0)
    .option("--chunk-tokens <n>", "max tokens per source chunk", num("chunk-tokens"), 300)
    .option("--temperature <t>", "sampling temperature", num("temperature"), 0.7)
    .option("--top-p <p>", "nucleus sampling", num("top-p"))
    .option("--max-tokens <n>", "max output tokens per request", num("max-tokens"), 1024)
    .option("--keywords <n>", "keywords per txbk prompt", num("keywords"), 5)
    .option("--audience <a>", "txbk audience (repeatable; one chosen per document)", collect)
    .option("--strip-markdown", "strip Markdown from outputs")
    .option("--min-output-tokens <n>", "reject shorter outputs", num("min-output-tokens"))
    .option("--max-output-tokens <n>", "reject longer outputs", num("max-output-tokens"))
    .option(
      "--concurrency <n>",
      "requests in flight per endpoint (unless the spec sets concurrency=)",
      num("concurrency"),
    )
    .option("--retries <n>", "retries per request on timeouts/429/5xx", num("retries"), 6)
    .option("--timeout <sec>", "request timeout in seconds", num("timeout"), 120)
    .option("--threads <n>", "llama.cpp threads for gguf generators", num("threads"), 2)
    .option(
      "--tokenizer <file>",
      "tokenizer.json for token counts (default: <workspace>/tokenizer/tokenizer.json if present, else a word estimate)",
    )
    .option("--skip-bad-records", "skip and count malformed source records instead of stopping")
    .option("--json", "print the summary as JSON")
    .option("--quiet", "no progress output")
    .action(async (o) => {
      const { runGeneration, formatSummary, parseGeneratorSpec } = await import("../generate/index.js");
      let workspace = resolve(o.workspace);
      let corpus: string | undefined = o.corpus;
      if (o.source) {
        const src = resolve(o.source);
        corpus = basename(src);
        workspace = dirname(dirname(src));
      }
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
      if (o.tokenizer || existsSync(tokPath)) {
        const { Tokenizer } = await import("../tokenizer/index.js");
        const tok = Tokenizer.fromFile(tokPath);
        countTokens = (s) => tok.encode(s).length;
      }
      const message = "interrupted: finishing in-flight writes (outputs so far are kept; rerun to resume)";
      await withInterrupt(
        async (signal) => {
          const summary = await runGeneration({
            workspace,
            corpusName: corpus,
            style: o.style,
            generators,
            seed: o.seed,
            budgetSourceTokens: o.budgetTokens,
            budgetOutputTokens: o.budgetOutputTokens,
            maxDocs: o.maxDocs,
            chunkTokens: o.chunkTokens,
            countTokens,
            params: { temperature: o.temperature, top_p: o.topP, max_tokens: o.maxTokens },
            keywords: o.keywords,
            audiences: o.audience,
            stripMarkdown: o.stripMarkdown,
            minOutputTokens: o.minOutputTokens,
            maxOutputTokens: o.maxOutputTokens,
            retries: o.retries,
            timeoutMs: o.timeout * 1000,
            threads: o.threads,
            skipBadRecords: !!o.skipBadRecords,
            signal,
            progress: o.quiet ? "silent" : undefined,
          });
          console.log(o.json ? JSON.stringify(summary, null, 2) : formatSummary(summary));
        },
        { message, signals: ["SIGINT"] },
      );
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
    .action(async (o) => {
      const { startServer } = await import("../generate/serve.js");
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
      console.log(`synthmix serve: listening on ${srv.url}`);
      await new Promise<void>((resolveStop) => {
        const stop = () => {
          srv.close().then(resolveStop, resolveStop);
        };
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      });
    });
}
