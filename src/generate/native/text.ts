import { tokenStringToBytes } from "../../tokenizer/bytes.js";
import { Tokenizer } from "../../tokenizer/index.js";
import type { GgufVocab } from "./gguf-model.js";

const TYPE_CONTROL = 3;
const TYPE_USER_DEFINED = 4;

/**
 * Text <-> ids for a GPT-2 GGUF vocabulary, matching what node-llama-cpp's LlamaCompletion feeds llama.cpp
 * and returns: the prompt is encoded as ordinary text (special-token strings in it are plain text, as
 * llama_tokenize with parse_special = false), with synthmix's own byte-level BPE (GPT-2 pre-tokenizer,
 * merges by rank), which test/generate/native-backend.test.ts checks id for id against llama.cpp's
 * tokenizer. Control tokens (end-of-text) decode to nothing, as llama.cpp's detokenize without specials.
 */
export class GgufText {
  private readonly tok: Tokenizer;
  /** Bytes each id decodes to (empty for control and unused ids). */
  readonly pieces: Uint8Array[];
  readonly eosId: number;
  readonly bosId: number;
  readonly addBos: boolean;

  constructor(v: GgufVocab) {
    const vocab: Record<string, number> = {};
    const added: { id: number; content: string; special: boolean }[] = [];
    this.pieces = v.tokens.map((s, id) => {
      const type = v.types[id];
      if (type === TYPE_CONTROL || type === TYPE_USER_DEFINED) {
        added.push({ id, content: s, special: type === TYPE_CONTROL });
        return new Uint8Array(0);
      }
      const bytes = tokenStringToBytes(s);
      if (type !== 1 || !bytes) return new Uint8Array(0);
      vocab[s] = id;
      return bytes;
    });
    for (const a of added) if (a.special === false) this.pieces[a.id] = new TextEncoder().encode(a.content);
    this.tok = Tokenizer.fromJSON({ model: { type: "BPE", vocab, merges: v.merges }, added_tokens: added });
    this.eosId = v.eosId;
    this.bosId = v.bosId;
    this.addBos = v.addBos;
  }

  /** Prompt ids as LlamaCompletion builds them: BOS only when the GGUF asks for it, then the text. */
  encodePrompt(text: string): number[] {
    const ids = this.tok.encode(text);
    return this.addBos ? [this.bosId, ...ids] : ids;
  }

  /** Plain-text ids (no BOS), for counting as the llama backend does with model.tokenize. */
  encode(text: string): number[] {
    return this.tok.encode(text);
  }

  /**
   * The completion text of generated ids. LlamaCompletion holds back tokens that end inside a UTF-8
   * character and drops them if generation stops there; TextDecoder's stream mode does the same with an
   * incomplete trailing sequence. Invalid bytes inside become U+FFFD in both.
   */
  decode(ids: number[]): string {
    let n = 0;
    for (const id of ids) n += this.pieces[id].length;
    const bytes = new Uint8Array(n);
    let o = 0;
    for (const id of ids) {
      bytes.set(this.pieces[id], o);
      o += this.pieces[id].length;
    }
    return new TextDecoder("utf-8").decode(bytes, { stream: true });
  }
}
