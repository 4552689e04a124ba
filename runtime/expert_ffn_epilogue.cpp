#include "runtime/expert_ffn_epilogue.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

// gcc 12's own _mm512_reduce_* and _mm512_abs_ps read an undefined vector on purpose and warn about it.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#define MF_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))

namespace mf {
namespace {

// exp(x) to about 2 ulp: 2^(x log2 e) split into 2^n (scalef) and a degree-6 polynomial of 2^f, f in [-0.5,
// 0.5].
MF_AVX512 inline __m512 exp_ps(__m512 x) {
    const __m512 t =
        _mm512_mul_ps(_mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.0f)), _mm512_set1_ps(-88.0f)),
                      _mm512_set1_ps(1.44269504088896341f));
    const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 f = _mm512_mul_ps(_mm512_sub_ps(t, n), _mm512_set1_ps(0.693147180559945309f));
    __m512 p = _mm512_set1_ps(1.0f / 720);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

MF_AVX512 inline __m512 dequant(const int32_t* c, float s, int32_t bias, const float* ws, __mmask16 m) {
    const __m512i v = _mm512_sub_epi32(_mm512_maskz_loadu_epi32(m, c), _mm512_set1_epi32(bias));
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(v), _mm512_set1_ps(s)),
                         _mm512_maskz_loadu_ps(m, ws));
}

// g / (1 + exp(-g)) * u; the division as a 14-bit reciprocal and one Newton step (within 2 ulp of the quotient;
// vdivps was the pass's largest cost). exp_ps clamps its argument, so 1 + e stays finite.
MF_AVX512 inline __m512 silu_mul(__m512 g, __m512 u) {
    const __m512 d = _mm512_add_ps(_mm512_set1_ps(1.0f), exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), g)));
    __m512 r = _mm512_rcp14_ps(d);
    r = _mm512_mul_ps(r, _mm512_fnmadd_ps(d, r, _mm512_set1_ps(2.0f)));
    return _mm512_mul_ps(_mm512_mul_ps(g, r), u);
}

// Lanes [0, n) of 16 (all for n >= 16, none for n <= 0).
inline __mmask16 valid_mask(int64_t n) {
    return n >= 16 ? __mmask16(0xffff) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
}

}  // namespace

MF_AVX512 float row_abs_max(const float* src, int64_t k) {
    __m512 amax = _mm512_setzero_ps();
    for (int64_t i = 0; i < k; i += 16) {
        const __mmask16 m = valid_mask(k - i);
        amax = _mm512_max_ps(amax, _mm512_abs_ps(_mm512_maskz_loadu_ps(m, src + i)));
    }
    return _mm512_reduce_max_ps(amax);
}

float quantize_act_row(const float* src, int64_t k, int64_t k_pad, int8_t* dst, int32_t* rowsum,
                       float* group_sums) {
    return quantize_act_row_amax(src, k, k_pad, row_abs_max(src, k), dst, rowsum, group_sums);
}

MF_AVX512 float quantize_act_row_amax(const float* src, int64_t k, int64_t k_pad, float a, int8_t* dst,
                                      int32_t* rowsum, float* group_sums) {
    const float inv = a > 0 ? 127.0f / a : 0.0f;
    const __m512 vinv = _mm512_set1_ps(inv), lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
    __m512i sum = _mm512_setzero_si512();
    for (int64_t i = 0; i < k_pad; i += 16) {
        const int64_t left = std::max<int64_t>(0, k - i);
        const __mmask16 m = valid_mask(left);
        __m512 q = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, src + i), vinv),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        q = _mm512_min_ps(_mm512_max_ps(q, lo), hi);
        const __m512i qi = _mm512_cvtps_epi32(q);
        sum = _mm512_add_epi32(sum, qi);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), _mm512_cvtepi32_epi8(qi));
        if (group_sums) {
            const int32_t part = _mm512_reduce_add_epi32(qi);
            if (i % 32 == 0)
                group_sums[i / 32] = float(part);
            else
                group_sums[i / 32] += float(part);
        }
    }
    *rowsum = _mm512_reduce_add_epi32(sum);
    return a / 127.0f;
}

MF_AVX512 float silu_mul_pairs(const int32_t* c, const float* w_scale, float x_scale, int32_t x_rowsum, int npairs,
                               int n_valid, float* dst) {
    const int32_t bias = 128 * x_rowsum;
    __m512 amax = _mm512_setzero_ps();
    for (int p = 0; p < npairs; ++p) {
        const __m512 g = dequant(c + 32 * p, x_scale, bias, w_scale + 32 * p, 0xffff);
        const __m512 u = dequant(c + 32 * p + 16, x_scale, bias, w_scale + 32 * p + 16, 0xffff);
        const __m512 h = silu_mul(g, u);
        _mm512_storeu_ps(dst + 16 * p, h);
        amax = _mm512_mask_max_ps(amax, valid_mask(n_valid - 16 * p), amax, _mm512_abs_ps(h));
    }
    return _mm512_reduce_max_ps(amax);
}

MF_AVX512 void accumulate_scaled(const int32_t* c, const float* w_scale, float coef, int32_t rowsum,
                                 int64_t n_valid, float* dst) {
    const int32_t bias = 128 * rowsum;
    for (int64_t n = 0; n < n_valid; n += 16) {
        const __mmask16 m = valid_mask(n_valid - n);
        const __m512 v = dequant(c + n, coef, bias, w_scale + n, m);
        _mm512_mask_storeu_ps(dst + n, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, dst + n), v));
    }
}

MF_AVX512 void convert_row_bf16(const float* src, int64_t k, int64_t k_pad, uint16_t* dst) {
    const __m512i bias = _mm512_set1_epi32(0x7fff), one = _mm512_set1_epi32(1);
    for (int64_t i = 0; i < k_pad; i += 16) {
        const int64_t left = std::max<int64_t>(0, k - i);
        const __mmask16 m = valid_mask(left);
        const __m512i u = _mm512_castps_si512(_mm512_maskz_loadu_ps(m, src + i));
        const __m512i r =
            _mm512_add_epi32(u, _mm512_add_epi32(bias, _mm512_and_si512(_mm512_srli_epi32(u, 16), one)));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i),
                            _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16)));
    }
}

MF_AVX512 float silu_mul_pairs_f32(const float* c, float x_scale, int npairs, int n_valid, float* dst) {
    const __m512 s = _mm512_set1_ps(x_scale);
    __m512 amax = _mm512_setzero_ps();
    for (int p = 0; p < npairs; ++p) {
        const __m512 g = _mm512_mul_ps(_mm512_loadu_ps(c + 32 * p), s);
        const __m512 u = _mm512_mul_ps(_mm512_loadu_ps(c + 32 * p + 16), s);
        const __m512 h = silu_mul(g, u);
        _mm512_storeu_ps(dst + 16 * p, h);
        amax = _mm512_mask_max_ps(amax, valid_mask(n_valid - 16 * p), amax, _mm512_abs_ps(h));
    }
    return _mm512_reduce_max_ps(amax);
}

MF_AVX512 void accumulate_f32(const float* c, float coef, int64_t n_valid, float* dst) {
    const __m512 s = _mm512_set1_ps(coef);
    for (int64_t n = 0; n < n_valid; n += 16) {
        const __mmask16 m = valid_mask(n_valid - n);
        const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, c + n), s);
        _mm512_mask_storeu_ps(dst + n, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, dst + n), v));
    }
}

}  // namespace mf
