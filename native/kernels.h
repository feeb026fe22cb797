// The trainer's kernels (see src/train/kernels/types.ts for the contract), float32, parallel on pool.h.
// Work is partitioned so that every output element is computed by the same arithmetic whatever the
// thread count: results are bitwise identical for 1 and 2 threads and run to run (no atomics, column
// reductions are split over columns, never over rows).
#pragma once
#include <cstdint>

namespace sk {

void set_threads(int n);
int get_threads();

// The kernels' thread count on the calling thread only, for the lifetime of the guard (the decode
// engine's own count while it steps on a worker thread, without touching the process-wide setting
// that the trainer and other engines read).
class ScopedThreads {
 public:
  explicit ScopedThreads(int n);
  ~ScopedThreads();
  ScopedThreads(const ScopedThreads&) = delete;
  ScopedThreads& operator=(const ScopedThreads&) = delete;

 private:
  int previous_;
};

void encoder_forward(float* out, const int32_t* tokens, const float* wte, const float* wpe, int B, int T, int C);
void encoder_backward(float* dwte, float* dwpe, const float* dout, const int32_t* tokens, int B, int T, int C);

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int BT, int C);
// `overwrite`: dinp = gradient instead of dinp += gradient (the caller then need not zero it first).
void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int BT, int C,
                        bool overwrite = false);

void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int BT, int C, int OC);
void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int BT, int C, int OC, bool overwrite = false);

void attention_forward(float* out, float* att, const float* qkv, int B, int T, int C, int NH);
void attention_backward(float* dqkv, float* scratch, const float* dout, const float* qkv, const float* att, int B,
                        int T, int C, int NH, bool overwrite = false);

void gelu_forward(float* out, const float* inp, std::int64_t N);
void gelu_backward(float* dinp, const float* inp, const float* dout, std::int64_t N, bool overwrite = false);
void residual_forward(float* out, const float* a, const float* b, std::int64_t N);

void cross_entropy_forward(float* losses, float* dlogits, const float* logits, const int32_t* targets, int BT, int V,
                           float dloss_scale);

// The tied output head fused with the loss, without materialising the (BT, V) logits: per block of rows,
// logits = lnf · wteᵀ, losses as cross_entropy_forward and, when dlnf is non-null (then dwte too),
// dlnf = dlogits · wte and dwte = dlogitsᵀ · lnf (both WRITTEN, not accumulated).
void logits_cross_entropy(float* losses, float* dlnf, float* dwte, const float* lnf, const float* wte,
                          const int32_t* targets, int BT, int C, int V, float dloss_scale);

void adamw_update(float* params, const float* grads, float* m, float* v, std::int64_t N, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int t);

// Global-norm clipping: returns the L2 norm of g (float64 sums over fixed 4096-element chunks, added in
// chunk order, so the result does not depend on the thread count) and, when it is finite and above
// max_norm, scales g by max_norm / norm (in float64, rounded to float32, as the TypeScript loop did).
double clip_grad_norm(float* g, std::int64_t N, double max_norm);

}  // namespace sk
