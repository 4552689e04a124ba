#include "codegen/x64/pack_int4.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "codegen/isa.hpp"
#include "codegen/x64/pack_int4_sb.hpp"

namespace mf {
namespace {

uint8_t* group_at(const PackedMatrix& pm, int64_t col, int64_t group) {
    return pm.data.data() + (col / kPanelCols) * pm.panel_bytes() + group * kInt4GroupBytes;
}

}  // namespace

void quantize_group_int4(const float* src, int n, uint8_t* q, float* scale, float* min) {
    float lo = 0, hi = 0;
    for (int i = 0; i < n; ++i) lo = std::min(lo, src[i]), hi = std::max(hi, src[i]);
    const float s = (hi - lo) / 15.0f;
    *scale = s;
    *min = -lo;
    for (int i = 0; i < n; ++i)
        q[i] = s > 0 ? uint8_t(std::clamp(std::nearbyint((src[i] - lo) / s), 0.0f, 15.0f)) : 0;
}

namespace {

// Row r of a group holds k-quads 2r (low nibbles) and 2r + 1 (high nibbles) of the 16 channels.
void unpack_int4_panels_scalar(const PackedMatrix& pm, int64_t first, int64_t count, uint8_t* dst) {
    constexpr uint64_t kLow = 0x0f0f0f0f0f0f0f0full;
    const int64_t groups = pm.k_pad / kInt4Group;
    for (int64_t p = 0; p < count; ++p) {
        const uint8_t* src = pm.panel(first + p);
        for (int64_t g = 0; g < groups; ++g, src += kInt4GroupBytes, dst += 512)
            for (int r = 0; r < 4; ++r)
                for (int w = 0; w < 8; ++w) {
                    uint64_t v;
                    std::memcpy(&v, src + r * 64 + w * 8, 8);
                    const uint64_t lo = v & kLow, hi = (v >> 4) & kLow;
                    std::memcpy(dst + (2 * r) * 64 + w * 8, &lo, 8);
                    std::memcpy(dst + (2 * r + 1) * 64 + w * 8, &hi, 8);
                }
    }
}

// The same with one zmm per packed row, the source streamed kUnpackPrefetch groups ahead (the packed weights
// usually come from DRAM: the scalar loop read them at ~5 GB/s on the 2-core VM, one core).
constexpr int kUnpackPrefetch = 8;
__attribute__((target("avx512f,avx512bw"))) void unpack_int4_panels_avx512(const PackedMatrix& pm, int64_t first,
                                                                            int64_t count, uint8_t* dst) {
    const __m512i mask = _mm512_set1_epi8(0x0f);
    const int64_t groups = pm.k_pad / kInt4Group;
    for (int64_t p = 0; p < count; ++p) {
        const uint8_t* src = pm.panel(first + p);
        const uint8_t* end = src + groups * kInt4GroupBytes;
        for (int64_t g = 0; g < groups; ++g, src += kInt4GroupBytes, dst += 512) {
            // The group kUnpackPrefetch ahead (into the next panel near the end; past the matrix: not fetched).
            const uint8_t* ahead = src + kUnpackPrefetch * kInt4GroupBytes;
            if (ahead < end || p + 1 < count)
                for (int l = 0; l < 4; ++l)
                    _mm_prefetch(reinterpret_cast<const char*>(ahead >= end ? pm.panel(first + p + 1) +
                                                                                  (ahead - end) + l * 64
                                                                            : ahead + l * 64),
                                 _MM_HINT_T0);
            for (int r = 0; r < 4; ++r) {
                const __m512i v = _mm512_loadu_si512(src + r * 64);
                _mm512_store_si512(dst + (2 * r) * 64, _mm512_and_si512(v, mask));
                _mm512_store_si512(dst + (2 * r + 1) * 64, _mm512_and_si512(_mm512_srli_epi16(v, 4), mask));
            }
        }
    }
}

}  // namespace

void unpack_int4_panels(const PackedMatrix& pm, int64_t first, int64_t count, uint8_t* dst) {
    static const bool avx512 = [] {
        const IsaSet isa = detect_cpu_isa();
        return isa.has(IsaFeature::avx512f) && isa.has(IsaFeature::avx512bw);
    }();
    // The vector path stores whole lines: dst must be 64-byte aligned (the driver's buffers are).
    if (avx512 && reinterpret_cast<uintptr_t>(dst) % 64 == 0)
        unpack_int4_panels_avx512(pm, first, count, dst);
    else
        unpack_int4_panels_scalar(pm, first, count, dst);
}

void unpack_int4_panels_reference(const PackedMatrix& pm, int64_t first, int64_t count, uint8_t* dst) {
    unpack_int4_panels_scalar(pm, first, count, dst);
}

int int4_q(const PackedMatrix& pm, int64_t col, int64_t k) {
    const uint8_t* g = group_at(pm, col, k / kInt4Group);
    const int kk = int(k % kInt4Group), r = kk / 8, hi = (kk % 8) / 4, b = kk % 4;
    const uint8_t v = g[r * 64 + (col % kPanelCols) * 4 + b];
    return hi ? v >> 4 : v & 15;
}

float int4_scale(const PackedMatrix& pm, int64_t col, int64_t group) {
    float f;
    std::memcpy(&f, group_at(pm, col, group) + 256 + (col % kPanelCols) * 4, 4);
    return f;
}

float int4_min(const PackedMatrix& pm, int64_t col, int64_t group) {
    float f;
    std::memcpy(&f, group_at(pm, col, group) + 320 + (col % kPanelCols) * 4, 4);
    return f;
}

PackedMatrix pack_int4_interleaved(std::span<const MatrixSrc> srcs, bool super_blocks) {
    PackedMatrix pm = allocate_packed(srcs, WeightType::int4, "pack_int4");
    const int64_t n = pm.n, k = pm.k;
    for (const auto& s : srcs) {
        if (s.type == SrcType::int8)
            throw std::invalid_argument("pack_int4: int8 sources cannot be packed as int4");
        if (s.type == SrcType::u4_group && (!s.scale || !s.min))
            throw std::invalid_argument("pack_int4: a u4_group source needs scales and mins");
    }
    const int64_t groups = (k + kInt4Group - 1) / kInt4Group;
    std::vector<uint8_t> q(static_cast<size_t>(groups * kInt4Group));
    std::vector<float> sc(static_cast<size_t>(groups)), mn(static_cast<size_t>(groups)),
        tmp(static_cast<size_t>(groups * kInt4Group));
    for (int s = 0; s < pm.sources; ++s) {
        const MatrixSrc& src = srcs[size_t(s)];
        const int64_t ld = src.ld ? src.ld : k;
        for (int64_t r = 0; r < n; ++r) {
            std::fill(q.begin(), q.end(), 0);
            if (src.type == SrcType::u4_group) {
                const auto* row = static_cast<const uint8_t*>(src.data) + r * ld;
                for (int64_t i = 0; i < k; ++i) {
                    if (row[i] > 15)
                        throw std::invalid_argument("pack_int4: u4_group value " + std::to_string(row[i]) +
                                                    " at row " + std::to_string(r) + " is outside 0..15");
                    q[size_t(i)] = row[i];
                }
                std::copy_n(src.scale + r * groups, groups, sc.begin());
                std::copy_n(src.min + r * groups, groups, mn.begin());
            } else {
                std::fill(tmp.begin(), tmp.end(), 0.0f);
                for (int64_t i = 0; i < k; ++i) {
                    if (src.type == SrcType::f32) {
                        tmp[size_t(i)] = static_cast<const float*>(src.data)[r * ld + i];
                    } else {
                        const uint32_t bits = uint32_t(static_cast<const uint16_t*>(src.data)[r * ld + i])
                                              << 16;
                        std::memcpy(&tmp[size_t(i)], &bits, 4);
                    }
                }
                for (int64_t g = 0; g < groups; ++g) {
                    const int len = int(std::min<int64_t>(kInt4Group, k - g * kInt4Group));
                    quantize_group_int4(&tmp[size_t(g * kInt4Group)], len, &q[size_t(g * kInt4Group)],
                                        &sc[size_t(g)], &mn[size_t(g)]);
                }
            }
            const int64_t col = ((r / kPanelCols) * pm.sources + s) * kPanelCols + r % kPanelCols;
            const int64_t lane = r % kPanelCols;
            for (int64_t g = 0; g < groups; ++g) {
                uint8_t* dst = group_at(pm, col, g);
                for (int kk = 0; kk < kInt4Group; ++kk) {
                    const int rr = kk / 8, hi = (kk % 8) / 4, b = kk % 4;
                    const uint8_t v = q[size_t(g * kInt4Group + kk)];
                    dst[rr * 64 + lane * 4 + b] |= uint8_t(hi ? v << 4 : v);
                }
                std::memcpy(dst + 256 + lane * 4, &sc[size_t(g)], 4);
                std::memcpy(dst + 320 + lane * 4, &mn[size_t(g)], 4);
            }
        }
    }
    if (super_blocks) build_int4_sb(pm);
    return pm;
}

PackedMatrix pack_int4(const MatrixSrc& src, bool super_blocks) {
    return pack_int4_interleaved(std::span<const MatrixSrc>(&src, 1), super_blocks);
}

}  // namespace mf
