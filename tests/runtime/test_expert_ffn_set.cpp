// The plan's per-m expert FFN configs: the batch's tokens per expert picks the config whose range holds it,
// the result is the chosen config's own result, and the plan's "moe_ffn" entries become the choices.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "codegen/isa.hpp"
#include "codegen/kernel_fields.hpp"
#include "runtime/expert_ffn_set.hpp"
#include "runtime/plan.hpp"

using namespace mf;

namespace {

ExpertFfnConfig config_with(int n_block, int gemv_max_m) {
    ExpertFfnConfig c;
    c.n_block = n_block;
    c.gemv_max_m = gemv_max_m;
    return c;
}

ExpertFfnWeights random_int8_expert(int hidden, int inter, std::mt19937& rng) {
    std::uniform_int_distribution<int> q(-127, 127);
    std::vector<int8_t> g(size_t(inter) * hidden), u(g.size()), d(g.size());
    for (auto* v : {&g, &u, &d})
        for (auto& x : *v) x = int8_t(q(rng));
    std::vector<float> si(size_t(inter), 1.0f / 127 / 16), sh(size_t(hidden), 1.0f / 127 / 16);
    return pack_expert_ffn_int8({SrcType::int8, inter, hidden, g.data(), 0, si.data()},
                                {SrcType::int8, inter, hidden, u.data(), 0, si.data()},
                                {SrcType::int8, hidden, inter, d.data(), 0, sh.data()});
}

}  // namespace

TEST_CASE("expert FFN set: tokens per expert is routed rows over experts with rows, rounded") {
    const std::vector<int32_t> t1{0}, t3{0, 1, 2}, t8{0, 1, 2, 3, 4, 5, 6, 7};
    const std::vector<float> g(8, 1.0f);
    auto batch = [&](std::vector<ExpertRoute>& r) { return ExpertFfnBatch{nullptr, 0, nullptr, 0, r}; };
    std::vector<ExpertRoute> decode(8, ExpertRoute{nullptr, t1, std::span<const float>(g).first(1)});
    CHECK(ExpertFfnSet::tokens_per_expert(batch(decode)) == 1);
    std::vector<ExpertRoute> mixed{{nullptr, t1, std::span<const float>(g).first(1)},
                                   {nullptr, {}, {}},
                                   {nullptr, t8, g},
                                   {nullptr, t3, std::span<const float>(g).first(3)}};
    CHECK(ExpertFfnSet::tokens_per_expert(batch(mixed)) ==
          4);  // 12 rows / 3 experts (the empty one not counted)
    std::vector<ExpertRoute> none{{nullptr, {}, {}}};
    CHECK(ExpertFfnSet::tokens_per_expert(batch(none)) == 0);
}

TEST_CASE("expert FFN set: each token count runs the config of its range, the fallback outside them") {
    if (!detect_cpu_isa().has(IsaFeature::avx512_vnni)) {
        MESSAGE("skipped: no AVX-512 VNNI");
        return;
    }
    const ExpertFfnDesc desc{WeightType::int8, 256, 128};
    KernelCache cache;
    const ExpertFfnConfig fallback = config_with(64, 15), small = config_with(128, 16),
                          mid = config_with(128, 2);
    const std::vector<ExpertFfnChoice> choices{{1, 2, small}, {3, 8, mid}, {9, 32, small}};
    ExpertFfnSet set(desc, choices, fallback, cache, 1);
    CHECK(set.drivers() == 3);  // the two ranges of `small` share one driver
    CHECK(set.driver_for(1).config() == small);
    CHECK(set.driver_for(2).config() == small);
    CHECK(set.driver_for(3).config() == mid);
    CHECK(set.driver_for(8).config() == mid);
    CHECK(set.driver_for(20).config() == small);
    CHECK(set.driver_for(33).config() == fallback);
    CHECK(&set.driver_for(1) == &set.driver_for(32));

    CHECK_THROWS_WITH_AS(ExpertFfnSet(desc, {{1, 4, small}, {4, 8, mid}}, fallback, cache, 1),
                         doctest::Contains("overlap"), std::runtime_error);
    CHECK_THROWS_WITH_AS(ExpertFfnSet(desc, {{5, 4, small}}, fallback, cache, 1), doctest::Contains("range"),
                         std::runtime_error);

    // A batch of 3 experts with 4, 5 and 4 tokens (4 per expert) gives exactly what the `mid` config gives
    // alone.
    std::mt19937 rng(3);
    std::vector<ExpertFfnWeights> w;
    for (int e = 0; e < 3; ++e) w.push_back(random_int8_expert(desc.hidden, desc.inter, rng));
    const int tokens = 6;
    std::vector<float> x(size_t(tokens) * desc.hidden);
    std::uniform_real_distribution<float> xd(-1, 1);
    for (auto& v : x) v = xd(rng);
    const std::vector<int32_t> ta{0, 1, 2, 3}, tb{1, 2, 3, 4, 5}, tc{0, 2, 4, 5};
    const std::vector<float> ga{0.5f, 0.25f, 1, 0.75f}, gb{1, 1, 0.5f, 0.5f, 0.25f},
        gc{0.3f, 0.6f, 0.9f, 0.1f};
    const std::vector<ExpertRoute> routes{{&w[0], ta, ga}, {&w[1], tb, gb}, {&w[2], tc, gc}};
    std::vector<float> y_set(x.size(), 0.0f), y_mid(x.size(), 0.0f);
    ThreadPool pool(std::vector<int>{});
    set.run(pool, ExpertFfnBatch{x.data(), desc.hidden, y_set.data(), desc.hidden, routes});
    ExpertFfn alone(desc, mid, cache, 1);
    alone.run(pool, ExpertFfnBatch{x.data(), desc.hidden, y_mid.data(), desc.hidden, routes});
    CHECK(y_set == y_mid);
    double mag = 0;
    for (float v : y_set) mag = std::max(mag, double(std::fabs(v)));
    CHECK(mag > 0);
}

TEST_CASE("expert FFN set: it asks for the int4 super-block form only when a config runs that kernel") {
    if (!detect_cpu_isa().has(IsaFeature::avx512_vnni)) {
        MESSAGE("skipped: no AVX-512 VNNI");
        return;
    }
    const ExpertFfnDesc desc{WeightType::int4, 256, 128};
    KernelCache cache;
    ExpertFfnConfig per_group, super_block;
    per_group.int4_sb_min_m = 0;
    super_block.int4_sb_min_m = 32;
    CHECK_FALSE(ExpertFfnSet(desc, {}, per_group, cache, 1).uses_int4_super_blocks());
    CHECK(ExpertFfnSet(desc, {}, super_block, cache, 1).uses_int4_super_blocks());
    CHECK(ExpertFfnSet(desc, {{64, 1024, super_block}}, per_group, cache, 1).uses_int4_super_blocks());
}

TEST_CASE("expert FFN set: the plan's moe_ffn entries become the choices, in order") {
    Plan p = default_plan("0123456789abcdef", ModelShape{});
    p.kernels.erase(std::remove_if(p.kernels.begin(), p.kernels.end(),
                                   [](const PlannedKernel& k) { return k.family == "moe_ffn"; }),
                    p.kernels.end());
    const std::pair<int, int> ranges[] = {{1, 2}, {3, 8}, {9, 1 << 30}};
    for (int i = 0; i < 3; ++i) {
        PlannedKernel k;
        k.family = "moe_ffn";
        k.role = "expert";
        k.m_min = ranges[i].first;
        k.m_max = ranges[i].second;
        k.config = fields_to_json(config_with(64 << i, 15));
        p.kernels.push_back(k);
    }
    const auto c = expert_ffn_choices(p);
    REQUIRE(c.size() == 3);
    for (int i = 0; i < 3; ++i) {
        CHECK(c[size_t(i)].m_min == ranges[i].first);
        CHECK(c[size_t(i)].m_max == ranges[i].second);
        CHECK(c[size_t(i)].config.n_block == 64 << i);
    }
}
