// Vector epilogues of the fused expert FFN (AVX-512): activation quantisation, SiLU(gate)*up, and the
// router-weighted accumulate. Scalar semantics are spelled out on each function; tests compare against them.
#pragma once
#include <cstdint>

namespace mf {

// dst[0..k) = round(src * 127 / max|src|) (as quantize_row_int8), dst[k..k_pad) = 0; *rowsum = sum of dst;
// if group_sums: group_sums[g] = sum of dst over k in [32 g, 32 g + 32) for g < k_pad / 32 (exact in float).
// Returns the scale max|src| / 127.
float quantize_act_row(const float* src, int64_t k, int64_t k_pad, int8_t* dst, int32_t* rowsum,
                       float* group_sums = nullptr);
// The same with amax = max|src[0..k)| already known (e.g. returned by silu_mul_pairs while the row was written).
float quantize_act_row_amax(const float* src, int64_t k, int64_t k_pad, float amax, int8_t* dst, int32_t* rowsum,
                            float* group_sums = nullptr);
// max|src[0..k)| (0 for k = 0).
float row_abs_max(const float* src, int64_t k);

// For pairs p < npairs of 16 channels: c holds [gate 16 | up 16] int32 per pair, w_scale the matching packed
// scales. g = x_scale * w_scale * (c - 128 * x_rowsum) (same for u); dst[16 p + l] = g / (1 + exp(-g)) * u.
// Returns max|dst[0..n_valid)| (the requantisation's amax over this part of the row; n_valid <= 16 npairs).
float silu_mul_pairs(const int32_t* c, const float* w_scale, float x_scale, int32_t x_rowsum, int npairs,
                     int n_valid, float* dst);

// dst[n] += coef * w_scale[n] * (c[n] - 128 * rowsum) for n < n_valid.
void accumulate_scaled(const int32_t* c, const float* w_scale, float coef, int32_t rowsum, int64_t n_valid,
                       float* dst);

// dst[0..k) = src rounded to bf16 (nearest even, as float_to_bf16), dst[k..k_pad) = 0.
void convert_row_bf16(const float* src, int64_t k, int64_t k_pad, uint16_t* dst);

// Float variants for kernels that return sum_k x_q[k] * w[n][k] in float (int4, bf16): g = x_scale * c.
float silu_mul_pairs_f32(const float* c, float x_scale, int npairs, int n_valid, float* dst);
// dst[n] += coef * c[n] for n < n_valid.
void accumulate_f32(const float* c, float coef, int64_t n_valid, float* dst);

}  // namespace mf
