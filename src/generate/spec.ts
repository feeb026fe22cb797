import { basename } from "node:path";
import { SynthmixError } from "../util/errors.js";
import { LlamaEndpoint } from "./backends/llama.js";
import { NativeEndpoint } from "./backends/native.js";
import { OpenAIEndpoint } from "./backends/openai.js";
import type { Endpoint } from "./backends/types.js";
import { decodeKernels } from "./native/decoder.js";

export interface GeneratorSpec {
  backend: "openai" | "gguf";
  /** Model name sent to the server (openai) or the .gguf path (gguf). */
  model: string;
  /**
   * gguf only: "llama" (node-llama-cpp, any GGUF) or "native" (synthmix's batched GPT-2 decoder, the
   * same sampling; `native:<path>` is short for `gguf:<path>?engine=native`). Not part of request keys:
   * both engines give the same output distribution, so a run may resume on either.
   */
  engine?: "llama" | "native";
  baseUrl?: string;
  mode?: "chat" | "completions";
  concurrency?: number;
  threads?: number;
  /**
   * native engine only: independent decode engines side by side, each with `concurrency` slots on
   * `threads` threads (NativeEndpointOptions.engines; default 1). The outputs do not depend on it.
   */
  engines?: number;
  apiKeyEnv?: string;
  timeoutMs?: number;
  /** Short name used in folder names and ids; default derived from the model. */
  name?: string;
  /** USD per million tokens, for the cost line of the summary. */
  pricePerMInput?: number;
  pricePerMOutput?: number;
}

const HTTP_MODEL = /^(https?:\/\/[^/:?#]+(?::\d+)?(?:\/[^:?#]*)?):([^?]+)(?:\?(.*))?$/;

/**
 * Parse `openai:http://host:8000/v1:model[?concurrency=64&mode=completions&name=x&price_in=0.1&price_out=0.4]`,
 * `openai-completions:...` (base models), `gguf:path/model.gguf[?threads=2&concurrency=1&engine=llama|native]`,
 * or `native:path/model.gguf[?threads=1&concurrency=64&engines=2]` (= gguf with engine=native).
 * The model part may itself contain ':' (Ollama tags such as llama3:8b).
 */
export function parseGeneratorSpec(s: string): GeneratorSpec {
  const bad = (why: string) =>
    new SynthmixError("GENERATOR_SPEC", `bad --generator "${s}": ${why}`, {
      hint: "use openai:http://host:8000/v1:model, gguf:path/to/model.gguf or native:path/to/model.gguf",
    });
  const colon = s.indexOf(":");
  if (colon < 0) throw bad("missing backend prefix");
  const { spec, query } = parseTarget(s.slice(0, colon), s.slice(colon + 1), bad);
  for (const [k, v] of new URLSearchParams(query ?? "")) {
    if (!applyOption(spec, k, v, bad)) throw bad(`unknown option "${k}"`);
  }
  // Checked after every option: engine=native may come after engines=.
  if (spec.engines !== undefined && spec.engine !== "native")
    throw bad("engines is an option of the native engine (native:<path> or engine=native)");
  return spec;
}

/**
 * Options that decide only how a generator's requests are run, never their outputs, and so stay out of
 * a study's stage keys (src/study/run.ts): changing them must not redo finished work. concurrency and
 * threads do not change outputs either, but they have been part of every study key so far; dropping
 * them now would make each existing workspace redo its generate stage, so they stay in.
 */
export const EXECUTION_ONLY_OPTIONS: readonly string[] = ["engines"];

/** The spec string without EXECUTION_ONLY_OPTIONS: what a stage key is derived from. */
export function specKey(s: string): string {
  const q = s.indexOf("?");
  if (q < 0) return s;
  const params = new URLSearchParams(s.slice(q + 1));
  for (const k of EXECUTION_ONLY_OPTIONS) params.delete(k);
  const rest = params.toString();
  return rest ? `${s.slice(0, q)}?${rest}` : s.slice(0, q);
}

type Bad = (why: string) => SynthmixError;

/** The part before `?`: an http(s) base URL and model for openai*, a path for gguf/native. */
function parseTarget(kind: string, rest: string, bad: Bad): { spec: GeneratorSpec; query?: string } {
  if (kind === "openai" || kind === "openai-completions") {
    const m = rest.match(HTTP_MODEL);
    if (!m) throw bad("expected an http(s) base URL followed by ':model'");
    const mode = kind === "openai" ? "chat" : "completions";
    return { spec: { backend: "openai", baseUrl: m[1], model: m[2], mode }, query: m[3] };
  }
  if (kind === "gguf" || kind === "native") {
    const q = rest.indexOf("?");
    const path = q < 0 ? rest : rest.slice(0, q);
    if (!path) throw bad("missing model path");
    const spec: GeneratorSpec = {
      backend: "gguf",
      model: path,
      ...(kind === "native" ? { engine: "native" as const } : {}),
    };
    return { spec, query: q < 0 ? undefined : rest.slice(q + 1) };
  }
  throw bad(`unknown backend "${kind}"`);
}

/** One `?key=value` option; false when the key (or, for mode/engine, the value) is not known. */
function applyOption(spec: GeneratorSpec, k: string, v: string, bad: Bad): boolean {
  const num = () => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw bad(`${k} must be a positive number`);
    return n;
  };
  switch (k) {
    case "concurrency":
      spec.concurrency = Math.floor(num());
      return true;
    case "threads":
      spec.threads = Math.floor(num());
      return true;
    case "engines":
      spec.engines = Math.floor(num());
      return true;
    case "mode":
      if (v !== "chat" && v !== "completions") return false;
      spec.mode = v;
      return true;
    case "engine":
      if ((v !== "llama" && v !== "native") || spec.backend !== "gguf") return false;
      spec.engine = v;
      return true;
    case "name":
      spec.name = v;
      return true;
    case "key_env":
      spec.apiKeyEnv = v;
      return true;
    case "timeout_ms":
      spec.timeoutMs = num();
      return true;
    case "price_in":
      spec.pricePerMInput = num();
      return true;
    case "price_out":
      spec.pricePerMOutput = num();
      return true;
    default:
      return false;
  }
}

/** Folder-safe generator name: the spec's name, else the model name or the .gguf file's base name. */
export function generatorName(spec: GeneratorSpec): string {
  const raw =
    spec.name ?? (spec.backend === "gguf" ? basename(spec.model).replace(/\.gguf$/i, "") : spec.model);
  return raw.replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^_+|_+$/g, "") || "generator";
}

/**
 * How much slower the llama.cpp fallback (one sequence, one thread) is than the native engine on the
 * self-trained generators, roughly: measured 7x–16x per CPU second (BENCHMARKS.md, bench/generate.ts
 * --local, node-llama-cpp c=1). The fallback warning says it and the study plan assumes it.
 */
export const LLAMA_FALLBACK_SLOWDOWN = 10;

export function createEndpoint(
  spec: GeneratorSpec,
  defaults: { timeoutMs?: number; threads?: number } = {},
): Endpoint {
  if (spec.backend === "gguf" && spec.engine === "native") {
    const dk = decodeKernels();
    if (!("error" in dk)) {
      return new NativeEndpoint({
        modelPath: spec.model,
        threads: spec.threads ?? 1,
        concurrency: spec.concurrency,
        engines: spec.engines,
        mode: spec.mode,
      });
    }
    // The same outputs, only slower: say so loudly rather than fail the whole generation.
    process.emitWarning(
      `synthmix: the native GGUF engine is unavailable (${dk.error}); falling back to node-llama-cpp with ` +
        `one sequence on one thread, which is about ${LLAMA_FALLBACK_SLOWDOWN}x slower. ` +
        "hint: run `npm ci` to build the native addon",
      { code: "SYNTHMIX_NATIVE_FALLBACK" },
    );
    console.error(`synthmix: WARNING native engine unavailable (${dk.error}); using the slow llama engine`);
    return new LlamaEndpoint({ modelPath: spec.model, threads: 1, concurrency: 1, mode: spec.mode });
  }
  if (spec.backend === "gguf") {
    return new LlamaEndpoint({
      modelPath: spec.model,
      threads: spec.threads ?? defaults.threads,
      concurrency: spec.concurrency,
      mode: spec.mode,
    });
  }
  return new OpenAIEndpoint({
    baseUrl: spec.baseUrl ?? "",
    model: spec.model,
    mode: spec.mode,
    concurrency: spec.concurrency,
    apiKeyEnv: spec.apiKeyEnv,
    timeoutMs: spec.timeoutMs ?? defaults.timeoutMs,
  });
}
