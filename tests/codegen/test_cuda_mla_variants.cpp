// The default TMA wgmma kernel's own options, host side: which configs accept them, their names, sources and split
// counts (the cluster merge, the fused combine, tile claims, the epilogue's staging, the tile waits, the overlapped
// loop, Q's own rows). The schedule variants are in test_cuda_mla_schedules.cpp; the GPU tests run every candidate
// against the reference (test_cuda_mla_gpu.cpp).
#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "codegen/cuda/mla_kernels.hpp"
#include "codegen/cuda/mla_split_policy.hpp"

using namespace mf;

TEST_CASE("cuda mla: cluster_merge takes the splits of short contexts into one cluster of 8 or 16 CTAs") {
    const MlaDecodeDesc d;
    MlaDecodeConfig c = mla_decode_default_config(d, 90);
    c.tile_box_wait = c.pv_overlap = 0;  // (built on the session 5-7 default; bw1 pvo2 is the default since session 8)
    c.cluster_merge = 16;
    CHECK(mla_decode_unsupported(d, c, 90).empty());
    CHECK(mla_decode_name(d, c).find("_cm16") != std::string::npos);
    CHECK(mla_decode_source(d, c, 90).source.find(", 1, 1, false, false, true, true, false, 0, true, 64, 16>(p)") !=
          std::string::npos);
    // one cluster of 16 covers 32 tiles of 64 (2 per CTA), a cluster of 8 covers 16; the clusters of all head blocks
    // and rows must fit the SMs at once; elsewhere the config's usual split count
    CHECK(mla_decode_num_splits(d, c, 1, 1024, 132) == 16);
    CHECK(mla_decode_num_splits(d, c, 1, 2048, 132) == 16);
    CHECK(mla_decode_num_splits(d, c, 1, 1, 132) == 16);  // 15 splits without tokens
    CHECK(mla_decode_num_splits(d, c, 1, 2049, 132) == 33);
    CHECK(mla_decode_num_splits(d, c, 4, 1024, 132) == 16);  // 8 clusters of 16: 128 SMs
    CHECK(mla_decode_num_splits(d, c, 5, 1024, 132) == 13);  // 160 SMs: no
    CHECK(mla_decode_cluster_splits(d, c, 1, 8192, 132) == 0);
    CHECK(mla_decode_num_splits(d, c, 4, 1024, 132, 8) == 16);  // 8 clusters, 8 held at once
    // 7 held: the usual count, 132 / 8 = 16 here too, which the launch then runs without clusters
    CHECK(mla_decode_num_splits(d, c, 4, 1024, 132, 7) == 16);
    CHECK(mla_decode_cluster_merges(c, mla_decode_grid(d, c, 4, 16), 8));
    CHECK_FALSE(mla_decode_cluster_merges(c, mla_decode_grid(d, c, 4, 16), 7));
    CHECK(mla_decode_num_splits(d, c, 1, 1024, 132, 0) == 16);  // none held: the usual count (16 tiles)
    CHECK(mla_decode_cluster_splits(d, c, 1, 1024, 132, 0) == 0);
    CHECK(mla_decode_splits(d, c, MlaSplitPolicy{}, 1, 2048, 132) == 16);
    CHECK(mla_decode_splits(d, c, MlaSplitPolicy{25}, 1, 1024, 132) == 16);  // 32 of 33 SMs
    CHECK(mla_decode_splits(d, c, MlaSplitPolicy{25}, 2, 1024, 132) == 8);   // 64 SMs: the usual split count
    CHECK(mla_decode_cluster_merges(c, mla_decode_grid(d, c, 1, 16), 2));
    CHECK_FALSE(mla_decode_cluster_merges(c, mla_decode_grid(d, c, 1, 16), 1));
    CHECK_FALSE(mla_decode_cluster_merges(c, mla_decode_grid(d, c, 1, 8), 100));
    CHECK_FALSE(mla_decode_cluster_merges(c, mla_decode_grid(d, c, 1, 33), 100));
    c.cluster_merge = 8;
    CHECK(mla_decode_num_splits(d, c, 1, 1024, 132) == 8);
    CHECK(mla_decode_num_splits(d, c, 8, 1024, 132) == 8);  // 16 clusters of 8: 128 SMs
    CHECK(mla_decode_num_splits(d, c, 1, 2048, 132) == 32);
    CHECK(mla_decode_cluster_merges(c, mla_decode_grid(d, c, 1, 8), 2));
    c.head_block = 32;  // 4 head blocks of 32 heads: 4 clusters
    CHECK(mla_decode_unsupported(d, c, 90).empty());
    CHECK(mla_decode_num_splits(d, c, 1, 1024, 132) == 8);
    CHECK(mla_decode_num_splits(d, c, 5, 1024, 132) == 6);  // 20 clusters of 8 do not fit: the usual count
    c.head_block = 64;
    c.cluster_merge = 0;
    CHECK_FALSE(mla_decode_cluster_merges(c, mla_decode_grid(d, c, 1, 16), 100));
    CHECK(mla_decode_cluster_splits(d, c, 1, 1024, 132) == 0);
    auto rejects = [&](auto&& edit) {
        MlaDecodeConfig x = c;
        x.cluster_merge = 16;
        edit(x);
        return !mla_decode_unsupported(d, x, 90).empty();
    };
    CHECK(rejects([](MlaDecodeConfig& x) { x.cluster_merge = 4; }));
    CHECK(rejects([](MlaDecodeConfig& x) { x.cluster_merge = 32; }));
    CHECK(rejects([](MlaDecodeConfig& x) { x.tma = 2; }));
    CHECK(rejects([](MlaDecodeConfig& x) { x.cluster = 2; }));
    CHECK(rejects([](MlaDecodeConfig& x) { x.wgmma = 0, x.tma = 0; }));
    CHECK(rejects([](MlaDecodeConfig& x) { x.seesaw = 1, x.fused_combine = 0, x.prologue = 0; }));
    // its cluster launch carries no programmatic dependency, and it exchanges bf16 rows whatever partial_bf16 says
    CHECK(rejects([](MlaDecodeConfig& x) { x.fused_combine = 0, x.merge_loads = 0, x.decode_pdl = 1; }));
    CHECK(rejects([](MlaDecodeConfig& x) { x.fused_combine = 0, x.merge_loads = 0, x.pdl = 1; }));
    CHECK(rejects([](MlaDecodeConfig& x) { x.partial_bf16 = 0; }));
    CHECK_FALSE(rejects([](MlaDecodeConfig& x) { x.fused_combine = 0, x.merge_loads = 0; }));  // fallback: combine
    CHECK_FALSE(rejects([](MlaDecodeConfig& x) { x.tile_tokens = 32, x.stages = 4; }));
}

TEST_CASE("cuda mla: the fused combine (cooperative launch) and the early prologue, wgmma tma 1 kernel only") {
    const MlaDecodeDesc d;
    MlaDecodeConfig c = mla_decode_default_config(d, 90);
    c.tile_box_wait = c.pv_overlap = 0;  // (built on the session 5-7 default; bw1 pvo2 is the default since session 8)
    REQUIRE(c.tma == 1);
    CHECK(c.merge_loads == 1);  // (the default since session 5; the template strings below are spelled without it)
    c.merge_loads = 0;
    c.fused_combine = 1;
    c.prologue = 1;
    CHECK(mla_decode_unsupported(d, c, 90).empty());
    CHECK(mla_decode_source(d, c, 90).source.find(", 1, 1, false, false, true, true>(p)") != std::string::npos);
    c.prologue = 0;
    CHECK(mla_decode_source(d, c, 90).source.find(", 1, 1, false, false, true, false>(p)") != std::string::npos);
    c.bulk_store = 1;
    CHECK(mla_decode_source(d, c, 90).source.find(", 1, 1, false, false, true, false, true>(p)") !=
          std::string::npos);
    c.bulk_store = 0;
    c.fused_combine = 2;
    CHECK(mla_decode_source(d, c, 90).source.find(", 1, 1, false, false, 2, false>(p)") != std::string::npos);
    c.fused_combine = 1;
    c.l2_prefetch = 3;
    CHECK(mla_decode_source(d, c, 90).source.find(", 1, 1, false, false, true, false, false, 3>(p)") !=
          std::string::npos);
    c.l2_prefetch = 0;
    // the other kernels' sources do not spell the flags
    MlaDecodeConfig plain{64, 2, 1, 1, 1, 1};
    plain.tma = 1;
    plain.combine_warp = 1;
    CHECK(mla_decode_source(d, plain, 90).source.find(", 1, 1, false, false>(p)") != std::string::npos);
    auto rejects = [&](auto&& edit) {
        MlaDecodeConfig x = c;
        edit(x);
        return !mla_decode_unsupported(d, x, 90).empty();
    };
    CHECK(rejects([](MlaDecodeConfig& x) { x.tma = 2; }));
    CHECK(rejects([](MlaDecodeConfig& x) { x.tma = 0; }));
    CHECK(rejects([](MlaDecodeConfig& x) { x.cluster = 2; }));
    CHECK(rejects([](MlaDecodeConfig& x) { x.pdl = 1; }));
    CHECK(rejects([](MlaDecodeConfig& x) { x.decode_pdl = 1; }));
    CHECK(rejects([](MlaDecodeConfig& x) { x.fused_combine = 4; }));
    CHECK(rejects([](MlaDecodeConfig& x) { x.prologue = 3; }));
    {  // head_block 32: twice the head blocks, the splits fill the SMs with them
        MlaDecodeConfig x = c;
        x.head_block = 32;
        CHECK(mla_decode_unsupported(d, x, 90).empty());
        const Dim3 g32 = mla_decode_grid(d, x, 1, 16);
        CHECK((g32.x == 16 && g32.y == 4 && g32.z == 1));
        CHECK(mla_decode_num_splits(d, x, 1, 1024, 132) == 16);
        CHECK(mla_decode_num_splits(d, x, 1, 8192, 132) == 33);
        CHECK(mla_decode_grid(d, c, 1, 16).y == 2);
        x.head_block = 16;
        CHECK_FALSE(mla_decode_unsupported(d, x, 90).empty());
        x.head_block = 32;
        x.tma = 2;
        CHECK_FALSE(mla_decode_unsupported(d, x, 90).empty());
    }
    {  // prologue 2: the page ids read with the context length
        MlaDecodeConfig x = c;
        x.prologue = 2;
        CHECK(mla_decode_unsupported(d, x, 90).empty());
        CHECK(mla_decode_source(d, x, 90).source.find(", 1, 1, false, false, true, 2>(p)") != std::string::npos);
    }
    CHECK_FALSE(rejects([](MlaDecodeConfig& x) { x.fused_combine = 3; }));
    CHECK_FALSE(rejects([](MlaDecodeConfig& x) { x.fused_combine = 2; }));
    CHECK(rejects([](MlaDecodeConfig& x) {
        x.fused_combine = 0;
        x.prologue = 1;
        x.seesaw = 1;
    }));
    CHECK_FALSE(rejects([](MlaDecodeConfig& x) { x.tile_tokens = 32, x.stages = 4; }));
    // fused only with several splits, at most kMlaFusedCombineMaxSplits, and a grid that fits at once
    CHECK(mla_decode_fuses_combine(c, 66, 132, 132));
    CHECK_FALSE(mla_decode_fuses_combine(c, 66, 133, 132));
    CHECK_FALSE(mla_decode_fuses_combine(c, 1, 2, 132));  // one split: the decode writes the output itself
    CHECK_FALSE(mla_decode_fuses_combine(c, kMlaFusedCombineMaxSplits + 1, 260, 1000));
    CHECK_FALSE(mla_decode_fuses_combine(c, 66, 132, 0));  // no cooperative launch on this device
    CHECK_FALSE(mla_decode_fuses_combine(c, 2, kMlaFusedMaxCtas + 2, 1 << 20));  // past the flags of grid_sync
    // merge helpers fill the device along x
    const Dim3 g = mla_decode_fused_grid(d, c, 1, 16, 132);
    CHECK((g.x == 16 && g.y == 2 && g.z == 1));
    c.merge_helpers = 1;
    const Dim3 h = mla_decode_fused_grid(d, c, 1, 16, 132);
    CHECK((h.x == 66 && h.y == 2 && h.z == 1));
    CHECK(mla_decode_fused_grid(d, c, 1, 66, 132).x == 66);
    c.merge_helpers = 0;
    c.fused_combine = 0;
    CHECK_FALSE(mla_decode_fuses_combine(c, 66, 132, 132));
    c.merge_helpers = 1;
    CHECK_FALSE(mla_decode_unsupported(d, c, 90).empty());  // helpers need the fused combine
}

TEST_CASE("cuda mla: tile_claim (tiles handed out at run time) needs the prologue and fused_combine 1 or 2") {
    const MlaDecodeDesc d;
    MlaDecodeConfig c = mla_decode_default_config(d, 90);
    c.tile_box_wait = c.pv_overlap = 0;  // (built on the session 5-7 default; bw1 pvo2 is the default since session 8)
    REQUIRE((c.prologue == 1 && c.fused_combine == 1 && c.merge_loads == 1 && c.tile_claim == 0));
    c.tile_claim = 1;
    CHECK(mla_decode_unsupported(d, c, 90).empty());
    // the template spells every trailing argument up to CLAIM (HPB 64, CM 0 at their defaults)
    CHECK(mla_decode_source(d, c, 90).source.find(", 1, 1, false, false, true, true, false, 0, true, 64, 0, 1>(p)") !=
          std::string::npos);
    CHECK(mla_decode_name(d, c).find("tcl1") != std::string::npos);
    const auto& cands = mla_decode_candidates(d, 90);
    CHECK(std::find(cands.begin(), cands.end(), c) != cands.end());
    auto rejects = [&](auto&& edit) {
        MlaDecodeConfig x = c;
        edit(x);
        return !mla_decode_unsupported(d, x, 90).empty();
    };
    CHECK(rejects([](MlaDecodeConfig& x) { x.tile_claim = 2; }));
    CHECK(rejects([](MlaDecodeConfig& x) { x.prologue = 0; }));
    CHECK(rejects([](MlaDecodeConfig& x) { x.fused_combine = 0, x.merge_loads = 0; }));
    CHECK(rejects([](MlaDecodeConfig& x) { x.fused_combine = 3; }));  // no grid barrier to order the reset after
    CHECK(rejects([](MlaDecodeConfig& x) { x.cluster_merge = 16; }));
    CHECK(rejects([](MlaDecodeConfig& x) { x.l2_prefetch = 2; }));
    CHECK(rejects([](MlaDecodeConfig& x) { x.tma = 2; }));
    CHECK_FALSE(rejects([](MlaDecodeConfig& x) { x.fused_combine = 2; }));
    CHECK_FALSE(rejects([](MlaDecodeConfig& x) { x.prologue = 2; }));
    CHECK_FALSE(rejects([](MlaDecodeConfig& x) { x.head_block = 32; }));
    // the counters sit past the ready flags, one 128-byte line per (row, head block) of the largest fused grid
    CHECK(kMlaTileClaims * 4 >= 4 * (kMlaReadyFlags + kMlaReadyFlagStride * kMlaFusedMaxCtas));
    CHECK(kMlaGridSyncBytes >= 4 * (kMlaTileClaims + kMlaReadyFlagStride * kMlaFusedMaxCtas));
}

TEST_CASE("cuda mla: epilogue_stmatrix (rows staged by stmatrix) needs bf16 partials on the default kernel") {
    const MlaDecodeDesc d;
    MlaDecodeConfig c = mla_decode_default_config(d, 90);
    c.tile_box_wait = c.pv_overlap = 0;  // (built on the session 5-7 default; bw1 pvo2 is the default since session 8)
    REQUIRE(c.partial_bf16 == 1);
    c.epilogue_stmatrix = 1;
    CHECK(mla_decode_unsupported(d, c, 90).empty());
    CHECK(mla_decode_source(d, c, 90).source.find(
              ", 1, 1, false, false, true, true, false, 0, true, 64, 0, 0, true>(p)") != std::string::npos);
    CHECK(mla_decode_name(d, c).find("_esm1") != std::string::npos);
    const auto& cands = mla_decode_candidates(d, 90);
    CHECK(std::find(cands.begin(), cands.end(), c) != cands.end());
    c.cluster_merge = 16;
    c.head_block = 32;
    CHECK(mla_decode_unsupported(d, c, 90).empty());
    CHECK(std::find(cands.begin(), cands.end(), c) != cands.end());
    c.cluster_merge = 0;
    c.head_block = 64;
    auto rejects = [&](auto&& edit) {
        MlaDecodeConfig x = c;
        edit(x);
        return !mla_decode_unsupported(d, x, 90).empty();
    };
    CHECK(rejects([](MlaDecodeConfig& x) { x.epilogue_stmatrix = 2; }));
    CHECK(rejects([](MlaDecodeConfig& x) { x.partial_bf16 = 0; }));  // stmatrix stores 16-bit values
    CHECK(rejects([](MlaDecodeConfig& x) { x.tma = 2, x.fused_combine = 0, x.prologue = 0, x.merge_loads = 0; }));
    CHECK(rejects([](MlaDecodeConfig& x) { x.fused_combine = 0, x.prologue = 0, x.merge_loads = 0, x.stages = 2,
                                           x.producer_consumer = 2; }));
    CHECK_FALSE(rejects([](MlaDecodeConfig& x) { x.fused_combine = 0, x.prologue = 0, x.merge_loads = 0; }));
}

TEST_CASE("cuda mla: merge_early (the merge's context length read before the grid barrier) needs fused_combine") {
    const MlaDecodeDesc d;
    MlaDecodeConfig c = mla_decode_default_config(d, 90);
    c.tile_box_wait = c.pv_overlap = 0;  // (built on the session 5-7 default; bw1 pvo2 is the default since session 8)
    c.merge_early = 1;
    CHECK(mla_decode_unsupported(d, c, 90).empty());
    CHECK(mla_decode_source(d, c, 90).source.find(
              ", 1, 1, false, false, true, true, false, 0, true, 64, 0, 0, false, true>(p)") != std::string::npos);
    CHECK(mla_decode_name(d, c).find("_mel1") != std::string::npos);
    const auto& cands = mla_decode_candidates(d, 90);
    CHECK(std::find(cands.begin(), cands.end(), c) != cands.end());
    c.tile_claim = 1;
    c.epilogue_stmatrix = 1;
    CHECK(mla_decode_unsupported(d, c, 90).empty());
    CHECK(std::find(cands.begin(), cands.end(), c) != cands.end());
    c = mla_decode_default_config(d, 90);
    c.tile_box_wait = c.pv_overlap = 0;
    c.merge_early = 2;
    CHECK_FALSE(mla_decode_unsupported(d, c, 90).empty());
    c.merge_early = 1;
    c.fused_combine = 0;
    c.merge_loads = 0;
    CHECK_FALSE(mla_decode_unsupported(d, c, 90).empty());
}

TEST_CASE("cuda mla: tile_box_wait (S waits box by box) needs the prologue, TMA 1 and a barrier per box") {
    const MlaDecodeDesc d;
    MlaDecodeConfig c = mla_decode_default_config(d, 90);
    CHECK((c.tile_box_wait == 1 && c.pv_overlap == 2));  // the sm_90 default since session 8
    c.tile_box_wait = c.pv_overlap = 0;
    const unsigned plain = mla_decode_smem_bytes(d, c);
    c.tile_box_wait = 1;
    CHECK(mla_decode_unsupported(d, c, 90).empty());
    CHECK(mla_decode_smem_bytes(d, c) == plain + 2 * 9 * 8);  // 2 stages x 9 boxes of 64 columns
    CHECK(mla_decode_source(d, c, 90).source.find(
              ", 1, 1, false, false, true, true, false, 0, true, 64, 0, 0, false, false, true>(p)") !=
          std::string::npos);
    CHECK(mla_decode_name(d, c).find("_bw1") != std::string::npos);
    const auto& cands = mla_decode_candidates(d, 90);
    CHECK(std::find(cands.begin(), cands.end(), c) != cands.end());
    auto rejects = [&](auto&& edit) {
        MlaDecodeConfig x = c;
        edit(x);
        return !mla_decode_unsupported(d, x, 90).empty();
    };
    CHECK(rejects([](MlaDecodeConfig& x) { x.tile_box_wait = 3; }));
    // 2: Q's 9 boxes on barriers of their own too (on the default and on cm16 hb32)
    c.tile_box_wait = 2;
    CHECK(mla_decode_unsupported(d, c, 90).empty());
    CHECK(mla_decode_smem_bytes(d, c) == plain + 3 * 9 * 8);
    CHECK(mla_decode_source(d, c, 90).source.find(
              ", 1, 1, false, false, true, true, false, 0, true, 64, 0, 0, false, false, 2>(p)") != std::string::npos);
    CHECK(mla_decode_name(d, c).find("_bw2") != std::string::npos);
    CHECK(std::find(cands.begin(), cands.end(), c) != cands.end());
    CHECK(rejects([](MlaDecodeConfig& x) { x.tile_claim = 1; }));
    c.cluster_merge = 16;
    c.head_block = 32;
    CHECK(std::find(cands.begin(), cands.end(), c) != cands.end());
    c.cluster_merge = 0;
    c.head_block = 64;
    c.tile_box_wait = 1;
    CHECK(rejects([](MlaDecodeConfig& x) { x.prologue = 0; }));
    CHECK(rejects([](MlaDecodeConfig& x) { x.tile_claim = 1; }));
    CHECK(rejects([](MlaDecodeConfig& x) { x.qk_split = 1; }));
    CHECK(rejects([](MlaDecodeConfig& x) { x.l2_prefetch = 2; }));
    CHECK(rejects([](MlaDecodeConfig& x) { x.tma = 2, x.fused_combine = 0, x.merge_loads = 0, x.prologue = 0; }));
    CHECK_FALSE(rejects([](MlaDecodeConfig& x) { x.cluster_merge = 16, x.head_block = 32; }));
    CHECK_FALSE(rejects([](MlaDecodeConfig& x) { x.fused_combine = 0, x.merge_loads = 0; }));
}

TEST_CASE("cuda mla: pv_overlap (S(j + 1) right behind P V(j)) needs tile_box_wait, 64-token tiles, 2 stages, rope 64") {
    const MlaDecodeDesc d;
    MlaDecodeConfig c = mla_decode_default_config(d, 90);
    CHECK(c.pv_overlap == 2);  // the default since session 8
    c.pv_overlap = 0;
    const unsigned plain = mla_decode_smem_bytes(d, c);
    c.pv_overlap = 1;
    CHECK(mla_decode_unsupported(d, c, 90).empty());
    CHECK(mla_decode_smem_bytes(d, c) == plain);  // its barriers take the full barriers' place, P the rope block's
    CHECK(mla_decode_source(d, c, 90).source.find(
              ", 1, 1, false, false, true, true, false, 0, true, 64, 0, 0, false, false, true, true>(p)") !=
          std::string::npos);
    CHECK(mla_decode_name(d, c).find("_bw1_pvo1") != std::string::npos);
    const auto& cands = mla_decode_candidates(d, 90);
    CHECK(std::find(cands.begin(), cands.end(), c) != cands.end());
    c.tile_box_wait = 2;
    CHECK(std::find(cands.begin(), cands.end(), c) != cands.end());
    auto rejects = [&](auto&& edit) {
        MlaDecodeConfig x = c;
        edit(x);
        return !mla_decode_unsupported(d, x, 90).empty();
    };
    CHECK(rejects([](MlaDecodeConfig& x) { x.pv_overlap = 3; }));
    CHECK_FALSE(rejects([](MlaDecodeConfig& x) { x.pv_overlap = 2; }));  // only in CTAs of 2 tiles or more
    CHECK(cands.front().pv_overlap == 2);
    CHECK(rejects([](MlaDecodeConfig& x) { x.tile_box_wait = 0; }));
    CHECK(rejects([](MlaDecodeConfig& x) { x.tile_tokens = 32, x.stages = 4; }));
    CHECK(rejects([](MlaDecodeConfig& x) { x.stages = 3; }));
    CHECK(rejects([](MlaDecodeConfig& x) { x.qk_chains = 2; }));
    CHECK(rejects([](MlaDecodeConfig& x) { x.prologue = 0; }));
    CHECK_FALSE(rejects([](MlaDecodeConfig& x) { x.cluster_merge = 16, x.head_block = 32; }));
    CHECK_FALSE(rejects([](MlaDecodeConfig& x) { x.fused_combine = 0, x.merge_loads = 0; }));
    MlaDecodeDesc no_rope = d;
    no_rope.rope_dim = 0;
    CHECK_FALSE(mla_decode_unsupported(no_rope, c, 90).empty());
    const MlaDecodeConfig fallback = mla_decode_default_config(no_rope, 90);  // no rope block for P: bw1 alone
    CHECK((fallback.tile_box_wait == 1 && fallback.pv_overlap == 0));
}

TEST_CASE("cuda mla: q_own_rows (Q's boxes hold the CTA's own 32 heads) needs head_block 32 and the prologue") {
    const MlaDecodeDesc d;
    MlaDecodeConfig c = mla_decode_default_config(d, 90);
    c.pv_overlap = 0;  // (cm16 hb32's CTAs have one tile each: the candidates are built without it)
    c.cluster_merge = 16;
    c.head_block = 32;
    const unsigned plain = mla_decode_smem_bytes(d, c);
    c.q_own_rows = 1;
    CHECK(mla_decode_unsupported(d, c, 90).empty());
    CHECK(mla_decode_smem_bytes(d, c) == plain);
    CHECK(mla_decode_source(d, c, 90).source.find(
              ", 1, 1, false, false, true, true, false, 0, true, 32, 16, 0, false, false, true, false, true>(p)") !=
          std::string::npos);
    CHECK(mla_decode_name(d, c).find("_hb32_cm16") != std::string::npos);
    CHECK(mla_decode_name(d, c).find("_qor1") != std::string::npos);
    const auto& cands = mla_decode_candidates(d, 90);
    CHECK(std::find(cands.begin(), cands.end(), c) != cands.end());
    c.tile_box_wait = 2;
    CHECK(std::find(cands.begin(), cands.end(), c) != cands.end());
    auto rejects = [&](auto&& edit) {
        MlaDecodeConfig x = c;
        edit(x);
        return !mla_decode_unsupported(d, x, 90).empty();
    };
    CHECK(rejects([](MlaDecodeConfig& x) { x.q_own_rows = 2; }));
    CHECK(rejects([](MlaDecodeConfig& x) { x.head_block = 64; }));
    CHECK(rejects([](MlaDecodeConfig& x) { x.prologue = 0, x.tile_box_wait = 0; }));
    CHECK_FALSE(rejects([](MlaDecodeConfig& x) { x.cluster_merge = 0; }));  // the fused combine elsewhere
}

TEST_CASE("cuda mla: after the cache append a decode runs early_tiles 2 where its kernel takes it, else as it is") {
    const MlaDecodeDesc d;
    const MlaDecodeConfig def = mla_decode_default_config(d, 90), large = mla_decode_large_batch_config(d, 90);
    const MlaDecodeConfig after = mla_decode_after_append_config(d, def, 90);
    CHECK(after.early_tiles == 2);
    CHECK(mla_decode_unsupported(d, after, 90).empty());
    MlaDecodeConfig rest = after;  // nothing else changes
    rest.early_tiles = def.early_tiles;
    CHECK(rest == def);
    CHECK(mla_decode_after_append_config(d, after, 90) == after);
    MlaDecodeConfig et1 = def;  // a config that names its own early_tiles keeps it
    et1.early_tiles = 1;
    CHECK(mla_decode_after_append_config(d, et1, 90) == et1);
    // the "P V late" large-batch kernel and the sm_80 default take no early_tiles: unchanged
    CHECK(mla_decode_after_append_config(d, large, 90) == large);
    const MlaDecodeConfig ampere = mla_decode_default_config(d, 80);
    CHECK(mla_decode_after_append_config(d, ampere, 80) == ampere);
}
