// Packed projections (f32, bf16, int8 through the JIT kernels) against a scalar double-precision reference, on
// ragged shapes, with the work split over 1 and 2 pinned workers.
#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "codegen/kernel_cache.hpp"
#include "runtime/linear.hpp"
#include "runtime/thread_pool.hpp"

using namespace mf;

namespace {

struct Shape {
    int64_t m, n, k;
};

double rel_error(const std::vector<float>& y, const std::vector<double>& ref) {
    double num = 0, den = 0;
    for (size_t i = 0; i < y.size(); ++i) {
        num += (y[i] - ref[i]) * (y[i] - ref[i]);
        den += ref[i] * ref[i];
    }
    return std::sqrt(num / std::max(den, 1e-30));
}

}  // namespace

TEST_CASE("Linear: f32, bf16 and int8 against a scalar reference on ragged shapes, 1 and 2 workers") {
    KernelCache cache;
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const Shape shapes[] = {{1, 1, 1}, {1, 70, 33}, {3, 129, 100}, {5, 64, 64}, {16, 200, 150}, {17, 65, 257},
                            {40, 130, 96}, {70, 33, 500}, {9, 37, 4500}};  // k > 2048: several k blocks
    // Stated tolerances (relative L2 error of the output): f32 exact up to rounding; bf16 rounds weights and
    // activations to 8 bits of mantissa; int8 quantises both per row/channel to 127 levels.
    const std::pair<ComputeType, double> types[] = {
        {ComputeType::f32, 1e-5}, {ComputeType::bf16, 1.5e-2}, {ComputeType::int8, 3e-2}};
    for (int threads : {1, 2}) {
        ThreadPool p(std::vector<int>(size_t(threads), -1));  // unpinned: the test may share its cores
        for (const auto& s : shapes)
            for (const auto& [type, tol] : types) {
                std::vector<float> w(size_t(s.n * s.k)), x(size_t(s.m * s.k));
                for (auto& v : w) v = nd(rng);
                for (auto& v : x) v = nd(rng);
                std::vector<double> ref(size_t(s.m * s.n));
                for (int64_t i = 0; i < s.m; ++i)
                    for (int64_t j = 0; j < s.n; ++j) {
                        double acc = 0;
                        for (int64_t kk = 0; kk < s.k; ++kk) acc += double(x[size_t(i * s.k + kk)]) * w[size_t(j * s.k + kk)];
                        ref[size_t(i * s.n + j)] = acc;
                    }
                const Linear l = Linear::pack(MatrixSrc{SrcType::f32, s.n, s.k, w.data(), 0, nullptr}, type, &cache);
                std::vector<float> y(size_t(s.m * s.n), NAN);
                l.forward(x.data(), s.m, y.data(), &p);
                CAPTURE(threads);
                CAPTURE(s.m);
                CAPTURE(s.n);
                CAPTURE(s.k);
                CAPTURE(compute_type_name(type));
                CHECK(rel_error(y, ref) < tol);
                // The serial path gives the same numbers as the split one.
                std::vector<float> y1(size_t(s.m * s.n), NAN);
                l.forward(x.data(), s.m, y1.data(), nullptr);
                CHECK(y1 == y);
            }
    }
}

TEST_CASE("Linear: strided input and output rows") {
    KernelCache cache;
    const int64_t m = 3, n = 20, k = 40, ldx = 50, ldy = 27;
    std::vector<float> w(size_t(n * k)), x(size_t(m * ldx), 1e9f);
    for (size_t i = 0; i < w.size(); ++i) w[i] = float(int(i % 7) - 3) * 0.25f;
    for (int64_t i = 0; i < m; ++i)
        for (int64_t c = 0; c < k; ++c) x[size_t(i * ldx + c)] = float((i + c) % 5) - 2.0f;
    for (ComputeType t : {ComputeType::f32, ComputeType::bf16}) {
        const Linear l = Linear::pack(MatrixSrc{SrcType::f32, n, k, w.data(), 0, nullptr}, t, &cache);
        std::vector<float> y(size_t(m * ldy), -7.0f);
        l.forward(x.data(), ldx, m, y.data(), ldy, nullptr);
        for (int64_t i = 0; i < m; ++i) {
            for (int64_t j = 0; j < n; ++j) {
                double acc = 0;
                for (int64_t c = 0; c < k; ++c) acc += double(x[size_t(i * ldx + c)]) * w[size_t(j * k + c)];
                CHECK(y[size_t(i * ldy + j)] == doctest::Approx(acc).epsilon(1e-6));  // small integers: exact in bf16
            }
            for (int64_t j = n; j < ldy; ++j) CHECK(y[size_t(i * ldy + j)] == -7.0f);
        }
    }
}
