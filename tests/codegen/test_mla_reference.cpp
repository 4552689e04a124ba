// The scalar MLA decode reference (codegen/cuda/mla_reference) that GPU tests and the tuner check kernels
// against: checked here on the CPU against closed forms, so a GPU run's agreement with it means something.
#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "codegen/cuda/mla_reference.hpp"

using namespace mf;

TEST_CASE(
    "mla reference: equal scores average the rows, a dominant key picks its row, empty rows give zeros") {
    MlaDecodeDesc d;
    d.heads = 3;
    d.page_size = 16;
    std::mt19937 rng(5);
    MlaDecodeProblem p = make_mla_decode_problem(d, {40, 0}, rng);
    CHECK(p.table_stride == 3);
    const int dim = p.dim();
    // Pages are drawn from one shuffled pool: every table entry of row 0 is a distinct page, row 1 owns none.
    CHECK(p.table[0] != p.table[1]);
    CHECK(p.table[3] == -1);
    auto row = [&](int t) { return p.cache.data() + (size_t(p.table[size_t(t / 16)]) * 16 + t % 16) * dim; };

    // q = 0: every score is equal, so each head's output is the mean of the 40 latent rows.
    std::fill(p.q.begin(), p.q.end(), uint16_t(0));
    std::vector<double> ref = mla_decode_reference(p);
    REQUIRE(ref.size() == size_t(2 * 3 * 512));
    for (int h = 0; h < 3; ++h)
        for (int i = 0; i < 512; i += 37) {
            double mean = 0;
            for (int t = 0; t < 40; ++t) mean += double(bf16_to_float32(row(t)[i])) / 40;
            CHECK(std::fabs(ref[size_t(h) * 512 + size_t(i)] - mean) < 1e-12);
        }
    for (size_t i = 3 * 512; i < ref.size(); ++i) CHECK(ref[i] == 0.0);

    // Head 1's query is 100 x key 17 (rope part included): key 17 dominates, the output is its latent row.
    for (int i = 0; i < dim; ++i) p.q[size_t(dim + i)] = bf16_from_float(100 * bf16_to_float32(row(17)[i]));
    ref = mla_decode_reference(p);
    for (int i = 0; i < 512; ++i)
        CHECK(ref[512 + size_t(i)] == doctest::Approx(bf16_to_float32(row(17)[i])).epsilon(1e-6));

    CHECK(mla_relative_l2(ref, ref) == 0.0);
    std::vector<double> bad = ref;
    bad[7] = NAN;
    CHECK(std::isinf(mla_relative_l2(bad, ref)));
}

TEST_CASE("bf16 host conversion rounds to nearest even and keeps NaN") {
    CHECK(bf16_from_float(1.0f) == 0x3f80);
    CHECK(bf16_to_float32(0x3f80) == 1.0f);
    CHECK(bf16_from_float(1.0f + 1.0f / 256) == 0x3f80);  // halfway: even (down)
    CHECK(bf16_from_float(1.0f + 3.0f / 256) == 0x3f82);  // halfway: even (up)
    CHECK(bf16_from_float(NAN) == 0x7fc0);
}
