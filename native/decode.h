// The decoder's kernels (native/decode.cc), shared with its engine (native/decode_engine.cc).
#pragma once
#include <napi.h>

#include <cstdint>

namespace sk {

// Causal attention of a ragged batch of rows over per-slot f16 KV caches (see decode.cc). With alias
// tables (length S, else both null), positions [0, alias_len[s]) of slot s are read from slot
// alias_slot[s] (a prompt prefix shared without copying); rows never write below alias_len. With
// prefill_seconds, the calling thread's CPU seconds in the cache writes and prompt rows are added to it.
// With want (length R), only rows r with want[r] != 0 get an output row (every row's keys/values are
// cached); the others' out rows are left as they were.
void kv_attention_forward(float* out, const float* qkv, std::uint16_t* kc, std::uint16_t* vc,
                          const std::int32_t* slots, const std::int32_t* pos, int R, int C, int NH, int T,
                          int threads, int first_prefill, const std::int32_t* alias_slot = nullptr,
                          const std::int32_t* alias_len = nullptr, double* prefill_seconds = nullptr,
                          const std::uint8_t* want = nullptr);

// CPU seconds of the calling thread (CLOCK_THREAD_CPUTIME_ID).
double thread_cpu_seconds();

// GELU through ggml's f16 table (llama.cpp's CPU GELU).
void gelu_f16_forward(float* out, const float* inp, std::int64_t n);

// Registers the DecodeEngine class (native/decode_engine.cc).
void register_decode_engine(Napi::Env env, Napi::Object exports);

}  // namespace sk
