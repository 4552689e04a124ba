// MLA decode, Hopper "P V first" schedule (config producer_consumer 2; sm_90a, K tiles by TMA, 64-token tiles,
// 2 stages). Same contract as mla_decode_wgmma<> with tma 1 (mla_decode_wgmma.cuh): grid (splits, head blocks of
// 64, rows), MlaDecodeParams with the cache tensor map, normalised partials + log2-sum-exp, or the final rows with
// one split.
//
// One CTA = one split x 64 heads x one query row; 2 warpgroups (256 threads), one CTA per SM, Q in shared memory
// (SS wgmma). Warpgroup 0 produces P one tile ahead of the P V: in its pass j it issues P V(j - 1) for its O half
// (cols 0..255), waits for tile j, issues the first 12 of S(j) = Q K(j)^T's 36 wgmma m64n64k16, waits for the P V
// (the older wgmma group), releases tile j - 1, issues the rest of S(j), waits for it and does the online softmax
// of tile j. P(j) (bf16) goes into column block 8 of tile j's own stage (the rope columns, dead once S(j) is
// done), alpha(j) next to it; "P(j) ready" is an mbarrier. Warpgroup 1 (cols 256..511): per tile, wait for P(j)
// ready, rescale, P V(j) (on the tensor cores beside warpgroup 0's P V(j) and S(j + 1)), release; then its thread
// 128 refills that stage with tile j + 2 once warpgroup 0 released it too (off warpgroup 0's critical path).
// Against the tma 1 kernel (one __syncthreads-separated sequence S, softmax, P V per tile): the tensor cores get
// P V(j - 1) and S(j) in one stream, the P buffer is gone (P in the rope block), and the stage of tile j - 1 is
// released after P V(j - 1), which runs first, so that the refill (tile j + 1) has S(j) + softmax(j) to land: 2
// stages suffice (the seesaw kernel released a stage only after a softmax, and waited for its copies).
// H200, batch 64 at 32K, cycles per tile (session 5): P V(j - 1) issued + tile wait 388, S's first k-steps until
// the P V is done 985, the rest of S 1002, softmax 667 (3.0k; the tma 1 kernel 3.4k): the tensor cores are busy
// ~2.2k of it and idle in the softmax. HALVES (more time for the refill to land) gained nothing: 3.02k.
// Shared memory (1024-byte aligned, 128-byte swizzle): Q [9][64][128]; 2 K stages [9][64][128]; alpha [2][64]
// by stage, row sums [64]; mbarriers full [2], empty [2] (8 warps), ready [2] (warpgroup 0's 4 warps).
// ptxas: every wgmma group is committed and waited unconditionally (tile 0's S before the loop, the last P V
// after it), so that ptxas does not serialize the wgmmas (see mla_decode_seesaw.cuh).
#pragma once
#include "bf16.cuh"
#include "grid_dependency.cuh"
#include "mla_cycle_profile.cuh"
#include "mla_decode.cuh"         // mla_split_tiles, mla_zero_rows
#include "mla_decode_seesaw.cuh"  // sw128, mbar_arrive_warp, warpgroup_sync, mla_pv_rope_p
#include "mla_params.cuh"
#include "mla_split_rows.cuh"  // mla_split_rows_store
#include "mla_wgmma_epilogue.cuh"
#include "mla_wgmma_softmax.cuh"
#include "mma_sm80.cuh"
#include "tma_sm90.cuh"
#include "wgmma_sm90.cuh"

namespace mf {

template <int LATENT, int ROPE>
struct MlaPvFirstSmem {
    static constexpr int D = LATENT + ROPE;
    static constexpr int q_bytes = (D / 64) * 64 * 128;
    static constexpr int k_bytes = (D / 64) * 64 * 128;  // one stage: 64 tokens
    static constexpr int row_bytes = 3 * 64 * 4;         // alpha [2], row sums
    static constexpr int bar_bytes = 80;  // full [2], empty [2], ready [2], full_hi [2] (HALVES), 8 bytes each
    static constexpr int align_slack = 1024;
    static constexpr int total = align_slack + q_bytes + 2 * k_bytes + row_bytes + bar_bytes;
};

// PT, PDL, DPDL: as mla_decode_wgmma<>. PROF slots (thread 0 = warpgroup 0, thread 128 = warpgroup 1): prologue,
// P V(j - 1) issued and tile j waited for (thread 0) or P-ready wait (thread 128), the rest of S issued and
// waited for after the P V (thread 0), softmax and P (thread 0), S's first k-steps issued and the P V waited
// for (thread 0) or refill (thread 128), P V (thread 128; thread 0: the last tile's),
// epilogue, tiles.
// HALVES (config producer_consumer 3): each tile arrives in two halves with their own full barriers. The high
// half (latent blocks 4..7, which only warpgroup 1's P V reads after S) is refilled by thread 128 as soon as its
// own P V is done, without waiting for warpgroup 0; the low half (blocks 0..3 and the rope block, where P sits)
// once both released the stage, as before. S(j) goes through the high half first (its 16 k-steps are the ones
// issued with P V(j - 1)), then the low half, which gets ~1.3k more cycles to land.
// FAST (config softmax_fast 1): the softmax of kernels/mla_wgmma_softmax.cuh with one ex2.approx.ftz per element, a
// tree row max and stmatrix for P (H100, session 6: 0.98x / 0.99x the time at 64 x 8K / 32K; the large-batch config).
template <int HEADS, int LATENT, int ROPE, int PAGE, class PT, bool PDL, bool DPDL, bool PROF, bool HALVES = false,
          bool FAST = false>
__device__ __forceinline__ void mla_decode_pvfirst(const MlaDecodeParams& p) {
    if constexpr (DPDL) griddep_wait();
    if constexpr (PDL) griddep_launch_dependents();
    MlaCycleProfile<PROF> prof;
    constexpr int TILE = 64, D = LATENT + ROPE, HB = 64, NB = D / 64, KS = D / 16;
    // S(j)'s k-steps issued with P V(j - 1), before warpgroup 0 waits for that P V: the rest go out after the
    // release of tile j - 1. All 36 before the wait held the release back by S's whole issue time (H100
    // profile: ~1.9k cycles into the tile, and the next tile waited ~1.1k for its refill); 12 k-steps (384
    // cycles of tensor work) cover the wait and the release
    constexpr int KS_EARLY = 12;
    constexpr int H0 = LATENT / 128, H1 = LATENT / 64;  // HALVES: the high half is column blocks [H0, H1)
    using Smem = MlaPvFirstSmem<LATENT, ROPE>;
    static_assert(LATENT == 512, "each warpgroup's O half is one m64n256 accumulator");
    static_assert(ROPE == 64, "P (64 heads x 64 tokens bf16) takes the place of exactly one 64-column rope block");
    static_assert(PAGE % TILE == 0, "TMA boxes of one page: the page must be a multiple of the tile");
    static_assert(64 * (LATENT * 4 + 32) <= Smem::q_bytes + 2 * Smem::k_bytes,
                  "the output rows are staged over the Q and K buffers");

    extern __shared__ __align__(1024) unsigned char smem_raw[];
    unsigned char* smem = smem_raw + ((1024u - (smem_addr(smem_raw) & 1023u)) & 1023u);
    unsigned char* sQ = smem;
    unsigned char* sK = sQ + Smem::q_bytes;
    float* s_alpha = reinterpret_cast<float*>(sK + 2 * Smem::k_bytes);  // [2][HB] by stage
    float* red_sum = s_alpha + 2 * HB;                                   // [HB]
    const unsigned bar_full = smem_addr(red_sum + HB), bar_empty = bar_full + 16, bar_ready = bar_empty + 16;
    const unsigned bar_full_hi = bar_ready + 16;  // HALVES: full covers the low half only

    const int split = blockIdx.x, head0 = blockIdx.y * HB, b = blockIdx.z;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wg = warp >> 2, g = lane >> 2, t = lane & 3;
    const int row0 = (warp & 3) * 16 + g;  // this thread's rows: row0 and row0 + 8 (S, P and O)

    const int len = p.seq_lens[b];
    const MlaSplitTiles cut = mla_split_tiles<TILE>(len, p.num_splits, split);
    const int t_begin = cut.t_begin, t_end = cut.t_end, n_tiles = cut.n_tiles;
    const size_t part_row = (size_t)b * HEADS;
    const bool direct = p.num_splits == 1 && p.out != nullptr;
    if (n_tiles == 0) {
        mla_empty_split<HEADS, LATENT, HB>(p, part_row, head0, split, direct, tid);
        return;
    }

    const int* table = p.block_table + (size_t)b * p.block_table_stride;
    // tile i at cache page `page` into its stage (one thread): all of it, or (HALVES) its low half (hi false) or
    // its high half (hi true)
    auto issue_tile = [&](int i, int page, bool hi = false) {
        const int tok0 = t_begin + i * TILE;
        const int row = page * PAGE + tok0 % PAGE;
        const unsigned full = (hi ? bar_full_hi : bar_full) + 8 * (i & 1);
        const unsigned dst = smem_addr(sK + (i & 1) * Smem::k_bytes);
        mbar_arrive_expect_tx(full, HALVES ? (hi ? H1 - H0 : NB - (H1 - H0)) * (TILE * 128) : Smem::k_bytes);
        for (int cb = 0; cb < NB; ++cb)
            if (!HALVES || hi == (cb >= H0 && cb < H1))
                tma_load_2d(dst + cb * (TILE * 128), &p.kv_map, cb * 64, row, full);
    };
    if (tid == 0) {
        tma_prefetch_map(&p.kv_map);
        for (int st = 0; st < 2; ++st) {
            mbar_init(bar_full + 8 * st, 1);
            mbar_init(bar_empty + 8 * st, 8);  // every warp of both warpgroups, once per tile
            mbar_init(bar_ready + 8 * st, 4);  // every warp of warpgroup 0
            if (HALVES) mbar_init(bar_full_hi + 8 * st, 1);
        }
        mbar_init_fence();
        for (int i = 0; i < 2 && i < n_tiles; ++i) {
            const int page = table[(t_begin + i * TILE) / PAGE];
            if (HALVES) issue_tile(i, page, true);
            issue_tile(i, page);
        }
    }
    // thread 128 refills the stages from tile 2 on; page_next: the page of the next tile it issues
    int page_next = tid == 128 && n_tiles > 2 ? table[(t_begin + 2 * TILE) / PAGE] : 0;
    // Q rows of this head block (rows past HEADS are zero), by all threads
    mla_load_q_rows<HEADS, D, HB>(sQ, p.q, part_row, head0, tid);
    cp_async_wait_all();
    fence_proxy_async_smem();
    __syncthreads();  // Q is in shared memory and the mbarriers exist

    const float sl2 = p.scale * 1.4426950408889634f;
    float m_run[2] = {neg_inf(), neg_inf()};  // warpgroup 0: running max of rows row0, row0 + 8 (log2 domain)
    float l_run[2] = {0.f, 0.f};              // warpgroup 0: this thread's partial row sums
    float o[128];
#pragma unroll
    for (int e = 0; e < 128; ++e) o[e] = 0.f;
    const unsigned sKa0 = smem_addr(sK);
    const unsigned long long dq = wgmma_desc_sw128(smem_addr(sQ), 16, 1024);  // Q (A of S), K-major
    prof.mark(0);

    if (wg == 0) {
        float alpha[2] = {1.f, 1.f};  // alpha(j - 1) of this thread's rows, for P V(j - 1)
        // k-steps [k0, k1) of S(j) for the stage of tile j (commits one group); `first` (the first k-steps of
        // S(j)) zeroes s first, and the tail rows of a last partial tile (whose halves both landed)
        auto issue_s = [&](int j, float (&s)[32], int k0, int k1, bool first) {
            const unsigned sKa = sKa0 + (j & 1) * Smem::k_bytes;
            const int valid = t_end - (t_begin + j * TILE);
            if (first && valid < TILE) {  // stale tail rows: zero their latent columns (V) before anyone's P V(j)
                unsigned char* k = sK + (j & 1) * Smem::k_bytes;
                for (int idx = tid; idx < (TILE - valid) * (LATENT / 8); idx += 128) {
                    const int r = valid + idx / (LATENT / 8), c = idx % (LATENT / 8);
                    *reinterpret_cast<uint4*>(k + sw128<TILE>(r, c)) = make_uint4(0, 0, 0, 0);
                }
                fence_proxy_async_smem();  // ordered before this warp's ready arrival
                __syncwarp();
            }
            if (first) {
#pragma unroll
                for (int e = 0; e < 32; ++e) s[e] = 0.f;
                wgmma_pin(s);
            }
            wgmma_fence();
            const unsigned long long db = wgmma_desc_sw128(sKa, 16, 1024);
#pragma unroll
            for (int ks = k0; ks < k1; ++ks)  // column block ks / 4, 32 bytes per k-step within it
                wgmma_m64n64k16_ss(s, wgmma_desc_add(dq, (ks >> 2) * (HB * 128) + (ks & 3) * 32),
                                   wgmma_desc_add(db, (ks >> 2) * (TILE * 128) + (ks & 3) * 32),
                                   !first || ks > k0);
            wgmma_commit();
        };
        // the online softmax of S(j): P(j) into the rope block of its stage, alpha(j) to registers and shared
        // memory; arrives on ready[j % 2]
        auto softmax = [&](int j, float (&s)[32]) {
            warpgroup_sync(1);  // every warp's S(j) is done: no wgmma still reads the rope block P(j) goes into
            unsigned char* sP = sK + (j & 1) * Smem::k_bytes + (NB - 1) * (TILE * 128);
            mla_softmax_tile<FAST>(s, t_end - (t_begin + j * TILE), sl2, m_run, l_run, alpha, sP, row0, lane);
            if (t == 0) {
                s_alpha[(j & 1) * HB + row0] = alpha[0];
                s_alpha[(j & 1) * HB + row0 + 8] = alpha[1];
            }
            fence_proxy_async_smem();
            mbar_arrive_warp(bar_ready + 8 * (j & 1), lane);  // after each lane's proxy fence
        };
        {  // tile 0: S only
            float s[32];
            mbar_wait(bar_full, 0);
            if (HALVES) mbar_wait(bar_full_hi, 0);
            __syncwarp();
            prof.mark(1);
            issue_s(0, s, 0, KS, true);
            wgmma_wait<0>();
            wgmma_pin(s);
            prof.mark(2);
            softmax(0, s);
            prof.mark(3);
        }
        for (int j = 1; j < n_tiles; ++j) {
            float s[32];
            mla_pv_rope_p<NB>(o, alpha, sKa0 + ((j - 1) & 1) * Smem::k_bytes, 0);  // P V(j - 1) first
            // tile j only now: the P V needs tile j - 1 alone, and the tensor cores run it while tile j lands
            const unsigned full = bar_full + 8 * (j & 1), parity = (j >> 1) & 1;
            if (!HALVES || t_end - (t_begin + j * TILE) < TILE) mbar_wait(full, parity);  // (HALVES: a tail to zero)
            if (HALVES) mbar_wait(bar_full_hi + 8 * (j & 1), parity);
            __syncwarp();
            prof.mark(1);
            // the first k-steps keep the tensor cores busy while this warpgroup waits for the P V
            issue_s(j, s, HALVES ? 4 * H0 : 0, HALVES ? 4 * H1 : KS_EARLY, true);
            wgmma_wait<1>();  // P V(j - 1) is done (groups complete in order); S(j)'s first k-steps may still run
            wgmma_pin(o);
            mbar_arrive_warp(bar_empty + 8 * ((j - 1) & 1), lane);  // (warpgroup 1 refills the stage)
            prof.mark(4);
            if constexpr (HALVES) {  // the low half: column blocks 0 .. H0 - 1 and H1 .. NB - 1
                mbar_wait(full, parity);
                __syncwarp();
                issue_s(j, s, 0, 4 * H0, false);
                issue_s(j, s, 4 * H1, KS, false);
            } else {
                issue_s(j, s, KS_EARLY, KS, false);
            }
            wgmma_wait<0>();
            wgmma_pin(s);
            wgmma_pin(o);
            prof.mark(2);
            softmax(j, s);
            prof.mark(3);
        }
        // the last tile's P V
        mla_pv_rope_p<NB>(o, alpha, sKa0 + ((n_tiles - 1) & 1) * Smem::k_bytes, 0);
        wgmma_wait<0>();
        wgmma_pin(o);
        prof.mark(5);
    } else {
        for (int j = 0; j < n_tiles; ++j) {  // P V(j) once P(j) is ready
            mbar_wait(bar_ready + 8 * (j & 1), (j >> 1) & 1);
            mbar_wait(bar_full + 8 * (j & 1), (j >> 1) & 1);  // long complete; orders the tile's bytes for us
            if (HALVES) mbar_wait(bar_full_hi + 8 * (j & 1), (j >> 1) & 1);
            __syncwarp();
            fence_proxy_async_smem();
            prof.mark(1);
            const float a[2] = {s_alpha[(j & 1) * HB + row0], s_alpha[(j & 1) * HB + row0 + 8]};
            mla_pv_rope_p<NB>(o, a, sKa0 + (j & 1) * Smem::k_bytes, 1);
            wgmma_wait<0>();
            wgmma_pin(o);
            mbar_arrive_warp(bar_empty + 8 * (j & 1), lane);
            if (HALVES) warpgroup_sync(2);  // every warp's P V(j) is done: the high half is free (S(j) was before)
            prof.mark(5);
            // tile j + 2 into the stage of tile j once warpgroup 0 released it too (it issued its P V(j) ahead of
            // S(j + 1), so this wait is short); warpgroup 1 has nothing else to do until P(j + 1) is ready
            if (tid == 128 && j + 2 < n_tiles) {
                if (HALVES) issue_tile(j + 2, page_next, true);
                mbar_wait(bar_empty + 8 * (j & 1), (j >> 1) & 1);
                issue_tile(j + 2, page_next);
                if (j + 3 < n_tiles) page_next = table[(t_begin + (j + 3) * TILE) / PAGE];
            }
            __syncwarp();
            prof.mark(4);
        }
    }

    // ---- row sums (warpgroup 0), the log2-sum-exp, then the normalised rows through shared memory (every copy
    // was waited for and every wgmma is done once both warpgroups passed the barrier)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        l_run[h] += __shfl_xor_sync(0xffffffffu, l_run[h], 1);
        l_run[h] += __shfl_xor_sync(0xffffffffu, l_run[h], 2);
    }
    if (wg == 0 && t == 0) {
        red_sum[row0] = l_run[0];
        red_sum[row0 + 8] = l_run[1];
    }
    __syncthreads();
    // m_run: warpgroup 0's
    mla_split_rows_store<HEADS, LATENT, PT>(p, smem, o, red_sum, m_run, row0, wg, t, tid, part_row, head0, split,
                                            direct);
    prof.mark(6);
    prof.store(p.profile, wg * 8, n_tiles, (tid & 127) == 0);
}

}  // namespace mf
