import { AtomicFile } from "../util/atomic.js";
import { dtypeForVocab, encodeTokens, type TokenDtype } from "../util/tokenfile.js";
import { Tokenizer } from "./index.js";
import { encodeDocuments } from "./parallel.js";

export interface EncodeToFileOptions {
  /** Worker threads (default: all cores). */
  threads?: number;
  /** Append <|endoftext|> after each document (default false, as in encodeDocuments). */
  appendEot?: boolean;
  /** Called after each document with the running counts. */
  onProgress?: (p: { documents: number; tokens: number }) => void;
}

export interface EncodeToFileResult {
  out: string;
  dtype: TokenDtype;
  documents: number;
  /** Tokens written, including one <|endoftext|> per document when appended. */
  tokens: number;
  /** UTF-8 bytes of the input texts. */
  bytes: number;
  tokenizerSha256: string;
}

/** Ids buffered per write: a few MB, so writes are large without holding the whole file. */
const FLUSH_IDS = 1 << 20;

/**
 * Encode documents with the tokenizer at `tokenizerPath` into a token file (uint16/uint32 little
 * endian, the dtype chosen by the vocabulary size), written atomically: a failure or interrupt leaves
 * the previous file (or none), never a torn one.
 */
export async function encodeToFile(
  tokenizerPath: string,
  texts: AsyncIterable<string> | Iterable<string>,
  out: string,
  opts: EncodeToFileOptions = {},
): Promise<EncodeToFileResult> {
  const tok = Tokenizer.fromFile(tokenizerPath);
  const dtype = dtypeForVocab(tok.vocabSize);
  const file = new AtomicFile(out);
  let documents = 0;
  let tokens = 0;
  let bytes = 0;
  try {
    let pending: number[] = [];
    const counted = withBytes(texts, (n) => {
      bytes += n;
    });
    for await (const ids of encodeDocuments(tokenizerPath, counted, {
      threads: opts.threads,
      appendEot: opts.appendEot ?? false,
    })) {
      for (const id of ids) pending.push(id);
      tokens += ids.length;
      documents++;
      if (pending.length >= FLUSH_IDS) {
        file.write(encodeTokens(pending, dtype));
        pending = [];
      }
      opts.onProgress?.({ documents, tokens });
    }
    file.write(encodeTokens(pending, dtype));
    file.commit();
  } catch (e) {
    file.abort();
    throw e;
  }
  return { out, dtype, documents, tokens, bytes, tokenizerSha256: tok.sha256 };
}

async function* withBytes(texts: AsyncIterable<string> | Iterable<string>, add: (n: number) => void) {
  for await (const t of texts) {
    add(Buffer.byteLength(t, "utf8"));
    yield t;
  }
}
