#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <vector>

#include "runtime/sampler.hpp"

namespace {

std::map<int, double> frequencies(mf::SamplerParams p, const std::vector<float>& logits, int draws,
                                  const std::vector<int32_t>& recent = {}) {
    mf::Sampler s(p);
    std::map<int, double> f;
    for (int i = 0; i < draws; ++i) f[s.sample(logits, recent)] += 1.0 / draws;
    return f;
}

}  // namespace

TEST_CASE("greedy picks the argmax, the lowest id on ties") {
    mf::SamplerParams p;
    p.temperature = 0;
    mf::Sampler s(p);
    CHECK(s.sample(std::vector<float>{0.1f, 3.f, -1.f, 3.f}, {}) == 1);
    CHECK(s.sample(std::vector<float>{-5.f}, {}) == 0);
}

TEST_CASE("temperature sampling follows softmax(logits / T)") {
    const std::vector<float> logits = {1.0f, 2.0f, 0.5f, -1.0f};
    mf::SamplerParams p;
    p.temperature = 0.7f, p.top_p = 1.0f, p.seed = 3;
    const auto f = frequencies(p, logits, 200000);
    double z = 0;
    for (float l : logits) z += std::exp(l / 0.7);
    for (int i = 0; i < 4; ++i) {
        const double got = f.count(i) ? f.at(i) : 0.0;
        CHECK(got == doctest::Approx(std::exp(logits[i] / 0.7) / z).epsilon(0.03));
    }
}

TEST_CASE("top-k, top-p and min-p keep exactly the tokens they should") {
    const std::vector<float> logits = {0.f, std::log(4.f), std::log(2.f), std::log(1.f) - 0.0f, std::log(0.5f)};
    // Probabilities at T=1: proportional to 1, 4, 2, 1, 0.5 (sum 8.5).
    mf::SamplerParams p;
    p.temperature = 1, p.top_p = 1, p.seed = 9;
    p.top_k = 2;
    auto f = frequencies(p, logits, 20000);
    CHECK(f.size() == 2);
    CHECK(f.count(1) == 1);
    CHECK(f.count(2) == 1);
    CHECK(f[1] == doctest::Approx(4.0 / 6.0).epsilon(0.05));

    p.top_k = 0, p.top_p = 0.6f;  // 4/8.5 = 0.47 < 0.6, + 2/8.5 = 0.71: tokens 1 and 2
    f = frequencies(p, logits, 20000);
    CHECK(f.size() == 2);
    CHECK(f.count(1) == 1);
    CHECK(f.count(2) == 1);

    p.top_p = 1, p.min_p = 0.3f;  // keep p >= 0.3 * 4/8.5: ratios 1, 0.5 kept; 0.25, 0.25, 0.125 dropped
    f = frequencies(p, logits, 20000);
    CHECK(f.size() == 2);
    CHECK(f.count(1) == 1);
    CHECK(f.count(2) == 1);
}

TEST_CASE("repetition penalty lowers recent tokens once each, in both signs") {
    mf::SamplerParams p;
    p.temperature = 0, p.repetition_penalty = 2.0f;
    mf::Sampler s(p);
    // Token 0 has 3.0 > 2.0 but was used twice: 3/2 = 1.5 < 2 -> token 1 wins.
    CHECK(s.sample(std::vector<float>{3.f, 2.f, -1.f}, std::vector<int32_t>{0, 0}) == 1);
    // Negative logits get multiplied: -1 * 2 = -2 < -1.5.
    CHECK(s.sample(std::vector<float>{-1.f, -1.5f}, std::vector<int32_t>{0}) == 1);
    // Outside the window the penalty does not apply.
    p.repetition_window = 1;
    mf::Sampler w(p);
    CHECK(w.sample(std::vector<float>{3.f, 2.f, 0.f}, std::vector<int32_t>{0, 2}) == 0);
}

TEST_CASE("the same seed gives the same tokens, a different seed differs") {
    std::vector<float> logits(1000);
    for (size_t i = 0; i < logits.size(); ++i) logits[i] = float(std::sin(double(i)));
    mf::SamplerParams p;
    p.temperature = 1.0f, p.top_p = 1.0f, p.seed = 42;
    mf::Sampler a(p), b(p);
    p.seed = 43;
    mf::Sampler c(p);
    int differ = 0;
    for (int i = 0; i < 50; ++i) {
        const int x = a.sample(logits, {}), y = b.sample(logits, {}), z = c.sample(logits, {});
        CHECK(x == y);
        differ += x != z;
    }
    CHECK(differ > 0);
}

TEST_CASE("bad sampler parameters are refused with the flag's name") {
    mf::SamplerParams p;
    p.top_p = 0;
    CHECK_THROWS_WITH(mf::Sampler{p}, doctest::Contains("--top-p"));
    p = {};
    p.temperature = -1;
    CHECK_THROWS_WITH(mf::Sampler{p}, doctest::Contains("--temperature"));
}
