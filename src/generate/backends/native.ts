import { existsSync } from "node:fs";
import { SynthmixError } from "../../util/errors.js";
import { BatchedGpt2 } from "../native/decoder.js";
import { loadGpt2Gguf } from "../native/gguf-model.js";
import { llamaSamplerParams, type SamplerParams } from "../native/sampler.js";
import { SlotTable } from "../native/slots.js";
import { GgufText } from "../native/text.js";
import { type Endpoint, GenerationError, type GenRequest, type GenResponse } from "./types.js";

export interface NativeEndpointOptions {
  modelPath: string;
  /** Threads of the native kernels (default 1). */
  threads?: number;
  /** Sequences decoded together, each with its own KV cache slot (default 64). */
  concurrency?: number;
  /** Most tokens (rows) per forward call: decode steps plus prefill chunks (default 512). */
  maxBatchTokens?: number;
  mode?: "chat" | "completions";
}

interface Job {
  req: GenRequest;
  prompt: number[];
  maxTokens: number;
  sampler: SamplerParams;
  out: number[];
  /** Prompt tokens already in the KV cache. */
  fed: number;
  /**
   * Aborted during its prefill while other sequences read its prompt prefix: already rejected, but its
   * prefill runs to the end (for them) before its slot is released.
   */
  zombie?: boolean;
  slot: number;
  resolve: (r: GenResponse) => void;
  reject: (e: unknown) => void;
}

interface Loaded {
  dec: BatchedGpt2;
  text: GgufText;
  T: number;
  V: number;
  /** One step's rows and results, allocated once (a step runs per generated token of the batch). */
  rows: { tokens: Int32Array; slots: Int32Array; pos: Int32Array; outRows: Int32Array; next: Int32Array };
}

/**
 * The GPT-2 GGUF generator decoded by synthmix's own kernels: continuous batching of up to `concurrency`
 * requests, each with a KV cache slot; every step runs one forward over the decode tokens of all active
 * sequences plus prefill chunks of newly admitted ones (src/generate/native/decoder.ts), then samples each
 * sequence with its own llama.cpp-equivalent sampler (src/generate/native/sampler.ts).
 *
 * "Same as the llama engine" means: the same prompt ids, the same context clamp and prompt truncation as
 * LlamaEndpoint + LlamaCompletion, logits that match llama.cpp's to float rounding (the f16 GELU table
 * included), and the same sampling procedure and seed per request; so the outputs are the llama engine's
 * token for token except where a float-rounding difference flips a draw (test/generate/native-backend.test.ts
 * measures this). Outputs are deterministic given the seed and never depend on batch composition.
 */
export class NativeEndpoint implements Endpoint {
  readonly label: string;
  readonly concurrency: number;
  private state?: Promise<Loaded>;
  private readonly waiting: Job[] = [];
  private readonly active: Job[] = [];
  /** KV-cache slots and the prompt prefixes they share. */
  private slots = new SlotTable(1);
  private running = false;

  constructor(private readonly opts: NativeEndpointOptions) {
    this.label = opts.modelPath;
    this.concurrency = Math.max(1, opts.concurrency ?? 64);
  }

  load(): Promise<Loaded> {
    this.state ??= (async () => {
      if (!existsSync(this.opts.modelPath)) {
        throw new SynthmixError("MODEL_NOT_FOUND", `GGUF model not found: ${this.opts.modelPath}`, {
          hint: "pass a path to a local .gguf file; synthmix never downloads models",
        });
      }
      const { weights, vocab } = await loadGpt2Gguf(this.opts.modelPath);
      if (this.opts.mode === "chat" || (this.opts.mode === undefined && vocab.chatTemplate)) {
        throw new SynthmixError(
          "NATIVE_GGUF",
          `${this.opts.modelPath}: the native engine runs base-model completions only (no chat template)`,
          { hint: "use engine=llama (gguf:<path>) for chat models, or mode=completions" },
        );
      }
      const maxRows = Math.max(this.concurrency, this.opts.maxBatchTokens ?? 512);
      const dec = new BatchedGpt2(weights, {
        slots: this.concurrency,
        maxRows,
        threads: this.opts.threads ?? 1,
      });
      this.slots = new SlotTable(this.concurrency);
      const rows = {
        tokens: new Int32Array(maxRows),
        slots: new Int32Array(maxRows),
        pos: new Int32Array(maxRows),
        outRows: new Int32Array(this.concurrency),
        next: new Int32Array(this.concurrency),
      };
      return { dec, text: new GgufText(vocab), T: weights.contextLength, V: weights.vocabSize, rows };
    })();
    return this.state;
  }

  /** The decode engine's per-phase CPU seconds (see BatchedGpt2.profile), for benchmarks. */
  async profile(): Promise<Record<string, number>> {
    return (await this.load()).dec.profile();
  }

  async modelInfo(): Promise<{ trainContextSize: number }> {
    return { trainContextSize: (await this.load()).T };
  }

  async generate(req: GenRequest): Promise<GenResponse> {
    const { text, T } = await this.load();
    // As LlamaEndpoint: the prompt plus the answer must fit the trained context (2 = its BOS allowance).
    // Encoded once: the prompt ids are the plain-text ids, after a BOS only if the GGUF asks for one.
    const ids = text.encode(req.prompt);
    const promptTokens = ids.length + 2;
    const room = T - promptTokens;
    if (room < 1) {
      throw new GenerationError(
        `${this.label} (request ${req.id}): the prompt has ~${promptTokens} tokens but the model's context is ${T}`,
        false,
        { endpoint: this.label },
        { hint: "use smaller source chunks (--chunk-tokens) or a model with a longer context" },
      );
    }
    // As LlamaCompletion: keep the last contextSize - contextShiftSize (= T/10) prompt tokens.
    let prompt = text.addBos ? [text.bosId, ...ids] : ids;
    const keep = T - Math.max(1, Math.floor(T / 10));
    if (prompt.length > keep) prompt = prompt.slice(-keep);
    if (prompt.length === 0) prompt = [text.eosId];
    const maxTokens = Math.min(req.params.max_tokens ?? 512, room);
    return new Promise<GenResponse>((resolve, reject) => {
      this.waiting.push({
        req,
        prompt,
        maxTokens,
        sampler: llamaSamplerParams(req.params),
        out: [],
        fed: 0,
        slot: -1,
        resolve,
        reject,
      });
      if (!this.running) void this.run();
    });
  }

  /** The decode loop: runs while there is work, one batched forward per iteration. */
  private async run(): Promise<void> {
    this.running = true;
    const st = await this.load();
    try {
      while (this.waiting.length > 0 || this.active.length > 0) {
        this.admit(st);
        this.dropAborted();
        if (this.active.length > 0) this.step(st);
        // Let new requests arrive and finished ones resolve between steps.
        await new Promise<void>((r) => setImmediate(r));
      }
    } catch (e) {
      const err = new GenerationError(
        `${this.label}: native decoding failed: ${(e as Error).message}`,
        false,
        {
          endpoint: this.label,
        },
      );
      for (const j of this.active.splice(0)) j.reject(err);
      for (const j of this.waiting.splice(0)) j.reject(err);
    } finally {
      this.running = false;
    }
  }

  /**
   * Admits waiting requests while a slot is available. A prompt's longest prefix cached in any slot is
   * not recomputed: the request either continues in that slot or reads the prefix from it (SlotTable).
   */
  private admit(st: Loaded): void {
    while (this.waiting.length > 0) {
      const job = this.waiting[0];
      const a = this.slots.admit(job.prompt);
      if (!a) break;
      this.waiting.shift();
      job.slot = a.slot;
      job.fed = a.fed;
      st.dec.sharePrefix(a.slot, a.share ? a.share.from : a.slot, a.share ? a.share.n : 0);
      st.dec.setSampler(a.slot, job.sampler);
      this.active.push(job);
    }
  }

  private dropAborted(): void {
    for (let i = this.active.length - 1; i >= 0; i--) {
      const j = this.active[i];
      if (j.zombie || !j.req.signal?.aborted) continue;
      if (j.fed < j.prompt.length && this.slots.readers(j.slot) > 0) {
        j.zombie = true;
        j.reject(this.abortError(j, j.req.signal.reason));
      } else {
        this.finish(i, null, j.req.signal.reason);
      }
    }
  }

  private abortError(j: Job, error: unknown): GenerationError {
    return new GenerationError(`${this.label} (request ${j.req.id}): ${String(error ?? "aborted")}`, false, {
      endpoint: this.label,
    });
  }

  private finish(i: number, res: GenResponse | null, error?: unknown): void {
    const [j] = this.active.splice(i, 1);
    this.slots.release(j.slot, j.fed);
    if (res) j.resolve(res);
    else if (!j.zombie) j.reject(this.abortError(j, error));
  }

  /**
   * One forward: a decode row per generating sequence, then prefill chunks within the row budget; the
   * engine samples every sequence that needs a token with its slot's sampler.
   */
  private step(st: Loaded): void {
    const maxRows = st.dec.opts.maxRows;
    const { tokens, slots, pos, outRows, next } = st.rows;
    const outJobs: Job[] = [];
    let R = 0;
    for (const j of this.active) {
      if (j.fed < j.prompt.length) continue;
      tokens[R] = j.out[j.out.length - 1];
      slots[R] = j.slot;
      pos[R] = j.prompt.length + j.out.length - 1;
      outRows[outJobs.length] = R++;
      outJobs.push(j);
    }
    const firstPrefill = R;
    for (const j of this.active) {
      if (j.fed >= j.prompt.length || R >= maxRows) continue;
      const n = Math.min(j.prompt.length - j.fed, maxRows - R);
      for (let t = 0; t < n; t++) {
        tokens[R] = j.prompt[j.fed + t];
        slots[R] = j.slot;
        pos[R] = j.fed + t;
        R++;
      }
      j.fed += n;
      if (j.fed === j.prompt.length && !j.zombie) {
        outRows[outJobs.length] = R - 1;
        outJobs.push(j);
      }
    }
    st.dec.step(tokens, slots, pos, R, outRows, outJobs.length, next, firstPrefill);
    for (let i = 0; i < outJobs.length; i++) outJobs[i].out.push(next[i]);
    for (let i = this.active.length - 1; i >= 0; i--) {
      const j = this.active[i];
      if (j.zombie && j.fed === j.prompt.length) this.finish(i, null);
      const last = j.out[j.out.length - 1];
      if (j.zombie || j.out.length === 0) continue;
      if (last === st.text.eosId) {
        const ids = j.out.slice(0, -1);
        this.finish(i, this.response(st, j, ids, "stop"));
      } else if (j.out.length >= j.maxTokens) {
        this.finish(i, this.response(st, j, j.out, "length"));
      }
    }
  }

  private response(st: Loaded, j: Job, ids: number[], finishReason: string): GenResponse {
    return {
      text: st.text.decode(ids),
      finishReason,
      usage: { prompt_tokens: j.prompt.length, completion_tokens: ids.length },
    };
  }

  async close(): Promise<void> {
    // Nothing to release beyond memory; pending requests are rejected so that no caller hangs.
    const err = new GenerationError(`${this.label}: endpoint closed`, false, { endpoint: this.label });
    for (const j of this.waiting.splice(0)) j.reject(err);
  }
}
