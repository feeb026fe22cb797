// Node bindings for the kernels: argument order as in src/train/kernels/types.ts. Typed arrays are used in
// place (no copies); every array's type and length is checked against the shapes first, so a shape bug
// in the caller throws a TypeError/RangeError instead of writing out of bounds.
#include <algorithm>
#include <napi.h>

#include <cstdint>
#include <string>

#include "gemm.h"
#include "kernels.h"

namespace sk {
// native/decode.cc: KV-cache kernels for batched generation (src/generate/native).
void register_decode_kernels(Napi::Env env, Napi::Object exports);
}  // namespace sk

namespace {

struct Args {
  const Napi::CallbackInfo& info;
  const char* fn;

  [[noreturn]] void type_error(const std::string& msg) const {
    throw Napi::TypeError::New(info.Env(), std::string(fn) + ": " + msg);
  }
  [[noreturn]] void range_error(const std::string& msg) const {
    throw Napi::RangeError::New(info.Env(), std::string(fn) + ": " + msg);
  }

  std::int64_t integer(std::size_t i, const char* name, std::int64_t min = 0) const {
    const Napi::Value v = info[i];
    if (!v.IsNumber()) type_error(std::string(name) + " must be a number");
    const double d = v.As<Napi::Number>().DoubleValue();
    if (!(d == static_cast<double>(static_cast<std::int64_t>(d))) || d < static_cast<double>(min) || d > 2147483647.0)
      range_error(std::string(name) + " must be an integer >= " + std::to_string(min) + ", got " + std::to_string(d));
    return static_cast<std::int64_t>(d);
  }

  // An optional trailing boolean (absent or undefined = false).
  bool flag(std::size_t i) const { return info.Length() > i && info[i].ToBoolean().Value(); }

  float number(std::size_t i, const char* name) const {
    const Napi::Value v = info[i];
    if (!v.IsNumber()) type_error(std::string(name) + " must be a number");
    return static_cast<float>(v.As<Napi::Number>().DoubleValue());
  }

  template <typename T, napi_typedarray_type KIND>
  T* array(std::size_t i, const char* name, std::int64_t need, bool nullable, const char* type_name) const {
    const Napi::Value v = info[i];
    if (nullable && (v.IsNull() || v.IsUndefined())) return nullptr;
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != KIND)
      type_error(std::string(name) + " must be a " + type_name +
                 (KIND == napi_float32_array ? " (the native kernels are float32 only)" : ""));
    auto ta = v.As<Napi::TypedArrayOf<T>>();
    if (static_cast<std::int64_t>(ta.ElementLength()) < need)
      range_error(std::string(name) + " has " + std::to_string(ta.ElementLength()) + " elements but the shapes need " +
                  std::to_string(need));
    return ta.Data();
  }
  float* f32(std::size_t i, const char* name, std::int64_t need, bool nullable = false) const {
    return array<float, napi_float32_array>(i, name, need, nullable, "Float32Array");
  }
  std::int32_t* i32(std::size_t i, const char* name, std::int64_t need) const {
    return array<std::int32_t, napi_int32_array>(i, name, need, false, "Int32Array");
  }
};

Napi::Value EncoderForward(const Napi::CallbackInfo& info) {
  Args a{info, "encoderForward"};
  const auto B = a.integer(4, "B"), T = a.integer(5, "T"), C = a.integer(6, "C", 1);
  float* out = a.f32(0, "out", B * T * C);
  std::int32_t* tokens = a.i32(1, "tokens", B * T);
  const Napi::Value wteV = info[2];
  float* wte = a.f32(2, "wte", C);
  float* wpe = a.f32(3, "wpe", T * C);
  const std::int64_t V = wteV.As<Napi::TypedArray>().ElementLength() / C;
  for (std::int64_t i = 0; i < B * T; i++)
    if (tokens[i] < 0 || tokens[i] >= V)
      a.range_error("tokens[" + std::to_string(i) + "] = " + std::to_string(tokens[i]) + " is outside the vocabulary (wte has " +
                    std::to_string(V) + " rows)");
  sk::encoder_forward(out, tokens, wte, wpe, static_cast<int>(B), static_cast<int>(T), static_cast<int>(C));
  return info.Env().Undefined();
}

Napi::Value EncoderBackward(const Napi::CallbackInfo& info) {
  Args a{info, "encoderBackward"};
  const auto B = a.integer(4, "B"), T = a.integer(5, "T"), C = a.integer(6, "C", 1);
  const Napi::Value dwteV = info[0];
  float* dwte = a.f32(0, "dwte", C);
  float* dwpe = a.f32(1, "dwpe", T * C);
  float* dout = a.f32(2, "dout", B * T * C);
  std::int32_t* tokens = a.i32(3, "tokens", B * T);
  const std::int64_t V = dwteV.As<Napi::TypedArray>().ElementLength() / C;
  for (std::int64_t i = 0; i < B * T; i++)
    if (tokens[i] < 0 || tokens[i] >= V)
      a.range_error("tokens[" + std::to_string(i) + "] = " + std::to_string(tokens[i]) + " is outside the vocabulary (dwte has " +
                    std::to_string(V) + " rows)");
  sk::encoder_backward(dwte, dwpe, dout, tokens, static_cast<int>(B), static_cast<int>(T), static_cast<int>(C));
  return info.Env().Undefined();
}

Napi::Value LayernormForward(const Napi::CallbackInfo& info) {
  Args a{info, "layernormForward"};
  const auto BT = a.integer(6, "BT"), C = a.integer(7, "C", 1);
  sk::layernorm_forward(a.f32(0, "out", BT * C), a.f32(1, "mean", BT), a.f32(2, "rstd", BT), a.f32(3, "inp", BT * C),
                        a.f32(4, "weight", C), a.f32(5, "bias", C), static_cast<int>(BT), static_cast<int>(C));
  return info.Env().Undefined();
}

Napi::Value LayernormBackward(const Napi::CallbackInfo& info) {
  Args a{info, "layernormBackward"};
  const auto BT = a.integer(8, "BT"), C = a.integer(9, "C", 1);
  sk::layernorm_backward(a.f32(0, "dinp", BT * C), a.f32(1, "dweight", C), a.f32(2, "dbias", C),
                         a.f32(3, "dout", BT * C), a.f32(4, "inp", BT * C), a.f32(5, "weight", C), a.f32(6, "mean", BT),
                         a.f32(7, "rstd", BT), static_cast<int>(BT), static_cast<int>(C), a.flag(10));
  return info.Env().Undefined();
}

Napi::Value MatmulForward(const Napi::CallbackInfo& info) {
  Args a{info, "matmulForward"};
  const auto BT = a.integer(4, "BT"), C = a.integer(5, "C"), OC = a.integer(6, "OC");
  sk::matmul_forward(a.f32(0, "out", BT * OC), a.f32(1, "inp", BT * C), a.f32(2, "weight", OC * C),
                     a.f32(3, "bias", OC, true), static_cast<int>(BT), static_cast<int>(C), static_cast<int>(OC));
  return info.Env().Undefined();
}

Napi::Value MatmulBackward(const Napi::CallbackInfo& info) {
  Args a{info, "matmulBackward"};
  const auto BT = a.integer(6, "BT"), C = a.integer(7, "C"), OC = a.integer(8, "OC");
  sk::matmul_backward(a.f32(0, "dinp", BT * C, true), a.f32(1, "dweight", OC * C, true), a.f32(2, "dbias", OC, true),
                      a.f32(3, "dout", BT * OC), a.f32(4, "inp", BT * C), a.f32(5, "weight", OC * C),
                      static_cast<int>(BT), static_cast<int>(C), static_cast<int>(OC), a.flag(9));
  return info.Env().Undefined();
}

void check_heads(const Args& a, std::int64_t C, std::int64_t NH) {
  if (C % NH != 0) a.range_error("C = " + std::to_string(C) + " is not divisible by NH = " + std::to_string(NH));
}

Napi::Value AttentionForward(const Napi::CallbackInfo& info) {
  Args a{info, "attentionForward"};
  const auto B = a.integer(3, "B"), T = a.integer(4, "T"), C = a.integer(5, "C", 1), NH = a.integer(6, "NH", 1);
  check_heads(a, C, NH);
  sk::attention_forward(a.f32(0, "out", B * T * C), a.f32(1, "att", B * NH * T * T), a.f32(2, "qkv", B * T * 3 * C),
                        static_cast<int>(B), static_cast<int>(T), static_cast<int>(C), static_cast<int>(NH));
  return info.Env().Undefined();
}

Napi::Value AttentionBackward(const Napi::CallbackInfo& info) {
  Args a{info, "attentionBackward"};
  const auto B = a.integer(5, "B"), T = a.integer(6, "T"), C = a.integer(7, "C", 1), NH = a.integer(8, "NH", 1);
  check_heads(a, C, NH);
  sk::attention_backward(a.f32(0, "dqkv", B * T * 3 * C), a.f32(1, "scratch", B * NH * T * T),
                         a.f32(2, "dout", B * T * C), a.f32(3, "qkv", B * T * 3 * C), a.f32(4, "att", B * NH * T * T),
                         static_cast<int>(B), static_cast<int>(T), static_cast<int>(C), static_cast<int>(NH), a.flag(9));
  return info.Env().Undefined();
}

Napi::Value GeluForward(const Napi::CallbackInfo& info) {
  Args a{info, "geluForward"};
  const auto N = a.integer(2, "N");
  sk::gelu_forward(a.f32(0, "out", N), a.f32(1, "inp", N), N);
  return info.Env().Undefined();
}

Napi::Value GeluBackward(const Napi::CallbackInfo& info) {
  Args a{info, "geluBackward"};
  const auto N = a.integer(3, "N");
  sk::gelu_backward(a.f32(0, "dinp", N), a.f32(1, "inp", N), a.f32(2, "dout", N), N, a.flag(4));
  return info.Env().Undefined();
}

Napi::Value ResidualForward(const Napi::CallbackInfo& info) {
  Args a{info, "residualForward"};
  const auto N = a.integer(3, "N");
  sk::residual_forward(a.f32(0, "out", N), a.f32(1, "a", N), a.f32(2, "b", N), N);
  return info.Env().Undefined();
}

Napi::Value CrossEntropyForward(const Napi::CallbackInfo& info) {
  Args a{info, "crossEntropyForward"};
  const auto BT = a.integer(4, "BT"), V = a.integer(5, "V", 1);
  const float scale = a.number(6, "dlossScale");
  float* losses = a.f32(0, "losses", BT);
  float* dlogits = a.f32(1, "dlogits", BT * V, true);
  float* logits = a.f32(2, "logits", BT * V);
  std::int32_t* targets = a.i32(3, "targets", BT);
  for (std::int64_t i = 0; i < BT; i++)
    if (targets[i] >= V)
      a.range_error("targets[" + std::to_string(i) + "] = " + std::to_string(targets[i]) + " is >= V = " + std::to_string(V));
  sk::cross_entropy_forward(losses, dlogits, logits, targets, static_cast<int>(BT), static_cast<int>(V), scale);
  return info.Env().Undefined();
}

Napi::Value LogitsCrossEntropy(const Napi::CallbackInfo& info) {
  Args a{info, "logitsCrossEntropy"};
  const auto BT = a.integer(6, "BT"), C = a.integer(7, "C", 1), V = a.integer(8, "V", 1);
  const float scale = a.number(9, "dlossScale");
  float* losses = a.f32(0, "losses", BT);
  float* dlnf = a.f32(1, "dlnf", BT * C, true);
  float* dwte = a.f32(2, "dwte", V * C, true);
  if ((dlnf == nullptr) != (dwte == nullptr)) a.type_error("dlnf and dwte must both be given or both be null");
  const float* lnf = a.f32(3, "lnf", BT * C);
  const float* wte = a.f32(4, "wte", V * C);
  std::int32_t* targets = a.i32(5, "targets", BT);
  for (std::int64_t i = 0; i < BT; i++)
    if (targets[i] >= V)
      a.range_error("targets[" + std::to_string(i) + "] = " + std::to_string(targets[i]) + " is >= V = " + std::to_string(V));
  if (BT == 0 && dwte != nullptr) std::fill(dwte, dwte + V * C, 0.f);
  sk::logits_cross_entropy(losses, dlnf, dwte, lnf, wte, targets, static_cast<int>(BT), static_cast<int>(C),
                           static_cast<int>(V), scale);
  return info.Env().Undefined();
}

Napi::Value AdamwUpdate(const Napi::CallbackInfo& info) {
  Args a{info, "adamwUpdate"};
  const auto N = a.integer(4, "N");
  const float lr = a.number(5, "lr"), b1 = a.number(6, "beta1"), b2 = a.number(7, "beta2"), eps = a.number(8, "eps"),
              wd = a.number(9, "weightDecay");
  const auto t = a.integer(10, "t", 1);
  sk::adamw_update(a.f32(0, "params", N), a.f32(1, "grads", N), a.f32(2, "m", N), a.f32(3, "v", N), N, lr, b1, b2, eps,
                   wd, static_cast<int>(t));
  return info.Env().Undefined();
}

Napi::Value ClipGradNorm(const Napi::CallbackInfo& info) {
  Args a{info, "clipGradNorm"};
  const auto N = a.integer(1, "N");
  const Napi::Value mx = info[2];
  if (!mx.IsNumber()) a.type_error("maxNorm must be a number");
  return Napi::Number::New(info.Env(), sk::clip_grad_norm(a.f32(0, "grads", N), N, mx.As<Napi::Number>().DoubleValue()));
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  Args a{info, "setThreads"};
  sk::set_threads(static_cast<int>(a.integer(0, "n", 1)));
  return info.Env().Undefined();
}

Napi::Value GetThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), sk::get_threads()); }

Napi::Value Isa(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), sk::gemm_isa()); }

Napi::Value SetIsa(const Napi::CallbackInfo& info) {
  Args a{info, "setIsa"};
  if (!info[0].IsString()) a.type_error("name must be \"avx512\" or \"portable\"");
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  return Napi::Boolean::New(info.Env(), sk::set_gemm_isa(name.c_str()));
}

Napi::Value SetMinParallelWork(const Napi::CallbackInfo& info) {
  Args a{info, "setMinParallelWork"};
  sk::set_min_parallel_work(a.number(0, "work"));
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  const struct {
    const char* name;
    Napi::Value (*fn)(const Napi::CallbackInfo&);
  } fns[] = {
      {"encoderForward", EncoderForward},
      {"encoderBackward", EncoderBackward},
      {"layernormForward", LayernormForward},
      {"layernormBackward", LayernormBackward},
      {"matmulForward", MatmulForward},
      {"matmulBackward", MatmulBackward},
      {"attentionForward", AttentionForward},
      {"attentionBackward", AttentionBackward},
      {"geluForward", GeluForward},
      {"geluBackward", GeluBackward},
      {"residualForward", ResidualForward},
      {"crossEntropyForward", CrossEntropyForward},
      {"logitsCrossEntropy", LogitsCrossEntropy},
      {"adamwUpdate", AdamwUpdate},
      {"clipGradNorm", ClipGradNorm},
      {"setThreads", SetThreads},
      {"getThreads", GetThreads},
      {"isa", Isa},
      {"setIsa", SetIsa},
      {"setMinParallelWork", SetMinParallelWork},
  };
  for (const auto& f : fns) exports.Set(f.name, Napi::Function::New(env, f.fn, f.name));
  sk::register_decode_kernels(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(synthmix_kernels, Init)
