// Online softmax of one 64-head x 64-token score tile S held by a warpgroup as its m64n64 f32 wgmma accumulator
// (the S = Q K^T of the "P V first" family, kernels/mla_decode_pvfirst.cuh and mla_decode_pvlate.cuh): row max,
// alpha = exp2(m_old - m_new), P = exp2(S * scale - m_new) as bf16 into a 64 x 64 block of 128-byte-swizzled
// shared memory (the wgmma A layout of P V), running row sums. Raw scores: the max is scaled by sl2 > 0 afterwards
// and each p is one fma + exp2; only a last partial tile (valid < 64 tokens) masks its tail.
// Thread layout (the accumulator fragment, wgmma_sm90.cuh): warp w % 4 holds rows 16 (w % 4) .. + 15; this
// thread's rows row0 = 16 (w % 4) + g and row0 + 8, columns 8c + 2t, + 1 of chunk c (g = lane / 4, t = lane % 4).
// FAST (config softmax_fast 1): exp2 as one MUFU.EX2 (ex2.approx.ftz: the plain exp2f adds a range test and two
// predicated multiplies per element for results below 2^-126, which a bf16 P of a softmax does not need); the row
// max as a tree (depth 4 instead of a 16-long dependent chain); P stored by stmatrix (4 instructions instead of 16
// 4-byte stores); the row sums in two chains per row. Plain: the session-5 code, unchanged.
// mla_softmax_tile_sync (config softmax_fast 2, 3; the P V late kernels): FAST's softmax with P kept in registers
// until the caller's barrier (every warp's S done: P may overwrite the rope block), which then waits only for the
// slowest warp's exponentials instead of standing before them; 3: a quarter of the exponentials on the FP32 pipe
// (ex2_fma) beside the MUFU's.
#pragma once
#include "bf16.cuh"
#include "mma_sm80.cuh"

namespace mf {

__device__ __forceinline__ float ex2_ftz(float x) {
    float r;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
    return r;
}

// Four 8x8 b16 matrices from registers into shared memory; lane l gives the address of row l % 8 of matrix l / 8
// (the inverse of ldmatrix_x4: register i of lane l holds row l / 4, columns 2 (l % 4), + 1 of matrix i).
__device__ __forceinline__ void stmatrix_x4(unsigned addr, unsigned r0, unsigned r1, unsigned r2, unsigned r3) {
    asm volatile("stmatrix.sync.aligned.m8n8.x4.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(addr), "r"(r0),
                 "r"(r1), "r"(r2), "r"(r3)
                 : "memory");
}

// The masked tail of a last partial tile, the row maxima of rows row0 and row0 + 8 and the online-softmax update:
// m_run, alpha = exp2(m_old - m_new), l_run *= alpha (see mla_softmax_tile).
template <bool FAST>
__device__ __forceinline__ void mla_softmax_rows(float (&s)[32], int valid, float sl2, float (&m_run)[2],
                                                 float (&l_run)[2], float (&alpha)[2], int lane) {
    const int t = lane & 3;
    if (valid < 64) {
#pragma unroll
        for (int e = 0; e < 32; ++e)
            if ((e >> 2) * 8 + 2 * t + (e & 1) >= valid) s[e] = neg_inf();
    }
    float mx[2];
    if constexpr (FAST) {
        float a[8], b[8];  // rows row0 (a) and row0 + 8 (b), pairwise maxima of each chunk
#pragma unroll
        for (int c = 0; c < 8; ++c) {
            a[c] = fmaxf(s[4 * c], s[4 * c + 1]);
            b[c] = fmaxf(s[4 * c + 2], s[4 * c + 3]);
        }
#pragma unroll
        for (int w = 4; w >= 1; w >>= 1)
#pragma unroll
            for (int c = 0; c < w; ++c) {
                a[c] = fmaxf(a[c], a[c + w]);
                b[c] = fmaxf(b[c], b[c + w]);
            }
        mx[0] = a[0];
        mx[1] = b[0];
    } else {
        mx[0] = mx[1] = neg_inf();
#pragma unroll
        for (int e = 0; e < 32; ++e) mx[(e >> 1) & 1] = fmaxf(mx[(e >> 1) & 1], s[e]);
    }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 1));
        mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 2)) * sl2;
        const float m_new = fmaxf(m_run[h], mx[h]);  // finite: every tile has a valid token
        alpha[h] = FAST ? ex2_ftz(m_run[h] - m_new) : exp2f(m_run[h] - m_new);  // m_run = -inf first: alpha 0
        m_run[h] = m_new;
        l_run[h] *= alpha[h];
    }
}

// s: this thread's 32 scores (raw: not yet scaled); valid: tokens of the tile that exist (1..64); sl2: softmax
// scale x log2(e); m_run (log2 domain) and l_run (this thread's partial sums) of rows row0, row0 + 8 are updated;
// alpha gets exp2(m_old - m_new) of both rows; sP: the 64 x 64 bf16 P block (1024-byte aligned, 128-byte swizzle).
template <bool FAST>
__device__ __forceinline__ void mla_softmax_tile(float (&s)[32], int valid, float sl2, float (&m_run)[2],
                                                 float (&l_run)[2], float (&alpha)[2], unsigned char* sP,
                                                 int row0, int lane) {
    mla_softmax_rows<FAST>(s, valid, sl2, m_run, l_run, alpha, lane);
    if constexpr (FAST) {
        // stmatrix: matrices {rows 0-7, chunk c}, {rows 8-15, chunk c}, {rows 0-7, chunk c + 1}, {rows 8-15,
        // chunk c + 1} of this warp's 16 rows; lane l addresses row l % 8 (+ 8 for odd l / 8) of chunk c + l / 16
        const int mi = lane >> 3, r = (row0 & ~15) + (lane & 7) + 8 * (mi & 1);
        const unsigned base = smem_addr(sP) + r * 128, rsw = r & 7;
        float sum[4] = {0.f, 0.f, 0.f, 0.f};  // two chains per row
#pragma unroll
        for (int c = 0; c < 8; c += 2) {
            unsigned v[4];
#pragma unroll
            for (int k = 0; k < 2; ++k) {
                const int e = 4 * (c + k);
                const float p0 = ex2_ftz(fmaf(s[e], sl2, -m_run[0]));
                const float p1 = ex2_ftz(fmaf(s[e + 1], sl2, -m_run[0]));
                const float p2 = ex2_ftz(fmaf(s[e + 2], sl2, -m_run[1]));
                const float p3 = ex2_ftz(fmaf(s[e + 3], sl2, -m_run[1]));
                sum[k] += p0 + p1;
                sum[2 + k] += p2 + p3;
                v[2 * k] = pack_bf16x2(p0, p1);
                v[2 * k + 1] = pack_bf16x2(p2, p3);
            }
            stmatrix_x4(base + (((c + (mi >> 1)) ^ rsw) << 4), v[0], v[1], v[2], v[3]);
        }
        l_run[0] += sum[0] + sum[1];
        l_run[1] += sum[2] + sum[3];
    } else {
        const int t = lane & 3;
#pragma unroll
        for (int c = 0; c < 8; ++c) {
            const float p0 = exp2f(fmaf(s[4 * c], sl2, -m_run[0]));
            const float p1 = exp2f(fmaf(s[4 * c + 1], sl2, -m_run[0]));
            const float p2 = exp2f(fmaf(s[4 * c + 2], sl2, -m_run[1]));
            const float p3 = exp2f(fmaf(s[4 * c + 3], sl2, -m_run[1]));
            l_run[0] += p0 + p1;
            l_run[1] += p2 + p3;
            // tokens 8c + 2t, +1: chunk c, bytes 4t..4t+3 of rows row0 and row0 + 8 (128-byte swizzle)
            const unsigned off = row0 * 128 + ((c ^ (row0 & 7)) << 4) + 4 * t;
            *reinterpret_cast<unsigned*>(sP + off) = pack_bf16x2(p0, p1);
            *reinterpret_cast<unsigned*>(sP + off + 8 * 128) = pack_bf16x2(p2, p3);
        }
    }
}

// O (this thread's 128 fp32 accumulators of an m64n256 tile: rows row0, row0 + 8 alternate in pairs) times the
// rows' softmax rescale alpha.
__device__ __forceinline__ void mla_rescale_o(float (&o)[128], const float (&alpha)[2]) {
#pragma unroll
    for (int e = 0; e < 32; ++e) {
        o[4 * e] *= alpha[0];
        o[4 * e + 1] *= alpha[0];
        o[4 * e + 2] *= alpha[1];
        o[4 * e + 3] *= alpha[1];
    }
}

// 2^x for x <= 0 on the FP32 pipe instead of the MUFU (softmax_fast 3): x = n + f with n = round(x) (the 1.5 x 2^23
// addition leaves n in the low mantissa bits) and f in [-0.5, 0.5]; 2^f by a degree-3 polynomial (relative error
// 7.5e-5, fitted for this file; a bf16 P's half ulp is 2e-3), n added to its exponent field. x is clamped to -125
// (a masked -inf gives ~2^-125 instead of 0; its value rows are zero).
__device__ __forceinline__ float ex2_fma(float x) {
    x = fmaxf(x, -125.f);
    const float t = x + 12582912.f;
    const float f = x - (t - 12582912.f);
    const float q = fmaf(fmaf(fmaf(0.05517153442f, f, 0.24261111021f), f, 0.69326102734f), f, 0.99992805719f);
    // n sits in t's low mantissa bits: shifted as unsigned (a signed shift out of range is undefined before C++20)
    return __int_as_float(__float_as_int(q) + int(unsigned(__float_as_int(t)) << 23));
}

// mla_softmax_tile<true> with P in registers until sync() (the caller's warpgroup barrier) has returned, then
// stored by stmatrix. EMU: exponentials per thread on the FP32 pipe (ex2_fma), 0 or 8 (the odd tokens of the odd
// chunks), the others one MUFU.EX2 each. v: this thread's P as bf16 pairs, v[2c] chunk c of row row0, v[2c + 1] of
// row row0 + 8, i.e. v[4kk .. 4kk + 3] is the A fragment of P V's k-step kk (wgmma_m64n256k16_rs_tb).
template <int EMU, class Sync>
__device__ __forceinline__ void mla_softmax_tile_sync(float (&s)[32], int valid, float sl2, float (&m_run)[2],
                                                      float (&l_run)[2], float (&alpha)[2], unsigned char* sP,
                                                      int row0, int lane, unsigned (&v)[16], Sync&& sync) {
    static_assert(EMU == 0 || EMU == 8, "0 or 8 exponentials per thread on the FP32 pipe");
    mla_softmax_rows<true>(s, valid, sl2, m_run, l_run, alpha, lane);
    float sum[4] = {0.f, 0.f, 0.f, 0.f};  // two chains per row
#pragma unroll
    for (int c = 0; c < 8; ++c) {
        const int e = 4 * c;
        const bool fma_pipe = EMU == 8 && (c & 1);
        const float p0 = ex2_ftz(fmaf(s[e], sl2, -m_run[0]));
        const float p1 = fma_pipe ? ex2_fma(fmaf(s[e + 1], sl2, -m_run[0])) : ex2_ftz(fmaf(s[e + 1], sl2, -m_run[0]));
        const float p2 = ex2_ftz(fmaf(s[e + 2], sl2, -m_run[1]));
        const float p3 = fma_pipe ? ex2_fma(fmaf(s[e + 3], sl2, -m_run[1])) : ex2_ftz(fmaf(s[e + 3], sl2, -m_run[1]));
        sum[c & 1] += p0 + p1;
        sum[2 + (c & 1)] += p2 + p3;
        v[2 * c] = pack_bf16x2(p0, p1);
        v[2 * c + 1] = pack_bf16x2(p2, p3);
    }
    l_run[0] += sum[0] + sum[1];
    l_run[1] += sum[2] + sum[3];
    sync();
    // stmatrix as in mla_softmax_tile<true>: chunks c, c + 1 of this warp's 16 rows per instruction
    const int mi = lane >> 3, r = (row0 & ~15) + (lane & 7) + 8 * (mi & 1);
    const unsigned base = smem_addr(sP) + r * 128, rsw = r & 7;
#pragma unroll
    for (int c = 0; c < 8; c += 2)
        stmatrix_x4(base + (((c + (mi >> 1)) ^ rsw) << 4), v[2 * c], v[2 * c + 1], v[2 * c + 2], v[2 * c + 3]);
}

}  // namespace mf
