// Small AVX-512 loops of the attention and FFN glue: dot products, axpy, RMSNorm, SiLU*up.
#pragma once
#include <cstdint>

namespace mf {

float dot_f32(const float* a, const float* b, int64_t n);
void axpy_f32(float a, const float* x, float* y, int64_t n);  // y += a * x
// dst = src / sqrt(mean(src^2) + eps) * w  (dst may alias src)
void rms_norm_f32(const float* src, const float* w, int64_t n, float eps, float* dst);
void softmax_f32(float* x, int64_t n);  // in place
// dst[i] = silu(gate[i]) * up[i]
void silu_mul_f32(const float* gate, const float* up, float* dst, int64_t n);

}  // namespace mf
