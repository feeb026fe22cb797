// See gemm.h. Loop nest (BLIS): jc over NC columns -> pc over KC depth (pack B block) -> ic over MC rows
// (pack A block) -> jr over NR -> ir over MR -> micro-kernel. The KC x NR micro-panel of B stays in L1
// while MR x KC micro-panels of A stream from L2.
#include "gemm.h"

#include "omp_compat.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) && defined(__AVX512F__)
#include <immintrin.h>
#define SK_HAVE_AVX512 1
#endif

namespace sk {
namespace {

constexpr int KC = 256;
constexpr int NC_MAX = 1024;

struct Scratch {
  float* a = nullptr;
  float* b = nullptr;
  std::size_t na = 0, nb = 0;
  ~Scratch() {
    std::free(a);
    std::free(b);
  }
  static float* grow(float*& p, std::size_t& n, std::size_t want) {
    if (want > n) {
      std::free(p);
      p = static_cast<float*>(std::aligned_alloc(64, ((want * sizeof(float) + 63) / 64) * 64));
      n = want;
    }
    return p;
  }
};
thread_local Scratch scratch;

// Packs rows [m0, m0+mc) x depth [p0, p0+kc) of A into micro-panels of MR rows, k-major, zero padded.
template <int MR>
void pack_a(const GemmArgs& g, int m0, int mc, int p0, int kc, float* dst) {
  for (int ir = 0; ir < mc; ir += MR) {
    const int mr = std::min(MR, mc - ir);
    float* d = dst + static_cast<std::ptrdiff_t>(ir) * kc;
    if (g.sam == 1) {
      // transposed A (e.g. dout^T for the weight gradient): MR consecutive floats per k
      for (int k = 0; k < kc; k++) {
        const float* src = g.A + (p0 + k) * g.sak + (m0 + ir);
        float* dk = d + k * MR;
        for (int i = 0; i < mr; i++) dk[i] = src[i];
        for (int i = mr; i < MR; i++) dk[i] = 0.f;
      }
      continue;
    }
    for (int i = 0; i < mr; i++) {
      const float* src = g.A + (m0 + ir + i) * g.sam + p0 * g.sak;
      if (g.sak == 1) {
        for (int k = 0; k < kc; k++) d[k * MR + i] = src[k];
      } else {
        for (int k = 0; k < kc; k++) d[k * MR + i] = src[k * g.sak];
      }
    }
    for (int i = mr; i < MR; i++)
      for (int k = 0; k < kc; k++) d[k * MR + i] = 0.f;
  }
}

// Packs depth [p0, p0+kc) x columns [n0, n0+nc) of B into micro-panels of NR columns, k-major, zero padded.
template <int NR>
void pack_b(const GemmArgs& g, int p0, int kc, int n0, int nc, float* dst) {
  for (int jr = 0; jr < nc; jr += NR) {
    const int nr = std::min(NR, nc - jr);
    float* d = dst + static_cast<std::ptrdiff_t>(jr) * kc;
    if (g.sbn == 1) {
      for (int k = 0; k < kc; k++) {
        const float* src = g.B + (p0 + k) * g.sbk + (n0 + jr);
        float* dk = d + k * NR;
        std::memcpy(dk, src, sizeof(float) * nr);
        for (int j = nr; j < NR; j++) dk[j] = 0.f;
      }
    } else {
      // transposed B (e.g. weight (OC,C) read as C x OC): walk each source row contiguously
      for (int j = 0; j < nr; j++) {
        const float* src = g.B + (n0 + jr + j) * g.sbn + p0 * g.sbk;
        for (int k = 0; k < kc; k++) d[k * NR + j] = src[k * g.sbk];
      }
      for (int j = nr; j < NR; j++)
        for (int k = 0; k < kc; k++) d[k * NR + j] = 0.f;
    }
  }
}

// ------------------------------------------------------------------ portable micro-kernel
// Plain loops over a small register tile; the compiler vectorises the j loop with whatever ISA it targets.
constexpr int P_MR = 4;
constexpr int P_NR = 16;

void kern_portable(int kc, const float* a, const float* b, float* c, std::ptrdiff_t ldc, int mr, int nr,
                   bool load_c, const float* bias) {
  float acc[P_MR][P_NR];
  for (int i = 0; i < P_MR; i++)
    for (int j = 0; j < P_NR; j++) acc[i][j] = (bias != nullptr && j < nr) ? bias[j] : 0.f;
  for (int k = 0; k < kc; k++) {
    const float* bk = b + k * P_NR;
    const float* ak = a + k * P_MR;
    for (int i = 0; i < P_MR; i++) {
      const float ai = ak[i];
      for (int j = 0; j < P_NR; j++) acc[i][j] += ai * bk[j];
    }
  }
  for (int i = 0; i < mr; i++) {
    float* ci = c + i * ldc;
    if (load_c) {
      for (int j = 0; j < nr; j++) ci[j] += acc[i][j];
    } else {
      for (int j = 0; j < nr; j++) ci[j] = acc[i][j];
    }
  }
}

#ifdef SK_HAVE_AVX512
// ------------------------------------------------------------------ AVX-512 micro-kernel, MR x 32
// 2*MR zmm accumulators; per k: two loads of B, MR broadcasts of A, 2*MR FMAs.
constexpr int X_MR = 14;
constexpr int X_NR = 32;

inline __mmask16 lane_mask(int n) { return n >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << n) - 1u); }

template <int MR>
void kern_avx512(int kc, const float* a, const float* b, float* c, std::ptrdiff_t ldc, int mr, int nr,
                 bool load_c, const float* bias) {
  const __mmask16 m0 = lane_mask(nr);
  const __mmask16 m1 = nr > 16 ? lane_mask(nr - 16) : static_cast<__mmask16>(0);
  __m512 init0 = _mm512_setzero_ps();
  __m512 init1 = _mm512_setzero_ps();
  if (bias != nullptr) {
    init0 = _mm512_maskz_loadu_ps(m0, bias);
    init1 = _mm512_maskz_loadu_ps(m1, bias + 16);
  }
  __m512 acc0[MR];
  __m512 acc1[MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; i++) {
    acc0[i] = init0;
    acc1[i] = init1;
  }
#pragma GCC unroll 2
  for (int k = 0; k < kc; k++) {
    const __m512 b0 = _mm512_load_ps(b);
    const __m512 b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
      const __m512 ai = _mm512_set1_ps(a[i]);
      acc0[i] = _mm512_fmadd_ps(ai, b0, acc0[i]);
      acc1[i] = _mm512_fmadd_ps(ai, b1, acc1[i]);
    }
    a += MR;
    b += 32;
  }
  if (m1 == 0xFFFF && mr == MR) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
      float* ci = c + i * ldc;
      __m512 r0 = acc0[i];
      __m512 r1 = acc1[i];
      if (load_c) {
        r0 = _mm512_add_ps(_mm512_loadu_ps(ci), r0);
        r1 = _mm512_add_ps(_mm512_loadu_ps(ci + 16), r1);
      }
      _mm512_storeu_ps(ci, r0);
      _mm512_storeu_ps(ci + 16, r1);
    }
    return;
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; i++) {
    if (i >= mr) break;
    float* ci = c + i * ldc;
    __m512 r0 = acc0[i];
    __m512 r1 = acc1[i];
    if (load_c) {
      r0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, ci), r0);
      r1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, ci + 16), r1);
    }
    _mm512_mask_storeu_ps(ci, m0, r0);
    _mm512_mask_storeu_ps(ci + 16, m1, r1);
  }
}
#endif

using Kernel = void (*)(int, const float*, const float*, float*, std::ptrdiff_t, int, int, bool, const float*);

// Computes C rows [m0,m1) x columns [n0,n1) on the calling thread.
template <int MR, int NR, Kernel KERN>
void gemm_block(const GemmArgs& g, int m0, int m1, int n0, int n1) {
  constexpr int MC = MR * 12;
  constexpr int NC = (NC_MAX / NR) * NR;
  float* pa = Scratch::grow(scratch.a, scratch.na, static_cast<std::size_t>(MC) * KC);
  float* pb = Scratch::grow(scratch.b, scratch.nb, static_cast<std::size_t>(NC) * KC);
  for (int jc = n0; jc < n1; jc += NC) {
    const int nc = std::min(NC, n1 - jc);
    for (int pc = 0; pc < g.K; pc += KC) {
      const int kc = std::min(KC, g.K - pc);
      const bool first = pc == 0;
      const bool load_c = g.accumulate || !first;
      pack_b<NR>(g, pc, kc, jc, nc, pb);
      for (int ic = m0; ic < m1; ic += MC) {
        const int mc = std::min(MC, m1 - ic);
        pack_a<MR>(g, ic, mc, pc, kc, pa);
        for (int jr = 0; jr < nc; jr += NR) {
          const int nr = std::min(NR, nc - jr);
          const float* bias = (!load_c && g.bias != nullptr) ? g.bias + jc + jr : nullptr;
          const float* bp = pb + static_cast<std::ptrdiff_t>(jr) * kc;
          for (int ir = 0; ir < mc; ir += MR) {
            const int mr = std::min(MR, mc - ir);
            KERN(kc, pa + static_cast<std::ptrdiff_t>(ir) * kc, bp, g.C + (ic + ir) * g.ldc + jc + jr, g.ldc, mr, nr,
                 load_c, bias);
          }
        }
      }
    }
  }
}

bool use_avx512 = false;
bool isa_initialised = false;

bool cpu_has_avx512() {
#ifdef SK_HAVE_AVX512
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f");
#else
  return false;
#endif
}

void init_isa() {
  if (!isa_initialised) {
    isa_initialised = true;
    const char* env = std::getenv("SYNTHMIX_KERNELS_ISA");
    use_avx512 = cpu_has_avx512() && !(env != nullptr && std::strcmp(env, "portable") == 0);
  }
}

void run_block(const GemmArgs& g, int m0, int m1, int n0, int n1) {
#ifdef SK_HAVE_AVX512
  if (use_avx512) {
    gemm_block<X_MR, X_NR, kern_avx512<X_MR>>(g, m0, m1, n0, n1);
    return;
  }
#endif
  gemm_block<P_MR, P_NR, kern_portable>(g, m0, m1, n0, n1);
}

int tile_mr() {
#ifdef SK_HAVE_AVX512
  if (use_avx512) return X_MR;
#endif
  return P_MR;
}
int tile_nr() {
#ifdef SK_HAVE_AVX512
  if (use_avx512) return X_NR;
#endif
  return P_NR;
}

// K == 0: the product is empty, so C is bias (or zero) when overwriting and unchanged when accumulating.
bool handle_empty(const GemmArgs& g) {
  if (g.M <= 0 || g.N <= 0) return true;
  if (g.K > 0) return false;
  if (!g.accumulate)
    for (int m = 0; m < g.M; m++)
      for (int n = 0; n < g.N; n++) g.C[m * g.ldc + n] = g.bias != nullptr ? g.bias[n] : 0.f;
  return true;
}

}  // namespace

void sgemm_serial(const GemmArgs& g) {
  init_isa();
  if (handle_empty(g)) return;
  run_block(g, 0, g.M, 0, g.N);
}

void sgemm(const GemmArgs& g, int threads) {
  init_isa();
  if (handle_empty(g)) return;
  const double flops = 2.0 * g.M * g.N * g.K;
  if (threads <= 1 || flops < 2e5) {
    run_block(g, 0, g.M, 0, g.N);
    return;
  }
  // Split the larger output dimension into whole tiles; each thread packs its own panels.
  const bool split_m = g.M >= g.N;
  const int unit = split_m ? tile_mr() : tile_nr();
  const int extent = split_m ? g.M : g.N;
  const int tiles = (extent + unit - 1) / unit;
  const int nt = std::max(1, std::min(threads, tiles));
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num();
    const int lo = std::min(extent, (tiles * t / nt) * unit);
    const int hi = std::min(extent, (tiles * (t + 1) / nt) * unit);
    if (lo < hi) {
      if (split_m)
        run_block(g, lo, hi, 0, g.N);
      else
        run_block(g, 0, g.M, lo, hi);
    }
  }
}

const char* gemm_isa() {
  init_isa();
  return use_avx512 ? "avx512" : "portable";
}

bool set_gemm_isa(const char* name) {
  init_isa();
  if (std::strcmp(name, "portable") == 0) {
    use_avx512 = false;
    return true;
  }
  if (std::strcmp(name, "avx512") == 0 && cpu_has_avx512()) {
    use_avx512 = true;
    return true;
  }
  return false;
}

}  // namespace sk
