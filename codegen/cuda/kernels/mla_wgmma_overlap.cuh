// The tile loop of the default wgmma MLA decode (mla_decode_wgmma.cuh) with S(j + 1) on the tensor cores right
// behind P V(j) (config pv_overlap 1, or 2: only in CTAs of 2 tiles or more; with the early prologue, tile_box_wait,
// 64-token tiles, 2 stages, rope_dim 64; the sm_90 default since session 8 with pv_overlap 2).
//
// The default's loop runs S(j), softmax(j), P V(j) one after the other with a CTA barrier between tiles: the tensor
// cores idle in the softmax and while S(j + 1) waits for P V(j) to finish and for the barrier (batch 1 x 32K, H200,
// session 7: ~4.0k cycles a tile against ~3.0k of tensor work + softmax). Here:
//   warpgroup 0, pass j >= 1: P V(j - 1) over value blocks 0..3, then S(j)'s first 8 k-steps (boxes 0, 1, waited
//     for box by box as with tile_box_wait), both issued back to back; wait for the P V (wgmma groups complete in
//     order) and release its part of tile j - 1's stage; the rest of S(j) box by box; wait for S(j); softmax(j) with
//     P(j) written into tile j's rope block (S(j) was its only reader: no P buffer per stage needed) and alpha(j) into
//     this stage's alpha row; "P(j) ready". Tile 0: S and softmax only; after the last tile its P V.
//   warpgroup 1, pass j: wait for "P(j) ready" (and its value boxes 4..7), rescale its O half by alpha(j), P V(j)
//     over value blocks 4..7, wait, release its part of the stage; thread 128 refills the stage with tile j + 2 once
//     both warpgroups released it.
// So P V(j) of both warpgroups and S(j + 1) reach the tensor cores without a CTA barrier between them, and the
// stage of tile j is released when P V(j) is done, as in the default (its refill keeps about a tile's time to land:
// batch 1 is bound by the copies' latency at two stages, which the "P V late" kernels of the large-batch config
// shorten by releasing the stage only after the next softmax).
// Barriers (the default's mbarrier block; tile_box_wait leaves the full barriers unused): ready [2] (4 arrivals:
// warpgroup 0's warps) and empty [2] (8 arrivals: every warp), phase = (j / 2) & 1 for tile j in stage j & 1.
// PROF slots: warpgroup 0 (thread 0): 1 P V(j - 1) issue (with the rescale), 2 S(j) issue (with the box waits and
// the P V wait), 3 the S wait, 4 softmax, 5 the last P V; warpgroup 1 (thread 128): 1 "P ready" + box waits,
// 2 rescale + P V issue, 3 P V wait, 4 the stage's release wait + refill (thread 128).
#pragma once
#include "mla_wgmma_softmax.cuh"  // mla_softmax_tile_sync
#include "mma_sm80.cuh"           // smem_addr
#include "tma_sm90.cuh"           // mbar_wait
#include "wgmma_sm90.cuh"

namespace mf {

// One arrival per warp on the mbarrier at `bar` (lane 0, after the warp's lanes met).
__device__ __forceinline__ void mla_overlap_arrive(unsigned bar, int lane) {
    __syncwarp();
    if (lane == 0) asm volatile("mbarrier.arrive.release.cta.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}

// sK: the 2 stages (k_bytes each, D / 64 boxes of 64 columns x 64 tokens, 128-byte swizzled); dq: Q's descriptor;
// bar_ready / bar_empty: 2 mbarriers each (8 bytes apart, initialised with 4 / 8 arrivals); alpha0 / alpha1: 64 floats
// per stage; bar_box(st, cb): box cb of stage st (phase (j / 2) & 1); QBOX (tile_box_wait 2): bar_qbox(cb), Q's box
// cb, waited for with tile 0's; issue_tile(i, stage): thread 128 issues tile i (tiles issued in order, 0 and 1 by the
// prologue); mark(k): the profile's slots. o: this thread's O half (m64n256 accumulator), m_run / l_run: warpgroup
// 0's running max (log2 domain) and partial row sums.
template <int LATENT, int D, bool QBOX, class BoxBar, class QBoxBar, class Issue, class Mark>
__device__ __forceinline__ void mla_wgmma_overlap_loop(unsigned char* sK, unsigned k_bytes, unsigned long long dq,
                                                       unsigned bar_ready, unsigned bar_empty, float* alpha0,
                                                       float* alpha1, int n_tiles, int t_begin, int t_end, float sl2,
                                                       float (&m_run)[2], float (&l_run)[2], float (&o)[128], int row0,
                                                       int wg, int lane, int tid, BoxBar&& bar_box, QBoxBar&& bar_qbox,
                                                       Issue&& issue_tile, Mark&& mark) {
    constexpr int TILE = 64, NB = D / 64, KS = D / 16;
    constexpr int KS_EARLY = 8;  // S(j)'s k-steps (boxes 0, 1) issued before warpgroup 0 waits for its P V(j - 1)
    static_assert(LATENT == 512 && D == LATENT + 64, "P (64 x 64 bf16) takes the place of the one rope block");
    const unsigned sKa0 = smem_addr(sK);
    // O (+)= P(j) V(j) over this warpgroup's value blocks 4 wg .. 4 wg + 3, after O *= alpha(j) (commits one group)
    auto issue_pv = [&](int j, const float (&alpha)[2]) {
        if (__any_sync(0xffffffffu, alpha[0] != 1.f || alpha[1] != 1.f)) mla_rescale_o(o, alpha);  // the max moved
        wgmma_pin(o);
        wgmma_fence();
        const unsigned sKa = sKa0 + (j & 1) * k_bytes;
        const unsigned long long dp = wgmma_desc_sw128(sKa + (NB - 1) * (TILE * 128), 16, 1024);  // P, K-major
        const unsigned long long dv = wgmma_desc_sw128(sKa + (wg * 4) * (TILE * 128), TILE * 128, 1024);  // V
#pragma unroll
        for (int kk = 0; kk < TILE / 16; ++kk)
            wgmma_m64n256k16_ss_tb(o, wgmma_desc_add(dp, kk * 32), wgmma_desc_add(dv, kk * 16 * 128), 1);
        wgmma_commit();
    };

    if (wg == 0) {
        // k-steps [k0, k1) of S(j) (k0, k1 multiples of 4: whole boxes), box by box (commits one group); from k0 0 a
        // last partial tile first waits for all its boxes and zeroes its tail rows' value columns (stale data; their
        // scores are masked, their values must not be NaN)
        auto issue_s = [&](int j, float (&s)[32], int k0, int k1) {
            const int st = j & 1;
            const unsigned par = (j >> 1) & 1;
            const int valid = t_end - (t_begin + j * TILE);
            if (k0 == 0 && valid < TILE) {
                for (int cb = 0; cb < NB; ++cb) mbar_wait(bar_box(st, cb), par);
                unsigned char* k = sK + st * k_bytes;
                for (int idx = tid; idx < (TILE - valid) * (LATENT / 8); idx += 128) {
                    const int r = valid + idx / (LATENT / 8), c = idx % (LATENT / 8);
                    *reinterpret_cast<uint4*>(k + (c >> 3) * (TILE * 128) + r * 128 + (((c & 7) ^ (r & 7)) << 4)) =
                        make_uint4(0, 0, 0, 0);
                }
                fence_proxy_async_smem();  // (ordered before "P(j) ready" and this warpgroup's P V(j))
                __syncwarp();
            }
            if (k0 == 0) {
#pragma unroll
                for (int e = 0; e < 32; ++e) s[e] = 0.f;
                wgmma_pin(s);
            }
            const unsigned long long db = wgmma_desc_sw128(sKa0 + st * k_bytes, 16, 1024);
#pragma unroll
            for (int ks = k0; ks < k1; ++ks) {
                if (ks % 4 == 0) {  // box ks / 4 (and Q's, with tile 0)
                    mbar_wait(bar_box(st, ks / 4), par);
                    if (QBOX && j == 0) mbar_wait(bar_qbox(ks / 4), 0);
                    wgmma_fence();  // (else ptxas injects one: the wait loop sits between the chain's wgmmas)
                }
                wgmma_m64n64k16_ss(s, wgmma_desc_add(dq, (ks >> 2) * (64 * 128) + (ks & 3) * 32),
                                   wgmma_desc_add(db, (ks >> 2) * (TILE * 128) + (ks & 3) * 32), ks > 0);
            }
            wgmma_commit();
        };
        float alpha[2] = {1.f, 1.f};  // alpha(j) of this thread's rows, for P V(j)
        // softmax(j): P(j) into tile j's rope block once every warp's S(j) is done (the warpgroup barrier after the
        // exponentials), alpha(j) into the stage's row, then "P(j) ready"
        auto softmax = [&](int j, float (&s)[32]) {
            unsigned char* sP = sK + (j & 1) * k_bytes + (NB - 1) * (TILE * 128);
            unsigned pv[16];
            mla_softmax_tile_sync<0>(s, t_end - (t_begin + j * TILE), sl2, m_run, l_run, alpha, sP, row0, lane, pv,
                                     [] { asm volatile("bar.sync 1, 128;\n" ::: "memory"); });
            float* sa = (j & 1) ? alpha1 : alpha0;
            if ((lane & 3) == 0) {
                sa[row0] = alpha[0];
                sa[row0 + 8] = alpha[1];
            }
            fence_proxy_async_smem();
            mla_overlap_arrive(bar_ready + 8 * (j & 1), lane);
        };
        {  // tile 0: S and softmax
            float s[32];
            issue_s(0, s, 0, KS);
            mark(2);
            wgmma_wait<0>();
            wgmma_pin(s);
            mark(3);
            softmax(0, s);
            mark(4);
        }
        for (int j = 1; j < n_tiles; ++j) {
            float s[32];
            issue_pv(j - 1, alpha);
            mark(1);
            // S(j)'s first boxes queue behind the P V; the stage of tile j - 1 is released as soon as the P V is done,
            // not after the box waits of S(j)'s later boxes (its refill, tile j + 1, is what those wait for next)
            issue_s(j, s, 0, KS_EARLY);
            wgmma_wait<1>();  // P V(j - 1) is done (groups complete in order; S(j)'s first k-steps may still run)
            wgmma_pin(o);
            mla_overlap_arrive(bar_empty + 8 * ((j - 1) & 1), lane);
            issue_s(j, s, KS_EARLY, KS);
            mark(2);
            wgmma_wait<0>();
            wgmma_pin(s);
            wgmma_pin(o);
            mark(3);
            softmax(j, s);
            mark(4);
        }
        issue_pv(n_tiles - 1, alpha);
        wgmma_wait<0>();
        wgmma_pin(o);
        mark(5);
    } else {
        for (int j = 0; j < n_tiles; ++j) {
            const int st = j & 1;
            const unsigned par = (j >> 1) & 1;
            mbar_wait(bar_ready + 8 * st, par);
            for (int cb = 4; cb < 8; ++cb) mbar_wait(bar_box(st, cb), par);  // this warpgroup's value boxes
            __syncwarp();
            fence_proxy_async_smem();
            mark(1);
            const float* sa = st ? alpha1 : alpha0;
            const float alpha[2] = {sa[row0], sa[row0 + 8]};
            issue_pv(j, alpha);
            mark(2);
            wgmma_wait<0>();
            wgmma_pin(o);
            mark(3);
            mla_overlap_arrive(bar_empty + 8 * st, lane);
            if (tid == 128 && j + 2 < n_tiles) {  // tile j + 2 into this stage once warpgroup 0's P V(j) is done too
                mbar_wait(bar_empty + 8 * st, par);
                issue_tile(j + 2, st);
            }
            __syncwarp();
            mark(4);
        }
    }
}

}  // namespace mf
