// How an MLA decode is launched (mla_decode_launch_kind: plain, dependent, cooperative, cluster, and early_tiles with
// each), and which configs take early_tiles. Host arithmetic only: runs in CI.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "codegen/cuda/mla_kernels.hpp"

using namespace mf;

TEST_CASE("cuda mla: mla_decode_launch_kind decides plain / dependent / cooperative / cluster launches") {
    const MlaDecodeDesc d;
    const MlaDecodeConfig def = mla_decode_default_config(d, 90);
    REQUIRE((def.fused_combine == 1 && def.early_tiles == 0));
    // the default at batch 1, 16 splits: 32 CTAs, cooperative where they fit, merging (out and grid_sync set)
    MlaDecodeLaunch l = mla_decode_launch_kind(d, def, 1, 16, 132, 0);
    CHECK(l.options.cooperative);
    CHECK_FALSE(l.options.dependent);
    CHECK(l.options.cluster_x == 0);
    CHECK((l.writes_output && l.grid_sync));
    CHECK((l.grid.x == 16 && l.grid.y == 2 && l.grid.z == 1));
    // ... where they do not fit: plain, partials for the combine kernel
    l = mla_decode_launch_kind(d, def, 1, 16, 31, 0);
    CHECK_FALSE((l.options.cooperative || l.options.dependent || l.writes_output || l.grid_sync));
    // one split: the decode writes the output itself, plainly
    l = mla_decode_launch_kind(d, def, 1, 1, 132, 0);
    CHECK((l.writes_output && !l.grid_sync && !l.options.cooperative));
    // decode_pdl (no fused combine): dependent
    MlaDecodeConfig pdl{64, 2, 1, 1, 1, 1, 1};
    pdl.tma = 1;
    pdl.decode_pdl = 1;
    REQUIRE(mla_decode_unsupported(d, pdl, 90).empty());
    l = mla_decode_launch_kind(d, pdl, 8, 8, 132, 0);
    CHECK((l.options.dependent && !l.options.cooperative && !l.writes_output));
    // cluster_merge 16 with the device holding 4 clusters: a cluster launch writing the output, no grid_sync
    MlaDecodeConfig cm = def;
    cm.pv_overlap = 0;
    cm.cluster_merge = 16;
    cm.head_block = 32;
    l = mla_decode_launch_kind(d, cm, 1, 16, 132, 4);
    CHECK(l.options.cluster_x == 16);
    CHECK((l.writes_output && !l.grid_sync && !l.options.cooperative && !l.options.dependent));
    l = mla_decode_launch_kind(d, cm, 1, 16, 132, 3);  // the device holds fewer: fused as without cluster_merge
    CHECK((l.options.cluster_x == 0 && l.options.cooperative));
    // balanced_splits: merged in the decode (grid_sync) but launched plainly (no CTA waits for another)
    const MlaDecodeConfig large = mla_decode_large_batch_config(d, 90);
    MlaDecodeConfig bal = large;
    bal.balanced_splits = 1;
    REQUIRE(mla_decode_unsupported(d, bal, 90).empty());
    l = mla_decode_launch_kind(d, bal, 64, 132, 0, 0);
    CHECK((l.grid_sync && l.writes_output && !l.options.cooperative && !l.options.dependent));
    CHECK(l.grid.x == 132);
    // early_tiles: dependent, together with the cooperative or the cluster attribute
    MlaDecodeConfig et = def;
    et.early_tiles = 1;
    l = mla_decode_launch_kind(d, et, 1, 16, 132, 0);
    CHECK((l.options.cooperative && l.options.dependent && l.grid_sync));
    l = mla_decode_launch_kind(d, et, 1, 16, 31, 0);
    CHECK((l.options.dependent && !l.options.cooperative && !l.writes_output));
    cm.early_tiles = 1;
    l = mla_decode_launch_kind(d, cm, 1, 16, 132, 4);
    CHECK((l.options.cluster_x == 16 && l.options.dependent));
}

TEST_CASE("cuda mla: early_tiles needs the default kernel with prologue 1 and no other programmatic launch") {
    const MlaDecodeDesc d;
    MlaDecodeConfig c = mla_decode_default_config(d, 90);
    c.early_tiles = 1;
    CHECK(mla_decode_unsupported(d, c, 90).empty());
    // the kernel's last template argument (ET), after QOR
    CHECK(mla_decode_source(d, c, 90).source.find(", true, 2, false, true>(p)") != std::string::npos);
    CHECK(mla_decode_name(d, c).find("_et1") != std::string::npos);
    CHECK(mla_decode_smem_bytes(d, c) == mla_decode_smem_bytes(d, mla_decode_default_config(d, 90)));
    const auto cands = mla_decode_candidates(d, 90);
    CHECK(std::find(cands.begin(), cands.end(), c) != cands.end());
    MlaDecodeConfig cm = c;  // cm16 hb32 bw1 et1
    cm.pv_overlap = 0;
    cm.cluster_merge = 16;
    cm.head_block = 32;
    CHECK(std::find(cands.begin(), cands.end(), cm) != cands.end());
    for (MlaDecodeConfig x : {c, cm}) {  // ... and with Q's copy before the wait too (2)
        x.early_tiles = 2;
        CHECK(std::find(cands.begin(), cands.end(), x) != cands.end());
    }
    auto rejects = [&](auto&& edit) {
        MlaDecodeConfig x = c;
        edit(x);
        return !mla_decode_unsupported(d, x, 90).empty();
    };
    CHECK(rejects([](MlaDecodeConfig& x) { x.early_tiles = 3; }));
    CHECK_FALSE(rejects([](MlaDecodeConfig& x) { x.early_tiles = 2; }));
    CHECK(rejects([](MlaDecodeConfig& x) { x.prologue = 2; }));
    CHECK(rejects([](MlaDecodeConfig& x) { x.prologue = 0, x.tile_box_wait = x.pv_overlap = 0; }));
    CHECK(rejects([](MlaDecodeConfig& x) { x.fused_combine = 3; }));
    CHECK(rejects([](MlaDecodeConfig& x) { x.fused_combine = 0, x.merge_loads = 0, x.decode_pdl = 1; }));
    CHECK(rejects([](MlaDecodeConfig& x) { x.merge_helpers = 1; }));
    CHECK(rejects([](MlaDecodeConfig& x) { x.producer_consumer = 7, x.softmax_fast = 2; }));
    CHECK_FALSE(rejects([](MlaDecodeConfig& x) { x.fused_combine = 0, x.merge_loads = 0; }));
    CHECK_FALSE(rejects([](MlaDecodeConfig& x) { x.fused_combine = 2; }));
    CHECK(rejects([](MlaDecodeConfig& x) { x.wgmma = 0; }));
}
