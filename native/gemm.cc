// See gemm.h. Loop nest (BLIS): jc over NC columns -> pc over KC depth (pack B block) -> ic over MC rows
// (pack A block) -> jr over NR -> ir over MR -> micro-kernel. The KC x NR micro-panel of B stays in L1
// while MR x KC micro-panels of A stream from L2.
#include "gemm.h"

#include "pool.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#if defined(__x86_64__) && (defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__)))
#include <immintrin.h>
#endif
#if defined(__x86_64__) && defined(__AVX512F__)
#define SK_HAVE_AVX512 1
#endif
#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__)
#define SK_HAVE_AVX2 1
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

// Packs `width` contiguous floats from each of kc source rows (src + k * stride) into panels of W
// floats, k-major, zero padded: panel p holds floats [p W, p W + W) of every row. Each source row is read
// once, front to back. A whole panel row is a constant-size copy (vector moves); a variable-size memcpy
// compiled to `rep movs`, whose start-up made packing 8% of a small model's training step.
template <int W>
void pack_rows_into_panels(const float* src, std::ptrdiff_t stride, int kc, int width, float* dst) {
  const int full = width / W * W;
  for (int k = 0; k < kc; k++) {
    const float* row = src + k * stride;
    float* dk = dst + k * W;
    for (int p = 0; p < full; p += W) std::memcpy(dk + static_cast<std::ptrdiff_t>(p) * kc, row + p, sizeof(float) * W);
    if (full < width) {
      float* e = dk + static_cast<std::ptrdiff_t>(full) * kc;
      for (int j = 0; j < W; j++) e[j] = full + j < width ? row[full + j] : 0.f;
    }
  }
}

#ifdef SK_HAVE_AVX512
// The transposing packs below moved one float per load and per store (a gather of strided floats):
// 5-10% of a training step (perf, Zen 5: pack_b 4.4% and pack_a ~5% of the ref model's step, pack_b
// 6.7% of the demo's l2d96). With AVX-512 they move 16 x 16 blocks through registers instead. Packing is
// a permutation, so the packed panels, and every product, are the same floats either way.

// r[i] lane j -> r[j] lane i, for a 16 x 16 block of floats (unpack, then 64-bit and 128-bit shuffles).
// (GCC 12's shuffle and unpack intrinsics pass _mm512_undefined_ps() as their unused merge source, which
// -Wmaybe-uninitialized reports once inlined; nothing here reads an undefined value.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
inline void transpose16x16(__m512* r) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 4; i++) {
    t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xdd);
    t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xdd);
  }
  for (int i = 0; i < 8; i++) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
  }
}
#pragma GCC diagnostic pop

// The first n (<= 16) lanes; also the micro-kernel's column masks.
inline __mmask16 lane_mask(int n) { return n >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << n) - 1u); }

// dst[k * ld + j] = src[j * stride + k] for j < rows (<= 16 source rows of kc contiguous floats), k < kc:
// the first W (<= 16) lanes of each packed row k, lanes j >= rows zero. Masked loads for the last k
// (never past a row's end) and masked stores of W lanes (never into the next packed row).
template <int W>
void pack_transposed16(const float* src, std::ptrdiff_t stride, int rows, int kc, float* dst, std::ptrdiff_t ld) {
  static_assert(W <= 16, "one 16-lane register per packed row");
  for (int k0 = 0; k0 < kc; k0 += 16) {
    const int w = std::min(16, kc - k0);
    const __mmask16 lm = lane_mask(w);
    __m512 r[16];
    for (int j = 0; j < 16; j++) {
      r[j] = _mm512_setzero_ps();
      if (j < rows) r[j] = _mm512_maskz_loadu_ps(lm, src + j * stride + k0);
    }
    transpose16x16(r);
    for (int k = 0; k < w; k++) _mm512_mask_storeu_ps(dst + (k0 + k) * ld, lane_mask(W), r[k]);
  }
}
#endif

// Packs rows [m0, m0+mc) x depth [p0, p0+kc) of A into micro-panels of MR rows, k-major, zero padded.
// kVec: the micro-kernel in use is AVX-512's (so the CPU runs AVX-512 code).
template <int MR, bool kVec = false>
void pack_a(const GemmArgs& g, int m0, int mc, int p0, int kc, float* dst) {
  if (g.sam == 1) {
    // Transposed A (e.g. dout^T for the weight gradient): row k of the source holds the block's mc
    // floats contiguously, MR of them per micro-panel. Read row by row (panel by panel, it was read in
    // MR-float pieces 4 KB apart, one cache miss each: pack_a was 29% of the dweight GEMM for OC = 1024
    // on Zen 3).
    pack_rows_into_panels<MR>(g.A + p0 * g.sak + m0, g.sak, kc, mc, dst);
    return;
  }
  for (int ir = 0; ir < mc; ir += MR) {
    const int mr = std::min(MR, mc - ir);
    float* d = dst + static_cast<std::ptrdiff_t>(ir) * kc;
    const float* a = g.A + (m0 + ir) * g.sam + p0 * g.sak;
#ifdef SK_HAVE_AVX512
    if constexpr (kVec && MR <= 16) {
      if (g.sak == 1) {
        pack_transposed16<MR>(a, g.sam, mr, kc, d, MR);
        continue;
      }
    }
#endif
    for (int i = 0; i < mr; i++) {
      const float* src = a + i * g.sam;
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
template <int NR, bool kVec = false>
void pack_b(const GemmArgs& g, int p0, int kc, int n0, int nc, float* dst) {
  if (g.sbn == 1) {
    // Row-major B (e.g. inp in dW = doutᵀ·inp). Read row by row: panel by panel it was read in
    // 128-byte pieces one row (often 4 KB) apart, a new page-strided stream per panel, and pack_b ran
    // at ~10 GB/s, 15% of the dW GEMM.
    pack_rows_into_panels<NR>(g.B + p0 * g.sbk + n0, g.sbk, kc, nc, dst);
    return;
  }
  for (int jr = 0; jr < nc; jr += NR) {
    const int nr = std::min(NR, nc - jr);
    float* d = dst + static_cast<std::ptrdiff_t>(jr) * kc;
    // transposed B (e.g. weight (OC,C) read as C x OC): walk each source row contiguously
    const float* b = g.B + (n0 + jr) * g.sbn + p0 * g.sbk;
#ifdef SK_HAVE_AVX512
    if constexpr (kVec && NR % 16 == 0) {
      if (g.sbk == 1) {
        for (int h = 0; h < NR; h += 16) pack_transposed16<16>(b + h * g.sbn, g.sbn, nr - h, kc, d + h, NR);
        continue;
      }
    }
#endif
    for (int j = 0; j < nr; j++) {
      const float* src = b + j * g.sbn;
      for (int k = 0; k < kc; k++) d[k * NR + j] = src[k * g.sbk];
    }
    for (int j = nr; j < NR; j++)
      for (int k = 0; k < kc; k++) d[k * NR + j] = 0.f;
  }
}

// ------------------------------------------------------------------ portable micro-kernel
// GCC/Clang generic vectors (no intrinsics): the compiler lowers them to whatever SIMD the target has.
// Vectors are as wide as the target's registers (8 floats with AVX, else 4: SSE, NEON) and the 6 x 2VW
// tile keeps 12 accumulators in registers.
#if defined(__AVX__)
constexpr int VW = 8;
#else
constexpr int VW = 4;
#endif
constexpr int P_MR = 6;
constexpr int P_NR = 2 * VW;
typedef float vf __attribute__((vector_size(VW * sizeof(float))));

inline vf loadv(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

void kern_portable(int kc, const float* a, std::ptrdiff_t /*ars*/, std::ptrdiff_t /*aks*/, const float* b, float* c,
                   std::ptrdiff_t ldc, int mr, int nr, bool load_c, const float* bias) {
  float init[P_NR] = {};
  if (bias != nullptr)
    for (int j = 0; j < nr; j++) init[j] = bias[j];
  const vf i0 = loadv(init);
  const vf i1 = loadv(init + VW);
  vf acc0[P_MR];
  vf acc1[P_MR];
#pragma GCC unroll 8
  for (int i = 0; i < P_MR; i++) {
    acc0[i] = i0;
    acc1[i] = i1;
  }
  for (int k = 0; k < kc; k++) {
    const vf b0 = loadv(b + k * P_NR);
    const vf b1 = loadv(b + k * P_NR + VW);
    const float* ak = a + k * P_MR;
#pragma GCC unroll 8
    for (int i = 0; i < P_MR; i++) {
      const vf ai = vf{} + ak[i];
      acc0[i] += ai * b0;
      acc1[i] += ai * b1;
    }
  }
  for (int i = 0; i < mr; i++) {
    float tile[P_NR];
    std::memcpy(tile, &acc0[i], sizeof acc0[i]);
    std::memcpy(tile + VW, &acc1[i], sizeof acc1[i]);
    float* ci = c + i * ldc;
    if (load_c) {
      for (int j = 0; j < nr; j++) ci[j] += tile[j];
    } else {
      for (int j = 0; j < nr; j++) ci[j] = tile[j];
    }
  }
}

// Asks for the C tile that the kernel adds to at its end, before the k loop: when C is larger than L2
// (dinp of a C = 256 layer, 2 MB) the tile's rows were loaded only after the FMAs and each load waited for
// L3, which made accumulating products 2x slower than overwriting ones (N = 256, K = 64 on Zen 3).
// Below 64 steps of k there is too little work to hide the latency behind (attention's head-size GEMMs).
inline void prefetch_c_tile(const float* c, std::ptrdiff_t ldc, int mr, int width) {
  for (int i = 0; i < mr; i++) {
    __builtin_prefetch(c + i * ldc);
    __builtin_prefetch(c + i * ldc + width - 1);
  }
}

#ifdef SK_HAVE_AVX512
// ------------------------------------------------------------------ AVX-512 micro-kernel, MR x 32
// 2*MR zmm accumulators; per k: two loads of B, MR broadcasts of A, 2*MR FMAs.
constexpr int X_MR = 14;
constexpr int X_NR = 32;

// A(i,k) = a[i*ars + k*aks]: a packed micro-panel is ars = 1, aks = MR; A can also be read in place
// from a row-major source (ROWS: ars = lda, aks = 1) or a transposed one (ars = 1, aks = ld). The
// arithmetic is identical whichever way A is read; only the loads differ.
// HALF: a tile of at most 16 columns (N = 16, e.g. the d = 16 models' dinp and dlnf), computed on the
// first 16 lanes only; the second half's FMAs would all be masked away at the store. Same bits.
template <int MR, bool ROWS, bool HALF = false>
void kern_avx512(int kc, const float* a, std::ptrdiff_t ars, std::ptrdiff_t aks, const float* b, float* c,
                 std::ptrdiff_t ldc, int mr, int nr, bool load_c, const float* bias) {
  const __mmask16 m0 = lane_mask(nr);
  const __mmask16 m1 = nr > 16 ? lane_mask(nr - 16) : static_cast<__mmask16>(0);
  __m512 init0 = _mm512_setzero_ps();
  __m512 init1 = _mm512_setzero_ps();
  if (bias != nullptr) {
    init0 = _mm512_maskz_loadu_ps(m0, bias);
    init1 = _mm512_maskz_loadu_ps(m1, bias + 16);
  }
  if (load_c && kc >= 64) prefetch_c_tile(c, ldc, mr, 32);
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
    const __m512 b1 = HALF ? b0 : _mm512_load_ps(b + 16);
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
      const __m512 ai = _mm512_set1_ps(ROWS ? a[i * ars] : a[i]);
      acc0[i] = _mm512_fmadd_ps(ai, b0, acc0[i]);
      if constexpr (!HALF) acc1[i] = _mm512_fmadd_ps(ai, b1, acc1[i]);
    }
    a += ROWS ? 1 : aks;
    b += 32;
  }
  if (!HALF && m1 == 0xFFFF && mr == MR) {
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
      if constexpr (!HALF) r1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, ci + 16), r1);
    }
    _mm512_mask_storeu_ps(ci, m0, r0);
    if constexpr (!HALF) _mm512_mask_storeu_ps(ci + 16, m1, r1);
  }
}
#endif

#ifdef SK_HAVE_AVX2
// ------------------------------------------------------------------ AVX2 + FMA micro-kernel, 6 x 16
// 12 ymm accumulators, 2 for B and 1 broadcast: 15 of the 16 registers. Per k: two loads of B, 6
// broadcasts of A straight from memory (the portable kernel's `vf{} + a` costs an add and a register
// shuffle per broadcast, half the FMA rate on Zen 3), 12 FMAs. Each C element gets the same arithmetic
// as in the AVX-512 kernel (bias or 0, then one FMA per k in order, then + C), so the two give the same
// bits for the same KC blocking.
constexpr int Y_MR = 6;
constexpr int Y_NR = 16;

inline __m256i lane_mask8(int n) {
  const int c = n < 0 ? 0 : (n > 8 ? 8 : n);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(c), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// A(i,k) = a[i*ars + k*aks], as in kern_avx512.
template <int MR, bool ROWS>
void kern_avx2(int kc, const float* a, std::ptrdiff_t ars, std::ptrdiff_t aks, const float* b, float* c,
               std::ptrdiff_t ldc, int mr, int nr, bool load_c, const float* bias) {
  const __m256i m0 = lane_mask8(nr);
  const __m256i m1 = lane_mask8(nr - 8);
  __m256 init0 = _mm256_setzero_ps();
  __m256 init1 = _mm256_setzero_ps();
  if (bias != nullptr) {
    init0 = _mm256_maskload_ps(bias, m0);
    init1 = _mm256_maskload_ps(bias + 8, m1);
  }
  if (load_c && kc >= 64) prefetch_c_tile(c, ldc, mr, 16);
  __m256 acc0[MR];
  __m256 acc1[MR];
#pragma GCC unroll 8
  for (int i = 0; i < MR; i++) {
    acc0[i] = init0;
    acc1[i] = init1;
  }
#pragma GCC unroll 2
  for (int k = 0; k < kc; k++) {
    const __m256 b0 = _mm256_load_ps(b);
    const __m256 b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
      const __m256 ai = _mm256_broadcast_ss(ROWS ? a + i * ars : a + i);
      acc0[i] = _mm256_fmadd_ps(ai, b0, acc0[i]);
      acc1[i] = _mm256_fmadd_ps(ai, b1, acc1[i]);
    }
    a += ROWS ? 1 : aks;
    b += 16;
  }
  if (nr == Y_NR && mr == MR) {
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
      float* ci = c + i * ldc;
      __m256 r0 = acc0[i];
      __m256 r1 = acc1[i];
      if (load_c) {
        r0 = _mm256_add_ps(_mm256_loadu_ps(ci), r0);
        r1 = _mm256_add_ps(_mm256_loadu_ps(ci + 8), r1);
      }
      _mm256_storeu_ps(ci, r0);
      _mm256_storeu_ps(ci + 8, r1);
    }
    return;
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; i++) {
    if (i >= mr) break;
    float* ci = c + i * ldc;
    __m256 r0 = acc0[i];
    __m256 r1 = acc1[i];
    if (load_c) {
      r0 = _mm256_add_ps(_mm256_maskload_ps(ci, m0), r0);
      r1 = _mm256_add_ps(_mm256_maskload_ps(ci + 8, m1), r1);
    }
    _mm256_maskstore_ps(ci, m0, r0);
    _mm256_maskstore_ps(ci + 8, m1, r1);
  }
}
#endif

using Kernel = void (*)(int, const float*, std::ptrdiff_t, std::ptrdiff_t, const float*, float*, std::ptrdiff_t, int,
                        int, bool, const float*);

// Whether KERN is an AVX-512 micro-kernel (so the packs may use AVX-512 too).
template <Kernel KERN>
constexpr bool is_avx512_kernel() {
#ifdef SK_HAVE_AVX512
  return KERN == kern_avx512<X_MR, false> || KERN == kern_avx512<X_MR, true>;
#else
  return false;
#endif
}

template <int NR>
constexpr int nc_block() {
  return (NC_MAX / NR) * NR;
}

// Where the (jc, pc) block of B lives in a fully packed copy of B (see pack_all_b).
template <int NR>
std::ptrdiff_t packed_b_offset(const GemmArgs& g, int jc, int pc) {
  const int nc = std::min(nc_block<NR>(), g.N - jc);
  const int ncpad = (nc + NR - 1) / NR * NR;
  return static_cast<std::ptrdiff_t>(jc) * g.K + static_cast<std::ptrdiff_t>(pc) * ncpad;
}

// The kernel for a tile of mr rows: KERN, or, for a short edge tile of the AVX-512 kernel (e.g. 64 =
// 4 x 14 + 8 decode rows), one with fewer rows, which does the same arithmetic per element (bias or 0,
// one FMA per k in order, then + C) with fewer FMAs; it reads the MR-row packed panel (aks = MR). For a
// tile of at most 16 columns, the HALF instance of the AVX-512 kernel (packed or in place).
template <Kernel KERN>
Kernel tile_kernel(int mr, int nr) {
#ifdef SK_HAVE_AVX512
  if constexpr (KERN == kern_avx512<X_MR, false>) {
    if (nr <= 16) {
      if (mr <= 4) return kern_avx512<4, false, true>;
      if (mr <= 8) return kern_avx512<8, false, true>;
      return kern_avx512<X_MR, false, true>;
    }
    if (mr <= 4) return kern_avx512<4, false>;
    if (mr <= 8) return kern_avx512<8, false>;
  }
  if constexpr (KERN == kern_avx512<X_MR, true>) {
    if (nr <= 16) return kern_avx512<X_MR, true, true>;
  }
#endif
  (void)mr;
  (void)nr;
  return KERN;
}

// Whether MR rows of a row-major A, lda floats apart, read side by side in place (KERN_ROWS reads one
// float of each row per k) fall into a few L1 sets: with a row stride that is a multiple of 2 KB (e.g.
// inp with C = 1024, dout with OC = 1024), the 14 rows share one or two 4 KB set-index windows and evict
// each other from the 8-way L1 before their cache lines are used up (Zen 4: the 1024-wide GEMMs of the
// ref model ran at ~110 against ~160 GFLOP/s). With more than 4 panels of B to amortise the packing
// (N = 160..256) those go through a packed panel instead (the same bits): ref model 1.08x, paired; with
// fewer (the demo's d = 16..128 models' dlogits, V = 512) packing cost more than it saved (0.91-0.98x).
inline bool rows_alias_in_l1(std::ptrdiff_t lda) { return (lda * static_cast<std::ptrdiff_t>(sizeof(float))) % 2048 == 0; }

// The depth a tile of rows [row, row + mr) runs over within the block [pc, pc + kc), as offsets
// [lo, hi) into the block (see Tri); `earlier`: the tile's depth began before this block (so C already
// holds its partial sum); `none_at_all`: its depth is empty in every block.
struct TileDepth {
  int lo, hi;
  bool earlier, none_at_all;
};
inline TileDepth tile_depth(const GemmArgs& g, int row, int mr, int pc, int kc) {
  int k0 = 0, k1 = g.K;
  if (g.bias == nullptr) {
    if (g.tri == Tri::lower) k1 = std::clamp(row + g.diag + mr, 0, g.K);
    if (g.tri == Tri::upper) k0 = std::clamp(row + g.diag, 0, g.K);
  }
  return TileDepth{std::max(k0, pc) - pc, std::min(k1, pc + kc) - pc, k0 < pc, k0 >= k1};
}

// Computes C rows [m0,m1) x columns [n0,n1) on the calling thread. With `prepacked` (all of B packed by
// pack_all_b; then n0 = 0, n1 = N) the B blocks are read from there instead of being packed here.
//
// When only a few panels of B share each A micro-panel (N <= 8 NR, e.g. dinp and dW with C = 64 or 256),
// packing A would cost about as much as the multiply, so full MR-row tiles read A in place: row-major A
// through KERN_ROWS, transposed A (dout^T in dW) through KERN with its strides. Edge tiles with fewer than
// MR rows still go through a packed panel (reading in place would run past the end of A).
template <int MR, int NR, Kernel KERN, Kernel KERN_ROWS = nullptr>
void gemm_block(const GemmArgs& g, int m0, int m1, int n0, int n1, const float* prepacked) {
  constexpr int MC = MR * 12;
  constexpr int NC = nc_block<NR>();
  float* pa = Scratch::grow(scratch.a, scratch.na, static_cast<std::size_t>(MC) * KC);
  float* own = prepacked != nullptr ? nullptr : Scratch::grow(scratch.b, scratch.nb, static_cast<std::size_t>(NC) * KC);
  for (int jc = n0; jc < n1; jc += NC) {
    const int nc = std::min(NC, n1 - jc);
    for (int pc = 0; pc < g.K; pc += KC) {
      const int kc = std::min(KC, g.K - pc);
      const bool first = pc == 0;
      const float* pb = own;
      if (prepacked != nullptr)
        pb = prepacked + packed_b_offset<NR>(g, jc, pc);
      else
        pack_b<NR, is_avx512_kernel<KERN>()>(g, pc, kc, jc, nc, own);
      for (int ic = m0; ic < m1; ic += MC) {
        const int mc = std::min(MC, m1 - ic);
        const bool in_place = KERN_ROWS != nullptr && (g.sak == 1 || g.sam == 1) && nc <= 8 * NR &&
                              !(g.sak == 1 && nc > 4 * NR && rows_alias_in_l1(g.sam));
        const int full = in_place ? mc / MR * MR : 0;  // rows read in place; the rest are packed
        pack_a<MR, is_avx512_kernel<KERN>()>(g, ic + full, mc - full, pc, kc, pa);
        for (int jr = 0; jr < nc; jr += NR) {
          const int nr = std::min(NR, nc - jr);
          const float* bp = pb + static_cast<std::ptrdiff_t>(jr) * kc;
          float* cp = g.C + static_cast<std::ptrdiff_t>(ic) * g.ldc + jc + jr;
          // One tile of a Tri product: rows [ic + ir, + mr) of this panel, A at `a` (A(i, k) =
          // a[i ars + k aks]); `rows`: a full tile read in place from a row-major A (KERN_ROWS), else
          // KERN (a packed panel, or a transposed A in place).
          auto tile = [&](int ir, int mr, const float* a, std::ptrdiff_t ars, std::ptrdiff_t aks, bool rows) {
            const int row = ic + ir;
            int ncols = nr;
            if (g.tri == Tri::cols) {
              ncols = std::min(nr, row + g.diag + mr - (jc + jr));
              if (ncols <= 0) return;  // every column of this panel lies above the tile's last row
            }
            const TileDepth d = tile_depth(g, row, mr, pc, kc);
            float* c = cp + static_cast<std::ptrdiff_t>(ir) * g.ldc;
            if (d.lo >= d.hi) {
              // No depth in this block. A tile with no depth at all is C = 0 (its only write).
              if (!g.accumulate && first && d.none_at_all)
                for (int i = 0; i < mr; i++) std::fill(c + i * g.ldc, c + i * g.ldc + ncols, 0.f);
              return;
            }
            const bool load = g.accumulate || d.earlier;
            const float* bias = (!load && g.bias != nullptr) ? g.bias + jc + jr : nullptr;
            const Kernel k = rows ? tile_kernel<KERN_ROWS>(MR, ncols) : tile_kernel<KERN>(mr, ncols);
            k(d.hi - d.lo, a + d.lo * aks, ars, aks, bp + static_cast<std::ptrdiff_t>(d.lo) * NR, c, g.ldc, mr, ncols,
              load, bias);
          };
          if (g.tri == Tri::none) {
            // Every tile whole (the loops as they were before Tri: per-tile bookkeeping made the
            // smallest products, K = 16, ~10% slower).
            const bool load_c = g.accumulate || !first;
            const float* bias = (!load_c && g.bias != nullptr) ? g.bias + jc + jr : nullptr;
            const Kernel in_place_kernel = g.sak == 1 ? tile_kernel<KERN_ROWS>(MR, nr) : tile_kernel<KERN>(MR, nr);
            for (int ir = 0; ir < full; ir += MR) {
              const float* a = g.A + (ic + ir) * g.sam + pc * g.sak;
              if (g.sak == 1)
                in_place_kernel(kc, a, g.sam, 1, bp, cp + ir * g.ldc, g.ldc, MR, nr, load_c, bias);
              else
                in_place_kernel(kc, a, 1, g.sak, bp, cp + ir * g.ldc, g.ldc, MR, nr, load_c, bias);
            }
            for (int ir = full; ir < mc; ir += MR) {
              const int mr = std::min(MR, mc - ir);
              tile_kernel<KERN>(mr, nr)(kc, pa + static_cast<std::ptrdiff_t>(ir - full) * kc, 1, MR, bp,
                                        cp + ir * g.ldc, g.ldc, mr, nr, load_c, bias);
            }
            continue;
          }
          // Full tiles read in place: row-major A through KERN_ROWS, transposed A through KERN.
          for (int ir = 0; ir < full; ir += MR) {
            const float* a = g.A + (ic + ir) * g.sam + pc * g.sak;
            if (g.sak == 1)
              tile(ir, MR, a, g.sam, 1, true);
            else
              tile(ir, MR, a, 1, g.sak, false);
          }
          for (int ir = full; ir < mc; ir += MR)
            tile(ir, std::min(MR, mc - ir), pa + static_cast<std::ptrdiff_t>(ir - full) * kc, 1, MR, false);
        }
      }
    }
  }
}

double g_min_work = 2e5;

// The micro-kernel in use: the widest the CPU runs (the build targets -march=native, so a kernel that
// is compiled in is normally runnable; the check covers a build copied to an older CPU), or the one
// SYNTHMIX_KERNELS_ISA names (tests and A/B benches compare them).
enum class Isa { portable, avx2, avx512 };
Isa g_isa = Isa::portable;
bool isa_initialised = false;

const char* isa_name(Isa i) { return i == Isa::avx512 ? "avx512" : i == Isa::avx2 ? "avx2" : "portable"; }

bool cpu_runs(Isa i) {
  __builtin_cpu_init();
  switch (i) {
    case Isa::avx512:
#ifdef SK_HAVE_AVX512
      return __builtin_cpu_supports("avx512f");
#else
      return false;
#endif
    case Isa::avx2:
#ifdef SK_HAVE_AVX2
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
      return false;
#endif
    default:
      return true;
  }
}

bool parse_isa(const char* name, Isa* out) {
  for (Isa i : {Isa::portable, Isa::avx2, Isa::avx512}) {
    if (std::strcmp(name, isa_name(i)) == 0) {
      *out = i;
      return true;
    }
  }
  return false;
}

void init_isa() {
  if (isa_initialised) return;
  isa_initialised = true;
  g_isa = cpu_runs(Isa::avx512) ? Isa::avx512 : cpu_runs(Isa::avx2) ? Isa::avx2 : Isa::portable;
  const char* env = std::getenv("SYNTHMIX_KERNELS_ISA");
  if (env == nullptr || *env == '\0') return;
  Isa want;
  if (parse_isa(env, &want) && cpu_runs(want)) {
    g_isa = want;
    return;
  }
  std::fprintf(stderr, "synthmix: SYNTHMIX_KERNELS_ISA=%s is %s; using the %s micro-kernel\n", env,
               parse_isa(env, &want) ? "not runnable on this CPU (or not compiled in)" : "not avx512, avx2 or portable",
               isa_name(g_isa));
}

// Calls f.template operator()<MR, NR, KERN, KERN_ROWS>() for the micro-kernel in use.
template <class F>
void with_kernel(F&& f) {
#ifdef SK_HAVE_AVX512
  if (g_isa == Isa::avx512) return f.template operator()<X_MR, X_NR, kern_avx512<X_MR, false>, kern_avx512<X_MR, true>>();
#endif
#ifdef SK_HAVE_AVX2
  if (g_isa == Isa::avx2) return f.template operator()<Y_MR, Y_NR, kern_avx2<Y_MR, false>, kern_avx2<Y_MR, true>>();
#endif
  f.template operator()<P_MR, P_NR, kern_portable, nullptr>();
}

void run_block(const GemmArgs& g, int m0, int m1, int n0, int n1, const float* prepacked = nullptr) {
  with_kernel([&]<int MR, int NR, Kernel KERN, Kernel KERN_ROWS>() {
    gemm_block<MR, NR, KERN, KERN_ROWS>(g, m0, m1, n0, n1, prepacked);
  });
}

// Packs all of B, in parallel over groups of panels, into the layout packed_b_offset describes.
template <int NR, bool kVec>
void pack_all_b(const GemmArgs& g, float* dst, int threads) {
  constexpr int NC = nc_block<NR>();
  constexpr int GROUP = 8 * NR;
  struct Task {
    int jc, pc, j0, ncols;
  };
  std::vector<Task> tasks;
  for (int jc = 0; jc < g.N; jc += NC) {
    const int nc = std::min(NC, g.N - jc);
    for (int pc = 0; pc < g.K; pc += KC)
      for (int j0 = 0; j0 < nc; j0 += GROUP) tasks.push_back({jc, pc, j0, std::min(GROUP, nc - j0)});
  }
  parallel_for(static_cast<int>(tasks.size()), threads, [&](int i) {
    const Task& t = tasks[i];
    const int kc = std::min(KC, g.K - t.pc);
    pack_b<NR, kVec>(g, t.pc, kc, t.jc + t.j0, t.ncols, dst + packed_b_offset<NR>(g, t.jc, t.pc) + static_cast<std::ptrdiff_t>(t.j0) * kc);
  });
}

int tile_mr() {
  int mr = 0;
  with_kernel([&]<int MR, int NR, Kernel, Kernel>() { mr = MR; });
  return mr;
}
int tile_nr() {
  int nr = 0;
  with_kernel([&]<int MR, int NR, Kernel, Kernel>() { nr = NR; });
  return nr;
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
  if (threads <= 1 || flops < g_min_work) {
    run_block(g, 0, g.M, 0, g.N);
    return;
  }
  const int mr = tile_mr();
  const int nr = tile_nr();
  if (g.M < 4 * mr || g.N >= 2 * g.M) {
    // Few rows, or at least twice as many columns as rows (e.g. dweight of a d -> 4d projection: M = d,
    // N = 4d, K = BT): split columns; each chunk packs its own (small) A and its part of B block by block.
    const int chunk = std::max(nr, (g.N + 8 * nr - 1) / (8 * nr) * nr);
    const int chunks = (g.N + chunk - 1) / chunk;
    parallel_for(chunks, threads, [&](int c) { run_block(g, 0, g.M, c * chunk, std::min(g.N, (c + 1) * chunk)); });
    return;
  }
  // Otherwise one run of row tiles per thread, equal in tiles (+-1) so the threads finish together, each
  // packing its own B blocks while they are in L2 (K x N floats per thread, against M/threads x N x K
  // multiply-adds). It replaced one packed copy of all of B shared by the threads, which made both
  // stream B from L3 after a packing pass of its own (2 threads, GFLOP/s, bench/kernels.ts and a
  // paired harness, Zen 5, 2026-12-04): 2048x256x256 dinp 344-352 -> 426-433 and dweight 210-323 ->
  // 342-373; 2048x64x64 forward 272-348 -> 396-416; 2048x256x768 dweight 300 -> 389-406. Columns stay
  // better for the wide dweight (M = 256, N = 1024: 341-349 against 296-313 by rows).
  const int tiles = (g.M + mr - 1) / mr;
  const int chunks = std::min(tiles, threads);
  parallel_for(chunks, threads, [&](int c) {
    const int m0 = mr * static_cast<int>(static_cast<std::int64_t>(c) * tiles / chunks);
    const int m1 = std::min(g.M, mr * static_cast<int>(static_cast<std::int64_t>(c + 1) * tiles / chunks));
    run_block(g, m0, m1, 0, g.N);
  });
}

std::size_t packed_b_floats(const GemmArgs& g) {
  init_isa();
  const int nr = tile_nr();
  return static_cast<std::size_t>((g.N + nr - 1) / nr * nr) * static_cast<std::size_t>(g.K);
}

void pack_b_full(const GemmArgs& g, float* dst, int threads) {
  init_isa();
  if (g.N <= 0 || g.K <= 0) return;
  with_kernel([&]<int MR, int NR, Kernel KERN, Kernel>() { pack_all_b<NR, is_avx512_kernel<KERN>()>(g, dst, threads); });
}

void sgemm_rows(const GemmArgs& g, int m0, int m1, const float* packed) {
  init_isa();
  if (m1 <= m0 || g.N <= 0) return;
  GemmArgs rows = g;  // rows [m0, m1) as a product of their own (so an empty K only touches them)
  rows.M = m1 - m0;
  rows.A = g.A + static_cast<std::ptrdiff_t>(m0) * g.sam;
  rows.C = g.C + static_cast<std::ptrdiff_t>(m0) * g.ldc;
  if (handle_empty(rows)) return;
  run_block(g, m0, m1, 0, g.N, packed);  // g's own row indices (a Tri structure is by row of g)
}

void set_min_parallel_work(double w) { g_min_work = w; }
double min_parallel_work() { return g_min_work; }

const char* gemm_isa() {
  init_isa();
  return isa_name(g_isa);
}

bool set_gemm_isa(const char* name) {
  init_isa();
  Isa want;
  if (!parse_isa(name, &want) || !cpu_runs(want)) return false;
  g_isa = want;
  return true;
}

}  // namespace sk
