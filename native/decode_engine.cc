// The native engine's decode step (src/generate/native/decoder.ts): a GPT-2 forward over a ragged batch
// of rows (token, KV-cache slot, position) and the sampling of every sequence that needs a next token, in
// one call, so that JS only schedules (which rows go into a step) and never touches logits.
//
// The forward is the one BatchedGpt2 ran from JS, kernel for kernel (layernorm, GEMMs, the KV-cache
// attention and f16 GELU of decode.cc, residuals), with the weights packed once for the GEMM micro-kernel
// instead of on every call: same arithmetic per element, so the same logits bit for bit.
//
// The sampler is LlamaChainSampler (src/generate/native/sampler.ts, llama.cpp's chain as node-llama-cpp
// builds it) transcribed operation for operation: float32 steps in float, the dist sampler's sums in
// double, expf as exp in double rounded to float (what the JS reference does with Math.fround(Math.exp)),
// one std::mt19937 per slot, reseeded when a request takes the slot. test/generate/native-backend.test.ts
// checks it token for token against the JS sampler and llama.cpp's.
#include <napi.h>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "decode.h"
#include "gemm.h"
#include "kernels.h"
#include "pool.h"

namespace sk {
namespace {

struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};

// out (R, N) = inp (R, K) · Wᵀ + bias, W (N, K) row-major, with W packed once for the micro-kernel.
class Linear {
 public:
  Linear(const float* w, const float* bias, int N, int K) : N_(N), K_(K), w_(w, w + static_cast<std::size_t>(N) * K) {
    if (bias != nullptr) bias_.assign(bias, bias + N);
    const GemmArgs g = args(nullptr, nullptr, 1);
    void* mem = nullptr;
    if (posix_memalign(&mem, 64, std::max<std::size_t>(1, packed_b_floats(g)) * sizeof(float)) != 0) throw std::bad_alloc();
    packed_.reset(static_cast<float*>(mem));
    pack_b_full(g, packed_.get(), 1);
  }

  void forward(float* out, const float* inp, int R, int threads) const {
    if (R <= 0) return;
    const GemmArgs g = args(inp, out, R);
    // Fixed row blocks (multiples of the micro-kernel's 14 rows); every element's arithmetic is the same
    // whichever block or thread computes it.
    const int block = threads <= 1 ? R : std::max(28, ((R + threads - 1) / threads + 13) / 14 * 14);
    const int blocks = (R + block - 1) / block;
    if (blocks <= 1) {
      sgemm_rows(g, 0, R, packed_.get());
      return;
    }
    parallel_for(blocks, threads, [&](int b) { sgemm_rows(g, b * block, std::min(R, (b + 1) * block), packed_.get()); });
  }

 private:
  GemmArgs args(const float* inp, float* out, int R) const {
    return GemmArgs{R, N_, K_, inp, K_, 1, w_.data(), 1, K_, out, N_, false, bias_.empty() ? nullptr : bias_.data()};
  }
  int N_, K_;
  std::vector<float> w_, bias_;
  std::unique_ptr<float, FreeDeleter> packed_;
};

struct Layer {
  std::vector<float> ln1w, ln1b, ln2w, ln2b;
  std::unique_ptr<Linear> qkv, proj, fc, fcproj;
};

// One request's sampler state (see the file comment and sampler.ts for the procedure).
class ChainSampler {
 public:
  // Working arrays of a draw, shared by the samplers that one thread runs (a sampler's own state is
  // only its RNG and parameters, so few cache lines of it are cold at each draw).
  struct Scratch {
    std::vector<int> ids;
    std::vector<float> vals, probs;
#if defined(__AVX512F__)
    static constexpr int kMaxRanked = 192;  // ranked_top_k's (keys padded to 32)
    alignas(64) std::uint64_t keys[kMaxRanked + 32];
    alignas(64) float cand_vals[kMaxRanked + 16], sorted_vals[kMaxRanked];
    alignas(64) std::int32_t cand_ids[kMaxRanked + 16], sorted_ids[kMaxRanked], ranks[kMaxRanked + 32];
#endif
  };

  void reset(double temperature, double top_p, int top_k, std::uint32_t seed, int V) {
    rng_.seed(seed);
    temperature_ = temperature;
    top_p_ = top_p;
    temp_f_ = static_cast<float>(temperature);
    top_p_f_ = static_cast<float>(top_p);
    k_ = std::min(std::max(top_k <= 0 ? V : top_k, 1), V);
  }

  int sample(const float* logits, int V, Scratch& w) {
    if (!(temperature_ > 0)) return argmax(logits, V);
    w.ids.resize(std::max<std::size_t>(w.ids.size(), k_));
    w.vals.resize(std::max<std::size_t>(w.vals.size(), k_));
    w.probs.resize(std::max<std::size_t>(w.probs.size(), k_));
    const int n = top_k(logits, V, w);
    const int size = top_p_ >= 0 && top_p_ <= 1 ? nucleus(n, w) : n;
    return w.ids[dist(size, w)];
  }

 private:
  static int argmax(const float* x, int V) {
    int best = 0;
    for (int i = 1; i < V; i++)
      if (x[i] > x[best]) best = i;
    return best;
  }

  static float expf_ref(float x) { return static_cast<float>(std::exp(static_cast<double>(x))); }

  // The k largest logits in descending order, ties by lower id (insertion, as topK in sampler.ts),
  // over the logits that can be among them: at least k disjoint groups of logits each have a maximum,
  // and the k-th largest of those maxima (tau) is a lower bound of the k-th largest logit, so logits
  // below tau are never in the result and are skipped (the same result; most of the V are below tau).
  int top_k(const float* logits, int V, Scratch& w) {
#if defined(__AVX512F__)
    constexpr int kGroups = 3;  // accumulators of 16 lanes: 48 disjoint groups
    const int full = V / 16;
    if (k_ <= 16 * kGroups && full >= 2 * kGroups) {
      __m512 acc[kGroups];
      for (int g = 0; g < kGroups; g++) acc[g] = _mm512_set1_ps(-INFINITY);
      __mmask16 nan = 0;
      for (int b = 0; b < full; b++) {
        const __m512 x = _mm512_loadu_ps(logits + 16 * b);
        nan |= _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
        acc[b % kGroups] = _mm512_max_ps(acc[b % kGroups], x);
      }
      if (nan == 0) {
        alignas(64) float maxima[16 * kGroups];
        for (int g = 0; g < kGroups; g++) _mm512_store_ps(maxima + 16 * g, acc[g]);
        std::nth_element(maxima, maxima + (k_ - 1), maxima + 16 * kGroups, [](float a, float b) { return a > b; });
        return top_k_from(logits, V, maxima[k_ - 1], w);
      }
    }
#elif defined(__AVX2__)
    // 6 accumulators of 8 lanes: 48 disjoint groups again (other groups than AVX-512's; any disjoint groups
    // give a bound, and the result does not depend on it).
    constexpr int kGroups = 6;
    const int full = V / 8;
    if (k_ <= 8 * kGroups && full >= 2 * kGroups) {
      __m256 acc[kGroups];
      for (int g = 0; g < kGroups; g++) acc[g] = _mm256_set1_ps(-INFINITY);
      __m256 nan = _mm256_setzero_ps();
      auto visit = [&](int b, int g) {  // block b into group g
        const __m256 x = _mm256_loadu_ps(logits + 8 * b);
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
        acc[g] = _mm256_max_ps(acc[g], x);
      };
      int b = 0;
      for (; b + kGroups <= full; b += kGroups)
#pragma GCC unroll 6
        for (int g = 0; g < kGroups; g++) visit(b + g, g);
      for (int g = 0; b < full; b++, g++) visit(b, g);
      if (_mm256_movemask_ps(nan) == 0) {
        alignas(32) float maxima[8 * kGroups];
        for (int g = 0; g < kGroups; g++) _mm256_store_ps(maxima + 8 * g, acc[g]);
        std::nth_element(maxima, maxima + (k_ - 1), maxima + 8 * kGroups, [](float a, float b) { return a > b; });
        return top_k_from(logits, V, maxima[k_ - 1], w);
      }
    }
#endif
    return top_k_from(logits, V, -INFINITY, w);
  }

  // Insertion over the logits >= tau (all of them when tau is -inf), in id order; with AVX-512 and a
  // bound that left few candidates, their ranks instead (ranked_top_k: the same list).
  int top_k_from(const float* logits, int V, float tau, Scratch& w) {
#if defined(__AVX512F__)
    if (tau != -INFINITY) {
      const int n = ranked_top_k(logits, V, tau, w);
      if (n >= 0) return n;
    }
#endif
    int n = 0;
    int i = 0;
#if defined(__AVX512F__)
    // The logits below tau are skipped 16 at a time (a compare mask), the others visited in id order.
    const __m512 tv = _mm512_set1_ps(tau);
    for (; i + 16 <= V; i += 16) {
      std::uint32_t m = _mm512_cmp_ps_mask(_mm512_loadu_ps(logits + i), tv, _CMP_NLT_UQ);
      while (m != 0) {
        const int b = __builtin_ctz(m);
        m &= m - 1;
        n = insert(logits[i + b], i + b, n, w);
      }
    }
#elif defined(__AVX2__)
    const __m256 tv = _mm256_set1_ps(tau);
    for (; i + 8 <= V; i += 8) {
      std::uint32_t m = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(logits + i), tv, _CMP_NLT_UQ));
      while (m != 0) {
        const int b = __builtin_ctz(m);
        m &= m - 1;
        n = insert(logits[i + b], i + b, n, w);
      }
    }
#endif
    for (; i < V; i++)
      if (!(logits[i] < tau)) n = insert(logits[i], i, n, w);
    return n;
  }

#if defined(__AVX512F__)
  // The insertion's list without its shifting (which cost most of the sampling): the candidates (logits
  // >= tau; the caller checked that none is NaN) are gathered 16 at a time, each gets a 64-bit key that
  // orders them as the insertion does, value descending then id ascending (the value's bits made
  // monotonic, -0 keyed as +0 since the insertion's compares see them equal, above the complement of
  // the id), and a candidate's place is its rank: how many keys are larger (all keys differ). Returns
  // -1, having changed nothing, if more than Scratch::kMaxRanked logits are >= tau (the count is quadratic).
  int ranked_top_k(const float* logits, int V, float tau, Scratch& w) {
    float* cv = w.cand_vals;
    std::int32_t* ci = w.cand_ids;
    const __m512 tv = _mm512_set1_ps(tau);
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    int nc = 0;
    int i = 0;
    for (; i + 16 <= V; i += 16) {
      const __m512 x = _mm512_loadu_ps(logits + i);
      const __mmask16 m = _mm512_cmp_ps_mask(x, tv, _CMP_NLT_UQ);
      const int c = __builtin_popcount(m);
      if (nc + c > Scratch::kMaxRanked) return -1;
      // Compress in registers, then a full store (the arrays have 16 spare entries): a compressing
      // store to memory is far slower on AMD cores.
      _mm512_storeu_ps(cv + nc, _mm512_maskz_compress_ps(m, x));
      _mm512_storeu_si512(ci + nc, _mm512_maskz_compress_epi32(m, _mm512_add_epi32(lane, _mm512_set1_epi32(i))));
      nc += c;
    }
    for (; i < V; i++) {
      if (logits[i] < tau) continue;
      if (nc == Scratch::kMaxRanked) return -1;
      cv[nc] = logits[i];
      ci[nc++] = i;
    }
    std::uint64_t* keys = w.keys;
    for (int c = 0; c < nc; c++) {
      const float v = cv[c] + 0.0f;  // -0 -> +0
      std::uint32_t u;
      std::memcpy(&u, &v, 4);
      const std::uint32_t ordered = (u & 0x80000000u) != 0 ? ~u : (u | 0x80000000u);
      keys[c] = (static_cast<std::uint64_t>(ordered) << 32) | (0xffffffffu - static_cast<std::uint32_t>(ci[c]));
    }
    for (int c = nc; c % 32 != 0; c++) keys[c] = 0;  // padding lanes (their ranks are not used)
    // Ranks of 32 candidates at a time (4 vectors of 8 keys, each key broadcast once for them): +1 for
    // each candidate with a larger key.
    std::int32_t* rank = w.ranks;
    const __m512i one = _mm512_set1_epi64(1);
    constexpr int kB = 4;
    for (int c0 = 0; c0 < nc; c0 += 8 * kB) {
      __m512i kc[kB], r[kB];
      for (int b = 0; b < kB; b++) {
        kc[b] = _mm512_load_si512(keys + c0 + 8 * b);
        r[b] = _mm512_setzero_si512();
      }
      for (int j = 0; j < nc; j++) {
        const __m512i kj = _mm512_set1_epi64(static_cast<long long>(keys[j]));
#pragma GCC unroll 4
        for (int b = 0; b < kB; b++) r[b] = _mm512_mask_add_epi64(r[b], _mm512_cmpgt_epu64_mask(kj, kc[b]), r[b], one);
      }
      for (int b = 0; b < kB; b++)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(rank + c0 + 8 * b), _mm512_cvtepi64_epi32(r[b]));
    }
    // Every candidate to its place (ranks are a permutation of [0, nc)), then the first k.
    for (int c = 0; c < nc; c++) {
      w.sorted_ids[rank[c]] = ci[c];
      w.sorted_vals[rank[c]] = cv[c];
    }
    const int n = std::min(nc, k_);
    std::copy(w.sorted_ids, w.sorted_ids + n, w.ids.begin());
    std::copy(w.sorted_vals, w.sorted_vals + n, w.vals.begin());
    return n;
  }
#endif

  // One logit (>= tau) into the descending top-k list of n entries (ties: the earlier id first); returns
  // the new n.
  int insert(float v, int id, int n, Scratch& w) {
    const int k = k_;
    float* vals = w.vals.data();
    int* ids = w.ids.data();
    if (n == k && !(v > vals[k - 1])) return n;
    int j = n < k ? n++ : k - 1;
    while (j > 0 && vals[j - 1] < v) {
      vals[j] = vals[j - 1];
      ids[j] = ids[j - 1];
      j--;
    }
    vals[j] = v;
    ids[j] = id;
    return n;
  }

  int nucleus(int n, Scratch& w) {
    if (top_p_f_ >= 1.0f) return n;
    const float max = w.vals[0];
    float sum = 0.0f;
    for (int i = 0; i < n; i++) {
      w.probs[i] = expf_ref(w.vals[i] - max);
      sum = sum + w.probs[i];
    }
    float cum = 0.0f;
    for (int i = 0; i < n; i++) {
      const float p = w.probs[i] / sum;
      cum = cum + p;
      if (cum >= top_p_f_) return i + 1;
    }
    return n;
  }

  // libstdc++'s generate_canonical<double, 53>(mt19937): two draws, clamped below 1.
  double canonical() {
    const double r1 = static_cast<double>(rng_());
    const double r2 = static_cast<double>(rng_());
    const double v = (r1 + r2 * 4294967296.0) / 18446744073709551616.0;
    return v >= 1.0 ? 1.0 - 1.0 / 9007199254740992.0 : v;
  }

  int dist(int n, Scratch& w) {
    const double u = canonical();
    if (n == 1) return 0;
    for (int i = 0; i < n; i++) w.vals[i] = w.vals[i] / temp_f_;
    const float max = w.vals[0];
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
      w.probs[i] = expf_ref(w.vals[i] - max);
      sum += w.probs[i];
    }
    const double target = sum * u;
    double run = 0.0;
    for (int i = 0; i < n; i++) {
      run += w.probs[i];
      if (run >= target) return i;
    }
    return n - 1;
  }

  std::mt19937 rng_;
  double temperature_ = 0, top_p_ = 1;
  float temp_f_ = 0, top_p_f_ = 1;
  int k_ = 1;
};

// Per-phase CPU time of the engine's calling thread (for `profile()`; a clock read costs ~20 ns, a
// phase is a kernel over a whole batch, so the timers cost nothing measurable).
enum Phase { kEmbed, kNorm, kGemm, kAttnPrefill, kAttnDecode, kGelu, kResidual, kHead, kSample, kPhases };
const char* const kPhaseNames[kPhases] = {"embed",    "layernorm", "gemm", "attention (prompt rows)", "attention (decode rows)",
                                          "gelu",     "residual",  "head", "sample"};

double thread_cpu() { return thread_cpu_seconds(); }

[[noreturn]] void fail(const Napi::Env& env, const std::string& msg) {
  throw Napi::RangeError::New(env, "decode engine: " + msg);
}

int int_of(const Napi::Env& env, const Napi::Value& v, const char* name, std::int64_t min,
           std::int64_t max = 2147483647) {
  if (!v.IsNumber()) fail(env, std::string(name) + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (d != std::floor(d) || d < static_cast<double>(min) || d > static_cast<double>(max))
    fail(env, std::string(name) + " must be an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  return static_cast<int>(d);
}

template <typename T, napi_typedarray_type KIND>
T* typed(const Napi::Env& env, const Napi::Value& v, const char* name, std::int64_t need) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != KIND)
    throw Napi::TypeError::New(env, std::string("decode engine: ") + name + " has the wrong array type");
  auto ta = v.As<Napi::TypedArrayOf<T>>();
  if (static_cast<std::int64_t>(ta.ElementLength()) < need)
    fail(env, std::string(name) + " has " + std::to_string(ta.ElementLength()) + " elements, need " + std::to_string(need));
  return ta.Data();
}

std::vector<float> floats(const Napi::Env& env, const Napi::Value& v, const char* name, std::int64_t n) {
  const float* p = typed<float, napi_float32_array>(env, v, name, n);
  if (static_cast<std::int64_t>(v.As<Napi::Float32Array>().ElementLength()) != n)
    fail(env, std::string(name) + " must have exactly " + std::to_string(n) + " elements");
  return std::vector<float>(p, p + n);
}

class DecodeEngine : public Napi::ObjectWrap<DecodeEngine> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "DecodeEngine",
                       {InstanceMethod("step", &DecodeEngine::Step), InstanceMethod("stepAsync", &DecodeEngine::StepAsync),
                        InstanceMethod("decodeAsync", &DecodeEngine::DecodeAsync),
                        InstanceMethod("forward", &DecodeEngine::Forward),
                        InstanceMethod("setSampler", &DecodeEngine::SetSampler),
                        InstanceMethod("sample", &DecodeEngine::Sample),
                        InstanceMethod("sharePrefix", &DecodeEngine::SharePrefix),
                        InstanceMethod("profile", &DecodeEngine::Profile)});
  }

  // new DecodeEngine({nLayer, C, NH, F, T, V, slots, maxRows, threads, llamaGelu}, weights: Float32Array[]):
  // weights = [wte (V,C), wpe (T,C), output (V,C), lnfW, lnfB, then per layer ln1W, ln1B, qkvW (3C,C), qkvB,
  // projW (C,C), projB, ln2W, ln2B, fcW (F,C), fcB, fcProjW (C,F), fcProjB].
  explicit DecodeEngine(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DecodeEngine>(info) {
    const Napi::Env env = info.Env();
    if (!info[0].IsObject() || !info[1].IsArray()) fail(env, "expected (config, weights[])");
    const Napi::Object cfg = info[0].As<Napi::Object>();
    L_ = int_of(env, cfg.Get("nLayer"), "nLayer", 1);
    C_ = int_of(env, cfg.Get("C"), "C", 1);
    NH_ = int_of(env, cfg.Get("NH"), "NH", 1);
    F_ = int_of(env, cfg.Get("F"), "F", 1);
    T_ = int_of(env, cfg.Get("T"), "T", 1);
    V_ = int_of(env, cfg.Get("V"), "V", 1);
    S_ = int_of(env, cfg.Get("slots"), "slots", 1);
    maxRows_ = int_of(env, cfg.Get("maxRows"), "maxRows", 1);
    threads_ = int_of(env, cfg.Get("threads"), "threads", 1, 256);
    llamaGelu_ = cfg.Get("llamaGelu").ToBoolean().Value();
    if (C_ % NH_ != 0) fail(env, "C is not divisible by NH");
    const Napi::Array w = info[1].As<Napi::Array>();
    if (w.Length() != static_cast<std::uint32_t>(5 + 12 * L_))
      fail(env, "expected " + std::to_string(5 + 12 * L_) + " weight arrays, got " + std::to_string(w.Length()));
    const std::int64_t C = C_, F = F_;
    wte_ = floats(env, w.Get(0u), "wte", V_ * C);
    wpe_ = floats(env, w.Get(1u), "wpe", T_ * C);
    const std::vector<float> output = floats(env, w.Get(2u), "output", V_ * C);
    head_ = std::make_unique<Linear>(output.data(), nullptr, V_, C_);
    lnfw_ = floats(env, w.Get(3u), "lnfW", C);
    lnfb_ = floats(env, w.Get(4u), "lnfB", C);
    for (int l = 0; l < L_; l++) {
      const std::uint32_t o = 5 + 12 * l;
      auto get = [&](std::uint32_t i, const char* name, std::int64_t n) { return floats(env, w.Get(o + i), name, n); };
      Layer ly;
      ly.ln1w = get(0, "ln1W", C);
      ly.ln1b = get(1, "ln1B", C);
      const auto qkvw = get(2, "qkvW", 3 * C * C), qkvb = get(3, "qkvB", 3 * C);
      const auto projw = get(4, "projW", C * C), projb = get(5, "projB", C);
      ly.ln2w = get(6, "ln2W", C);
      ly.ln2b = get(7, "ln2B", C);
      const auto fcw = get(8, "fcW", F * C), fcb = get(9, "fcB", F);
      const auto fcpw = get(10, "fcProjW", C * F), fcpb = get(11, "fcProjB", C);
      ly.qkv = std::make_unique<Linear>(qkvw.data(), qkvb.data(), 3 * C_, C_);
      ly.proj = std::make_unique<Linear>(projw.data(), projb.data(), C_, C_);
      ly.fc = std::make_unique<Linear>(fcw.data(), fcb.data(), F_, C_);
      ly.fcproj = std::make_unique<Linear>(fcpw.data(), fcpb.data(), C_, F_);
      layers_.push_back(std::move(ly));
    }
    const std::size_t R = maxRows_;
    const std::size_t cache = static_cast<std::size_t>(S_) * T_ * C_;
    kc_.assign(L_, std::vector<std::uint16_t>(cache));
    vc_.assign(L_, std::vector<std::uint16_t>(cache));
    x_.resize(R * C_);
    ln_.resize(R * C_);
    mean_.resize(R);
    rstd_.resize(R);
    qkv_.resize(R * 3 * C_);
    atty_.resize(R * C_);
    tmp_.resize(R * C_);
    fch_.resize(R * F_);
    fchg_.resize(R * F_);
    sel_.resize(R * C_);
    atts_.resize(R * C_);
    want_.resize(R);
    logits_.resize(R * static_cast<std::size_t>(V_));
    alias_slot_.resize(S_);
    for (int i = 0; i < S_; i++) alias_slot_[i] = i;
    alias_len_.assign(S_, 0);
    samplers_.resize(S_);
    for (auto& s : samplers_) s.reset(0, 1, 40, 0, V_);
  }

 private:
  struct Rows {
    const std::int32_t *tokens, *slots, *pos, *out;
    int R, first_prefill, n_out;
  };

  // (tokens, slots, pos, R, firstPrefill, outRows, nOut) from info[0..6], checked.
  Rows rows(const Napi::CallbackInfo& info) {
    const Napi::Env env = info.Env();
    Rows r{};
    r.R = int_of(env, info[3], "R", 0, maxRows_);
    r.first_prefill = int_of(env, info[4], "firstPrefill", 0, r.R);
    r.n_out = int_of(env, info[6], "nOut", 0, r.R);
    r.tokens = typed<std::int32_t, napi_int32_array>(env, info[0], "tokens", r.R);
    r.slots = typed<std::int32_t, napi_int32_array>(env, info[1], "slots", r.R);
    r.pos = typed<std::int32_t, napi_int32_array>(env, info[2], "pos", r.R);
    r.out = typed<std::int32_t, napi_int32_array>(env, info[5], "outRows", r.n_out);
    for (int i = 0; i < r.R; i++) {
      if (r.tokens[i] < 0 || r.tokens[i] >= V_)
        fail(env, "token " + std::to_string(r.tokens[i]) + " outside the vocabulary (" + std::to_string(V_) + ")");
      if (r.pos[i] < 0 || r.pos[i] >= T_)
        fail(env, "position " + std::to_string(r.pos[i]) + " outside the context (" + std::to_string(T_) + ")");
      if (r.slots[i] < 0 || r.slots[i] >= S_) fail(env, "slot " + std::to_string(r.slots[i]) + " outside [0, slots)");
      if (r.pos[i] < alias_len_[r.slots[i]])
        fail(env, "position " + std::to_string(r.pos[i]) + " of slot " + std::to_string(r.slots[i]) +
                      " is inside its shared prefix");
    }
    for (int i = 0; i < r.n_out; i++)
      if (r.out[i] < 0 || r.out[i] >= r.R) fail(env, "outRows[" + std::to_string(i) + "] outside [0, R)");
    return r;
  }

  // Runs the forward; logits of the out rows land in logits_ (n_out, V). The row kernels run on the
  // engine's own thread count, set for the calling thread only (ScopedThreads): the trainer's setting and
  // other engines stepping on other threads are untouched, and a 1-thread engine never wakes a pool thread.
  void run(const Rows& r) {
    const ScopedThreads scoped(threads_);
    forward_rows(r);
  }

  // Adds the CPU time since the last mark to phase p.
  void mark(Phase p) {
    const double now = thread_cpu();
    prof_[p] += now - last_;
    last_ = now;
  }

  void forward_rows(const Rows& r) {
    const int C = C_;
    int R = r.R;
    float* x = x_.data();
    last_ = thread_cpu();
    for (int i = 0; i < R; i++) {
      const float* e = wte_.data() + static_cast<std::int64_t>(r.tokens[i]) * C;
      const float* p = wpe_.data() + static_cast<std::int64_t>(r.pos[i]) * C;
      float* o = x + static_cast<std::int64_t>(i) * C;
      for (int c = 0; c < C; c++) o[c] = e[c] + p[c];
    }
    mark(kEmbed);
    for (int l = 0; l < L_; l++) {
      const Layer& ly = layers_[l];
      layernorm_forward(ln_.data(), mean_.data(), rstd_.data(), x, ly.ln1w.data(), ly.ln1b.data(), R, C);
      mark(kNorm);
      ly.qkv->forward(qkv_.data(), ln_.data(), R, threads_);
      mark(kGemm);
      // In the last layer only the out rows' results are used (the others' keys and values, cached
      // here, are all that later steps read), so, as llama.cpp does with its output ids, the rest of
      // the layer runs on the out rows alone, gathered in out order. Each row's arithmetic is
      // independent of the others', so this changes no bit of theirs.
      const bool last = l == L_ - 1;
      const std::uint8_t* want = nullptr;
      if (last) {
        std::fill(want_.begin(), want_.begin() + R, 0);
        for (int i = 0; i < r.n_out; i++) want_[r.out[i]] = 1;
        want = want_.data();
      }
      // The call adds its prompt rows' CPU time to kAttnPrefill; the rest of it is the decode rows'.
      const double prefill_before = prof_[kAttnPrefill];
      kv_attention_forward(atty_.data(), qkv_.data(), kc_[l].data(), vc_[l].data(), r.slots, r.pos, R, C, NH_, T_,
                           threads_, r.first_prefill, alias_slot_.data(), alias_len_.data(), &prof_[kAttnPrefill],
                           want);
      mark(kAttnDecode);
      prof_[kAttnDecode] -= prof_[kAttnPrefill] - prefill_before;
      const float* att = atty_.data();
      if (last) {
        if (r.n_out == 0) return;
        for (int i = 0; i < r.n_out; i++) {
          const std::int64_t from = static_cast<std::int64_t>(r.out[i]) * C, to = static_cast<std::int64_t>(i) * C;
          std::memcpy(sel_.data() + to, x + from, sizeof(float) * C);
          std::memcpy(atts_.data() + to, atty_.data() + from, sizeof(float) * C);
        }
        x = sel_.data();
        att = atts_.data();
        R = r.n_out;
        mark(kResidual);
      }
      mlp_rows(ly, x, att, R);
    }
    layernorm_forward(ln_.data(), mean_.data(), rstd_.data(), x, lnfw_.data(), lnfb_.data(), R, C);
    head_->forward(logits_.data(), ln_.data(), R, threads_);
    mark(kHead);
  }

  // The rest of a layer for rows x (R, C), given their attention outputs att: the projection and
  // residual, then the MLP block and its residual.
  void mlp_rows(const Layer& ly, float* x, const float* att, int R) {
    const int F = F_;
    const std::int64_t RC = static_cast<std::int64_t>(R) * C_;
    ly.proj->forward(tmp_.data(), att, R, threads_);
    mark(kGemm);
    residual_forward(x, x, tmp_.data(), RC);
    mark(kResidual);
    layernorm_forward(ln_.data(), mean_.data(), rstd_.data(), x, ly.ln2w.data(), ly.ln2b.data(), R, C_);
    mark(kNorm);
    ly.fc->forward(fch_.data(), ln_.data(), R, threads_);
    mark(kGemm);
    if (llamaGelu_) {
      // Elementwise: chunks of rows on the engine's threads give the same values.
      constexpr int kGeluRows = 32;
      parallel_for((R + kGeluRows - 1) / kGeluRows, threads_, [&](int c) {
        const std::int64_t r0 = static_cast<std::int64_t>(c) * kGeluRows, r1 = std::min<std::int64_t>(R, r0 + kGeluRows);
        gelu_f16_forward(fchg_.data() + r0 * F, fch_.data() + r0 * F, (r1 - r0) * F);
      });
    } else {
      gelu_forward(fchg_.data(), fch_.data(), static_cast<std::int64_t>(R) * F);
    }
    mark(kGelu);
    ly.fcproj->forward(tmp_.data(), fchg_.data(), R, threads_);
    mark(kGemm);
    residual_forward(x, x, tmp_.data(), RC);
    mark(kResidual);
  }

  // profile(): CPU seconds of the calling thread per phase since the engine was made (worker threads of
  // a multi-threaded engine are not included), and the rows run.
  Napi::Value Profile(const Napi::CallbackInfo& info) {
    check_idle(info.Env());
    Napi::Object o = Napi::Object::New(info.Env());
    for (int p = 0; p < kPhases; p++) o.Set(kPhaseNames[p], prof_[p]);
    o.Set("rows", static_cast<double>(rows_run_));
    o.Set("steps", static_cast<double>(steps_run_));
    o.Set("decodePositions", static_cast<double>(decode_positions_));
    return o;
  }

  // step(tokens, slots, pos, R, firstPrefill, outRows, nOut, next: Int32Array): the forward, then each out
  // row's next token drawn by the sampler of its slot.
  Napi::Value Step(const Napi::CallbackInfo& info) {
    check_idle(info.Env());
    const Rows r = rows(info);
    step_rows(r, typed<std::int32_t, napi_int32_array>(info.Env(), info[7], "next", r.n_out));
    return info.Env().Undefined();
  }

  // stepAsync(same arguments as step): the same step on a libuv worker thread, so that the JS thread (and
  // other engines, each on its own worker) run meanwhile; returns a Promise that resolves once next is
  // written. Until then the engine is busy (every other call throws) and the caller must leave the
  // argument arrays alone (they are kept alive here).
  Napi::Value StepAsync(const Napi::CallbackInfo& info) {
    const Napi::Env env = info.Env();
    check_idle(env);
    const Rows r = rows(info);
    std::int32_t* next = typed<std::int32_t, napi_int32_array>(env, info[7], "next", r.n_out);
    auto* worker = new StepWorker(env, this, r, next, Decode{});
    for (std::size_t i : {0, 1, 2, 5, 7}) worker->keep(info[i].As<Napi::Object>());
    busy_ = true;
    worker->Queue();
    return worker->promise();
  }

  // The decode steps after the first of a decodeAsync call (see decode_steps).
  struct Decode {
    int steps = 1;
    const std::int32_t* budget = nullptr;
    int eos = -1;
    std::int32_t *drawn = nullptr, *counts = nullptr;
  };

  // decodeAsync(tokens, slots, pos, R, firstPrefill, outRows, nOut, steps, budget: Int32Array (nOut), eos,
  //             drawn: Int32Array (nOut * steps), counts: Int32Array (nOut)): stepAsync's step, then up to
  // steps - 1 more steps of decode rows only, for the out rows that drew neither `eos` nor their last
  // budgeted token (budget[i] >= 1 tokens for out row i, this step's included) and stay inside the context.
  // Out row i's tokens land in drawn[i * steps ...], counts[i] of them. Every token is the one the same
  // sequence of single steps would draw (a row's arithmetic and its sampler do not depend on the batch):
  // the call saves the JS round trips between those steps.
  Napi::Value DecodeAsync(const Napi::CallbackInfo& info) {
    const Napi::Env env = info.Env();
    check_idle(env);
    const Rows r = rows(info);
    Decode d;
    d.steps = int_of(env, info[7], "steps", 1, 1024);
    d.budget = typed<std::int32_t, napi_int32_array>(env, info[8], "budget", r.n_out);
    d.eos = int_of(env, info[9], "eos", -1, V_ - 1);
    d.drawn = typed<std::int32_t, napi_int32_array>(env, info[10], "drawn", static_cast<std::int64_t>(r.n_out) * d.steps);
    d.counts = typed<std::int32_t, napi_int32_array>(env, info[11], "counts", r.n_out);
    for (int i = 0; i < r.n_out; i++)
      if (d.budget[i] < 1) fail(env, "budget[" + std::to_string(i) + "] = " + std::to_string(d.budget[i]) + " < 1");
    auto* worker = new StepWorker(env, this, r, nullptr, d);
    for (std::size_t i : {0, 1, 2, 5, 8, 10, 11}) worker->keep(info[i].As<Napi::Object>());
    busy_ = true;
    worker->Queue();
    return worker->promise();
  }

  // One stepAsync or decodeAsync call: step_rows (or decode_steps) off the JS thread, then the promise
  // settles on it.
  class StepWorker : public Napi::AsyncWorker {
   public:
    StepWorker(Napi::Env env, DecodeEngine* engine, const Rows& r, std::int32_t* next, const Decode& d)
        : Napi::AsyncWorker(env), engine_(engine), rows_(r), next_(next), decode_(d),
          deferred_(Napi::Promise::Deferred::New(env)) {
      self_ = Napi::Persistent(engine->Value());
    }
    void keep(Napi::Object o) { kept_.push_back(Napi::Persistent(o)); }
    Napi::Promise promise() const { return deferred_.Promise(); }
    void Execute() override {
      try {
        if (decode_.drawn != nullptr)
          engine_->decode_steps(rows_, decode_);
        else
          engine_->step_rows(rows_, next_);
      } catch (const std::exception& e) {
        SetError(std::string("decode step failed: ") + e.what());
      }
    }
    void OnOK() override {
      engine_->busy_ = false;
      deferred_.Resolve(Env().Undefined());
    }
    void OnError(const Napi::Error& e) override {
      engine_->busy_ = false;
      deferred_.Reject(e.Value());
    }

   private:
    DecodeEngine* engine_;
    Rows rows_;
    std::int32_t* next_;
    Decode decode_;
    Napi::Promise::Deferred deferred_;
    Napi::ObjectReference self_;  // the engine outlives its step
    std::vector<Napi::ObjectReference> kept_;  // and so do the argument arrays
  };

  // Every call but stepAsync's own completion needs an idle engine: its caches, samplers and buffers
  // belong to the step in flight.
  void check_idle(Napi::Env env) const {
    if (busy_) fail(env, "the engine is busy: a stepAsync call has not finished (await it first)");
  }

  void step_rows(const Rows& r, std::int32_t* next) {
    run(r);
    // Each out row is a different sequence with its own sampler (slot), so rows can be drawn on any
    // thread in any order: chunks of 8 rows on the engine's threads, the same tokens either way.
    constexpr int kRowsPerTask = 8;
    parallel_for((r.n_out + kRowsPerTask - 1) / kRowsPerTask, threads_, [&](int c) {
      thread_local ChainSampler::Scratch scratch;
      const int i1 = std::min(r.n_out, (c + 1) * kRowsPerTask);
      for (int i = c * kRowsPerTask; i < i1; i++)
        next[i] = samplers_[r.slots[r.out[i]]].sample(logits_.data() + static_cast<std::int64_t>(i) * V_, V_, scratch);
    });
    mark(kSample);
    rows_run_ += r.R;
    steps_run_++;
    for (int i = 0; i < r.first_prefill; i++) decode_positions_ += static_cast<std::int64_t>(r.pos[i] + 1) * NH_ * L_;
  }

  // decodeAsync's work: the step of rows r, then decode-only steps of the out rows still generating.
  void decode_steps(const Rows& r, const Decode& d) {
    md_next_.resize(static_cast<std::size_t>(r.n_out));
    step_rows(r, md_next_.data());
    md_row_.clear();
    md_tok_.clear();
    md_slot_.clear();
    md_pos_.clear();
    // Keeps out row i generating with token t at position p, if it may draw another token there.
    auto carry = [&](int i, std::int32_t t, std::int32_t slot, std::int32_t p) {
      if (t != d.eos && d.counts[i] < d.budget[i] && p < T_) {
        md_row_.push_back(i);
        md_tok_.push_back(t);
        md_slot_.push_back(slot);
        md_pos_.push_back(p);
      }
    };
    for (int i = 0; i < r.n_out; i++) {
      d.drawn[static_cast<std::int64_t>(i) * d.steps] = md_next_[i];
      d.counts[i] = 1;
      carry(i, md_next_[i], r.slots[r.out[i]], r.pos[r.out[i]] + 1);
    }
    std::vector<std::int32_t> row, tok, slot, pos;  // this step's rows (carry fills md_* for the next)
    for (int s = 1; s < d.steps && !md_row_.empty(); s++) {
      const int n = static_cast<int>(md_row_.size());
      md_out_.resize(static_cast<std::size_t>(n));
      for (int j = 0; j < n; j++) md_out_[j] = j;
      row.swap(md_row_);
      tok.swap(md_tok_);
      slot.swap(md_slot_);
      pos.swap(md_pos_);
      md_next_.resize(static_cast<std::size_t>(n));
      step_rows(Rows{tok.data(), slot.data(), pos.data(), md_out_.data(), n, n, n}, md_next_.data());
      md_row_.clear();
      md_tok_.clear();
      md_slot_.clear();
      md_pos_.clear();
      for (int j = 0; j < n; j++) {
        const int i = row[j];
        d.drawn[static_cast<std::int64_t>(i) * d.steps + d.counts[i]] = md_next_[j];
        d.counts[i]++;
        carry(i, md_next_[j], slot[j], pos[j] + 1);
      }
    }
  }

  // forward(tokens, slots, pos, R, firstPrefill, outRows, nOut, logits: Float32Array (nOut, V)).
  Napi::Value Forward(const Napi::CallbackInfo& info) {
    check_idle(info.Env());
    const Rows r = rows(info);
    float* out = typed<float, napi_float32_array>(info.Env(), info[7], "logits", static_cast<std::int64_t>(r.n_out) * V_);
    run(r);
    std::memcpy(out, logits_.data(), sizeof(float) * r.n_out * V_);
    return info.Env().Undefined();
  }

  // setSampler(slot, temperature, topP, topK, seed): a fresh sampler (new RNG stream) for the slot's request.
  Napi::Value SetSampler(const Napi::CallbackInfo& info) {
    const Napi::Env env = info.Env();
    check_idle(env);
    const int slot = int_of(env, info[0], "slot", 0, S_ - 1);
    if (!info[1].IsNumber() || !info[2].IsNumber()) fail(env, "temperature and topP must be numbers");
    const int top_k = int_of(env, info[3], "topK", -2147483647);
    const std::int64_t seed = static_cast<std::int64_t>(info[4].As<Napi::Number>().DoubleValue());
    if (!info[4].IsNumber() || seed < 0 || seed > 4294967295LL) fail(env, "seed must be an integer in [0, 2^32)");
    samplers_[slot].reset(info[1].As<Napi::Number>().DoubleValue(), info[2].As<Napi::Number>().DoubleValue(), top_k,
                          static_cast<std::uint32_t>(seed), V_);
    return env.Undefined();
  }

  // sample(slot, logits: Float32Array (V)): one draw of the slot's sampler from given logits (for tests).
  Napi::Value Sample(const Napi::CallbackInfo& info) {
    const Napi::Env env = info.Env();
    check_idle(env);
    const int slot = int_of(env, info[0], "slot", 0, S_ - 1);
    const float* logits = typed<float, napi_float32_array>(env, info[1], "logits", V_);
    thread_local ChainSampler::Scratch scratch;
    return Napi::Number::New(env, samplers_[slot].sample(logits, V_, scratch));
  }

  // sharePrefix(to, from, n): positions [0, n) of slot `to` are read from slot `from`'s cache from now on
  // (a prompt prefix both sequences share; n = 0 ends the sharing). `from` must hold its own keys/values
  // there (it shares nothing itself), and the caller must not let `from` overwrite them meanwhile.
  // Bit-identical to recomputing them: a position's keys/values depend only on the tokens up to it.
  Napi::Value SharePrefix(const Napi::CallbackInfo& info) {
    const Napi::Env env = info.Env();
    check_idle(env);
    const int to = int_of(env, info[0], "to", 0, S_ - 1), from = int_of(env, info[1], "from", 0, S_ - 1);
    const int n = int_of(env, info[2], "n", 0, T_);
    if (n > 0 && from != to && alias_len_[from] > 0)
      fail(env, "slot " + std::to_string(from) + " shares its own prefix from another slot");
    alias_slot_[to] = n > 0 ? from : to;
    alias_len_[to] = from == to ? 0 : n;
    return env.Undefined();
  }

  int L_ = 0, C_ = 0, NH_ = 0, F_ = 0, T_ = 0, V_ = 0, S_ = 0, maxRows_ = 0, threads_ = 1;
  bool llamaGelu_ = true;
  bool busy_ = false;  // a stepAsync is in flight (read and written on the JS thread only)
  std::vector<float> wte_, wpe_, lnfw_, lnfb_;
  std::unique_ptr<Linear> head_;
  std::vector<Layer> layers_;
  std::vector<std::vector<std::uint16_t>> kc_, vc_;
  // sel_, atts_: the out rows of x_ and atty_, gathered in the last layer; want_: which rows are out rows.
  std::vector<float> x_, ln_, mean_, rstd_, qkv_, atty_, tmp_, fch_, fchg_, sel_, atts_, logits_;
  std::vector<std::uint8_t> want_;
  std::vector<ChainSampler> samplers_;
  // decode_steps' rows still generating: out row, last token, slot, next position; and its draws.
  std::vector<std::int32_t> md_row_, md_tok_, md_slot_, md_pos_, md_out_, md_next_;
  std::vector<std::int32_t> alias_slot_, alias_len_;  // per slot: positions [0, len) live in slot alias_slot
  double prof_[kPhases] = {};
  double last_ = 0;
  std::int64_t rows_run_ = 0, steps_run_ = 0;
  std::int64_t decode_positions_ = 0;  // cached positions x heads x layers attended by decode rows
};

}  // namespace

void register_decode_engine(Napi::Env env, Napi::Object exports) {
  exports.Set("DecodeEngine", DecodeEngine::Define(env));
}

}  // namespace sk
