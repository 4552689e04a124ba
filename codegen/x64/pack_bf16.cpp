#include "codegen/x64/pack_bf16.hpp"

#include <cstring>
#include <stdexcept>

namespace mf {

float packed_bf16(const PackedMatrix& pm, int64_t col, int64_t k) {
    const uint8_t* p = pm.panel(col / kPanelCols) + (k / 2) * 64 + (col % kPanelCols) * 4 + (k % 2) * 2;
    uint16_t b;
    std::memcpy(&b, p, 2);
    return bf16_to_float(b);
}

PackedMatrix pack_bf16_interleaved(std::span<const MatrixSrc> srcs) {
    PackedMatrix pm = allocate_packed(srcs, WeightType::bf16, "pack_bf16");
    const int64_t n = pm.n, k = pm.k;
    for (const auto& s : srcs)
        if (s.type != SrcType::f32 && s.type != SrcType::bf16)
            throw std::invalid_argument("pack_bf16: only f32 and bf16 sources can be packed as bf16");
    for (int s = 0; s < pm.sources; ++s) {
        const MatrixSrc& src = srcs[size_t(s)];
        const int64_t ld = src.ld ? src.ld : k;
        for (int64_t r = 0; r < n; ++r) {
            const int64_t p = (r / kPanelCols) * pm.sources + s, lane = r % kPanelCols;
            uint8_t* dst = pm.data.data() + p * pm.panel_bytes() + lane * 4;
            for (int64_t kk = 0; kk < k; ++kk) {
                const uint16_t b = src.type == SrcType::bf16
                                       ? static_cast<const uint16_t*>(src.data)[r * ld + kk]
                                       : float_to_bf16(static_cast<const float*>(src.data)[r * ld + kk]);
                std::memcpy(dst + (kk / 2) * 64 + (kk % 2) * 2, &b, 2);
            }
        }
    }
    return pm;
}

PackedMatrix pack_bf16(const MatrixSrc& src) {
    return pack_bf16_interleaved(std::span<const MatrixSrc>(&src, 1));
}

}  // namespace mf
