// Split combine inside the Hopper MLA decode (config fused_combine; mla_decode_wgmma.cuh): with a cooperative
// launch every CTA of the grid is resident, so after storing its partial output and log2-sum-exp each CTA meets
// all others on a grid-wide counter and then merges its share of the (row, head) outputs into the final bf16
// rows. Same math as mla_combine / mla_combine_warp (out = the lse-weighted mean of the partials; a split with
// lse -inf wrote no partial and gets weight 0; all splits empty: zeros), without the second launch (H200,
// session 4: 0.3-0.6 us saved at batch 1; the merge itself costs about what the separate combine did, because
// writing and reading back the partials, 8.6 MB at 66 splits, is most of it: tests/bench/cuda_mla_decode_results.md).
//
// Work split: unit u = row * HEADS + head. With at most kMlaCombineWarpMaxSplits partials (or 32 when there are
// more units than CTAs) one warp merges a unit (units spread over the CTAs first, so that at batch 1 every SM
// takes a few); else the whole CTA does:
// warp w takes splits w, w + 8, .. with all of its loads in flight, the 8 warps' sums meet in shared memory.
// Partials and lse are read with ld.global.cg: they were written by other SMs during this launch.
#pragma once
#include "bf16.cuh"
#include "mla_params.cuh"
#include "mla_wgmma_epilogue.cuh"  // mla_unpack16
#include "tma_sm90.cuh"            // global_timer_ns

namespace mf {

__device__ __forceinline__ unsigned ld_acquire_gpu(const unsigned* p) {
    unsigned v;
    asm volatile("ld.acquire.gpu.global.u32 %0, [%1];\n" : "=r"(v) : "l"(p) : "memory");
    return v;
}

__device__ __forceinline__ unsigned ld_relaxed_gpu(const unsigned* p) {
    unsigned v;
    asm volatile("ld.relaxed.gpu.global.u32 %0, [%1];\n" : "=r"(v) : "l"(p) : "memory");
    return v;
}

// Grid barrier on a 32-bit counter that is never reset (CUDA-graph replays need no memset): CTA 0 adds
// 2^31 - (n - 1), every other CTA adds 1, so a launch adds exactly 2^31: bit 31 flips when the last of the n CTAs
// arrives (not before, whatever the order) and the low 31 bits return to zero, where they started (the counter
// is zeroed once at allocation). Launches of any grid size may share the counter if they do not overlap in time.
// Bit 31 as read before this CTA's arrival is the phase before the launch, so the arrival is a release reduction
// that returns nothing (no atomic round trip before polling starts). Warp 0 waits as a whole (all lanes poll the
// same word: one request per poll), so it stays converged into the closing __syncthreads (H200, first draft:
// with lane 0 alone in a spin loop that can trap, the other warps left the barrier before it). A barrier that
// never completes traps after 10 s. prof (profile builds, thread 0): cycles until the arrival is issued.
__device__ __forceinline__ void mla_grid_barrier(unsigned* counter, unsigned n_ctas, bool first,
                                                 long long* prof = nullptr) {
    __syncthreads();  // every thread of this CTA has issued its stores
    if (threadIdx.x < 32) {
        const long long t0 = prof ? clock64() : 0;
        unsigned phase = 0;
        if (threadIdx.x == 0) {
            phase = ld_relaxed_gpu(counter) & 0x80000000u;  // ordered before the arrival by its release
            // the CTA's stores (ordered before by the barrier) become visible first
            asm volatile("red.release.gpu.global.add.u32 [%0], %1;\n" ::"l"(counter),
                         "r"(first ? 0x80000000u - (n_ctas - 1) : 1u)
                         : "memory");
        }
        phase = __shfl_sync(0xffffffffu, phase, 0);
        if (prof && threadIdx.x == 0) prof[0] += clock64() - t0;
        if ((ld_acquire_gpu(counter) & 0x80000000u) == phase) {
            const unsigned long long t_start = global_timer_ns();
            while ((ld_acquire_gpu(counter) & 0x80000000u) == phase)
                if (global_timer_ns() - t_start > 10000000000ull) __trap();
        }
        __syncwarp();
    }
    __syncthreads();
}

// fused_combine 3: no grid barrier. Each decode CTA f = (row * head blocks + head block) * num_splits + split
// stores its partial and lse, then releases its ready flag grid_sync[kMlaReadyFlags + kMlaReadyFlagStride f] =
// mla_ready_value(epoch);
// the merging warps load every split's rows as soon as its flag shows (those of the early CTAs while the late ones
// still compute: the skew of the grid, ~1-1.5 us at batch 1, overlaps the merge's reads). The epoch tells this
// launch's flags from older ones: the 64-bit word at grid_sync[2] (mla_epoch_counter) counts launches in bits
// 16..63 (CTA 0 adds 2^16 - (n - 1), the others 1: bits 16.. step when the last CTA arrives, the low 16 bits return
// to 0), read by each CTA at its start, before its own arrival, so it is the count of the launches before this one.
// A flag holds 31 bits of it (a stale flag could match only after 2^31 launches; the 16 bits of a 32-bit counter,
// session 5, after 65536).
__device__ __forceinline__ unsigned long long* mla_epoch_counter(unsigned* grid_sync) {
    return reinterpret_cast<unsigned long long*>(grid_sync + 2);  // 8-byte aligned: the buffer is
}

// The ready flag of the launch whose epoch counter read `epoch_word` at its start.
__device__ __forceinline__ unsigned mla_ready_value(unsigned long long epoch_word) {
    return 0x80000000u | (unsigned)((epoch_word >> 16) & 0x7fffffffu);  // never 0 (the zeroed flags)
}

__device__ __forceinline__ unsigned long long ld_relaxed_gpu_u64(const unsigned long long* p) {
    unsigned long long v;
    asm volatile("ld.relaxed.gpu.global.u64 %0, [%1];\n" : "=l"(v) : "l"(p) : "memory");
    return v;
}

// Releases this CTA's ready flag (`want`: mla_ready_value of this launch) and counts its arrival on the epoch.
__device__ __forceinline__ void mla_ready_arrive(const MlaDecodeParams& p, unsigned want, unsigned n_ctas,
                                                 bool first) {
    __syncthreads();  // every thread of this CTA has issued its stores
    if (threadIdx.x == 0) {
        if ((int)blockIdx.x < p.num_splits) {  // (merge helpers store nothing)
            unsigned* flag =
                p.grid_sync + kMlaReadyFlags +
                kMlaReadyFlagStride * ((blockIdx.z * gridDim.y + blockIdx.y) * (unsigned)p.num_splits + blockIdx.x);
            asm volatile("st.release.gpu.global.u32 [%0], %1;\n" ::"l"(flag), "r"(want) : "memory");
        }
        asm volatile("red.relaxed.gpu.global.add.u64 [%0], %1;\n" ::"l"(mla_epoch_counter(p.grid_sync)),
                     "l"(first ? 0x10000ull - (n_ctas - 1) : 1ull)
                     : "memory");
    }
}

// Waits until `flag` shows `want`, then orders this thread's later loads after the flag's release (relaxed polls,
// one fence: an acquire load per poll would hold back the loads behind it). Traps after 10 s.
__device__ __forceinline__ void mla_ready_wait(const unsigned* flag, unsigned want) {
    if (ld_relaxed_gpu(flag) != want) {
        const unsigned long long t_start = global_timer_ns();
        while (ld_relaxed_gpu(flag) != want) {
            __nanosleep(64);
            if (global_timer_ns() - t_start > 10000000000ull) __trap();
        }
    }
    asm volatile("fence.acq_rel.gpu;\n" ::: "memory");
}

// config tile_claim: the tile counter of (row b, head block y) = grid_sync[kMlaTileClaims + kMlaReadyFlagStride
// (b * head blocks + y)] (one per 128-byte line), zero between launches: each fused launch sets its counters back
// after its grid barrier (mla_fused_combine), when no CTA claims any more.
__device__ __forceinline__ unsigned* mla_tile_claim_counter(unsigned* grid_sync, unsigned block) {
    return grid_sync + kMlaTileClaims + kMlaReadyFlagStride * block;
}

// Splits of row b that hold tokens (the first ones: mla_split_tiles); the rest wrote no partial, so their rows
// are not even loaded (a graph captured for a long context runs short ones with most splits empty). seq_lens[b]
// was read by this CTA already when b is its own row: an L1 hit at batch 1. CLAIM (config tile_claim): split s
// holds a tile when s < the row's tiles (its first fixed tile is s).
template <int TILE, bool CLAIM = false>
__device__ __forceinline__ int mla_live_splits_of(const MlaDecodeParams& p, int len) {
    const int tiles = (len + TILE - 1) / TILE;
    if constexpr (CLAIM) return min(p.num_splits, tiles);
    const int per_split = (tiles + p.num_splits - 1) / p.num_splits;
    return per_split > 0 ? min(p.num_splits, (tiles + per_split - 1) / per_split) : 0;
}

template <int TILE, bool CLAIM = false>
__device__ __forceinline__ int mla_live_splits(const MlaDecodeParams& p, unsigned b) {
    return mla_live_splits_of<TILE, CLAIM>(p, p.seq_lens[b]);
}

// Which latent columns a lane owns in the merge. COAL 0: CPL consecutive columns from CPL lane on, so each of
// its VPL 16-byte loads takes half of a 32-byte sector and the warp's two loads of a row fetch every sector
// twice (with .cg loads nothing merges them). COAL 1 (config merge_loads): chunk v of a lane is the E = 16 /
// sizeof(PT) columns from v 32 E + lane E on: one load instruction of the warp reads 512 contiguous bytes, each
// sector once. Column of the lane's accumulator j = v E + e:
template <class PT, bool COAL, int CPL>
__device__ __forceinline__ int mla_merge_column(int lane, int j) {
    constexpr int E = 16 / (int)sizeof(PT);
    return COAL ? (j / E) * 32 * E + lane * E + j % E : lane * CPL + j;
}

// B splits' partial rows of one lane (VPL 16-byte loads each): splits s0 + step u, u < B; past n: zeros. `src`:
// the unit's split 0 row plus the lane's first column (mla_merge_column(lane, 0)). The loads do not wait for the
// weights (a split without tokens left garbage there: its weight 0 keeps it out of the sum).
template <int LATENT, class PT, bool COAL, int B, int VPL>
__device__ __forceinline__ void mla_fused_load(float4 (&raw)[B][VPL], const PT* src, int s0, int step, int n) {
#pragma unroll
    for (int u = 0; u < B; ++u) {
        const int s = s0 + step * u;
#pragma unroll
        for (int v = 0; v < VPL; ++v)
            raw[u][v] = s < n ? __ldcg(reinterpret_cast<const float4*>(src + (size_t)s * LATENT) + v * (COAL ? 32 : 1))
                              : make_float4(0.f, 0.f, 0.f, 0.f);
    }
}

// As mla_fused_load, each split once its ready flag (flags[kMlaReadyFlagStride s]) shows `want` (fused_combine 3):
// all pending flags are polled together (relaxed; a poll that finds none backs off for ~64 ns, the pollers of a
// flag are the ~128 warps merging its head block), one fence follows a poll that found new ones, then their rows
// are requested.
template <int LATENT, class PT, bool COAL, int B, int VPL>
__device__ __forceinline__ void mla_fused_load_ready(float4 (&raw)[B][VPL], const PT* src, const unsigned* flags,
                                                     unsigned want, int s0, int step, int n) {
    unsigned pending = 0;
#pragma unroll
    for (int u = 0; u < B; ++u) {
#pragma unroll
        for (int v = 0; v < VPL; ++v) raw[u][v] = make_float4(0.f, 0.f, 0.f, 0.f);
        if (s0 + step * u < n) pending |= 1u << u;
    }
    const unsigned long long t_start = global_timer_ns();
    while (pending != 0u) {
        unsigned f[B];
#pragma unroll
        for (int u = 0; u < B; ++u)
            f[u] = (pending >> u) & 1u ? ld_relaxed_gpu(flags + kMlaReadyFlagStride * (s0 + step * u)) : 0u;
        unsigned ready = 0;
#pragma unroll
        for (int u = 0; u < B; ++u)
            if (f[u] == want) ready |= 1u << u;
        if (ready == 0u) {
            __nanosleep(64);
            if (global_timer_ns() - t_start > 10000000000ull) __trap();
            continue;
        }
        asm volatile("fence.acq_rel.gpu;\n" ::: "memory");
        pending &= ~ready;
#pragma unroll
        for (int u = 0; u < B; ++u)
            if ((ready >> u) & 1u)
#pragma unroll
                for (int v = 0; v < VPL; ++v)
                    raw[u][v] = __ldcg(reinterpret_cast<const float4*>(src + (size_t)(s0 + step * u) * LATENT) +
                                       v * (COAL ? 32 : 1));
    }
}

// acc += w[u] * raw[u] over the splits with a non-zero weight (w is the same in all lanes: no divergence).
template <class PT, int B, int VPL, int CPL>
__device__ __forceinline__ void mla_fused_accumulate(float (&acc)[CPL], const float4 (&raw)[B][VPL],
                                                     const float (&w)[B]) {
    constexpr int E = 16 / (int)sizeof(PT);
#pragma unroll
    for (int u = 0; u < B; ++u)
        if (w[u] != 0.f) {
#pragma unroll
            for (int v = 0; v < VPL; ++v) {
                float x[E];
                mla_unpack16<PT>(raw[u][v], x);
#pragma unroll
                for (int e = 0; e < E; ++e) acc[v * E + e] += w[u] * x[e];
            }
        }
}

// One warp merges unit `row` (n <= 32 partials): lane l owns latent columns CPL l .. + CPL - 1. The first B
// splits' rows are loaded together with the lse values (one round trip), the rest B at a time.
// READY (fused_combine 3): each split's rows and lse are read once its ready flag (flags[kMlaReadyFlagStride s])
// shows `want`.
template <int LATENT, class PT, bool COAL, bool READY = false>
__device__ __forceinline__ void mla_fused_combine_warp(const MlaDecodeParams& p, size_t row, int live, int lane,
                                                       long long* t_first, const unsigned* flags = nullptr,
                                                       unsigned want = 0) {
    constexpr int CPL = LATENT / 32;                  // columns per lane
    constexpr int VPL = CPL * (int)sizeof(PT) / 16;   // 16-byte loads per lane and split
    constexpr int B = sizeof(PT) == 2 ? 16 : 8;       // splits loaded before the first is used (bf16: all)
    static_assert(CPL % 8 == 0, "whole 16-byte bf16 stores per lane");
    const int n = p.num_splits;
    const PT* src = reinterpret_cast<const PT*>(p.o_part) + row * n * LATENT + mla_merge_column<PT, COAL, CPL>(lane, 0);
    float l = neg_inf();
    float4 raw[B][VPL];
    if constexpr (READY) {
        mla_fused_load_ready<LATENT, PT, COAL>(raw, src, flags, want, 0, 1, live);
        if (lane < live) {
            mla_ready_wait(flags + kMlaReadyFlagStride * lane, want);
            l = __ldcg(p.lse_part + row * n + lane);
        }
    } else {
        l = lane < n ? __ldcg(p.lse_part + row * n + lane) : neg_inf();
        mla_fused_load<LATENT, PT, COAL>(raw, src, 0, 1, live);
    }
    const float m = warp_max(l);
    const float w_own = l == neg_inf() ? 0.f : exp2f(l - m);
    const float wsum = warp_sum(w_own);
    float acc[CPL];
#pragma unroll
    for (int c = 0; c < CPL; ++c) acc[c] = 0.f;
    for (int s0 = 0;;) {
        float w[B];
#pragma unroll
        for (int u = 0; u < B; ++u) {
            w[u] = __shfl_sync(0xffffffffu, w_own, (s0 + u) & 31);
            if (s0 + u >= n) w[u] = 0.f;
        }
        mla_fused_accumulate<PT>(acc, raw, w);
        if (t_first && *t_first == 0) *t_first = clock64();
        s0 += B;
        if (s0 >= live) break;
        if constexpr (READY)
            mla_fused_load_ready<LATENT, PT, COAL>(raw, src, flags, want, s0, 1, live);
        else
            mla_fused_load<LATENT, PT, COAL>(raw, src, s0, 1, live);
    }
    const float inv = wsum > 0.f ? 1.f / wsum : 0.f;
    if constexpr (COAL && sizeof(PT) == 4) {  // chunk v: 4 columns, one 8-byte store of 4 bf16
#pragma unroll
        for (int v = 0; v < VPL; ++v)
            *reinterpret_cast<uint2*>(p.out + row * LATENT + mla_merge_column<PT, COAL, CPL>(lane, 4 * v)) =
                make_uint2(pack_bf16x2(acc[4 * v] * inv, acc[4 * v + 1] * inv),
                           pack_bf16x2(acc[4 * v + 2] * inv, acc[4 * v + 3] * inv));
    } else {  // 8 consecutive columns per 16-byte store (COAL with bf16 partials: one per chunk)
#pragma unroll
        for (int q = 0; q < CPL / 8; ++q)
            *reinterpret_cast<uint4*>(p.out + row * LATENT + mla_merge_column<PT, COAL, CPL>(lane, 8 * q)) =
                make_uint4(pack_bf16x2(acc[8 * q] * inv, acc[8 * q + 1] * inv),
                           pack_bf16x2(acc[8 * q + 2] * inv, acc[8 * q + 3] * inv),
                           pack_bf16x2(acc[8 * q + 4] * inv, acc[8 * q + 5] * inv),
                           pack_bf16x2(acc[8 * q + 6] * inv, acc[8 * q + 7] * inv));
    }
}

// The 256 threads merge unit `row` (n <= 256 partials). `smem`: (256 + 16 + 8 LATENT) floats of scratch. Warp w
// takes splits w, w + 8, ..: its first B rows are loaded together with the lse values (one round trip for up to
// 8 B splits), the weights meet in shared memory meanwhile.
template <int LATENT, class PT, bool COAL, bool READY = false>
__device__ __forceinline__ void mla_fused_combine_cta(const MlaDecodeParams& p, size_t row, int live,
                                                      unsigned char* smem, long long* t_first,
                                                      const unsigned* flags = nullptr, unsigned want = 0) {
    constexpr int CPL = LATENT / 32;
    constexpr int VPL = CPL * (int)sizeof(PT) / 16;
    constexpr int B = sizeof(PT) == 2 ? 9 : 4;  // splits per warp in flight (66 splits: 9 per warp, one round)
    static_assert(CPL == 16, "8 warps x 2 columns of each lane in the cross-warp sum: LATENT must be 512");
    float* s_w = reinterpret_cast<float*>(smem);  // [256] split weights
    float* s_red = s_w + 256;                     // [8] warp maxima, [8] warp weight sums
    float* s_acc = s_red + 16;                    // [8 warps][CPL][32 lanes]
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int n = p.num_splits;
    const PT* src = reinterpret_cast<const PT*>(p.o_part) + row * n * LATENT + mla_merge_column<PT, COAL, CPL>(lane, 0);
    float l = neg_inf();
    float4 raw[B][VPL];
    if constexpr (READY) {
        mla_fused_load_ready<LATENT, PT, COAL>(raw, src, flags, want, warp, 8, live);
        if (tid < live) {
            mla_ready_wait(flags + kMlaReadyFlagStride * tid, want);
            l = __ldcg(p.lse_part + row * n + tid);
        }
    } else {
        l = tid < n ? __ldcg(p.lse_part + row * n + tid) : neg_inf();
        mla_fused_load<LATENT, PT, COAL>(raw, src, warp, 8, live);
    }
    float m = warp_max(l);
    if (lane == 0) s_red[warp] = m;
    __syncthreads();
#pragma unroll
    for (int w = 0; w < 8; ++w) m = fmaxf(m, s_red[w]);
    const float w_own = l == neg_inf() ? 0.f : exp2f(l - m);
    s_w[tid] = w_own;
    const float ws = warp_sum(w_own);
    if (lane == 0) s_red[8 + warp] = ws;
    __syncthreads();
    float wsum = 0.f;
#pragma unroll
    for (int w = 0; w < 8; ++w) wsum += s_red[8 + w];

    float acc[CPL];
#pragma unroll
    for (int c = 0; c < CPL; ++c) acc[c] = 0.f;
    for (int s0 = warp;;) {
        float w[B];
#pragma unroll
        for (int u = 0; u < B; ++u) w[u] = s0 + 8 * u < n ? s_w[s0 + 8 * u] : 0.f;
        mla_fused_accumulate<PT>(acc, raw, w);
        if (t_first && *t_first == 0) *t_first = clock64();
        s0 += 8 * B;
        if (s0 >= live) break;
        if constexpr (READY)
            mla_fused_load_ready<LATENT, PT, COAL>(raw, src, flags, want, s0, 8, live);
        else
            mla_fused_load<LATENT, PT, COAL>(raw, src, s0, 8, live);
    }
#pragma unroll
    for (int j = 0; j < CPL; ++j) s_acc[(warp * CPL + j) * 32 + lane] = acc[j];
    __syncthreads();
    // thread (warp, lane): the lane's accumulators 2 warp, + 1 (lane-major reads: no bank conflicts), two
    // adjacent columns in both layouts
    const int j0 = 2 * warp;
    float v0 = 0.f, v1 = 0.f;
#pragma unroll
    for (int w = 0; w < 8; ++w) {
        v0 += s_acc[(w * CPL + j0) * 32 + lane];
        v1 += s_acc[(w * CPL + j0 + 1) * 32 + lane];
    }
    const float inv = wsum > 0.f ? 1.f / wsum : 0.f;
    *reinterpret_cast<unsigned*>(p.out + row * LATENT + mla_merge_column<PT, COAL, CPL>(lane, j0)) =
        pack_bf16x2(v0 * inv, v1 * inv);
    __syncthreads();  // the scratch is reused by the next unit
}

// fused_combine 2: the 256 threads merge unit `row` (n <= 256 partials) from shared memory: the live splits'
// rows come in by bulk copies (one per row, counted on an mbarrier) while the weights are computed, instead of
// 16-byte loads through the registers (H200, fc1: ~6k cycles to merge 66 KB per CTA at batch 1 8K). `smem`:
// 4 KB of scratch (weights, sums, the mbarrier at +2048) then n rows. `parity`: this CTA's units so far, mod 2.
template <int LATENT, class PT>
__device__ __forceinline__ void mla_fused_combine_bulk(const MlaDecodeParams& p, size_t row, int live,
                                                       unsigned char* smem, unsigned parity, long long* t_first) {
    constexpr int RB = LATENT * (int)sizeof(PT);  // bytes per partial row
    static_assert(LATENT == 512, "2 columns per thread");
    float* s_w = reinterpret_cast<float*>(smem);  // [256] split weights
    float* s_red = s_w + 256;                     // [8] warp maxima, [8] warp weight sums
    const unsigned bar = smem_addr(smem + 2048);
    unsigned char* rows = smem + 4096;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int n = p.num_splits;
    if (tid == 0 && live > 0) mbar_arrive_expect_tx(bar, (unsigned)(live * RB));
    __syncthreads();  // the barrier expects the bytes before any copy lands
    if (tid < live) {
        asm volatile("fence.proxy.async.global;\n" ::: "memory");  // other CTAs' generic stores, then async reads
        bulk_load_g2s(smem_addr(rows + tid * RB), reinterpret_cast<const PT*>(p.o_part) + (row * n + tid) * LATENT,
                      RB, bar);
    }
    const float l = tid < n ? __ldcg(p.lse_part + row * n + tid) : neg_inf();
    float m = warp_max(l);
    if (lane == 0) s_red[warp] = m;
    __syncthreads();
#pragma unroll
    for (int w = 0; w < 8; ++w) m = fmaxf(m, s_red[w]);
    const float w_own = l == neg_inf() ? 0.f : exp2f(l - m);
    s_w[tid] = w_own;
    const float ws = warp_sum(w_own);
    if (lane == 0) s_red[8 + warp] = ws;
    __syncthreads();
    float wsum = 0.f;
#pragma unroll
    for (int w = 0; w < 8; ++w) wsum += s_red[8 + w];
    if (live > 0) mbar_wait(bar, parity);
    if (t_first && *t_first == 0) *t_first = clock64();
    float v0 = 0.f, v1 = 0.f;  // columns 2 tid, 2 tid + 1
    for (int s = 0; s < live; ++s) {
        const float w = s_w[s];
        if (w == 0.f) continue;
        float a, b;
        if constexpr (sizeof(PT) == 2) {
            const unsigned x = *reinterpret_cast<const unsigned*>(rows + s * RB + 4 * tid);
            a = __uint_as_float(x << 16), b = __uint_as_float(x & 0xffff0000u);
        } else {
            const float2 x = *reinterpret_cast<const float2*>(rows + s * RB + 8 * tid);
            a = x.x, b = x.y;
        }
        v0 += w * a;
        v1 += w * b;
    }
    const float inv = wsum > 0.f ? 1.f / wsum : 0.f;
    *reinterpret_cast<unsigned*>(p.out + row * LATENT + 2 * tid) = pack_bf16x2(v0 * inv, v1 * inv);
    // the rows and the scratch are reused by the next unit (its copies are async-proxy writes)
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
    __syncthreads();
}

// Called by every CTA of the grid (also those whose split had no tokens) once its partial and lse are stored:
// waits for the whole grid, then merges units cta, cta + n_ctas, ... `smem`: the kernel's dynamic shared
// memory, free by now. prof (config profile): cycles added to prof[0] barrier (arrival to release), [1] merge,
// [4] until the arrival is issued (thread 0), [5] from the release to the first partial rows summed.
// BULK (fused_combine 2): CTA units by mla_fused_combine_bulk where `scratch` bytes of `smem` hold all rows, also
// for few partials when no CTA has more than one unit (merge_helpers at batch 1, 1K: 16 rows of 1 KB per CTA).
// COAL (config merge_loads): the register paths read each 512-byte stretch of a row with one warp load
// (mla_merge_column). READY (fused_combine 3): ready flags instead of the barrier; `epoch_slot` (shared memory):
// this launch's ready flag value, mla_ready_value of the epoch counter as thread 0 read it at the CTA's start
// (read here after the arrival's __syncthreads). CLAIM (config tile_claim): the splits took their tiles from the
// (row, head block) counters; CTA x = 0 of each sets its counter back to 0 once all CTAs passed the barrier (every
// claim of this launch came back before its CTA arrived; the next launch is stream-ordered after this one).
// EARLY (config merge_early): the context length of the row of each warp's first unit (the live splits, which the
// row loads wait for) is read before the barrier instead of after its release (seq_lens is not written by the
// launch; after the barrier's memory clobber the read was one more round trip before the first row load).
template <int HEADS, int LATENT, int TILE, class PT, bool BULK = false, int SCRATCH = 0, bool COAL = false,
          bool READY = false, int HPB = 64, bool CLAIM = false, bool EARLY = false>
__device__ __forceinline__ void mla_fused_combine(const MlaDecodeParams& p, unsigned char* smem,
                                                  long long* prof = nullptr, const unsigned* epoch_slot = nullptr) {
    static_assert(!(BULK && READY), "the bulk-copy merge waits at the grid barrier");
    const unsigned n_ctas = gridDim.x * gridDim.y * gridDim.z;
    const unsigned cta = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    const long long t0 = prof ? clock64() : 0;
    // one warp per unit for few partials, or up to 32 when a CTA has several units (they then run side by side)
    auto path = [&](unsigned units, bool bulk) {
        return (p.num_splits <= kMlaCombineWarpMaxSplits && !(bulk && units <= n_ctas)) ||
               (p.num_splits <= 32 && units > n_ctas);
    };
    // EARLY: the row of this warp's first unit and its context length, read before the barrier
    unsigned early_row = ~0u;
    int early_len = 0;
    if constexpr (EARLY) {
        const unsigned units = (unsigned)p.batch * HEADS;
        const bool bulk = BULK && 4096 + p.num_splits * LATENT * (int)sizeof(PT) <= SCRATCH;
        const unsigned early_u = path(units, bulk) ? cta + n_ctas * (threadIdx.x >> 5) : cta;
        if (early_u < units) {
            early_row = early_u / HEADS;
            early_len = p.seq_lens[early_row];
        }
    }
    auto live_of = [&](unsigned u) {
        return EARLY && u / HEADS == early_row ? mla_live_splits_of<TILE, CLAIM>(p, early_len)
                                               : mla_live_splits<TILE, CLAIM>(p, u / HEADS);
    };
    unsigned want = 0;
    if constexpr (READY) {
        __syncthreads();  // thread 0's epoch_slot is visible, every thread of this CTA has issued its stores
        want = *epoch_slot;
        mla_ready_arrive(p, want, n_ctas, cta == 0);
    } else
        mla_grid_barrier(p.grid_sync, n_ctas, cta == 0, prof ? prof + 4 : nullptr);
    static_assert(!(CLAIM && READY), "tile_claim resets its counters after the grid barrier");
    if (CLAIM && blockIdx.x == 0 && threadIdx.x == 0)
        *mla_tile_claim_counter(p.grid_sync, blockIdx.z * gridDim.y + blockIdx.y) = 0u;
    const long long t1 = prof ? clock64() : 0;
    long long t_first = 0;  // profile: the first partial rows are summed
    const unsigned units = (unsigned)p.batch * HEADS;
    // the ready flags of unit u's splits (HPB heads per decode CTA), kMlaReadyFlagStride words apart
    auto flags = [&](unsigned u) {
        return p.grid_sync + kMlaReadyFlags +
               kMlaReadyFlagStride * ((u / HEADS) * gridDim.y + (u % HEADS) / HPB) * (unsigned)p.num_splits;
    };
    const bool bulk = BULK && 4096 + p.num_splits * LATENT * (int)sizeof(PT) <= SCRATCH;
    if (path(units, bulk)) {
        const unsigned warp = threadIdx.x >> 5;
        for (unsigned u = cta + n_ctas * warp; u < units; u += n_ctas * 8)
            mla_fused_combine_warp<LATENT, PT, COAL, READY>(p, u, live_of(u),
                                                            threadIdx.x & 31, prof ? &t_first : nullptr,
                                                            flags(u), want);
    } else if (bulk) {
        // the region held generic-proxy data (staged rows, Q, K): order those accesses before the bulk writes
        asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
        if (threadIdx.x == 0) {
            mbar_init(smem_addr(smem + 2048), 1);
            mbar_init_fence();
        }  // (made visible by the first __syncthreads of the unit)
        unsigned parity = 0;
        for (unsigned u = cta; u < units; u += n_ctas, parity ^= 1u) {
            const int live = live_of(u);
            mla_fused_combine_bulk<LATENT, PT>(p, u, live, smem, parity, prof ? &t_first : nullptr);
            if (live == 0) parity ^= 1u;  // no phase was used
        }
    } else {
        for (unsigned u = cta; u < units; u += n_ctas)
            mla_fused_combine_cta<LATENT, PT, COAL, READY>(p, u, live_of(u), smem,
                                                           prof ? &t_first : nullptr, flags(u), want);
    }
    if (prof) {
        prof[0] += t1 - t0;
        prof[1] += clock64() - t1;
        prof[5] += t_first ? t_first - t1 : 0;
    }
}

}  // namespace mf
