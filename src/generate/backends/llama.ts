import { existsSync } from "node:fs";
import { cpus } from "node:os";
import { SynthmixError } from "../../util/errors.js";
import { type Endpoint, GenerationError, type GenRequest, type GenResponse } from "./types.js";

export interface LlamaEndpointOptions {
  modelPath: string;
  /** CPU threads for llama.cpp; always explicit (its default oversubscribes small machines). */
  threads?: number;
  /** Parallel sequences in one context. */
  concurrency?: number;
  contextSize?: number;
  /**
   * "chat" applies the model's chat template to the messages; "completions" sends the single-string
   * prompt. Default: chat when the GGUF carries a chat template, else completions (base models such
   * as GPT-2 exports have none, and a generic chat wrapper only wastes their small context).
   */
  mode?: "chat" | "completions";
}

type NlcModule = typeof import("node-llama-cpp");

let llamaPromise: Promise<{ mod: NlcModule; llama: import("node-llama-cpp").Llama }> | undefined;

/** Load llama.cpp once per process: CPU only, prebuilt binary only, never download or build. */
async function getLlamaOnce() {
  llamaPromise ??= (async () => {
    process.env.NODE_LLAMA_CPP_SKIP_DOWNLOAD ??= "true";
    let mod: NlcModule;
    let llama: import("node-llama-cpp").Llama;
    try {
      mod = await import("node-llama-cpp");
      llama = await mod.getLlama({
        gpu: false,
        build: "never",
        usePrebuiltBinaries: true,
        progressLogs: false,
        logLevel: mod.LlamaLogLevel.error,
      });
    } catch (e) {
      llamaPromise = undefined;
      throw new SynthmixError(
        "LLAMA_UNAVAILABLE",
        `cannot load llama.cpp (node-llama-cpp): ${(e as Error).message}`,
        {
          hint:
            "the gguf backend needs node-llama-cpp's prebuilt CPU binary for this platform " +
            "(@node-llama-cpp/linux-x64 here); or serve the model elsewhere and use an openai: generator",
          cause: e,
        },
      );
    }
    return { mod, llama };
  })();
  return llamaPromise;
}

/**
 * A local GGUF model through node-llama-cpp, loaded by file path only. Each concurrent request gets
 * its own context sequence; chat requests use the model's chat template (or a generic one).
 */
export class LlamaEndpoint implements Endpoint {
  readonly label: string;
  readonly concurrency: number;
  private state?: Promise<{
    mod: NlcModule;
    model: import("node-llama-cpp").LlamaModel;
    ctx: import("node-llama-cpp").LlamaContext;
    chat: boolean;
  }>;
  /**
   * Sequences are made once and reused (history cleared between requests): disposing and re-getting
   * them per request races with llama.cpp's own release and fails with "No sequences left".
   */
  private readonly freeSeqs: import("node-llama-cpp").LlamaContextSequence[] = [];
  private readonly seqWaiters: ((s: import("node-llama-cpp").LlamaContextSequence) => void)[] = [];
  private seqsMade = 0;

  constructor(private readonly opts: LlamaEndpointOptions) {
    this.label = opts.modelPath;
    this.concurrency = opts.concurrency ?? 1;
  }

  get threads(): number {
    return this.opts.threads ?? Math.max(1, Math.min(4, cpus().length));
  }

  load() {
    this.state ??= (async () => {
      if (!existsSync(this.opts.modelPath)) {
        throw new SynthmixError("MODEL_NOT_FOUND", `GGUF model not found: ${this.opts.modelPath}`, {
          hint: "pass a path to a local .gguf file; synthmix never downloads models",
        });
      }
      const { mod, llama } = await getLlamaOnce();
      const model = await llama.loadModel({ modelPath: this.opts.modelPath, gpuLayers: 0 });
      const trainCtx = model.trainContextSize;
      const ctx = await model.createContext({
        contextSize: Math.min(this.opts.contextSize ?? 4096, trainCtx) * this.concurrency,
        sequences: this.concurrency,
        threads: this.threads,
      });
      const hasTemplate = Boolean(model.fileInfo.metadata.tokenizer?.chat_template);
      const chat = this.opts.mode ? this.opts.mode === "chat" : hasTemplate;
      return { mod, model, ctx, chat };
    })();
    return this.state;
  }

  /** Whether the GGUF carries a chat template (chat requests are otherwise answered from `prompt`). */
  async hasChatTemplate(): Promise<boolean> {
    const { model } = await this.load();
    return Boolean(model.fileInfo.metadata.tokenizer?.chat_template);
  }

  async modelInfo(): Promise<{ trainContextSize: number; name?: string }> {
    const { model } = await this.load();
    return { trainContextSize: model.trainContextSize, name: model.fileInfo.metadata.general?.name };
  }

  async generate(req: GenRequest): Promise<GenResponse> {
    const { mod, model, ctx, chat } = await this.load();
    // Prompt + answer must fit the model's trained context: past it, models with learned position
    // embeddings (GPT-2) make llama.cpp abort the whole process. Clamp max_tokens, or refuse the request.
    const useChat = req.messages.length > 0 && chat;
    const promptText = useChat ? req.messages.map((m) => m.content).join("\n") : req.prompt;
    const overhead = useChat ? 32 : 2; // chat template tokens; BOS
    const promptTokens = model.tokenize(promptText).length + overhead;
    const limit = model.trainContextSize;
    const room = limit - promptTokens;
    if (room < 1) {
      throw new GenerationError(
        `${this.label} (request ${req.id}): the prompt has ~${promptTokens} tokens but the model's context is ${limit}`,
        false,
        { endpoint: this.label },
        { hint: "use smaller source chunks (--chunk-tokens) or a model with a longer context" },
      );
    }
    const seq = await this.acquireSeq(ctx);
    try {
      const before = seq.tokenMeter.getState();
      let generated = 0;
      const common = {
        maxTokens: Math.min(req.params.max_tokens ?? 512, room),
        temperature: req.params.temperature,
        topP: req.params.top_p,
        seed: req.params.seed,
        signal: req.signal,
        stopOnAbortSignal: false,
        onTextChunk: req.onText,
        customStopTriggers: req.params.stop?.length ? req.params.stop : undefined,
        // Counted here rather than from the token meter, which also meters the last sampled token's eval.
        onToken: (tokens: unknown[]) => {
          generated += tokens.length;
        },
      };
      let text: string;
      let stop: string;
      if (useChat) {
        const system = req.messages.find((m) => m.role === "system")?.content;
        const user = req.messages
          .filter((m) => m.role !== "system")
          .map((m) => m.content)
          .join("\n\n");
        const session = new mod.LlamaChatSession({
          contextSequence: seq,
          systemPrompt: system,
          autoDisposeSequence: false,
        });
        const r = await session.promptWithMeta(user, common);
        text = r.responseText;
        stop = r.stopReason;
        session.dispose({ disposeSequence: false });
      } else {
        const completion = new mod.LlamaCompletion({ contextSequence: seq });
        const r = await completion.generateCompletionWithMeta(req.prompt, common);
        text = r.response;
        stop = r.metadata.stopReason;
        completion.dispose({ disposeSequence: false });
      }
      const diff = mod.TokenMeter.diff(seq.tokenMeter, before);
      // The meter leaves out the last prompt token (evaluated with the first sampled one): count the
      // prompt itself for completions, where the evaluated input is exactly BOS + the prompt's tokens.
      const promptUsed = useChat
        ? diff.usedInputTokens
        : model.tokenize(req.prompt).length + (model.tokens.shouldPrependBosToken ? 1 : 0);
      return {
        text,
        finishReason: stop === "maxTokens" ? "length" : "stop",
        usage: {
          prompt_tokens: promptUsed,
          // Tokens still held back as incomplete UTF-8 when max_tokens hits never reach onToken.
          completion_tokens: stop === "maxTokens" ? common.maxTokens : Math.min(generated, common.maxTokens),
        },
      };
    } catch (e) {
      if (e instanceof SynthmixError) throw e;
      throw new GenerationError(
        `${this.label} (request ${req.id}): ${(e as Error).message}`,
        false,
        { endpoint: this.label },
        { cause: e },
      );
    } finally {
      await seq.clearHistory().catch(() => {});
      this.releaseSeq(seq);
    }
  }

  private acquireSeq(
    ctx: import("node-llama-cpp").LlamaContext,
  ): Promise<import("node-llama-cpp").LlamaContextSequence> {
    const free = this.freeSeqs.pop();
    if (free) return Promise.resolve(free);
    if (this.seqsMade < this.concurrency) {
      this.seqsMade++;
      return Promise.resolve(ctx.getSequence());
    }
    return new Promise((resolve) => this.seqWaiters.push(resolve));
  }

  private releaseSeq(seq: import("node-llama-cpp").LlamaContextSequence): void {
    const waiter = this.seqWaiters.shift();
    if (waiter) waiter(seq);
    else this.freeSeqs.push(seq);
  }

  async close(): Promise<void> {
    if (!this.state) return;
    const { ctx, model } = await this.state;
    await ctx.dispose();
    await model.dispose();
  }
}
