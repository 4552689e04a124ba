// The default wgmma kernel's prologue (mla_decode_wgmma.cuh): what happens before its first tile is computed.
//   mla_wgmma_prologue (PRO, thread 128): the descriptor prefetches, the mbarriers (the stages' full ones, or
//     OVL's "P ready" / release pairs; BW's per-box barriers, BW 2: also Q's; CM's receive barrier, armed), then Q's
//     boxes (mla_wgmma_issue_q) unless ET; QOR: the rows of Q no box writes zeroed; a CTA barrier.
//   mla_wgmma_issue_first_tiles: the first stages' K copies (TMA: thread 128 or, PRO 2, warp 4; cp.async: every
//     thread), Q's cp.async group first; CLAIM: the fixed tiles and the first claim.
//   ET (config early_tiles, PRO 1): the decode runs as a programmatic dependent of the cache append and only a stage
//     whose tile holds the row's token len - 1 (the one the append writes) waits for it: mla_wgmma_issue_first_tiles
//     issues the others before griddepcontrol.wait, mla_wgmma_issue_after_wait Q and the rest after it.
// Barrier addresses and tile issuers come from the kernel (its lambdas); see mla_decode_wgmma.cuh for the layout.
#pragma once
#include "grid_dependency.cuh"
#include "mla_params.cuh"
#include "mla_wgmma_epilogue.cuh"  // mla_cluster_merge_bytes
#include "mma_sm80.cuh"            // smem_addr, cp.async
#include "tma_sm90.cuh"

namespace mf {

// Thread 128: Q's D/64 boxes (QROWS rows each) into sQ, counted on bar_q (BW 2: each on its own barrier).
template <int D, int BW, int QROWS, class QBox>
__device__ __forceinline__ void mla_wgmma_issue_q(const MlaDecodeParams& p, unsigned char* sQ, int head0, int b,
                                                  unsigned bar_q, QBox bar_qbox) {
    constexpr int HB = 64;
    if (BW != 2) mbar_arrive_expect_tx(bar_q, (D / 64) * QROWS * 128);
    for (int cb = 0; cb < D / 64; ++cb) {
        if (BW == 2) mbar_arrive_expect_tx(bar_qbox(cb), QROWS * 128);
        const unsigned bar = BW == 2 ? bar_qbox(cb) : bar_q;
        tma_load_3d(smem_addr(sQ + cb * (HB * 128)), &p.q_map, cb * 64, head0, b, bar);
    }
}

// PRO: the barriers (thread 128), Q's copy (not with ET: after the wait), QOR's zero rows, then a CTA barrier.
template <int LATENT, int D, int STAGES, int BW, int OVL, int CM, int HPB, bool QOR, bool ET, class QBox>
__device__ __forceinline__ void mla_wgmma_prologue(const MlaDecodeParams& p, unsigned char* sQ, int tid, bool helper,
                                                   int head0, int b, unsigned bar_full, unsigned bar_q,
                                                   unsigned bar_box0, unsigned bar_recv, unsigned bar_ovl_ready,
                                                   unsigned bar_ovl_empty, QBox bar_qbox) {
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
        if constexpr (!ET) mla_wgmma_issue_q<D, BW, QROWS>(p, sQ, head0, b, bar_q, bar_qbox);
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

// The first stages' copies: TMA (thread 128; PRO 2: warp 4 from the page ids it holds) or cp.async (every thread;
// Q's group first without PRO). One commit group per tile, empty ones included, so that "group i" is always tile i.
// ET: only the stages `late` says no to (the rest after the wait: mla_wgmma_issue_after_wait).
template <int TMA, int PRO, int STAGES, int L2P, int TILE, int PAGE, int TBL, bool ET, class FixedTile, class IssueTile,
          class IssueClaimed, class ClaimFirst, class Prefetch, class LoadTile, class Late>
__device__ __forceinline__ void mla_wgmma_issue_first_tiles(int tid, int warp, int lane, bool claim, int n_tiles,
                                                            int t_begin, const int* table, const int (&tbl)[TBL],
                                                            bool tbl_regs, int& page_next, FixedTile fixed_tile,
                                                            IssueTile issue_tile, IssueClaimed issue_claimed,
                                                            ClaimFirst claim_first, Prefetch prefetch_tile,
                                                            LoadTile load_tile, Late late) {
    if constexpr (TMA != 0) {
        cp_async_commit();  // Q: group 0
        if (PRO == 2 && warp == 4) {  // every stage from the page ids warp 4 holds (or one round trip, as PRO 1)
            int pg[STAGES];
#pragma unroll
            for (int st = 0; st < STAGES; ++st) {
                const int idx = claim ? max(0, fixed_tile(st)) * TILE / PAGE : (t_begin + st * TILE) / PAGE;
                int v = 0;
#pragma unroll
                for (int k = 0; k < TBL; ++k) v = k == idx / 32 ? tbl[k] : v;
                v = __shfl_sync(0xffffffffu, v, idx & 31);
                pg[st] = tbl_regs ? v : lane == 0 && (claim ? fixed_tile(st) >= 0 : st < n_tiles) ? table[idx] : 0;
            }
            if (lane == 0 && claim) {
#pragma unroll
                for (int st = 0; st < STAGES; ++st) issue_claimed(fixed_tile(st), pg[st], st);
                claim_first();
            } else if (lane == 0) {
#pragma unroll
                for (int st = 0; st < STAGES; ++st)
                    if (st < n_tiles) {
                        page_next = pg[st];
                        issue_tile(st, st);
                    }
                for (int j = STAGES; j < STAGES - 1 + L2P; ++j) prefetch_tile(j);
            }
        }
        if (PRO != 2 && tid == 128) {
            if (PRO && claim) {  // the fixed tiles (the page ids in one round trip), then the first claim
                int pg[STAGES];
#pragma unroll
                for (int st = 0; st < STAGES; ++st)
                    pg[st] = fixed_tile(st) >= 0 ? table[fixed_tile(st) * TILE / PAGE] : 0;
#pragma unroll
                for (int st = 0; st < STAGES; ++st) issue_claimed(fixed_tile(st), pg[st], st);
                claim_first();
            } else if constexpr (PRO) {  // every stage, the page ids of all of them in one round trip
                int pg[STAGES];
#pragma unroll
                for (int st = 0; st < STAGES; ++st) pg[st] = st < n_tiles ? table[(t_begin + st * TILE) / PAGE] : 0;
#pragma unroll
                for (int st = 0; st < STAGES; ++st)
                    if (st < n_tiles && (!ET || !late(st))) {
                        page_next = pg[st];
                        issue_tile(st, st);
                    }
            } else {
                for (int st = 0; st < STAGES - 1 && st < n_tiles; ++st) issue_tile(st, st);
            }
            for (int j = STAGES; j < STAGES - 1 + L2P; ++j) prefetch_tile(j);  // iteration i takes i + S - 1 + L2P
        }
    } else {
#pragma unroll
        for (int st = 0; st < STAGES - 1; ++st) {
            if (st < n_tiles) load_tile(st, st);
            cp_async_commit();
        }
    }
}

// ET, after griddepcontrol.wait (thread 128): Q, then the stages held back (in order: at most the CTA's last tile,
// or all of them where every tile waits).
template <int D, int BW, int QROWS, int STAGES, int TILE, int PAGE, class QBox, class IssueTile, class Late>
__device__ __forceinline__ void mla_wgmma_issue_after_wait(const MlaDecodeParams& p, unsigned char* sQ, int head0,
                                                           int b, unsigned bar_q, QBox bar_qbox, int n_tiles,
                                                           int t_begin, const int* table, int& page_next,
                                                           IssueTile issue_tile, Late late) {
    mla_wgmma_issue_q<D, BW, QROWS>(p, sQ, head0, b, bar_q, bar_qbox);
#pragma unroll
    for (int st = 0; st < STAGES; ++st)
        if (st < n_tiles && late(st)) {
            page_next = table[(t_begin + st * TILE) / PAGE];
            issue_tile(st, st);
        }
}

}  // namespace mf
