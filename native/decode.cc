// Kernels for batched autoregressive decoding with a KV cache (src/generate/native/decoder.ts): one call
// handles a ragged batch of rows, each row one token of some sequence at some position, as llama.cpp's
// llama_batch does. Prefill chunks and single decode tokens of many sequences share one call.
//
// Every output row is computed by one thread with a fixed loop order that depends only on that row's
// sequence (its cached keys/values and position), never on the other rows in the batch or on the thread
// count, so the decoder's results are bitwise identical whatever the batch composition.
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <ctime>
#if defined(__F16C__)
#include <immintrin.h>
#endif
#include <random>
#include <string>
#include <vector>

#include "decode.h"
#include "gemm.h"
#include "pool.h"

// AVX2 + FMA + F16C without AVX-512 (Zen 3, Haswell on): 8-lane paths that give the AVX-512 paths' bits
// (the same operations per lane, horizontal sums in _mm512_reduce_add_ps's pairing).
#if !defined(__AVX512F__) && defined(__AVX2__) && defined(__F16C__) && defined(__FMA__)
#define SK_DECODE_AVX2 1
#endif

namespace sk {

#if defined(__F16C__)
// F16C: the conversions ggml itself uses on x86 (GGML_CPU_FP32_TO_FP16 = _cvtss_sh(x, 0), nearest even).
inline std::uint16_t f32_to_f16(float f) { return static_cast<std::uint16_t>(_cvtss_sh(f, 0)); }
inline float f16_to_f32(std::uint16_t h) { return _cvtsh_ss(h); }
#else
// IEEE half precision, round to nearest even (what F16C's _cvtss_sh(x, 0), used by ggml on x86, does).
std::uint16_t f32_to_f16(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  const std::uint32_t sign = (u >> 16) & 0x8000u;
  const int exp = static_cast<int>((u >> 23) & 0xffu);
  std::uint32_t mant = u & 0x7fffffu;
  if (exp == 0xff) return static_cast<std::uint16_t>(sign | 0x7c00u | (mant != 0 ? 0x200u : 0u));
  const int e = exp - 127 + 15;
  if (e >= 0x1f) return static_cast<std::uint16_t>(sign | 0x7c00u);
  if (e <= 0) {
    if (e < -10) return static_cast<std::uint16_t>(sign);
    mant |= 0x800000u;
    const int shift = 14 - e;
    std::uint32_t h = mant >> shift;
    const std::uint32_t rem = mant & ((1u << shift) - 1u);
    const std::uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1u) != 0)) h++;
    return static_cast<std::uint16_t>(sign | h);
  }
  std::uint32_t h = (static_cast<std::uint32_t>(e) << 10) | (mant >> 13);
  const std::uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u) != 0)) h++;
  return static_cast<std::uint16_t>(sign | h);
}

float f16_to_f32(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1fu;
  std::uint32_t mant = h & 0x3ffu;
  std::uint32_t u;
  if (exp == 0) {
    if (mant == 0) {
      u = sign;
    } else {  // subnormal: renormalise
      int e = -1;
      do {
        e++;
        mant <<= 1;
      } while ((mant & 0x400u) == 0);
      u = sign | (static_cast<std::uint32_t>(127 - 15 - e) << 23) | ((mant & 0x3ffu) << 13);
    }
  } else if (exp == 0x1f) {
    u = sign | 0x7f800000u | (mant << 13);
  } else {
    u = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
#endif

// ggml's CPU GELU (GGML_GELU_FP16): a table over all halves of fp16(gelu_tanh(x)), looked up at fp16(x);
// |x| >= 10 short-cuts to 0 or x. Reproduced so that logits match llama.cpp's.
const std::vector<float>& gelu_f16_table() {
  static const std::vector<float> table = [] {
    std::vector<float> t(65536);
    const float k = 0.79788456080286535587989211986876f;
    for (std::uint32_t i = 0; i < 65536; i++) {
      const float f = f16_to_f32(static_cast<std::uint16_t>(i));
      const float g = 0.5f * f * (1.0f + std::tanh(k * f * (1.0f + 0.044715f * f * f)));
      t[i] = f16_to_f32(f32_to_f16(g));
    }
    return t;
  }();
  return table;
}

void gelu_f16_forward(float* out, const float* inp, std::int64_t n) {
  const float* t = gelu_f16_table().data();
  std::int64_t i = 0;
#if defined(__AVX512F__)
  // 16 lanes: the same f16 conversion (round to nearest even) and table entries, gathered.
  const __m512 lo = _mm512_set1_ps(-10.0f), hi = _mm512_set1_ps(10.0f);
  for (; i + 16 <= n; i += 16) {
    const __m512 x = _mm512_loadu_ps(inp + i);
    const __m512i h = _mm512_cvtepu16_epi32(_mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    __m512 g = _mm512_i32gather_ps(h, t, 4);
    g = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, hi, _CMP_GE_OQ), g, x);
    g = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, lo, _CMP_LE_OQ), g, _mm512_setzero_ps());
    _mm512_storeu_ps(out + i, g);
  }
#elif defined(SK_DECODE_AVX2)
  // The same with 8 lanes.
  const __m256 lo = _mm256_set1_ps(-10.0f), hi = _mm256_set1_ps(10.0f);
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(inp + i);
    const __m256i h = _mm256_cvtepu16_epi32(_mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    __m256 g = _mm256_i32gather_ps(t, h, 4);
    g = _mm256_blendv_ps(g, x, _mm256_cmp_ps(x, hi, _CMP_GE_OQ));
    g = _mm256_blendv_ps(g, _mm256_setzero_ps(), _mm256_cmp_ps(x, lo, _CMP_LE_OQ));
    _mm256_storeu_ps(out + i, g);
  }
#endif
  for (; i < n; i++) {
    const float x = inp[i];
    out[i] = x <= -10.0f ? 0.0f : x >= 10.0f ? x : t[f32_to_f16(x)];
  }
}

inline float r16(float x) { return f16_to_f32(f32_to_f16(x)); }

double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

#if defined(__AVX512F__) || defined(SK_DECODE_AVX2)
// expf for 16 lanes, bitwise equal to glibc's expf (sysdeps/ieee754/flt-32/e_expf.c, the FMA variant
// x86-64 glibc selects on this CPU class, which the scalar std::exp(float) calls here resolve to): the
// same table (e_exp2f_data.c) and the same double-precision steps and fused multiply-adds, 8 lanes at a
// time. Lanes outside its fast path (|x| >= 88, inf, NaN) go through std::exp itself. Why transcribe:
// the online softmax needs one exp per cached position, and a call per lane cost a quarter of the
// decode step; keeping glibc's exact results keeps the logits bit-identical to the scalar code.
// expf16_mismatches (below, exported for the tests) compares it with std::exp over a range of inputs.
alignas(64) constexpr std::uint64_t kExp2fTab[32] = {
    0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51, 0x3fef72b83c7d517b,
    0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1, 0x3fef06fe0a31b715, 0x3feef1a7373aa9cb,
    0x3feedea64c123422, 0x3feece086061892d, 0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429,
    0x3feea47eb03a5585, 0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
    0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d, 0x3feee89f995ad3ad,
    0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069, 0x3fef5818dcfba487, 0x3fef7c97337b9b5f,
    0x3fefa4afa2a490da, 0x3fefd0765b6e4540};
#endif

#if defined(__AVX512F__)
inline __m256 expf8_fast(__m256 x) {
  const __m512d inv_ln2_n = _mm512_set1_pd(0x1.71547652b82fep+5);
  const __m512d shift = _mm512_set1_pd(0x1.8p+52);
  const __m512d xd = _mm512_cvtps_pd(x);
  const __m512d kd0 = _mm512_fmadd_pd(inv_ln2_n, xd, shift);
  const __m512i ki = _mm512_castpd_si512(kd0);
  const __m512d kd = _mm512_sub_pd(kd0, shift);
  const __m512d r = _mm512_fmsub_pd(inv_ln2_n, xd, kd);
  const __m512i idx = _mm512_and_si512(ki, _mm512_set1_epi64(31));
  const __m512i* tab = reinterpret_cast<const __m512i*>(kExp2fTab);
  const __m512i lo = _mm512_permutex2var_epi64(_mm512_load_si512(tab), idx, _mm512_load_si512(tab + 1));
  const __m512i hi = _mm512_permutex2var_epi64(_mm512_load_si512(tab + 2), idx, _mm512_load_si512(tab + 3));
  const __mmask8 upper = _mm512_test_epi64_mask(idx, _mm512_set1_epi64(16));
  const __m512i t = _mm512_add_epi64(_mm512_mask_blend_epi64(upper, lo, hi), _mm512_slli_epi64(ki, 47));
  const __m512d sc = _mm512_castsi512_pd(t);
  const __m512d z = _mm512_fmadd_pd(r, _mm512_set1_pd(0x1.c6af84b912394p-20), _mm512_set1_pd(0x1.ebfce50fac4f3p-13));
  const __m512d r2 = _mm512_mul_pd(r, r);
  __m512d y = _mm512_fmadd_pd(r, _mm512_set1_pd(0x1.62e42ff0c52d6p-6), _mm512_set1_pd(1.0));
  y = _mm512_fmadd_pd(z, r2, y);
  return _mm512_cvtpd_ps(_mm512_mul_pd(y, sc));
}

inline __m512 expf16(__m512 x) {
  const __m256 lo = expf8_fast(_mm512_castps512_ps256(x));
  const __m256 hi = expf8_fast(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)));
  __m512 e = _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(lo)), _mm256_castps_pd(hi), 1));
  // glibc's fast path: top 12 bits of |x| <= 0x42a.
  const __m512i top = _mm512_and_si512(_mm512_srli_epi32(_mm512_castps_si512(x), 20), _mm512_set1_epi32(0x7ff));
  __mmask16 slow = _mm512_cmpgt_epu32_mask(top, _mm512_set1_epi32(0x42a));
  if (slow != 0) {
    alignas(64) float xs[16];
    alignas(64) float es[16];
    _mm512_store_ps(xs, x);
    _mm512_store_ps(es, e);
    for (int i = 0; i < 16; i++)
      if ((slow >> i) & 1) es[i] = std::exp(xs[i]);
    e = _mm512_load_ps(es);
  }
  return e;
}

// out[i] = expf(in[i]) for i in [0, n), bitwise std::exp's.
inline void expf_array(float* out, const float* in, int n) {
  int i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, expf16(_mm512_loadu_ps(in + i)));
  for (; i < n; i++) out[i] = std::exp(in[i]);
}
#elif defined(SK_DECODE_AVX2)
// expf8_fast's steps (glibc's expf) on 4 double lanes; the table entries gathered.
inline __m128 expf4_fast(__m128 x) {
  const __m256d inv_ln2_n = _mm256_set1_pd(0x1.71547652b82fep+5);
  const __m256d shift = _mm256_set1_pd(0x1.8p+52);
  const __m256d xd = _mm256_cvtps_pd(x);
  const __m256d kd0 = _mm256_fmadd_pd(inv_ln2_n, xd, shift);
  const __m256i ki = _mm256_castpd_si256(kd0);
  const __m256d kd = _mm256_sub_pd(kd0, shift);
  const __m256d r = _mm256_fmsub_pd(inv_ln2_n, xd, kd);
  const __m256i idx = _mm256_and_si256(ki, _mm256_set1_epi64x(31));
  const __m256i tab = _mm256_i64gather_epi64(reinterpret_cast<const long long*>(kExp2fTab), idx, 8);
  const __m256d sc = _mm256_castsi256_pd(_mm256_add_epi64(tab, _mm256_slli_epi64(ki, 47)));
  const __m256d z = _mm256_fmadd_pd(r, _mm256_set1_pd(0x1.c6af84b912394p-20), _mm256_set1_pd(0x1.ebfce50fac4f3p-13));
  const __m256d r2 = _mm256_mul_pd(r, r);
  __m256d y = _mm256_fmadd_pd(r, _mm256_set1_pd(0x1.62e42ff0c52d6p-6), _mm256_set1_pd(1.0));
  y = _mm256_fmadd_pd(z, r2, y);
  return _mm256_cvtpd_ps(_mm256_mul_pd(y, sc));
}

// expf16 with 8 lanes: bitwise std::exp (the lanes outside glibc's fast path through std::exp itself).
inline __m256 expf8(__m256 x) {
  __m256 e = _mm256_set_m128(expf4_fast(_mm256_extractf128_ps(x, 1)), expf4_fast(_mm256_castps256_ps128(x)));
  // glibc's fast path: top 12 bits of |x| <= 0x42a (non-negative after the mask: a signed compare is right).
  const __m256i top = _mm256_and_si256(_mm256_srli_epi32(_mm256_castps_si256(x), 20), _mm256_set1_epi32(0x7ff));
  const int slow = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(top, _mm256_set1_epi32(0x42a))));
  if (slow != 0) {
    alignas(32) float xs[8];
    alignas(32) float es[8];
    _mm256_store_ps(xs, x);
    _mm256_store_ps(es, e);
    for (int i = 0; i < 8; i++)
      if ((slow >> i) & 1) es[i] = std::exp(xs[i]);
    e = _mm256_load_ps(es);
  }
  return e;
}

inline void expf_array(float* out, const float* in, int n) {
  int i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, expf8(_mm256_loadu_ps(in + i)));
  for (; i < n; i++) out[i] = std::exp(in[i]);
}
#else
inline void expf_array(float* out, const float* in, int n) {
  for (int i = 0; i < n; i++) out[i] = std::exp(in[i]);
}
#endif

// Float bit patterns from, from + stride, ... (count of them) where expf_array and std::exp differ, NaN
// inputs excepted (test hook: the tests sample it, and every pattern of [-104, 89] was checked once).
std::int64_t expf16_mismatches(std::uint32_t from, std::uint32_t stride, std::int64_t count) {
  std::vector<float> in(4096), out(4096);
  std::int64_t bad = 0;
  std::uint32_t b = from;
  for (std::int64_t k0 = 0; k0 < count; k0 += 4096) {
    const int n = static_cast<int>(std::min<std::int64_t>(4096, count - k0));
    for (int i = 0; i < n; i++, b += stride) std::memcpy(&in[i], &b, 4);
    expf_array(out.data(), in.data(), n);
    for (int i = 0; i < n; i++) {
      const float ref = std::exp(in[i]);
      if (std::memcmp(&ref, &out[i], 4) != 0 && !std::isnan(in[i])) bad++;
    }
  }
  return bad;
}

#if defined(SK_DECODE_AVX2)
// _mm512_reduce_add_ps of the 16 lanes lo (0-7), hi (8-15): lanes j + j+8, then j + j+4 (of those 8),
// then j + j+2 (of those 4), then the last two, as GCC's reduce_add_ps adds them.
inline float reduce_add16(__m256 lo, __m256 hi) {
  const __m256 s8 = _mm256_add_ps(lo, hi);
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}
#endif

// q·k over n values with k in f16. Fixed evaluation order for a given build and n (one 16-lane vector
// accumulator with AVX-512, the same 16 lanes in two 8-lane halves with AVX2, else 16 scalar partial
// sums), so the result depends only on the two vectors. dot_f16_reference is its scalar transcription.
inline float dot_f16(const float* q, const std::uint16_t* k, int n) {
#if defined(__AVX512F__)
  if (n % 16 == 0) {
    __m512 acc = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) {
      const __m512 kv = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(k + i)));
      acc = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), kv, acc);
    }
    return _mm512_reduce_add_ps(acc);
  }
#elif defined(SK_DECODE_AVX2)
  if (n % 16 == 0) {  // lanes 0-7 and 8-15 of the AVX-512 accumulator
    __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 16) {
      const __m256 k0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(k + i)));
      const __m256 k1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(k + i + 8)));
      lo = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), k0, lo);
      hi = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), k1, hi);
    }
    return reduce_add16(lo, hi);
  }
#endif
  constexpr int L = 16;
  float acc[L] = {};
  int i = 0;
  for (; i + L <= n; i += L)
    for (int j = 0; j < L; j++) acc[j] += q[i + j] * f16_to_f32(k[i + j]);
  float s = 0.f;
  for (int j = 0; j < L; j++) s += acc[j];
  for (; i < n; i++) s += q[i] * f16_to_f32(k[i]);
  return s;
}

// dot_f16 in scalar code (for the tests): with a vector path (n a multiple of 16), 16 fused
// multiply-add chains, one per lane, summed in reduce_add16's pairing; else dot_f16's own loop.
float dot_f16_reference(const float* q, const std::uint16_t* k, int n) {
#if defined(__AVX512F__) || defined(SK_DECODE_AVX2)
  if (n % 16 == 0) {
    float a[16] = {};
    for (int i = 0; i < n; i += 16)
      for (int j = 0; j < 16; j++) a[j] = std::fma(q[i + j], f16_to_f32(k[i + j]), a[j]);
    for (int w = 8; w >= 1; w /= 2)
      for (int j = 0; j < w; j++) a[j] = a[j] + a[j + w];
    return a[0];
  }
#endif
  return dot_f16(q, k, n);
}

// acc (f16) = f16(acc * m): ggml_vec_scale_f16 (kScalar: without the vector loop, for the tests).
template <bool kScalar = false>
inline void scale_f16(std::uint16_t* acc, float m, int n) {
  int i = 0;
  [[maybe_unused]] const int nv = kScalar ? 0 : n;  // the end of the vector loop
#if defined(__AVX512F__)
  const __m512 mv = _mm512_set1_ps(m);
  for (; i + 16 <= nv; i += 16) {
    __m256i* p = reinterpret_cast<__m256i*>(acc + i);
    const __m512 a = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256(p)), mv);
    _mm256_storeu_si256(p, _mm512_cvtps_ph(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
#elif defined(SK_DECODE_AVX2)
  const __m256 mv = _mm256_set1_ps(m);
  for (; i + 8 <= nv; i += 8) {
    __m128i* p = reinterpret_cast<__m128i*>(acc + i);
    const __m256 a = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(p)), mv);
    _mm_storeu_si128(p, _mm256_cvtps_ph(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
#endif
  for (; i < n; i++) acc[i] = f32_to_f16(f16_to_f32(acc[i]) * m);
}

// acc (f16) = f16(fma(v, w, acc)): ggml_vec_mad_f16 (kScalar: without the vector loop).
template <bool kScalar = false>
inline void mad_f16(std::uint16_t* acc, const std::uint16_t* v, float w, int n) {
  int i = 0;
  [[maybe_unused]] const int nv = kScalar ? 0 : n;
#if defined(__AVX512F__)
  const __m512 wv = _mm512_set1_ps(w);
  for (; i + 16 <= nv; i += 16) {
    __m256i* p = reinterpret_cast<__m256i*>(acc + i);
    const __m512 x = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(v + i)));
    const __m512 a = _mm512_fmadd_ps(x, wv, _mm512_cvtph_ps(_mm256_loadu_si256(p)));
    _mm256_storeu_si256(p, _mm512_cvtps_ph(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
#elif defined(SK_DECODE_AVX2)
  const __m256 wv = _mm256_set1_ps(w);
  for (; i + 8 <= nv; i += 8) {
    __m128i* p = reinterpret_cast<__m128i*>(acc + i);
    const __m256 x = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v + i)));
    const __m256 a = _mm256_fmadd_ps(x, wv, _mm256_cvtph_ps(_mm_loadu_si128(p)));
    _mm_storeu_si128(p, _mm256_cvtps_ph(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
#endif
  for (; i < n; i++) acc[i] = f32_to_f16(std::fma(f16_to_f32(v[i]), w, f16_to_f32(acc[i])));
}

// One generated token's query (already f16-rounded) over n cached positions of one head, as llama.cpp's
// CPU flash attention computes a single-token decode (its default for these models): online softmax in
// float, the value accumulator kept in f16 (rescaled, then multiply-added in float and rounded back to
// f16 after every position), divided by the softmax sum at the end. kScalar: the same arithmetic in scalar
// code only (dot_f16_reference and the elementwise loops; the tests' reference for the vector paths).
template <bool kScalar = false>
void decode_head(float* o, const float* qh, const std::uint16_t* k, const std::uint16_t* v, int n, int hs, float scale,
                 std::uint16_t* acc) {
  std::fill(acc, acc + hs, static_cast<std::uint16_t>(0));
  float S = 0.0f;
  float M = -INFINITY;
  for (int t = 0; t < n; t++) {
    const std::uint16_t* kt = k + static_cast<std::int64_t>(t) * hs;
    const float s = (kScalar ? dot_f16_reference(qh, kt, hs) : dot_f16(qh, kt, hs)) * scale;
    float ms = 1.0f;
    float vs = 1.0f;
    if (s > M) {
      const float Mold = M;
      M = s;
      ms = std::exp(Mold - M);
      scale_f16<kScalar>(acc, ms, hs);
    } else {
      vs = std::exp(s - M);
    }
    mad_f16<kScalar>(acc, v + static_cast<std::int64_t>(t) * hs, vs, hs);
    S = S * ms + vs;
  }
  const float inv = S == 0.0f ? 0.0f : 1.0f / S;
  for (int i = 0; i < hs; i++) o[i] = f16_to_f32(acc[i]) * inv;
}

// One row's share of a decode_heads call: its output and queries at the first head of the group, its
// cache at that head (head stride hstride), positions [0, split) read from klo/vlo (a shared prompt
// prefix cached in another slot), n cached positions, and scratch of >= 3*H*n floats.
struct DecodeRow {
  float* o;
  const float* q;
  const std::uint16_t *k, *v, *klo, *vlo;
  int split, n;
  float* buf;
};

// f(p, h, t) for every row p < P, head h < H and position t < n[p], each (p, h) in increasing t: the rows'
// common positions in lockstep (P*H independent chains in flight), then each row's remaining ones.
template <int P, int H, typename F>
inline void lockstep(const DecodeRow* rw, F&& f, int t0 = 0) {
  int nmin = rw[0].n;
  for (int p = 1; p < P; p++) nmin = std::min(nmin, rw[p].n);
  for (int t = t0; t < nmin; t++) {
#pragma GCC unroll 8
    for (int p = 0; p < P; p++)
#pragma GCC unroll 4
      for (int h = 0; h < H; h++) f(p, h, t);
  }
  for (int p = 0; p < P; p++)
    for (int t = std::max(t0, nmin); t < rw[p].n; t++)
#pragma GCC unroll 4
      for (int h = 0; h < H; h++) f(p, h, t);
}

// A decode_heads instance: H heads of P rows (see decode_rows).
using DecodeFn = void (*)(const DecodeRow*, std::int64_t, float);

#if defined(__AVX512F__)
inline __m512 r16v(__m512 x) {
  return _mm512_cvtph_ps(_mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

// _mm512_reduce_add_ps of 16 vectors at once: lane p of the result is reduce_add(a[p]), bitwise. GCC's
// reduce_add_ps adds lanes j and j+8, then j and j+4 (of those 8), then j and j^2 (of those 4), then the
// last two; each round below performs exactly those additions (float addition is commutative bitwise),
// for 16 vectors together through shuffles, so the horizontal part costs ~3 instructions per vector
// instead of ~8.
inline __m512 reduce_add16(const __m512* a) {
  __m512 b[8], c[4], d[2];
  for (int p = 0; p < 8; p++)  // lanes j + j+8: position p in the low half of b[p], p+8 in the high half
    b[p] = _mm512_add_ps(_mm512_shuffle_f32x4(a[p], a[p + 8], 0x44), _mm512_shuffle_f32x4(a[p], a[p + 8], 0xEE));
  const __m512i lo = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
  const __m512i hi = _mm512_setr_epi32(4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
  for (int p = 0; p < 4; p++)  // lanes j + j+4: quadrant q of c[p] is position p + 4q
    c[p] = _mm512_add_ps(_mm512_permutex2var_ps(b[p], lo, b[p + 4]), _mm512_permutex2var_ps(b[p], hi, b[p + 4]));
  for (int p = 0; p < 2; p++)  // lanes j + j^2: quadrant q of d[p] is positions p + 4q (0, 1), p + 2 + 4q (2, 3)
    d[p] = _mm512_add_ps(_mm512_shuffle_ps(c[p], c[p + 2], _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_ps(c[p], c[p + 2], _MM_SHUFFLE(3, 2, 3, 2)));
  // The last pair: quadrant q holds positions 4q, 4q+2, 4q+1, 4q+3; put them in order.
  const __m512 e = _mm512_add_ps(_mm512_shuffle_ps(d[0], d[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                 _mm512_shuffle_ps(d[0], d[1], _MM_SHUFFLE(3, 1, 3, 1)));
  return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 2, 1, 3, 4, 6, 5, 7, 8, 10, 9, 11, 12, 14, 13, 15), e);
}

// s[t] = dot_f16(q, k_t) * scale for t in [t0, t1), bitwise: 16 positions per iteration, each with
// dot_f16's own accumulation (one 16-lane fma chain over the head's channels, from zero), their 16
// horizontal sums through reduce_add16.
template <int HS>
inline void scores(float* s, const float* q, const std::uint16_t* k, int t0, int t1, float scale) {
  constexpr int NV = HS / 16;
  __m512 qv[NV];
  for (int j = 0; j < NV; j++) qv[j] = _mm512_loadu_ps(q + 16 * j);
  const __m512 sv = _mm512_set1_ps(scale);
  int t = t0;
  for (; t + 16 <= t1; t += 16) {
    const std::uint16_t* kt = k + static_cast<std::int64_t>(t) * HS;
    __m512 a[16];
#pragma GCC unroll 16
    for (int p = 0; p < 16; p++) {
      // The cache streams from L3/memory: ask for the block after next (HS * 2 bytes per position).
      for (int l = 0; l < HS * 2; l += 64) _mm_prefetch(reinterpret_cast<const char*>(kt + (p + 32) * HS) + l, _MM_HINT_NTA);
      a[p] = _mm512_setzero_ps();
#pragma GCC unroll 8
      for (int j = 0; j < NV; j++) {
        const __m512 kv = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(kt + p * HS + 16 * j)));
        a[p] = _mm512_fmadd_ps(qv[j], kv, a[p]);
      }
    }
    _mm512_storeu_ps(s + t, _mm512_mul_ps(reduce_add16(a), sv));
  }
  for (; t < t1; t++) s[t] = dot_f16(q, k + static_cast<std::int64_t>(t) * HS, HS) * scale;
}

// One head's scores for n positions (s): positions [0, split) from kl (a shared prefix in another slot),
// the rest from kh. q: the head's query (not yet f16-rounded).
template <int HS>
void head_scores(const float* q, const std::uint16_t* kh, const std::uint16_t* kl, int split, int n, float scale,
                 float* s) {
  alignas(64) float qh[HS];
  for (int i = 0; i < HS; i++) qh[i] = r16(q[i]);
  const int m = std::min(split, n);
  scores<HS>(s, qh, kl, 0, m, scale);
  scores<HS>(s, qh, kh, m, n, scale);
}

// scores for two queries over the same keys (two rows reading one shared prompt prefix): each position's
// keys converted once for both, each query's products and sums exactly scores' (bitwise the same).
template <int HS>
inline void scores2(float* s0, float* s1, const float* q0, const float* q1, const std::uint16_t* k, int t1, float scale) {
  constexpr int NV = HS / 16;
  __m512 qv0[NV], qv1[NV];
  for (int j = 0; j < NV; j++) qv0[j] = _mm512_loadu_ps(q0 + 16 * j), qv1[j] = _mm512_loadu_ps(q1 + 16 * j);
  const __m512 sv = _mm512_set1_ps(scale);
  int t = 0;
  for (; t + 16 <= t1; t += 16) {
    const std::uint16_t* kt = k + static_cast<std::int64_t>(t) * HS;
    __m512 a0[16], a1[16];
#pragma GCC unroll 16
    for (int p = 0; p < 16; p++) {
      a0[p] = _mm512_setzero_ps();
      a1[p] = _mm512_setzero_ps();
#pragma GCC unroll 8
      for (int j = 0; j < NV; j++) {
        const __m512 kv = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(kt + p * HS + 16 * j)));
        a0[p] = _mm512_fmadd_ps(qv0[j], kv, a0[p]);
        a1[p] = _mm512_fmadd_ps(qv1[j], kv, a1[p]);
      }
    }
    _mm512_storeu_ps(s0 + t, _mm512_mul_ps(reduce_add16(a0), sv));
    _mm512_storeu_ps(s1 + t, _mm512_mul_ps(reduce_add16(a1), sv));
  }
  for (; t < t1; t++) {
    s0[t] = dot_f16(q0, k + static_cast<std::int64_t>(t) * HS, HS) * scale;
    s1[t] = dot_f16(q1, k + static_cast<std::int64_t>(t) * HS, HS) * scale;
  }
}

// The positions where both rows of a pair read their keys/values from one shared prefix (the same slot):
// [0, the shorter of their prefixes), else none.
inline int common_prefix(const DecodeRow& r0, const DecodeRow& r1) {
  if (r0.klo != r1.klo) return 0;
  return std::min(std::min(r0.split, r0.n), std::min(r1.split, r1.n));
}

// head_scores for two rows (r0, r1) of one head (offset ho in their caches): their common prefix
// positions through scores2 (its keys are read and converted once), the rest as head_scores does.
template <int HS>
void head_scores2(const DecodeRow& r0, const DecodeRow& r1, std::int64_t ho, int qo, float scale, float* s0, float* s1) {
  const int c = common_prefix(r0, r1);
  if (c == 0) {
    head_scores<HS>(r0.q + qo, r0.k + ho, r0.klo + ho, r0.split, r0.n, scale, s0);
    head_scores<HS>(r1.q + qo, r1.k + ho, r1.klo + ho, r1.split, r1.n, scale, s1);
    return;
  }
  alignas(64) float q0[HS], q1[HS];
  for (int i = 0; i < HS; i++) q0[i] = r16(r0.q[qo + i]), q1[i] = r16(r1.q[qo + i]);
  const int m0 = std::min(r0.split, r0.n), m1 = std::min(r1.split, r1.n);
  scores2<HS>(s0, s1, q0, q1, r0.klo + ho, c, scale);
  scores<HS>(s0, q0, r0.klo + ho, c, m0, scale);
  scores<HS>(s0, q0, r0.k + ho, m0, r0.n, scale);
  scores<HS>(s1, q1, r1.klo + ho, c, m1, scale);
  scores<HS>(s1, q1, r1.k + ho, m1, r1.n, scale);
}

// The scalar loop's online softmax, split into passes with its exact operations: given the running max
// before each position in ms_h (see decode_heads), the exp arguments (Mold - M when a position raises the
// max, else s - M) and their exps 16 at a time: ms_h becomes the rescale factor per position (1 = none),
// vs_h the value weight.
inline void head_exps(const float* s, float* ms_h, float* vs_h, int n) {
  int t = 0;
  const __m512 one = _mm512_set1_ps(1.0f);
  for (; t + 16 <= n; t += 16) {
    const __m512 st = _mm512_loadu_ps(s + t);
    const __m512 mp = _mm512_loadu_ps(ms_h + t);
    const __mmask16 up = _mm512_cmp_ps_mask(st, mp, _CMP_GT_OQ);
    const __m512 e = expf16(_mm512_mask_blend_ps(up, _mm512_sub_ps(st, mp), _mm512_sub_ps(mp, st)));
    _mm512_storeu_ps(ms_h + t, _mm512_mask_blend_ps(up, one, e));
    _mm512_storeu_ps(vs_h + t, _mm512_mask_blend_ps(up, e, one));
  }
  for (; t < n; t++) {
    const float mp = ms_h[t];
    const bool up = s[t] > mp;
    const float e = std::exp(up ? mp - s[t] : s[t] - mp);
    ms_h[t] = up ? e : 1.0f;
    vs_h[t] = up ? 1.0f : e;
  }
}

// One position of one head's f16 value accumulator (NV vectors, floats that are exact f16 values):
// scale_f16 then mad_f16 of decode_head, rounding through f16 after each. ms != 1 only where the scalar
// loop took its `s > M` branch; where that branch gave ms = 1 (or ms = 0 at t = 0, on a zero
// accumulator) its rescale left the accumulator unchanged.
template <int NV>
inline void acc_step(__m512* acc, const std::uint16_t* vt, float ms, float vs) {
  if (ms != 1.0f) {
    const __m512 mv = _mm512_set1_ps(ms);
#pragma GCC unroll 16
    for (int j = 0; j < NV; j++) acc[j] = r16v(_mm512_mul_ps(acc[j], mv));
  }
  const __m512 wv = _mm512_set1_ps(vs);
#pragma GCC unroll 16
  for (int j = 0; j < NV; j++) {
    const __m512 x = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(vt + 16 * j)));
    acc[j] = r16v(_mm512_fmadd_ps(x, wv, acc[j]));
  }
}

// decode_head for H heads of P rows at once (HS = head size, a multiple of 16), bitwise the same per
// (row, head): the scores of all positions first (independent dot products), then the online-softmax
// scalars (they depend on the scores only), then the f16 value accumulators, kept in registers as
// floats that are always exactly f16 values (every step rounds through f16 as scale_f16 / mad_f16 do).
// The serial chains (running max, softmax sum, accumulators: an f16 round trip after every position)
// of the P*H (row, head) pairs run side by side, which hides their latency: it bounds a single chain.
template <int HS, int H, int P>
void decode_heads(const DecodeRow* rw, std::int64_t hstride, float scale) {
  constexpr int NV = HS / 16;
  float *sc[P], *msb[P], *vsb[P];  // per row: (H, n) scores, rescale factor (1 = none), value weight
  for (int p = 0; p < P; p++) {
    const DecodeRow& r = rw[p];
    sc[p] = r.buf;
    msb[p] = r.buf + static_cast<std::ptrdiff_t>(H) * r.n;
    vsb[p] = msb[p] + static_cast<std::ptrdiff_t>(H) * r.n;
    if (P == 1)
      for (int h = 0; h < H; h++)
        head_scores<HS>(r.q + h * HS, r.k + h * hstride, r.klo + h * hstride, r.split, r.n, scale,
                        sc[p] + static_cast<std::ptrdiff_t>(h) * r.n);
  }
  if (P == 2)
    for (int h = 0; h < H; h++)
      head_scores2<HS>(rw[0], rw[P - 1], h * hstride, h * HS, scale, sc[0] + static_cast<std::ptrdiff_t>(h) * rw[0].n,
                       sc[P - 1] + static_cast<std::ptrdiff_t>(h) * rw[P - 1].n);
  // The scalar loop's running max (msb holds the max before each position for now), then the exps.
  float M[P][H], S[P][H];
  for (int p = 0; p < P; p++)
    for (int h = 0; h < H; h++) M[p][h] = -INFINITY;
  lockstep<P, H>(rw, [&](int p, int h, int t) {
    const std::ptrdiff_t i = static_cast<std::ptrdiff_t>(h) * rw[p].n + t;
    const float st = sc[p][i];
    msb[p][i] = M[p][h];
    M[p][h] = st > M[p][h] ? st : M[p][h];
  });
  for (int p = 0; p < P; p++)
    for (int h = 0; h < H; h++) {
      const std::ptrdiff_t off = static_cast<std::ptrdiff_t>(h) * rw[p].n;
      head_exps(sc[p] + off, msb[p] + off, vsb[p] + off, rw[p].n);
      S[p][h] = 0.0f;
    }
  __m512 acc[P][H][NV];
  for (int p = 0; p < P; p++)
    for (int h = 0; h < H; h++)
      for (int j = 0; j < NV; j++) acc[p][h][j] = _mm512_setzero_ps();
  // The value accumulators and, in the same pass, the softmax sum's chain of fused multiply-adds (it
  // reads the same two weights).
  lockstep<P, H>(rw, [&](int p, int h, int t) {
    const DecodeRow& r = rw[p];
    const std::uint16_t* vt = (t < r.split ? r.vlo : r.v) + h * hstride + static_cast<std::int64_t>(t) * HS;
    for (int l = 0; l < HS * 2; l += 64) _mm_prefetch(reinterpret_cast<const char*>(vt + 8 * HS) + l, _MM_HINT_NTA);
    const std::ptrdiff_t i = static_cast<std::ptrdiff_t>(h) * r.n + t;
    const float ms = msb[p][i], vs = vsb[p][i];
    S[p][h] = std::fma(S[p][h], ms, vs);
    acc_step<NV>(acc[p][h], vt, ms, vs);
  });
  for (int p = 0; p < P; p++)
    for (int h = 0; h < H; h++) {
      const float inv = S[p][h] == 0.0f ? 0.0f : 1.0f / S[p][h];
      const __m512 iv = _mm512_set1_ps(inv);
      for (int j = 0; j < NV; j++) _mm512_storeu_ps(rw[p].o + h * HS + 16 * j, _mm512_mul_ps(acc[p][h][j], iv));
    }
}

// decode_heads for each supported head size (its accumulators in registers): H heads of P rows.
template <int H, int P>
DecodeFn decode_fn(int hs) {
  if (hs == 16) return decode_heads<16, H, P>;
  if (hs == 32) return decode_heads<32, H, P>;
  if (hs == 64) return decode_heads<64, H, P>;
  if (hs == 128 && H * P <= 2) return decode_heads<128, H, P>;  // else the accumulators exceed the registers
  return nullptr;
}

#elif defined(SK_DECODE_AVX2)
// The AVX-512 decode_heads with 8-lane vectors: the same operations on every lane, a 16-lane
// accumulator as two 8-lane halves, its horizontal sum in reduce_add16's pairing.
inline __m256 r16v(__m256 x) { return _mm256_cvtph_ps(_mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)); }

// reduce_add16 of 8 positions at once, given each position's lanes j + j+8 (b[p], 8 lanes): lane p of the
// result is position p's sum, bitwise: each round performs reduce_add16's additions (j + j+4, j + j+2,
// then the last two) for all 8 positions through shuffles.
inline __m256 reduce_add8x8(const __m256* b) {
  __m256 c[4], d[2];
  for (int p = 0; p < 4; p++)  // lanes j + j+4: the low half of c[p] is position p, the high half p+4
    c[p] = _mm256_add_ps(_mm256_permute2f128_ps(b[p], b[p + 4], 0x20), _mm256_permute2f128_ps(b[p], b[p + 4], 0x31));
  for (int p = 0; p < 2; p++)  // lanes j + j+2: the halves of d[p] hold (p, p, p+2, p+2) and (p+4, p+4, p+6, p+6)
    d[p] = _mm256_add_ps(_mm256_shuffle_ps(c[p], c[p + 2], _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm256_shuffle_ps(c[p], c[p + 2], _MM_SHUFFLE(3, 2, 3, 2)));
  // The last pair: the halves hold positions (0, 2, 1, 3) and (4, 6, 5, 7); put them in order.
  const __m256 e = _mm256_add_ps(_mm256_shuffle_ps(d[0], d[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                 _mm256_shuffle_ps(d[0], d[1], _MM_SHUFFLE(3, 1, 3, 1)));
  return _mm256_permute_ps(e, _MM_SHUFFLE(3, 1, 2, 0));
}

// s[t] = dot_f16(q, k_t) * scale for t in [t0, t1), bitwise: 8 positions per iteration, each with
// dot_f16's two fma chains (lanes 0-7 and 8-15 over the head's channels, from zero).
template <int HS>
inline void scores(float* s, const float* q, const std::uint16_t* k, int t0, int t1, float scale) {
  constexpr int NV = HS / 16;
  const __m256 sv = _mm256_set1_ps(scale);
  int t = t0;
  for (; t + 8 <= t1; t += 8) {
    const std::uint16_t* kt = k + static_cast<std::int64_t>(t) * HS;
    __m256 b[8];
#pragma GCC unroll 8
    for (int p = 0; p < 8; p++) {
      // The cache streams from L3/memory: ask for the block after next (HS * 2 bytes per position).
      for (int l = 0; l < HS * 2; l += 64) _mm_prefetch(reinterpret_cast<const char*>(kt + (p + 16) * HS) + l, _MM_HINT_T0);
      __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
#pragma GCC unroll 8
      for (int j = 0; j < NV; j++) {
        const __m128i* kp = reinterpret_cast<const __m128i*>(kt + p * HS + 16 * j);
        lo = _mm256_fmadd_ps(_mm256_load_ps(q + 16 * j), _mm256_cvtph_ps(_mm_loadu_si128(kp)), lo);
        hi = _mm256_fmadd_ps(_mm256_load_ps(q + 16 * j + 8), _mm256_cvtph_ps(_mm_loadu_si128(kp + 1)), hi);
      }
      b[p] = _mm256_add_ps(lo, hi);
    }
    _mm256_storeu_ps(s + t, _mm256_mul_ps(reduce_add8x8(b), sv));
  }
  for (; t < t1; t++) s[t] = dot_f16(q, k + static_cast<std::int64_t>(t) * HS, HS) * scale;
}

// One head's scores for n positions (s): positions [0, split) from kl (a shared prefix in another slot),
// the rest from kh. q: the head's query (not yet f16-rounded).
template <int HS>
void head_scores(const float* q, const std::uint16_t* kh, const std::uint16_t* kl, int split, int n, float scale,
                 float* s) {
  alignas(64) float qh[HS];
  for (int i = 0; i < HS; i++) qh[i] = r16(q[i]);
  const int m = std::min(split, n);
  scores<HS>(s, qh, kl, 0, m, scale);
  scores<HS>(s, qh, kh, m, n, scale);
}

// scores for two queries over the same keys (two rows reading one shared prompt prefix): each position's
// keys converted once for both, each query's products and sums exactly scores' (bitwise the same).
template <int HS>
inline void scores2(float* s0, float* s1, const float* q0, const float* q1, const std::uint16_t* k, int t1, float scale) {
  constexpr int NV = HS / 16;
  const __m256 sv = _mm256_set1_ps(scale);
  int t = 0;
  for (; t + 8 <= t1; t += 8) {
    const std::uint16_t* kt = k + static_cast<std::int64_t>(t) * HS;
    __m256 b0[8], b1[8];
#pragma GCC unroll 8
    for (int p = 0; p < 8; p++) {
      __m256 lo0 = _mm256_setzero_ps(), hi0 = _mm256_setzero_ps(), lo1 = _mm256_setzero_ps(), hi1 = _mm256_setzero_ps();
#pragma GCC unroll 8
      for (int j = 0; j < NV; j++) {
        const __m128i* kp = reinterpret_cast<const __m128i*>(kt + p * HS + 16 * j);
        const __m256 ka = _mm256_cvtph_ps(_mm_loadu_si128(kp)), kb = _mm256_cvtph_ps(_mm_loadu_si128(kp + 1));
        lo0 = _mm256_fmadd_ps(_mm256_load_ps(q0 + 16 * j), ka, lo0);
        hi0 = _mm256_fmadd_ps(_mm256_load_ps(q0 + 16 * j + 8), kb, hi0);
        lo1 = _mm256_fmadd_ps(_mm256_load_ps(q1 + 16 * j), ka, lo1);
        hi1 = _mm256_fmadd_ps(_mm256_load_ps(q1 + 16 * j + 8), kb, hi1);
      }
      b0[p] = _mm256_add_ps(lo0, hi0);
      b1[p] = _mm256_add_ps(lo1, hi1);
    }
    _mm256_storeu_ps(s0 + t, _mm256_mul_ps(reduce_add8x8(b0), sv));
    _mm256_storeu_ps(s1 + t, _mm256_mul_ps(reduce_add8x8(b1), sv));
  }
  for (; t < t1; t++) {
    s0[t] = dot_f16(q0, k + static_cast<std::int64_t>(t) * HS, HS) * scale;
    s1[t] = dot_f16(q1, k + static_cast<std::int64_t>(t) * HS, HS) * scale;
  }
}

// head_scores for two rows (r0, r1) of one head (offset ho in their caches): when both read a prefix
// from the same slot, their common prefix positions through scores2 (its keys are read and converted
// once), the rest as head_scores does.
template <int HS>
void head_scores2(const DecodeRow& r0, const DecodeRow& r1, std::int64_t ho, int qo, float scale, float* s0, float* s1) {
  if (r0.klo != r1.klo || r0.split == 0) {
    head_scores<HS>(r0.q + qo, r0.k + ho, r0.klo + ho, r0.split, r0.n, scale, s0);
    head_scores<HS>(r1.q + qo, r1.k + ho, r1.klo + ho, r1.split, r1.n, scale, s1);
    return;
  }
  alignas(64) float q0[HS], q1[HS];
  for (int i = 0; i < HS; i++) q0[i] = r16(r0.q[qo + i]), q1[i] = r16(r1.q[qo + i]);
  const int m0 = std::min(r0.split, r0.n), m1 = std::min(r1.split, r1.n), c = std::min(m0, m1);
  scores2<HS>(s0, s1, q0, q1, r0.klo + ho, c, scale);
  scores<HS>(s0, q0, r0.klo + ho, c, m0, scale);
  scores<HS>(s0, q0, r0.k + ho, m0, r0.n, scale);
  scores<HS>(s1, q1, r1.klo + ho, c, m1, scale);
  scores<HS>(s1, q1, r1.k + ho, m1, r1.n, scale);
}

// The AVX-512 head_exps with 8 lanes (see there).
inline void head_exps(const float* s, float* ms_h, float* vs_h, int n) {
  int t = 0;
  const __m256 one = _mm256_set1_ps(1.0f);
  for (; t + 8 <= n; t += 8) {
    const __m256 st = _mm256_loadu_ps(s + t);
    const __m256 mp = _mm256_loadu_ps(ms_h + t);
    const __m256 up = _mm256_cmp_ps(st, mp, _CMP_GT_OQ);
    const __m256 e = expf8(_mm256_blendv_ps(_mm256_sub_ps(st, mp), _mm256_sub_ps(mp, st), up));
    _mm256_storeu_ps(ms_h + t, _mm256_blendv_ps(one, e, up));
    _mm256_storeu_ps(vs_h + t, _mm256_blendv_ps(e, one, up));
  }
  for (; t < n; t++) {
    const float mp = ms_h[t];
    const bool up = s[t] > mp;
    const float e = std::exp(up ? mp - s[t] : s[t] - mp);
    ms_h[t] = up ? e : 1.0f;
    vs_h[t] = up ? 1.0f : e;
  }
}

// The AVX-512 acc_step with NV 8-lane vectors (see there).
template <int NV>
inline void acc_step(__m256* acc, const std::uint16_t* vt, float ms, float vs) {
  if (ms != 1.0f) {
    const __m256 mv = _mm256_set1_ps(ms);
#pragma GCC unroll 16
    for (int j = 0; j < NV; j++) acc[j] = r16v(_mm256_mul_ps(acc[j], mv));
  }
  const __m256 wv = _mm256_set1_ps(vs);
#pragma GCC unroll 16
  for (int j = 0; j < NV; j++) {
    const __m256 x = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(vt + 8 * j)));
    acc[j] = r16v(_mm256_fmadd_ps(x, wv, acc[j]));
  }
}

// The AVX-512 decode_heads (see there) with 8-lane accumulators.
template <int HS, int H, int P>
void decode_heads(const DecodeRow* rw, std::int64_t hstride, float scale) {
  constexpr int NV = HS / 8;
  float *sc[P], *msb[P], *vsb[P];  // per row: (H, n) scores, rescale factor (1 = none), value weight
  for (int p = 0; p < P; p++) {
    const DecodeRow& r = rw[p];
    sc[p] = r.buf;
    msb[p] = r.buf + static_cast<std::ptrdiff_t>(H) * r.n;
    vsb[p] = msb[p] + static_cast<std::ptrdiff_t>(H) * r.n;
    if (P == 1)
      for (int h = 0; h < H; h++)
        head_scores<HS>(r.q + h * HS, r.k + h * hstride, r.klo + h * hstride, r.split, r.n, scale,
                        sc[p] + static_cast<std::ptrdiff_t>(h) * r.n);
  }
  if (P == 2)
    for (int h = 0; h < H; h++)
      head_scores2<HS>(rw[0], rw[P - 1], h * hstride, h * HS, scale, sc[0] + static_cast<std::ptrdiff_t>(h) * rw[0].n,
                       sc[P - 1] + static_cast<std::ptrdiff_t>(h) * rw[P - 1].n);
  float M[P][H], S[P][H];
  for (int p = 0; p < P; p++)
    for (int h = 0; h < H; h++) M[p][h] = -INFINITY;
  lockstep<P, H>(rw, [&](int p, int h, int t) {
    const std::ptrdiff_t i = static_cast<std::ptrdiff_t>(h) * rw[p].n + t;
    const float st = sc[p][i];
    msb[p][i] = M[p][h];
    M[p][h] = st > M[p][h] ? st : M[p][h];
  });
  for (int p = 0; p < P; p++)
    for (int h = 0; h < H; h++) {
      const std::ptrdiff_t off = static_cast<std::ptrdiff_t>(h) * rw[p].n;
      head_exps(sc[p] + off, msb[p] + off, vsb[p] + off, rw[p].n);
      S[p][h] = 0.0f;
    }
  __m256 acc[P][H][NV];
  for (int p = 0; p < P; p++)
    for (int h = 0; h < H; h++)
      for (int j = 0; j < NV; j++) acc[p][h][j] = _mm256_setzero_ps();
  // The value accumulators and, in the same pass (the AVX-512 path's separate one, in the same order:
  // it reads the same two weights), the softmax sum's chain of fused multiply-adds.
  lockstep<P, H>(rw, [&](int p, int h, int t) {
    const DecodeRow& r = rw[p];
    const std::uint16_t* vt = (t < r.split ? r.vlo : r.v) + h * hstride + static_cast<std::int64_t>(t) * HS;
    for (int l = 0; l < HS * 2; l += 64) _mm_prefetch(reinterpret_cast<const char*>(vt + 8 * HS) + l, _MM_HINT_T0);
    const std::ptrdiff_t i = static_cast<std::ptrdiff_t>(h) * r.n + t;
    const float ms = msb[p][i], vs = vsb[p][i];
    S[p][h] = std::fma(S[p][h], ms, vs);
    acc_step<NV>(acc[p][h], vt, ms, vs);
  });
  for (int p = 0; p < P; p++)
    for (int h = 0; h < H; h++) {
      const float inv = S[p][h] == 0.0f ? 0.0f : 1.0f / S[p][h];
      const __m256 iv = _mm256_set1_ps(inv);
      for (int j = 0; j < NV; j++) _mm256_storeu_ps(rw[p].o + h * HS + 8 * j, _mm256_mul_ps(acc[p][h][j], iv));
    }
}

// decode_heads for each supported head size with at most kAccRegs accumulator vectors (of the 16
// registers). On Zen 3 with head size 64 (8 vectors a head), 16 (two (row, head) chains) measured
// ~10% faster than 8 (one chain: 28 vs 31 ns per cached position and head in the engine) and 32 (four
// chains, spilled) no faster than 16; the accumulator's f16 round trips are throughput-bound there.
constexpr int kAccRegs = 16;
template <int H, int P>
DecodeFn decode_fn(int hs) {
  if (hs == 16 && 2 * H * P <= kAccRegs) return decode_heads<16, H, P>;
  if (hs == 32 && 4 * H * P <= kAccRegs) return decode_heads<32, H, P>;
  if (hs == 64 && 8 * H * P <= kAccRegs) return decode_heads<64, H, P>;
  if (hs == 128 && 16 * H * P <= kAccRegs) return decode_heads<128, H, P>;
  return nullptr;
}
#endif

// dst[j] = f16_to_f32(src[j]) for j in [j0, j1), 16 at a time where possible (the same conversion).
inline void halves_to_floats(float* dst, const std::uint16_t* src, std::int64_t j0, std::int64_t j1) {
  std::int64_t j = j0;
#if defined(__AVX512F__)
  for (; j + 16 <= j1; j += 16)
    _mm512_storeu_ps(dst + j, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + j))));
#elif defined(SK_DECODE_AVX2)
  for (; j + 8 <= j1; j += 8)
    _mm256_storeu_ps(dst + j, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + j))));
#endif
  for (; j < j1; j++) dst[j] = f16_to_f32(src[j]);
}

// Row i of the nb rows of sc (stride pe) becomes softmax(scale * its first m0 + i scores), each
// probability rounded to f16, zeros after: the per-row loop below (scale, max, subtract, expf, sum in
// position order, normalise), vectorised where that changes no bit (elementwise steps; the max is exact
// in any order, and only a zero's sign could differ, which no later step sees: x - (+0) and x - (-0)
// agree for x != 0 and expf(+-0) = 1) and with four rows' sums, each a serial chain, side by side.
void causal_softmax_rows(float* sc, int pe, int nb, int m0, float scale) {
  auto prepare = [&](float* row, int m) {
    float maxv = -INFINITY;
    int t = 0;
#if defined(__AVX512F__)
    const __m512 sv = _mm512_set1_ps(scale);
    __m512 mv = _mm512_set1_ps(-INFINITY);
    for (; t + 16 <= m; t += 16) {
      const __m512 x = _mm512_mul_ps(_mm512_loadu_ps(row + t), sv);
      _mm512_storeu_ps(row + t, x);
      mv = _mm512_max_ps(mv, x);
    }
    maxv = _mm512_reduce_max_ps(mv);
#elif defined(SK_DECODE_AVX2)
    const __m256 sv = _mm256_set1_ps(scale);
    __m256 mv = _mm256_set1_ps(-INFINITY);
    for (; t + 8 <= m; t += 8) {
      const __m256 x = _mm256_mul_ps(_mm256_loadu_ps(row + t), sv);
      _mm256_storeu_ps(row + t, x);
      mv = _mm256_max_ps(mv, x);
    }
    const __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mv), _mm256_extractf128_ps(mv, 1));
    const __m128 m2 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    maxv = _mm_cvtss_f32(_mm_max_ss(m2, _mm_movehdup_ps(m2)));
#endif
    for (; t < m; t++) {
      row[t] *= scale;
      maxv = std::max(maxv, row[t]);
    }
    for (t = 0; t < m; t++) row[t] -= maxv;
    expf_array(row, row, m);
  };
  auto finish = [&](float* row, int m, float sum) {
    const float inv = 1.0f / sum;
    int t = 0;
#if defined(__AVX512F__)
    const __m512 iv = _mm512_set1_ps(inv);
    for (; t + 16 <= m; t += 16) _mm512_storeu_ps(row + t, r16v(_mm512_mul_ps(_mm512_loadu_ps(row + t), iv)));
#elif defined(SK_DECODE_AVX2)
    const __m256 iv = _mm256_set1_ps(inv);
    for (; t + 8 <= m; t += 8) _mm256_storeu_ps(row + t, r16v(_mm256_mul_ps(_mm256_loadu_ps(row + t), iv)));
#endif
    for (; t < m; t++) row[t] = r16(row[t] * inv);
    std::fill(row + m, row + pe, 0.f);
  };
  constexpr int G = 4;
  for (int i0 = 0; i0 < nb; i0 += G) {
    const int g = std::min(G, nb - i0);
    float* rows[G];
    float sum[G] = {};
    for (int c = 0; c < g; c++) {
      rows[c] = sc + static_cast<std::ptrdiff_t>(i0 + c) * pe;
      prepare(rows[c], m0 + i0 + c);
    }
    const int common = m0 + i0;  // the shortest of the group's rows
    if (g == G) {
      for (int t = 0; t < common; t++)
#pragma GCC unroll 4
        for (int c = 0; c < G; c++) sum[c] += rows[c][t];
    } else {
      for (int c = 0; c < g; c++)
        for (int t = 0; t < common; t++) sum[c] += rows[c][t];
    }
    for (int c = 0; c < g; c++) {
      for (int t = common; t < m0 + i0 + c; t++) sum[c] += rows[c][t];
      finish(rows[c], m0 + i0 + c, sum[c]);
    }
  }
}

// Test hook: causal_softmax_rows against its per-row loop in scalar code (std::exp, one row at a time)
// on nb random rows of random scores (a range that makes some probabilities round to f16 subnormals or
// zero) from m0 cached positions on. Returns the number of floats that differ bitwise.
std::int64_t causal_softmax_mismatches(std::uint32_t seed, int nb, int m0) {
  const int pe = m0 + nb;
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 6.0f);
  std::vector<float> sc(static_cast<std::size_t>(nb) * pe), ref;
  for (auto& x : sc) x = nd(rng);
  ref = sc;
  const float scale = 0.125f;
  causal_softmax_rows(sc.data(), pe, nb, m0 + 1, scale);
  std::int64_t bad = 0;
  for (int i = 0; i < nb; i++) {
    float* row = ref.data() + static_cast<std::ptrdiff_t>(i) * pe;
    const int m = m0 + 1 + i;
    float maxv = -INFINITY, sum = 0.0f;
    for (int t = 0; t < m; t++) maxv = std::max(maxv, row[t] *= scale);
    for (int t = 0; t < m; t++) sum += row[t] = std::exp(row[t] - maxv);
    for (int t = 0; t < pe; t++) row[t] = t < m ? r16(row[t] * (1.0f / sum)) : 0.0f;
    for (int t = 0; t < pe; t++) bad += std::memcmp(&row[t], &sc[static_cast<std::size_t>(i) * pe + t], 4) != 0;
  }
  return bad;
}

// Prompt rows [r0, r1) of one sequence (consecutive positions p0..p1-1), one head, through two GEMMs:
// S = f16(q) · K^T over positions 0..p1-1, causal softmax per row, O = f16(P) · V. Each output element
// is a dot product in the GEMM's fixed k order, and masked positions contribute exact zeros, so a row's
// result does not depend on how its prompt was chunked or what else is in the batch.
// Positions [0, split) of the cache are read from klo/vlo (a shared prefix in another slot), the rest from kh/vh.
void prefill_head(float* out, const float* qkv, const std::uint16_t* kh, const std::uint16_t* vh,
                  const std::uint16_t* klo, const std::uint16_t* vlo, int split, int r0, int n, int p0, int C, int h,
                  int hs, float scale, std::vector<float>& buf) {
  const int p1 = p0 + n;
  buf.resize(static_cast<std::size_t>(n) * hs + 2 * static_cast<std::size_t>(p1) * hs +
             static_cast<std::size_t>(n) * p1);
  float* q = buf.data();
  float* kf = q + static_cast<std::ptrdiff_t>(n) * hs;
  float* vf = kf + static_cast<std::ptrdiff_t>(p1) * hs;
  float* sc = vf + static_cast<std::ptrdiff_t>(p1) * hs;
  for (int i = 0; i < n; i++)
    for (int d = 0; d < hs; d++) q[i * hs + d] = r16(qkv[static_cast<std::int64_t>(r0 + i) * 3 * C + h * hs + d]);
  const std::int64_t lo = static_cast<std::int64_t>(std::min(split, p1)) * hs;
  halves_to_floats(kf, klo, 0, lo);
  halves_to_floats(vf, vlo, 0, lo);
  halves_to_floats(kf, kh, lo, static_cast<std::int64_t>(p1) * hs);
  halves_to_floats(vf, vh, lo, static_cast<std::int64_t>(p1) * hs);
  // Row i is position p0 + i and attends to positions [0, p0 + i] only: the GEMMs' causal Tri modes skip
  // the masked upper triangle tile by tile (14 rows) and pack K and V once (32-row blocks, each a pair of
  // products of its own, repacked them for every block). Bitwise the same as one product over all p1
  // positions: the score elements are independent dot products, and the positions dropped from P·V are
  // exact zeros (the GEMM accumulates each element in k order within the same 256-deep k blocks).
  // S (n, p1) = Q (n, hs) · Kf^T: B(k, t) = kf[t*hs + k].
  sgemm_serial(GemmArgs{n, p1, hs, q, hs, 1, kf, 1, hs, sc, p1, false, nullptr, Tri::cols, p0});
  causal_softmax_rows(sc, p1, n, p0 + 1, scale);
  // O (n, hs) = P (n, p1) · Vf (p1, hs), written into out rows r0.. at column h*hs.
  sgemm_serial(GemmArgs{n, hs, p1, sc, p1, 1, vf, hs, 1, out + static_cast<std::int64_t>(r0) * C + h * hs, C, false,
                        nullptr, Tri::lower, p0});
}

#if defined(__AVX512F__) || defined(SK_DECODE_AVX2)
// The decode_heads variant for H heads of P rows (1 or 2 each) and head size hs, or null.
DecodeFn decode_fn_for(int P, int H, int hs) {
  if (P == 2) return H == 2 ? decode_fn<2, 2>(hs) : decode_fn<1, 2>(hs);
  return H == 2 ? decode_fn<2, 1>(hs) : decode_fn<1, 1>(hs);
}
#endif

// A decode row: its cached positions n (positions [0, split) read from slot lo_slot: a shared prefix),
// its slot and its row index r in qkv/out.
struct RowJob {
  int slot, lo_slot, split, n, r;
};

// All heads of P (1 or 2) decode rows into their out rows. Each row's arithmetic is the same whether it
// runs alone or paired (decode_heads keeps the pairs' chains apart), so pairing never changes a bit.
void decode_rows(float* out, const float* qkv, const std::uint16_t* kc, const std::uint16_t* vc, const RowJob* jobs,
                 int P, int C, int NH, int T, float scale, std::vector<float>& buf) {
  const int hs = C / NH;
  const std::int64_t hstride = static_cast<std::int64_t>(T) * hs;
#if defined(__AVX512F__) || defined(SK_DECODE_AVX2)
  // Two heads at a time (one when NH is odd) when the head size has a register-resident variant.
  int H = NH % 2 == 0 ? 2 : 1;
  DecodeFn fn = decode_fn_for(P, H, hs);
#if defined(SK_DECODE_AVX2)
  if (fn == nullptr && H == 2) fn = decode_fn_for(P, H = 1, hs);  // half the registers of AVX-512: one head
#endif
  if (fn != nullptr) {
    std::size_t need = 0;
    for (int p = 0; p < P; p++) need += static_cast<std::size_t>(3 * H) * jobs[p].n;
    buf.resize(need);
    for (int h = 0; h < NH; h += H) {
      DecodeRow rw[2];
      float* scratch = buf.data();
      for (int p = 0; p < P; p++) {
        const RowJob& j = jobs[p];
        const std::int64_t base = static_cast<std::int64_t>(j.slot) * NH * hstride + h * hstride;
        const std::int64_t lo = static_cast<std::int64_t>(j.lo_slot) * NH * hstride + h * hstride;
        rw[p] = DecodeRow{out + static_cast<std::int64_t>(j.r) * C + h * hs,
                          qkv + static_cast<std::int64_t>(j.r) * 3 * C + h * hs,
                          kc + base,
                          vc + base,
                          kc + lo,
                          vc + lo,
                          j.split,
                          j.n,
                          scratch};
        scratch += static_cast<std::ptrdiff_t>(3 * H) * j.n;
      }
      fn(rw, hstride, scale);
    }
    return;
  }
#endif
  if (P > 1) {
    for (int p = 0; p < P; p++) decode_rows(out, qkv, kc, vc, jobs + p, 1, C, NH, T, scale, buf);
    return;
  }
  // One head at a time over a contiguous copy of the head's n cached positions.
  const RowJob& j = jobs[0];
  const int n = j.n;
  const std::int64_t base = static_cast<std::int64_t>(j.slot) * NH * hstride;
  const std::int64_t lo = static_cast<std::int64_t>(j.lo_slot) * NH * hstride;
  const float* q = qkv + static_cast<std::int64_t>(j.r) * 3 * C;
  float* o = out + static_cast<std::int64_t>(j.r) * C;
  buf.resize(static_cast<std::size_t>(hs));
  float* qh = buf.data();
  std::vector<std::uint16_t> acc(static_cast<std::size_t>(hs));
  std::vector<std::uint16_t> kh(static_cast<std::size_t>(n) * hs), vh(static_cast<std::size_t>(n) * hs);
  const std::int64_t m = static_cast<std::int64_t>(std::min(j.split, n)) * hs;
  for (int h = 0; h < NH; h++) {
    const std::int64_t ho = h * hstride;
    std::copy(kc + lo + ho, kc + lo + ho + m, kh.begin());
    std::copy(kc + base + ho + m, kc + base + ho + static_cast<std::int64_t>(n) * hs, kh.begin() + m);
    std::copy(vc + lo + ho, vc + lo + ho + m, vh.begin());
    std::copy(vc + base + ho + m, vc + base + ho + static_cast<std::int64_t>(n) * hs, vh.begin() + m);
    for (int i = 0; i < hs; i++) qh[i] = r16(q[h * hs + i]);
    decode_head(o + h * hs, qh, kh.data(), vh.data(), n, hs, scale, acc.data());
  }
}

// out (R,C): causal attention of each row's query over its sequence's cached keys/values 0..pos, computed
// with the roundings of llama.cpp's default CPU path (f16 KV cache, no flash attention): K and V are
// stored as f16, q is converted to f16 for the K·q dot, the softmax weights are converted to f16 for the
// V product. First writes every row's k,v (from qkv (R,3C)) into the caches kc/vc (S,NH,T,C/NH) at [slot, head, pos],
// so rows of one prefill chunk see each other. Scale 1/sqrt(C/NH), softmax in float with expf.
void kv_attention_forward(float* out, const float* qkv, std::uint16_t* kc, std::uint16_t* vc,
                          const std::int32_t* slots, const std::int32_t* pos, int R, int C, int NH, int T,
                          int threads, int first_prefill, const std::int32_t* alias_slot,
                          const std::int32_t* alias_len, double* prefill_seconds, const std::uint8_t* want) {
  const double t0 = prefill_seconds != nullptr ? thread_cpu_seconds() : 0.0;
  const int hs = C / NH;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
  // Cache layout (slot, head, position, head channel): one head's keys are contiguous over positions.
  for (int r = 0; r < R; r++) {
    const float* src = qkv + static_cast<std::int64_t>(r) * 3 * C;
    for (int h = 0; h < NH; h++) {
      const std::int64_t at = ((static_cast<std::int64_t>(slots[r]) * NH + h) * T + pos[r]) * hs;
      int i = 0;
#if defined(__AVX512F__)
      // The same round-to-nearest-even conversion as f32_to_f16, 16 lanes at a time.
      constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
      for (; i + 16 <= hs; i += 16) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(kc + at + i),
                            _mm512_cvtps_ph(_mm512_loadu_ps(src + C + h * hs + i), kRound));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(vc + at + i),
                            _mm512_cvtps_ph(_mm512_loadu_ps(src + 2 * C + h * hs + i), kRound));
      }
#elif defined(SK_DECODE_AVX2)
      constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
      for (; i + 8 <= hs; i += 8) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(kc + at + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + C + h * hs + i), kRound));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(vc + at + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + 2 * C + h * hs + i), kRound));
      }
#endif
      for (; i < hs; i++) {
        kc[at + i] = f32_to_f16(src[C + h * hs + i]);
        vc[at + i] = f32_to_f16(src[2 * C + h * hs + i]);
      }
    }
  }
  // Prompt rows (from first_prefill on): runs of one slot at consecutive positions, two GEMMs per head.
  // Unwanted rows end runs (a run of wanted rows gives the same bits as the longer run it is part of:
  // see prefill_head).
  auto wanted = [&](int r) { return want == nullptr || want[r] != 0; };
  struct Group {
    int r0, n, p0;
  };
  std::vector<Group> groups;
  for (int r = first_prefill; r < R;) {
    if (!wanted(r)) {
      r++;
      continue;
    }
    int e = r + 1;
    while (e < R && wanted(e) && slots[e] == slots[r] && pos[e] == pos[e - 1] + 1) e++;
    groups.push_back({r, e - r, pos[r]});
    r = e;
  }
  parallel_for(static_cast<int>(groups.size()) * NH, std::max(1, threads), [&](int task) {
    thread_local std::vector<float> buf;
    const Group& g = groups[task / NH];
    const int h = task % NH;
    const int slot = slots[g.r0];
    const int lo_slot = alias_len != nullptr ? alias_slot[slot] : slot;
    const int split = alias_len != nullptr ? alias_len[slot] : 0;
    const std::int64_t base = (static_cast<std::int64_t>(slot) * NH + h) * T * hs;
    const std::int64_t lo = (static_cast<std::int64_t>(lo_slot) * NH + h) * T * hs;
    prefill_head(out, qkv, kc + base, vc + base, kc + lo, vc + lo, split, g.r0, g.n, g.p0, C, h, hs, scale, buf);
  });
  if (prefill_seconds != nullptr) *prefill_seconds += thread_cpu_seconds() - t0;
  // Decode rows [0, first_prefill): one query each, in pairs of similar length (sorted by cached
  // positions: a pair runs its common positions together). Chunks of pairs with boundaries fixed by the
  // row count alone; each row's arithmetic is independent of its pair and chunk.
  std::vector<RowJob> jobs;
  jobs.reserve(static_cast<std::size_t>(first_prefill));
  for (int r = 0; r < first_prefill; r++) {
    if (!wanted(r)) continue;
    const int slot = slots[r];
    jobs.push_back(RowJob{slot, alias_len != nullptr ? alias_slot[slot] : slot,
                          alias_len != nullptr ? alias_len[slot] : 0, pos[r] + 1, r});
  }
  std::stable_sort(jobs.begin(), jobs.end(), [](const RowJob& a, const RowJob& b) { return a.n < b.n; });
  const int nd = static_cast<int>(jobs.size());
  constexpr int kRowsPerChunk = 4;
  const int chunks = (nd + kRowsPerChunk - 1) / kRowsPerChunk;
  parallel_for(chunks, std::max(1, threads), [&](int c) {
    thread_local std::vector<float> buf;
    const int r1 = std::min(nd, (c + 1) * kRowsPerChunk);
    for (int r = c * kRowsPerChunk; r < r1; r += 2)
      decode_rows(out, qkv, kc, vc, jobs.data() + r, std::min(2, r1 - r), C, NH, T, scale, buf);
  });
}

// Test hook: decode rows through kv_attention_forward (paired rows, registers, 16- or 8-position score
// blocks) against decode_head (one head, one position at a time: dot_f16, scale_f16, mad_f16, the direct
// transcription of llama.cpp's single-token flash attention), and decode_head against its scalar-only
// instance (the vector kernels against scalar code of the same arithmetic), on random caches, R rows of
// random lengths in S = R slots, every other slot reading a prefix of random length from slot 0. Returns
// the number of output floats that differ bitwise in either comparison.
std::int64_t decode_attention_mismatches(std::uint32_t seed, int R, int C, int NH, int T) {
  const int hs = C / NH;
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const std::size_t cache = static_cast<std::size_t>(R) * T * C;
  std::vector<std::uint16_t> kc(cache), vc(cache);
  for (std::size_t i = 0; i < cache; i++) {
    kc[i] = f32_to_f16(nd(rng));
    vc[i] = f32_to_f16(nd(rng));
  }
  std::vector<float> qkv(static_cast<std::size_t>(R) * 3 * C), out(static_cast<std::size_t>(R) * C);
  // Large queries make sharp softmaxes, so the running max moves (the accumulator's rescale path) often.
  for (auto& x : qkv) x = 2.0f * nd(rng);
  std::vector<std::int32_t> slots(R), pos(R), alias_slot(R), alias_len(R);
  for (int r = 0; r < R; r++) {
    slots[r] = r;
    pos[r] = static_cast<std::int32_t>(rng() % static_cast<std::uint32_t>(T));
    alias_slot[r] = r % 2 == 1 ? 0 : r;
    alias_len[r] = r % 2 == 1 ? static_cast<std::int32_t>(rng() % static_cast<std::uint32_t>(pos[r] + 1)) : 0;
  }
  kv_attention_forward(out.data(), qkv.data(), kc.data(), vc.data(), slots.data(), pos.data(), R, C, NH, T, 1, R,
                       alias_slot.data(), alias_len.data());
  const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
  std::int64_t bad = 0;
  std::vector<float> q(hs), o(hs), oref(hs);
  std::vector<std::uint16_t> acc(hs);
  for (int r = 0; r < R; r++) {
    const int n = pos[r] + 1;
    std::vector<std::uint16_t> kh(static_cast<std::size_t>(n) * hs), vh(static_cast<std::size_t>(n) * hs);
    for (int h = 0; h < NH; h++) {
      for (int t = 0; t < n; t++) {
        const int src = t < alias_len[r] ? alias_slot[r] : r;
        const std::size_t at = ((static_cast<std::size_t>(src) * NH + h) * T + t) * hs;
        std::copy(kc.begin() + at, kc.begin() + at + hs, kh.begin() + static_cast<std::ptrdiff_t>(t) * hs);
        std::copy(vc.begin() + at, vc.begin() + at + hs, vh.begin() + static_cast<std::ptrdiff_t>(t) * hs);
      }
      for (int i = 0; i < hs; i++) q[i] = r16(qkv[static_cast<std::size_t>(r) * 3 * C + h * hs + i]);
      decode_head(o.data(), q.data(), kh.data(), vh.data(), n, hs, scale, acc.data());
      decode_head<true>(oref.data(), q.data(), kh.data(), vh.data(), n, hs, scale, acc.data());
      const float* got = out.data() + static_cast<std::size_t>(r) * C + h * hs;
      for (int i = 0; i < hs; i++) bad += (std::memcmp(&got[i], &o[i], 4) != 0) + (std::memcmp(&o[i], &oref[i], 4) != 0);
    }
  }
  return bad;
}

namespace {

[[noreturn]] void fail(const Napi::CallbackInfo& info, const std::string& msg) {
  throw Napi::RangeError::New(info.Env(), "decode kernels: " + msg);
}

std::int64_t int_arg(const Napi::CallbackInfo& info, std::size_t i, const char* name, std::int64_t min) {
  if (!info[i].IsNumber()) fail(info, std::string(name) + " must be a number");
  const double d = info[i].As<Napi::Number>().DoubleValue();
  if (d != std::floor(d) || d < static_cast<double>(min) || d > 2147483647.0)
    fail(info, std::string(name) + " must be an integer >= " + std::to_string(min));
  return static_cast<std::int64_t>(d);
}

template <typename T, napi_typedarray_type KIND>
T* arr(const Napi::CallbackInfo& info, std::size_t i, const char* name, std::int64_t need) {
  const Napi::Value v = info[i];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != KIND)
    throw Napi::TypeError::New(info.Env(), std::string("decode kernels: ") + name + " has the wrong array type");
  auto ta = v.As<Napi::TypedArrayOf<T>>();
  if (static_cast<std::int64_t>(ta.ElementLength()) < need)
    fail(info, std::string(name) + " has " + std::to_string(ta.ElementLength()) + " elements, need " + std::to_string(need));
  return ta.Data();
}

// kvAttentionForward(out, qkv, kc (Uint16Array, f16), vc (Uint16Array, f16), slots, pos, R, C, NH, T, S, threads,
//                    firstPrefill): rows [0, firstPrefill) are decode rows, the rest prompt rows.
Napi::Value KvAttentionForward(const Napi::CallbackInfo& info) {
  const auto R = int_arg(info, 6, "R", 0), C = int_arg(info, 7, "C", 1), NH = int_arg(info, 8, "NH", 1);
  const auto T = int_arg(info, 9, "T", 1), S = int_arg(info, 10, "S", 1), threads = int_arg(info, 11, "threads", 1);
  const auto first_prefill = int_arg(info, 12, "firstPrefill", 0);
  if (first_prefill > R) fail(info, "firstPrefill > R");
  if (C % NH != 0) fail(info, "C is not divisible by NH");
  float* out = arr<float, napi_float32_array>(info, 0, "out", R * C);
  const float* qkv = arr<float, napi_float32_array>(info, 1, "qkv", R * 3 * C);
  std::uint16_t* kc = arr<std::uint16_t, napi_uint16_array>(info, 2, "kc", S * T * C);
  std::uint16_t* vc = arr<std::uint16_t, napi_uint16_array>(info, 3, "vc", S * T * C);
  const std::int32_t* slots = arr<std::int32_t, napi_int32_array>(info, 4, "slots", R);
  const std::int32_t* pos = arr<std::int32_t, napi_int32_array>(info, 5, "pos", R);
  for (std::int64_t r = 0; r < R; r++) {
    if (slots[r] < 0 || slots[r] >= S) fail(info, "slots[" + std::to_string(r) + "] is outside [0, S)");
    if (pos[r] < 0 || pos[r] >= T) fail(info, "pos[" + std::to_string(r) + "] is outside [0, T)");
  }
  kv_attention_forward(out, qkv, kc, vc, slots, pos, static_cast<int>(R), static_cast<int>(C), static_cast<int>(NH),
                       static_cast<int>(T), static_cast<int>(threads), static_cast<int>(first_prefill), nullptr,
                       nullptr, nullptr);
  return info.Env().Undefined();
}


// geluF16Forward(out, inp, N)
Napi::Value GeluF16Forward(const Napi::CallbackInfo& info) {
  const auto N = int_arg(info, 2, "N", 0);
  float* out = arr<float, napi_float32_array>(info, 0, "out", N);
  const float* inp = arr<float, napi_float32_array>(info, 1, "inp", N);
  gelu_f16_forward(out, inp, N);
  return info.Env().Undefined();
}

// decodeAttentionMismatches(seed, R, C, NH, T): see decode_attention_mismatches.
Napi::Value DecodeAttentionMismatches(const Napi::CallbackInfo& info) {
  const auto seed = int_arg(info, 0, "seed", 0), R = int_arg(info, 1, "R", 1), C = int_arg(info, 2, "C", 1);
  const auto NH = int_arg(info, 3, "NH", 1), T = int_arg(info, 4, "T", 1);
  if (C % NH != 0) fail(info, "C is not divisible by NH");
  return Napi::Number::New(info.Env(), static_cast<double>(decode_attention_mismatches(
                                           static_cast<std::uint32_t>(seed), static_cast<int>(R), static_cast<int>(C),
                                           static_cast<int>(NH), static_cast<int>(T))));
}

// decodeSoftmaxMismatches(seed, nb, m0): see causal_softmax_mismatches.
Napi::Value DecodeSoftmaxMismatches(const Napi::CallbackInfo& info) {
  const auto seed = int_arg(info, 0, "seed", 0), nb = int_arg(info, 1, "nb", 1), m0 = int_arg(info, 2, "m0", 0);
  return Napi::Number::New(info.Env(), static_cast<double>(causal_softmax_mismatches(
                                           static_cast<std::uint32_t>(seed), static_cast<int>(nb), static_cast<int>(m0))));
}

// decodeExpfMismatches(fromBits, stride, count): see expf16_mismatches.
Napi::Value DecodeExpfMismatches(const Napi::CallbackInfo& info) {
  const auto from = int_arg(info, 0, "fromBits", 0);  // < 2^31: callers pass the sign separately
  const auto stride = int_arg(info, 1, "stride", 1);
  const auto count = int_arg(info, 2, "count", 0);
  const bool negative = info[3].ToBoolean().Value();
  const std::uint32_t bits = static_cast<std::uint32_t>(from) | (negative ? 0x80000000u : 0u);
  return Napi::Number::New(info.Env(), static_cast<double>(expf16_mismatches(bits, static_cast<std::uint32_t>(stride), count)));
}

}  // namespace

void register_decode_kernels(Napi::Env env, Napi::Object exports) {
  exports.Set("decodeAttentionMismatches",
              Napi::Function::New(env, DecodeAttentionMismatches, "decodeAttentionMismatches"));
  exports.Set("decodeSoftmaxMismatches", Napi::Function::New(env, DecodeSoftmaxMismatches, "decodeSoftmaxMismatches"));
  exports.Set("decodeExpfMismatches", Napi::Function::New(env, DecodeExpfMismatches, "decodeExpfMismatches"));
  exports.Set("kvAttentionForward", Napi::Function::New(env, KvAttentionForward, "kvAttentionForward"));
  exports.Set("geluF16Forward", Napi::Function::New(env, GeluF16Forward, "geluF16Forward"));
  register_decode_engine(env, exports);
}

}  // namespace sk
