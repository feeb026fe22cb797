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
  /** Sequences decoded together by each engine, each with its own KV cache slot (default 64). */
  concurrency?: number;
  /** Most tokens (rows) per forward call: decode steps plus prefill chunks (default 512). */
  maxBatchTokens?: number;
  /**
   * Independent engines, each with `concurrency` slots on `threads` threads, stepping side by side off the
   * JS thread; requests go to the least loaded one (default 1). Two 1-thread engines use both cores of a
   * 2-core machine without a 2-thread engine's synchronisation inside every kernel. The outputs do not
   * depend on it: a request's tokens never depend on which engine or batch decodes it.
   */
  engines?: number;
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

/** One step's rows and results, allocated once per engine (a step runs per generated token of its batch). */
interface StepRows {
  tokens: Int32Array;
  slots: Int32Array;
  pos: Int32Array;
  outRows: Int32Array;
  /** Per out row: tokens it may still draw; the tokens it drew (STEPS_PER_CALL apart); how many. */
  budget: Int32Array;
  drawn: Int32Array;
  counts: Int32Array;
}

/**
 * Decode steps per call into an engine (BatchedGpt2.decodeAsync): the sequences keep generating for up
 * to this many steps without a JS round trip; requests are admitted and finished between calls. Between
 * single steps each engine waited for the JS thread (promise, scheduling, the other engines' turns):
 * bench/generate.ts --local --native-only, 1024 requests, wall s for 1 / 2 / 4 / 8 / 16 / 32 steps per
 * call: 4 engines x 32 slots 1.71 / 1.59 / 1.41 / 1.36-1.54 / 1.36 / 1.42, 2 x 64 (8 steps on) 1.39 /
 * 1.30 / 1.41 (Zen 5, 2026-12-04); the texts the same in every run. A slot freed inside a call waits for
 * its end (~8 steps on average against ~115 tokens per request).
 */
const STEPS_PER_CALL = 16;

interface Loaded {
  engines: EngineLoop[];
  text: GgufText;
  T: number;
  V: number;
}

/**
 * One decode engine: while requests wait or decode, a loop of calls of up to STEPS_PER_CALL batched steps,
 * each call a decodeAsync on a libuv worker thread, so that the JS thread and the other engines run
 * meanwhile. The waiting queue is the
 * endpoint's, shared by its engines: an engine admits the next request whenever it has a free slot.
 */
class EngineLoop {
  private readonly active: Job[] = [];
  /** KV-cache slots and the prompt prefixes they share. */
  private readonly slots: SlotTable;
  private readonly rows: StepRows;
  private running = false;
  /** Set when a step failed: the engine takes no more requests. */
  failed?: GenerationError;

  constructor(
    private readonly label: string,
    private readonly dec: BatchedGpt2,
    private readonly text: GgufText,
    concurrency: number,
    private readonly waiting: Job[],
    /** Called after a step failed (the endpoint rejects the waiting requests if no engine is left). */
    private readonly onFailed: () => void,
  ) {
    this.slots = new SlotTable(concurrency);
    const maxRows = dec.opts.maxRows;
    this.rows = {
      tokens: new Int32Array(maxRows),
      slots: new Int32Array(maxRows),
      pos: new Int32Array(maxRows),
      outRows: new Int32Array(concurrency),
      budget: new Int32Array(concurrency),
      drawn: new Int32Array(concurrency * STEPS_PER_CALL),
      counts: new Int32Array(concurrency),
    };
  }

  /** Starts the loop if it is not running (new requests are waiting). */
  wake(): void {
    if (!this.running && !this.failed) void this.run();
  }

  /** The engine's per-phase CPU seconds; only while it is idle (a step in flight owns its counters). */
  profile(): Record<string, number> {
    return this.dec.profile();
  }

  /** The decode loop: runs while there is work, one batched forward per iteration. */
  private async run(): Promise<void> {
    this.running = true;
    try {
      while (this.waiting.length > 0 || this.active.length > 0) {
        this.admit();
        this.dropAborted();
        if (this.active.length > 0) await this.step();
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
      // This engine's requests; the waiting ones go to the endpoint's other engines, if any are left.
      for (const j of this.active.splice(0)) j.reject(err);
      this.failed = err;
    } finally {
      this.running = false;
    }
    if (this.failed) this.onFailed();
  }

  /**
   * Admits waiting requests while a slot is available. A prompt's longest prefix cached in any slot is
   * not recomputed: the request either continues in that slot or reads the prefix from it (SlotTable).
   */
  private admit(): void {
    while (this.waiting.length > 0) {
      const job = this.waiting[0];
      const a = this.slots.admit(job.prompt);
      if (!a) break;
      this.waiting.shift();
      job.slot = a.slot;
      job.fed = a.fed;
      this.dec.sharePrefix(a.slot, a.share ? a.share.from : a.slot, a.share ? a.share.n : 0);
      this.dec.setSampler(a.slot, job.sampler);
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
   * One call into the engine: a forward with a decode row per generating sequence, then prefill chunks
   * within the row budget, the engine sampling every sequence that needs a token with its slot's sampler;
   * then up to STEPS_PER_CALL - 1 decode-only forwards of the sequences still generating, without a JS
   * round trip (the same tokens as that many calls: see BatchedGpt2.decodeAsync).
   */
  private async step(): Promise<void> {
    const { tokens, slots, pos, outRows, budget, drawn, counts } = this.rows;
    const { R, firstPrefill, outJobs } = this.fillRows();
    // At least the token this step draws (as a single step always did, even for max_tokens 0).
    for (let i = 0; i < outJobs.length; i++)
      budget[i] = Math.max(1, outJobs[i].maxTokens - outJobs[i].out.length);
    const k = STEPS_PER_CALL;
    const nOut = outJobs.length;
    const eos = this.text.eosId;
    await this.dec.decodeAsync({
      tokens,
      slots,
      pos,
      R,
      out: outRows,
      nOut,
      firstPrefill,
      steps: k,
      budget,
      eos,
      drawn,
      counts,
    });
    for (let i = 0; i < outJobs.length; i++)
      for (let t = 0; t < counts[i]; t++) outJobs[i].out.push(drawn[i * k + t]);
    this.finishDone();
  }

  /**
   * The call's rows in this.rows: a decode row per generating sequence, then prefill chunks within the
   * row budget; outJobs lists the sequences that draw a token (out row i is outJobs[i]'s).
   */
  private fillRows(): { R: number; firstPrefill: number; outJobs: Job[] } {
    const maxRows = this.dec.opts.maxRows;
    const { tokens, slots, pos, outRows } = this.rows;
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
    return { R, firstPrefill, outJobs };
  }

  /** Finishes the sequences that drew the end-of-sequence token or their last allowed one. */
  private finishDone(): void {
    for (let i = this.active.length - 1; i >= 0; i--) {
      const j = this.active[i];
      if (j.zombie && j.fed === j.prompt.length) this.finish(i, null);
      const last = j.out[j.out.length - 1];
      if (j.zombie || j.out.length === 0) continue;
      if (last === this.text.eosId) {
        const ids = j.out.slice(0, -1);
        this.finish(i, this.response(j, ids, "stop"));
      } else if (j.out.length >= j.maxTokens) {
        this.finish(i, this.response(j, j.out, "length"));
      }
    }
  }

  private response(j: Job, ids: number[], finishReason: string): GenResponse {
    return {
      text: this.text.decode(ids),
      finishReason,
      usage: { prompt_tokens: j.prompt.length, completion_tokens: ids.length },
    };
  }
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
  /** Requests decoded at once: the slots of every engine. */
  readonly concurrency: number;
  /** KV-cache slots per engine (NativeEndpointOptions.concurrency). */
  readonly slotsPerEngine: number;
  /** Engines stepping side by side (NativeEndpointOptions.engines). */
  readonly engines: number;
  private state?: Promise<Loaded>;
  /** Admitted requests not yet in a slot, taken by whichever engine has one free first. */
  private readonly waiting: Job[] = [];

  constructor(private readonly opts: NativeEndpointOptions) {
    this.label = opts.modelPath;
    this.slotsPerEngine = Math.max(1, opts.concurrency ?? 64);
    this.engines = Math.max(1, Math.floor(opts.engines ?? 1));
    this.concurrency = this.slotsPerEngine * this.engines;
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
      const slots = this.slotsPerEngine;
      const maxRows = Math.max(slots, this.opts.maxBatchTokens ?? 512);
      const text = new GgufText(vocab);
      const engines = Array.from({ length: this.engines }, () => {
        const dec = new BatchedGpt2(weights, { slots, maxRows, threads: this.opts.threads ?? 1 });
        return new EngineLoop(this.label, dec, text, slots, this.waiting, () => {
          if (engines.every((e) => e.failed))
            for (const j of this.waiting.splice(0)) j.reject(engines[0].failed);
        });
      });
      return { engines, text, T: weights.contextLength, V: weights.vocabSize };
    })();
    return this.state;
  }

  /**
   * The decode engines' per-phase CPU seconds summed over engines (see BatchedGpt2.profile), for
   * benchmarks; call it when no request is in flight.
   */
  async profile(): Promise<Record<string, number>> {
    const sum: Record<string, number> = {};
    for (const e of (await this.load()).engines)
      for (const [k, v] of Object.entries(e.profile())) sum[k] = (sum[k] ?? 0) + v;
    return sum;
  }

  async modelInfo(): Promise<{ trainContextSize: number }> {
    return { trainContextSize: (await this.load()).T };
  }

  async generate(req: GenRequest): Promise<GenResponse> {
    const { text, T, engines } = await this.load();
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
    // Which engine decodes a request never changes its tokens (see the class comment).
    const live = engines.filter((e) => !e.failed);
    if (live.length === 0) throw engines[0].failed;
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
      for (const e of live) e.wake();
    });
  }

  async close(): Promise<void> {
    // Nothing to release beyond memory; pending requests are rejected so that no caller hangs.
    const err = new GenerationError(`${this.label}: endpoint closed`, false, { endpoint: this.label });
    for (const j of this.waiting.splice(0)) j.reject(err);
  }
}
