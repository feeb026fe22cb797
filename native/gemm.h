// Single-precision GEMM on strided operands, Goto/BLIS style: packed panels of A and B, cache blocking,
// a register-tiled micro-kernel: AVX-512 (14 x 32), AVX2 + FMA (6 x 16) or portable GCC vectors, the
// widest the CPU runs (all three give the same bits: see gemm.cc).
//
//   C[m*ldc + n]  (= or +=)  sum_k A(m,k) * B(k,n)  (+ bias[n] when overwriting)
//   A(m,k) = A[m*sam + k*sak],  B(k,n) = B[k*sbk + n*sbn]
//
// Strides express the transpositions the trainer needs without copies: out = inp·Wᵀ uses B(k,n) = W[n*C+k].
// Every C element is computed by one thread with a fixed k order, so results are bitwise identical for
// any thread count and run to run.
#pragma once
#include <cstddef>
#include <cstdint>

namespace sk {

// Triangular structure of a causal attention product, which lets whole tiles of work be skipped. Row m
// of C is sequence position p = m + diag (GemmArgs::diag: e.g. prompt rows that start at position p0
// of their sequence), columns and depth are positions:
//   cols:  only C(m, n) with n <= p is wanted; the tile of rows [m0, m0 + mr) computes the columns
//          n < m0 + diag + mr only (other columns of C are left as they were, e.g. the scores above
//          the diagonal, which the causal softmax never reads);
//   lower: A(m, k) = 0 for k > p (e.g. P·V with the causal probabilities P): the tile of rows
//          [m0, m0 + mr) runs over the depth k < m0 + diag + mr only;
//   upper: A(m, k) = 0 for k < p (e.g. Pᵀ·dO): that tile runs over the depth k >= m0 + diag only.
// The depth modes skip multiply-adds of exact zeros, so C gets the same bits as the full product
// whenever B is finite (x + 0·b = x); they are ignored when a bias is given.
enum class Tri : std::uint8_t { none, cols, lower, upper };

struct GemmArgs {
  int M, N, K;
  const float* A;
  std::ptrdiff_t sam, sak;
  const float* B;
  std::ptrdiff_t sbk, sbn;
  float* C;
  std::ptrdiff_t ldc;
  bool accumulate;     // C += A·B, else C = A·B (+ bias)
  const float* bias;   // length N, only used when !accumulate; may be null
  Tri tri = Tri::none;
  int diag = 0;  // see Tri
};

// Runs on the calling thread only (used inside parallel regions, e.g. per attention head).
void sgemm_serial(const GemmArgs& g);
// Runs on up to `threads` threads of the pool (pool.h): one run of row tiles per thread (column chunks
// when M is small or N >= 2M), each thread packing its own blocks of B (see sgemm in gemm.cc).
void sgemm(const GemmArgs& g, int threads);

// For several products that share one B (the fused output head): B packed once with pack_b_full into
// packed_b_floats(g) floats (64-byte aligned), then rows [m0, m1) of C computed on the calling thread
// with sgemm_rows reading B from there (g.B is then not read). `packed` may be null: B is packed per call.
// The arithmetic of every C element is the same as sgemm's, whatever the row range.
std::size_t packed_b_floats(const GemmArgs& g);
void pack_b_full(const GemmArgs& g, float* dst, int threads);
void sgemm_rows(const GemmArgs& g, int m0, int m1, const float* packed);

// Problems below this many flops (or element-operations) run on one thread; tests set it to 0 so that
// the partitioning code is exercised on tiny shapes.
void set_min_parallel_work(double w);
double min_parallel_work();

// "avx512", "avx2" or "portable"; settable for tests (set_gemm_isa returns false if the CPU cannot run it).
const char* gemm_isa();
bool set_gemm_isa(const char* name);

}  // namespace sk
