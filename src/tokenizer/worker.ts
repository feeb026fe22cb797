import { parentPort, workerData } from "node:worker_threads";
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

parentPort!.on("message", (req: WorkerRequest) => {
  if (loadError || !enc) {
    parentPort!.postMessage({ seq: req.seq, error: loadError } satisfies WorkerReply);
    return;
  }
  try {
    const out: number[] = [];
    const ends = new Uint32Array(req.texts.length);
    for (let d = 0; d < req.texts.length; d++) {
      enc.encodeInto(req.texts[d], out, false);
      if (appendEot) out.push(eotId);
      ends[d] = out.length;
    }
    const ids = Uint32Array.from(out);
    parentPort!.postMessage({ seq: req.seq, ids, ends } satisfies WorkerReply, [ids.buffer, ends.buffer]);
  } catch (e) {
    parentPort!.postMessage({ seq: req.seq, error: (e as Error).message } satisfies WorkerReply);
  }
});
