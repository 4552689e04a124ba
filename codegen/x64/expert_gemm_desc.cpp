#include "codegen/x64/expert_gemm_desc.hpp"

#include <cstring>
#include <stdexcept>

namespace mf {

std::string enum_name(WeightType t) {
    switch (t) {
        case WeightType::int8:
            return "int8";
        case WeightType::int4:
            return "int4";
        case WeightType::bf16:
            return "bf16";
    }
    return "?";
}

void enum_parse(const std::string& s, WeightType& t) {
    for (auto v : {WeightType::int8, WeightType::int4, WeightType::bf16})
        if (enum_name(v) == s) {
            t = v;
            return;
        }
    throw std::invalid_argument("unknown weight type '" + s + "' (expected int8, int4 or bf16)");
}

std::string enum_name(LoopOrder o) {
    return o == LoopOrder::nm ? "nm" : "mn";
}

void enum_parse(const std::string& s, LoopOrder& o) {
    if (s == "nm")
        o = LoopOrder::nm;
    else if (s == "mn")
        o = LoopOrder::mn;
    else
        throw std::invalid_argument("unknown loop order '" + s + "' (expected nm or mn)");
}

int gemv_zmm_needed(int m, int np, WeightType wtype) {
    return wtype == WeightType::int4 ? 2 * m * np + 2 * np + 2 : m * np + np;
}

int gemv_panels_for(int m, const GemvConfig& cfg, WeightType wtype) {
    int p = cfg.panels;
    while (p > 1 && gemv_zmm_needed(m, p, wtype) > 32) p /= 2;
    return p;
}

void store_act_row_tiled(const void* row, int64_t row_bytes, int64_t i, void* block) {
    const auto* src = static_cast<const uint8_t*>(row);
    uint8_t* dst = static_cast<uint8_t*>(block) + (i / 16) * 16 * row_bytes + (i % 16) * 64;
    for (int64_t s = 0; s < row_bytes / 64; ++s) std::memcpy(dst + s * 1024, src + s * 64, 64);
}

}  // namespace mf
