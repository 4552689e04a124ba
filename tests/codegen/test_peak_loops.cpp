// Each peak loop must compute the arithmetic it claims, or its ops/s figure means nothing.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include "codegen/isa.hpp"
#include "codegen/x64/peak_amx.hpp"
#include "codegen/x64/peak_avx512.hpp"
#include "codegen/x64/stream_read.hpp"

namespace {

struct alignas(64) Tile {
    uint8_t bytes[1024];
};

uint16_t bf16_of_small_int(int v) {
    const float f = float(v);
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return uint16_t(u >> 16);  // exact for small integers
}

bool amx_int8_usable() {
    const mf::IsaSet isa = mf::detect_cpu_isa();
    return isa.has(mf::IsaFeature::amx_int8) && mf::request_amx_permission();
}

// Runs the int8 2x2 peak loop (reload: 4 operand pairs per iteration, else 1) on random tiles and checks every C
// element against iters x the sum of the pairs' scalar dot products.
void check_peak_amx_int8(bool reload, unsigned seed, uint64_t iters) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> d(-3, 3);
    const int pairs = reload ? 4 : 1;
    std::vector<Tile> a(size_t(2 * pairs)), b(size_t(2 * pairs));  // pair u: tiles 2u (row/col 0), 2u + 1
    for (auto* ts : {&a, &b})
        for (Tile& t : *ts)
            for (auto& x : t.bytes) x = uint8_t(int8_t(d(rng)));
    alignas(64) int32_t c[4][16][16];
    auto k = mf::make_peak_amx_kernel({mf::AmxPeakDtype::int8, reload});
    REQUIRE(k->create() == mf::JitStatus::ok);
    mf::PeakAmxArgs args{a.data(), b.data(), c, iters};
    (*k)(&args);
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j)
            for (int m = 0; m < 16; ++m)
                for (int n = 0; n < 16; ++n) {
                    // B is in the VNNI layout: row k/4 holds, for each n, the 4 consecutive k values.
                    int64_t dot = 0;
                    for (int u = 0; u < pairs; ++u)
                        for (int kk = 0; kk < 64; ++kk)
                            dot += int8_t(a[size_t(2 * u + i)].bytes[m * 64 + kk]) *
                                   int8_t(b[size_t(2 * u + j)].bytes[(kk / 4) * 64 + n * 4 + kk % 4]);
                    REQUIRE(c[2 * i + j][m][n] == int64_t(iters) * dot);
                }
}

}  // namespace

TEST_CASE("peak_amx int8: C = iters * A x B for every tile pair") {
    if (!amx_int8_usable()) {
        MESSAGE("skipped: this CPU/OS has no usable AMX int8");
        return;
    }
    check_peak_amx_int8(false, 7, 37);
}

TEST_CASE("peak_amx int8 reload: C = iters * sum over the 4 operand pairs, read afresh each product") {
    if (!amx_int8_usable()) {
        MESSAGE("skipped: this CPU/OS has no usable AMX int8");
        return;
    }
    const mf::PeakAmxDesc desc{mf::AmxPeakDtype::int8, true};
    CHECK(desc.ops_per_iter() == 4 * mf::PeakAmxDesc{mf::AmxPeakDtype::int8}.ops_per_iter());
    CHECK(mf::make_peak_amx_kernel(desc)->name() == "peak_amx_int8_2x2_reload");
    check_peak_amx_int8(true, 9, 13);
}

TEST_CASE("peak_amx bf16: C = iters * A x B, exact on small integers") {
    const mf::IsaSet isa = mf::detect_cpu_isa();
    if (!isa.has(mf::IsaFeature::amx_bf16) || !mf::request_amx_permission()) {
        MESSAGE("skipped: this CPU/OS has no usable AMX bf16");
        return;
    }
    std::mt19937 rng(11);
    std::uniform_int_distribution<int> d(-2, 2);
    alignas(64) uint16_t a[2][16][32], b[2][16][32];
    alignas(64) int av[2][16][32], bv[2][16][32];
    for (int t = 0; t < 2; ++t)
        for (int r = 0; r < 16; ++r)
            for (int c = 0; c < 32; ++c) {
                av[t][r][c] = d(rng), bv[t][r][c] = d(rng);
                a[t][r][c] = bf16_of_small_int(av[t][r][c]);
                b[t][r][c] = bf16_of_small_int(bv[t][r][c]);
            }
    alignas(64) float c[4][16][16];
    auto k = mf::make_peak_amx_kernel({mf::AmxPeakDtype::bf16});
    REQUIRE(k->create() == mf::JitStatus::ok);
    const uint64_t iters = 25;
    mf::PeakAmxArgs args{a, b, c, iters};
    (*k)(&args);
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j)
            for (int m = 0; m < 16; ++m)
                for (int n = 0; n < 16; ++n) {
                    // bf16 pairs: B row k/2 holds, for each n, the 2 consecutive k values.
                    int dot = 0;
                    for (int kk = 0; kk < 32; ++kk) dot += av[i][m][kk] * bv[j][kk / 2][n * 2 + kk % 2];
                    REQUIRE(c[2 * i + j][m][n] == float(int(iters) * dot));
                }
}

TEST_CASE("peak_avx512 VNNI and FMA accumulate iters * a.b in every accumulator") {
    const mf::IsaSet isa = mf::detect_cpu_isa();
    if (!isa.has(mf::IsaFeature::avx512_vnni)) {
        MESSAGE("skipped: no AVX-512 VNNI");
        return;
    }
    alignas(64) uint8_t a[64], b[64];
    for (int i = 0; i < 64; ++i) a[i] = uint8_t(i * 3 % 17), b[i] = uint8_t(int8_t(i % 7 - 3));
    for (int acc : {1, 5, 16}) {
        mf::PeakAvx512Desc desc{mf::Avx512PeakOp::vnni_int8, acc};
        auto k = mf::make_peak_avx512_kernel(desc);
        REQUIRE(k->create() == mf::JitStatus::ok);
        std::vector<int32_t> c(16 * acc, -1);
        mf::PeakAvx512Args args{a, b, c.data(), 9};
        (*k)(&args);
        for (int r = 0; r < acc; ++r)
            for (int lane = 0; lane < 16; ++lane) {
                int dot = 0;
                for (int q = 0; q < 4; ++q) dot += int(a[lane * 4 + q]) * int(int8_t(b[lane * 4 + q]));
                REQUIRE(c[r * 16 + lane] == 9 * dot);
            }
    }
    alignas(64) float fa[16], fb[16];
    for (int i = 0; i < 16; ++i) fa[i] = float(i - 4), fb[i] = float(i % 3 + 1);
    mf::PeakAvx512Desc desc{mf::Avx512PeakOp::fma_fp32, 12};
    auto k = mf::make_peak_avx512_kernel(desc);
    REQUIRE(k->create() == mf::JitStatus::ok);
    std::vector<float> c(16 * 12, -1.f);
    mf::PeakAvx512Args args{fa, fb, c.data(), 100};
    (*k)(&args);
    for (int r = 0; r < 12; ++r)
        for (int lane = 0; lane < 16; ++lane) REQUIRE(c[r * 16 + lane] == 100.f * fa[lane] * fb[lane]);
}

TEST_CASE("peak kernels refuse impossible descriptors instead of emitting") {
    auto k = mf::make_peak_avx512_kernel({mf::Avx512PeakOp::fma_fp32, 0});
    CHECK(k->create() == mf::JitStatus::bad_desc);
    auto s = mf::make_stream_read_kernel({96});
    CHECK(s->create() == mf::JitStatus::bad_desc);
    auto pf = mf::make_stream_read_kernel({512, 100});
    CHECK(pf->create() == mf::JitStatus::bad_desc);
}

TEST_CASE("stream_read sums every 64-bit word by lane") {
    if (!mf::detect_cpu_isa().has(mf::IsaFeature::avx512f)) {
        MESSAGE("skipped: no AVX-512");
        return;
    }
    for (auto [unroll, prefetch] : {std::pair{64, 0}, {512, 0}, {1024, 0}, {512, 1024}, {1024, 4096}}) {
        CAPTURE(prefetch);
        auto k = mf::make_stream_read_kernel({unroll, prefetch});
        REQUIRE(k->create() == mf::JitStatus::ok);
        const size_t words = size_t(unroll) / 8 * 37;
        std::vector<uint64_t, std::allocator<uint64_t>> buf(words + 8);
        auto* p = reinterpret_cast<uint64_t*>((reinterpret_cast<uintptr_t>(buf.data()) + 63) & ~uintptr_t(63));
        std::mt19937_64 rng(unroll);
        uint64_t expect[8] = {};
        for (size_t i = 0; i < words; ++i) p[i] = rng(), expect[i % 8] += p[i];
        uint64_t out[8];
        mf::StreamReadArgs args{p, words * 8, out};
        (*k)(&args);
        for (int i = 0; i < 8; ++i) REQUIRE(out[i] == expect[i]);
        mf::StreamReadArgs empty{p, 0, out};
        (*k)(&empty);
        for (int i = 0; i < 8; ++i) REQUIRE(out[i] == 0);
    }
}
