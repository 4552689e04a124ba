#include "codegen/x64/pack_int8.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

namespace mf {

float matrix_src_value(const MatrixSrc& s, int64_t r, int64_t c) {
    const int64_t ld = s.ld ? s.ld : s.k;
    switch (s.type) {
        case SrcType::f32: return static_cast<const float*>(s.data)[r * ld + c];
        case SrcType::bf16: {
            const uint32_t bits = uint32_t(static_cast<const uint16_t*>(s.data)[r * ld + c]) << 16;
            float f;
            std::memcpy(&f, &bits, 4);
            return f;
        }
        case SrcType::int8: return float(static_cast<const int8_t*>(s.data)[r * ld + c]) * s.scale[r];
        case SrcType::u4_group: {
            const int64_t groups = (s.k + 31) / 32;
            return float(static_cast<const uint8_t*>(s.data)[r * ld + c]) * s.scale[r * groups + c / 32] -
                   s.min[r * groups + c / 32];
        }
    }
    return 0;
}

float quantize_row_int8(const float* src, int64_t k, int8_t* dst) {
    float amax = 0;
    for (int64_t i = 0; i < k; ++i) amax = std::max(amax, std::fabs(src[i]));
    const float scale = amax / 127.0f;
    const float inv = amax > 0 ? 127.0f / amax : 0.0f;
    for (int64_t i = 0; i < k; ++i)
        dst[i] = int8_t(std::clamp(std::nearbyint(src[i] * inv), -127.0f, 127.0f));
    return scale;
}

int8_t PackedMatrix::q(int64_t col, int64_t kk) const {
    const uint8_t* p = panel(col / kPanelCols);
    return int8_t(int(p[(kk / 4) * 64 + (col % kPanelCols) * 4 + kk % 4]) - 128);
}

PackedMatrix PackedMatrix::clone() const {
    PackedMatrix c;
    c.wtype = wtype;
    c.n = n, c.k = k, c.n_pad = n_pad, c.k_pad = k_pad, c.sources = sources;
    c.data = AlignedBytes(data.size());
    if (data.size()) std::memcpy(c.data.data(), data.data(), data.size());
    c.scale = scale;
    c.sb = AlignedBytes(sb.size());
    if (sb.size()) std::memcpy(c.sb.data(), sb.data(), sb.size());
    return c;
}

namespace {

// One source row as int8 plus its scale.
float load_row(const MatrixSrc& s, int64_t r, std::vector<float>& tmp, int8_t* dst) {
    const int64_t ld = s.ld ? s.ld : s.k;
    switch (s.type) {
        case SrcType::int8:
            std::memcpy(dst, static_cast<const int8_t*>(s.data) + r * ld, size_t(s.k));
            return s.scale[r];
        case SrcType::f32:
            return quantize_row_int8(static_cast<const float*>(s.data) + r * ld, s.k, dst);
        case SrcType::u4_group:
            throw std::invalid_argument("pack_int8: a u4_group source packs with pack_int4");
        case SrcType::bf16: {
            const auto* b = static_cast<const uint16_t*>(s.data) + r * ld;
            for (int64_t i = 0; i < s.k; ++i) {
                const uint32_t bits = uint32_t(b[i]) << 16;
                std::memcpy(&tmp[size_t(i)], &bits, 4);
            }
            return quantize_row_int8(tmp.data(), s.k, dst);
        }
    }
    return 0;
}

}  // namespace

PackedMatrix allocate_packed(std::span<const MatrixSrc> srcs, WeightType wtype, const char* packer) {
    if (srcs.empty()) throw std::invalid_argument(std::string(packer) + ": no source matrix");
    const int64_t n = srcs[0].n, k = srcs[0].k;
    for (const auto& s : srcs)
        if (s.n != n || s.k != k || n <= 0 || k <= 0 || !s.data || (s.ld && s.ld < s.k))
            throw std::invalid_argument(std::string(packer) + ": sources must share one positive shape [" +
                                        std::to_string(n) + "][" + std::to_string(k) + "] with ld >= k and data");
    PackedMatrix pm;
    pm.wtype = wtype;
    pm.n = n;
    pm.k = k;
    pm.n_pad = round_up(n, kNAlign);
    pm.k_pad = round_up(k, kKAlign);
    pm.sources = int(srcs.size());
    pm.data = AlignedBytes(size_t(pm.panels() * pm.panel_bytes()));
    return pm;
}

PackedMatrix pack_int8_interleaved(std::span<const MatrixSrc> srcs) {
    PackedMatrix pm = allocate_packed(srcs, WeightType::int8, "pack_int8");
    const int64_t n = pm.n, k = pm.k;
    for (const auto& s : srcs)
        if (s.type == SrcType::int8 && !s.scale)
            throw std::invalid_argument("pack_int8: int8 source needs scales");
    pm.scale.assign(size_t(pm.panels() * kPanelCols), 0.0f);
    std::memset(pm.data.data(), 128, pm.data.size());  // padding weights are 0 (stored + 128)
    std::vector<int8_t> row(static_cast<size_t>(k));
    std::vector<float> tmp(static_cast<size_t>(k));
    for (int s = 0; s < pm.sources; ++s)
        for (int64_t r = 0; r < n; ++r) {
            const float sc = load_row(srcs[size_t(s)], r, tmp, row.data());
            const int64_t p = (r / kPanelCols) * pm.sources + s, lane = r % kPanelCols;
            uint8_t* dst = pm.data.data() + p * pm.panel_bytes() + lane * 4;
            pm.scale[size_t(p * kPanelCols + lane)] = sc;
            for (int64_t kk = 0; kk < k; ++kk)
                dst[(kk / 4) * 64 + kk % 4] = uint8_t(int(row[size_t(kk)]) + 128);
        }
    return pm;
}

PackedMatrix pack_int8(const MatrixSrc& src) {
    return pack_int8_interleaved(std::span<const MatrixSrc>(&src, 1));
}

}  // namespace mf
