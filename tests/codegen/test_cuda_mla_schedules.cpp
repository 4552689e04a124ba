// The MLA decode's schedule variants of the TMA wgmma kernel, host side: which configs each accepts, their names,
// sources and split counts (seesaw, producer/consumer, P V first / late). The default kernel's own options are in
// test_cuda_mla_variants.cpp; the GPU tests run every candidate against the reference (test_cuda_mla_gpu.cpp).
#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include <fmt/format.h>

#include "codegen/cuda/mla_kernels.hpp"

using namespace mf;

namespace {

// Whether sm_90 refuses config c on desc d once edit(c, d) changed them.
template <class Edit>
bool refused_after(MlaDecodeDesc d, MlaDecodeConfig c, Edit&& edit) {
    edit(c, d);
    return !mla_decode_unsupported(d, c, 90).empty();
}

// The rules every schedule variant of the TMA wgmma kernel (seesaw, producer/consumer) shares with it: TMA 1, tile
// 64, no cluster, no qk split, rope 64, page a multiple of the tile, the wgmma kernel; padded heads, fp32 partials,
// the profile and both PDL launches are fine.
void check_variant_kernel_rules(const MlaDecodeDesc& d, MlaDecodeConfig c) {
    auto rejects = [&](auto&& edit) { return refused_after(d, c, edit); };
    CHECK(rejects([](MlaDecodeConfig& x, MlaDecodeDesc&) { x.tma = 0; }));
    CHECK(rejects([](MlaDecodeConfig& x, MlaDecodeDesc&) { x.tma = 2; }));
    CHECK(rejects([](MlaDecodeConfig& x, MlaDecodeDesc&) { x.tile_tokens = 32; }));
    CHECK(rejects([](MlaDecodeConfig& x, MlaDecodeDesc&) { x.cluster = 2; }));
    CHECK(rejects([](MlaDecodeConfig& x, MlaDecodeDesc&) { x.qk_split = 1; }));
    CHECK(rejects([](MlaDecodeConfig& x, MlaDecodeDesc&) { x.qk_chains = 2; }));
    CHECK(rejects([](MlaDecodeConfig&, MlaDecodeDesc& dx) { dx.rope_dim = 128; }));
    CHECK(rejects([](MlaDecodeConfig&, MlaDecodeDesc& dx) { dx.page_size = 32; }));
    CHECK_FALSE(rejects([](MlaDecodeConfig& x, MlaDecodeDesc& dx) {
        dx.heads = 20;  // one padded head block
        x.partial_bf16 = 0;
        x.profile = 1;
        x.pdl = 1;
        x.decode_pdl = 1;
    }));
    c.wgmma = 0;
    CHECK_FALSE(mla_decode_unsupported(d, c, 90).empty());
}

}  // namespace

TEST_CASE("cuda mla: seesaw needs TMA 1, tile 64, 2 stages, no cluster, rope 64 and is never the default") {
    MlaDecodeDesc d;
    MlaDecodeConfig c{64, 2, 1, 1, 1, 1};
    c.tma = 1;
    c.combine_warp = 1;
    CHECK(mla_decode_default_config(d, 90).seesaw == 0);
    c.seesaw = 1;
    CHECK(mla_decode_unsupported(d, c, 90).empty());
    const auto src = mla_decode_source(d, c, 90);
    CHECK(src.source.find("#include \"mla_decode_seesaw.cuh\"") != std::string::npos);
    CHECK(src.source.find("const __grid_constant__ mf::MlaDecodeParams p") != std::string::npos);
    CHECK(src.source.find("mla_decode_seesaw<128, 512, 64, 64, mf::bf16, false, false, false>(p)") !=
          std::string::npos);
    CHECK(src.source.find("__cluster_dims__") == std::string::npos);
    // Q + 2 K stages + alpha, row max, row sums [2][64] + mbarriers (one per box) + alignment slack: no P buffer
    CHECK(src.dynamic_smem_bytes == 1024u + 73728 + 2 * 73728 + 6 * 64 * 4 + 256);
    CHECK(mla_decode_smem_bytes(d, c) < mla_decode_smem_bytes(d, MlaDecodeConfig{64, 2, 1, 1, 1, 1}));
    const auto cands = mla_decode_candidates(d, 90);
    CHECK(std::find(cands.begin(), cands.end(), c) != cands.end());
    for (int sm : {80, 89, 100}) CHECK_FALSE(mla_decode_unsupported(d, c, sm).empty());
    check_variant_kernel_rules(d, c);
    CHECK(refused_after(d, c, [](MlaDecodeConfig& x, MlaDecodeDesc&) { x.stages = 3; }));
    CHECK(refused_after(d, c, [](MlaDecodeConfig& x, MlaDecodeDesc&) { x.seesaw = 2; }));
}

TEST_CASE("cuda mla: producer_consumer needs TMA 1, tile 64, 3 stages, no cluster, rope 64, and is no default") {
    MlaDecodeDesc d;
    MlaDecodeConfig c{64, 3, 1, 1, 1, 1};
    c.tma = 1;
    c.combine_warp = 1;
    CHECK_FALSE(mla_decode_unsupported(d, c, 90).empty());  // t64 s3 with Q in shared memory: 304 KB
    c.producer_consumer = 1;
    CHECK(mla_decode_unsupported(d, c, 90).empty());
    CHECK_FALSE(mla_decode_default_config(d, 90) == c);
    const auto src = mla_decode_source(d, c, 90);
    CHECK(src.block_threads == 384);  // producer + 2 consumer warpgroups
    CHECK(src.source.find("#include \"mla_decode_pc.cuh\"") != std::string::npos);
    CHECK(src.source.find("__launch_bounds__(384, 1)") != std::string::npos);
    CHECK(src.source.find("const __grid_constant__ mf::MlaDecodeParams p") != std::string::npos);
    CHECK(src.source.find("mla_decode_pc<128, 512, 64, 64, mf::bf16, false, false, false>(p)") != std::string::npos);
    CHECK(src.source.find("__cluster_dims__") == std::string::npos);
    CHECK(src.name.find("_pc1") != std::string::npos);
    // 3 K stages + Q's rope block + alpha [3][2][64] and row sums [64] fp32 + 12 mbarriers + alignment slack
    CHECK(src.dynamic_smem_bytes == 1024u + 3 * 73728 + 8192 + 7 * 64 * 4 + 96);
    CHECK(src.dynamic_smem_bytes <= 227u * 1024);
    const auto cands = mla_decode_candidates(d, 90);
    CHECK(std::find(cands.begin(), cands.end(), c) != cands.end());
    for (int sm : {80, 89, 100}) CHECK_FALSE(mla_decode_unsupported(d, c, sm).empty());
    check_variant_kernel_rules(d, c);
    auto rejects = [&](auto&& edit) { return refused_after(d, c, edit); };
    CHECK(rejects([](MlaDecodeConfig& x, MlaDecodeDesc&) { x.stages = 2; }));
    CHECK(rejects([](MlaDecodeConfig& x, MlaDecodeDesc&) { x.seesaw = 1; }));
    CHECK(rejects([](MlaDecodeConfig& x, MlaDecodeDesc&) { x.producer_consumer = 2; }));  // 2 needs 2 stages
    CHECK(rejects([](MlaDecodeConfig& x, MlaDecodeDesc&) { x.producer_consumer = 3; }));
    CHECK(rejects([](MlaDecodeConfig& x, MlaDecodeDesc&) { x.fused_combine = 1; }));  // the wgmma kernel's only
    CHECK(rejects([](MlaDecodeConfig& x, MlaDecodeDesc&) { x.prologue = 1; }));
}

TEST_CASE("cuda mla: producer_consumer 2 (P V first) is a 2-stage, 256-thread candidate, 7 with softmax_fast the large-batch config") {
    MlaDecodeDesc d;
    MlaDecodeConfig c{64, 2, 1, 1, 1, 1};
    c.tma = 1;
    c.combine_warp = 1;
    c.producer_consumer = 2;
    CHECK(mla_decode_unsupported(d, c, 90).empty());
    CHECK_FALSE(mla_decode_default_config(d, 90) == c);
    const auto src = mla_decode_source(d, c, 90);
    CHECK(src.block_threads == 256);
    CHECK(src.source.find("#include \"mla_decode_pvfirst.cuh\"") != std::string::npos);
    CHECK(src.source.find("mla_decode_pvfirst<128, 512, 64, 64, mf::bf16, false, false, false>(p)") !=
          std::string::npos);
    // Q + 2 K stages + alpha [2][64] and row sums [64] fp32 + 8 mbarriers + alignment slack: no P buffer
    CHECK(src.dynamic_smem_bytes == 1024u + 73728 + 2 * 73728 + 3 * 64 * 4 + 80);
    const auto cands = mla_decode_candidates(d, 90);
    CHECK(std::find(cands.begin(), cands.end(), c) != cands.end());
    for (int sm : {80, 89, 100}) CHECK_FALSE(mla_decode_unsupported(d, c, sm).empty());
    MlaDecodeConfig x = c;
    x.stages = 3;
    CHECK_FALSE(mla_decode_unsupported(d, x, 90).empty());
    x = c;
    x.tma = 0;
    CHECK_FALSE(mla_decode_unsupported(d, x, 90).empty());
    MlaDecodeDesc r = d;
    r.rope_dim = 128;
    CHECK_FALSE(mla_decode_unsupported(r, c, 90).empty());
    // it is the large-batch config on sm_90 (the default elsewhere, and where it does not fit the desc)
    MlaDecodeConfig large = c;  // since session 6: P V late (all of warpgroup 1's P V late) with the fast softmax,
    large.producer_consumer = 7;  // since session 7 with its barrier after the exponentials
    large.softmax_fast = 2;
    CHECK(mla_decode_large_batch_config(d, 90) == large);
    for (int sm : {80, 86, 89}) CHECK(mla_decode_large_batch_config(d, sm) == mla_decode_default_config(d, sm));
    CHECK(mla_decode_large_batch_config(r, 90) == mla_decode_default_config(r, 90));
    // 3: the same kernel with tiles refilled by halves (a template flag), also a candidate
    x = c;
    x.producer_consumer = 3;
    CHECK(mla_decode_unsupported(d, x, 90).empty());
    CHECK(mla_decode_source(d, x, 90).source.find("mla_decode_pvfirst<128, 512, 64, 64, mf::bf16, false, false, "
                                                  "false, true>(p)") != std::string::npos);
    CHECK(std::find(cands.begin(), cands.end(), x) != cands.end());
    // 4..7: the "P V late" kernel (mla_decode_pvlate.cuh) with 2, 1, 3 or 4 of warpgroup 1's value blocks late
    for (int kind : {4, 5, 6, 7}) {
        x.producer_consumer = kind;
        CHECK(mla_decode_unsupported(d, x, 90).empty());
        CHECK(mla_decode_source(d, x, 90).source.find(
                  fmt::format("mla_decode_pvlate<128, 512, 64, 64, mf::bf16, false, false, false, {}, false>(p)",
                              kind == 4 ? 2 : kind == 5 ? 1 : kind == 6 ? 3 : 4)) != std::string::npos);
        x.softmax_fast = 1;
        CHECK(std::find(cands.begin(), cands.end(), x) != cands.end());
        x.softmax_fast = 0;
    }
    x.producer_consumer = 7;  // session 7: the softmax's barrier after its exponentials (2), 8 of them on the FP32
    for (int sf : {2, 3}) {   // pipe (3): the last template argument, candidates
        x.softmax_fast = sf;
        CHECK(mla_decode_unsupported(d, x, 90).empty());
        CHECK(mla_decode_source(d, x, 90).source.find(fmt::format(", 4, true, false, {}>(p)", sf == 3 ? 8 : 0)) !=
              std::string::npos);
        CHECK(std::find(cands.begin(), cands.end(), x) != cands.end());
        x.producer_consumer = 8;  // warpgroup 0's P from the softmax's registers
        CHECK(mla_decode_unsupported(d, x, 90).empty());
        CHECK(mla_decode_source(d, x, 90).source.find(fmt::format(", 4, true, false, {}, true>(p)", sf == 3 ? 8 : 0)) !=
              std::string::npos);
        CHECK(std::find(cands.begin(), cands.end(), x) != cands.end());
        x.producer_consumer = 9;  // ... and Q from registers for S's first 8 k-steps
        CHECK(mla_decode_unsupported(d, x, 90).empty());
        CHECK(mla_decode_source(d, x, 90).source.find(fmt::format(", 4, true, false, {}, true, 8>(p)", sf == 3 ? 8 : 0)) !=
              std::string::npos);
        CHECK(std::find(cands.begin(), cands.end(), x) != cands.end());
        for (int early : {10, 11}) {  // ... warpgroup 0's P V issued inside the softmax, with and without Q's registers
            x.producer_consumer = early;
            CHECK(mla_decode_unsupported(d, x, 90).empty());
            CHECK(mla_decode_source(d, x, 90).source.find(fmt::format(", 4, true, false, {}, true, {}, true>(p)",
                                                                      sf == 3 ? 8 : 0, early == 10 ? 8 : 0)) !=
                  std::string::npos);
            CHECK(std::find(cands.begin(), cands.end(), x) != cands.end());
        }
        x.producer_consumer = 3;  // not for P V first
        CHECK_FALSE(mla_decode_unsupported(d, x, 90).empty());
        x.producer_consumer = 7;
    }
    x.producer_consumer = 8;  // 8 needs the registers of softmax_fast 2 or 3
    x.softmax_fast = 1;
    CHECK_FALSE(mla_decode_unsupported(d, x, 90).empty());
    for (int kind : {9, 10, 11}) {
        x.producer_consumer = kind;
        CHECK_FALSE(mla_decode_unsupported(d, x, 90).empty());
    }
    x.producer_consumer = 12;
    x.softmax_fast = 2;
    CHECK_FALSE(mla_decode_unsupported(d, x, 90).empty());
    x.producer_consumer = 7;
    x.softmax_fast = 4;
    CHECK_FALSE(mla_decode_unsupported(d, x, 90).empty());
    x.softmax_fast = 0;
    x.producer_consumer = 4;  // tma 2: the pair of head blocks as a cluster (1, 2, 1) sharing the tiles
    x.tma = 2;
    x.softmax_fast = 1;
    CHECK(mla_decode_unsupported(d, x, 90).empty());
    CHECK(std::find(cands.begin(), cands.end(), x) != cands.end());
    CHECK(mla_decode_source(d, x, 90).source.find("__cluster_dims__(1, 2, 1)") != std::string::npos);
    CHECK(mla_decode_source(d, x, 90).source.find(", 2, true, true>(p)") != std::string::npos);
    x.producer_consumer = 2;  // not for P V first
    CHECK_FALSE(mla_decode_unsupported(d, x, 90).empty());
    x.tma = 1;
    x.softmax_fast = 0;
    x.producer_consumer = 8;
    CHECK_FALSE(mla_decode_unsupported(d, x, 90).empty());
    x = c;  // softmax_fast: producer_consumer 2 .. 7 only
    x.softmax_fast = 1;
    CHECK(mla_decode_unsupported(d, x, 90).empty());
    CHECK(std::find(cands.begin(), cands.end(), x) != cands.end());
    x.producer_consumer = 0;
    CHECK_FALSE(mla_decode_unsupported(d, x, 90).empty());
}
