// Desc/Config field lists: every field changes the name and the hash; JSON round trips.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "codegen/cuda/layer_kernels.hpp"
#include "codegen/cuda/mla_kernels.hpp"

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

}  // namespace

TEST_CASE("cuda desc: MLA decode name spells the descriptor and config") {
    const MlaDecodeDesc d;
    const MlaDecodeConfig c;
    CHECK(mla_decode_name(d, c) ==
          "mla_decode_bf16_h128_lat512_rope64_pg64__t64_s2_c1_wg0_mt1_pb0_pdl0_qs0_qc1_prof0_tma0_dpdl0_cw0_ss0_fc0_pro0_bs0_l2p0_mh0_pc0_ml0_hb64_cm0_sf0_tcl0_esm0_mel0_bw0_pvo0_qor0_bal0_et0_sbw0");
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
          "mla_decode_bf16_h128_lat512_rope64_pg64__t64_s2_c1_wg1_mt4_pb0_pdl0_qs0_qc1_prof0_tma0_dpdl0_cw0_ss0_fc0_pro0_bs0_l2p0_mh0_pc0_ml0_hb64_cm0_sf0_tcl0_esm0_mel0_bw0_pvo0_qor0_bal0_et0_sbw0");
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
            // pc6 with multicast tiles (tma 2: 128 heads only); (session 7) pc7 .. pc11 with softmax_fast 2, 3
            // ... and (session 7) the tiles claimed at run time (tile_claim) on the default's settings, the rows
            // staged by stmatrix (epilogue_stmatrix) with and without them and on cm16 hb32, the merge's context
            // length read early (merge_early) alone and with both, S waiting box by box (tile_box_wait) on the
            // default and cm16 hb32; (session 8) Q's boxes too (tile_box_wait 2) on cm16 hb32 and the default, the
            // overlapped tile loop (pv_overlap 1) with bw2 and bw1 and where a CTA has 2 tiles (2), cm16 hb32 with Q's
            // own rows (q_own_rows) bw1, bw2; pc7 sf2 and pc8 sf2 with the balanced schedule (bal1 .. bal3);
            // (session 9) the default and cm16 hb32 bw1 with their first K copies before the wait (early_tiles 1, 2)
            // (session 9) pc7 sf2 and pc8 sf2 with a barrier per box (stage_box_wait 1), pc7 sf2 with sbw2
            CHECK((sm == 90) == (wgmma == (heads == 128 ? 113 : 101)));
            if (sm == 90) CHECK(v.size() >= 10);
        }
    }
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

TEST_CASE("cuda mla: balanced_splits launches one CTA per SM on a 1-D grid, merges in the decode, two slots per CTA") {
    const MlaDecodeDesc d;
    MlaDecodeConfig c = mla_decode_large_batch_config(d, 90);
    c.balanced_splits = 1;
    CHECK(mla_decode_unsupported(d, c, 90).empty());
    CHECK(mla_decode_source(d, c, 90).source.find("mf::mla_decode_balanced<") != std::string::npos);
    CHECK(mla_decode_source(d, c, 90).source.find(", 4, true, false, 0, false, 0, false, 1>(p)") != std::string::npos);
    for (int batch : {1, 8, 64})  // one CTA per SM whatever the shape, capped at kMlaBalancedMaxCtas
        for (int len : {1, 1000, 32768}) CHECK(mla_decode_num_splits(d, c, batch, len, 132) == 132);
    CHECK(mla_decode_num_splits(d, c, 64, 8192, 2000) == kMlaBalancedMaxCtas);
    const Dim3 g = mla_decode_grid(d, c, 64, 132);
    CHECK((g.x == 132 && g.y == 1 && g.z == 1));
    CHECK(mla_decode_grid(d, c, 3, 1).x == 2);  // at least one CTA per head block
    CHECK_FALSE(mla_decode_writes_output(c, 1));  // even one CTA: the kernel's own launch path
    CHECK(mla_decode_fuses_combine(c, 132, 132, 0));  // no co-residency needed (no CTA waits for another)
    CHECK(mla_decode_fuses_combine(c, 1, 1, 0));
    CHECK(mla_decode_grid(d, c, 1, kMlaBalancedMaxCtas + 44).x == unsigned(kMlaBalancedMaxCtas));  // capped
    // two slots of 64 bf16 rows and their lse per CTA, whatever the batch
    CHECK(mla_decode_o_part_bytes(d, c, 64, mla_decode_partials(c, 132)) == size_t(2) * 132 * 64 * (512 * 2 + 4));
    CHECK(mla_decode_o_part_bytes(d, c, 1, 7) == size_t(2) * 7 * 64 * (512 * 2 + 4));
    CHECK(mla_decode_o_part_bytes(d, c, 1, 1) == size_t(2) * 2 * 64 * (512 * 2 + 4));  // (the grid's 2 CTAs)
    // the P V late kernels with single-CTA TMA only, no programmatic launches
    for (auto bad : {+[](MlaDecodeConfig& x) { x.producer_consumer = 2, x.softmax_fast = 1; },
                     +[](MlaDecodeConfig& x) { x.tma = 2; }, +[](MlaDecodeConfig& x) { x.decode_pdl = 1; },
                     +[](MlaDecodeConfig& x) { x.balanced_splits = 4; },
                     +[](MlaDecodeConfig& x) { x.balanced_splits = 3, x.partial_bf16 = 0; }}) {
        MlaDecodeConfig x = c;
        bad(x);
        CHECK_FALSE(mla_decode_unsupported(d, x, 90).empty());
    }
    CHECK_FALSE(mla_decode_unsupported(d, c, 80).empty());
}
