// Elementwise math shared by the trainer's kernels (kernels.cc) and the GEMM epilogues (gemm.cc), so a
// fused GELU computes exactly what the standalone GELU kernels compute. Branch-free, so loops over
// these functions vectorise.
#pragma once
#include <cstdint>
#include <cstring>

namespace sk {

// exp(x) with Cephes' expf polynomial (about 1 ulp); branch-free so loops over it vectorise. NaN propagates.
inline float exp_f(float x) {
  float xc = x < -87.3f ? -87.3f : x;
  xc = xc > 88.3f ? 88.3f : xc;
  const float n = (xc * 1.44269504088896341f + 12582912.f) - 12582912.f;  // round to nearest
  float r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.f;
  const std::int32_t bits = (static_cast<std::int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  const float y = p * scale;
  return x != x ? x : y;
}

// tanh(u) = 1 - 2/(exp(2u)+1): absolute error ~1e-7, which is what GELU needs (it adds tanh to 1).
inline float tanh_f(float u) { return 1.f - 2.f / (exp_f(2.f * u) + 1.f); }

constexpr float GELU_SCALE = 0.7978845608028654f;  // sqrt(2/pi)

// GELU (tanh approximation, as GPT-2) at x.
inline float gelu_value(float x) { return 0.5f * x * (1.f + tanh_f(GELU_SCALE * (x + 0.044715f * x * x * x))); }

// The derivative of GELU(tanh) at x, times d.
inline float gelu_grad(float x, float d) {
  const float th = tanh_f(GELU_SCALE * (x + 0.044715f * x * x * x));
  const float sech2 = 1.f - th * th;
  return (0.5f * (1.f + th) + 0.5f * x * sech2 * GELU_SCALE * (1.f + 3.f * 0.044715f * x * x)) * d;
}

}  // namespace sk
