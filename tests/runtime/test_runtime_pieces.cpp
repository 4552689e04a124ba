// Small runtime pieces against independent references: the latent KV cache bookkeeping, YaRN rope tables (against
// the formula evaluated in double), the .npy logits file (header parsed as numpy does), perplexity's nll.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "runtime/kv_cache.hpp"
#include "runtime/logits_file.hpp"
#include "runtime/perplexity.hpp"
#include "runtime/rope_yarn.hpp"

using namespace mf;

TEST_CASE("LatentKvCache: rows, commit, truncate, capacity") {
    LatentKvCache kv(3, 10, 512, 64);
    CHECK(kv.row_size() == 576);
    CHECK(kv.bytes() == size_t(3 * 10 * 576 * 4));
    kv.row(2, 9)[575] = 5.0f;
    CHECK(kv.row(2, 9) + 575 == kv.row(0, 0) + (2 * 10 + 9) * 576 + 575);
    kv.commit(4);
    CHECK(kv.size() == 4);
    kv.truncate(1);
    CHECK(kv.size() == 1);
    CHECK_THROWS(kv.truncate(2));
    CHECK_THROWS(kv.commit(10));
    kv.clear();
    CHECK(kv.size() == 0);
}

TEST_CASE("RopeTable: YaRN frequencies and interleaved rotation against the formula in double") {
    RopeParams p;  // DeepSeek-V3's: dim 64, theta 1e4, factor 40 over 4096, beta 32/1
    const RopeTable t(p, 300);
    // Correction range: floor/ceil of d*ln(L/(2*pi*b))/(2 ln theta) for b = 32 and 1.
    const double d = 64, L = 4096, th = 10000;
    const double low = std::floor(d * std::log(L / (32 * 2 * M_PI)) / (2 * std::log(th)));
    const double high = std::ceil(d * std::log(L / (1 * 2 * M_PI)) / (2 * std::log(th)));
    for (int i = 0; i < 32; ++i) {
        const double base = std::pow(th, -2.0 * i / d);
        const double ramp = std::clamp((i - low) / (high - low), 0.0, 1.0);
        const double expect = base / 40 * ramp + base * (1 - ramp);
        CHECK(t.inv_freq()[size_t(i)] == doctest::Approx(expect).epsilon(1e-5));
    }
    CHECK(t.inv_freq()[0] == doctest::Approx(1.0));          // fastest pair: extrapolated
    CHECK(t.inv_freq()[31] == doctest::Approx(std::pow(th, -62.0 / 64) / 40).epsilon(1e-5));  // slowest: /factor
    float v[64];
    for (int i = 0; i < 64; ++i) v[i] = float(i % 5) - 2.0f;
    float w[64];
    std::copy(v, v + 64, w);
    t.apply(w, 1, 64, 257);
    for (int i = 0; i < 32; ++i) {
        const double a = 257.0 * t.inv_freq()[size_t(i)];
        CHECK(w[2 * i] == doctest::Approx(v[2 * i] * std::cos(a) - v[2 * i + 1] * std::sin(a)).epsilon(1e-4));
        CHECK(w[2 * i + 1] == doctest::Approx(v[2 * i] * std::sin(a) + v[2 * i + 1] * std::cos(a)).epsilon(1e-4));
    }
    CHECK_THROWS(t.apply(w, 1, 64, 300));
}

TEST_CASE("LogitsWriter: .npy header and rows round-trip, an unfinished file says 0 rows") {
    const auto path = std::filesystem::temp_directory_path() / "moeforge_test_logits.npy";
    {
        LogitsWriter w(path, 5);
        const float a[5] = {1, 2, 3, 4, 5}, b[5] = {-1, -2, -3, -4, 0.5f};
        w.append(a);
        w.append(b);
        w.close();
        CHECK(w.rows() == 2);
    }
    CHECK(std::filesystem::file_size(path) == 128 + 2 * 5 * 4);
    std::ifstream f(path, std::ios::binary);
    std::string head(128, '\0');
    f.read(head.data(), 128);
    CHECK(head.substr(1, 5) == "NUMPY");
    CHECK(uint8_t(head[8]) + 256 * uint8_t(head[9]) == 118);  // header length: 128 - 10
    CHECK(head.find("'shape': (2, 5)") != std::string::npos);
    CHECK(head.back() == '\n');
    const NpyMatrix m = read_npy_f32(path);
    CHECK(m.rows == 2);
    CHECK(m.cols == 5);
    CHECK(m.data[7] == -3.0f);
    std::filesystem::remove(path);
}

TEST_CASE("token_nll is -log softmax in double") {
    const float l[4] = {1.0f, 2.0f, 3.0f, 1000.0f};
    const double z = std::exp(1.0 - 1000) + std::exp(2.0 - 1000) + std::exp(3.0 - 1000) + 1.0;
    CHECK(token_nll(l, 3) == doctest::Approx(std::log(z)));
    CHECK(token_nll(l, 0) == doctest::Approx(std::log(z) + 999.0));
}
