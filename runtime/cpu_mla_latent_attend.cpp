#include "runtime/cpu_mla_latent_attend.hpp"

#include <immintrin.h>

// gcc 12's _mm512_reduce_*_ps read an intentionally undefined register half: a false -Wmaybe-uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#define MF_ATTEND_TARGET __attribute__((target("avx512f,avx512dq")))

namespace mf {
namespace {

constexpr int kBlock = 16;  // cache rows per online-softmax step (one zmm of scores per head)

__mmask16 tail_mask(int64_t n) { return n >= 16 ? __mmask16(0xffff) : __mmask16((1u << n) - 1); }

// exp(x) for x <= 0: x = n ln2 + r with |r| <= ln2 / 2, e^r by its degree-6 Taylor polynomial (relative error
// ~1.2e-7, an ulp), times 2^n; below -87 the result flushes towards 0 (1.6e-38).
MF_ATTEND_TARGET inline __m512 exp_nonpositive(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.0f / 720);
    for (float c : {1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f}) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
    return _mm512_scalef_ps(p, n);
}

template <int G>
MF_ATTEND_TARGET void attend_group(const float* q, int64_t ldq, const float* rows, int64_t row, int64_t ctx,
                                   int64_t kv_lora, float scale, float* o, int64_t ldo) {
    float mx[G], sum[G];
    alignas(64) float p[G][kBlock];
    for (int g = 0; g < G; ++g) {
        mx[g] = -std::numeric_limits<float>::infinity();
        sum[g] = 0.0f;
        std::fill(o + g * ldo, o + g * ldo + kv_lora, 0.0f);
    }
    const __mmask16 row_tail = tail_mask(row % 16), o_tail = tail_mask(kv_lora % 16);
    const int64_t row_full = row / 16 * 16;
    for (int64_t t0 = 0; t0 < ctx; t0 += kBlock) {
        const int nb = int(std::min<int64_t>(kBlock, ctx - t0));
        const float* blk = rows + t0 * row;
        // Scores of the block: one dot product per (row, head), the row chunk loaded once for all heads.
        for (int b = 0; b < nb; ++b) {
            const float* r = blk + b * row;
            __m512 acc[G];
            for (int g = 0; g < G; ++g) acc[g] = _mm512_setzero_ps();
            int64_t c = 0;
            for (; c < row_full; c += 16) {
                const __m512 rv = _mm512_loadu_ps(r + c);
                for (int g = 0; g < G; ++g) acc[g] = _mm512_fmadd_ps(_mm512_loadu_ps(q + g * ldq + c), rv, acc[g]);
            }
            if (c < row) {
                const __m512 rv = _mm512_maskz_loadu_ps(row_tail, r + c);
                for (int g = 0; g < G; ++g)
                    acc[g] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(row_tail, q + g * ldq + c), rv, acc[g]);
            }
            for (int g = 0; g < G; ++g) p[g][b] = _mm512_reduce_add_ps(acc[g]) * scale;
        }
        // Online softmax: p becomes exp(score - running max); earlier sums are rescaled when the max grows.
        const __mmask16 valid = tail_mask(nb);
        for (int g = 0; g < G; ++g) {
            const __m512 s = _mm512_mask_loadu_ps(_mm512_set1_ps(-std::numeric_limits<float>::infinity()), valid, p[g]);
            const float m_new = std::max(mx[g], _mm512_reduce_max_ps(s));
            const __m512 e = _mm512_maskz_mov_ps(valid, exp_nonpositive(_mm512_sub_ps(s, _mm512_set1_ps(m_new))));
            _mm512_store_ps(p[g], e);
            if (m_new > mx[g] && t0 > 0) {
                const float alpha = std::exp(mx[g] - m_new);
                sum[g] *= alpha;
                const __m512 va = _mm512_set1_ps(alpha);
                float* og = o + g * ldo;
                int64_t c = 0;
                for (; c + 16 <= kv_lora; c += 16) _mm512_storeu_ps(og + c, _mm512_mul_ps(_mm512_loadu_ps(og + c), va));
                if (c < kv_lora)
                    _mm512_mask_storeu_ps(og + c, o_tail, _mm512_mul_ps(_mm512_maskz_loadu_ps(o_tail, og + c), va));
            }
            sum[g] += _mm512_reduce_add_ps(e);
            mx[g] = m_new;
        }
        // o[g] += sum_b p[g][b] * c_kv[b], chunk by chunk with the heads' accumulators in registers.
        for (int64_t c = 0; c < kv_lora; c += 16) {
            const __mmask16 k = c + 16 <= kv_lora ? __mmask16(0xffff) : o_tail;
            __m512 acc[G];
            for (int g = 0; g < G; ++g) acc[g] = _mm512_maskz_loadu_ps(k, o + g * ldo + c);
            for (int b = 0; b < nb; ++b) {
                const __m512 rv = _mm512_maskz_loadu_ps(k, blk + b * row + c);
                for (int g = 0; g < G; ++g) acc[g] = _mm512_fmadd_ps(_mm512_set1_ps(p[g][b]), rv, acc[g]);
            }
            for (int g = 0; g < G; ++g) _mm512_mask_storeu_ps(o + g * ldo + c, k, acc[g]);
        }
    }
    for (int g = 0; g < G; ++g) {
        const __m512 inv = _mm512_set1_ps(1.0f / sum[g]);
        float* og = o + g * ldo;
        for (int64_t c = 0; c < kv_lora; c += 16) {
            const __mmask16 k = c + 16 <= kv_lora ? __mmask16(0xffff) : o_tail;
            _mm512_mask_storeu_ps(og + c, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, og + c), inv));
        }
    }
}

}  // namespace

void attend_latent(const float* q, int64_t ldq, int heads, const float* rows, int64_t row, int64_t ctx,
                   int64_t kv_lora, float scale, float* o_lat, int64_t ldo) {
    if (heads < 1 || heads > kLatentAttendMaxHeads || ctx < 1 || kv_lora > row)
        throw std::logic_error("attend_latent: heads, context or row width out of range");
    switch (heads) {
        case 1: return attend_group<1>(q, ldq, rows, row, ctx, kv_lora, scale, o_lat, ldo);
        case 2: return attend_group<2>(q, ldq, rows, row, ctx, kv_lora, scale, o_lat, ldo);
        case 3: return attend_group<3>(q, ldq, rows, row, ctx, kv_lora, scale, o_lat, ldo);
        case 4: return attend_group<4>(q, ldq, rows, row, ctx, kv_lora, scale, o_lat, ldo);
        case 5: return attend_group<5>(q, ldq, rows, row, ctx, kv_lora, scale, o_lat, ldo);
        case 6: return attend_group<6>(q, ldq, rows, row, ctx, kv_lora, scale, o_lat, ldo);
        case 7: return attend_group<7>(q, ldq, rows, row, ctx, kv_lora, scale, o_lat, ldo);
        default: return attend_group<8>(q, ldq, rows, row, ctx, kv_lora, scale, o_lat, ldo);
    }
}

}  // namespace mf
