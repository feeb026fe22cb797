import type { ModelConfig } from "./schema.js";

/**
 * The Hugging Face `config.json` (GPT2Config fields) of a synthmix model, written next to every
 * checkpoint's model.safetensors so `GPT2LMHeadModel.from_pretrained("<run>/checkpoint")` loads it: the
 * weights already use HF GPT-2 names and Conv1D layouts. The values mirror the model (model.ts): GELU
 * with the tanh approximation ("gelu_new"), LayerNorm eps 1e-5, MLP width 4C, tied input/output
 * embeddings, no dropout. (`<run>/config.json` itself is the synthmix run config, so the HF file lives
 * in the checkpoint folder.)
 */
export function hfGpt2Config(cfg: ModelConfig, eosTokenId?: number): Record<string, unknown> {
  const eos = eosTokenId ?? cfg.vocabSize - 1;
  return {
    architectures: ["GPT2LMHeadModel"],
    model_type: "gpt2",
    vocab_size: cfg.vocabSize,
    n_positions: cfg.contextLength,
    n_ctx: cfg.contextLength,
    n_embd: cfg.dModel,
    n_layer: cfg.nLayer,
    n_head: cfg.nHead,
    n_inner: 4 * cfg.dModel,
    activation_function: "gelu_new",
    layer_norm_epsilon: 1e-5,
    resid_pdrop: 0,
    embd_pdrop: 0,
    attn_pdrop: 0,
    initializer_range: 0.02,
    scale_attn_weights: true,
    scale_attn_by_inverse_layer_idx: false,
    reorder_and_upcast_attn: false,
    tie_word_embeddings: true,
    bos_token_id: eos,
    eos_token_id: eos,
    torch_dtype: "float32",
  };
}
