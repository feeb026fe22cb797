import { availableParallelism } from "node:os";
import type { Worker } from "node:worker_threads";
import { SynthmixError } from "../util/errors.js";
import { siblingModule, startWorker } from "../util/workers.js";
import type { Tokenizer, TokenizerTransfer } from "./index.js";

export interface EncodeDocumentsOptions {
  /** Worker threads (default: available cores). 1 encodes on the calling thread. */
  threads?: number;
  /** Append the "<|endoftext|>" id to every document. */
  appendEot?: boolean;
  /** With the default thread count, in-memory arrays smaller than this (chars) are encoded inline (4M). */
  minParallelChars?: number;
  /** Characters per batch sent to a worker (default 256k). */
  batchChars?: number;
}

/** Request to a worker: a batch of documents. Reply: their ids, concatenated, with end offsets. */
export interface WorkerRequest {
  seq: number;
  texts: string[];
}
export interface WorkerReply {
  seq: number;
  ids?: Uint32Array;
  ends?: Uint32Array;
  error?: string;
}

/**
 * Encode documents on worker threads, streaming: input is read lazily in batches, at most two batches
 * per worker are in flight, and documents come out in input order.
 */
export async function* encodeDocuments(
  tokenizerPath: string,
  texts: AsyncIterable<string> | Iterable<string>,
  opts: EncodeDocumentsOptions = {},
): AsyncGenerator<number[]> {
  for await (const ids of encodeDocumentIds(tokenizerPath, texts, opts)) yield Array.from(ids);
}

/** A tokenizer already loaded by the caller, in compact form (Tokenizer.toTransferable) plus its eot id. */
export interface LoadedEncoder {
  transfer: TokenizerTransfer;
  eotId: number;
}

/**
 * encodeDocuments with each document's ids as a Uint32Array: on worker threads a view into the batch's
 * transferred buffer, so the calling thread copies nothing per token (the mix stage streams hundreds of
 * millions of tokens through here; a number[] per document was ~8 bytes of garbage per token). Takes a
 * tokenizer file or one already loaded: parsing tokenizer.json costs this thread ~50 MB of transient
 * heap, which the mix stage pays once, not twice.
 */
export async function* encodeDocumentIds(
  tokenizer: string | LoadedEncoder,
  texts: AsyncIterable<string> | Iterable<string>,
  opts: EncodeDocumentsOptions = {},
): AsyncGenerator<Uint32Array> {
  const threads = threadCount(texts, opts);
  const appendEot = opts.appendEot ?? false;
  const start = await startEncoder(tokenizer, threads, appendEot);
  if (start.inline) {
    for await (const text of texts) {
      const ids = start.inline.encode(text);
      if (appendEot) ids.push(start.inline.eotId);
      yield Uint32Array.from(ids);
    }
    return;
  }
  const pool = start.pool!;
  const input = new BatchReader(texts, opts.batchChars ?? 1 << 18);
  let sent = 0;
  let next = 0;
  try {
    for (;;) {
      while (!input.done && sent - next < threads * 2) {
        const batch = await input.read();
        if (batch.length === 0) break;
        pool.post({ seq: sent++, texts: batch });
      }
      if (next === sent) {
        if (input.done) break;
        continue;
      }
      yield* documentsOf(await pool.reply(next++));
    }
  } finally {
    await pool.terminate();
  }
}

/**
 * The tokenizer for inline encoding, or the worker pool, which gets the compact typed-array form (a file
 * is loaded here, so its errors surface before any worker starts). In its own function so that with
 * workers the main thread's parsed tokenizer is garbage while the stream runs, not held by the generator.
 */
async function startEncoder(
  src: string | LoadedEncoder,
  threads: number,
  appendEot: boolean,
): Promise<{ inline?: Tokenizer; pool?: EncodePool }> {
  const { Tokenizer } = await import("./index.js");
  const tok = typeof src === "string" ? Tokenizer.fromFile(src) : undefined;
  const eotId = tok ? tok.eotId : (src as LoadedEncoder).eotId;
  if (appendEot && eotId < 0) throw noEot(typeof src === "string" ? src : "the tokenizer");
  if (threads === 1) return { inline: tok ?? Tokenizer.fromTransferable((src as LoadedEncoder).transfer) };
  const model = tok ? tok.toTransferable() : (src as LoadedEncoder).transfer;
  return { pool: new EncodePool(threads, { model, appendEot, eotId }) };
}

/**
 * Worker threads to use. Starting workers costs more than encoding a few MB on this thread (~40 MB/s),
 * so small in-memory inputs are encoded inline unless threads were asked for explicitly.
 */
function threadCount(texts: AsyncIterable<string> | Iterable<string>, opts: EncodeDocumentsOptions): number {
  const threads = Math.max(1, opts.threads ?? availableParallelism());
  if (opts.threads !== undefined || !Array.isArray(texts)) return threads;
  let chars = 0;
  for (const t of texts) chars += typeof t === "string" ? t.length : 0;
  return chars < (opts.minParallelChars ?? 1 << 22) ? 1 : threads;
}

/** The documents of one reply: views of the concatenated ids, cut at the end offsets. */
function* documentsOf(r: WorkerReply): Generator<Uint32Array> {
  const ids = r.ids!;
  const ends = r.ends!;
  let start = 0;
  for (let d = 0; d < ends.length; d++) {
    yield ids.subarray(start, ends[d]);
    start = ends[d];
  }
}

/** Reads the input lazily in batches of about `batchChars` characters (at most 4096 documents). */
class BatchReader {
  done = false;
  private docs = 0;
  private readonly it: AsyncIterator<string> | Iterator<string>;

  constructor(
    texts: AsyncIterable<string> | Iterable<string>,
    private readonly batchChars: number,
  ) {
    this.it = iterate(texts);
  }

  async read(): Promise<string[]> {
    const batch: string[] = [];
    let chars = 0;
    while (chars < this.batchChars && batch.length < 4096) {
      const r = await this.it.next();
      if (r.done) {
        this.done = true;
        break;
      }
      if (typeof r.value !== "string") {
        throw new SynthmixError(
          "BAD_DOCUMENT",
          `document ${this.docs} is not a string (got ${typeof r.value})`,
        );
      }
      batch.push(r.value);
      this.docs++;
      chars += r.value.length;
    }
    return batch;
  }
}

/**
 * Young generation of each worker's V8 heap. Left alone, V8 grows it (to 32 MB of new space) the longer a
 * run of short-lived allocations lasts (the encoder's per-document arrays), so a first `mix build`'s peak
 * grew with the source. Capped, peak RSS at 100M tokens went 248-265 -> 222 MB (3 runs each; 12 MB gave
 * 230), with no more CPU time (11-12 s capped, 12-14 s uncapped; BENCHMARKS.md). The old generation is
 * left alone: a single very long document must still fit.
 */
const WORKER_YOUNG_MB = 6;

/** The workers, their replies by sequence number, and the first failure of any of them. */
class EncodePool {
  private readonly workers: Worker[] = [];
  private readonly results = new Map<number, WorkerReply>();
  private readonly inFlight: Int32Array;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;

  constructor(threads: number, workerData: object) {
    this.inFlight = new Int32Array(threads);
    for (let k = 0; k < threads; k++) this.workers.push(this.start(k, workerData));
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private start(k: number, workerData: object): Worker {
    const w = startWorker(siblingModule(import.meta.url, "worker"), {
      workerData,
      resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_MB },
    });
    w.on("message", (m: WorkerReply) => {
      this.inFlight[k]--;
      if (m.error) this.failure ??= new SynthmixError("TOKENIZER_WORKER", m.error);
      this.results.set(m.seq, m);
      this.notify();
    });
    w.on("error", (e) => {
      this.failure ??= e;
      this.notify();
    });
    w.on("exit", (code) => {
      if (code !== 0)
        this.failure ??= new SynthmixError("TOKENIZER_WORKER", `tokenizer worker exited with code ${code}`);
      this.notify();
    });
    return w;
  }

  /** Send a batch to the least busy worker. */
  post(req: WorkerRequest): void {
    let k = 0;
    for (let j = 1; j < this.inFlight.length; j++) if (this.inFlight[j] < this.inFlight[k]) k = j;
    this.inFlight[k]++;
    this.workers[k].postMessage(req);
  }

  /** The reply to batch `seq`, once it arrived; throws the first failure instead. */
  async reply(seq: number): Promise<WorkerReply> {
    while (!this.results.has(seq) && !this.failure) await new Promise<void>((r) => (this.wake = r));
    if (this.failure) throw this.failure;
    const r = this.results.get(seq)!;
    this.results.delete(seq);
    return r;
  }

  async terminate(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

function noEot(path: string): SynthmixError {
  return new SynthmixError(
    "NO_EOT",
    `${path}: the tokenizer has no "<|endoftext|>" token, so --eot is impossible`,
    {
      hint: "retrain with the default special tokens, or encode without end-of-text separators",
    },
  );
}

function iterate(texts: AsyncIterable<string> | Iterable<string>): AsyncIterator<string> | Iterator<string> {
  const a = texts as AsyncIterable<string>;
  if (typeof a[Symbol.asyncIterator] === "function") return a[Symbol.asyncIterator]();
  return (texts as Iterable<string>)[Symbol.iterator]();
}
