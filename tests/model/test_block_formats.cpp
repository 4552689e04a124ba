// Block formats: hand-built blocks decoded against the bit layout written out independently here, and
// dequant(quant(x)) error bounds per format.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "model/block_formats.hpp"
#include "model/float_formats.hpp"
#include "model/tensor_view.hpp"

using namespace mf;

TEST_CASE("fp16, bf16 and fp8 e4m3 conversions hit known bit patterns") {
    CHECK(f32_to_f16(1.0f) == 0x3c00);
    CHECK(f32_to_f16(-2.0f) == 0xc000);
    CHECK(f32_to_f16(65504.0f) == 0x7bff);
    CHECK(f32_to_f16(70000.0f) == 0x7c00);
    CHECK(f32_to_f16(0x1p-24f) == 0x0001);
    CHECK(f32_to_f16(1.0f + 0x1p-11f) == 0x3c00);      // tie: to even
    CHECK(f32_to_f16(1.0f + 3 * 0x1p-11f) == 0x3c02);  // tie: to even (up)
    CHECK(f16_to_f32(0x3555) == doctest::Approx(0.33325195));
    CHECK(f16_to_f32(0x0001) == 0x1p-24f);
    CHECK(std::isinf(f16_to_f32(0x7c00)));
    CHECK(f32_to_bf16(1.0f) == 0x3f80);
    CHECK(f32_to_bf16(1.0f + 0x1p-8f) == 0x3f80);  // tie to even
    CHECK(f32_to_bf16(1.0f + 3 * 0x1p-8f) == 0x3f82);
    CHECK(bf16_to_f32(0xc040) == -3.0f);
    CHECK(f8e4m3_to_f32(0x38) == 1.0f);
    CHECK(f8e4m3_to_f32(0x7e) == 448.0f);
    CHECK(f8e4m3_to_f32(0x01) == 0x1p-9f);
    CHECK(f8e4m3_to_f32(0xb8) == -1.0f);
    CHECK(std::isnan(f8e4m3_to_f32(0x7f)));
    CHECK(f32_to_f8e4m3(1000.0f) == 0x7e);
    CHECK(f32_to_f8e4m3(1.0f) == 0x38);
    CHECK(f32_to_f8e4m3(1.0625f) == 0x38);  // halfway between 1 and 1.125: to even
    CHECK(f32_to_f8e4m3(-0.3f) == 0xaa);    // 0.3 -> 0.3125 = 1.25 * 2^-2 (mantissa 2, exponent 5)
    for (int b = 0; b < 256; ++b) {
        if ((b & 0x7f) == 0x7f) continue;
        CHECK(f32_to_f8e4m3(f8e4m3_to_f32(uint8_t(b))) == (b == 0x80 ? 0x80 : b));
    }
    for (uint32_t h = 0; h < 0x7c00; h += 7) CHECK(f32_to_f16(f16_to_f32(uint16_t(h))) == h);
}

TEST_CASE("q8_0: a hand-built block decodes to d * q") {
    BlockQ8_0 b;
    b.d = 0x3800;  // 0.5
    for (int i = 0; i < 32; ++i) b.qs[i] = int8_t(i * 8 - 128);
    float y[32];
    dequantize_row(GgmlType::q8_0, &b, y, 32);
    for (int i = 0; i < 32; ++i) CHECK(y[i] == 0.5f * float(i * 8 - 128));
}

namespace {
// The q4_K/q5_K scale bytes written out from the format description: bytes 0-3 hold sc[0..3] in their low 6
// bits and the top 2 bits of sc[4..7]; bytes 4-7 the same for the mins; bytes 8-11 the low nibbles of
// sc[4..7] (low) and m[4..7] (high).
void pack_by_hand(const int sc[8], const int m[8], uint8_t out[12]) {
    for (int j = 0; j < 4; ++j) {
        out[j] = uint8_t(sc[j] | ((sc[j + 4] >> 4) << 6));
        out[4 + j] = uint8_t(m[j] | ((m[j + 4] >> 4) << 6));
        out[8 + j] = uint8_t((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
    }
}
}  // namespace

TEST_CASE("q4_K: a hand-built block decodes bit-exactly, its groups unpack to the same values") {
    const int sc[8] = {1, 2, 3, 4, 17, 33, 63, 5};
    const int m[8] = {0, 1, 2, 3, 20, 40, 63, 6};
    BlockQ4K b;
    b.d = 0x3c00;     // 1.0
    b.dmin = 0x3800;  // 0.5
    pack_by_hand(sc, m, b.scales);
    uint8_t packed[12];
    uint8_t scu[8], mu[8];
    for (int j = 0; j < 8; ++j) scu[j] = uint8_t(sc[j]), mu[j] = uint8_t(m[j]);
    q4k_pack_scales(scu, mu, packed);
    CHECK(std::memcmp(packed, b.scales, 12) == 0);
    for (int k = 0; k < 128; ++k) b.qs[k] = uint8_t((k * 37 + 11) & 0xff);
    float y[256];
    dequantize_row(GgmlType::q4_k, &b, y, 256);
    Q4KGroups g;
    q4k_unpack(b, g);
    for (int i = 0; i < 256; ++i) {
        const int chunk = i / 64, l = i % 32, sub = i / 32;
        const uint8_t byte = b.qs[32 * chunk + l];
        const int q = (i % 64) < 32 ? (byte & 15) : (byte >> 4);
        CHECK(y[i] == 1.0f * float(sc[sub]) * float(q) - 0.5f * float(m[sub]));
        CHECK(g.q[i] == q);
        CHECK(g.scale[sub] * float(g.q[i]) - g.min[sub] == y[i]);
    }
}

TEST_CASE("q5_K: a hand-built block decodes bit-exactly") {
    const int sc[8] = {7, 1, 60, 16, 31, 2, 9, 48};
    const int m[8] = {3, 0, 17, 63, 5, 32, 1, 15};
    BlockQ5K b;
    b.d = 0x3400;     // 0.25
    b.dmin = 0x3c00;  // 1.0
    pack_by_hand(sc, m, b.scales);
    for (int k = 0; k < 128; ++k) b.qs[k] = uint8_t((k * 53 + 5) & 0xff);
    for (int k = 0; k < 32; ++k) b.qh[k] = uint8_t((k * 29 + 3) & 0xff);
    float y[256];
    dequantize_row(GgmlType::q5_k, &b, y, 256);
    for (int i = 0; i < 256; ++i) {
        const int chunk = i / 64, l = i % 32, sub = i / 32;
        const bool high_half = (i % 64) >= 32;
        const uint8_t byte = b.qs[32 * chunk + l];
        const int low = high_half ? (byte >> 4) : (byte & 15);
        const int bit = (b.qh[l] >> (2 * chunk + (high_half ? 1 : 0))) & 1;
        CHECK(y[i] == 0.25f * float(sc[sub]) * float(low + 16 * bit) - 1.0f * float(m[sub]));
    }
}

TEST_CASE("q6_K: a hand-built block decodes bit-exactly") {
    BlockQ6K b;
    b.d = 0x3400;  // 0.25
    for (int j = 0; j < 16; ++j) b.scales[j] = int8_t(j * 9 - 70);
    for (int k = 0; k < 128; ++k) b.ql[k] = uint8_t((k * 71 + 13) & 0xff);
    for (int k = 0; k < 64; ++k) b.qh[k] = uint8_t((k * 97 + 41) & 0xff);
    float y[256];
    dequantize_row(GgmlType::q6_k, &b, y, 256);
    for (int i = 0; i < 256; ++i) {
        // value i: half n, quarter k of that half, lane l; low nibble from ql (quarters 2,3 use the high
        // nibble of the bytes quarters 0,1 use), 2 high bits from qh at bit 2k.
        const int n = i / 128, k = (i % 128) / 32, l = i % 32;
        const uint8_t lb = b.ql[64 * n + l + (k & 1) * 32];
        const int low = k < 2 ? (lb & 15) : (lb >> 4);
        const int high = (b.qh[32 * n + l] >> (2 * k)) & 3;
        const int q = (low | (high << 4)) - 32;
        CHECK(y[i] == 0.25f * float(b.scales[i / 16]) * float(q));
    }
}

namespace {
struct RoundTrip {
    GgmlType type;
    size_t block_bytes;
    double max_rel_rms;
};
}  // namespace

TEST_CASE("dequant(quant(x)) stays within each format's error bound") {
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const int64_t n = 256 * 64;
    std::vector<float> x(static_cast<size_t>(n));
    for (auto& v : x) v = nd(rng);
    x[5] = 40.0f;  // an outlier inside one block
    for (const RoundTrip& rt :
         {RoundTrip{GgmlType::f32, 4, 0.0}, RoundTrip{GgmlType::f16, 2, 0.001},
          RoundTrip{GgmlType::bf16, 2, 0.005}, RoundTrip{GgmlType::q8_0, 34, 0.01},
          RoundTrip{GgmlType::q6_k, 210, 0.03}, RoundTrip{GgmlType::q5_k, 176, 0.06},
          RoundTrip{GgmlType::q4_k, 144, 0.12}, RoundTrip{GgmlType::f8_e4m3, 1, 0.05}}) {
        CAPTURE(ggml_type_name(rt.type));
        const auto bytes = ggml_row_bytes(uint32_t(rt.type), uint64_t(n));
        REQUIRE(bytes);
        std::vector<uint8_t> q(*bytes);
        std::vector<float> y(static_cast<size_t>(n));
        quantize_row(rt.type, x.data(), q.data(), n);
        dequantize_row(rt.type, q.data(), y.data(), n);
        double se = 0, sx = 0;
        for (int64_t i = 0; i < n; ++i) se += double(y[i] - x[i]) * (y[i] - x[i]), sx += double(x[i]) * x[i];
        CHECK(std::sqrt(se / sx) <= rt.max_rel_rms);
        // Per-block bound for the integer formats: an error of at most one quantisation step of that block
        // (range / levels), whatever the outlier does to the neighbours.
        const int block = rt.type == GgmlType::q8_0 ? 32 : rt.type == GgmlType::q6_k ? 16 : 32;
        const int levels = rt.type == GgmlType::q8_0   ? 254
                           : rt.type == GgmlType::q6_k ? 62
                           : rt.type == GgmlType::q5_k ? 31
                                                       : 15;
        if (rt.type == GgmlType::q8_0 || rt.type == GgmlType::q6_k || rt.type == GgmlType::q5_k ||
            rt.type == GgmlType::q4_k) {
            for (int64_t b0 = 0; b0 < n; b0 += block) {
                float lo = 0, hi = 0;
                for (int i = 0; i < block; ++i) lo = std::min(lo, x[b0 + i]), hi = std::max(hi, x[b0 + i]);
                const float range =
                    rt.type == GgmlType::q4_k || rt.type == GgmlType::q5_k ? hi - lo : 2 * std::max(-lo, hi);
                for (int i = 0; i < block; ++i)
                    CHECK(std::fabs(y[b0 + i] - x[b0 + i]) <= range / levels * 1.01f + 1e-6f);
            }
        }
    }
}

TEST_CASE("an all-zero row quantises to exact zeros in every format") {
    std::vector<float> x(256, 0.0f), y(256, 1.0f);
    for (GgmlType t : {GgmlType::q8_0, GgmlType::q4_k, GgmlType::q5_k, GgmlType::q6_k}) {
        std::vector<uint8_t> q(*ggml_row_bytes(uint32_t(t), 256));
        quantize_row(t, x.data(), q.data(), 256);
        dequantize_row(t, q.data(), y.data(), 256);
        for (float v : y) CHECK(v == 0.0f);
    }
}

TEST_CASE("FP8 rows apply their 128x128 block scale_inv") {
    // 2 x 200 values: column blocks [0,128) and [128,200); one row block.
    const float scales[2] = {0.5f, 3.0f};
    std::vector<uint8_t> data(400);
    for (size_t i = 0; i < data.size(); ++i) data[i] = uint8_t(0x30 + i % 16);
    TensorView t;
    t.name = "w";
    t.type = GgmlType::f8_e4m3;
    t.shape = {2, 200};
    t.data = data.data();
    t.bytes = data.size();
    t.scale_inv = scales;
    const auto w = dequantize(t);
    for (int r = 0; r < 2; ++r)
        for (int c = 0; c < 200; ++c)
            CHECK(w[size_t(r * 200 + c)] == f8e4m3_to_f32(data[size_t(r * 200 + c)]) * scales[c / 128]);
}
