import { availableParallelism } from "node:os";
import type { Worker } from "node:worker_threads";
import { SynthmixError } from "../util/errors.js";
import { siblingModule, startWorker } from "../util/workers.js";

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
  let threads = Math.max(1, opts.threads ?? availableParallelism());
  // Starting workers costs more than encoding a few MB on this thread (~40 MB/s), so small in-memory
  // inputs are encoded inline unless threads were asked for explicitly.
  if (opts.threads === undefined && Array.isArray(texts)) {
    let chars = 0;
    for (const t of texts) chars += typeof t === "string" ? t.length : 0;
    if (chars < (opts.minParallelChars ?? 1 << 22)) threads = 1;
  }
  const appendEot = opts.appendEot ?? false;
  const batchChars = opts.batchChars ?? 1 << 18;
  // Loaded once here (errors surface before any worker starts); workers get the compact typed-array form.
  const { Tokenizer } = await import("./index.js");
  const tok = Tokenizer.fromFile(tokenizerPath);
  if (appendEot && tok.eotId < 0) throw noEot(tokenizerPath);
  if (threads === 1) {
    for await (const text of texts) {
      const ids = tok.encode(text);
      if (appendEot) ids.push(tok.eotId);
      yield ids;
    }
    return;
  }

  const workers: Worker[] = [];
  const results = new Map<number, WorkerReply>();
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const inFlight = new Int32Array(threads);
  const model = tok.toTransferable();
  for (let k = 0; k < threads; k++) {
    const w = startWorker(siblingModule(import.meta.url, "worker"), {
      workerData: { model, appendEot, eotId: tok.eotId },
    });
    w.on("message", (m: WorkerReply) => {
      inFlight[k]--;
      if (m.error) failure ??= new SynthmixError("TOKENIZER_WORKER", m.error);
      results.set(m.seq, m);
      notify();
    });
    w.on("error", (e) => {
      failure ??= e;
      notify();
    });
    w.on("exit", (code) => {
      if (code !== 0)
        failure ??= new SynthmixError("TOKENIZER_WORKER", `tokenizer worker exited with code ${code}`);
      notify();
    });
    workers.push(w);
  }

  const it = iterate(texts);
  let inputDone = false;
  let sent = 0;
  let next = 0;
  let docs = 0;
  const readBatch = async (): Promise<string[]> => {
    const batch: string[] = [];
    let chars = 0;
    while (chars < batchChars && batch.length < 4096) {
      const r = await it.next();
      if (r.done) {
        inputDone = true;
        break;
      }
      if (typeof r.value !== "string") {
        throw new SynthmixError("BAD_DOCUMENT", `document ${docs} is not a string (got ${typeof r.value})`);
      }
      batch.push(r.value);
      docs++;
      chars += r.value.length;
    }
    return batch;
  };
  try {
    for (;;) {
      while (!inputDone && sent - next < threads * 2) {
        const batch = await readBatch();
        if (batch.length === 0) break;
        let k = 0;
        for (let j = 1; j < threads; j++) if (inFlight[j] < inFlight[k]) k = j;
        inFlight[k]++;
        workers[k].postMessage({ seq: sent++, texts: batch } satisfies WorkerRequest);
      }
      if (next === sent) {
        if (inputDone) break;
        continue;
      }
      while (!results.has(next) && !failure) await new Promise<void>((r) => (wake = r));
      if (failure) throw failure;
      const r = results.get(next)!;
      results.delete(next);
      next++;
      const ids = r.ids!;
      const ends = r.ends!;
      let start = 0;
      for (let d = 0; d < ends.length; d++) {
        const doc = new Array<number>(ends[d] - start);
        for (let k = start; k < ends[d]; k++) doc[k - start] = ids[k];
        start = ends[d];
        yield doc;
      }
    }
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
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
