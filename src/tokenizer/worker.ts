import { parentPort, workerData } from "node:worker_threads";
import { Tokenizer, type TokenizerTransfer } from "./index.js";
import type { WorkerReply, WorkerRequest } from "./parallel.js";

// One tokenizer per worker thread, loaded once; each batch comes back as one transferred buffer.
const { model, appendEot } = workerData as { model: TokenizerTransfer; appendEot: boolean };
let tok: Tokenizer | undefined;
let loadError: string | undefined;
try {
  tok = Tokenizer.fromTransferable(model);
} catch (e) {
  loadError = (e as Error).message;
}

parentPort!.on("message", (req: WorkerRequest) => {
  if (loadError || !tok) {
    parentPort!.postMessage({ seq: req.seq, error: loadError } satisfies WorkerReply);
    return;
  }
  try {
    const out: number[] = [];
    const ends = new Uint32Array(req.texts.length);
    for (let d = 0; d < req.texts.length; d++) {
      tok.encodeInto(req.texts[d], out);
      if (appendEot) out.push(tok.eotId);
      ends[d] = out.length;
    }
    const ids = Uint32Array.from(out);
    parentPort!.postMessage({ seq: req.seq, ids, ends } satisfies WorkerReply, [ids.buffer, ends.buffer]);
  } catch (e) {
    parentPort!.postMessage({ seq: req.seq, error: (e as Error).message } satisfies WorkerReply);
  }
});
