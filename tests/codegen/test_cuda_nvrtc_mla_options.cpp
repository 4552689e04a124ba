// NVRTC compile tests of the MLA decode's schedule and epilogue options (producer/consumer, P V first / late, the
// fused and cluster merges, and the options of sessions 7-8): each compiles for sm_90a, plain and profiled, without
// ptxas performance loss. Run in CI without a GPU (NVRTC needs no driver).
#include <doctest/doctest.h>

#include <string>

#include "codegen/cuda/mla_kernels.hpp"
#include "codegen/cuda/nvrtc_compiler.hpp"
#include "tests/codegen/nvrtc_checks.hpp"

using namespace mf;
using mf::test::check_no_ptxas_performance_loss;
using mf::test::occurrences;

TEST_CASE("cuda nvrtc: the producer/consumer MLA decode: RS and SS S steps by half tiles, no ptxas performance loss") {
    if (!nvrtc_available()) {
        MESSAGE("skipped: built without NVRTC");
        return;
    }
    const MlaDecodeDesc v3;
    MlaDecodeConfig c{64, 3, 1, 1, 1, 1};
    c.tma = 1;
    c.producer_consumer = 1;
    const std::string ptx = compile_cuda_ptx(mla_decode_source(v3, c, 90), CudaArch{9, 0, true});
    auto count = [&](const std::string& what) { return occurrences(ptx, what); };
    // S by half tiles: 2 x 36 k-steps of m64n32k16, 32 with Q from registers ({a0..a3}), 4 from shared memory;
    // P V: 2 halves x 2 k-steps of m64n256k16
    CHECK(count("wgmma.mma_async.sync.aligned.m64n32k16.f32.bf16.bf16") == 2 * 36);
    CHECK(count("wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16") == 2 * 2);
    CHECK(count("setmaxnreg.inc.sync.aligned.u32 184") == 1);
    CHECK(count("setmaxnreg.dec.sync.aligned.u32 160") == 1);
    CHECK(count("cp.async.bulk.tensor.2d") >= 1);
    CHECK(count("mma.sync") == 0);
    // ptxas keeps both register budgets and the wgmma pipelines: it reports "Potential Performance Loss" (setmaxnreg
    // ignored, wgmma serialized) in the compile log otherwise
    for (const MlaDecodeDesc& d : {v3, [] {
             MlaDecodeDesc r;
             r.heads = 20;
             return r;
         }()}) {
        check_no_ptxas_performance_loss(d, c);
    }
}

TEST_CASE("cuda nvrtc: the fused combine's merge configs compile without ptxas performance loss") {
    if (!nvrtc_available()) {
        MESSAGE("skipped: built without NVRTC");
        return;
    }
    const MlaDecodeDesc v3;
    int n = 0;
    for (const MlaDecodeConfig& x : mla_decode_candidates(v3, 90)) {  // session 5's candidates, plain builds
        if (!x.merge_loads) continue;
        const CudaKernelSource src = mla_decode_source(v3, x, 90);
        CAPTURE(src.name);
        const CudaBinary bin = compile_cuda_kernel(src, CudaArch{9, 0, true}, {});
        CAPTURE(bin.log);
        CHECK(bin.log.find("Performance Loss") == std::string::npos);
        ++n;
    }
    CHECK(n >= 11);
    MlaDecodeConfig c = mla_decode_default_config(v3, 90);
    c.tile_box_wait = c.pv_overlap = 0;  // (built on the session 5-7 default; bw1 pvo2 is the default since session 8)
    REQUIRE(c.fused_combine == 1);
    c.merge_loads = 1;  // 512-byte warp loads, also profiled: bf16 and fp32 partials, with merge helpers, fc 1 / 3
    check_no_ptxas_performance_loss(v3, c);
    c.merge_helpers = 1;
    c.partial_bf16 = 0;
    c.fused_combine = 1;
    check_no_ptxas_performance_loss(v3, c);
    c.fused_combine = 3;  // ready flags instead of the grid barrier: fp32, bf16
    check_no_ptxas_performance_loss(v3, c);
    c.partial_bf16 = 1;
    c.merge_helpers = 0;
    check_no_ptxas_performance_loss(v3, c);
    CHECK(mla_decode_source(v3, c, 90).source.find(", 1, 1, false, false, 3, true, false, 0, true>(p)") !=
          std::string::npos);
    c.prologue = 2;  // the page ids read with the context length (profiled too)
    check_no_ptxas_performance_loss(v3, c);
    c.head_block = 32;  // 32 heads per CTA
    check_no_ptxas_performance_loss(v3, c);
    CHECK(mla_decode_source(v3, c, 90).source.find(", 1, 1, false, false, 3, 2, false, 0, true, 32>(p)") !=
          std::string::npos);
}

TEST_CASE("cuda nvrtc: the cluster merge configs compile without ptxas performance loss") {
    if (!nvrtc_available()) {
        MESSAGE("skipped: built without NVRTC");
        return;
    }
    const MlaDecodeDesc v3;
    int n = 0;
    for (const MlaDecodeConfig& x : mla_decode_candidates(v3, 90)) {  // cm16, cm8, cm16 hb32: plain and profiled
        if (!x.cluster_merge) continue;
        check_no_ptxas_performance_loss(v3, x);
        ++n;
    }
    CHECK(n >= 3);
    MlaDecodeDesc d72;  // a padded second head block
    d72.heads = 72;
    MlaDecodeConfig c = mla_decode_default_config(v3, 90);
    c.tile_box_wait = c.pv_overlap = 0;  // (built on the session 5-7 default; bw1 pvo2 is the default since session 8)
    c.cluster_merge = 8;
    c.tile_tokens = 32;
    c.stages = 4;
    check_no_ptxas_performance_loss(d72, c);
}

TEST_CASE("cuda nvrtc: the P V first MLA decode: S and P V unrolled at each call site, no ptxas performance loss") {
    if (!nvrtc_available()) {
        MESSAGE("skipped: built without NVRTC");
        return;
    }
    const MlaDecodeDesc v3;
    for (int kind : {2, 3, 12, 13}) {  // 3: tiles refilled by halves; + 10: softmax_fast
        CAPTURE(kind);
        MlaDecodeConfig c{64, 2, 1, 1, 1, 1};
        c.tma = 1;
        c.producer_consumer = kind % 10;
        c.softmax_fast = kind / 10;
        const std::string ptx = compile_cuda_ptx(mla_decode_source(v3, c, 90), CudaArch{9, 0, true});
        auto count = [&](const std::string& what) { return occurrences(ptx, what); };
        // S: tile 0 and the loop (36 k-steps each); P V (4 k-steps): warpgroup 0's loop and last tile, warpgroup 1
        CHECK(count("wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16") == 2 * 36);
        CHECK(count("wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16") == 3 * 4);
        CHECK(count("wgmma.wait_group.sync.aligned 1;") == 1);  // P V(j - 1) done, S(j) still running
        // softmax_fast: P by 4 stmatrix per softmax (tile 0 and the loop), exp2 without exp2f's range handling
        CHECK(count("stmatrix.sync.aligned.m8n8.x4.shared.b16") == (c.softmax_fast ? 8 : 0));
        if (c.softmax_fast) CHECK(count("ex2.approx.ftz.f32") >= 2 * 34);
        CHECK(count("cp.async.bulk.tensor.2d") >= 1);
        CHECK(count("mma.sync") == 0);
        check_no_ptxas_performance_loss(v3, c);
    }
}

TEST_CASE("cuda nvrtc: the P V late MLA decode: warpgroup 1's P V in two parts, no ptxas performance loss") {
    if (!nvrtc_available()) {
        MESSAGE("skipped: built without NVRTC");
        return;
    }
    const MlaDecodeDesc v3;
    for (int kind : {4, 5, 6, 7}) {  // the last 2 (4), 1 (5), 3 (6) or 4 (7) of warpgroup 1's 4 value blocks after S
        for (int fast : {0, 1}) {
            CAPTURE(kind);
            CAPTURE(fast);
            MlaDecodeConfig c{64, 2, 1, 1, 1, 1};
            c.tma = 1;
            c.producer_consumer = kind;
            c.softmax_fast = fast;
            const std::string ptx = compile_cuda_ptx(mla_decode_source(v3, c, 90), CudaArch{9, 0, true});
            auto count = [&](const std::string& what) { return occurrences(ptx, what); };
            // S: tile 0 and the loop (36 k-steps each); warpgroup 0's P V (loop, last tile): 4 m64n256k16 each;
            // warpgroup 1: an early and a late part of 4 k-steps each (n128 + n128, n192 + n64 or n64 + n192), or
            // (7) one late n256
            CHECK(count("wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16") ==
                  2 * 36 + (kind == 5 || kind == 6 ? 4 : 0));
            CHECK(count("wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16") == 2 * 4 + (kind == 7 ? 4 : 0));
            CHECK(count("wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16") == (kind == 4 ? 8 : 0));
            CHECK(count("wgmma.mma_async.sync.aligned.m64n192k16.f32.bf16.bf16") == (kind == 5 || kind == 6 ? 4 : 0));
            CHECK(count("wgmma.wait_group.sync.aligned 1;") == 1);  // P V(j - 1) done, S(j) still running
            CHECK(count("stmatrix.sync.aligned.m8n8.x4.shared.b16") == (fast ? 8 : 0));
            CHECK(count("mma.sync") == 0);
            check_no_ptxas_performance_loss(v3, c);
            if (fast && kind == 7) {  // session 7: the softmax's barrier after its exponentials (2), a quarter of
                                      // them on the FP32 pipe (3)
                const int mufu = count("ex2.approx.ftz.f32");
                for (int sf : {2, 3}) {
                    CAPTURE(sf);
                    MlaDecodeConfig x = c;
                    x.softmax_fast = sf;
                    const std::string late = compile_cuda_ptx(mla_decode_source(v3, x, 90), CudaArch{9, 0, true});
                    CHECK(occurrences(late, "stmatrix.sync.aligned.m8n8.x4.shared.b16") == 8);
                    CHECK(occurrences(late, "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16") == 2 * 36);
                    // tile 0's softmax and the loop's: 8 exponentials each leave the MUFU with 3
                    CHECK(occurrences(late, "ex2.approx.ftz.f32") == mufu - (sf == 3 ? 2 * 8 : 0));
                    check_no_ptxas_performance_loss(v3, x);
                    x.producer_consumer = 8;  // warpgroup 0's P V (loop, last tile) with P from registers
                    const std::string prs = compile_cuda_ptx(mla_decode_source(v3, x, 90), CudaArch{9, 0, true});
                    CHECK(occurrences(prs, "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16") == 3 * 4);
                    CHECK(occurrences(prs, "}, {%r") == 2 * 4);  // the A operand as 4 registers
                    CHECK(occurrences(prs, "stmatrix.sync.aligned.m8n8.x4.shared.b16") == 8);  // (warpgroup 1's P)
                    check_no_ptxas_performance_loss(v3, x);
                    x.producer_consumer = 9;  // ... and Q from registers for S's first 8 k-steps (tile 0, the loop)
                    const std::string qr = compile_cuda_ptx(mla_decode_source(v3, x, 90), CudaArch{9, 0, true});
                    CHECK(occurrences(qr, "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16") == 2 * 36);
                    CHECK(occurrences(qr, "}, {%r") == 2 * 4 + 2 * 8);
                    CHECK(occurrences(qr, "ldmatrix.sync.aligned.m8n8.x4.shared.b16") == 8);
                    check_no_ptxas_performance_loss(v3, x);
                    for (int early : {10, 11}) {  // warpgroup 0's P V issued inside the softmax (tile 0, the loop)
                        x.producer_consumer = early;
                        const std::string pve = compile_cuda_ptx(mla_decode_source(v3, x, 90), CudaArch{9, 0, true});
                        CHECK(occurrences(pve, "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16") == 3 * 4);
                        CHECK(occurrences(pve, "}, {%r") == 2 * 4 + (early == 10 ? 2 * 8 : 0));
                        check_no_ptxas_performance_loss(v3, x);
                    }
                }
            }
            if (fast && (kind == 4 || kind == 6)) {  // with the tiles multicast to the head-block pair
                c.tma = 2;
                const std::string mc = compile_cuda_ptx(mla_decode_source(v3, c, 90), CudaArch{9, 0, true});
                CHECK(occurrences(mc, "multicast::cluster") >= 1);
                CHECK(occurrences(mc, "mbarrier.arrive.release.cluster.shared::cluster") >= 1);
                CHECK(occurrences(mc, "barrier.cluster.wait") >= 2);
                check_no_ptxas_performance_loss(v3, c);
            }
        }
    }
}

TEST_CASE("cuda nvrtc: tile_claim (tiles claimed at run time) compiles without ptxas performance loss") {
    if (!nvrtc_available()) {
        MESSAGE("skipped: built without NVRTC");
        return;
    }
    const MlaDecodeDesc v3;
    MlaDecodeConfig c = mla_decode_default_config(v3, 90);
    c.tile_box_wait = c.pv_overlap = 0;  // (built on the session 5-7 default; bw1 pvo2 is the default since session 8)
    c.tile_claim = 1;  // plain and profiled; also with the page ids read early (pro2), fc2 and 32 heads per CTA
    check_no_ptxas_performance_loss(v3, c);
    c.prologue = 2;
    check_no_ptxas_performance_loss(v3, c);
    c.prologue = 1;
    c.fused_combine = 2;
    c.head_block = 32;
    check_no_ptxas_performance_loss(v3, c);
}

TEST_CASE("cuda nvrtc: epilogue_stmatrix stages the rows by stmatrix, no ptxas performance loss") {
    if (!nvrtc_available()) {
        MESSAGE("skipped: built without NVRTC");
        return;
    }
    const MlaDecodeDesc v3;
    MlaDecodeConfig c = mla_decode_default_config(v3, 90);
    c.tile_box_wait = c.pv_overlap = 0;  // (built on the session 5-7 default; bw1 pvo2 is the default since session 8)
    c.epilogue_stmatrix = 1;  // the partial stores (plain and profiled), with claimed tiles, bulk stores, cm16 hb32
    check_no_ptxas_performance_loss(v3, c);
    const CudaBinary bin = compile_cuda_kernel(mla_decode_source(v3, c, 90), CudaArch{9, 0, true}, {});
    CHECK(bin.cubin.size() > 1000);
    c.tile_claim = 1;
    check_no_ptxas_performance_loss(v3, c);
    c.tile_claim = 0;
    c.bulk_store = 1;
    check_no_ptxas_performance_loss(v3, c);
    c.bulk_store = 0;
    c.cluster_merge = 16;
    c.head_block = 32;
    check_no_ptxas_performance_loss(v3, c);
    c.cluster_merge = 0;  // with the claimed tiles and the merge's early context length (merge_early)
    c.head_block = 64;
    c.tile_claim = 1;
    c.merge_early = 1;
    check_no_ptxas_performance_loss(v3, c);
}

TEST_CASE("cuda nvrtc: tile_box_wait (S waits box by box) compiles without ptxas performance loss") {
    if (!nvrtc_available()) {
        MESSAGE("skipped: built without NVRTC");
        return;
    }
    const MlaDecodeDesc v3;
    MlaDecodeConfig c = mla_decode_default_config(v3, 90);
    c.pv_overlap = 0;
    c.tile_box_wait = 1;  // plain and profiled; also cm16 hb32 and the page ids read early (pro2)
    check_no_ptxas_performance_loss(v3, c);
    c.cluster_merge = 16;
    c.head_block = 32;
    check_no_ptxas_performance_loss(v3, c);
    c.cluster_merge = 0;
    c.head_block = 64;
    c.prologue = 2;
    check_no_ptxas_performance_loss(v3, c);
    c.prologue = 1;  // session 8: Q's boxes on barriers of their own (tile_box_wait 2), also cm16 hb32
    c.tile_box_wait = 2;
    check_no_ptxas_performance_loss(v3, c);
    c.cluster_merge = 16;
    c.head_block = 32;
    check_no_ptxas_performance_loss(v3, c);
}

TEST_CASE("cuda nvrtc: pv_overlap (S right behind P V, no CTA barrier between tiles) compiles without ptxas loss") {
    if (!nvrtc_available()) {
        MESSAGE("skipped: built without NVRTC");
        return;
    }
    const MlaDecodeDesc v3;
    MlaDecodeConfig c = mla_decode_default_config(v3, 90);
    c.pv_overlap = 1;  // plain and profiled, on the default (bw1), with bw2, with cm16 hb32; 2 on the default
    check_no_ptxas_performance_loss(v3, c);
    c.pv_overlap = 2;
    check_no_ptxas_performance_loss(v3, c);
    c.pv_overlap = 1;
    c.tile_box_wait = 2;
    check_no_ptxas_performance_loss(v3, c);
    c.cluster_merge = 16;
    c.head_block = 32;
    check_no_ptxas_performance_loss(v3, c);
}

TEST_CASE("cuda nvrtc: q_own_rows (Q's boxes of the CTA's own 32 heads) compiles without ptxas performance loss") {
    if (!nvrtc_available()) {
        MESSAGE("skipped: built without NVRTC");
        return;
    }
    const MlaDecodeDesc v3;
    MlaDecodeConfig c = mla_decode_default_config(v3, 90);
    c.pv_overlap = 0;
    c.cluster_merge = 16;  // plain and profiled: cm16 hb32 with bw1 and bw2
    c.head_block = 32;
    c.q_own_rows = 1;
    check_no_ptxas_performance_loss(v3, c);
    c.tile_box_wait = 2;
    check_no_ptxas_performance_loss(v3, c);
}

TEST_CASE("cuda nvrtc: balanced_splits (an even share of all tiles per CTA) compiles without ptxas performance loss") {
    if (!nvrtc_available()) {
        MESSAGE("skipped: built without NVRTC");
        return;
    }
    for (int heads : {128, 20}) {  // (20: one padded head block)
        MlaDecodeDesc d;
        d.heads = heads;
        MlaDecodeConfig c = mla_decode_large_batch_config(d, 90);
        for (int kind : {7, 8}) {
            CAPTURE(heads);
            CAPTURE(kind);
            c.producer_consumer = kind;
            c.balanced_splits = 1;
            const std::string ptx = compile_cuda_ptx(mla_decode_source(d, c, 90), CudaArch{9, 0, true});
            // the P V late tile loop once (S of tile 0 and of the loop), the mbarriers set up again for a later
            // unit, the cut segments' arrival counter
            CHECK(occurrences(ptx, "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16") == 2 * 36);
            CHECK(occurrences(ptx, "mbarrier.inval.shared::cta.b64") >= 1);
            CHECK(occurrences(ptx, "atom.global.add.u32") + occurrences(ptx, "atom.add.u32") +
                      occurrences(ptx, "atom.global.gpu.add.u32") >=
                  1);
            check_no_ptxas_performance_loss(d, c);
            c.balanced_splits = 2;  // ... the last part's own rows merged from shared memory: the counter read first
            const std::string own = compile_cuda_ptx(mla_decode_source(d, c, 90), CudaArch{9, 0, true});
            CHECK(occurrences(own, "ld.acquire.gpu.global.u32") == 1);
            CHECK(occurrences(own, "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16") == 2 * 36);
            check_no_ptxas_performance_loss(d, c);
            c.balanced_splits = 3;  // ... and the next unit's tile 0 issued before the epilogue
            const std::string next = compile_cuda_ptx(mla_decode_source(d, c, 90), CudaArch{9, 0, true});
            CHECK(occurrences(next, "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16") == 2 * 36);
            CHECK(next != own);
            check_no_ptxas_performance_loss(d, c);
        }
    }
}

TEST_CASE("cuda nvrtc: early_tiles (K copies before griddepcontrol.wait) compiles without ptxas performance loss") {
    if (!nvrtc_available()) {
        MESSAGE("skipped: built without NVRTC");
        return;
    }
    const MlaDecodeDesc v3;
    MlaDecodeConfig c = mla_decode_default_config(v3, 90);
    c.early_tiles = 1;  // plain and profiled: the default (bw1 pvo2) and cm16 hb32 bw1
    check_no_ptxas_performance_loss(v3, c);
    // the wait on both paths (a CTA with tiles, one without), before Q's copy: griddepcontrol.wait in the PTX
    CHECK(occurrences(compile_cuda_ptx(mla_decode_source(v3, c, 90), CudaArch{9, 0, true}), "griddepcontrol.wait") >=
          2);
    c.early_tiles = 2;  // ... and Q's copy before the wait too
    check_no_ptxas_performance_loss(v3, c);
    c.pv_overlap = 0;
    c.cluster_merge = 16;
    c.head_block = 32;
    check_no_ptxas_performance_loss(v3, c);
    c.early_tiles = 1;
    check_no_ptxas_performance_loss(v3, c);
    // the append lets its dependent start
    const std::string append_ptx = compile_cuda_ptx(kv_append_source(v3), CudaArch{9, 0, true});
    CHECK(occurrences(append_ptx, "griddepcontrol.launch_dependents") == 1);
}

TEST_CASE("cuda nvrtc: stage_box_wait (each box of a P V late stage on its own mbarrier) compiles without ptxas loss") {
    if (!nvrtc_available()) {
        MESSAGE("skipped: built without NVRTC");
        return;
    }
    for (int heads : {128, 20}) {  // (20: one padded head block)
        MlaDecodeDesc d;
        d.heads = heads;
        MlaDecodeConfig c = mla_decode_large_batch_config(d, 90);
        const std::string plain = compile_cuda_ptx(mla_decode_source(d, c, 90), CudaArch{9, 0, true});
        for (int kind : {7, 8}) {
            CAPTURE(heads);
            CAPTURE(kind);
            c.producer_consumer = kind;
            c.stage_box_wait = 1;
            const std::string ptx = compile_cuda_ptx(mla_decode_source(d, c, 90), CudaArch{9, 0, true});
            // S of tile 0 and of the loop; a barrier per box: 2 x 9 initialised (count 1) beside the 9 of the
            // halves' layout, each box's copy announced on its own barrier
            CHECK(occurrences(ptx, "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16") == 2 * 36);
            CHECK(occurrences(ptx, "mbarrier.init.shared") > occurrences(plain, "mbarrier.init.shared"));
            CHECK(occurrences(ptx, "mbarrier.arrive.expect_tx") > occurrences(plain, "mbarrier.arrive.expect_tx"));
            check_no_ptxas_performance_loss(d, c);
        }
        c.producer_consumer = 7;  // 2: warpgroup 0's P V as two m64n128 groups (loop, last tile), boxes 0, 1 released
        c.stage_box_wait = 2;     // after the first: one more barrier pair
        const std::string split = compile_cuda_ptx(mla_decode_source(d, c, 90), CudaArch{9, 0, true});
        CHECK(occurrences(split, "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16") == 2 * 2 * 4);
        CHECK(occurrences(split, "wgmma.wait_group.sync.aligned 2") >= 1);
        check_no_ptxas_performance_loss(d, c);
    }
    MlaDecodeConfig bad = mla_decode_large_batch_config(MlaDecodeDesc{}, 90);  // not with the balanced schedule
    bad.stage_box_wait = 1;
    bad.balanced_splits = 1;
    CHECK_FALSE(mla_decode_unsupported(MlaDecodeDesc{}, bad, 90).empty());
}
