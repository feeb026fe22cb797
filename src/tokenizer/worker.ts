import { parentPort, workerData } from "node:worker_threads";
import { grown } from "../util/typed.js";
import { BpeModel } from "./bpe.js";
import { Encoder } from "./encoder.js";
import type { TokenizerTransfer } from "./index.js";
import type { WorkerReply, WorkerRequest } from "./parallel.js";

// One encoder (BPE model plus the tokenizer.json pipeline) per worker thread, built once from the typed-array form (importing only bpe.ts keeps the
// worker's start-up small); each batch comes back as one transferred buffer.
const { model, appendEot, eotId } = workerData as {
  model: TokenizerTransfer;
  appendEot: boolean;
  eotId: number;
};
let enc: Encoder | undefined;
let loadError: string | undefined;
try {
  const tokens: Uint8Array[] = [];
  let start = 0;
  for (let id = 0; id < model.ends.length; id++) {
    tokens.push(model.bytes.subarray(start, model.ends[id]));
    start = model.ends[id];
  }
  const bpe = new BpeModel({ tokens, merges: model.merges, mergeIds: model.mergeIds });
  enc = new Encoder(bpe, model.pipeline, model.added);
} catch (e) {
  loadError = (e as Error).message;
}

// Each document is encoded into one reused number[] and copied into a reused typed buffer; only the
// batch's exact-size copy is allocated per batch (off the V8 heap). Growing one number[] per batch made
// each batch leave ~1 MB of large-object garbage that survived scavenges into the old generation, so each
// worker's heap grew through a long run (~10 MB per worker over 55M tokens) until a full GC.
const doc: number[] = [];
let scratch: Uint32Array = new Uint32Array(1 << 16);

parentPort!.on("message", (req: WorkerRequest) => {
  if (loadError || !enc) {
    parentPort!.postMessage({ seq: req.seq, error: loadError } satisfies WorkerReply);
    return;
  }
  try {
    const ends = new Uint32Array(req.texts.length);
    let n = 0;
    for (let d = 0; d < req.texts.length; d++) {
      doc.length = 0;
      enc.encodeInto(req.texts[d], doc, false);
      if (appendEot) doc.push(eotId);
      if (n + doc.length > scratch.length) scratch = grown(scratch, n + doc.length);
      scratch.set(doc, n);
      n += doc.length;
      ends[d] = n;
    }
    const ids = scratch.slice(0, n);
    parentPort!.postMessage({ seq: req.seq, ids, ends } satisfies WorkerReply, [ids.buffer, ends.buffer]);
  } catch (e) {
    parentPort!.postMessage({ seq: req.seq, error: (e as Error).message } satisfies WorkerReply);
  }
});
