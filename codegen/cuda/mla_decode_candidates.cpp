// The MLA decode configs the runtime starts from and the tuner searches: the default per architecture (with the
// measurements that made it the default), the large-batch config, and every candidate. Plain data over
// mla_decode_unsupported(); the kernels themselves are in mla_kernels.cpp.
#include "codegen/cuda/mla_kernels.hpp"

#include <algorithm>
#include <vector>

namespace mf {

namespace {

// What every TMA wgmma candidate starts from: 64-token tiles, 2 stages, bf16 partials, TMA tile loads, the per-warp
// combine (session 3's default).
MlaDecodeConfig tma_wgmma_base() {
    MlaDecodeConfig c{64, 2, 1, 1, 1, 1};
    c.tma = 1;
    c.combine_warp = 1;
    return c;
}

// ... with the early prologue, the combine fused into the decode and its 512-byte merge loads: the sm_90 default of
// sessions 5-7 and the base of the candidates built on it (the default adds tile_box_wait since session 8).
MlaDecodeConfig tma_wgmma_default() {
    MlaDecodeConfig c = tma_wgmma_base();
    c.prologue = 1;
    c.fused_combine = 1;
    c.merge_loads = 1;
    return c;
}

}  // namespace

MlaDecodeConfig mla_decode_default_config(const MlaDecodeDesc& d, int sm) {
    // sm_90: the wgmma kernel with bf16 partials, TMA tile loads and the per-warp combine for few splits (H200,
    // session 3: 1.33x faster than cp.async at batch 64, 1.25x at batch 1 32K, 1.7x at batch 8 1K), the early
    // prologue and the combine fused into the decode where the grid fits (session 4, three runs: batch 1
    // 1.05-1.09x at 1K / 8K / 32K, batch 8 and 64 within noise; tests/bench/cuda_mla_decode_results.md), the
    // merge's partial rows loaded as 512-byte warp stretches (session 5, H200 run of ea07178 against fc1 pro1 in
    // the same run: batch 1 10.8 / 15.1 / 27.4 us against 11.5 / 16.1 / 28.2, batch 8 1K / 8K 15.3 / 43.7 against
    // 16.5 / 45.5, 32K and batch 64 within noise), S waiting box by box for the tile (session 7, tile_box_wait 1;
    // two H200 runs: batch 1 0.3-0.6 us faster at 1K-32K, 8 x 1K 15.3 -> 14.7-14.8, 8 x 8K equal, 8 x 32K 1.4-1.5%
    // slower), S(j + 1) right behind P V(j) in CTAs of 2 tiles or more (session 8, pv_overlap 2; H200, first version
    // pvo1 against bw1 in one run: 1 x 32K 26.7 / 27.0 us, 8 x 8K 42.9 / 45.1, 8 x 32K 150.7 / 161.4, 1 x 8K equal,
    // 1 x 1K-4K 0.2-0.4 us slower, which pvo2 leaves to the loop without it); cp.async where the page is not a multiple
    // of the tile
    MlaDecodeConfig boxes = tma_wgmma_default(), overlap = tma_wgmma_default();
    boxes.tile_box_wait = overlap.tile_box_wait = 1;
    overlap.pv_overlap = 2;  // (needs rope_dim 64: else bw1 alone)
    for (MlaDecodeConfig c : {overlap, boxes, tma_wgmma_default(), MlaDecodeConfig{64, 2, 1, 1, 1, 1},
                              MlaDecodeConfig{64, 2, 1}, MlaDecodeConfig{32, 2, 1}, MlaDecodeConfig{64, 1, 1},
                              MlaDecodeConfig{32, 1, 1}, MlaDecodeConfig{16, 2, 1}, MlaDecodeConfig{16, 1, 1}})
        if (mla_decode_unsupported(d, c, sm).empty()) return c;
    return MlaDecodeConfig{16, 1, 1};
}

MlaDecodeConfig mla_decode_after_append_config(const MlaDecodeDesc& d, const MlaDecodeConfig& c, int sm) {
    if (c.early_tiles) return c;
    MlaDecodeConfig early = c;
    early.early_tiles = 2;
    return mla_decode_unsupported(d, early, sm).empty() ? early : c;
}

MlaDecodeConfig mla_decode_large_batch_config(const MlaDecodeDesc& d, int sm) {
    MlaDecodeConfig c = tma_wgmma_base();  // one of the candidates (the producer/consumer block below)
    // session 6: "P V late" with all of warpgroup 1's P V in the softmax window and the fast softmax (pc7 sf1; H200:
    // 0.99x / 0.96x the time of pc2 sf1 at 64 x 8K / 32K, which was 0.98x / 0.99x pc2's on an H100); session 7: the
    // softmax's barrier after its exponentials (sf2; H200, two runs: 0.99x / 1.00x pc7 sf1's time at 64 x 8K / 32K,
    // within noise: a no-loss change)
    c.producer_consumer = 7;
    c.softmax_fast = 2;
    return mla_decode_unsupported(d, c, sm).empty() ? c : mla_decode_default_config(d, sm);
}

std::vector<MlaDecodeConfig> mla_decode_candidates(const MlaDecodeDesc& d, int sm) {
    std::vector<MlaDecodeConfig> v = {mla_decode_default_config(d, sm)};
    auto add = [&](const MlaDecodeConfig& c) {
        if (mla_decode_unsupported(d, c, sm).empty() && std::find(v.begin(), v.end(), c) == v.end())
            v.push_back(c);
    };
    for (int wg : {1, 0})
        for (int tile : {64, 32, 16})
            for (int stages : {2, 3, 4, 1})
                for (int cluster : {1, 2, 4, 8}) add(MlaDecodeConfig{tile, stages, cluster, wg});
    // longer splits (fewer partials) for the kernels fast enough to want them
    for (int mt : {2, 4}) {
        add(MlaDecodeConfig{64, 2, 1, 1, mt});
        add(MlaDecodeConfig{32, 4, 1, 1, mt});
    }
    // half the partial traffic
    for (int mt : {1, 4}) {
        add(MlaDecodeConfig{64, 2, 1, 1, mt, 1});
        add(MlaDecodeConfig{32, 4, 1, 1, mt, 1});
    }
    // the combine's launch overlapping the decode's tail
    for (int pb : {0, 1}) add(MlaDecodeConfig{64, 2, 1, 1, 1, pb, 1});
    add(MlaDecodeConfig{64, 2, 1, 1, 4, 1, 1});
    // Q K^T on both warpgroups
    for (int pdl : {0, 1}) add(MlaDecodeConfig{64, 2, 1, 1, 1, 0, pdl, 1});
    // independent Q K^T accumulator chains
    add(MlaDecodeConfig{64, 2, 1, 1, 1, 0, 0, 0, 2});
    for (int chains : {2, 4}) add(MlaDecodeConfig{64, 2, 1, 1, 1, 0, 0, 1, chains});
    add(MlaDecodeConfig{64, 2, 1, 1, 1, 0, 1, 1, 4});
    add(MlaDecodeConfig{32, 3, 1, 1, 1, 0, 0, 0, 2});
    add(MlaDecodeConfig{64, 2, 1, 1, 1, 1, 1, 1, 4});  // all of the above with bf16 partials
    // K tiles by TMA (one thread), multicast to the head-block pair; the decode as a programmatic dependent
    for (int tma : {1, 2}) {
        MlaDecodeConfig c{64, 2, 1, 1, 1, 1};
        c.tma = tma;
        add(c);
        c.pdl = 1;
        c.decode_pdl = 1;
        add(c);
    }
    // ... and split pairs sharing Q and merging their partials (cluster 2)
    for (int tma : {1, 2}) {
        MlaDecodeConfig c{64, 2, 2, 1, 1, 1};
        c.tma = tma;
        add(c);
    }
    {
        MlaDecodeConfig c{64, 2, 2, 1, 1, 1, 1};
        c.tma = 2;
        c.decode_pdl = 1;
        add(c);
        c = MlaDecodeConfig{32, 4, 1, 1, 1, 1};
        c.tma = 2;
        add(c);
        c.cluster = 2;
        add(c);
    }
    // the per-warp combine (batch 8 and up), on the cp.async kernel and on split pairs
    {
        MlaDecodeConfig c{64, 2, 1, 1, 1, 1};
        c.combine_warp = 1;
        add(c);
        c = MlaDecodeConfig{64, 2, 2, 1, 1, 1, 1};
        c.tma = 2;
        c.decode_pdl = 1;
        c.combine_warp = 1;
        add(c);
    }
    // Q K^T on both warpgroups with TMA loads (phase A no longer waits on cp.async traffic), also in pairs
    for (int cluster : {1, 2})
        for (int tma : {1, 2}) {
            MlaDecodeConfig c{64, 2, cluster, 1, 1, 1, 0, 1};
            c.tma = tma;
            add(c);
        }
    {
        MlaDecodeConfig c{64, 2, 2, 1, 1, 1, 1, 1};
        c.tma = 2;
        c.decode_pdl = 1;
        add(c);
        c = MlaDecodeConfig{64, 2, 1, 1, 1, 1, 1};
        c.decode_pdl = 1;
        add(c);
    }
    // the seesaw schedule on the default's settings (tma 1, bf16 partials, per-warp combine)
    {
        MlaDecodeConfig c = tma_wgmma_base();
        c.seesaw = 1;
        add(c);
    }
    // the producer/consumer kernel on the default's settings (3 stages: Q is in registers, not shared memory)
    {
        MlaDecodeConfig c = tma_wgmma_base();
        c.stages = 3;
        c.producer_consumer = 1;
        add(c);
        c.stages = 2;  // ... and the 2-warpgroup "P V first" schedule, also with tiles refilled by halves
        c.producer_consumer = 2;
        add(c);
        c.producer_consumer = 3;
        add(c);
        c.producer_consumer = 2;  // session 6: the softmax as one MUFU.EX2 per element, stmatrix for P
        c.softmax_fast = 1;
        add(c);
        for (int kind : {4, 5, 6, 7}) {  // ... and with part of warpgroup 1's P V in the softmax window ("P V late")
            c.producer_consumer = kind;
            add(c);
        }
        for (int kind : {7, 8, 9, 10, 11})  // session 7: P V late with the softmax's barrier after its exponentials, a
            for (int sf : {2, 3}) {  // quarter of them on the FP32 pipe (3); 8: warpgroup 0's P from registers, 9: also
                                     // Q for S's first 8 k-steps; 10 (9), 11 (8): that P V issued inside the softmax
                c.producer_consumer = kind;
                c.softmax_fast = sf;
                add(c);
            }
        c.producer_consumer = 7;  // session 8: pc7 sf2 and pc8 sf2 with the balanced schedule (an even share of all
        c.softmax_fast = 2;       // tiles per SM, cut rows merged by their last part)
        for (int bal : {1, 2, 3}) {  // (2: the last part merges its own rows from shared memory; 3: and the next
                                     // unit's first tile is issued before the epilogue)
            c.balanced_splits = bal;
            for (int kind : {7, 8}) {
                c.producer_consumer = kind;
                add(c);
            }
        }
        c.balanced_splits = 0;
        for (int kind : {7, 8}) {  // session 9: pc7 sf2 and pc8 sf2 with S waiting box by box
            c.producer_consumer = kind;
            c.stage_box_wait = 1;
            add(c);
        }
        c.producer_consumer = 7;  // ... 2: and warpgroup 0's P V in two groups, its first two boxes refilled early
        c.stage_box_wait = 2;
        add(c);
        c.stage_box_wait = 0;
        c.softmax_fast = 1;
        for (int kind : {4, 6}) {  // ... with the tiles multicast to the head-block pair (half the L2->SM bytes)
            c.producer_consumer = kind;
            c.tma = 2;
            add(c);
        }
    }
    // batch 1: the splits merged inside the decode (cooperative launch, no combine launch), the early prologue,
    // both (the default); session 3's default without either; also with fp32 partials and with 32-token tiles
    {
        MlaDecodeConfig c = tma_wgmma_base();
        add(c);
        for (int fc : {1, 0, 1}) {
            c.fused_combine = fc;
            add(c);
            c.prologue = 1;
        }
        c.partial_bf16 = 0;
        add(c);
        c.partial_bf16 = 1;
        c.bulk_store = 1;  // ... and with the rows written by bulk copies
        add(c);
        c.fused_combine = 2;  // ... and read back by bulk copies; also with 16-byte stores
        add(c);
        c.bulk_store = 0;
        add(c);
        c.fused_combine = 1;  // fc1 pro1 with tiles prefetched into L2 two tiles ahead
        c.l2_prefetch = 2;
        add(c);
        c = MlaDecodeConfig{32, 4, 1, 1, 1, 1};
        c.tma = 1;
        c.combine_warp = 1;
        c.fused_combine = 1;
        c.prologue = 1;
        add(c);
        // session 5: the merge's loads as whole 512-byte stretches per warp (merge_loads), merge-only CTAs on
        // the SMs a short context leaves idle (merge_helpers), with bulk copies (fc2), with ready flags instead of
        // the grid barrier (fc3), with the page table read early (pro2), with 32 heads per CTA, and with 32-token
        // tiles
        c = tma_wgmma_default();
        add(c);
        c.merge_helpers = 1;
        add(c);
        c.fused_combine = 2;
        add(c);
        c.fused_combine = 3;  // ... ready flags instead of the grid barrier, with and without the helpers
        add(c);
        c.merge_helpers = 0;
        add(c);
        c.prologue = 2;  // ... the page ids read with the context length (fc3 ml1, fc1 ml1, fc3 ml1 mh1)
        add(c);
        c.fused_combine = 1;
        add(c);
        c.fused_combine = 3;
        c.merge_helpers = 1;
        add(c);
        c.head_block = 32;  // ... with 32 heads per CTA (half the partial bytes per CTA); also fc1 pro1 ml1 mh1
        add(c);
        c.fused_combine = 1;
        c.prologue = 1;
        add(c);
        c.head_block = 64;
        c.tile_tokens = 32;
        c.stages = 4;
        c.fused_combine = 1;
        add(c);
    }
    // session 6: where a head block's splits fit one cluster (batch 1 at 1K-2K), the splits merged in distributed
    // shared memory by clusters of 16 or 8 CTAs (no partials in global memory, no grid barrier), on the
    // default's settings (fc1 pro1 ml1: the launch elsewhere); also with 32 heads per CTA
    {
        MlaDecodeConfig c = tma_wgmma_default();
        for (int cm : {16, 8}) {
            c.cluster_merge = cm;
            add(c);
        }
        c.cluster_merge = 16;
        c.head_block = 32;
        add(c);
    }
    // session 7: the row's tiles handed out at run time from a per-(row, head block) counter (tile_claim), on the
    // default's settings
    // ... and the epilogue's rows staged by stmatrix (epilogue_stmatrix) on the default, with the claimed tiles and
    // on the cluster merge with 32 heads per CTA (the fastest at 1K / 2K)
    {
        MlaDecodeConfig c = tma_wgmma_default();
        c.tile_claim = 1;
        add(c);
        c.epilogue_stmatrix = 1;
        add(c);
        c.tile_claim = 0;
        add(c);
        c.cluster_merge = 16;
        c.head_block = 32;
        add(c);
        // ... and the merge's first context length read before the grid barrier (merge_early), alone and with both
        c = tma_wgmma_default();
        c.merge_early = 1;
        add(c);
        c.tile_claim = 1;
        c.epilogue_stmatrix = 1;
        add(c);
        // ... and Q K^T waiting for each 64-column box of the tile instead of the whole tile (tile_box_wait), on the
        // default and on cm16 hb32
        c = tma_wgmma_default();
        c.tile_box_wait = 1;
        add(c);
        c.cluster_merge = 16;
        c.head_block = 32;
        add(c);
        // session 8: ... and Q's boxes on barriers of their own, waited for with the first tile's (tile_box_wait 2),
        // on the default and on cm16 hb32
        c.tile_box_wait = 2;
        add(c);
        c.cluster_merge = 0;
        c.head_block = 64;
        add(c);
        // ... and S(j + 1) issued right behind P V(j), no CTA barrier between tiles (pv_overlap), with bw2 and bw1
        c.pv_overlap = 1;
        add(c);
        c.tile_box_wait = 1;
        add(c);
        c.pv_overlap = 2;  // ... only in CTAs of 2 tiles or more
        add(c);
        // ... and cm16 hb32 with Q's boxes holding the CTA's own 32 heads (q_own_rows), with bw1 and bw2
        c.pv_overlap = 0;
        c.cluster_merge = 16;
        c.head_block = 32;
        c.q_own_rows = 1;
        add(c);
        c.tile_box_wait = 2;
        add(c);
    }
    // session 9: the decode as a programmatic dependent of the cache append, the K copies of the tiles that do not
    // hold the new token issued before it ends (early_tiles; 2: Q's too), on the default and on cm16 hb32 bw1
    for (int et : {1, 2}) {
        MlaDecodeConfig c = mla_decode_default_config(d, sm);
        c.early_tiles = et;
        add(c);
        c = tma_wgmma_default();
        c.tile_box_wait = 1;
        c.cluster_merge = 16;
        c.head_block = 32;
        c.early_tiles = et;
        add(c);
    }
    return v;
}

}  // namespace mf
