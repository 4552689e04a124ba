#include "runtime/cpu_mla_head_gemv.hpp"

#include <immintrin.h>

// gcc 12's _mm512_cvtepi32_ps reads an intentionally undefined register: a false -Wmaybe-uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "codegen/x64/pack_bf16.hpp"

#define MF_HEAD_GEMV_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,avx512vnni")))

namespace mf {
namespace {

// The activations of one call: bf16 pairs or u8 quads as 32-bit words, [m][groups]; int8 also a scale per row.
struct GemvScratch {
    std::vector<uint32_t> words;
    std::vector<float> act_scale;
    std::vector<int8_t> q;
};

GemvScratch& gemv_scratch() {
    thread_local GemvScratch s;
    return s;
}

struct BlockArgs {
    const uint32_t* act;  // [mq][lda] words
    int64_t lda;
    const uint32_t* w;    // word (group 0, channel n0) of the head
    int64_t groups, n_pad;
    float* y;             // y[i][n0]
    int64_t ldy;
    int64_t valid;        // channels left from n0 (stores stop there)
    const float* act_scale;  // int8: [mq]
    const float* wscale;     // int8: at n0
    const int32_t* wsum;     // int8: at n0
};

// mq queries x 16 * nz channels: the accumulators stay in registers over the whole reduction.
template <bool kInt8, int MQ, int NZ>
MF_HEAD_GEMV_TARGET void gemv_block(const BlockArgs& a) {
    __m512 accf[MQ][NZ];
    __m512i acci[MQ][NZ];
    for (int i = 0; i < MQ; ++i)
        for (int j = 0; j < NZ; ++j) {
            accf[i][j] = _mm512_setzero_ps();
            acci[i][j] = _mm512_setzero_si512();
        }
    for (int64_t g = 0; g < a.groups; ++g) {
        const uint32_t* wg = a.w + g * a.n_pad;
        __m512i wv[NZ];
        for (int j = 0; j < NZ; ++j) wv[j] = _mm512_loadu_si512(wg + 16 * j);
        for (int i = 0; i < MQ; ++i) {
            const __m512i x = _mm512_set1_epi32(int(a.act[i * a.lda + g]));
            for (int j = 0; j < NZ; ++j) {
                if constexpr (kInt8)
                    acci[i][j] = _mm512_dpbusd_epi32(acci[i][j], x, wv[j]);
                else
                    accf[i][j] = _mm512_dpbf16_ps(accf[i][j], (__m512bh)x, (__m512bh)wv[j]);
            }
        }
    }
    for (int i = 0; i < MQ; ++i)
        for (int j = 0; j < NZ; ++j) {
            const int64_t c0 = 16 * j;
            if (c0 >= a.valid) break;
            const __mmask16 mask = a.valid - c0 >= 16 ? __mmask16(0xffff) : __mmask16((1u << (a.valid - c0)) - 1);
            __m512 v = accf[i][j];
            if constexpr (kInt8) {
                const __m512i s = _mm512_sub_epi32(acci[i][j], _mm512_loadu_si512(a.wsum + c0));
                v = _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(s), _mm512_set1_ps(a.act_scale[i])),
                                  _mm512_loadu_ps(a.wscale + c0));
            }
            _mm512_mask_storeu_ps(a.y + i * a.ldy + c0, mask, v);
        }
}

using BlockFn = void (*)(const BlockArgs&);

template <bool kInt8, int MQ>
constexpr BlockFn block_fn(int nz) {
    return nz == 8 ? gemv_block<kInt8, MQ, 8>
           : nz == 4 ? gemv_block<kInt8, MQ, 4>
           : nz == 2 ? gemv_block<kInt8, MQ, 2>
                     : gemv_block<kInt8, MQ, 1>;
}

template <bool kInt8>
BlockFn pick_block(int mq, int nz) {
    switch (mq) {
        case 1: return block_fn<kInt8, 1>(nz);
        case 2: return block_fn<kInt8, 2>(nz);
        case 3: return block_fn<kInt8, 3>(nz);
        default: return block_fn<kInt8, 4>(nz);
    }
}

MF_HEAD_GEMV_TARGET void bf16_row(const float* x, int64_t k, uint16_t* dst) {
    int64_t j = 0;
    for (; j + 16 <= k; j += 16)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + j), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(x + j)));
    for (; j < k; ++j) dst[j] = float_to_bf16(x[j]);
}

}  // namespace

HeadGemv HeadGemv::pack(std::span<const MatrixSrc> heads, ComputeType type) {
    if (heads.empty()) throw std::invalid_argument("HeadGemv::pack: no heads");
    HeadGemv g;
    g.type_ = type == ComputeType::int8 ? ComputeType::int8 : ComputeType::bf16;
    const bool int8 = g.type_ == ComputeType::int8;
    const int64_t per = int8 ? 4 : 2;
    g.heads_ = int64_t(heads.size());
    g.n_ = heads[0].n;
    g.k_ = heads[0].k;
    g.n_pad_ = (g.n_ + 15) / 16 * 16;
    g.groups_ = (g.k_ + per - 1) / per;
    g.w_ = AlignedBytes(size_t(g.heads_ * g.groups_ * g.n_pad_) * 4);
    if (int8) {
        g.scale_.assign(size_t(g.heads_ * g.n_pad_), 0.0f);
        g.wsum_.assign(size_t(g.heads_ * g.n_pad_), 0);
    }
    std::vector<float> row(size_t(g.k_));
    std::vector<int8_t> q(size_t(g.k_));
    for (int64_t h = 0; h < g.heads_; ++h) {
        const MatrixSrc& s = heads[size_t(h)];
        if (s.n != g.n_ || s.k != g.k_) throw std::invalid_argument("HeadGemv::pack: heads of different shapes");
        if (s.type != SrcType::f32 && s.type != SrcType::bf16)
            throw std::invalid_argument("HeadGemv::pack: only f32 or bf16 sources");
        uint8_t* base = g.w_.data() + size_t(h * g.groups_ * g.n_pad_) * 4;
        for (int64_t c = 0; c < g.n_; ++c) {
            for (int64_t j = 0; j < g.k_; ++j) row[size_t(j)] = matrix_src_value(s, c, j);
            if (!int8) {
                for (int64_t j = 0; j < g.k_; ++j) {
                    const uint16_t b = float_to_bf16(row[size_t(j)]);
                    std::memcpy(base + size_t(((j / per) * g.n_pad_ + c) * 4 + (j % per) * 2), &b, 2);
                }
                continue;
            }
            g.scale_[size_t(h * g.n_pad_ + c)] = quantize_row_int8(row.data(), g.k_, q.data());
            int32_t sum = 0;
            for (int64_t j = 0; j < g.k_; ++j) {
                base[size_t(((j / per) * g.n_pad_ + c) * 4 + j % per)] = uint8_t(q[size_t(j)]);
                sum += q[size_t(j)];
            }
            g.wsum_[size_t(h * g.n_pad_ + c)] = 128 * sum;
        }
    }
    return g;
}

void HeadGemv::forward(int64_t h, const float* x, int64_t ldx, int64_t m, float* y, int64_t ldy) const {
    if (m <= 0) return;
    const bool int8 = type_ == ComputeType::int8;
    GemvScratch& s = gemv_scratch();
    if (s.words.size() < size_t(m * groups_)) s.words.resize(size_t(m * groups_));
    if (int8) {
        if (s.act_scale.size() < size_t(m)) s.act_scale.resize(size_t(m));
        if (s.q.size() < size_t(groups_ * 4)) s.q.resize(size_t(groups_ * 4));
        for (int64_t i = 0; i < m; ++i) {
            std::fill(s.q.begin() + k_, s.q.end(), int8_t(0));
            s.act_scale[size_t(i)] = quantize_row_int8(x + i * ldx, k_, s.q.data());
            auto* u8 = reinterpret_cast<uint8_t*>(s.words.data() + i * groups_);
            for (int64_t j = 0; j < groups_ * 4; ++j) u8[j] = uint8_t(int(s.q[size_t(j)]) + 128);
        }
    } else {
        for (int64_t i = 0; i < m; ++i) {
            auto* b = reinterpret_cast<uint16_t*>(s.words.data() + i * groups_);
            bf16_row(x + i * ldx, k_, b);
            if (k_ % 2) b[k_] = 0;
        }
    }
    const auto* w = reinterpret_cast<const uint32_t*>(w_.data()) + h * groups_ * n_pad_;
    const float* wscale = int8 ? scale_.data() + h * n_pad_ : nullptr;
    const int32_t* wsum = int8 ? wsum_.data() + h * n_pad_ : nullptr;
    for (int64_t i0 = 0; i0 < m;) {
        const int mq = int(std::min<int64_t>(m - i0, 4));
        const int nz_max = mq <= 2 ? 8 : 4;
        for (int64_t n0 = 0; n0 < n_pad_;) {
            const int64_t left = (n_pad_ - n0) / 16;
            const int nz = left >= nz_max ? nz_max : left >= 4 ? 4 : left >= 2 ? 2 : 1;
            BlockArgs a{s.words.data() + i0 * groups_, groups_, w + n0, groups_, n_pad_, y + i0 * ldy + n0, ldy,
                        n_ - n0, int8 ? s.act_scale.data() + i0 : nullptr, int8 ? wscale + n0 : nullptr,
                        int8 ? wsum + n0 : nullptr};
            (int8 ? pick_block<true>(mq, nz) : pick_block<false>(mq, nz))(a);
            n0 += 16 * nz;
        }
        i0 += mq;
    }
}

}  // namespace mf
