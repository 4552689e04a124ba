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

// Register tiles: R rows x G heads of dot-product accumulators, CC chunks of 16 latent values x G heads of output
// accumulators; about 24 of the 32 zmm registers, so each load feeds several FMAs.
constexpr int tile_of(int g) { return std::max(1, std::min(4, 24 / g)); }

// p[g][b0 + r] = scale * q[g] . rows[r] for R consecutive rows (row chunks loaded once for all G heads, each q chunk
// once for all R rows).
template <int G, int R>
MF_ATTEND_TARGET inline void score_rows(const float* q, int64_t ldq, const float* r0, int64_t row, __mmask16 row_tail,
                                        float scale, float (*p)[kBlock], int b0) {
    __m512 acc[R][G];
    for (int r = 0; r < R; ++r)
        for (int g = 0; g < G; ++g) acc[r][g] = _mm512_setzero_ps();
    for (int64_t c = 0; c < row; c += 16) {
        const __mmask16 k = c + 16 < row ? __mmask16(0xffff) : row_tail;
        __m512 rv[R];
        for (int r = 0; r < R; ++r) rv[r] = _mm512_maskz_loadu_ps(k, r0 + r * row + c);
        for (int g = 0; g < G; ++g) {
            const __m512 qv = _mm512_maskz_loadu_ps(k, q + g * ldq + c);
            for (int r = 0; r < R; ++r) acc[r][g] = _mm512_fmadd_ps(qv, rv[r], acc[r][g]);
        }
    }
    for (int r = 0; r < R; ++r)
        for (int g = 0; g < G; ++g) p[g][b0 + r] = _mm512_reduce_add_ps(acc[r][g]) * scale;
}

// o[g][c0 .. c0 + 16 CC) += sum_b p[g][b] * rows[b][same] over the block's nb rows.
template <int G, int CC>
MF_ATTEND_TARGET inline void accumulate_chunks(float* o, int64_t ldo, const float* blk, int64_t row, int nb,
                                               const float (*p)[kBlock], int64_t c0, __mmask16 last) {
    __m512 acc[CC][G];
    for (int cc = 0; cc < CC; ++cc)
        for (int g = 0; g < G; ++g) {
            const __mmask16 k = cc == CC - 1 ? last : __mmask16(0xffff);
            acc[cc][g] = _mm512_maskz_loadu_ps(k, o + g * ldo + c0 + 16 * cc);
        }
    for (int b = 0; b < nb; ++b) {
        __m512 rv[CC];
        for (int cc = 0; cc < CC; ++cc) {
            const __mmask16 k = cc == CC - 1 ? last : __mmask16(0xffff);
            rv[cc] = _mm512_maskz_loadu_ps(k, blk + b * row + c0 + 16 * cc);
        }
        for (int g = 0; g < G; ++g) {
            const __m512 pv = _mm512_set1_ps(p[g][b]);
            for (int cc = 0; cc < CC; ++cc) acc[cc][g] = _mm512_fmadd_ps(pv, rv[cc], acc[cc][g]);
        }
    }
    for (int cc = 0; cc < CC; ++cc)
        for (int g = 0; g < G; ++g) {
            const __mmask16 k = cc == CC - 1 ? last : __mmask16(0xffff);
            _mm512_mask_storeu_ps(o + g * ldo + c0 + 16 * cc, k, acc[cc][g]);
        }
}

template <int G>
MF_ATTEND_TARGET void attend_group(const float* q, int64_t ldq, const float* rows, int64_t row, int64_t ctx,
                                   int64_t kv_lora, float scale, float* o, int64_t ldo) {
    constexpr int T = tile_of(G);
    float mx[G], sum[G];
    alignas(64) float p[G][kBlock];
    for (int g = 0; g < G; ++g) {
        mx[g] = -std::numeric_limits<float>::infinity();
        sum[g] = 0.0f;
        std::fill(o + g * ldo, o + g * ldo + kv_lora, 0.0f);
    }
    // Masks of the last (possibly partial) chunk of a cache row and of an output row.
    const int64_t o_chunks = (kv_lora + 15) / 16;
    const __mmask16 row_tail = tail_mask(row - (row - 1) / 16 * 16), o_tail = tail_mask(kv_lora - (o_chunks - 1) * 16);
    for (int64_t t0 = 0; t0 < ctx; t0 += kBlock) {
        const int nb = int(std::min<int64_t>(kBlock, ctx - t0));
        const float* blk = rows + t0 * row;
        // Scores of the block, T rows at a time.
        int b = 0;
        for (; b + T <= nb; b += T) score_rows<G, T>(q, ldq, blk + b * row, row, row_tail, scale, p, b);
        for (; b < nb; ++b) score_rows<G, 1>(q, ldq, blk + b * row, row, row_tail, scale, p, b);
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
                for (int64_t c = 0; c < kv_lora; c += 16) {
                    const __mmask16 k = c + 16 <= kv_lora ? __mmask16(0xffff) : o_tail;
                    _mm512_mask_storeu_ps(og + c, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, og + c), va));
                }
            }
            sum[g] += _mm512_reduce_add_ps(e);
            mx[g] = m_new;
        }
        // o[g] += sum_b p[g][b] * c_kv[b], T chunks of 16 at a time; the last chunk may be partial.
        int64_t ch = 0;
        for (; ch + T < o_chunks; ch += T) accumulate_chunks<G, T>(o, ldo, blk, row, nb, p, 16 * ch, 0xffff);
        for (; ch < o_chunks; ++ch)
            accumulate_chunks<G, 1>(o, ldo, blk, row, nb, p, 16 * ch, ch == o_chunks - 1 ? o_tail : __mmask16(0xffff));
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
