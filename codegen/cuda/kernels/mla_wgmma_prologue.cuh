// The default wgmma kernel's prologue (mla_decode_wgmma.cuh): what happens before its first tile is computed.
//   mla_wgmma_prologue (PRO, thread 128): the descriptor prefetches, the mbarriers (the stages' full ones, or
//     OVL's "P ready" / release pairs; BW's per-box barriers, BW 2: also Q's; CM's receive barrier, armed), then Q's
//     boxes (mla_wgmma_issue_q) unless ET; QOR: the rows of Q no box writes zeroed; a CTA barrier.
//   ET (config early_tiles, PRO 1): the decode runs as a programmatic dependent of the cache append and only a stage
//     whose tile holds the row's token len - 1 (the one the append writes) waits for it: the kernel issues the
//     others before griddepcontrol.wait, mla_wgmma_issue_after_wait Q and the rest after it. ET 2: Q's boxes as
//     without ET (first, in the prologue), only that tile after the wait.
// Barrier addresses and the tile issuer come from the kernel (its lambdas, by reference: passed by value, the
// kernel's code changed); see mla_decode_wgmma.cuh for the layout. The first stages' copies stay in the kernel
// (moved into a function of their own, they changed the default kernel's machine code; session 9).
#pragma once
#include "grid_dependency.cuh"
#include "mla_params.cuh"
#include "mla_wgmma_epilogue.cuh"  // mla_cluster_merge_bytes
#include "mma_sm80.cuh"            // smem_addr
#include "tma_sm90.cuh"

namespace mf {

// Thread 128: Q's D/64 boxes (QROWS rows each) into sQ, counted on bar_q (BW 2: each on its own barrier).
template <int D, int BW, int QROWS, class QBox>
__device__ __forceinline__ void mla_wgmma_issue_q(const MlaDecodeParams& p, unsigned char* sQ, int head0, int b,
                                                  unsigned bar_q, const QBox& bar_qbox) {
    constexpr int HB = 64;
    if (BW != 2) mbar_arrive_expect_tx(bar_q, (D / 64) * QROWS * 128);
    for (int cb = 0; cb < D / 64; ++cb) {
        if (BW == 2) mbar_arrive_expect_tx(bar_qbox(cb), QROWS * 128);
        const unsigned bar = BW == 2 ? bar_qbox(cb) : bar_q;
        tma_load_3d(smem_addr(sQ + cb * (HB * 128)), &p.q_map, cb * 64, head0, b, bar);
    }
}

// PRO: the barriers (thread 128), Q's copy (not with ET 1: after the wait), QOR's zero rows, then a CTA barrier.
template <int LATENT, int D, int STAGES, int BW, int OVL, int CM, int HPB, bool QOR, int ET, class QBox>
__device__ __forceinline__ void mla_wgmma_prologue(const MlaDecodeParams& p, unsigned char* sQ, int tid, bool helper,
                                                   int head0, int b, unsigned bar_full, unsigned bar_q,
                                                   unsigned bar_box0, unsigned bar_recv, unsigned bar_ovl_ready,
                                                   unsigned bar_ovl_empty, const QBox& bar_qbox) {
    constexpr int HB = 64;
    constexpr int QROWS = QOR ? HPB : HB;  // Q rows per box that TMA writes
    if (tid == 128 && !helper) {
        tma_prefetch_map(&p.q_map);
        tma_prefetch_map(&p.kv_map);
        for (int st = 0; st < STAGES; ++st) {
            if constexpr (OVL) {
                mbar_init(bar_ovl_ready + 8 * st, 4);  // warpgroup 0's warps
                mbar_init(bar_ovl_empty + 8 * st, 8);  // every warp
            } else {
                mbar_init(bar_full + 8 * st, 1);
            }
        }
        if constexpr (BW)
            for (int k = 0; k < (STAGES + (BW == 2)) * (D / 64); ++k) mbar_init(bar_box0 + 8 * k, 1);
        mbar_init(bar_q, 1);
        if (CM) mbar_init(bar_recv, 1);
        mbar_init_fence();
        if (CM) mbar_arrive_expect_tx(bar_recv, mla_cluster_merge_bytes<LATENT, CM, HPB>());
        if constexpr (ET != 1) mla_wgmma_issue_q<D, BW, QROWS>(p, sQ, head0, b, bar_q, bar_qbox);
    }
    if constexpr (QOR) {  // rows QROWS..63 of each Q box: zeros (their S rows are computed and dropped)
        for (int idx = tid; idx < (D / 64) * (HB - QROWS) * 8; idx += 256) {
            const int cb = idx / ((HB - QROWS) * 8), r = QROWS + idx / 8 % (HB - QROWS);
            *reinterpret_cast<uint4*>(sQ + cb * (HB * 128) + r * 128 + (idx % 8) * 16) = make_uint4(0, 0, 0, 0);
        }
        fence_proxy_async_smem();  // before S's wgmmas read them (after the barrier below)
    }
    __syncthreads();
}

// ET, after griddepcontrol.wait (thread 128): Q (WITH_Q: ET 1), then the stages held back (in order: at most the CTA's
// last tile, or all of them where every tile waits).
template <int D, int BW, int QROWS, int STAGES, int TILE, int PAGE, bool WITH_Q, class QBox, class IssueTile,
          class Late>
__device__ __forceinline__ void mla_wgmma_issue_after_wait(const MlaDecodeParams& p, unsigned char* sQ, int head0,
                                                           int b, unsigned bar_q, const QBox& bar_qbox, int n_tiles,
                                                           int t_begin, const int* table, int& page_next,
                                                           const IssueTile& issue_tile, const Late& late) {
    if constexpr (WITH_Q) mla_wgmma_issue_q<D, BW, QROWS>(p, sQ, head0, b, bar_q, bar_qbox);
#pragma unroll
    for (int st = 0; st < STAGES; ++st)
        if (st < n_tiles && late(st)) {
            page_next = table[(t_begin + st * TILE) / PAGE];
            issue_tile(st, st);
        }
}

}  // namespace mf
