// Split combine for few splits (config combine_warp; host picks it when the partials per head are at most
// kMlaCombineWarpMaxSplits): one warp per (row, head), 8 heads per 256-thread CTA, lane l owns latent columns
// LATENT/32 * l .. +LATENT/32. Same contract as mla_combine in mla_decode.cuh (out = the lse-weighted mean of the
// partials; a split with lse -inf wrote no partial and gets weight 0; all splits empty: zeros).
//
// Why: mla_combine spends a 1024-thread CTA (61 registers each: one CTA per SM) on every (row, head). At batch 8
// (8 splits) that is 1024 CTAs in 8 waves, ~15 us on an H200 for 8 MB of partials; here 128 CTAs, one wave.
// Registers: LATENT/32 fp32 sums + B splits x LATENT/32 loaded values in flight (B = 4).
#pragma once
#include "bf16.cuh"
#include "grid_dependency.cuh"
#include "mla_decode.cuh"  // load_part4
#include "mla_params.cuh"

namespace mf {

template <int HEADS, int LATENT, class PT = float, bool WAIT = false>
__device__ __forceinline__ void mla_combine_warp(const MlaCombineParams& p) {
    if constexpr (WAIT) griddep_wait();
    constexpr int CPL = LATENT / 32;  // columns per lane
    constexpr int B = 4;              // splits loaded before the first is used
    static_assert(CPL % 8 == 0, "whole 16-byte bf16 stores per lane");
    const int lane = threadIdx.x & 31, h = blockIdx.x * 8 + (threadIdx.x >> 5), b = blockIdx.y;
    if (h >= HEADS) return;
    const size_t row = (size_t)b * HEADS + h;
    const int n = p.num_splits;
    const float* lse = p.lse_part + row * n;

    float m = neg_inf();
    for (int s = lane; s < n; s += 32) m = fmaxf(m, lse[s]);
    m = warp_max(m);

    float acc[CPL];
#pragma unroll
    for (int c = 0; c < CPL; ++c) acc[c] = 0.f;
    float wsum = 0.f;
    const PT* src = reinterpret_cast<const PT*>(p.o_part) + row * n * LATENT + lane * CPL;
    for (int s0 = 0; s0 < n; s0 += B) {
        float w[B];
        float4 v[B][CPL / 4];
#pragma unroll
        for (int u = 0; u < B; ++u) {
            const int s = s0 + u;
            const float l = s < n ? lse[s] : neg_inf();
            w[u] = l == neg_inf() ? 0.f : exp2f(l - m);
#pragma unroll
            for (int q = 0; q < CPL / 4; ++q)
                v[u][q] = w[u] != 0.f ? load_part4<PT>(src + (size_t)s * LATENT + 4 * q)
                                      : make_float4(0.f, 0.f, 0.f, 0.f);
        }
#pragma unroll
        for (int u = 0; u < B; ++u) {
            wsum += w[u];
#pragma unroll
            for (int q = 0; q < CPL / 4; ++q) {
                acc[4 * q] += w[u] * v[u][q].x;
                acc[4 * q + 1] += w[u] * v[u][q].y;
                acc[4 * q + 2] += w[u] * v[u][q].z;
                acc[4 * q + 3] += w[u] * v[u][q].w;
            }
        }
    }
    const float inv = wsum > 0.f ? 1.f / wsum : 0.f;
    uint4* dst = reinterpret_cast<uint4*>(p.out + row * LATENT + lane * CPL);
#pragma unroll
    for (int q = 0; q < CPL / 8; ++q)
        dst[q] = make_uint4(pack_bf16x2(acc[8 * q] * inv, acc[8 * q + 1] * inv),
                            pack_bf16x2(acc[8 * q + 2] * inv, acc[8 * q + 3] * inv),
                            pack_bf16x2(acc[8 * q + 4] * inv, acc[8 * q + 5] * inv),
                            pack_bf16x2(acc[8 * q + 6] * inv, acc[8 * q + 7] * inv));
}

}  // namespace mf
