// Desc/Config field lists: every field changes the name and the hash; JSON round trips.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "codegen/cuda/layer_kernels.hpp"
#include "codegen/cuda/mla_kernels.hpp"
#include "codegen/cuda/mla_split_policy.hpp"

using namespace mf;

namespace {

// Perturbs each field of `base` in turn (ints +1, bools and enums flipped) and checks name and hash move.
template <class T, class NameFn>
void check_every_field_matters(const T& base, NameFn name) {
    const std::string n0 = name(base);
    const uint64_t h0 = fields_hash(base);
    const size_t count = fields_values(base).size();
    for (size_t i = 0; i < count; ++i) {
        T x = base;
        size_t k = 0;
        T::fields(x, [&](const char*, const char*, auto& v) {
            using V = std::decay_t<decltype(v)>;
            if (k++ != i) return;
            if constexpr (std::is_same_v<V, bool>)
                v = !v;
            else if constexpr (std::is_same_v<V, CudaDtype>)
                v = v == CudaDtype::f32 ? CudaDtype::bf16 : CudaDtype::f32;
            else if constexpr (std::is_same_v<V, ElementwiseOp>)
                v = v == ElementwiseOp::add ? ElementwiseOp::cast : ElementwiseOp::add;
            else
                v = v + 1;
        });
        CAPTURE(i);
        CHECK(name(x) != n0);
        CHECK(fields_hash(x) != h0);
        CHECK_FALSE(fields_equal(x, base));
        CHECK(fields_equal(fields_from_json<T>(fields_to_json(x)), x));
    }
    CHECK(fields_equal(fields_from_json<T>(fields_to_json(base)), base));
}

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

TEST_CASE("cuda desc: MLA decode name spells the descriptor and config") {
    const MlaDecodeDesc d;
    const MlaDecodeConfig c;
    CHECK(mla_decode_name(d, c) ==
          "mla_decode_bf16_h128_lat512_rope64_pg64__t64_s2_c1_wg0_mt1_pb0_pdl0_qs0_qc1_prof0_tma0_dpdl0_cw0_ss0_fc0_pro0_bs0_l2p0_mh0_pc0_ml0_hb64_cm0_sf0");
    CHECK(fields_print(d) == "dtype=bf16 heads=128 latent_dim=512 rope_dim=64 page_size=64");
    check_every_field_matters(d, [&](const MlaDecodeDesc& x) { return mla_decode_name(x, c); });
    check_every_field_matters(c, [&](const MlaDecodeConfig& x) { return mla_decode_name(d, x); });
}

TEST_CASE("cuda desc: layer kernel descriptors") {
    check_every_field_matters(RmsNormDesc{}, rms_norm_name);
    check_every_field_matters(RopeDesc{}, rope_name);
    check_every_field_matters(RouterTopkDesc{}, router_topk_name);
    check_every_field_matters(ElementwiseDesc{}, elementwise_name);
    CHECK(router_topk_name(RouterTopkDesc{}) == "router_topk_e256_g8_kg4_gt2_k8_sig1_norm1");
}

TEST_CASE("cuda desc: JSON rejects wrong types and unknown enum values") {
    CHECK_THROWS_AS(fields_from_json<MlaDecodeDesc>(nlohmann::json{{"heads", "many"}}), std::runtime_error);
    CHECK_THROWS_AS(fields_from_json<MlaDecodeDesc>(nlohmann::json{{"dtype", "fp64"}}), std::runtime_error);
    const auto d = fields_from_json<MlaDecodeDesc>(nlohmann::json{{"heads", 16}});
    CHECK(d.heads == 16);
    CHECK(d.latent_dim == 512);
}

TEST_CASE("cuda mla: splits fill the SMs once and never exceed the tiles") {
    const MlaDecodeDesc d;  // 128 heads: 2 head blocks
    const MlaDecodeConfig c{64, 2};
    CHECK(mla_decode_num_splits(d, c, 1, 8192, 132) == 66);
    CHECK(mla_decode_num_splits(d, c, 1, 1024, 132) == 16);  // 1024 / 64 tiles
    CHECK(mla_decode_num_splits(d, c, 8, 8192, 132) == 8);   // 8 * 2 * 8 = 128 <= 132
    CHECK(mla_decode_num_splits(d, c, 64, 32768, 132) == 1);
    CHECK(mla_decode_num_splits(d, c, 1, 1, 132) == 1);
    for (int b : {1, 3, 8, 20, 64})
        for (int len : {1, 100, 1000, 33000}) {
            const int s = mla_decode_num_splits(d, c, b, len, 132);
            CHECK(s >= 1);
            CHECK(s <= (len + 63) / 64);
            CHECK((s == 1 || b * 2 * s <= 132));
        }
}

TEST_CASE("cuda mla: min_split_tiles makes fewer, longer splits") {
    const MlaDecodeDesc d;
    const MlaDecodeConfig c4{64, 2, 1, 1, 4};
    CHECK(mla_decode_num_splits(d, c4, 1, 8192, 132) == 32);  // 128 tiles / 4
    CHECK(mla_decode_num_splits(d, c4, 1, 1024, 132) == 4);
    CHECK(mla_decode_num_splits(d, c4, 1, 100, 132) == 1);
    CHECK(mla_decode_num_splits(d, c4, 1, 32768, 132) == 66);  // the SMs still cap it
    CHECK_FALSE(mla_decode_unsupported(d, MlaDecodeConfig{64, 2, 1, 1, 0}, 90).empty());
    CHECK(mla_decode_name(d, c4) ==
          "mla_decode_bf16_h128_lat512_rope64_pg64__t64_s2_c1_wg1_mt4_pb0_pdl0_qs0_qc1_prof0_tma0_dpdl0_cw0_ss0_fc0_pro0_bs0_l2p0_mh0_pc0_ml0_hb64_cm0_sf0");
}

TEST_CASE("cuda mla: bf16 partials halve the workspace, wgmma kernel only, with their own combine") {
    const MlaDecodeDesc d;
    const MlaDecodeConfig f32{64, 2, 1, 1}, b16{64, 2, 1, 1, 1, 1};
    CHECK(mla_decode_o_part_bytes(d, f32, 3, 5) == size_t(3) * 128 * 5 * 512 * 4);
    CHECK(mla_decode_o_part_bytes(d, b16, 3, 5) == size_t(3) * 128 * 5 * 512 * 2);
    CHECK(mla_decode_unsupported(d, b16, 90).empty());
    CHECK_FALSE(mla_decode_unsupported(d, MlaDecodeConfig{64, 2, 1, 0, 1, 1}, 90).empty());
    CHECK(mla_decode_source(d, b16, 90).source.find("mf::bf16, false, false, 1, 0, 1, false, false>(p)") !=
          std::string::npos);
    CHECK(mla_decode_source(d, f32, 90).source.find("float, false, false, 1, 0, 1, false, false>(p)") !=
          std::string::npos);
    CHECK(mla_combine_name(d, true) != mla_combine_name(d));
    CHECK(mla_combine_source(d, true).source.find("mla_combine<128, 512, mf::bf16, false>") !=
          std::string::npos);
}

TEST_CASE("cuda mla: qk_split needs the wgmma kernel with 64-token tiles") {
    const MlaDecodeDesc d;
    const MlaDecodeConfig c{64, 2, 1, 1, 1, 0, 0, 1};
    CHECK(mla_decode_unsupported(d, c, 90).empty());
    CHECK(mla_decode_source(d, c, 90).source.find("float, false, true, 1, 0, 1, false, false>(p)") !=
          std::string::npos);
    CHECK_FALSE(mla_decode_unsupported(d, MlaDecodeConfig{32, 3, 1, 1, 1, 0, 0, 1}, 90).empty());
    CHECK_FALSE(mla_decode_unsupported(d, MlaDecodeConfig{64, 2, 1, 0, 1, 0, 0, 1}, 90).empty());
    CHECK(mla_decode_smem_bytes(d, c) <= 227u * 1024);
}

TEST_CASE("cuda mla: qk_chains splits the 36 Q K^T k-steps over 1, 2 or 4 accumulators (wgmma kernel)") {
    const MlaDecodeDesc d;
    const MlaDecodeConfig c{64, 2, 1, 1, 1, 0, 0, 1, 4};
    CHECK(mla_decode_unsupported(d, c, 90).empty());
    CHECK(mla_decode_source(d, c, 90).source.find("float, false, true, 4, 0, 1, false, false>(p)") !=
          std::string::npos);
    CHECK_FALSE(mla_decode_unsupported(d, MlaDecodeConfig{64, 2, 1, 1, 1, 0, 0, 0, 3}, 90).empty());
    CHECK_FALSE(mla_decode_unsupported(d, MlaDecodeConfig{64, 2, 1, 0, 1, 0, 0, 0, 2}, 90).empty());
    MlaDecodeDesc odd = d;
    odd.rope_dim = 0;  // 512 / 16 = 32 k-steps: 4 chains fine; 576 / 16 = 36: fine too
    CHECK(mla_decode_unsupported(odd, c, 90).empty());
}

TEST_CASE("cuda mla: profile builds the wgmma kernel with cycle counters, never a tuning candidate") {
    const MlaDecodeDesc d;
    MlaDecodeConfig c{64, 2, 1, 1};
    c.profile = 1;
    CHECK(mla_decode_unsupported(d, c, 90).empty());
    CHECK(mla_decode_source(d, c, 90).source.find(", 1, 0, 1, false, true>(p)") != std::string::npos);
    for (const MlaDecodeConfig& x : mla_decode_candidates(d, 90)) CHECK(x.profile == 0);
    c.wgmma = 0;
    CHECK_FALSE(mla_decode_unsupported(d, c, 90).empty());
}

TEST_CASE("cuda mla: pdl launches the combine as a programmatic dependent (wgmma kernel only)") {
    const MlaDecodeDesc d;
    const MlaDecodeConfig c{64, 2, 1, 1, 1, 1, 1};
    CHECK(mla_decode_unsupported(d, c, 90).empty());
    CHECK_FALSE(mla_decode_unsupported(d, MlaDecodeConfig{64, 2, 1, 0, 1, 0, 1}, 90).empty());
    CHECK(mla_decode_source(d, c, 90).source.find("mf::bf16, true, false, 1, 0, 1, false, false>(p)") !=
          std::string::npos);
    const auto comb = mla_combine_source(d, c);
    CHECK(comb.name == mla_combine_name(d, true, true));
    CHECK(comb.source.find("mla_combine<128, 512, mf::bf16, true>") != std::string::npos);
    CHECK(mla_combine_name(d, true, true) != mla_combine_name(d, true, false));
}

TEST_CASE("cuda mla: cluster configs need sm_90, room to stage the partial, and splits in whole clusters") {
    const MlaDecodeDesc d;
    CHECK(mla_decode_unsupported(d, MlaDecodeConfig{64, 2, 8}, 90).empty());
    CHECK(mla_decode_unsupported(d, MlaDecodeConfig{32, 2, 4}, 90).empty());
    CHECK_FALSE(
        mla_decode_unsupported(d, MlaDecodeConfig{32, 1, 4}, 90).empty());  // 110.6 KB < 133 KB staged
    CHECK_FALSE(mla_decode_unsupported(d, MlaDecodeConfig{32, 2, 4}, 86).empty());
    CHECK_FALSE(mla_decode_unsupported(d, MlaDecodeConfig{64, 2, 3}, 90).empty());
    const MlaDecodeConfig c8{64, 2, 8};
    CHECK(mla_decode_num_splits(d, c8, 1, 8192, 132) == 64);
    CHECK(mla_decode_partials(c8, 64) == 8);
    CHECK(mla_decode_num_splits(d, c8, 64, 32768, 132) == 8);  // at least one whole cluster
    CHECK(mla_decode_num_splits(d, c8, 1, 100, 132) == 8);     // 2 tiles: 6 splits stay empty
    const auto src = mla_decode_source(d, c8, 90);
    CHECK(src.source.find("__cluster_dims__(8, 1, 1)") != std::string::npos);
    CHECK(mla_decode_source(d, MlaDecodeConfig{64, 2, 1}, 90).source.find("__cluster_dims__") ==
          std::string::npos);
}

TEST_CASE("cuda mla: TMA tile loads (1) and their multicast over a head-block cluster (2), decode_pdl") {
    MlaDecodeDesc d;
    MlaDecodeConfig c{64, 2, 1, 1, 1, 1};
    for (int tma : {1, 2}) {
        c.tma = tma;
        CAPTURE(tma);
        CHECK(mla_decode_unsupported(d, c, 90).empty());
        const auto src = mla_decode_source(d, c, 90);
        CHECK(src.source.find("const __grid_constant__ mf::MlaDecodeParams p") != std::string::npos);
        CHECK((src.source.find("__cluster_dims__(1, 2, 1)") != std::string::npos) == (tma == 2));
        CHECK(src.source.find(", 1, " + std::to_string(tma) + ", 1, false, false>(p)") != std::string::npos);
        CHECK(src.dynamic_smem_bytes <= 227u * 1024);
        for (int sm : {80, 89}) CHECK_FALSE(mla_decode_unsupported(d, c, sm).empty());
    }
    CHECK_FALSE(mla_decode_unsupported(d, MlaDecodeConfig{64, 2, 1, 0, 1, 0, 0, 0, 1, 0, 1}, 90).empty());
    MlaDecodeDesc odd = d;
    odd.page_size = 48;  // a 64-token tile would cross pages: one box per page no longer holds
    CHECK_FALSE(mla_decode_unsupported(odd, c, 90).empty());
    odd = d;
    odd.heads = 64;  // one head block: no pair to multicast to
    CHECK_FALSE(mla_decode_unsupported(odd, c, 90).empty());
    c.tma = 1;
    CHECK(mla_decode_unsupported(odd, c, 90).empty());
    c.tma = 3;
    CHECK_FALSE(mla_decode_unsupported(d, c, 90).empty());
    // tma 0 keeps the cp.async kernel and leaves the tensor map alone (no driver needed)
    c.tma = 0;
    MlaDecodeParams p{};
    p.kv_map.opaque[0] = 7;
    mla_decode_bind_cache(d, c, p);
    CHECK(p.kv_map.opaque[0] == 7);
    c.decode_pdl = 1;
    CHECK(mla_decode_unsupported(d, c, 90).empty());
    CHECK(mla_decode_source(d, c, 90).source.find(", 0, 1, true, false>(p)") != std::string::npos);
    c.wgmma = 0;
    CHECK_FALSE(mla_decode_unsupported(d, c, 90).empty());
}

TEST_CASE("cuda mla: combine_warp: one warp per (row, head) when the partials are few") {
    const MlaDecodeDesc d;
    MlaDecodeConfig c{64, 2, 1, 1, 1, 1};
    CHECK_FALSE(mla_combine_uses_warps(d, c, 8, 8));
    c.combine_warp = 1;
    CHECK(mla_decode_unsupported(d, c, 90).empty());
    CHECK(mla_combine_uses_warps(d, c, 8, 8));
    CHECK(mla_combine_uses_warps(d, c, 2, kMlaCombineWarpMaxSplits));
    CHECK_FALSE(mla_combine_uses_warps(d, c, 8, kMlaCombineWarpMaxSplits + 1));
    CHECK_FALSE(mla_combine_uses_warps(d, c, 1, 8));  // 16 CTAs would carry all the partials
    const auto src = mla_combine_warp_source(d, c);
    CHECK(src.name == mla_combine_warp_name(d, true, false));
    CHECK(src.block_threads == 256);
    CHECK(src.source.find("mla_combine_warp<128, 512, mf::bf16, false>") != std::string::npos);
    CHECK(mla_combine_warp_grid(d, 3).x == 16);
    CHECK(mla_combine_warp_grid(d, 3).y == 3);
    c.combine_warp = 2;
    CHECK_FALSE(mla_decode_unsupported(d, c, 90).empty());
}

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
    MlaDecodeConfig large = c;  // since session 6: P V late (all of warpgroup 1's P V late) with the fast softmax
    large.producer_consumer = 7;
    large.softmax_fast = 1;
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

TEST_CASE("cuda mla: split pairs (cluster 2) share Q by TMA multicast and merge their partials") {
    const MlaDecodeDesc d;
    MlaDecodeConfig c{64, 2, 2, 1, 1, 1};
    CHECK_FALSE(mla_decode_unsupported(d, c, 90).empty());  // Q multicast needs the TMA path
    c.tma = 2;
    CHECK(mla_decode_unsupported(d, c, 90).empty());
    auto src = mla_decode_source(d, c, 90);
    CHECK(src.source.find("__cluster_dims__(2, 2, 1)") != std::string::npos);
    CHECK(src.source.find(", 1, 2, 2, false, false>(p)") != std::string::npos);
    c.tma = 1;
    src = mla_decode_source(d, c, 90);
    CHECK(src.source.find("__cluster_dims__(2, 1, 1)") != std::string::npos);
    CHECK(mla_decode_partials(c, 66) == 33);
    CHECK(mla_decode_num_splits(d, c, 1, 8192, 132) % 2 == 0);
    CHECK_FALSE(mla_decode_writes_output(c, 2));
    c.cluster = 4;
    CHECK_FALSE(mla_decode_unsupported(d, c, 90).empty());
}

TEST_CASE("cuda mla: the wgmma kernel runs on sm_90 only, tiles 32/64, 2-4 stages within 227 KiB") {
    const MlaDecodeDesc d;
    for (const MlaDecodeConfig& c : {MlaDecodeConfig{64, 2, 1, 1}, MlaDecodeConfig{32, 2, 1, 1},
                                    MlaDecodeConfig{32, 3, 1, 1}, MlaDecodeConfig{32, 4, 1, 1}}) {
        CAPTURE(fields_print(c));
        CHECK(mla_decode_unsupported(d, c, 90).empty());
        CHECK(mla_decode_smem_bytes(d, c) <= 227u * 1024);
        for (int sm : {80, 86, 89, 100}) CHECK_FALSE(mla_decode_unsupported(d, c, sm).empty());
        const auto src = mla_decode_source(d, c, 90);
        CHECK(src.source.find("mla_decode_wgmma<") != std::string::npos);
        CHECK(src.source.find("mla_decode_wgmma.cuh") != std::string::npos);
    }
    CHECK_FALSE(mla_decode_unsupported(d, MlaDecodeConfig{64, 3, 1, 1}, 90).empty());  // 304 KB
    CHECK_FALSE(mla_decode_unsupported(d, MlaDecodeConfig{16, 2, 1, 1}, 90).empty());
    CHECK_FALSE(mla_decode_unsupported(d, MlaDecodeConfig{64, 1, 1, 1}, 90).empty());
    CHECK_FALSE(mla_decode_unsupported(d, MlaDecodeConfig{64, 2, 2, 1}, 90).empty());
    CHECK_FALSE(mla_decode_unsupported(d, MlaDecodeConfig{64, 2, 1, 2}, 90).empty());
    CHECK_FALSE(mla_decode_unsupported(d, MlaDecodeConfig{32, 3, 1, 0}, 90).empty());  // mma.sync: 1 or 2
    // 2 x 72 KiB of K + 72 KiB of Q + P + row vectors + mbarriers + 1 KiB alignment slack
    CHECK(mla_decode_smem_bytes(d, MlaDecodeConfig{64, 2, 1, 1}) ==
          1024 + 73728 + 2 * 73728 + 8192 + 1280 + 128);
}

TEST_CASE("cuda mla: decode candidates are the supported configs, default first, no repeats") {
    for (int sm : {80, 86, 89, 90}) {
        CAPTURE(sm);
        for (int heads : {128, 20}) {
            MlaDecodeDesc d;
            d.heads = heads;
            const auto v = mla_decode_candidates(d, sm);
            REQUIRE_FALSE(v.empty());
            CHECK(v[0] == mla_decode_default_config(d, sm));
            int wgmma = 0;
            for (size_t i = 0; i < v.size(); ++i) {
                CAPTURE(fields_print(v[i]));
                CHECK(mla_decode_unsupported(d, v[i], sm).empty());
                for (size_t j = 0; j < i; ++j) CHECK_FALSE(v[i] == v[j]);
                wgmma += v[i].wgmma;
            }
            // t64 s2, t32 s2/s3/s4; t64 s2 and t32 s4 with longer splits (mt 2, 4), bf16 partials (mt 1, 4);
            // t64 s2 with the dependent combine launch (fp32, bf16, bf16 + mt 4); t64 s2 qk_split (pdl 0, 1)
            // ... and 2 or 4 independent Q K^T chains (t64 qs0 qc2, qs1 qc2/qc4, qs1 qc4 pdl, t32 s3 qc2)
            // + qs1 qc4 pdl1 with bf16 partials; t64 pb1 with TMA 1 and 2 (each also with both PDL launches),
            // t32 s4 pb1 TMA 2, t64 pb1 with both PDL launches (TMA 2 needs two head blocks: not at 20 heads)
            // ... split pairs (cluster 2): t64 pb1 TMA 1, TMA 2 (also with both PDL launches), t32 s4 TMA 2
            // ... and qk_split with TMA 1 and 2, without and with split pairs, and qs1 c2 TMA 2 with both PDL
            // ... and the per-warp combine on the cp.async kernel and on TMA 2 pairs with both PDL launches
            // ... and the seesaw schedule on the default's settings, and the producer/consumer kernels (pc 1: 3
            // stages, pc 2 and pc 3: 2 stages)
            // ... and the fused combine / early prologue on the default (fc, pro, both; both with fp32
            // partials; both with bulk stores; the bulk-copy merge with and without them; L2 prefetch; t32 s4)
            // ... and the merge's 512-byte warp loads (fc1 pro1 ml1), with merge helpers, fc2 helpers, fc3 with
            // and without helpers, fc3 / fc1 / fc3 mh1 with the early page ids (pro2), 32 heads per CTA (fc3 pro2
            // and fc1 pro1, both ml1 mh1), t32 s4
            // ... and the cluster merge (cm16, cm8, cm16 with 32 heads per CTA) on the default's settings
            // ... and (session 6) pc2 with the fast softmax, the "P V late" kernels pc4 .. pc7 (with it), pc4 and
            // pc6 with multicast tiles (tma 2: 128 heads only)
            CHECK((sm == 90) == (wgmma == (heads == 128 ? 75 : 63)));
            if (sm == 90) CHECK(v.size() >= 10);
        }
    }
}

TEST_CASE("cuda mla: cluster_merge takes the splits of short contexts into one cluster of 8 or 16 CTAs") {
    const MlaDecodeDesc d;
    MlaDecodeConfig c = mla_decode_default_config(d, 90);
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

TEST_CASE("cuda rope: YaRN frequencies keep high frequencies and divide low ones by the factor") {
    YarnParams p;  // DeepSeek-V3: 64 dims, theta 10000, factor 40, original 4096, beta 32 / 1
    const auto f = yarn_inv_freq(p);
    REQUIRE(f.size() == 32);
    CHECK(f[0] == doctest::Approx(1.0));
    CHECK(f[31] == doctest::Approx(std::pow(10000.0, -62.0 / 64) / 40).epsilon(1e-6));
    for (size_t i = 1; i < f.size(); ++i) CHECK(f[i] < f[i - 1]);
    p.factor = 1.0;
    const auto plain = yarn_inv_freq(p);
    for (int i = 0; i < 32; ++i)
        CHECK(plain[i] == doctest::Approx(std::pow(10000.0, -2.0 * i / 64)).epsilon(1e-6));
}

TEST_CASE("cuda rope: YaRN attention scale of DeepSeek-V3") {
    CHECK(yarn_mscale(40.0) == doctest::Approx(0.1 * std::log(40.0) + 1.0));
    CHECK(yarn_mscale(1.0) == 1.0);
    const double m = yarn_mscale(40.0);
    CHECK(std::pow(192.0, -0.5) * m * m == doctest::Approx(0.1352338).epsilon(1e-6));
}

TEST_CASE("cuda mla: the fused combine (cooperative launch) and the early prologue, wgmma tma 1 kernel only") {
    const MlaDecodeDesc d;
    MlaDecodeConfig c = mla_decode_default_config(d, 90);
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
