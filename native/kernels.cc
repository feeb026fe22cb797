// Float32 kernels. Reductions use fixed 16-lane accumulator arrays (which the compiler vectorises without
// -ffast-math, since no reassociation is needed) and a fixed final order, so they are deterministic.
#include "kernels.h"

#include <thread>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "gemm.h"
#include "pool.h"

namespace sk {
namespace {

int g_threads = 0;
thread_local int t_threads = 0;  // ScopedThreads' override on this thread (0 = none)

int threads() {
  if (t_threads > 0) return t_threads;
  if (g_threads <= 0) g_threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  return g_threads;
}

// Splits [0,n) into chunks whose boundaries are multiples of `grain` (so vectorised loop bodies line up
// the same way whoever runs a chunk) and runs f(lo, hi) on each, in parallel unless the work is small.
template <class F>
void par_range(std::int64_t n, std::int64_t grain, double work, F f) {
  if (n <= 0) return;
  const int nt = threads();
  if (nt <= 1 || work < min_parallel_work() / 4) {
    f(std::int64_t{0}, n);
    return;
  }
  const std::int64_t units = (n + grain - 1) / grain;
  const std::int64_t chunks = std::min<std::int64_t>(units, 8 * nt);
  const std::int64_t per = (units + chunks - 1) / chunks * grain;
  const int count = static_cast<int>((n + per - 1) / per);
  parallel_for(count, nt, [&](int c) { f(c * per, std::min(n, (c + 1) * per)); });
}

constexpr int L = 16;

// For reductions over rows done per column (bias and layernorm weight gradients): every chunk reads
// all rows of its columns, so the columns go in one contiguous slice per thread. In 8 x threads slices
// of 16 floats each thread read 64-byte pieces of every row, and the 2-thread layernorm backward was
// slower than on one thread. The sums are the same whatever the slices (each column's own row order).
template <class F>
void par_cols(std::int64_t cols, double work, F f) {
  const std::int64_t per = (cols + threads() - 1) / threads();
  par_range(cols, std::max<std::int64_t>(L, (per + L - 1) / L * L), work, f);
}

inline float hsum(const float* acc) {
  float s = 0.f;
  for (int j = 0; j < L; j++) s += acc[j];
  return s;
}

inline float row_sum(const float* x, int n) {
  float acc[L] = {};
  int i = 0;
  for (; i + L <= n; i += L)
    for (int j = 0; j < L; j++) acc[j] += x[i + j];
  float s = hsum(acc);
  for (; i < n; i++) s += x[i];
  return s;
}

// exp(x) with Cephes' expf polynomial (about 1 ulp) on a vector of VW lanes; NaN propagates. Written on
// GCC vector types with explicit selects because GCC 12 turns the scalar version's clamps into branches
// and then vectorises no loop that calls it unless the target has AVX-512 masks (-march=znver3 or
// haswell: the GELU, softmax and cross-entropy loops stayed scalar). The vectors are the target's
// register width: GCC lowers a select on a wider vector lane by lane.
#if defined(__AVX512F__)
constexpr int VW = 16;
#elif defined(__AVX__)
constexpr int VW = 8;
#else
constexpr int VW = 4;
#endif
static_assert(L % VW == 0, "the 16-lane accumulators are whole vectors");
// (-Wpsabi: these helpers are inlined, so no vector crosses a call boundary whose ABI could differ.)
#pragma GCC diagnostic ignored "-Wpsabi"
typedef float vf __attribute__((vector_size(VW * sizeof(float))));
typedef std::int32_t vi __attribute__((vector_size(VW * sizeof(std::int32_t))));

inline vf exp_v(vf x) {
  const vf lo = vf{} - 87.3f;
  const vf hi = vf{} + 88.3f;
  vf xc = x < lo ? lo : x;
  xc = xc > hi ? hi : xc;
  const vf n = (xc * 1.44269504088896341f + 12582912.f) - 12582912.f;  // round to nearest
  vf r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  vf p = vf{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.f;
  const vi bits = (__builtin_convertvector(n, vi) + 127) << 23;
  const vf y = p * (vf)bits;  // a vector cast between equal sizes reinterprets the bits
  return x != x ? x : y;
}

// tanh(u) as a rational function: Eigen's generic_fast_tanh_float (odd degree-13 numerator over an
// even degree-6 denominator, inputs clamped to +-7.9988, where tanh rounds to +-(1 - 2^-22); below 4e-4
// tanh(u) = u to float precision). Absolute error <= 2.7e-7 against double tanh (1.8e-7 for the
// 1 - 2/(exp(2u)+1) it replaced), GELU's <= 8.3e-7 (4.3e-7), measured over [-12, 12]; 1.5x faster
// GELU (0.39 -> 0.26 ns per float, one thread, Zen 5): 11 FMAs and one division against the
// exponential's ~20 operations plus the division. NaN stays NaN (every comparison with it is false).
inline vf tanh_v(vf u) {
  const vf c = vf{} + 7.99881172180175781f;
  vf x = u > c ? c : u;
  x = x < -c ? -c : x;
  const vf x2 = x * x;
  vf p = x2 * -2.76076847742355e-16f + 2.00018790482477e-13f;
  p = x2 * p + -8.60467152213735e-11f;
  p = x2 * p + 5.12229709037114e-08f;
  p = x2 * p + 1.48572235717979e-05f;
  p = x2 * p + 6.37261928875436e-04f;
  p = x2 * p + 4.89352455891786e-03f;
  p = x * p;
  vf q = x2 * 1.19825839466702e-06f + 1.18534705686654e-04f;
  q = x2 * q + 2.26843463243900e-03f;
  q = x2 * q + 4.89352518554385e-03f;
  const vf au = u < 0.f ? -u : u;
  return au < 0.0004f ? u : p / q;
}

// Up to VW floats in and out of a vector; a short vector is zero padded, so every element, wherever it
// lies, goes through the same vector arithmetic (bit-identical results for any split of a range). The
// full-vector case is a constant-size copy, i.e. one vector load or store, not a memcpy call.
inline vf loadv(const float* p, std::int64_t n = VW) {
  vf v{};
  if (n >= VW)
    std::memcpy(&v, p, sizeof v);
  else
    std::memcpy(&v, p, sizeof(float) * n);
  return v;
}
inline void storev(float* p, vf v, std::int64_t n = VW) {
  if (n >= VW)
    std::memcpy(p, &v, sizeof v);
  else
    std::memcpy(p, &v, sizeof(float) * n);
}


// The L lanes of a vector accumulator (L / VW vectors) as floats, for hsum or a lane-by-lane max.
inline void lanes_of(float (&lanes)[L], const vf (&acc)[L / VW]) { std::memcpy(lanes, acc, sizeof lanes); }
// hsum of an L-lane vector accumulator: the same additions as hsum of a float[L].
inline float hsum(const vf (&acc)[L / VW]) {
  float lanes[L];
  lanes_of(lanes, acc);
  return hsum(lanes);
}

// max of x[0, n), skipping NaNs: L lanes (lane j: elements j, j + L, ...), then the lanes, then the
// remaining elements. On vectors: as a float[L] loop GCC 12 compiled it to 16 scalar vmaxss per 16
// elements (it was most of the cross-entropy's max pass, 1024-4096 per row in the output head).
inline float row_max(const float* x, int n) {
  vf acc[L / VW];
  for (int h = 0; h < L / VW; h++) acc[h] = vf{} - INFINITY;
  int i = 0;
  for (; i + L <= n; i += L)
    for (int h = 0; h < L / VW; h++) {
      const vf v = loadv(x + i + h * VW);
      acc[h] = v > acc[h] ? v : acc[h];
    }
  float lanes[L];
  lanes_of(lanes, acc);
  float m = -INFINITY;
  for (int j = 0; j < L; j++) m = lanes[j] > m ? lanes[j] : m;
  for (; i < n; i++) m = x[i] > m ? x[i] : m;
  return m;
}

// Lane numbers 0, 1, ..., VW-1, for lane masks on whole vectors.
inline vi lane_iota() {
  vi v;
  for (int j = 0; j < VW; j++) v[j] = j;
  return v;
}

// One causal attention row in place: row[0, n) = softmax(scale * row[0, n)), row[n, T) = 0. The same
// arithmetic, element for element and in the sum's order (row_sum's), as the five passes it replaced
// (scale, row_max, exps, row_sum, 1/sum), each with a memcpy-based remainder: they were half of a
// T = 64 attention forward. Here whole vectors within the row, with
// lane masks; lanes at or past n may hold anything until the last pass zeroes them.
inline void causal_softmax_row(float* row, int n, int T, float scale) {
  const vi lane = lane_iota();
  vf vmax = vf{} - INFINITY;
  for (int i = 0; i < n; i += VW) {
    const int w = std::min(VW, T - i);
    const vf x = loadv(row + i, w) * scale;
    storev(row + i, x, w);
    vmax = ((lane < n - i) & (x > vmax)) ? x : vmax;
  }
  float mx = -INFINITY;  // NaNs are skipped, as in row_max
  for (int j = 0; j < VW; j++) mx = vmax[j] > mx ? vmax[j] : mx;
  vf acc[L / VW] = {};
  const int full = n / L * L;
  for (int i = 0; i < n; i += VW) {
    const int w = std::min(VW, T - i);
    const vf e = exp_v(loadv(row + i, w) - mx);
    storev(row + i, e, w);
    if (i + VW <= full) acc[(i % L) / VW] += e;
  }
  float sum = hsum(acc);
  for (int i = full; i < n; i++) sum += row[i];
  const float inv = 1.f / sum;
  for (int i = 0; i < T; i += VW) {
    const int w = std::min(VW, T - i);
    storev(row + i, (lane < n - i) ? loadv(row + i, w) * inv : vf{}, w);
  }
}

// The backward of causal_softmax_row, in place in dr: dr[i] = p[i] (dr[i] - p·dr) scale for i < n, 0 up
// to T. The dot product's tail is an in-order fma: as `dot += p[i] * dr[i]` GCC compiled it with a
// different rounding for AVX-512 (masked vectors) than for AVX2, and the two builds trained different
// bits (test/train/build-portability.test.ts).
inline void causal_softmax_backward_row(const float* p, float* dr, int n, int T, float scale) {
  const vi lane = lane_iota();
  vf acc[L / VW] = {};
  const int full = n / L * L;
  for (int i = 0; i < full; i += VW) acc[(i % L) / VW] += loadv(p + i) * loadv(dr + i);
  float dot = hsum(acc);
  for (int i = full; i < n; i++) dot = std::fma(p[i], dr[i], dot);
  for (int i = 0; i < T; i += VW) {
    const int w = std::min(VW, T - i);
    const vf g = loadv(p + i, w) * (loadv(dr + i, w) - dot) * scale;
    storev(dr + i, (lane < n - i) ? g : vf{}, w);
  }
}

// sum_i exp(x[i] - mx), storing each exponential in e[i] when e is not null. The sum is the 16-lane
// accumulator of the whole 16-element blocks, reduced by hsum, then the remaining elements in order.
inline float exp_shift_sum(const float* x, float* e, int n, float mx) {
  vf acc[L / VW] = {};
  int i = 0;
  for (; i + L <= n; i += L)
    for (int h = 0; h < L / VW; h++) {
      const vf ex = exp_v(loadv(x + i + h * VW) - mx);
      if (e != nullptr) storev(e + i + h * VW, ex);
      acc[h] += ex;
    }
  float sum = hsum(acc);
  for (; i < n; i += VW) {
    const vf ex = exp_v(loadv(x + i, n - i) - mx);
    if (e != nullptr) storev(e + i, ex, n - i);
    for (int j = 0; j < VW && i + j < n; j++) sum += ex[j];
  }
  return sum;
}

constexpr float GELU_SCALE = 0.7978845608028654f;  // sqrt(2/pi)

// dst[c] += sum over rows of src[r*ld + c], parallel over column slices (never over rows).
void colsum_add(float* dst, const float* src, int rows, int cols, std::int64_t ld) {
  par_cols(cols, static_cast<double>(rows) * cols, [=](std::int64_t c0, std::int64_t c1) {
    std::vector<float> acc(static_cast<std::size_t>(c1 - c0), 0.f);
    float* a = acc.data();
    const int w = static_cast<int>(c1 - c0);
    for (int r = 0; r < rows; r++) {
      const float* s = src + r * ld + c0;
      for (int c = 0; c < w; c++) a[c] += s[c];
    }
    for (int c = 0; c < w; c++) dst[c0 + c] += a[c];
  });
}

}  // namespace

void set_threads(int n) { g_threads = std::max(1, n); }
int get_threads() { return threads(); }

ScopedThreads::ScopedThreads(int n) : previous_(t_threads) { t_threads = std::max(1, n); }
ScopedThreads::~ScopedThreads() { t_threads = previous_; }

// ------------------------------------------------------------------ encoder

void encoder_forward(float* out, const int32_t* tokens, const float* wte, const float* wpe, int B, int T, int C) {
  par_range(static_cast<std::int64_t>(B) * T, 1, static_cast<double>(B) * T * C, [=](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; r++) {
      const float* w = wte + static_cast<std::int64_t>(tokens[r]) * C;
      const float* p = wpe + (r % T) * C;
      float* o = out + r * C;
      for (int i = 0; i < C; i++) o[i] = w[i] + p[i];
    }
  });
}

void encoder_backward(float* dwte, float* dwpe, const float* dout, const int32_t* tokens, int B, int T, int C) {
  // One thread. Tokens repeat, so rows cannot be split over threads without races, and split channels
  // made it 5-10x slower on two threads than on one (both threads write every gradient row, and a row
  // of a JS array is not cache-line aligned, so the line at the split moved between cores on every
  // token); alone it is ~0.1 ms of a 200 ms ref step.
  for (std::int64_t r = 0; r < static_cast<std::int64_t>(B) * T; r++) {
    float* w = dwte + static_cast<std::int64_t>(tokens[r]) * C;
    float* p = dwpe + (r % T) * C;
    const float* d = dout + r * C;
    for (int i = 0; i < C; i++) {
      w[i] += d[i];
      p[i] += d[i];
    }
  }
}

namespace {
// A 64-byte aligned float buffer that only grows (the packed-B micro-kernels use aligned loads;
// the layernorm backward keeps each row group's partial sums on their own cache lines).
struct AlignedBuf {
  float* p = nullptr;
  std::size_t n = 0;
  AlignedBuf() = default;
  AlignedBuf(const AlignedBuf&) = delete;
  AlignedBuf& operator=(const AlignedBuf&) = delete;
  ~AlignedBuf() { std::free(p); }
  float* get(std::size_t want) {
    if (want > n) {
      std::free(p);
      p = static_cast<float*>(std::aligned_alloc(64, ((want * sizeof(float) + 63) / 64) * 64));
      n = want;
    }
    return p;
  }
};
}  // namespace

// ------------------------------------------------------------------ layernorm

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int BT, int C) {
  par_range(BT, 1, static_cast<double>(BT) * C, [=](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; r++) {
      const float* x = inp + r * C;
      const float m = row_sum(x, C) / C;
      // The variance in L lanes on whole vectors (as a float[L] loop it was unrolled to scalar code).
      vf acc[L / VW] = {};
      int i = 0;
      for (; i + L <= C; i += L)
        for (int h = 0; h < L / VW; h++) {
          const vf d = loadv(x + i + h * VW) - m;
          acc[h] += d * d;
        }
      float v = hsum(acc);
      for (; i < C; i++) v += (x[i] - m) * (x[i] - m);
      const float s = 1.f / std::sqrt(v / C + 1e-5f);
      float* o = out + r * C;
      for (int k = 0; k < C; k++) o[k] = (x[k] - m) * s * weight[k] + bias[k];
      mean[r] = m;
      rstd[r] = s;
    }
  });
}

namespace {
// Rows of the layernorm backward go in kLnGroups fixed groups (contiguous ranges, from BT only): each
// group sums its rows' dweight and dbias terms in row order into its own partial sums, added in group
// order at the end, so the bits never depend on the thread count. One pass reads x and dout once: with
// dbias and dweight as two more column passes (one column slice per thread) the 2-thread backward was no
// faster than 1 thread on the small model's rows (C = 64: 0.50 against 0.54 ms per step).
constexpr int kLnGroups = 8;
AlignedBuf g_ln_parts;  // per group: dbias then dweight partial sums, stride a multiple of 16 floats

// One row of the layernorm backward: di (+)= the input gradient; pb += d, pw += norm * d (that row's
// dbias and dweight terms). Whole vectors through GCC vector types (the scalar form of this fused loop
// stayed scalar), the last C % VW columns one by one with the same operations.
inline void layernorm_backward_row(float* __restrict di, float* __restrict pb, float* __restrict pw,
                                   const float* __restrict x, const float* __restrict d,
                                   const float* __restrict weight, float m, float s, int C, bool overwrite) {
  // The row's two sums in L lanes (lane j: elements j, j + L, ...), then hsum: the arithmetic of a
  // float[L] accumulator, on whole vectors (as a scalar j loop GCC unrolled it into scalar code).
  vf acc1[L / VW] = {};
  vf acc2[L / VW] = {};
  int i = 0;
  for (; i + L <= C; i += L)
    for (int h = 0; h < L / VW; h++) {
      const vf dn = loadv(weight + i + h * VW) * loadv(d + i + h * VW);
      acc1[h] += dn;
      acc2[h] += dn * ((loadv(x + i + h * VW) - m) * s);
    }
  float dnm = hsum(acc1);
  float dnnm = hsum(acc2);
  for (; i < C; i++) {
    const float dn = weight[i] * d[i];
    dnm += dn;
    dnnm += dn * ((x[i] - m) * s);
  }
  dnm /= C;
  dnnm /= C;
  int k = 0;
  for (; k + VW <= C; k += VW) {
    const vf xv = loadv(x + k), dv = loadv(d + k);
    const vf norm = (xv - m) * s;
    const vf g = (loadv(weight + k) * dv - dnm - norm * dnnm) * s;
    storev(di + k, overwrite ? g : loadv(di + k) + g);
    storev(pb + k, loadv(pb + k) + dv);
    storev(pw + k, loadv(pw + k) + norm * dv);
  }
  for (; k < C; k++) {
    const float norm = (x[k] - m) * s;
    const float g = (weight[k] * d[k] - dnm - norm * dnnm) * s;
    di[k] = overwrite ? g : di[k] + g;
    pb[k] += d[k];
    pw[k] += norm * d[k];
  }
}
}  // namespace

void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int BT, int C, bool overwrite) {
  const int groups = std::max(1, std::min(kLnGroups, BT));
  // Per group: dbias then dweight partial sums, each group on its own 64-byte lines (threads write
  // neighbouring groups' sums on every row: a shared line made 2 threads slower than 1).
  const std::int64_t stride = (2 * static_cast<std::int64_t>(C) + 15) / 16 * 16;
  float* parts = g_ln_parts.get(static_cast<std::size_t>(stride * groups));
  std::memset(parts, 0, sizeof(float) * static_cast<std::size_t>(stride * groups));
  par_range(groups, 1, 3.0 * BT * C, [=](std::int64_t g0, std::int64_t g1) {
    for (std::int64_t g = g0; g < g1; g++) {
      float* pb = parts + g * stride;
      const std::int64_t r1 = (g + 1) * BT / groups;
      for (std::int64_t r = g * BT / groups; r < r1; r++)
        layernorm_backward_row(dinp + r * C, pb, pb + C, inp + r * C, dout + r * C, weight, mean[r], rstd[r], C,
                               overwrite);
    }
  });
  for (int c = 0; c < C; c++) {
    float db = parts[c];
    float dw = parts[C + c];
    for (int g = 1; g < groups; g++) {
      db += parts[g * stride + c];
      dw += parts[g * stride + C + c];
    }
    dbias[c] += db;
    dweight[c] += dw;
  }
}

// ------------------------------------------------------------------ matmul

void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int BT, int C, int OC) {
  // out (BT,OC) = inp (BT,C) · W^T, with B(k,n) = W[n*C + k]
  sgemm(GemmArgs{BT, OC, C, inp, C, 1, weight, 1, C, out, OC, false, bias}, threads());
}

void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int BT, int C, int OC, bool overwrite) {
  // dinp (BT,C) (+)= dout (BT,OC) · W (OC,C)
  const GemmArgs dx{BT, C, OC, dout, OC, 1, weight, C, 1, dinp, C, !overwrite, nullptr};
  // dW (OC,C) += dout^T (OC,BT) · inp (BT,C), with A(m,k) = dout[k*OC + m]
  const GemmArgs dw{OC, C, BT, dout, 1, OC, inp, C, 1, dweight, C, true, nullptr};
  const int nt = threads();
  if (nt == 2 && dinp != nullptr && dweight != nullptr && 2.0 * BT * C * OC >= min_parallel_work()) {
    // On two threads the two products (the same flops) run side by side, one per thread, each on its
    // own core's caches: one 2-thread GEMM after the other scaled only 1.3x-1.5x over one thread at the
    // ref model's shapes (both threads stream the same packed B and split few row tiles), the pair
    // ~1.8x. Same bits: a GEMM gives every C element the same arithmetic on any number of threads.
    parallel_for(2, 2, [&](int i) {
      if (i == 0) {
        sgemm_serial(dx);
        if (dbias != nullptr) colsum_add(dbias, dout, BT, OC, OC);
      } else {
        sgemm_serial(dw);
      }
    });
    return;
  }
  if (dinp != nullptr) sgemm(dx, nt);
  if (dweight != nullptr) sgemm(dw, nt);
  if (dbias != nullptr) colsum_add(dbias, dout, BT, OC, OC);
}

// ------------------------------------------------------------------ attention
// Per (batch, head) the products are GEMMs on strided views of qkv, one call each over all T rows, with
// the causal structure as a GEMM Tri mode (gemm.h): a tile of rows [t0, t0 + 14) computes the score
// columns < t0 + 14 only, and runs P·V over the depth < t0 + 14 only. Each product packs its B operand
// once. (It replaced 56-row blocks, each a product of its own: T = 64 computed the whole T x T square,
// and T = 128 repacked K and V for every block; the l2d96 attention forward/backward ran 1.23x/1.32x
// faster alone.) Skipped work is multiply-adds of exact zeros or scores the softmax never reads, so the
// bits are those of the full products.

void attention_forward(float* out, float* att, const float* qkv, int B, int T, int C, int NH) {
  const int hs = C / NH;
  const std::int64_t C3 = 3 * static_cast<std::int64_t>(C);
  const float scale = 1.f / std::sqrt(static_cast<float>(hs));
  const double work = 2.0 * B * T * T * C;
  par_range(static_cast<std::int64_t>(B) * NH, 1, work, [=](std::int64_t p0, std::int64_t p1) {
    for (std::int64_t p = p0; p < p1; p++) {
      const std::int64_t b = p / NH;
      const std::int64_t h = p % NH;
      const float* q = qkv + b * T * C3 + h * hs;
      const float* k = q + C;
      const float* v = q + 2 * C;
      float* a = att + p * T * T;
      // S = Q K^T, on and below the diagonal
      sgemm_serial(GemmArgs{T, T, hs, q, C3, 1, k, 1, C3, a, T, false, nullptr, Tri::cols});
      for (int t = 0; t < T; t++) causal_softmax_row(a + static_cast<std::int64_t>(t) * T, t + 1, T, scale);
      // out = P V (P is zero above the diagonal)
      sgemm_serial(GemmArgs{T, hs, T, a, T, 1, v, C3, 1, out + b * T * C + h * hs, C, false, nullptr, Tri::lower});
    }
  });
}

void attention_backward(float* dqkv, float* scratch, const float* dout, const float* qkv, const float* att, int B,
                        int T, int C, int NH, bool overwrite) {
  // Each of dQ, dK and dV (per batch and head) is produced by exactly one GEMM below, so with
  // `overwrite` those GEMMs write instead of accumulating and dqkv needs no zeroing.
  const bool acc = !overwrite;
  const int hs = C / NH;
  const std::int64_t C3 = 3 * static_cast<std::int64_t>(C);
  const float scale = 1.f / std::sqrt(static_cast<float>(hs));
  const double work = 4.0 * B * T * T * C;
  par_range(static_cast<std::int64_t>(B) * NH, 1, work, [=](std::int64_t p0, std::int64_t p1) {
    for (std::int64_t p = p0; p < p1; p++) {
      const std::int64_t b = p / NH;
      const std::int64_t h = p % NH;
      const float* q = qkv + b * T * C3 + h * hs;
      const float* k = q + C;
      const float* v = q + 2 * C;
      float* dq = dqkv + b * T * C3 + h * hs;
      float* dk = dq + C;
      float* dv = dq + 2 * C;
      const float* a = att + p * T * T;
      float* ds = scratch + p * T * T;
      const float* d = dout + b * T * C + h * hs;
      // dP = dout V^T, on and below the diagonal
      sgemm_serial(GemmArgs{T, T, hs, d, C, 1, v, 1, C3, ds, T, false, nullptr, Tri::cols});
      // softmax backward, with the 1/sqrt(hs) of the scores folded in (zero above the diagonal)
      for (int t = 0; t < T; t++)
        causal_softmax_backward_row(a + static_cast<std::int64_t>(t) * T, ds + static_cast<std::int64_t>(t) * T, t + 1,
                                    T, scale);
      // dV += P^T dout   (row t of P^T is zero before column t)
      sgemm_serial(GemmArgs{T, hs, T, a, 1, T, d, C, 1, dv, C3, acc, nullptr, Tri::upper});
      // dQ += dS K       (dS is zero above the diagonal)
      sgemm_serial(GemmArgs{T, hs, T, ds, T, 1, k, C3, 1, dq, C3, acc, nullptr, Tri::lower});
      // dK += dS^T Q
      sgemm_serial(GemmArgs{T, hs, T, ds, 1, T, q, C3, 1, dk, C3, acc, nullptr, Tri::upper});
    }
  });
}

// ------------------------------------------------------------------ GELU, residual

void gelu_forward(float* out, const float* inp, std::int64_t N) {
  par_range(N, 256, static_cast<double>(N) * 8, [=](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t i = lo; i < hi; i += VW) {
      const vf x = loadv(inp + i, hi - i);
      storev(out + i, 0.5f * x * (1.f + tanh_v(GELU_SCALE * (x + 0.044715f * x * x * x))), hi - i);
    }
  });
}

// The derivative of GELU(tanh) at x, times d.
inline vf gelu_grad_v(vf x, vf d) {
  const vf th = tanh_v(GELU_SCALE * (x + 0.044715f * x * x * x));
  const vf sech2 = 1.f - th * th;
  return (0.5f * (1.f + th) + 0.5f * x * sech2 * GELU_SCALE * (1.f + 3.f * 0.044715f * x * x)) * d;
}

void gelu_backward(float* dinp, const float* inp, const float* dout, std::int64_t N, bool overwrite) {
  par_range(N, 256, static_cast<double>(N) * 8, [=](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t i = lo; i < hi; i += VW) {
      const std::int64_t n = hi - i;
      const vf g = gelu_grad_v(loadv(inp + i, n), loadv(dout + i, n));
      storev(dinp + i, overwrite ? g : loadv(dinp + i, n) + g, n);
    }
  });
}

void residual_forward(float* out, const float* a, const float* b, std::int64_t N) {
  par_range(N, 256, static_cast<double>(N), [=](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t i = lo; i < hi; i++) out[i] = a[i] + b[i];
  });
}

// ------------------------------------------------------------------ fused softmax + cross-entropy

namespace {
// Cross-entropy of one row of logits x: returns the loss and, when dl is not null, writes
// (softmax(x) - onehot(tgt)) * scale to dl, which may be x itself (the fused head works in place). The
// exponentials are kept in dl, so the gradient pass is a scale, not a second exp.
inline float ce_row(const float* x, float* dl, int tgt, int V, float scale) {
  const float xt = x[tgt];  // read before dl (possibly x) is overwritten
  const float mx = row_max(x, V);
  const float sum = exp_shift_sum(x, dl, V, mx);
  if (dl != nullptr) {
    const float s = scale / sum;
    for (int k = 0; k < V; k++) dl[k] *= s;
    dl[tgt] -= scale;
  }
  return std::log(sum) - (xt - mx);
}
}  // namespace

void cross_entropy_forward(float* losses, float* dlogits, const float* logits, const int32_t* targets, int BT, int V,
                           float dloss_scale) {
  par_range(BT, 1, 4.0 * BT * V, [=](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; r++) {
      const float* x = logits + r * V;
      const int tgt = targets[r];
      float* dl = dlogits != nullptr ? dlogits + r * V : nullptr;
      if (tgt < 0) {
        losses[r] = 0.f;
        if (dl != nullptr) std::memset(dl, 0, sizeof(float) * V);
        continue;
      }
      losses[r] = ce_row(x, dl, tgt, V, dloss_scale);
    }
  });
}

// ------------------------------------------------------------------ fused output head

namespace {

AlignedBuf g_head_wte_t, g_head_wte, g_head_tile, g_head_lnf;
thread_local AlignedBuf g_head_eval_tile;  // one sub-block of logits per thread (no gradients, or a small dwte)

// Row counts of the output head's two blockings; both depend only on V (never on the thread count), so
// every sum, dwte's included, is the same for any number of threads.
// - sub-blocks of head_sub_rows rows: logits, cross-entropy and dlnf of a sub-block while its (rows, V)
//   slice of logits is in L2 (or L3: for V = 4096 the 42-row slice is 688 KB, and 42 rows beat 28 on
//   Zen 3's 512 KB L2 by 1.12x per ref step). Multiples of 42 = lcm(6, 14) rows are whole tiles for
//   both the AVX2 (6-row) and AVX-512 (14-row) micro-kernels; 56 rows left a 2-row AVX2 tile that
//   cost a full one;
// - blocks of head_block_rows rows: their dlogits are kept (a tile of up to 4M floats) so that dwte is
//   one GEMM with K = block rows per block. With K = one sub-block (14-56 rows then), the (V, C)
//   dwte was read and written once per 14-56 rows: the V4096 head took 1.37x-1.46x longer at 2 threads
//   (BENCHMARKS.md, "Session 12: kernels").
int head_sub_rows(int V) { return std::max(42, std::min(84, (131072 / std::max(V, 1)) / 42 * 42)); }
int head_block_rows(int V) {
  const int sub = head_sub_rows(V);
  return std::max(126, (4194304 / std::max(V, 1)) / sub * sub);
}

// Heads whose (V, C) dwte is at most kHeadSmallDwte floats (V1024 C64, V512 with d16-d128) and whose
// kept dlogits would be more than kHeadKeptTile floats (the train bench's small model: BT 2048 x V1024,
// 8 MB) take dwte sub-block by sub-block while the sub-block's dlogits are still in L2, into kHeadGroups
// accumulators. Writing that tile in the sub-block pass and reading it back for dwte cost the V1024 C64
// head a third of its time at 2 threads (2.6 against 3.9 ms per call; 1.05-1.065x per small-model step,
// paired). With a large dwte (the ref model's V4096 C256: 4 MB) dwte would be read and written once per
// sub-block, and with a tile that fits in L2 (the demo's B8 x T64 x V512: 1 MB) the blocked GEMM was
// 1-4% faster at 1 thread, so both keep it. Both limits depend on the shapes only, so the bits do too.
constexpr std::int64_t kHeadSmallDwte = 128 * 1024;
constexpr std::int64_t kHeadKeptTile = 1024 * 1024;
// Sub-block s adds its dwte to accumulator s % kHeadGroups, the sub-blocks of one group in order, and the
// groups are summed in order at the end: the bits depend on V and BT only, never on the thread count.
// Four groups keep up to four threads busy.
constexpr int kHeadGroups = 4;
AlignedBuf g_head_dwte_acc;  // accumulators of groups 1..kHeadGroups-1 (group 0 writes dwte itself)

// The packed copies of wte the head multiplies by: logits = lnf · wteᵀ (B(k,n) = wte[n*C + k]) and
// dlnf = dlogits · wte (B(k,n) = wte[k*C + n]).
struct HeadPacks {
  GemmArgs fwd, bwd;
  const float *pf, *pbk;
};

// Rows [r0, r1) of the head in tile t ((r1 - r0, V), in L2): logits, their cross-entropy (losses) and,
// when dlnf is given, dlogits in place and dlnf = dlogits · wte. Every row's arithmetic is the same
// whichever thread or block it falls in.
void head_rows(const HeadPacks& p, float* t, int r0, int r1, float* losses, float* dlnf, const float* lnf,
               const int32_t* targets, int C, int V, float dloss_scale) {
  GemmArgs f = p.fwd;
  f.M = r1 - r0;
  f.A = lnf + static_cast<std::int64_t>(r0) * C;
  f.C = t;
  sgemm_rows(f, 0, r1 - r0, p.pf);
  for (int r = r0; r < r1; r++) {
    float* x = t + static_cast<std::int64_t>(r - r0) * V;
    const int tgt = targets[r];
    if (tgt < 0) {
      losses[r] = 0.f;
      if (dlnf != nullptr) std::memset(x, 0, sizeof(float) * V);
      continue;
    }
    losses[r] = ce_row(x, dlnf != nullptr ? x : nullptr, tgt, V, dloss_scale);
  }
  if (dlnf == nullptr) return;
  GemmArgs d = p.bwd;
  d.M = r1 - r0;
  d.A = t;
  d.C = dlnf + static_cast<std::int64_t>(r0) * C;
  sgemm_rows(d, 0, r1 - r0, p.pbk);
}

// dwte (= when first, else +=) dlogitsᵀ · lnf over rows [r0, r0 + k) whose dlogits are in t:
// A(m,k) = t[k*V + m], B(k,n) = lnf[(r0+k)*C + n]; the calling thread only.
void head_dwte_rows(float* dst, const float* t, const float* lnf, int r0, int k, int C, int V, bool first) {
  sgemm_serial(GemmArgs{V, C, k, t, 1, V, lnf + static_cast<std::int64_t>(r0) * C, C, 1, dst, C, !first, nullptr});
}

// The head with gradients when dwte is small (kHeadSmallDwte): per sub-block, logits, cross-entropy, dlnf
// and that sub-block's dwte while its dlogits are in L2; the groups' dwte summed in order at the end.
void head_small_dwte(const HeadPacks& p, float* losses, float* dlnf, float* dwte, const float* lnf,
                     const int32_t* targets, int BT, int C, int V, float dloss_scale, int sub, int nt) {
  const int nsub = (BT + sub - 1) / sub;
  const int groups = std::min(kHeadGroups, nsub);
  const std::int64_t VC = static_cast<std::int64_t>(V) * C;
  float* acc = groups > 1 ? g_head_dwte_acc.get(static_cast<std::size_t>(VC) * (groups - 1)) : nullptr;
  auto group = [&](int g) {
    float* t = g_head_eval_tile.get(static_cast<std::size_t>(sub) * V);
    float* dst = g == 0 ? dwte : acc + (g - 1) * VC;
    for (int s = g; s < nsub; s += groups) {
      const int r0 = s * sub;
      const int r1 = std::min(BT, r0 + sub);
      head_rows(p, t, r0, r1, losses, dlnf, lnf, targets, C, V, dloss_scale);
      head_dwte_rows(dst, t, lnf, r0, r1 - r0, C, V, s == g);
    }
  };
  if (nt > 1)
    parallel_for(groups, nt, group);
  else
    for (int g = 0; g < groups; g++) group(g);
  if (groups == 1) return;
  // Group by group over the whole range (so the loop over elements vectorises): each element still
  // gets ((dwte + acc1) + acc2) + acc3.
  par_range(VC, 256, static_cast<double>(VC) * groups, [=](std::int64_t lo, std::int64_t hi) {
    for (int g = 1; g < groups; g++) {
      float* __restrict d = dwte;
      const float* __restrict a = acc + (g - 1) * VC;
      for (std::int64_t i = lo; i < hi; i++) d[i] += a[i];
    }
  });
}

}  // namespace

void logits_cross_entropy(float* losses, float* dlnf, float* dwte, const float* lnf, const float* wte,
                          const int32_t* targets, int BT, int C, int V, float dloss_scale) {
  const bool grad = dlnf != nullptr;
  const int nt = threads();
  const bool par = nt > 1 && 2.0 * BT * V * C >= min_parallel_work();
  HeadPacks p{{0, V, C, nullptr, C, 1, wte, 1, C, nullptr, V, false, nullptr},
              {0, C, V, nullptr, V, 1, wte, C, 1, nullptr, C, false, nullptr},
              nullptr,
              nullptr};
  float* pf = g_head_wte_t.get(packed_b_floats(p.fwd));
  pack_b_full(p.fwd, pf, par ? nt : 1);
  p.pf = pf;
  if (grad) {
    float* pbk = g_head_wte.get(packed_b_floats(p.bwd));
    pack_b_full(p.bwd, pbk, par ? nt : 1);
    p.pbk = pbk;
  }
  const int sub = head_sub_rows(V);
  if (grad && static_cast<std::int64_t>(V) * C <= kHeadSmallDwte && static_cast<std::int64_t>(BT) * V > kHeadKeptTile) {
    head_small_dwte(p, losses, dlnf, dwte, lnf, targets, BT, C, V, dloss_scale, sub, par ? nt : 1);
    return;
  }
  // Without gradients there is no dwte and nothing to keep: one block of sub-blocks.
  const int all = (BT + sub - 1) / sub * sub;
  const int R = grad ? std::min(head_block_rows(V), all) : all;
  float* tile = grad ? g_head_tile.get(static_cast<std::size_t>(R) * V) : nullptr;
  for (int b0 = 0; b0 < BT; b0 += R) {
    const int rb = std::min(R, BT - b0);
    const int nsub = (rb + sub - 1) / sub;
    auto rows = [&](int s) {
      const int r0 = b0 + s * sub;
      const int r1 = std::min(b0 + rb, r0 + sub);
      // With gradients the sub-block's dlogits stay at its rows of the block tile (dwte reads them);
      // without, each thread reuses its own sub-block tile.
      float* t = grad ? tile + static_cast<std::int64_t>(r0 - b0) * V : g_head_eval_tile.get(static_cast<std::size_t>(sub) * V);
      head_rows(p, t, r0, r1, losses, dlnf, lnf, targets, C, V, dloss_scale);
    };
    if (par)
      parallel_for(nsub, nt, rows);
    else
      for (int s = 0; s < nsub; s++) rows(s);
    if (!grad) continue;
    // dwte (=, then +=) dlogitsᵀ · lnf over this block: A(m,k) = tile[k*V + m], B(k,n) = lnf[(b0+k)*C + n].
    const GemmArgs w{V, C, rb, tile, 1, V, lnf + static_cast<std::int64_t>(b0) * C, C, 1, dwte, C, b0 > 0, nullptr};
    float* pl = g_head_lnf.get(packed_b_floats(w));
    pack_b_full(w, pl, par ? nt : 1);
    // Chunks of whole micro-kernel tiles (126 = 9 x 14 = 21 x 6 rows): with 128, every chunk ended in a
    // 2-row tile that cost about as much as a full one (dwte is the same: each element is one tile's).
    const int wchunk = par ? 126 : V;
    const int nw = (V + wchunk - 1) / wchunk;
    auto cols = [&](int c) { sgemm_rows(w, c * wchunk, std::min(V, (c + 1) * wchunk), pl); };
    if (par)
      parallel_for(nw, nt, cols);
    else
      for (int c = 0; c < nw; c++) cols(c);
  }
}

// ------------------------------------------------------------------ AdamW

void adamw_update(float* params, const float* grads, float* m, float* v, std::int64_t N, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int t) {
  const float c1 = static_cast<float>(1.0 / (1.0 - std::pow(static_cast<double>(beta1), t)));
  const float c2 = static_cast<float>(1.0 / (1.0 - std::pow(static_cast<double>(beta2), t)));
  // The scalars are copied into the lambda: captured by reference, GCC re-reads them after every store
  // to params/m/v (they might alias) and the loop stays scalar (it was 8% of a d96 step).
  par_range(N, 256, static_cast<double>(N) * 10, [=](std::int64_t lo, std::int64_t hi) {
    float* __restrict p = params;
    const float* __restrict gr = grads;
    float* __restrict mm = m;
    float* __restrict vv = v;
    for (std::int64_t i = lo; i < hi; i++) {
      const float g = gr[i];
      const float mi = beta1 * mm[i] + (1.f - beta1) * g;
      const float vi = beta2 * vv[i] + (1.f - beta2) * g * g;
      mm[i] = mi;
      vv[i] = vi;
      const float mhat = mi * c1;
      const float vhat = vi * c2;
      p[i] -= lr * (mhat / (std::sqrt(vhat) + eps) + weight_decay * p[i]);
    }
  });
}

// ------------------------------------------------------------------ gradient clipping

double clip_grad_norm(float* g, std::int64_t N, double max_norm) {
  constexpr std::int64_t CH = 4096;
  const std::int64_t chunks = (N + CH - 1) / CH;
  std::vector<double> part(static_cast<std::size_t>(chunks), 0.0);
  par_range(chunks, 1, static_cast<double>(N), [&](std::int64_t c0, std::int64_t c1) {
    for (std::int64_t c = c0; c < c1; c++) {
      const std::int64_t lo = c * CH;
      const std::int64_t hi = std::min(N, lo + CH);
      double acc[8] = {};
      std::int64_t i = lo;
      for (; i + 8 <= hi; i += 8)
        for (int j = 0; j < 8; j++) {
          const double x = g[i + j];
          acc[j] = acc[j] + x * x;
        }
      double sum = 0.0;
      for (int j = 0; j < 8; j++) sum += acc[j];
      for (; i < hi; i++) sum += static_cast<double>(g[i]) * g[i];
      part[static_cast<std::size_t>(c)] = sum;
    }
  });
  double ss = 0.0;
  for (const double p : part) ss += p;
  const double norm = std::sqrt(ss);
  if (std::isfinite(norm) && norm > max_norm) {
    const double scale = max_norm / norm;
    par_range(N, 256, static_cast<double>(N), [=](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t i = lo; i < hi; i++) g[i] = static_cast<float>(static_cast<double>(g[i]) * scale);
    });
  }
  return norm;
}

}  // namespace sk
